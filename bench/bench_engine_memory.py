"""Peak memory and time of Engine.margin on a big book with historical scenarios.

10,000 accounts (200,000 positions, 4 risk units: BTC and ETH, linear and inverse) x 2,500 and
5,000 joint historical scenarios, expected shortfall at 99 % with account netting. Each case runs
in its own process; peak memory is the growth of the process's peak RSS during ``margin`` over
its RSS just before (the engine, risk arrays and book already built), printed as a multiple of the
result's P&L array (accounts x units x scenarios x 8 bytes). With ``--legacy PATH`` (a source tree
of an earlier version, e.g. ``git archive <rev> python | tar -x -C PATH``, with the compiled
``_core`` copied in) the same cases run through that version too, in the same invocation.

    PYTHONPATH=python python bench/bench_engine_memory.py [--accounts N] [--legacy PATH] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def _rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def child(accounts: int, scenarios: int) -> dict:
    import numpy as np
    import pandas as pd

    import marginkernel as mk
    from marginkernel import scenarios as scen

    rng = np.random.default_rng(7)
    recs = []
    for under, spot in (("BTC", 100_000.0), ("ETH", 4_000.0)):
        for settle in ("linear", "inverse"):
            tag = f"{under}-{settle[0]}"
            recs.append(
                {
                    "id": f"{tag}-PERP",
                    "kind": "perpetual",
                    "underlying": under,
                    "settlement": settle,
                    "multiplier": 10.0 if settle == "inverse" else 1.0,
                }
            )
            for k, strike in enumerate(spot * np.linspace(0.7, 1.3, 12)):
                for kind in ("call", "put"):
                    recs.append(
                        {
                            "id": f"{tag}-{kind}-{k}",
                            "kind": kind,
                            "underlying": under,
                            "settlement": settle,
                            "strike": float(strike),
                            "expiry": "2027-03-26T08:00:00Z",
                        }
                    )
    inst = mk.Instruments.from_records(recs)
    vols = {r["id"]: 0.6 for r in recs if r["kind"] in ("call", "put")}
    market = mk.Market.from_dict(
        {"time": "2026-11-21T08:00:00Z", "spot": {"BTC": 100_000.0, "ETH": 4_000.0}, "vols": vols}
    )
    returns = rng.standard_t(4, size=(2, scenarios)) * 0.02
    hist = scen.historical(["BTC", "ETH"], {"BTC": returns[0], "ETH": returns[1]})
    model = mk.MarginModel(name="hist-es", builder="range_points", measure="es", netting="account", confidence=0.99)
    try:
        engine = mk.Engine(inst, market, model, scenarios=hist)
    except TypeError:  # an earlier version without scenarios=: swap the set in as its tests did
        engine = mk.Engine(inst, market, model)
        rows = hist.for_underlyings(engine.market.unit_underlying) if hasattr(hist, "for_underlyings") else None
        sc = (
            rows
            if rows is not None
            else scen.historical(list(engine.market.unit_underlying), {"BTC": returns[0], "ETH": returns[1]})
        )
        engine.scenario_set = sc
        m = engine.market
        engine.risk, engine.value_now = mk.kernels.revalue(
            inst.kind,
            inst.settlement,
            m.unit_of_row,
            inst.strike,
            m.expiry_years,
            inst.multiplier,
            m.forward,
            m.discount,
            m.vol,
            m.unit_spot,
            **sc.kernel_arguments(),
        )
    per = 20
    positions = pd.DataFrame(
        {
            "account": np.repeat([f"acc{a:05d}" for a in range(accounts)], per),
            "instrument": np.asarray(inst.ids)[rng.integers(0, len(inst), size=accounts * per)],
            "quantity": rng.integers(-5, 6, size=accounts * per).astype(float) + 0.5,
        }
    )
    base = _rss_bytes()
    t0 = time.perf_counter()
    res = engine.margin(positions)
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    pnl_bytes = res.pnl.nbytes
    return {
        "accounts": accounts,
        "scenarios": scenarios,
        "units": len(engine.units),
        "seconds": seconds,
        "pnl_gb": pnl_bytes / 1e9,
        "peak_growth_gb": (peak - base) / 1e9,
        "peak_over_pnl": (peak - base) / pnl_bytes,
        "im_total": float(res.accounts["im"].sum()),
    }


def run(pythonpath: str, accounts: int, scenarios: int) -> dict:
    env = {**os.environ, "PYTHONPATH": pythonpath, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(accounts), str(scenarios)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr else f"exit {out.returncode}"}
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", nargs=2, type=int)
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--legacy", default="")
    parser.add_argument("--quick", action="store_true", help="1,000 accounts x 500 scenarios")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(*args.child)))
        return
    ours = str(HERE.parent / "python")
    cases = [(1_000, 500)] if args.quick else [(args.accounts, 2_500), (args.accounts, 5_000)]
    results = []
    for accounts, scenarios in cases:
        row = {"accounts": accounts, "scenarios": scenarios, "ours": run(ours, accounts, scenarios)}
        if args.legacy:
            row["legacy"] = run(args.legacy, accounts, scenarios)
        results.append(row)
        for name in ("ours", "legacy"):
            r = row.get(name)
            if r and "error" not in r:
                print(
                    f"{name:>6}: {accounts} accounts x {scenarios} scenarios: {r['seconds']:.2f} s, P&L "
                    f"{r['pnl_gb']:.2f} GB, peak growth {r['peak_growth_gb']:.2f} GB = {r['peak_over_pnl']:.2f}x P&L"
                )
            elif r:
                print(f"{name:>6}: {r['error']}")
        ours_r, legacy_r = row["ours"], row.get("legacy")
        if legacy_r and "error" not in legacy_r and "error" not in ours_r:
            rel = abs(ours_r["im_total"] - legacy_r["im_total"]) / max(abs(legacy_r["im_total"]), 1.0)
            print(f"        total IM ours vs legacy: relative difference {rel:.2e}")
    if not args.quick:
        from benchutil import record

        print("recorded", record("engine_memory", {"cases": results}))


if __name__ == "__main__":
    main()
