"""Allocation: split an account's positions between sub-accounts, or between cross and isolated
margin, to minimise the total IM (a mixed-integer program; meant for small books).

Sub-accounts: binaries b_kj (position k in sub-account j, sum_j b_kj = 1, position 0 in sub-account 0
to break the symmetry); sub-account j holds y_kj = q_k b_kj and its IM is the hedge LP's exact
expression (docs/optimise.md). Cross / isolated: binary i_k; the cross account holds q_k (1 - i_k) and
an isolated position costs its own IM (the engine's, a constant) times i_k.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..validation import integer
from ._hedge_model import Builder, check_model
from ._lp import LP
from .hedge import _book


@dataclass(frozen=True, eq=False)
class Allocation:
    """``assignment``: per position its ``target`` (sub-account name, or "cross" / "isolated");
    ``positions``: the allocated book (accounts = sub-accounts; ``margin_mode`` for cross/isolated);
    ``im_before`` (all positions in one cross account), ``im_after`` (engine), ``objective`` (solver)."""

    account: Any
    assignment: pd.DataFrame
    positions: pd.DataFrame
    im_before: float
    im_after: float
    objective: float
    solve_seconds: float

    def summary(self) -> dict[str, Any]:
        keys = ("im_before", "im_after", "objective", "solve_seconds")
        return {"account": self.account, **{k: float(getattr(self, k)) for k in keys}}


def _equal(lp: LP, y: int, q: float, b: int, offset: float = 0.0) -> None:
    """y = offset + q * b."""
    lp.block(np.zeros(2, np.int64), np.array([y, b]), np.array([1.0, -q]), np.array([offset]), np.array([offset]))


def allocate(
    engine: Any,
    positions: Any,
    *,
    account: Any = None,
    sub_accounts: int = 2,
    isolated: bool = False,
    max_positions: int = 40,
    time_limit: float | None = 60.0,
) -> Allocation:
    """Split `account`'s positions between `sub_accounts` sub-accounts (or, with ``isolated=True``,
    between cross and isolated margin) minimising the total IM."""
    check_model(engine)
    n_sub = integer(sub_accounts, "sub_accounts", lo=2)
    book, account = _book(positions, account)
    book = book.groupby(["account", "instrument"], as_index=False, sort=False)["quantity"].sum()
    book = book[book["quantity"] != 0].reset_index(drop=True)
    if len(book) == 0:
        raise ValueError(f"account {account!r}: no positions to allocate")
    if len(book) > integer(max_positions, "max_positions", lo=1):
        raise ValueError(
            f"positions: {len(book)} positions exceed max_positions {max_positions} (a MILP for small books)"
        )
    rows = pd.Index(engine.instruments.ids).get_indexer(pd.Index(book["instrument"])).astype(np.int64)
    q = book["quantity"].to_numpy(float)
    n = len(q)
    lp = LP()
    ones, lo, hi = np.ones(n), np.minimum(0.0, q), np.maximum(0.0, q)
    im_before = float(engine.margin(book, mode="cross").accounts.loc[account, "im"])
    if isolated:
        iso_im = np.array([float(engine.margin(book.iloc[[k]], mode="cross").accounts["im"].iloc[0]) for k in range(n)])
        cross = Builder(engine, {}, rows, ones, lo, hi, np.zeros(n), False, lp=lp).build()
        flag = lp.var(n, 0.0, 1.0, 0.0, integer=True)
        for k in range(n):
            lp.cost[int(flag[k])] = iso_im[k]
            _equal(lp, int(cross.y[k]), -q[k], int(flag[k]), offset=q[k])  # y = q (1 - i)
    else:
        b = np.array([lp.var(n_sub, 0.0, 1.0, 0.0, integer=True) for _ in range(n)])  # (n, n_sub)
        for j in range(n_sub):
            sub = Builder(engine, {}, rows, ones, lo, hi, np.zeros(n), False, lp=lp).build()
            for k in range(n):
                _equal(lp, int(sub.y[k]), q[k], int(b[k, j]))
        for k in range(n):
            lp.block(np.zeros(n_sub, np.int64), b[k], np.ones(n_sub), np.array([1.0]), np.array([1.0]))
        lp.lb[int(b[0, 0])] = 1.0
    start = time.perf_counter()
    res = lp.solve(time_limit=time_limit)
    seconds = time.perf_counter() - start
    if res.x is None:
        raise ValueError(f"allocation: the solver found no solution ({res.message})")
    if isolated:
        chosen = np.round(res.x[flag]).astype(bool)
        target = np.where(chosen, "isolated", "cross")
        out = book.assign(margin_mode=target)
        im_after = float(engine.margin(out).accounts.loc[account, "im"])
    else:
        j = np.argmax(np.round(res.x[b]), axis=1)
        target = np.array([f"{account}/{k}" for k in j], dtype=object)
        out = book.assign(account=target)
        im_after = float(engine.margin(out).accounts["im"].sum())
    assignment = pd.DataFrame({"instrument": book["instrument"], "quantity": q, "target": target})
    return Allocation(account, assignment, out, im_before, im_after, float(res.fun), seconds)
