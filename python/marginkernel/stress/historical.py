"""Historical replays from real BTC / ETH daily closes: the worst 1-day and n-day joint moves."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..historical import load_history
from ..validation import integer
from ._reval import YEAR_DAYS, account_pnl, held


def load_closes(path: str | Path | None = None) -> pd.DataFrame:
    """Daily closes, a column per underlying (``BTC``, ``ETH`` from ``btc_usdt``, ``eth_usdt``), indexed by
    date: the history shipped with the package (``path=None``) or a history CSV, read and checked by
    :func:`marginkernel.historical.load_history` (one row per calendar day, positive prices)."""
    history = load_history() if path is None else load_history(Path(path))
    index = pd.DatetimeIndex(history.dates.astype("datetime64[ns]"), name="date")
    return pd.DataFrame(np.array(history.prices), index=index, columns=list(history.underlyings))


def moves(closes: pd.DataFrame, days: int) -> pd.DataFrame:
    """Every overlapping `days`-day joint move: ``start``, ``end`` and the simple return per underlying."""
    days = integer(days, "days", lo=1)
    if days >= len(closes):
        raise ValueError(f"days: {days} is not shorter than the history ({len(closes)} closes)")
    ret = closes.iloc[days:].to_numpy() / closes.iloc[:-days].to_numpy() - 1.0
    out = pd.DataFrame(ret, columns=closes.columns)
    out.insert(0, "start", closes.index[:-days])
    out.insert(1, "end", closes.index[days:])
    return out


def worst_moves(closes: pd.DataFrame, days: Sequence[int] = (1, 10)) -> pd.DataFrame:
    """Per horizon and underlying: the worst (most negative) and best move with its dates."""
    rows = []
    for d in days:
        mv = moves(closes, d)
        for u in closes.columns:
            for side, k in (("worst", int(mv[u].idxmin())), ("best", int(mv[u].idxmax()))):
                rows.append(
                    {
                        "days": d,
                        "underlying": u,
                        "side": side,
                        "start": mv["start"][k],
                        "end": mv["end"][k],
                        "move": float(mv[u][k]),
                        **{f"joint_{c}": float(mv[c][k]) for c in closes.columns},
                    }
                )
    return pd.DataFrame(rows)


def replay(
    engine: Any,
    positions: Any,
    days: Sequence[int] = (1, 10),
    *,
    top: int = 3,
    closes: pd.DataFrame | None = None,
    accounts: Any = None,
) -> pd.DataFrame:
    """Every account revalued under every historical `d`-day joint move (prices by the underlyings'
    returns, time passing d days, vols unchanged); the `top` worst per account and horizon, with dates."""
    closes = load_closes() if closes is None else closes
    top = integer(top, "top", lo=1)
    m = engine.market
    missing = sorted({u for u in m.unit_underlying if u not in closes.columns})
    h = held(engine, positions, accounts)
    held_units = {m.unit_underlying[m.unit_of_row[i]] for i in h.rows}
    if held_units & set(missing):
        raise ValueError(
            f"historical replay: no price history for underlying {sorted(held_units & set(missing))[0]!r} "
            f"(history has {list(closes.columns)})"
        )
    names = np.asarray(h.book.accounts, dtype=object)
    out = []
    for d in days:
        mv = moves(closes, d)
        mult = np.array(
            [1.0 + mv[u].to_numpy() if u in closes.columns else np.ones(len(mv)) for u in m.unit_underlying]
        )
        pnl = account_pnl(engine, h, mult, np.zeros_like(mult), np.full(len(mv), d / YEAR_DAYS))
        for a, name in enumerate(names):
            for rank, k in enumerate(np.argsort(pnl[a], kind="stable")[:top], start=1):
                row = {"account": name, "days": d, "rank": rank, "start": mv["start"][k], "end": mv["end"][k]}
                row.update({f"move_{u}": float(mv[u][k]) for u in closes.columns})
                row["pnl"] = float(pnl[a, k])
                out.append(row)
    return pd.DataFrame(out)
