"""Margin a book in partitions of whole accounts: locally in blocks (with progress), or on Dask.

:func:`margin` splits the accounts of a book into partitions (each account whole in one partition,
partitions in the book's order of first appearance), margins each with
:meth:`marginkernel.Engine.margin` and concatenates the results. With a ``dask.distributed``
client, the engine -- with its risk arrays, revalued once on the client -- is broadcast to every
worker (``client.scatter(engine, broadcast=True)``), the partitions are scattered, and the workers
margin them; no worker revalues anything.

The result is bitwise identical to ``engine.margin(positions, accounts, collateral=..., mode=...)``
in one process: every quantity of an account (its positions' aggregation, netting, reductions,
add-ons, collateral) is computed from that account's rows alone, in the same order, whichever
partition it is in. The test suite checks this with exact comparison on a Dask LocalCluster.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from .engine import Book, Engine, MarginResult
from .progress import ProgressCallback, notify
from .validation import integer

#: positions per partition when the number of partitions is not given
PARTITION_POSITIONS = 250_000

#: Environment for Dask worker processes (set before they start; see :func:`local_cluster`). Dask
#: starts workers with ``MALLOC_TRIM_THRESHOLD_`` set, which also freezes glibc's mmap threshold at
#: 128 KiB: every array above it is then mapped afresh and faulted in page by page, and a worker
#: margins a partition about 1.7x slower than the client does. 32 MiB is where glibc's own dynamic
#: threshold stops; the trim setting still returns the heap's free top to the OS.
WORKER_ENVIRON = {"MALLOC_MMAP_THRESHOLD_": str(32 << 20)}


@dataclasses.dataclass(frozen=True, eq=False)
class Partition:
    """The positions of some whole accounts, and what else the engine needs for them."""

    positions: Any  # DataFrame rows or a Book
    rows: np.ndarray | None  # their row numbers in the caller's table (None for a Book)
    accounts: list[Any] | None  # accounts without positions (last partition only)
    collateral: Any  # collateral of these accounts, same type as given, or None
    n_accounts: int


def margin(
    engine: Engine,
    positions: Any,
    accounts: Iterable[Any] | None = None,
    *,
    collateral: Any = None,
    mode: str | None = None,
    client: Any = None,
    partitions: int | None = None,
    progress: ProgressCallback | None = None,
    pnl: bool = True,
) -> MarginResult:
    """Margin ``positions`` on ``engine`` in partitions of whole accounts; see the module's notes.

    ``positions``: a DataFrame, records, a :class:`marginkernel.Book`, a ``pyarrow.Table`` (or
    any object with the Arrow PyCapsule stream interface, e.g. a polars DataFrame), or a Dask
    DataFrame whose partitions each hold whole accounts (needs ``client``; the partitions are read
    and margined on the workers, see :mod:`marginkernel._dask_frame`).
    ``client``: a ``dask.distributed.Client``, or None to run in this process, one partition after
    the other. ``partitions``: how many (default: one per :data:`PARTITION_POSITIONS` positions, at
    least two per worker with a client). ``progress``: a callback (:mod:`marginkernel.progress`),
    called with stage ``"margin"`` (accounts done) locally or ``"partitions"`` on Dask.
    ``pnl=False`` leaves ``result.pnl`` empty (shape ``(0, units, scenarios)``), which saves its
    memory and, on Dask, its transfer (accounts x units x scenarios doubles).
    """
    if not isinstance(engine, Engine):
        raise TypeError(f"engine: expected an Engine, got {type(engine).__name__}")
    if _is_dask_frame(positions):
        from ._dask_frame import margin_frame

        return margin_frame(
            engine, positions, accounts, collateral=collateral, client=client, mode=mode, pnl=pnl, progress=progress
        )
    positions = _as_positions(positions)
    n_pos = len(positions.quantity) if isinstance(positions, Book) else len(positions)
    if partitions is None:
        partitions = max(1, math.ceil(n_pos / PARTITION_POSITIONS))
        if client is not None:
            partitions = max(partitions, 2 * _n_workers(client))
    partitions = integer(partitions, "partitions", lo=1)
    if client is None and partitions == 1 and progress is None:  # one block: nothing to cut or count
        whole = Partition(positions, None, None if accounts is None else list(accounts), collateral, 0)
        return concat([_margin_part(engine, whole, mode, pnl)], pnl)
    parts = split(positions, accounts, collateral, partitions)
    if client is None:
        results = _run_local(engine, parts, mode=mode, pnl=pnl, progress=progress)
    else:
        results = _run_dask(engine, parts, mode=mode, pnl=pnl, progress=progress, client=client)
    return concat(results, pnl)


def max_local_workers() -> int:
    """The most worker processes :func:`local_cluster` starts: 4 per core of this machine (more
    only share the cores, and a mistyped count would start thousands of processes)."""
    return 4 * (os.cpu_count() or 1)


def local_cluster(n_workers: int, **options: Any) -> Any:
    """A ``distributed.LocalCluster`` of ``n_workers`` worker processes (1 to
    :func:`max_local_workers`), one thread each, started with :data:`WORKER_ENVIRON`; ``options`` go
    to ``LocalCluster`` (e.g. ``memory_limit=0``). Workers started otherwise (``dask worker``) want
    the same variables in their environment."""
    import importlib
    import logging

    import dask

    n_workers = integer(n_workers, "n_workers", lo=1, hi=max_local_workers())
    cluster_type: Any = importlib.import_module("distributed").LocalCluster  # untyped
    environ = {**dask.config.get("distributed.nanny.pre-spawn-environ", default={}), **WORKER_ENVIRON}
    settings = {"threads_per_worker": 1, "dashboard_address": None, "silence_logs": logging.ERROR} | options
    with dask.config.set({"distributed.nanny.pre-spawn-environ": environ}):
        return cluster_type(n_workers=n_workers, processes=True, **settings)


def _as_positions(positions: Any) -> Any:
    if isinstance(positions, (pd.DataFrame, Book)):
        return positions
    if hasattr(positions, "__arrow_c_stream__") or type(positions).__module__.startswith("pyarrow"):
        import pyarrow as pa  # an Arrow table, or e.g. a polars DataFrame: columns as they are typed

        return (positions if isinstance(positions, pa.Table) else pa.table(positions)).to_pandas()
    if isinstance(positions, Mapping):
        return pd.DataFrame(positions)
    if isinstance(positions, (str, bytes)) or not isinstance(positions, Iterable):
        raise TypeError(
            f"positions: expected a DataFrame, records, an Arrow table or a Book, got {type(positions).__name__}"
        )
    return pd.DataFrame(list(positions))


def _is_dask_frame(value: Any) -> bool:
    return type(value).__module__.split(".")[0] in ("dask", "dask_expr") and hasattr(value, "to_delayed")


def _n_workers(client: Any) -> int:
    try:
        return max(1, len(client.scheduler_info().get("workers", {})))
    except Exception:  # a client that cannot say: assume one worker
        return 1


# -- partitioning ---------------------------------------------------------------------------------


def split(positions: Any, accounts: Iterable[Any] | None, collateral: Any, n: int) -> list[Partition]:
    """At most ``n`` partitions of whole accounts with about the same number of positions each."""
    if isinstance(positions, Book):
        names = list(positions.accounts)
        counts: np.ndarray = np.diff(np.asarray(positions.account_start, dtype=np.int64))
        codes: np.ndarray | None = None
    else:
        if "account" not in positions.columns or len(positions) == 0:
            return [Partition(positions, None, None if accounts is None else list(accounts), collateral, 0)]
        factorized, uniques = pd.factorize(positions["account"])
        codes = np.asarray(factorized, dtype=np.int64)
        if (codes < 0).any():  # a missing account: the engine names the row
            return [Partition(positions, None, None if accounts is None else list(accounts), collateral, len(uniques))]
        names = list(uniques)
        counts = np.bincount(codes, minlength=len(names))
    n_acc = len(names)
    n = max(1, min(n, n_acc))
    first_row = np.zeros(n_acc + 1, dtype=np.int64)  # of each account, in account order
    np.cumsum(counts, out=first_row[1:])
    total = max(1, int(first_row[-1]))
    part_of_account = np.minimum((first_row[:-1] * n) // total, n - 1)
    bounds = np.searchsorted(part_of_account, np.arange(n + 1), side="left")
    held: set[Any] = set(names) if accounts is not None or collateral is not None else set()  # if used
    extra = None if accounts is None else [a for a in accounts if a not in held]
    # Each row's partition, then the rows in partition order, in one stable sort (a radix sort, in
    # O(rows), for up to 65,536 partitions), rather than one scan of every row per partition.
    key_type = np.min_scalar_type(n - 1)
    order = None if codes is None else np.argsort(part_of_account[codes].astype(key_type), kind="stable")
    row_start = first_row[bounds]
    book_start = np.asarray(positions.account_start, dtype=np.int64) if order is None else first_row
    out = []
    for p in range(n):
        a0, a1 = int(bounds[p]), int(bounds[p + 1])
        if a1 == a0:
            continue
        last = a1 == n_acc
        coll = None
        if collateral is not None:
            coll = _collateral_subset(collateral, _Keep(set(names[a0:a1]), held if last else None))
        if order is None:
            s0, s1 = int(book_start[a0]), int(book_start[a1])
            part = Book(
                np.asarray(positions.accounts)[a0:a1],
                book_start[a0 : a1 + 1] - s0,
                positions.instrument[s0:s1],
                positions.quantity[s0:s1],
            )
            rows = None
        else:
            rows = order[row_start[p] : row_start[p + 1]]
            contiguous = rows[-1] - rows[0] == len(rows) - 1  # ascending: the rows of one block
            part = positions.iloc[int(rows[0]) : int(rows[-1]) + 1] if contiguous else positions.iloc[rows]
        out.append(Partition(part, rows, extra if last else None, coll, a1 - a0))
    if not out:  # no accounts with positions: one partition, as given
        return [Partition(positions, None, None if accounts is None else list(accounts), collateral, 0)]
    return out


class _Keep:
    """Which collateral rows go with a partition: its accounts, and for the last partition also
    the accounts that hold no positions (``held`` is the set of accounts with positions)."""

    def __init__(self, mine: set[Any], held: set[Any] | None) -> None:
        self.mine, self.held = mine, held

    def __call__(self, account: Any) -> bool:
        return account in self.mine or (self.held is not None and account not in self.held)


def _collateral_subset(collateral: Any, keep: Any) -> Any:
    if isinstance(collateral, Mapping):
        return {a: v for a, v in collateral.items() if keep(a)}
    frame = collateral if isinstance(collateral, pd.DataFrame) else pd.DataFrame(list(collateral))
    if "account" not in frame.columns:
        return frame  # the engine reports the missing column
    mask = np.fromiter((keep(a) for a in frame["account"]), dtype=bool, count=len(frame))
    return frame[mask]


def concat(results: list[MarginResult], pnl: bool = True) -> MarginResult:
    """One result from the results of consecutive partitions (accounts in partition order)."""
    first = results[0]
    if len(results) == 1 and pnl:
        return first
    accounts = first.accounts
    if len(results) > 1:
        accounts = _stack([r.accounts for r in results])
        # the index as the engine builds it: pd.Index of the names' object array (concat would infer int64)
        names = np.concatenate([r.accounts.index.to_numpy(dtype=object) for r in results])
        accounts.index = pd.Index(names, name=first.accounts.index.name)
    units = [r.by_unit for r in results if len(r.by_unit)] or [first.by_unit]
    by_unit = _stack(units).reset_index(drop=True) if len(units) > 1 else units[0]
    shape = first.pnl.shape[1:]
    arrays = np.concatenate([r.pnl for r in results], axis=0) if pnl else np.zeros((0, *shape))
    return dataclasses.replace(first, accounts=accounts, by_unit=by_unit, pnl=arrays)


def _stack(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Frames one under the other. A column whose dtype differs between them (a frame of accounts
    without positions has all-missing text columns, typed object) takes the first dtype that is not
    object, as one engine call over all the rows would have typed it."""
    out = pd.concat(frames)
    for col in out.columns:
        dtypes = [f[col].dtype for f in frames]
        if len({str(d) for d in dtypes}) > 1:
            target = next((d for d in dtypes if str(d) != "object"), None)
            if target is not None:
                out[col] = out[col].astype(target)
    return out


