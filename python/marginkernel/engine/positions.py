"""Position parsing: a positions table (and collateral) in, validated and aggregated positions out.

Every step is vectorised (no Python loop over rows): instrument ids are looked up with a pandas
index, accounts factorised, and repeated (account, instrument, isolation) rows summed with one
``np.unique`` over an integer key; rows that net to zero drop out. The aggregated rows come out
sorted by account, then instrument, so that the accounts' compressed-row offsets follow without
another sort.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..keyed import keyed_value
from ..market import collateral_frame
from ..tables import as_frame

if TYPE_CHECKING:
    from .core import Engine

MODE_COLUMN = "margin_mode"
UPNL_COLUMN = "unrealised_pnl"
MODES = ("cross", "isolated")


@dataclass(frozen=True, eq=False)
class Book:
    """Positions in compressed rows by account (see :func:`marginkernel.kernels.net`)."""

    accounts: np.ndarray  # account names, in order of first appearance
    account_start: np.ndarray  # int64 (A + 1,)
    instrument: np.ndarray  # int32 row into the engine's instruments
    quantity: np.ndarray  # float64


@dataclass(frozen=True, eq=False)
class Positions:
    """Validated, aggregated positions: one row per (account, instrument, isolation flag), sorted by
    account then instrument, quantity != 0."""

    names: np.ndarray  # account names (object), in order of first appearance
    account: np.ndarray  # int64 per row
    instrument: np.ndarray  # int64 per row
    quantity: np.ndarray  # float64 per row, != 0
    isolated: np.ndarray  # bool per row
    upnl_usd: np.ndarray | None  # per account, USD
    collateral_usd: np.ndarray | None  # per account, USD, haircut applied

    @property
    def n_accounts(self) -> int:
        return len(self.names)

    def starts(self, rows: np.ndarray | None = None) -> np.ndarray:
        """Compressed-row offsets by account (int64, A + 1) of all rows or of the masked ``rows``."""
        acc = self.account if rows is None else self.account[rows]
        start = np.zeros(self.n_accounts + 1, dtype=np.int64)
        np.cumsum(np.bincount(acc, minlength=self.n_accounts), out=start[1:])
        return start

    def book(self) -> Book:
        return Book(self.names, self.starts(), self.instrument.astype(np.int32), self.quantity)


def _first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def numeric_column(frame: pd.DataFrame, column: str, allow_missing: bool = False) -> np.ndarray:
    """A column as float64; TypeError naming the column and the first row that is not a real number
    (strings, booleans, complex numbers)."""
    values = frame[column]
    kind = values.dtype.kind
    if kind == "c":
        imaginary = np.flatnonzero(np.imag(values.to_numpy()) != 0)
        k = int(imaginary[0]) if imaginary.size else 0
        raise TypeError(f"positions.{column}: must be a real number; row {k} has {values.iloc[k]!r} (complex)")
    if kind in "iuf":
        return np.asarray(values.to_numpy(dtype=np.float64, na_value=np.nan))
    obj = values.astype(object).to_numpy()
    is_complex = np.fromiter((isinstance(v, complex) for v in obj), bool, len(obj))
    if is_complex.any():
        k = _first(is_complex)
        raise TypeError(f"positions.{column}: must be a real number; row {k} has {obj[k]!r} (complex)")
    missing = pd.isna(values).to_numpy()
    coerced = pd.to_numeric(pd.Series(obj, dtype=object).where(~missing, np.nan), errors="coerce")
    num = coerced.to_numpy(dtype=float)
    is_bool = np.fromiter((isinstance(v, (bool, np.bool_)) for v in obj), bool, len(obj))
    bad = is_bool | (np.isnan(num) & ~missing)
    if not allow_missing:
        bad |= missing & ~np.fromiter((isinstance(v, float) for v in obj), bool, len(obj))
    if bad.any():
        k = _first(bad)
        raise TypeError(f"positions.{column}: must be numeric; row {k} has {obj[k]!r}")
    return np.asarray(num, dtype=float)


def _empty_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "account": pd.Series([], dtype=object),
            "instrument": pd.Series([], dtype=object),
            "quantity": pd.Series([], dtype=float),
        }
    )


def _isolation(frame: pd.DataFrame, mode: str) -> np.ndarray:
    if MODE_COLUMN not in frame.columns:
        return np.full(len(frame), mode == "isolated")
    col = frame[MODE_COLUMN]
    values = col.where(col.notna(), mode).astype(object).to_numpy()
    ok = np.isin(values, MODES)
    if not ok.all():
        k = _first(~ok)
        raise ValueError(f"positions row {k}: {MODE_COLUMN} must be 'cross' or 'isolated', got {col.iloc[k]!r}")
    return np.asarray(values == "isolated")


@dataclass(eq=False)
class _Rows:
    """Positions rows before aggregation."""

    codes: np.ndarray
    names: list[Any]
    instrument: np.ndarray
    quantity: np.ndarray
    isolated: np.ndarray
    upnl: np.ndarray | None


def _frame_rows(engine: Engine, frame: pd.DataFrame, mode: str) -> _Rows:
    if len(frame):
        missing = {"account", "instrument", "quantity"} - set(frame.columns)
        if missing:
            raise ValueError(f"positions: missing column(s) {sorted(missing)}")
    else:
        frame = _empty_frame()
    codes, uniques = pd.factorize(frame["instrument"], use_na_sentinel=False)  # ids looked up once each
    inst = engine.instrument_index.get_indexer(pd.Index(np.asarray(uniques, dtype=object)))[codes]  # -1: unknown
    if (inst < 0).any():
        k = _first(inst < 0)
        raise ValueError(f"positions row {k}: unknown instrument {frame['instrument'].iloc[k]!r}")
    qty = numeric_column(frame, "quantity")
    bad = ~np.isfinite(qty)
    if bad.any():
        k = _first(bad)
        raise ValueError(f"positions row {k}: quantity must be finite, got {qty[k]}")
    missing_acc = frame["account"].isna().to_numpy()
    if missing_acc.any():
        raise ValueError(f"positions row {_first(missing_acc)}: missing account")
    upnl = None
    if UPNL_COLUMN in frame.columns:
        upnl = numeric_column(frame, UPNL_COLUMN, allow_missing=True)
        if np.isinf(upnl).any():
            k = _first(np.isinf(upnl))
            raise ValueError(f"positions row {k}: {UPNL_COLUMN} must be finite, got {upnl[k]}")
        upnl = np.nan_to_num(upnl)
    codes, uniques = pd.factorize(frame["account"])
    names = list(np.asarray(uniques, dtype=object))
    return _Rows(np.asarray(codes, np.int64), names, inst.astype(np.int64), qty, _isolation(frame, mode), upnl)


def _book_rows(book: Book, mode: str) -> _Rows:
    codes = np.repeat(np.arange(len(book.accounts), dtype=np.int64), np.diff(book.account_start))
    qty = np.asarray(book.quantity, dtype=np.float64)
    return _Rows(
        codes,
        list(book.accounts),
        np.asarray(book.instrument, dtype=np.int64),
        qty,
        np.full(len(qty), mode == "isolated"),
        None,
    )


def _more_accounts(names: list[Any], more: list[Any]) -> dict[Any, int]:
    if not more:
        return {}
    index = {name: k for k, name in enumerate(names)}
    for name in more:
        if name is None or (isinstance(name, float) and np.isnan(name)):
            raise ValueError("accounts: an account name is missing (None/NaN)")
        if name not in index:
            index[name] = len(names)
            names.append(name)
    return index


def _collateral_usd(engine: Engine, coll: pd.DataFrame, index: Mapping[Any, int], n_acc: int) -> np.ndarray:
    currencies = pd.unique(coll["currency"])
    fx, haircut = {}, {}
    for c in currencies:
        try:
            fx[c] = engine.market_snapshot.fx_rate(c)
        except ValueError as exc:
            row = _first((coll["currency"] == c).to_numpy())
            raise ValueError(f"collateral row {row}: {exc}") from None
        haircut[c] = keyed_value(engine.model.collateral_haircut, (c,), "collateral.haircut", fallback=0.0)
    cur = coll["currency"]
    amount = coll["amount"].to_numpy(dtype=float)
    h = cur.map(haircut).to_numpy(dtype=float)
    value = np.where(amount > 0, amount * (1.0 - h), amount) * cur.map(fx).to_numpy(dtype=float)
    codes = coll["account"].map(index).to_numpy(dtype=np.int64)
    return np.bincount(codes, value, minlength=n_acc)


def read_positions(
    engine: Engine, positions: Any, accounts: Iterable[Any] | None, collateral: Any, mode: str | None
) -> Positions:
    """Validate and aggregate ``positions`` (a :class:`Book`, a table or records) for ``engine``."""
    mode = engine.model.mode if mode is None else mode
    if mode not in MODES:
        raise ValueError(f"mode: must be 'cross' or 'isolated', got {mode!r}")
    extra = [] if accounts is None else list(accounts)
    coll = collateral_frame(collateral) if collateral is not None else None
    if isinstance(positions, Book):
        rows = _book_rows(positions, mode)
    else:
        frame = as_frame(positions, "positions")
        if len(frame) == 0 and not extra and (coll is None or len(coll) == 0):
            raise ValueError("positions: empty book (no positions and no accounts given)")
        rows = _frame_rows(engine, frame, mode)
    names = rows.names
    index = _more_accounts(names, [*extra, *([] if coll is None else list(coll["account"]))])
    n_acc = len(names)
    upnl_usd = None
    if rows.upnl is not None:
        fx_row = engine.market.unit_fx[engine.market.unit_of_row[rows.instrument]]
        upnl_usd = np.bincount(rows.codes, rows.upnl * fx_row, minlength=n_acc)
    coll_usd = None if coll is None else _collateral_usd(engine, coll, index, n_acc)
    n_inst = len(engine.instruments)
    key = (rows.codes * n_inst + rows.instrument) * 2 + rows.isolated.astype(np.int64)
    uniq, inverse = np.unique(key, return_inverse=True)
    total = np.bincount(inverse, rows.quantity, minlength=len(uniq))
    keep = total != 0.0
    uniq, total = uniq[keep], total[keep]
    return Positions(
        names=np.asarray(pd.Index(names, dtype=object), dtype=object),
        account=uniq // 2 // n_inst,
        instrument=(uniq // 2) % n_inst,
        quantity=total,
        isolated=(uniq % 2).astype(bool),
        upnl_usd=upnl_usd,
        collateral_usd=coll_usd,
    )


__all__ = ["MODES", "MODE_COLUMN", "UPNL_COLUMN", "Book", "Positions", "numeric_column", "read_positions"]
