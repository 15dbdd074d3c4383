"""Engine.margin on 10,000 accounts / 200,000 positions (the demo instruments, ``deribit-pm``):
median wall time with the breakdown by pipeline step (position parsing and grouping, netting into
pairs, netting nodes, add-ons and result frames), beside a previous version of the engine in the
same invocation (``--legacy PATH``, see bench_engine_memory.py) with a check that both give the same IM.

    PYTHONPATH=python python bench/bench_engine_margin.py [--legacy PATH] [--repeat 7]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def child(repeat: int) -> dict:
    import numpy as np
    import pandas as pd

    import marginkernel as mk
    from marginkernel.demo import demo_inputs

    inst, market, _ = demo_inputs()
    rng = np.random.default_rng(1)
    accounts, per = 10_000, 20
    positions = pd.DataFrame(
        {
            "account": np.repeat([f"a{k}" for k in range(accounts)], per),
            "instrument": np.asarray(inst.ids)[rng.integers(0, len(inst), accounts * per)],
            "quantity": rng.integers(-5, 6, accounts * per) + 0.5,
        }
    )
    engine = mk.Engine(inst, market, mk.load_model("deribit-pm"))
    res = engine.margin(positions)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        engine.margin(positions)
        times.append(time.perf_counter() - t0)
    out = {
        "median_s": float(np.median(times)),
        "im_total": float(res.accounts["im"].sum()),
        "positions": len(positions),
        "scenarios": engine.scenario_set.n_scenarios,
    }
    try:
        from marginkernel.engine.netting import build_pairs
        from marginkernel.engine.positions import read_positions
    except ImportError:  # an earlier version: no breakdown
        return out
    steps: dict[str, list[float]] = {"positions": [], "pairs": [], "nodes": []}
    for _ in range(repeat):
        t0 = time.perf_counter()
        pos = read_positions(engine, positions, None, None, None)
        t1 = time.perf_counter()
        pairs = build_pairs(engine, pos)
        t2 = time.perf_counter()
        engine.netting.nodes(pairs)
        t3 = time.perf_counter()
        steps["positions"].append(t1 - t0)
        steps["pairs"].append(t2 - t1)
        steps["nodes"].append(t3 - t2)
    out["breakdown_s"] = {k: float(np.median(v)) for k, v in steps.items()}
    out["breakdown_s"]["addons_and_frames"] = out["median_s"] - sum(out["breakdown_s"].values())
    return out


def run(pythonpath: str, repeat: int) -> dict:
    env = {**os.environ, "PYTHONPATH": pythonpath, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(repeat)], env=env, capture_output=True, text=True, check=False
    )
    if out.returncode:
        return {"error": (out.stderr.strip().splitlines() or [f"exit {out.returncode}"])[-1]}
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", type=int)
    parser.add_argument("--legacy", default="")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child)))
        return
    results = {"ours": run(str(HERE.parent / "python"), args.repeat)}
    if args.legacy:
        results["legacy"] = run(args.legacy, args.repeat)
    for name, r in results.items():
        if "error" in r:
            print(f"{name:>6}: {r['error']}")
            continue
        parts = ", ".join(f"{k} {v * 1e3:.0f} ms" for k, v in r.get("breakdown_s", {}).items())
        print(
            f"{name:>6}: margin median {r['median_s'] * 1e3:.0f} ms ({r['positions']:,} positions, "
            f"{r['scenarios']} scenarios){': ' + parts if parts else ''}"
        )
    if "legacy" in results and "error" not in results["legacy"] and "error" not in results["ours"]:
        ours, old = results["ours"], results["legacy"]
        print(
            f"ratio legacy / ours {old['median_s'] / ours['median_s']:.2f}x; total IM relative difference "
            f"{abs(ours['im_total'] - old['im_total']) / abs(old['im_total']):.1e}"
        )
    from benchutil import record

    print("recorded", record("engine_margin", {"results": results}))


if __name__ == "__main__":
    main()
