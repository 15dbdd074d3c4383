"""Netting throughput: the C++ kernel vs scipy.sparse (Q @ R) on the same inputs.

10k accounts x 200k positions x 1,000 scenarios by default over 2,000 instruments of one risk unit.

    python bench/bench_net.py [--accounts 10000] [--positions 200000] [--scenarios 1000] [--threads 1]

Records bench/results/net.json; other scenario or instrument counts go to net_<scenarios>.json and
net_i<instruments>.json (1,024 scenarios put the rows of R 4 KiB apart, which packing the tiles is
for; 8,000 instruments make a tile narrower than a register block, as 2,000 do on a 512 KiB L2).

    MARGINKERNEL_L2_BYTES=524288 python bench/bench_net.py

runs the tiles a 512 KiB L2 gives (AMD EPYC's; 16 scenarios over 2,000 instruments) on this machine's
caches, and records net_l2_<bytes>.json: the tile a small-L2 machine nets with, not its speed.
"""

from __future__ import annotations

import argparse
import os

import numpy as np
import scipy.sparse as sp

import benchutil  # noqa: F401  (first: pins BLAS to one thread before NumPy loads)
from benchutil import (
    aligned_empty,
    cache_sizes,
    fresh_write_bandwidth,
    interleaved_medians,
    mul_add_throughput,
    read_bandwidth,
    record,
    write_bandwidth,
)
from marginkernel import kernels


def net_tile_scenarios(args: argparse.Namespace, caches: dict[str, int], lanes: int) -> int:
    """The kernel's scenario tile (cpp/src/kernels_net-inl.hpp, net_tile): the most whole register
    blocks of 8 SIMD packets whose R slice fits half the L2 (1 MiB when the OS does not say); if no
    block fits, the most whole packets that fit when that is at least 16 scenarios, else one block;
    at most every scenario."""
    block = 8 * lanes
    fit = caches.get("L2", 1 << 20) // 2 // (max(args.instruments, 1) * 8)
    if fit >= block:
        tile = fit // block * block
    elif fit // lanes * lanes >= 16:
        tile = fit // lanes * lanes
    else:
        tile = block
    return min(tile, args.scenarios)


