"""Full revaluation of a book under arbitrary joint moves (the C++ revalue and net kernels)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .. import kernels

SECONDS_PER_DAY = 86400.0
YEAR_DAYS = 365.0


@dataclass(frozen=True, eq=False)
class Held:
    """The instruments a book holds, and the book netted against them."""

    book: Any  # marginkernel.Book
    rows: np.ndarray  # engine rows of the held instruments
    local: np.ndarray  # book position -> index into rows


def held(engine: Any, positions: Any, accounts: Any = None) -> Held:
    book = engine.book(positions, accounts)
    rows, local = np.unique(np.asarray(book.instrument, np.int64), return_inverse=True)
    return Held(book, rows, local.astype(np.int32))


def per_underlying(engine: Any, moves: Mapping[str, Any] | None, where: str) -> np.ndarray:
    """A move per risk unit from a mapping per underlying (or risk unit) with optional "default"."""
    from ..validation import number

    m = engine.market
    moves = dict(moves or {})  # a copy: the caller's mapping is not touched
    known = set(m.unit_underlying) | set(m.units) | {"default"}
    for key in moves:
        if key not in known:
            raise ValueError(
                f"{where}.{key}: no risk unit or underlying of that name; known: {sorted(known - {'default'})}"
            )
    out = np.zeros(len(m.units))
    for u, (name, under) in enumerate(zip(m.units, m.unit_underlying, strict=False)):
        value = moves.get(name, moves.get(under, moves.get("default", 0.0)))
        out[u] = number(value, f"{where}.{name if name in moves else under}")
    return out


def account_pnl(
    engine: Any, h: Held, price_mult: np.ndarray, vol_shift: np.ndarray, time_years: np.ndarray
) -> np.ndarray:
    """P&L (accounts, scenarios) in the reporting currency under joint moves: price multiplier and
    relative vol change per risk unit (U, S), time passing per scenario (S,) in years.
    Settlement-currency P&L converts at today's FX (the engine's convention)."""
    inst, m = engine.instruments, engine.market
    rows = h.rows
    n_s = price_mult.shape[1]
    if len(rows) == 0:
        return np.zeros((len(h.book.accounts), n_s))
    risk, _ = kernels.revalue(
        inst.kind[rows],
        inst.settlement[rows],
        m.unit_of_row[rows],
        inst.strike[rows],
        m.expiry_years[rows],
        inst.multiplier[rows],
        m.forward[rows],
        m.discount[rows],
        m.vol[rows],
        m.unit_spot,
        np.ascontiguousarray(price_mult, float),
        np.ascontiguousarray(vol_shift, float),
        np.ascontiguousarray(time_years, float),
        vol_shock="relative",
    )
    pnl = kernels.net(
        risk, m.unit_of_row[rows], len(m.units), h.book.account_start, h.local, np.asarray(h.book.quantity, float)
    )
    return np.asarray(np.einsum("aus,u->as", pnl, m.unit_fx) / engine.report_fx, dtype=float)


def equity(engine: Any, positions: Any, collateral: Any, accounts: Any = None) -> pd.Series:
    res = engine.margin(positions, accounts, collateral=collateral)
    return res.accounts["equity"]
