"""Explain margin: per-position contributions that add up to IM, incremental and marginal margin.

>>> from marginkernel.demo import run_demo
>>> from marginkernel.explain import explain
>>> engine, _ = run_demo()
>>> from marginkernel.demo import demo_inputs
>>> ex = explain(engine, demo_inputs()[2])
>>> bool(abs(ex.positions.groupby("account")["contribution"].sum() - ex.accounts["im"]).max() < 1e-6)
True

Rules (docs/explain.md): the scan of each netting node is allocated by the Euler / component rule,
each position receiving minus its weighted P&L in the scenarios that set the node's measure (worst
loss: the binding scenario, ties shared equally; VaR: the quantile scenario(s); ES: every scenario at
or below the quantile, by probability), scaled by the gain haircut its child gets in that scenario;
each add-on by its own rule (:mod:`marginkernel.explain._allocate`); a binding floor's uplift pro rata
to the floor's per-position terms. All contributions are in IM terms (``im_factor`` applied); MM
contributions are ``mm_factor / im_factor`` times these.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..keyed import keyed_value
from ..market import collateral_frame
from . import _contrib, _tree, _variants

__all__ = ["Explanation", "explain"]


@dataclass(frozen=True, eq=False)
class Explanation:
    """``positions``: one row per (account, instrument, margin mode) with ``scan``, one column per
    add-on, ``contribution`` (their sum; per account they add up to IM), ``incremental`` (IM with
    minus IM without the position) and ``marginal`` (dIM/dq per unit of quantity); amounts in
    ``currency``. ``accounts``: the engine's account rows plus ``contributions`` (their sum) and
    ``collateral_value``. ``collateral``: the collateral credits per account and currency (amount,
    haircut, value in ``currency``); ``result``: the engine's :class:`~marginkernel.MarginResult`."""

    positions: pd.DataFrame
    accounts: pd.DataFrame
    collateral: pd.DataFrame
    result: object
    currency: str = "USD"
    components: tuple[str, ...] = ()


def _select(positions: Any, account: Any) -> tuple[Any, list[Any] | None]:
    if account is None:
        return positions, None
    frame = positions if isinstance(positions, pd.DataFrame) else pd.DataFrame(list(positions))
    if "account" not in frame.columns:
        raise ValueError("positions: missing column 'account'")
    return frame[frame["account"] == account], [account]


def _collateral_rows(engine: Any, collateral: Any) -> pd.DataFrame:
    cols = ["account", "currency", "amount", "haircut", "value"]
    if collateral is None:
        return pd.DataFrame({c: [] for c in cols})
    frame = collateral_frame(collateral)
    rows = []
    for acc, cur, amount in zip(frame["account"], frame["currency"], frame["amount"].astype(float), strict=True):
        cut = keyed_value(engine.model.collateral_haircut, (cur,), "collateral.haircut", fallback=0.0)
        fx = engine.market_snapshot.fx_rate(cur) / engine.report_fx
        value = (amount * (1.0 - cut) if amount > 0 else amount) * fx
        rows.append((acc, cur, amount, cut, value))
    return pd.DataFrame(rows, columns=cols)


def explain(
    engine: Any,
    positions: Any,
    *,
    account: Any = None,
    accounts: Iterable[Any] | None = None,
    collateral: Any = None,
    mode: str | None = None,
    incremental: bool = True,
    marginal: bool = True,
) -> Explanation:
    """Explain the margin of `positions` (a DataFrame / records as for :meth:`Engine.margin`, or a Book)
    on `engine`: per-position contributions, incremental and marginal margin. `account` restricts
    the explanation to one account (an account without positions gives zero rows)."""
    positions, extra = _select(positions, account)
    accounts = extra if accounts is None else list(accounts) + (extra or [])
    result = engine.margin(positions, accounts, collateral=collateral, mode=mode)
    result_accounts = result.accounts.loc[[account]] if account is not None else result.accounts
    tree = _tree.build(engine, positions, accounts, mode)
    nd, pair_charge, params = _contrib.nodes(engine, tree)
    per_pos = _contrib.position_contributions(engine, tree, nd, pair_charge, params)
    model = engine.model
    pos_node = tree.child_node[tree.pos_child]
    scale = model.im_factor * tree.node_fx[pos_node] / tree.report_fx
    ctx = tree.ctx
    comps = model.components
    frame = {
        "account": tree.names[tree.pos_account] if len(tree.pos_account) else np.zeros(0, dtype=object),
        "instrument": np.asarray(engine.instruments.ids, dtype=object)[ctx.pos_instrument],
        "quantity": ctx.pos_quantity,
        "margin_mode": np.where(ctx.pair_account[ctx.pos_pair] >= len(tree.names), "isolated", "cross"),
        "scan": per_pos[0] * scale,
    }
    for k, name in enumerate(comps):
        frame[name] = per_pos[1 + k] * scale
    frame["contribution"] = (per_pos * scale).sum(axis=0)
    if incremental:
        frame["incremental"] = _variants.incremental(engine, tree, nd, _variants.incremental_scan(engine, tree))
    if marginal:
        frame["marginal"] = _variants.marginal(engine, tree, nd, per_pos[0])
    pos_frame = pd.DataFrame(frame)
    acc = result_accounts.copy()
    sums = pos_frame.groupby("account", sort=False)["contribution"].sum() if len(pos_frame) else pd.Series(dtype=float)
    acc["contributions"] = sums.reindex(acc.index, fill_value=0.0).to_numpy(float)
    coll = _collateral_rows(engine, collateral)
    if account is not None:
        coll = coll[coll["account"] == account].reset_index(drop=True)
    values = coll.groupby("account", sort=False)["value"].sum() if len(coll) else pd.Series(dtype=float)
    acc["collateral_value"] = values.reindex(acc.index, fill_value=0.0).to_numpy(float)
    return Explanation(pos_frame, acc, coll, result, model.currency, comps)
