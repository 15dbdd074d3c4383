"""Margin beyond one process: ``marginkernel.distributed.margin`` on a Dask LocalCluster (issue 12.3).

Default: 1,000,000 accounts / 20,000,000 positions over the 627 instruments of
bench/synthetic_book.py on deribit-pm. Accounts are integers and instruments a categorical column
(the lean in-memory form of a Parquet dictionary column). Printed, and recorded in
bench/results/dask.json:

* the single-process runs (the baselines): one ``Engine.margin`` call, and
  ``distributed.margin`` without a client (blocks of whole accounts, as the CLI runs) -- wall time;
* for each cluster size (default 1 and 2 worker processes, one thread each): wall time of
  ``distributed.margin(engine, positions, client=client, pnl=False)`` including scattering the
  partitions, the peak resident memory of each worker (VmHWM), the speed-up over one worker
  and the ratio to the single-process run;
* whether the results are bitwise identical to the single-process run (they must be).

    python bench/bench_dask.py [--accounts 1000000] [--positions 20000000] [--workers 1,2] [--skip-single]
"""

from __future__ import annotations

import argparse
import os
import resource
import time

from benchutil import record  # first: pins BLAS to one thread before NumPy loads


def build(n_accounts: int, n_positions: int):
    import numpy as np
    import pandas as pd

    import marginkernel as mk
    import synthetic_book

    inst_frame = synthetic_book.instruments()
    market = mk.Market.from_dict(__import__("tomllib").loads(synthetic_book.market_toml(inst_frame)))
    engine = mk.Engine(mk.Instruments.from_frame(inst_frame), market, mk.load_model("deribit-pm"))
    rng = np.random.default_rng(3)
    per = rng.multinomial(n_positions - n_accounts, np.full(n_accounts, 1.0 / n_accounts)) + 1
    pick = rng.integers(0, len(inst_frame), n_positions).astype(np.int32)
    linear = inst_frame["kind"].isin(["future", "perpetual"]).to_numpy()[pick]
    size = rng.integers(1, 51, n_positions) * rng.choice([-1.0, 1.0], n_positions)
    positions = pd.DataFrame(
        {
            "account": np.repeat(np.arange(n_accounts, dtype=np.int64), per),
            "instrument": pd.Categorical.from_codes(pick, categories=pd.Index(inst_frame["id"], dtype=object)),
            "quantity": np.where(linear, size * 1_000.0, size),
        }
    )
    return engine, positions


def peak_rss_mb() -> float:
    """Peak resident memory of this process: VmHWM (ru_maxrss survives fork + exec on Linux, so a
    spawned worker would report its parent's peak)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return float(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def same_result(result, single) -> bool:
    import pandas as pd

    try:
        pd.testing.assert_frame_equal(result.accounts, single.accounts, check_exact=True)
        pd.testing.assert_frame_equal(result.by_unit, single.by_unit, check_exact=True)
    except AssertionError:
        return False
    return True


def in_blocks(engine, positions, single) -> tuple[float, bool]:
    """The same book in one process, in blocks of whole accounts (what the CLI runs): its arrays
    stay small, which a whole-book Engine.margin call's do not."""
    from marginkernel import distributed

    t0 = time.perf_counter()
    result = distributed.margin(engine, positions, pnl=False)
    return time.perf_counter() - t0, same_result(result, single)


def on_cluster(engine, positions, n_workers: int, partitions: int | None):
    from distributed import Client

    from marginkernel import distributed

    with (
        distributed.local_cluster(n_workers, memory_limit=0) as cluster,
        Client(cluster) as client,
    ):
        distributed.margin(engine, positions.iloc[:1000], client=client)  # workers import marginkernel
        t0 = time.perf_counter()
        result = distributed.margin(engine, positions, client=client, partitions=partitions, pnl=False)
        wall = time.perf_counter() - t0
        peaks = sorted(client.run(peak_rss_mb).values())
    return result, wall, peaks


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accounts", type=int, default=1_000_000)
    ap.add_argument("--positions", type=int, default=20_000_000)
    ap.add_argument("--workers", default="1,2", help="cluster sizes, comma-separated")
    ap.add_argument("--partitions", type=int, default=None, help="default: one per 250,000 positions")
    ap.add_argument("--skip-single", action="store_true", help="skip the single-process baseline")
    args = ap.parse_args()
    t0 = time.perf_counter()
    engine, positions = build(args.accounts, args.positions)
    print(
        f"dask: {args.accounts:,} accounts / {args.positions:,} positions / {len(engine.instruments)} instruments, "
        f"deribit-pm (book built in {time.perf_counter() - t0:.1f} s)"
    )
    single = None
    payload: dict = {"accounts": args.accounts, "positions": args.positions, "clusters": {}}
    if not args.skip_single:
        t0 = time.perf_counter()
        single = engine.margin(positions)
        t_single = time.perf_counter() - t0
        payload["single_process_s"] = t_single
        payload["single_process_driver_peak_rss_mb"] = peak_rss_mb()
        print(f"  single process (Engine.margin): {t_single:7.2f} s  (driver peak RSS {peak_rss_mb():,.0f} MB)")
        t_blocks, same_blocks = in_blocks(engine, positions, single)
        payload["single_process_blocks_s"] = t_blocks
        print(f"  single process in blocks (distributed.margin, no client): {t_blocks:7.2f} s, same: {same_blocks}")
    base = None
    for n in (int(w) for w in args.workers.split(",")):
        result, wall, peaks = on_cluster(engine, positions, n, args.partitions)
        base = base or wall
        same = None if single is None else same_result(result, single)
        entry = {
            "wall_s": wall,
            "worker_peak_rss_mb": peaks,
            "speedup_vs_1_worker": base / wall,
            "bitwise_identical": same,
        }
        if single is not None:
            entry["ratio_vs_single_process"] = payload["single_process_s"] / wall
        payload["clusters"][str(n)] = entry
        extra = "" if single is None else f", x{entry['ratio_vs_single_process']:.2f} vs one process, identical: {same}"
        print(
            f"  LocalCluster {n} worker(s): {wall:7.2f} s  x{base / wall:.2f} vs 1 worker{extra}; "
            f"peak RSS per worker {', '.join(f'{p:,.0f}' for p in peaks)} MB"
        )
    payload["load_average_1_5_15_min"] = list(os.getloadavg())  # the machine is shared: say how busy it was
    path = record("dask", payload)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"  load average (1, 5, 15 min) at the end: {load} on {os.cpu_count()} cores")
    print(f"  recorded in {path}")


if __name__ == "__main__":
    main()
