"""Pre-trade what-if latency of the model book under SPAN's delta spreads, beside the same book without
them and the NumPy engine a user would otherwise call, in the same run.

    python bench/bench_whatif_span.py [--samples 20000] [--json bench/results/whatif_span.json]

The book: one account holding futures in three risk units (BTC calendar spread, ETH short, BTC/USDC
perpetual) and an ETH put, under the span preset's 16 scenarios; orders cycle over 64 (instrument,
quantity) pairs. Rows:

* ``book what_if`` per add-on set: the span preset's scan and short-option minimum alone; with its
  intra-commodity spreads; with intra- and inter-commodity spreads (the credit couples the units:
  the what-if re-forms the account's spreads and re-finishes every node whose credit changes) at
  risk-unit, currency and account netting (docs/book.md);
* ``engine margin``: ``Engine.margin`` of the post-trade account (NumPy, the same figure; checked
  equal to the book's what-if to 1e-9 on the first orders).

Timing as bench_whatif.py (per-call perf_counter_ns, timer cost subtracted, medians; the engine row
has per-call times only, a few hundred calls). Machines are shared and noisy: quote medians and
ratios, and rerun.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import marginkernel
from bench_whatif import cpu_model, measure, timer_cost

TIERS = [{"tier": 1, "end": "2026-12"}, {"tier": 2, "start": "2027-01"}]
INTRA = {
    "type": "intra_spread",
    "underlyings": ["BTC", "ETH"],
    "currency": "USD",
    "tiers": TIERS,
    "spreads": [
        {"rate": 100.0, "legs": [{"tier": 1, "side": "A"}, {"tier": 1, "side": "B"}]},
        {"rate": 150.0, "legs": [{"tier": 1, "side": "A"}, {"tier": 2, "side": "B"}]},
    ],
}
INTER = {
    "type": "inter_spread",
    "after": "intra",
    "spreads": [
        {"rate": 0.5, "legs": [{"unit": "BTC", "side": "A"}, {"unit": "ETH", "side": "B", "ratio": 10.0}]},
        {"rate": 0.3, "legs": [{"unit": "BTC", "side": "A"}, {"unit": "BTC/USDC", "side": "B"}]},
    ],
}
ROWS = [
    ("scan + som", {}, "risk_unit"),
    ("+ intra", {"intra": INTRA}, "risk_unit"),
    ("+ intra + inter", {"intra": INTRA, "inter": INTER}, "risk_unit"),
    ("+ intra + inter", {"intra": INTRA, "inter": INTER}, "currency"),
    ("+ intra + inter", {"intra": INTRA, "inter": INTER}, "account"),
]
HELD = [
    ("BTC-27DEC26", 50_000.0),
    ("BTC-26MAR27", -20_000.0),
    ("ETH-27DEC26", -100_000.0),
    ("ETH-27DEC26-3000-P", 20.0),
    ("BTC_USDC-PERPETUAL", -0.2),
]


def _setup(addons: dict[str, Any], netting: str) -> tuple[Any, Any, Any, list[tuple[int, int, float]]]:
    import pandas as pd

    from marginkernel.demo import demo_inputs
    from marginkernel.engine import Engine
    from marginkernel.model import load_model

    instruments, market, _ = demo_inputs()
    span = load_model("span")
    som = {"som": {"type": "short_option_minimum", "rate": {"default": 0.0, "BTC": 500.0}, "currency": "USD"}}
    engine = Engine(instruments, market, replace(span, addons={**som, **addons}, netting=netting))
    held = pd.DataFrame([("x", i, q) for i, q in HELD], columns=["account", "instrument", "quantity"])
    book = engine.account_book(held)
    rng = np.random.default_rng(7)
    kinds = np.asarray(instruments.kind)
    orders = []
    for _ in range(64):
        i = int(rng.integers(len(kinds)))
        orders.append((0, i, float(rng.normal(0.0, 3.0)) * (10_000.0 if kinds[i] <= 1 else 1.0)))
    return engine, book, held, orders


def _engine_row(engine: Any, book: Any, held: Any, orders: list[Any], samples: int, overhead: float) -> dict:
    import pandas as pd

    ids = list(engine.instruments.ids)
    frames = [
        pd.concat([held, pd.DataFrame([("x", ids[i], q)], columns=held.columns)], ignore_index=True)
        for _, i, q in orders
    ]
    for (a, i, q), frame in list(zip(orders, frames, strict=True))[:8]:
        ours, theirs = book.what_if(a, i, q).im, float(engine.margin(frame).accounts.loc["x", "im"])
        assert abs(ours - theirs) <= 1e-9 * max(1.0, abs(theirs)), (ours, theirs)
    # a few ms per call: per-call times only (bench_whatif.measure adds 70,000-call batch means)
    for f in frames[:8]:
        engine.margin(f)
    t = np.empty(samples)
    for k in range(samples):
        t0 = time.perf_counter_ns()
        engine.margin(frames[k % len(frames)])
        t[k] = time.perf_counter_ns() - t0 - overhead
    return {"median_ns": float(np.median(t)), "p99_ns": float(np.percentile(t, 99))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=20_000)
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    overhead = timer_cost()
    out: dict[str, Any] = {
        "machine": {"cpu": cpu_model(), "simd_target": marginkernel.kernels.simd_target(), "cores": os.cpu_count()},
        "samples": args.samples,
        "rows": [],
    }
    print(f"{out['machine']['cpu']}, SIMD target {out['machine']['simd_target']}")
    print(f"{'add-ons':<16} {'netting':<10} {'S':>3} {'row':<14} {'median ns':>11} {'p99 ns':>10} {'vs engine':>10}")
    for label, addons, netting in ROWS:
        engine, book, held, orders = _setup(addons, netting)
        rows = {"book what_if": measure(book.what_if, orders, args.samples, overhead)}
        rows["engine margin"] = _engine_row(engine, book, held, orders, max(50, args.samples // 200), overhead)
        base = rows["engine margin"]["median_ns"]
        for name, r in rows.items():
            ratio = f"{base / r['median_ns']:.0f}x" if name != "engine margin" else ""
            print(
                f"{label:<16} {netting:<10} {book.n_scenarios:>3} {name:<14} {r['median_ns']:>11.0f} "
                f"{r['p99_ns']:>10.0f} {ratio:>10}"
            )
            out["rows"].append({"addons": label, "netting": netting, "scenarios": book.n_scenarios, "row": name, **r})
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=1)


if __name__ == "__main__":
    main()
