"""Reduction throughput: the C++ worst-loss and VaR / ES kernels vs their NumPy references.

10k rows (accounts, or account x risk unit) x 1,000 scenarios of P&L by default, the array netting
hands to the reduction: 80 MB, read from memory.

    python bench/bench_reduce.py [--rows 10000] [--scenarios 1000] [--confidence 0.99] [--repeat 7]

Every call, ours and NumPy's, starts with the P&L in memory rather than in a cache
(``benchutil.evict_caches`` before each, untimed): netting streams its output past the caches, so
that is where the reduction finds it. The ceiling is the machine's streaming read bandwidth from
memory, measured in the same run: a reduction reads each P&L value once, so it cannot take less
than the P&L's bytes over that bandwidth. Worst loss is one pass of compares (and a second over the
row, from L1, for the worst scenario); VaR selects the quantile of each row and sums its tail.
Records ``bench/results/reduce.json``.
"""

from __future__ import annotations

import argparse

import numpy as np

import benchutil  # noqa: F401  (first: pins BLAS to one thread before NumPy loads)
from benchutil import EVICT_BYTES, aligned_empty, evict_caches, interleaved_medians, read_bandwidth, record
from marginkernel import kernels, reference


def inputs(rows: int, scenarios: int, units: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """P&L rows with a fat left tail (Student t, 4 degrees of freedom) at account-like scales, and
    one weight row per risk unit (row r takes weight row r % units), as the engine passes them."""
    rng = np.random.default_rng(7)
    pnl = aligned_empty((rows, scenarios))
    pnl[...] = rng.standard_t(4, (rows, scenarios)) * 10.0 ** rng.uniform(2, 6, (rows, 1))
    weight = rng.uniform(0.5, 1.0, (units, scenarios))
    return pnl, weight


def check(pnl: np.ndarray, weight: np.ndarray, confidence: float) -> dict[str, float]:
    """Each target's largest difference from the reference: worst loss bit for bit, VaR / ES relative."""
    loss_ref, worst_ref = reference.worst_loss(pnl, weight)
    var_ref, es_ref = reference.value_at_risk(pnl, confidence)
    errors = {}
    for target in kernels.available_simd_targets():
        kernels.select_simd_target(target)
        loss, worst = kernels.worst_loss(pnl, weight)
        if not (np.array_equal(loss, loss_ref) and np.array_equal(worst, worst_ref)):
            raise SystemExit(f"worst_loss [{target}] differs from the reference")
        var, es = kernels.value_at_risk(pnl, confidence)
        rel = max(
            float(np.max(np.abs(var - var_ref) / np.maximum(1.0, np.abs(var_ref)))),
            float(np.max(np.abs(es - es_ref) / np.maximum(1.0, np.abs(es_ref)))),
        )
        if rel > 1e-12:
            raise SystemExit(f"value_at_risk [{target}] differs from the reference by {rel:.1e}")
        errors[target] = rel
    return errors


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000)
    ap.add_argument("--scenarios", type=int, default=1_000)
    ap.add_argument("--confidence", type=float, default=0.99)
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    pnl, weight = inputs(args.rows, args.scenarios)
    original = kernels.simd_target()
    try:
        errors = check(pnl, weight, args.confidence)
        fns: dict = {
            ("worst_loss", "numpy"): lambda: reference.worst_loss(pnl, weight),
            ("var", "numpy"): lambda: reference.value_at_risk(pnl, args.confidence),
        }

        def on(target: str, fn):
            def run():
                kernels.select_simd_target(target)
                return fn()

            return run

        for target in kernels.available_simd_targets():
            fns[("worst_loss", target)] = on(target, lambda: kernels.worst_loss(pnl, weight))
            fns[("var", target)] = on(target, lambda: kernels.value_at_risk(pnl, args.confidence))
        medians = interleaved_medians(fns, repeat=args.repeat, before=evict_caches)
    finally:
        kernels.select_simd_target(original)

    read_bw = read_bandwidth(max(pnl.nbytes, EVICT_BYTES))
    bound = pnl.nbytes / read_bw
    print(
        f"reduce {args.rows} rows x {args.scenarios} scenarios ({pnl.nbytes >> 20} MB of P&L), one thread, "
        f"P&L in memory; ceiling: memory read at {read_bw / 1e9:.1f} GB/s = {bound * 1e3:.1f} ms"
    )
    results: dict = {"read_bandwidth": read_bw, "bound_s": bound}
    for measure, label in (("worst_loss", "worst loss (weighted)"), ("var", f"VaR + ES at {args.confidence:g}")):
        ref_t = medians[(measure, "numpy")]
        print(f"  {label}: NumPy reference {ref_t * 1e3:8.1f} ms")
        results[measure] = {"numpy_median_s": ref_t}
        for target in kernels.available_simd_targets():
            t = medians[(measure, target)]
            results[measure][target] = {
                "median_s": t,
                "ratio": ref_t / t,
                "share_of_bound": bound / t,
                "max_rel_diff": 0.0 if measure == "worst_loss" else errors[target],
            }
            print(
                f"    kernel [{target:8s}] {t * 1e3:8.1f} ms  x{ref_t / t:5.1f} vs NumPy  "
                f"{bound / t:4.0%} of the read ceiling"
            )
    path = record(
        "reduce",
        {"rows": args.rows, "scenarios": args.scenarios, "confidence": args.confidence, "results": results},
    )
    print(f"  recorded in {path}")


if __name__ == "__main__":
    main()