def _margin_part(engine: Engine, part: Partition, mode: str | None, pnl: bool) -> MarginResult:
    result = engine.margin(part.positions, part.accounts, collateral=part.collateral, mode=mode)
    if not pnl:
        result = dataclasses.replace(result, pnl=np.zeros((0, *result.pnl.shape[1:])))
    return result


_ROW = re.compile(r"\bpositions row (\d+)")


def _global_rows(exc: Exception, part: Partition) -> Exception:
    """The error with partition-local row numbers replaced by the caller's row numbers."""
    if part.rows is None or not isinstance(exc, (ValueError, TypeError)):
        return exc
    rows = part.rows
    text = _ROW.sub(
        lambda m: f"positions row {rows[int(m.group(1))]}" if int(m.group(1)) < len(rows) else m.group(0), str(exc)
    )
    new = type(exc)(text) if type(exc) in (ValueError, TypeError) else exc
    return new


def _run_local(
    engine: Engine, parts: list[Partition], *, mode: str | None, pnl: bool, progress: ProgressCallback | None
) -> list[MarginResult]:
    total = sum(p.n_accounts for p in parts)
    notify(progress, "margin", 0, total)
    done, results = 0, []
    for part in parts:
        try:
            results.append(_margin_part(engine, part, mode, pnl))
        except (ValueError, TypeError) as exc:
            raise _global_rows(exc, part) from None
        done += part.n_accounts
        notify(progress, "margin", done, total)
    return results


