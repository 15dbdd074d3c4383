"""``marginkernel margin``: margin a positions file on a model (docs/cli.md)."""

from __future__ import annotations

import argparse
import os
import sys
import time
from contextlib import ExitStack
from typing import Any

from ..model import presets


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def register(sub: Any) -> None:
    p = sub.add_parser("margin", help="margin a positions file")
    p.add_argument("positions", help="CSV or Parquet with columns account, instrument, quantity")
    p.add_argument("--model", required=True, help=f"a preset ({', '.join(presets())}) or a model TOML file")
    p.add_argument("--instruments", required=True, help="CSV or Parquet of instrument definitions")
    p.add_argument("--market", required=True, help="market snapshot, TOML or JSON")
    p.add_argument(
        "--collateral",
        help="collateral balances: CSV / Parquet (account, currency, amount) or "
        "TOML / JSON {account: {currency: amount}}; adds equity, margin ratio, liquidation",
    )
    p.add_argument("--mode", choices=["cross", "isolated"], help="override the model's margin mode")
    out = p.add_argument_group("output")
    out.add_argument("--json", action="store_true", help="machine-readable output (standard JSON, numbers as numbers)")
    out.add_argument("--output", "-o", metavar="FILE", help="write one row per account to FILE (.csv or .parquet)")
    out.add_argument("--sort", metavar="COLUMN", help="rank accounts by COLUMN (numbers largest first, names A-Z)")
    out.add_argument("--reverse", action="store_true", help="reverse the --sort order")
    out.add_argument("--top", type=_count, metavar="N", help="only the first N accounts (ranked by --sort, default im)")
    out.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    out.add_argument("--timings", action="store_true", help="print the time of each stage to stderr")
    run_opts = p.add_argument_group("execution")
    run_opts.add_argument("--threads", type=_positive, default=1, help="threads of the kernels (per process)")
    run_opts.add_argument(
        "--workers", type=_positive, metavar="N", help="margin on a local Dask cluster of N worker processes"
    )
    run_opts.add_argument(
        "--scheduler", metavar="ADDRESS", help="margin on the Dask cluster at ADDRESS (tcp://host:port)"
    )
    run_opts.add_argument("--partitions", type=_positive, metavar="K", help="split the accounts into K partitions")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..progress import TerminalProgress
    from ._output import check_output_path

    if args.workers and args.scheduler:
        raise ValueError("--workers and --scheduler: give one of them")
    if args.output:
        check_output_path(args.output)
    clock = _Clock(args.timings)
    with ExitStack() as stack:
        progress = stack.enter_context(TerminalProgress(quiet=args.quiet))
        engine, positions, collateral = _load(args, clock, progress)
        client = _client(args, stack) if (args.workers or args.scheduler) else None
        result = _margin(args, engine, positions, collateral=collateral, client=client, progress=progress)
        clock.lap("margin")
    _emit(args, result, engine)
    clock.lap("write")
    clock.report()
    return 0


def _load(args: argparse.Namespace, clock: _Clock, progress: Any) -> tuple[Any, Any, Any]:
    from ..engine import Engine
    from ..instruments import Instruments
    from ..model import MarginModel, load_model
    from ..progress import notify
    from ._io import check_file, read_collateral, read_market, read_table

    if args.model not in presets() and os.path.lexists(args.model):  # else load_model names the presets
        check_file(args.model, "model file")
    model = load_model(args.model)
    if not isinstance(model, MarginModel):
        raise ValueError(
            f"--model {args.model}: methodology {type(model).__name__} is not a scenario-grid model "
            "the margin command computes (see marginkernel.derive_pm2 for derive-pm2)"
        )
    instruments_frame = read_table(args.instruments, "instruments")
    market = read_market(args.market)
    positions = read_table(args.positions, "positions")
    collateral = read_collateral(args.collateral) if args.collateral else None
    clock.lap("read")
    instruments = Instruments.from_frame(instruments_frame)
    notify(progress, "revalue", 0, 1)
    engine = Engine(instruments, market, model, threads=args.threads)
    notify(progress, "revalue", 1, 1)
    clock.lap("resolve+revalue")
    return engine, positions, collateral


def _client(args: argparse.Namespace, stack: ExitStack) -> Any:
    import importlib

    try:
        dist: Any = importlib.import_module("distributed")
    except ImportError:
        raise ValueError("--workers / --scheduler need dask.distributed (pip install 'distributed')") from None
    if args.scheduler:
        try:
            return stack.enter_context(dist.Client(args.scheduler, timeout="10s"))
        except (OSError, TimeoutError) as exc:
            raise ValueError(f"--scheduler {args.scheduler}: cannot connect: {exc}") from None
    from ..distributed import local_cluster, max_local_workers

    if args.workers > max_local_workers():
        raise ValueError(f"--workers: at most {max_local_workers()} (4 per core) on this machine, got {args.workers}")
    cluster = stack.enter_context(local_cluster(args.workers))
    return stack.enter_context(dist.Client(cluster))


def _margin(
    args: argparse.Namespace, engine: Any, positions: Any, *, collateral: Any, client: Any, progress: Any
) -> Any:
    # Always in blocks of whole accounts (one block up to distributed.PARTITION_POSITIONS positions):
    # the same bits as one Engine.margin call, and a large book's temporaries stay small.
    from .. import distributed

    partitions = args.partitions
    if partitions is None and client is None and progress.enabled:  # blocks for a progress bar that moves
        partitions = max(1, min(100, len(positions) // 20_000))
    return distributed.margin(
        engine,
        positions,
        collateral=collateral,
        mode=args.mode,
        client=client,
        partitions=partitions,
        progress=progress if progress.enabled else None,
        pnl=False,
    )


def _emit(args: argparse.Namespace, result: Any, engine: Any) -> None:
    from ._output import result_json, select, table_text, totals, write_output

    rows = select(result, args.sort, args.top, args.reverse)
    if args.output:
        n = write_output(result, args.output, rows)
    if args.json:
        print(result_json(result, rows))
        return
    model = engine.model
    header = (
        f"model '{model.name}' ({model.netting} netting, {args.mode or model.mode} margin); "
        f"amounts in {result.currency}"
    )
    if args.output and args.sort is None and args.top is None:
        tot = totals(result)
        print(f"{header}\nwrote {n:,} accounts to {args.output}; total IM {tot['im']:,.2f}, MM {tot['mm']:,.2f}")
        return
    shown = "" if len(rows) == len(result.accounts) else f"; {len(rows):,} of {len(result.accounts):,} accounts shown"
    print(f"{header}{shown}\n")
    print(table_text(result, rows))


class _Clock:
    """Wall time per stage, printed to stderr with ``--timings``."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.laps: list[tuple[str, float]] = []
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps.append((name, now - self._last))
        self._last = now

    def report(self) -> None:
        if self.enabled:
            parts = ", ".join(f"{name} {sec * 1e3:.1f} ms" for name, sec in self.laps)
            print(f"marginkernel: timings: {parts}", file=sys.stderr)
