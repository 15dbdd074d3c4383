"""Hedge optimisation of a 50-position BTC account over 20 hedge instruments, at 35 scenarios (the
deribit-pm preset) and at 1,000 joint price x vol scenarios: solve-time medians of the exact LP and
MILP (HiGHS through SciPy), beside the baseline a user would otherwise try, a derivative-free search
(SciPy's Powell) on the engine's IM + cost with the same budget of time.

Run: PYTHONPATH=python python bench/bench_optimise.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import contextlib

import marginkernel as mk
from benchutil import machine, median_seconds, record
from marginkernel.optimise import hedge
from marginkernel.optimise.hedge import with_trades

EXPIRIES = ["2026-12-27T08:00:00Z", "2027-01-29T08:00:00Z", "2027-03-26T08:00:00Z", "2027-06-25T08:00:00Z"]
STRIKES = [70_000, 80_000, 90_000, 95_000, 100_000, 105_000, 110_000, 120_000, 130_000, 150_000]


def universe():
    rows = [{"id": "PERP", "kind": "perpetual", "underlying": "BTC", "settlement": "linear", "currency": "USDC"}]
    for e in EXPIRIES:
        rows.append(
            {
                "id": f"F-{e[:10]}",
                "kind": "future",
                "underlying": "BTC",
                "expiry": e,
                "settlement": "linear",
                "currency": "USDC",
            }
        )
        for k in STRIKES:
            for kind in ("call", "put"):
                rows.append(
                    {
                        "id": f"{kind[0].upper()}-{e[:10]}-{k}",
                        "kind": kind,
                        "underlying": "BTC",
                        "strike": float(k),
                        "expiry": e,
                        "settlement": "linear",
                        "currency": "USDC",
                    }
                )
    inst = mk.Instruments.from_records(rows)
    vols = {r["id"]: 0.5 + 0.1 * abs(np.log(r["strike"] / 100_000.0)) for r in rows if "strike" in r}
    mkt = mk.Market.from_dict(
        {
            "time": "2026-11-21T08:00:00Z",
            "spot": {"BTC": 100_000.0},
            "carry": {"BTC": 0.05},
            "vols": vols,
            "fx": {"USDC": 1.0},
        }
    )
    return inst, mkt


def problem(inst, seed: int = 3):
    rng = np.random.default_rng(seed)
    ids = list(inst.ids)
    options = [i for i in ids if i[0] in "CP"]
    held = rng.choice(options, size=50, replace=False)
    book = pd.DataFrame(
        {"account": "acc", "instrument": held, "quantity": rng.choice([-1, 1], 50) * rng.integers(1, 20, 50)}
    )
    pool = [
        "PERP",
        *[f"F-{e[:10]}" for e in EXPIRIES],
        *list(rng.choice([o for o in options if o not in held], 15, replace=False)),
    ]
    hedges = pd.DataFrame({"instrument": pool, "min": -200.0, "max": 200.0, "cost": [5.0] * 5 + [50.0] * 15})
    return book, hedges


def powell(eng, book, hedges, seconds: float) -> tuple[float, int]:
    from scipy.optimize import minimize

    lo, hi, cost = hedges["min"].to_numpy(), hedges["max"].to_numpy(), hedges["cost"].to_numpy()
    calls = [0]
    deadline = time.perf_counter() + seconds

    def f(x):
        calls[0] += 1
        if time.perf_counter() > deadline:
            raise StopIteration
        b = with_trades(book, "acc", hedges["instrument"], x)
        return float(eng.margin(b).accounts["im"].iloc[0]) + float(np.sum(cost * np.abs(x)))

    best = [f(np.zeros(len(lo)))]

    def tracked(x):
        v = f(x)
        best[0] = min(best[0], v)
        return v

    with contextlib.suppress(StopIteration):
        minimize(tracked, np.zeros(len(lo)), method="Powell", bounds=list(zip(lo, hi, strict=False)))
    return best[0], calls[0]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    inst, mkt = universe()
    book, hedges = problem(inst)
    models = {
        35: mk.load_model("deribit-pm"),
        1000: mk.MarginModel(
            name="grid-1000",
            builder="range_points",
            netting="currency",
            scenario_params={
                "up": 0.3,
                "down": 0.3,
                "points": 200,
                "vol_shock": "multiplicative",
                "vol_shift": [-0.3, -0.15, 0.0, 0.15, 0.3],
            },
        ),
    }
    m = machine()
    print(f"hedge bench: 50 positions, 20 hedge instruments; CPU {m['cpu']}, SIMD {m['simd_targets']}")
    rows = []
    for n_s, model in models.items():
        eng = mk.Engine(inst, mkt, model)
        assert eng.scenario_set.n_scenarios == n_s, eng.scenario_set.n_scenarios
        t_margin, _ = median_seconds(lambda eng=eng: eng.margin(book), repeat=args.repeat)
        for kind, table in (("LP", hedges), ("MILP (lots)", hedges.assign(lot=[1.0] * 5 + [0.1] * 15))):
            results = []
            t_total, _ = median_seconds(
                lambda eng=eng, table=table, results=results: results.append(
                    hedge(eng, book, table, account="acc", time_limit=60.0)
                ),
                repeat=args.repeat,
                warmup=0,
            )
            solve = float(np.median([r.solve_seconds for r in results]))
            r = results[-1]
            rel = abs(r.im_after + r.cost - r.objective) / r.objective
            best, calls = powell(eng, book, table, seconds=max(5 * t_total, 1.0))
            print(
                f"  {n_s:5d} scenarios {kind:12s} solve median {solve * 1e3:8.1f} ms "
                f"(total {t_total * 1e3:8.1f} ms); IM {r.im_before:,.0f} -> {r.im_after:,.0f}, "
                f"objective {r.objective:,.2f}, |engine - solver| {rel:.1e}; "
                f"Powell in {max(5 * t_total, 1.0):.1f} s ({calls} margin runs): {best:,.2f} "
                f"({best / r.objective:.2f} x); {r.status}"
            )
            rows.append(
                {
                    "scenarios": n_s,
                    "kind": kind,
                    "solve_ms_median": solve * 1e3,
                    "total_ms_median": t_total * 1e3,
                    "margin_run_ms": t_margin * 1e3,
                    "im_before": r.im_before,
                    "im_after": r.im_after,
                    "objective": r.objective,
                    "engine_vs_solver_rel": rel,
                    "powell_best": best,
                    "powell_margin_runs": calls,
                    "saving_vs_delta_hedge": r.saving_vs_delta_hedge,
                    "status": r.status,
                }
            )
    out = record(
        "optimise",
        {"rows": rows, "command": "PYTHONPATH=python python bench/bench_optimise.py " + " ".join(sys.argv[1:])},
    )
    print(f"  recorded {out}")


if __name__ == "__main__":
    main()
