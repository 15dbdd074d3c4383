"""Reverse stress: the smallest joint move along a direction that exhausts an account's equity.

Along a direction d (a price direction and a relative-vol direction per underlying), the move at
scale t is: price multiplier 1 + t * d_price, vol 1 + t * d_vol. f(t) = equity + P&L(t) with full
revaluation. A grid of `grid` points over (0, max_scale] finds the first sign change of f, then
bisection (full revaluation at every step, no Taylor expansion) narrows it to `tol` in t.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..validation import integer, number
from ._reval import account_pnl, equity, held, per_underlying


def _direction(engine: Any, name: str, d: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    unknown = set(d) - {"price", "vol"}
    if unknown:
        raise ValueError(f"directions[{name}].{sorted(unknown)[0]}: unknown key; known: price, vol")
    price = per_underlying(engine, d.get("price"), f"directions[{name}].price")
    vol = per_underlying(engine, d.get("vol"), f"directions[{name}].vol")
    if not (np.any(price) or np.any(vol)):
        raise ValueError(f"directions[{name}]: a zero direction moves nothing")
    return price, vol


def reverse_stress(
    engine: Any,
    positions: Any,
    directions: Mapping[str, Mapping[str, Any]],
    *,
    collateral: Any,
    account: Any = None,
    max_scale: float | None = None,
    grid: int = 200,
    tol: float = 1e-10,
) -> pd.DataFrame:
    """Per account and direction: the scale t at which equity + P&L reaches 0, the moves at t, or
    NaN when the equity survives every move up to `max_scale` (default: the largest scale keeping
    every price positive, at most 10)."""
    grid = integer(grid, "grid", lo=2)
    tol = number(tol, "tol", positive=True)
    accounts = None if account is None else [account]
    if account is not None:
        frame = positions if isinstance(positions, pd.DataFrame) else pd.DataFrame(list(positions))
        positions = frame[frame["account"] == account]
    eq = equity(engine, positions, collateral, accounts)
    if eq.isna().any():
        raise ValueError("collateral: reverse stress needs each account's equity; give its collateral")
    h = held(engine, positions, accounts)
    eq = eq.reindex(h.book.accounts).to_numpy(float)
    rows = []
    for name, d in directions.items():
        price, vol = _direction(engine, str(name), d)
        neg = -price[price < 0]
        limit = 0.999 / neg.max() if len(neg) else 10.0
        top = limit if max_scale is None else number(max_scale, "max_scale", positive=True)
        if top > limit:
            raise ValueError(f"max_scale: {top} would take a price to zero or below along {name!r} (limit {limit:.6g})")

        def f(t: np.ndarray, price: Any = price, vol: Any = vol) -> np.ndarray:
            mult = 1.0 + np.outer(price, t)
            return np.asarray(eq[:, None] + account_pnl(engine, h, mult, np.outer(vol, t), np.zeros(len(t))))

        ts = np.linspace(0.0, top, grid + 1)
        values = f(ts)
        for a, acc in enumerate(h.book.accounts):
            rows.append(
                _solve(
                    acc,
                    str(name),
                    ts,
                    values[a],
                    lambda t, a=a: f(np.array([t]))[a, 0],
                    tol * top,
                    price,
                    vol,
                    engine,
                    eq[a],
                )
            )
    return pd.DataFrame(rows)


def _solve(  # noqa: PLR0917 - one crossing, its context passed whole
    acc: Any, name: Any, ts: Any, values: Any, fa: Any, tol: Any, price: Any, vol: Any, engine: Any, eq: Any
) -> dict[str, Any]:
    row: dict[str, Any] = {"account": acc, "direction": name, "equity": eq}
    hit = np.flatnonzero(values <= 0.0)
    if len(hit) == 0:
        t = np.nan
    elif hit[0] == 0:
        t = 0.0
    else:
        lo, hi = ts[hit[0] - 1], ts[hit[0]]
        while hi - lo > tol:
            mid = 0.5 * (lo + hi)
            if fa(mid) <= 0.0:
                hi = mid
            else:
                lo = mid
        t = hi
    row["scale"] = t
    for u, under in enumerate(engine.market.units):
        row[f"price_{under}"] = price[u] * t
        if np.any(vol):
            row[f"vol_{under}"] = vol[u] * t
    row["equity_after"] = float(fa(t)) if np.isfinite(t) else np.nan
    return row


__all__ = ["reverse_stress"]
_ = Sequence
