"""Revaluation throughput: the C++ kernel vs the NumPy/SciPy reference on the same inputs.

2,000 instruments (mostly options, some futures) x 5,000 scenarios by default, one thread unless
--threads is given, for every SIMD target this CPU supports. Prints valuations/s and the ratio, the
optional peers Numba (``njit``) and JAX (``jit`` on CPU) when installed -- they compute plain Black-76
with the same multiplicative vol shock, linear settlement only, so they do a little less work -- and
the ceiling: NumPy's vectorised exp throughput measured in the same run (a Black-76 valuation needs
at least one exp), with the kernel's valuations/s as a share of it.

    python bench/bench_revalue.py [--instruments 2000] [--scenarios 5000] [--repeat 7] [--threads 1]
"""

from __future__ import annotations

import argparse

import numpy as np

import benchutil  # noqa: F401  (first: pins BLAS to one thread before NumPy loads)
from benchutil import exp_throughput, median_seconds, record
from marginkernel import kernels, reference


def inputs(n: int, s: int, seed: int = 1) -> dict:
    rng = np.random.default_rng(seed)
    units = 2
    kind = rng.choice([0, 2, 3], size=n, p=[0.1, 0.45, 0.45]).astype(np.int8)
    return {
        "kind": kind,
        "settlement": rng.integers(0, 2, n).astype(np.int8),
        "risk_unit": rng.integers(0, units, n).astype(np.int32),
        "strike": rng.uniform(60.0, 140.0, n),
        "expiry": rng.uniform(1 / 365, 2.0, n),
        "multiplier": np.ones(n),
        "forward": rng.uniform(95.0, 105.0, n),
        "discount": rng.uniform(0.95, 1.0, n),
        "vol": rng.uniform(0.2, 1.2, n),
        "spot": np.array([100.0, 100.0]),
        "price_multiplier": rng.uniform(0.5, 1.5, (units, s)),
        "vol_shift": rng.uniform(-0.3, 0.5, (units, s)),
        "vol_shock": "multiplicative",
        "short_power": 0.3,
        "long_power": 0.13,
    }


def peer_arrays(args_in: dict):
    """The plain Black-76 grid of the peers: R[i, s] = mult * (V(F m_s, sigma_s, T) - V(F, sigma, T)) with
    sigma_s = sigma * max(0, 1 + v_s * tau^p); futures mult * F * (m_s - 1). Returns (fn, arrays)."""
    a = args_in
    dte = a["expiry"] * 365.0
    tau = 30.0 / np.maximum(dte, 1.0)
    scale = tau ** np.where(dte <= 30.0, a["short_power"], a["long_power"])
    arrays = (
        a["kind"].astype(np.int64),
        a["risk_unit"].astype(np.int64),
        a["strike"],
        a["expiry"],
        a["multiplier"],
        a["forward"],
        a["discount"],
        a["vol"],
        scale,
        a["price_multiplier"],
        a["vol_shift"],
    )
    return arrays


def numba_peer(arrays):
    try:
        import math

        import numba
    except ImportError:
        return None

    @numba.njit(cache=False, fastmath=False)
    def value(fwd, strike, sd, disc, sign):
        if sd <= 0.0:
            return disc * max(sign * (fwd - strike), 0.0)
        d1 = (math.log(fwd / strike) + 0.5 * sd * sd) / sd
        d2 = d1 - sd
        n1 = 0.5 * math.erfc(-sign * d1 / math.sqrt(2.0))
        n2 = 0.5 * math.erfc(-sign * d2 / math.sqrt(2.0))
        return disc * sign * (fwd * n1 - strike * n2)

    @numba.njit(cache=False, fastmath=False)
    def grid(kind, unit, strike, expiry, mult, fwd, disc, vol, scale, m, shift):
        n, ns = kind.shape[0], m.shape[1]
        out = np.empty((n, ns))
        for i in range(n):
            u = unit[i]
            if kind[i] != 2 and kind[i] != 3:
                for s in range(ns):
                    out[i, s] = mult[i] * (fwd[i] * m[u, s] - fwd[i])
                continue
            sign = 1.0 if kind[i] == 2 else -1.0
            sqrt_t = math.sqrt(max(expiry[i], 0.0))
            base = value(fwd[i], strike[i], vol[i] * sqrt_t, disc[i], sign)
            for s in range(ns):
                sigma = vol[i] * max(0.0, 1.0 + shift[u, s] * scale[i])
                out[i, s] = mult[i] * (value(fwd[i] * m[u, s], strike[i], sigma * sqrt_t, disc[i], sign) - base)
        return out

    grid(*(x[:2] if x.ndim == 1 else x[:, :2] for x in arrays))  # compile
    return lambda: grid(*arrays)


