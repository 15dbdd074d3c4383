"""Daily price histories: reading, checking and the return series built from them.

A history file is a CSV with a ``date`` column (ISO days, one row per calendar day, ascending)
and one column of positive closing prices per underlying. Every problem is reported with the
file, the row (1-based line of the file, the header being line 1) and the column:
``prices.csv: line 7 (2020-01-05): column 'btc_usdt': price must be > 0, got -3.0``.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

#: the history shipped with the package (public Binance daily closes, see its README beside it)
SHIPPED = "crypto-daily-usdt"


@dataclass(frozen=True, eq=False)
class PriceHistory:
    """Checked daily closes: ``dates`` (datetime64[D], consecutive days) and ``prices`` (T, U) > 0,
    one column per underlying in ``underlyings`` order; ``source`` names the file."""

    dates: np.ndarray
    prices: np.ndarray
    underlyings: tuple[str, ...]
    source: str

    def __post_init__(self) -> None:
        t = len(self.dates)
        if self.prices.shape != (t, len(self.underlyings)):
            raise ValueError(f"{self.source}: prices shape {self.prices.shape}, expected {(t, len(self.underlyings))}")
        self.prices.setflags(write=False)
        self.dates.setflags(write=False)

    @property
    def n_days(self) -> int:
        return len(self.dates)

    def column(self, underlying: str) -> int:
        """The column of an underlying, or an error naming the file and the known ones."""
        try:
            return self.underlyings.index(underlying)
        except ValueError:
            raise ValueError(
                f"{self.source}: no price column for underlying {underlying!r}; has {list(self.underlyings)}"
            ) from None

    def index_of(self, day: str | np.datetime64, where: str = "as_of") -> int:
        """The row of a day (ISO string or datetime64), or an error naming ``where`` and the span."""
        try:
            d = np.datetime64(str(day), "D")
        except ValueError:
            raise ValueError(f"{where}: not an ISO date, got {day!r}") from None
        k = int((d - self.dates[0]).astype(int))
        if not 0 <= k < self.n_days:
            raise ValueError(f"{where}: {d} is outside the history {self.source} ({self.dates[0]} to {self.dates[-1]})")
        return k

    def select(self, underlyings: list[str]) -> np.ndarray:
        """Prices (T, len(underlyings)) of these underlyings, in that order."""
        return self.prices[:, [self.column(u) for u in underlyings]]


def _underlying_name(column: str) -> str:
    return column.split("_", maxsplit=1)[0].upper()


def _check_dates(frame: pd.DataFrame, name: str) -> np.ndarray:
    raw = frame["date"]
    parsed = pd.to_datetime(raw, format="%Y-%m-%d", errors="coerce")
    bad = np.flatnonzero(parsed.isna().to_numpy())
    if bad.size:
        k = int(bad[0])
        raise ValueError(f"{name}: line {k + 2}: column 'date': expected an ISO day YYYY-MM-DD, got {raw.iloc[k]!r}")
    days = parsed.to_numpy().astype("datetime64[D]")
    step = np.asarray(np.diff(days).astype(int))
    for gap in np.flatnonzero(step != 1):
        k = int(gap)
        if step[k] == 0:
            raise ValueError(f"{name}: line {k + 3}: duplicate date {days[k + 1]} (also on line {k + 2})")
        if step[k] < 0:
            raise ValueError(
                f"{name}: line {k + 3}: date {days[k + 1]} is before {days[k]} on line {k + 2}; "
                "rows must be in ascending date order"
            )
        raise ValueError(
            f"{name}: line {k + 3}: gap of {step[k] - 1} day(s) between {days[k]} and {days[k + 1]}; "
            "a history needs one row per calendar day"
        )
    return np.asarray(days)


def _check_prices(frame: pd.DataFrame, column: str, name: str, days: np.ndarray) -> np.ndarray:
    values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
    bad = np.flatnonzero(~(np.isfinite(values) & (values > 0)))
    if bad.size:
        k = int(bad[0])
        got = frame[column].iloc[k]
        what = "price must be > 0" if np.isfinite(values[k]) else "expected a finite number"
        raise ValueError(f"{name}: line {k + 2} ({days[k]}): column {column!r}: {what}, got {got!r}")
    return np.asarray(values, dtype=np.float64)


def read_history(path: str | Path, columns: Mapping[str, str] | None = None) -> PriceHistory:
    """Read and check a history CSV. ``columns`` maps underlying -> column; by default every column
    but ``date`` is an underlying named by its prefix before ``_``, upper-cased (``btc_usdt`` -> BTC)."""
    p = Path(path)
    name = str(path)
    if not p.is_file():
        raise ValueError(f"{name}: history file not found")
    try:
        frame = pd.read_csv(p, dtype=str, keep_default_na=False)
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{name}: cannot read the history: {exc}") from None
    return history_from_frame(frame, name, columns)


def history_from_frame(frame: pd.DataFrame, name: str, columns: Mapping[str, str] | None = None) -> PriceHistory:
    """A :class:`PriceHistory` from a DataFrame with a ``date`` column (``name`` labels errors)."""
    if "date" not in frame.columns:
        raise ValueError(f"{name}: no 'date' column; columns are {list(frame.columns)}")
    if len(frame) < 2:
        raise ValueError(f"{name}: a history needs at least 2 rows, got {len(frame)}")
    if columns is None:
        columns = {_underlying_name(c): c for c in frame.columns if c != "date"}
        if not columns:
            raise ValueError(f"{name}: no price columns besides 'date'")
    for und, col in columns.items():
        if col not in frame.columns:
            raise ValueError(f"{name}: columns.{und}: no column {col!r}; columns are {list(frame.columns)}")
    days = _check_dates(frame.astype({"date": str}), name)
    prices = np.column_stack([_check_prices(frame, col, name, days) for col in columns.values()])
    return PriceHistory(days, prices, tuple(columns), name)


@functools.lru_cache(maxsize=8)
def _cached(path: str, mtime: float, columns: tuple[tuple[str, str], ...] | None) -> PriceHistory:
    return read_history(path, dict(columns) if columns is not None else None)


def load_history(source: str | Path = SHIPPED, columns: Mapping[str, str] | None = None) -> PriceHistory:
    """The shipped history (``"crypto-daily-usdt"``) or a CSV file by path, read once and cached."""
    if isinstance(source, str) and source == SHIPPED:
        with resources.as_file(resources.files("marginkernel") / "data" / f"{SHIPPED}.csv") as path:
            return _cached(str(path), path.stat().st_mtime, None if columns is None else tuple(columns.items()))
    p = Path(source)
    if not p.is_file():
        raise ValueError(f"history: {str(source)!r} is neither {SHIPPED!r} (shipped) nor a file")
    return _cached(str(p), p.stat().st_mtime, None if columns is None else tuple(columns.items()))


def log_returns(prices: np.ndarray, horizon: int) -> np.ndarray:
    """Overlapping ``horizon``-day log returns: row k is ln(P[k] / P[k - horizon]); rows < horizon NaN."""
    out = np.full(prices.shape, np.nan)
    out[horizon:] = np.log(prices[horizon:] / prices[:-horizon])
    return out


def ewma_variance(x: np.ndarray, lam: float, seed_days: int) -> np.ndarray:
    """EWMA variance forecast after each day: v[k] = lam v[k-1] + (1 - lam) x[k]^2 (x: 1-day log
    returns, rows from 1; row 0 NaN). Seeded with the mean of x^2 over the first ``seed_days`` returns,
    so v[k] uses returns up to day k only (no look-ahead)."""
    t = x.shape[0]
    v = np.full(x.shape, np.nan)
    if t < 2:
        return v
    seed = np.mean(x[1 : 1 + seed_days] ** 2, axis=0)
    prev = seed
    for k in range(1, t):
        prev = lam * prev + (1.0 - lam) * x[k] ** 2
        v[k] = prev
    return v


__all__ = [
    "SHIPPED",
    "PriceHistory",
    "ewma_variance",
    "history_from_frame",
    "load_history",
    "log_returns",
    "read_history",
]
