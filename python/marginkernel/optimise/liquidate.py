"""Liquidation plan: the least-cost partial closes that bring an account's margin ratio to a target.

Margin ratio = MM / equity (the engine's convention: above 1 the account is below maintenance).
Closing c_k of position k (0 <= c_k <= |q_k|, towards zero) costs half_spread_k * c_k plus a convex
piecewise-linear impact ``sum_j rate_j * overlap(c_k, [start_j, start_j+1))`` (non-decreasing rates),
paid out of equity. The LP: minimise total cost subject to MM(q after) <= target * (equity - cost),
with MM written exactly as in the hedge LP (docs/optimise.md).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..validation import is_missing, number
from ._hedge_model import Builder, _tier_lines, check_model
from ._lp import Expr, add, times, var_expr
from .hedge import _book, with_trades


@dataclass(frozen=True, eq=False)
class LiquidationPlan:
    """``closes``: per position the quantity closed (signed trade), its size and cost; ``positions``
    the book after; ratio / MM / equity before and after (engine), ``cost`` the total cost."""

    account: Any
    closes: pd.DataFrame
    positions: pd.DataFrame
    ratio_before: float
    ratio_after: float
    mm_before: float
    mm_after: float
    equity_before: float
    equity_after: float
    cost: float
    target_ratio: float
    solve_seconds: float

    def summary(self) -> dict[str, Any]:
        keys = (
            "ratio_before",
            "ratio_after",
            "mm_before",
            "mm_after",
            "equity_before",
            "equity_after",
            "cost",
            "target_ratio",
            "solve_seconds",
        )
        return {"account": self.account, **{k: float(getattr(self, k)) for k in keys}}


def _costs(book: pd.DataFrame, costs: Any) -> tuple[np.ndarray, list[list[tuple[float, float]]]]:
    """Half-spread per unit and impact tiers per position from a table (instrument, half_spread, impact)."""
    frame = costs if isinstance(costs, pd.DataFrame) else pd.DataFrame(list(costs))
    if "instrument" not in frame.columns:
        raise ValueError("costs: missing column 'instrument'")
    by_id = {iid: k for k, iid in enumerate(frame["instrument"])}
    spread, impact = [], []
    for iid in book["instrument"]:
        if iid not in by_id:
            raise ValueError(f"costs: no row for instrument {iid!r} of the account")
        k = by_id[iid]
        where = f"costs row {k} ({iid})"
        hs = frame["half_spread"].iloc[k] if "half_spread" in frame.columns else 0.0
        if is_missing(hs):
            raise ValueError(f"{where}.half_spread: must be a finite number >= 0, got {hs!r}")
        spread.append(number(hs, f"{where}.half_spread", lo=0.0))
        tiers = frame["impact"].iloc[k] if "impact" in frame.columns else None
        tiers = [] if tiers is None or (isinstance(tiers, float) and math.isnan(tiers)) else list(tiers)
        checked: list[tuple[float, float]] = []
        last = -math.inf
        for j, t in enumerate(tiers):
            start = number(t[0], f"{where}.impact[{j}][0]", lo=0.0)
            rate = number(t[1], f"{where}.impact[{j}][1]", lo=0.0)
            if (j == 0 and start != 0.0) or rate < (checked[-1][1] if checked else 0.0) or start <= last:
                raise ValueError(
                    f"{where}.impact[{j}]: tiers must start at 0 with rising starts and "
                    "non-decreasing rates (a convex impact)"
                )
            checked.append((start, rate))
            last = start
        impact.append(checked)
    return np.array(spread), impact


def liquidation_plan(
    engine: Any, positions: Any, costs: Any, *, collateral: Any, target_ratio: float, account: Any = None
) -> LiquidationPlan:
    """The least-cost partial closes restoring MM / equity <= `target_ratio` (docs/optimise.md)."""
    check_model(engine)
    target = number(target_ratio, "target_ratio", positive=True)
    book, account = _book(positions, account)
    book = book.groupby(["account", "instrument"], as_index=False, sort=False)["quantity"].sum()
    book = book[book["quantity"] != 0].reset_index(drop=True)
    if len(book) == 0:
        raise ValueError(f"account {account!r}: no positions to close")
    before = engine.margin(book, accounts=[account], collateral=collateral, mode="cross").accounts.loc[account]
    equity, mm = float(before["equity"]), float(before["mm"])
    if math.isnan(equity):
        raise ValueError("collateral: a liquidation plan needs the account's equity; give its collateral")
    if equity <= 0:
        raise ValueError(f"equity: {equity:.6g} <= 0; no partial close can restore a margin ratio")
    ratio = mm / equity
    if not target < ratio:
        raise ValueError(
            f"target_ratio: {target} is not below the current margin ratio {ratio:.6g} (MM / equity); "
            "nothing to restore"
        )
    spread, impact = _costs(book, costs)
    rows = pd.Index(engine.instruments.ids).get_indexer(pd.Index(book["instrument"]))
    q = book["quantity"].to_numpy(float)
    lo, hi = np.minimum(0.0, -q), np.maximum(0.0, -q)
    q0 = {int(i): float(qk) for i, qk in zip(rows, q, strict=False)}
    b = Builder(engine, q0, rows.astype(np.int64), np.ones(len(q)), lo, hi, np.zeros(len(q)), False)
    problem = b.build(factor=0.0)
    lp = problem.lp
    cost_expr: Expr = (0.0, {})
    for k in range(len(q)):
        size = var_expr(int(problem.y[k]), -float(np.sign(q[k])))  # c_k = -sign(q_k) y_k >= 0
        lines = _tier_lines(impact[k] or [(0.0, 0.0)])
        t = int(lp.var(1, 0.0, np.inf, 1.0)[0])
        for slope, icpt in lines:
            lp.le(add(times(size, slope + spread[k]), (icpt, {}), var_expr(t, -1.0)))
        cost_expr = add(cost_expr, var_expr(t))
    mm_expr = (0.0, {int(c): engine.model.mm_factor * u for c, u in zip(problem.r_cols, problem.r_usd, strict=False)})
    lp.le(add(mm_expr, times(cost_expr, target), (-target * equity, {})))
    start = time.perf_counter()
    res = lp.solve()
    seconds = time.perf_counter() - start
    if res.x is None:
        raise ValueError(
            f"target_ratio: no set of closes reaches MM / equity <= {target} "
            f"(even closing everything costs more equity than it frees; solver: {res.message})"
        )
    trade = res.x[problem.y]
    size = np.abs(trade)
    cost = np.array([spread[k] * size[k] + _impact(impact[k], size[k]) for k in range(len(q))])
    after = with_trades(book, account, book["instrument"], trade)
    after = after[after["quantity"].abs() > 1e-12 * np.abs(q).max()]
    res_after = engine.margin(after, accounts=[account], mode="cross").accounts.loc[account]
    eq_after = equity - float(cost.sum())
    closes = pd.DataFrame(
        {"instrument": book["instrument"].to_numpy(), "quantity": q, "trade": trade, "closed": size, "cost": cost}
    )
    return LiquidationPlan(
        account,
        closes,
        after,
        ratio,
        float(res_after["mm"]) / eq_after,
        mm,
        float(res_after["mm"]),
        equity,
        eq_after,
        float(cost.sum()),
        target,
        seconds,
    )


def _impact(tiers: list[tuple[float, float]], size: float) -> float:
    total = 0.0
    for j, (start, rate) in enumerate(tiers):
        end = tiers[j + 1][0] if j + 1 < len(tiers) else math.inf
        total += rate * min(max(size - start, 0.0), end - start)
    return total