def time_interleaved(args: argparse.Namespace, q, risk, inputs: tuple, expected: np.ndarray) -> tuple[dict, dict]:
    """Medians of scipy.sparse and of the kernel on every SIMD target, into a new array and into a
    reused ``out=`` (what an engine re-netting every update does), timed in rounds run in turn; and
    each target's largest difference from scipy.sparse."""
    original = kernels.simd_target()
    fns: dict = {"scipy": lambda: q @ risk}
    errors: dict = {}
    buffer = aligned_empty((args.accounts, 1, args.scenarios))

    def on(target: str, out: np.ndarray | None):
        def run():
            kernels.select_simd_target(target)
            return kernels.net(*inputs, threads=args.threads, out=out)

        return run

    try:
        for target in kernels.available_simd_targets():
            errors[target] = float(np.max(np.abs(on(target, None)()[:, 0, :] - expected)))
            fns[(target, "new")] = on(target, None)
            fns[(target, "out")] = on(target, buffer)
        return interleaved_medians(fns, repeat=args.repeat), errors
    finally:
        kernels.select_simd_target(original)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accounts", type=int, default=10_000)
    ap.add_argument("--positions", type=int, default=200_000)
    ap.add_argument("--scenarios", type=int, default=1_000)
    ap.add_argument("--instruments", type=int, default=2_000)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    rng = np.random.default_rng(2)
    # R laid out as kernels.revalue returns it: C-contiguous, starting on a 64-byte boundary.
    risk = aligned_empty((args.instruments, args.scenarios))
    risk[...] = rng.standard_normal((args.instruments, args.scenarios))
    unit = np.zeros(args.instruments, dtype=np.int32)
    account = np.sort(rng.integers(0, args.accounts, args.positions))
    instrument = rng.integers(0, args.instruments, args.positions).astype(np.int32)
    quantity = rng.uniform(-10, 10, args.positions)
    start = np.zeros(args.accounts + 1, dtype=np.int64)
    np.cumsum(np.bincount(account, minlength=args.accounts), out=start[1:])
    q = sp.csr_matrix((quantity, instrument, start), shape=(args.accounts, args.instruments))

    # The ceilings: each position streams its row slice of R from the cache level that holds one
    # scenario tile of R (every instrument) and multiplies and adds it into its account's sums, and
    # P is written once to memory. Bound = the slower of R bytes / read bandwidth over the tile and
    # position-scenarios / multiply-add throughput (operands in L1), + P bytes / write bandwidth
    # over P: into a reused out= the bandwidth of memory already faulted in, into a new array that
    # of new memory (the OS faults in and clears every page first, as it does for scipy.sparse's).
    lanes = {"avx512": 8, "avx2": 4, "baseline": 2}
    r_bytes = args.positions * args.scenarios * 8
    p_bytes = args.accounts * args.scenarios * 8
    write_bw = write_bandwidth(p_bytes)
    fresh_bw = fresh_write_bandwidth(p_bytes)
    caches = cache_sizes()
    print(
        f"ceilings: caches {caches}, memory write {write_bw / 1e9:.1f} GB/s, into new memory "
        f"{fresh_bw / 1e9:.1f} GB/s (over {p_bytes >> 20} MB)"
    )
    print(
        f"net {args.accounts} accounts x {args.positions} positions x {args.scenarios} scenarios "
        f"({args.instruments} instruments), threads={args.threads}"
    )
    expected = q @ risk
    inputs = (risk, unit, 1, start, instrument, quantity)
    medians, errors = time_interleaved(args, q, risk, inputs, expected)
    ref_t = medians["scipy"]
    print(f"  scipy.sparse Q @ R:  {ref_t * 1e3:8.1f} ms  (every time below is a median of rounds run in turn)")
    results: dict = {"scipy_sparse": {"median_s": ref_t}}
    original = kernels.simd_target()
    try:
        for target in kernels.available_simd_targets():
            kernels.select_simd_target(target)
            t, t_out = medians[(target, "new")], medians[(target, "out")]
            tile_scenarios = net_tile_scenarios(args, caches, lanes.get(target, 2))
            tile = args.instruments * tile_scenarios * 8
            read_bw = read_bandwidth(tile)
            mul_adds = mul_add_throughput()
            slices_s, arithmetic_s = r_bytes / read_bw, args.positions * args.scenarios / mul_adds
            sums = max(slices_s, arithmetic_s)
            bound = sums + p_bytes / write_bw
            bound_new = sums + p_bytes / fresh_bw
            results[target] = {
                "median_s": t,
                "ratio": ref_t / t,
                "median_s_out": t_out,
                "ratio_out": ref_t / t_out,
                "max_abs_diff": errors[target],
                "tile_bytes": tile,
                "tile_scenarios": tile_scenarios,
                "read_bandwidth_tile": read_bw,
                "mul_adds_per_s": mul_adds,
                "write_bandwidth_memory": write_bw,
                "write_bandwidth_new_memory": fresh_bw,
                "bound_s": bound_new,
                "share_of_bound": bound_new / t,
                "bound_out_s": bound,
                "share_of_bound_out": bound / t_out,
            }
            print(
                f"  kernel [{target:8s}]:  {t * 1e3:8.1f} ms  x{ref_t / t:4.2f} vs scipy.sparse  "
                f"(max diff {errors[target]:.1e})"
            )
            print(f"    into a reused out=: {t_out * 1e3:8.1f} ms  x{ref_t / t_out:4.2f}")
            print(
                f"    bound {bound_new * 1e3:6.1f} ms into a new array, {bound * 1e3:.1f} ms into out= (R slices "
                f"{r_bytes >> 20} MB at {read_bw / 1e9:.1f} GB/s over a {tile >> 10} KB tile of {tile_scenarios} "
                f"scenarios: {slices_s * 1e3:.1f} ms, or {args.positions * args.scenarios / 1e6:.0f} M "
                f"multiply-adds at {mul_adds / 1e9:.1f} G/s: {arithmetic_s * 1e3:.1f} "
                f"ms; the slower counts; P {p_bytes >> 20} MB written): kernel at {bound_new / t:.0%} of it, "
                f"{bound / t_out:.0%} into out="
            )
    finally:
        kernels.select_simd_target(original)
    name = "net" + ("" if args.scenarios == 1000 else f"_{args.scenarios}")
    name += "" if args.instruments == 2000 else f"_i{args.instruments}"
    name += f"_l2_{os.environ['MARGINKERNEL_L2_BYTES']}" if "MARGINKERNEL_L2_BYTES" in os.environ else ""
    path = record(
        name,
        {
            "accounts": args.accounts,
            "positions": args.positions,
            "scenarios": args.scenarios,
            "instruments": args.instruments,
            "threads": args.threads,
            "results": results,
        },
    )
    print(f"  recorded in {path}")


if __name__ == "__main__":
    main()