def jax_peer(arrays):
    try:
        import jax
        import jax.numpy as jnp
        from jax.scipy.special import ndtr
    except ImportError:
        return None
    jax.config.update("jax_enable_x64", True)
    kind, unit, strike, expiry, mult, fwd, disc, vol, scale, m, shift = (jnp.asarray(x) for x in arrays)

    @jax.jit
    def grid(m, shift):
        mu, vs = m[unit], shift[unit]
        sign = jnp.where(kind == 2, 1.0, -1.0)[:, None]
        sqrt_t = jnp.sqrt(jnp.maximum(expiry, 0.0))[:, None]

        def value(f, sd):
            safe = jnp.where(sd > 0, sd, 1.0)
            d1 = (jnp.log(f / strike[:, None]) + 0.5 * safe * safe) / safe
            v = sign * (f * ndtr(sign * d1) - strike[:, None] * ndtr(sign * (d1 - safe)))
            return disc[:, None] * jnp.where(sd > 0, v, jnp.maximum(sign * (f - strike[:, None]), 0.0))

        sigma = vol[:, None] * jnp.maximum(0.0, 1.0 + vs * scale[:, None])
        opt = mult[:, None] * (value(fwd[:, None] * mu, sigma * sqrt_t) - value(fwd[:, None], vol[:, None] * sqrt_t))
        lin = mult[:, None] * (fwd[:, None] * mu - fwd[:, None])
        return jnp.where(((kind == 2) | (kind == 3))[:, None], opt, lin)

    grid(m, shift).block_until_ready()
    return lambda: grid(m, shift).block_until_ready()


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
    results: dict = {"reference": {"median_s": ref_t, "valuations_per_s": ref_rate}}
    exp_rate = exp_throughput()
    results["exp_probe"] = {"exp_per_s": exp_rate}
    print(f"  ceiling: NumPy exp     {exp_rate / 1e6:22.1f} M exp/s (one exp per valuation at least)")
    peers = {}
    arrays = peer_arrays(args_in)
    for name, make in (("numba", numba_peer), ("jax", jax_peer)):
        fn = make(arrays)
        if fn is None:
            print(f"  {name}: not installed, skipped")
            continue
        t_peer, _ = median_seconds(fn, repeat=max(3, args.repeat // 2))
        peers[name] = count / t_peer
        results[name] = {"median_s": t_peer, "valuations_per_s": count / t_peer}
        print(f"  {name:5s} peer (plain Black-76): {t_peer * 1e3:7.1f} ms  {count / t_peer / 1e6:8.1f} M valuations/s")
    best_peer = max(peers.values(), default=None)
    original = kernels.simd_target()
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
            t_out, _ = median_seconds(
                lambda buffer=buffer: kernels.revalue(**args_in, threads=args.threads, out=buffer), repeat=args.repeat
            )
            rate_out = count / t_out
            results[target] = {
                "median_s": t,
                "valuations_per_s": rate,
                "ratio": rate / ref_rate,
                "median_s_out": t_out,
                "valuations_per_s_out": rate_out,
                "ratio_out": rate_out / ref_rate,
                "max_rel_diff": err,
                "share_of_exp_ceiling": rate_out / exp_rate,
                "ratio_vs_best_peer": None if best_peer is None else rate_out / best_peer,
            }
            print(
                f"  kernel [{target:8s}]:     {t * 1e3:9.1f} ms  {rate / 1e6:8.1f} M valuations/s"
                f"  x{rate / ref_rate:5.1f} vs reference  (max diff {err:.1e} of price scale)"
            )
            print(
                f"    into a reused out=:  {t_out * 1e3:9.1f} ms  {rate_out / 1e6:8.1f} M valuations/s"
                f"  x{rate_out / ref_rate:5.1f}; {rate_out / exp_rate:.0%} of the exp ceiling"
                + ("" if best_peer is None else f"; x{rate_out / best_peer:.1f} the best peer")
            )
    finally:
        kernels.select_simd_target(original)
    path = record(
        "revalue",
        {"instruments": args.instruments, "scenarios": args.scenarios, "threads": args.threads, "results": results},
    )
    print(f"  recorded in {path}")


if __name__ == "__main__":
    main()
