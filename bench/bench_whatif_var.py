"""Pre-trade what-if latency of the model book under the VaR / ES presets, beside worst loss and the
NumPy a user would write, in the same run.

    python bench/bench_whatif_var.py [--samples 20000] [--json bench/results/whatif_var.json]

The book: one account holding the demo book's 12 positions with collateral (as bench_whatif.py's
model rows); orders cycle over 64 (instrument, quantity) pairs. Rows per preset:

* ``book what_if``: ``ModelBook.what_if`` from Python (C++ state; the node's VaR / ES selected on a
  per-thread scratch, see docs/book.md);
* ``numpy quantile``: the same figure written in NumPy on the account's cached joint P&L ``J`` and
  the order's joint risk row ``r`` (account netting, gain factor 1, no add-ons, so
  ``IM = im_factor max(0, VaR or ES of J + q r)``): ``np.quantile(..., method="inverted_cdf")`` (with
  ``weights=`` for the weighted set) and the ES mean -- checked equal to the book's what-if to 1e-9
  on the first orders.

Timing as bench_whatif.py (per-call perf_counter_ns, timer cost subtracted, medians). Machines are
shared and noisy: quote medians and ratios, and rerun.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import marginkernel
from bench_whatif import cpu_model, measure, timer_cost

LEVEL_RTOL = 1e-12


def _setup(preset: str) -> tuple[Any, Any, list[tuple[int, int, float]]]:
    from marginkernel.account import account_book
    from marginkernel.demo import demo_inputs
    from marginkernel.engine import Engine
    from marginkernel.model import load_model

    instruments, market, positions = demo_inputs()
    engine = Engine(instruments, market, load_model(preset))
    book = account_book(
        engine,
        positions.assign(account="x"),
        collateral=[
            {"account": "x", "currency": "BTC", "amount": 1.0},
            {"account": "x", "currency": "USDC", "amount": 2000.0},
        ],
    )
    rng = np.random.default_rng(7)
    kinds = np.asarray(instruments.kind)
    orders = []
    for _ in range(64):
        i = int(rng.integers(len(kinds)))
        orders.append((0, i, float(rng.normal(0.0, 3.0)) * (1000.0 if kinds[i] <= 1 else 1.0)))
    return engine, book, orders


def _numpy_rows(
    engine: Any, book: Any, orders: list[tuple[int, int, float]], samples: int, overhead: float
) -> dict[str, Any]:
    """The NumPy what-if on the cached joint P&L (account netting in USD, gain factor 1)."""
    model, sc, m = engine.model, engine.scenario_set, engine.market
    unit_fx = np.asarray(m.unit_fx, dtype=float)
    w = np.asarray(sc.weight, dtype=float)
    joint = (book.pnl(0) * w * unit_fx[:, None]).sum(axis=0)
    unit = np.asarray(m.unit_of_row)
    risk = np.asarray(engine.counted_risk, dtype=float)
    level = (1.0 - model.confidence) * (1.0 - LEVEL_RTOL)
    prob = sc.probability
    es_measure = model.measure == "es"
    report = engine.market_snapshot.fx_rate(model.currency)

    def numpy_what_if(q: float, r: np.ndarray) -> float:
        v = joint + q * r
        if prob is None:
            qv = np.quantile(v, level, method="inverted_cdf")
            loss = -v[v <= qv].mean() if es_measure else -qv
        else:
            qv = np.quantile(v, level, method="inverted_cdf", weights=prob)
            below = v <= qv
            loss = -(v[below] * prob[below]).sum() / prob[below].sum() if es_measure else -qv
        return float(model.im_factor * max(0.0, float(loss)) / report)

    args = [(q, risk[i] * w[unit[i]] * unit_fx[unit[i]]) for _, i, q in orders]
    for (a, i, q), arg in list(zip(orders, args, strict=True))[:8]:
        ours, theirs = book.what_if(a, i, q).im, numpy_what_if(*arg)
        assert abs(ours - theirs) <= 1e-9 * max(1.0, abs(theirs)), (ours, theirs)
    return {"numpy quantile": measure(numpy_what_if, args, max(1, samples // 4), overhead)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=20_000)
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    overhead = timer_cost()
    out = {
        "machine": {"cpu": cpu_model(), "simd_target": marginkernel.kernels.simd_target(), "cores": os.cpu_count()},
        "samples": args.samples,
        "rows": [],
    }
    print(f"{out['machine']['cpu']}, SIMD target {out['machine']['simd_target']}")
    print(f"{'preset':<15} {'measure':<10} {'S':>5} {'row':<16} {'median ns':>10} {'p99 ns':>9} {'vs numpy':>9}")
    for preset in ("deribit-pm", "hist-var99", "fhs-es975-apc"):
        engine, book, orders = _setup(preset)
        rows = {"book what_if": measure(book.what_if, orders, args.samples, overhead)}
        if engine.model.measure != "worst_loss":
            rows.update(_numpy_rows(engine, book, orders, args.samples, overhead))
        base = rows.get("numpy quantile", {}).get("median_ns")
        for name, r in rows.items():
            ratio = f"{base / r['median_ns']:.1f}x" if base and name != "numpy quantile" else ""
            weighted = "weighted" if engine.scenario_set.probability is not None else "equal"
            print(
                f"{preset:<15} {engine.model.measure + ',' + weighted[:5]:<10} {book.n_scenarios:>5} {name:<16} "
                f"{r['median_ns']:>10.0f} {r['p99_ns']:>9.0f} {ratio:>9}"
            )
            out["rows"].append(
                {
                    "preset": preset,
                    "measure": engine.model.measure,
                    "weighted": weighted,
                    "scenarios": book.n_scenarios,
                    "row": name,
                    **r,
                }
            )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=1)


if __name__ == "__main__":
    main()
