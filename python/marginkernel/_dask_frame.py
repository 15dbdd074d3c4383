"""Positions as a Dask DataFrame: margined partition by partition on the workers.

Used by :func:`marginkernel.distributed.margin` when ``positions`` is a Dask DataFrame. The client
never holds the positions: each worker builds its partition (e.g. from Parquet with
``dask.dataframe.read_parquet``) and margins it with the broadcast engine.

Requirement: every account's rows are in one partition (after ``read_parquet`` of files written
per account range, or ``ddf.shuffle("account")``). It is checked on the results: an account that
comes back from two partitions is an error naming it. Accounts are then ordered as one
``Engine.margin`` call on the partitions concatenated in order would order them, and every number
is bitwise identical to that call (docs/distributed.md).

Collateral (broadcast with the engine) goes to each partition filtered to the partition's accounts;
accounts of ``accounts`` or ``collateral`` without positions are margined last, on the client.
Errors name the partition and its local row (``partition 3: positions row 17: ...``).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from typing import Any

import pandas as pd

from .distributed import _collateral_subset, _Keep, concat
from .engine import Engine, MarginResult
from .progress import ProgressCallback, notify


def _margin_partition(
    engine: Engine, frame: pd.DataFrame, collateral: Any, k: int, *, mode: str | None, pnl: bool
) -> MarginResult | None:
    from .distributed import Partition, _margin_part

    if len(frame) == 0:
        return None
    coll = None
    if collateral is not None:
        coll = (
            _collateral_subset(collateral, _Keep(set(pd.unique(frame["account"])), None))
            if "account" in frame.columns
            else collateral
        )
    try:
        return _margin_part(engine, Partition(frame, None, None, coll, 0), mode, pnl)
    except (ValueError, TypeError) as exc:
        raise type(exc)(f"partition {k}: {exc}") from None


def margin_frame(
    engine: Engine,
    frame: Any,
    accounts: Iterable[Any] | None = None,
    *,
    collateral: Any = None,
    mode: str | None,
    pnl: bool,
    progress: ProgressCallback | None,
    client: Any,
) -> MarginResult:
    """Margin a Dask DataFrame of positions on ``client`` (see the module's notes)."""
    if client is None:
        raise ValueError("positions: a Dask DataFrame is margined on a Dask cluster; pass client=")
    dask = importlib.import_module("dask")
    as_completed: Any = importlib.import_module("distributed").as_completed
    shared = client.scatter(engine, broadcast=True, hash=False)
    coll = None if collateral is None else client.scatter(collateral, broadcast=True, hash=False)
    task = dask.delayed(_margin_partition, pure=False)
    parts = frame.to_delayed()
    futures = client.compute([task(shared, part, coll, k, mode=mode, pnl=pnl) for k, part in enumerate(parts)])
    index = {f.key: k for k, f in enumerate(futures)}
    results: list[MarginResult | None] = [None] * len(futures)
    notify(progress, "partitions", 0, len(futures))
    try:
        for done, future in enumerate(as_completed(futures), start=1):
            results[index[future.key]] = future.result()
            notify(progress, "partitions", done, len(futures))
    finally:
        for f in [*futures, shared, *([coll] if coll is not None else [])]:
            f.release()
    got = [r for r in results if r is not None]
    _check_whole_accounts(got)
    held = {a for r in got for a in r.accounts.index}
    rest = _without_positions(engine, held, accounts, collateral, mode=mode, pnl=pnl)
    if rest is not None:
        got.append(rest)
    if not got:
        raise ValueError("positions: empty book (no positions and no accounts given)")
    return concat(got, pnl)


def _check_whole_accounts(results: list[MarginResult]) -> None:
    seen: dict[Any, int] = {}
    for k, r in enumerate(results):
        for name in r.accounts.index:
            if name in seen:
                raise ValueError(
                    f"positions: account {name!r} is in more than one partition of the Dask DataFrame "
                    "(partitions must hold whole accounts, e.g. ddf.shuffle('account'))"
                )
            seen[name] = k


def _without_positions(
    engine: Engine, held: set[Any], accounts: Iterable[Any] | None, collateral: Any, *, mode: str | None, pnl: bool
) -> MarginResult | None:
    """The accounts of ``accounts`` and ``collateral`` that hold no position, margined here."""
    from .distributed import Partition, _margin_part

    extra = [a for a in (accounts or []) if a not in held]
    coll = None if collateral is None else _collateral_subset(collateral, _Keep(set(), held))
    n_coll = 0 if coll is None else len(coll)
    if not extra and n_coll == 0:
        return None
    empty = pd.DataFrame(
        {
            "account": pd.Series([], dtype=object),
            "instrument": pd.Series([], dtype=object),
            "quantity": pd.Series([], dtype=float),
        }
    )
    return _margin_part(engine, Partition(empty, None, extra, coll, 0), mode, pnl)
