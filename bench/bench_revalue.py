"""Revaluation throughput: the C++ kernel vs the NumPy/SciPy reference on the same inputs.

2,000 instruments (mostly options, some futures) x 5,000 scenarios by default, one thread unless
--threads is given, for every SIMD target this CPU supports. Prints valuations/s and the ratio.

    python bench/bench_revalue.py [--instruments 2000] [--scenarios 5000] [--repeat 7] [--threads 1]
"""

from __future__ import annotations

import argparse

import benchutil  # noqa: F401  (first: pins BLAS to one thread before NumPy loads)
import numpy as np
from benchutil import median_seconds, record

from marginkernel import kernels, reference


def inputs(n: int, s: int, seed: int = 1) -> dict:
    rng = np.random.default_rng(seed)
    units = 2
    kind = rng.choice([0, 2, 3], size=n, p=[0.1, 0.45, 0.45]).astype(np.int8)
    return dict(
        kind=kind,
        settlement=rng.integers(0, 2, n).astype(np.int8),
        risk_unit=rng.integers(0, units, n).astype(np.int32),
        strike=rng.uniform(60.0, 140.0, n),
        expiry=rng.uniform(1 / 365, 2.0, n),
        multiplier=np.ones(n),
        forward=rng.uniform(95.0, 105.0, n),
        discount=rng.uniform(0.95, 1.0, n),
        vol=rng.uniform(0.2, 1.2, n),
        spot=np.array([100.0, 100.0]),
        price_multiplier=rng.uniform(0.5, 1.5, (units, s)),
        vol_shift=rng.uniform(-0.3, 0.5, (units, s)),
        vol_shock="multiplicative",
        short_power=0.3,
        long_power=0.13,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--instruments", type=int, default=2000)
    ap.add_argument("--scenarios", type=int, default=5000)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    args_in = inputs(args.instruments, args.scenarios)
    count = args.instruments * args.scenarios

    ref_t, _ = median_seconds(lambda: reference.revalue(**args_in), repeat=max(3, args.repeat // 2))
    ref_rate = count / ref_t
    expected, _ = reference.revalue(**args_in)
    print(f"revalue {args.instruments} instruments x {args.scenarios} scenarios, threads={args.threads}")
    print(f"  numpy+scipy reference: {ref_t * 1e3:9.1f} ms  {ref_rate / 1e6:8.1f} M valuations/s")
    original = kernels.simd_target()
    results = {"reference": {"median_s": ref_t, "valuations_per_s": ref_rate}}
    try:
        for target in kernels.available_simd_targets():
            kernels.select_simd_target(target)
            got, _ = kernels.revalue(**args_in, threads=args.threads)
            scale = args_in["forward"][:, None] * np.where(args_in["settlement"][:, None] == 1, 1 / 100.0, 1.0)
            err = float(np.max(np.abs(got - expected) / scale))
            t, _ = median_seconds(lambda: kernels.revalue(**args_in, threads=args.threads), repeat=args.repeat)
            rate = count / t
            # The same call writing into one reused buffer (out=), as an engine refreshing its risk
            # arrays on every market update would: no new (n x S) array to allocate and fault in.
            buffer = np.empty_like(got)
            t_out, _ = median_seconds(lambda: kernels.revalue(**args_in, threads=args.threads, out=buffer),
                                      repeat=args.repeat)
            rate_out = count / t_out
            results[target] = {"median_s": t, "valuations_per_s": rate, "ratio": rate / ref_rate,
                               "median_s_out": t_out, "valuations_per_s_out": rate_out,
                               "ratio_out": rate_out / ref_rate, "max_rel_diff": err}
            print(f"  kernel [{target:8s}]:     {t * 1e3:9.1f} ms  {rate / 1e6:8.1f} M valuations/s"
                  f"  x{rate / ref_rate:5.1f} vs reference  (max diff {err:.1e} of price scale)")
            print(f"    into a reused out=:  {t_out * 1e3:9.1f} ms  {rate_out / 1e6:8.1f} M valuations/s"
                  f"  x{rate_out / ref_rate:5.1f}")
    finally:
        kernels.select_simd_target(original)
    path = record("revalue", {"instruments": args.instruments, "scenarios": args.scenarios,
                              "threads": args.threads, "results": results})
    print(f"  recorded in {path}")


if __name__ == "__main__":
    main()