def _run_dask(
    engine: Engine,
    parts: list[Partition],
    *,
    mode: str | None,
    pnl: bool,
    progress: ProgressCallback | None,
    client: Any,
) -> list[MarginResult]:
    """Partitions go out a few at a time (two per worker in flight, the next one sent as one comes
    back), so that a worker holds a couple of partitions, not the whole book."""
    import importlib

    as_completed: Any = importlib.import_module("distributed").as_completed
    token = uuid.uuid4().hex[:12]
    shared = client.scatter(engine, broadcast=True, hash=False)  # the risk arrays, once per worker
    window = max(2, 2 * _n_workers(client))
    results: list[MarginResult | None] = [None] * len(parts)
    flight: dict[str, tuple[int, Any, Any]] = {}  # task key -> (partition, task future, data future)
    queue = iter(range(len(parts)))
    done_set = as_completed()

    def send() -> None:
        k = next(queue, None)
        if k is None:
            return
        data = client.scatter(dataclasses.replace(parts[k], rows=None), hash=False)  # rows: for errors, here
        task = client.submit(_margin_part, shared, data, mode, pnl, key=f"marginkernel-{token}-{k}", pure=False)
        flight[task.key] = (k, task, data)
        done_set.add(task)

    notify(progress, "partitions", 0, len(parts))
    try:
        for _ in range(window):
            send()
        for done, future in enumerate(done_set, start=1):
            k, task, data = flight.pop(future.key)
            try:
                results[k] = future.result()
            except (ValueError, TypeError) as exc:
                raise _global_rows(exc, parts[k]) from None
            finally:
                task.release()
                data.release()
            send()
            notify(progress, "partitions", done, len(parts))
    finally:
        for _, task, data in flight.values():
            task.release()
            data.release()
        shared.release()
    return [r for r in results if r is not None]


__all__ = [
    "PARTITION_POSITIONS",
    "WORKER_ENVIRON",
    "Partition",
    "concat",
    "local_cluster",
    "margin",
    "max_local_workers",
    "split",
]
