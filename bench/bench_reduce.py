"""Reduction throughput: the C++ worst-loss and VaR / ES kernels vs their NumPy references.

10k rows (accounts, or account x risk unit) x 1,000 scenarios of P&L by default, the array netting
hands to the reduction: 80 MB, read from memory.

    python bench/bench_reduce.py [--rows 10000] [--scenarios 1000] [--confidence 0.99] [--repeat 7]

Every call, ours and NumPy's, starts with the P&L in memory rather than in a cache
(``benchutil.evict_caches`` before each, untimed): netting streams its output past the caches, so
that is where the reduction finds it. The ceiling is the machine's streaming read bandwidth from
memory, measured in the same run: a reduction reads each P&L value once, so it cannot take less
than the P&L's bytes over that bandwidth. Worst loss is one pass of compares (and a second over the
row, from L1, for the worst scenario); VaR selects the quantile of each row and sums its tail. With
scenario probabilities (historical VaR with unequal weights) the NumPy baseline is what a user
would write, vectorised: a stable argsort of every row, the cumulative probability and its first
crossing of the level (``numpy_weighted_var``), checked against ``reference.value_at_risk``.
Records ``bench/results/reduce.json``.
"""

from __future__ import annotations

import argparse

import numpy as np

import benchutil  # noqa: F401  (first: pins BLAS to one thread before NumPy loads)
from benchutil import EVICT_BYTES, aligned_empty, evict_caches, interleaved_medians, read_bandwidth, record
from marginkernel import kernels, reference


def inputs(rows: int, scenarios: int, units: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """P&L rows with a fat left tail (Student t, 4 degrees of freedom) at account-like scales, one
    weight row per risk unit (row r takes weight row r % units), as the engine passes them, and
    scenario probabilities decaying with age (a 0.99 EWMA over the scenarios, newest last)."""
    rng = np.random.default_rng(7)
    pnl = aligned_empty((rows, scenarios))
    pnl[...] = rng.standard_t(4, (rows, scenarios)) * 10.0 ** rng.uniform(2, 6, (rows, 1))
    weight = rng.uniform(0.5, 1.0, (units, scenarios))
    probability = 0.99 ** np.arange(scenarios)[::-1]
    return pnl, weight, probability / probability.sum()


def numpy_weighted_var(pnl: np.ndarray, confidence: float, probability: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """VaR and ES with scenario probabilities in vectorised NumPy (np.quantile's weighted inverted_cdf)."""
    level = (1.0 - confidence) * (1.0 - reference.LEVEL_RTOL)
    order = np.argsort(pnl, axis=1, kind="stable")
    cdf = np.cumsum(probability[order], axis=1)
    cdf /= cdf[:, -1:]
    reached = cdf >= level
    k = np.where(reached.any(axis=1), reached.argmax(axis=1), pnl.shape[1] - 1)
    q = np.take_along_axis(pnl, np.take_along_axis(order, k[:, None], axis=1), axis=1)
    below = pnl <= q
    es = -(np.where(below, pnl * probability, 0.0).sum(axis=1) / np.where(below, probability, 0.0).sum(axis=1))
    return -q[:, 0], es


def rel_diff(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> float:
    """The largest relative difference of two (VaR, ES) pairs (at least 1 in the denominator)."""
    return max(float(np.max(np.abs(x - y) / np.maximum(1.0, np.abs(y)))) for x, y in zip(a, b, strict=True))


def check(pnl: np.ndarray, weight: np.ndarray, probability: np.ndarray, confidence: float) -> dict:
    """Each target's largest difference from the reference: worst loss bit for bit, VaR / ES relative
    (the weighted reference, a loop of np.quantile, on the first 1,000 rows)."""
    loss_ref, worst_ref = reference.worst_loss(pnl, weight)
    var_ref = reference.value_at_risk(pnl, confidence)
    head = pnl[:1000]
    weighted_ref = reference.value_at_risk(head, confidence, probability)
    if rel_diff(numpy_weighted_var(head, confidence, probability), weighted_ref) > 1e-12:
        raise SystemExit("numpy_weighted_var differs from the reference")
    errors: dict = {"var": {}, "var_weighted": {}}
    for target in kernels.available_simd_targets():
        kernels.select_simd_target(target)
        loss, worst = kernels.worst_loss(pnl, weight)
        if not (np.array_equal(loss, loss_ref) and np.array_equal(worst, worst_ref)):
            raise SystemExit(f"worst_loss [{target}] differs from the reference")
        for measure, got, want in (
            ("var", kernels.value_at_risk(pnl, confidence), var_ref),
            ("var_weighted", kernels.value_at_risk(head, confidence, probability), weighted_ref),
        ):
            rel = rel_diff(got, want)
            if rel > 1e-12:
                raise SystemExit(f"value_at_risk [{target}] ({measure}) differs from the reference by {rel:.1e}")
            errors[measure][target] = rel
    return errors


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000)
    ap.add_argument("--scenarios", type=int, default=1_000)
    ap.add_argument("--confidence", type=float, default=0.99)
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    pnl, weight, probability = inputs(args.rows, args.scenarios)
    original = kernels.simd_target()
    try:
        errors = check(pnl, weight, probability, args.confidence)
        fns: dict = {
            ("worst_loss", "numpy"): lambda: reference.worst_loss(pnl, weight),
            ("var", "numpy"): lambda: reference.value_at_risk(pnl, args.confidence),
            ("var_weighted", "numpy"): lambda: numpy_weighted_var(pnl, args.confidence, probability),
        }

        def on(target: str, fn):
            def run():
                kernels.select_simd_target(target)
                return fn()

            return run

        for target in kernels.available_simd_targets():
            fns[("worst_loss", target)] = on(target, lambda: kernels.worst_loss(pnl, weight))
            fns[("var", target)] = on(target, lambda: kernels.value_at_risk(pnl, args.confidence))
            fns[("var_weighted", target)] = on(target, lambda: kernels.value_at_risk(pnl, args.confidence, probability))
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
    for measure, label in (
        ("worst_loss", "worst loss (weighted)"),
        ("var", f"VaR + ES at {args.confidence:g}"),
        ("var_weighted", f"VaR + ES at {args.confidence:g}, scenario probabilities"),
    ):
        ref_t = medians[(measure, "numpy")]
        print(f"  {label}: NumPy reference {ref_t * 1e3:8.1f} ms")
        results[measure] = {"numpy_median_s": ref_t}
        for target in kernels.available_simd_targets():
            t = medians[(measure, target)]
            results[measure][target] = {
                "median_s": t,
                "ratio": ref_t / t,
                "share_of_bound": bound / t,
                "max_rel_diff": 0.0 if measure == "worst_loss" else errors[measure][target],
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
