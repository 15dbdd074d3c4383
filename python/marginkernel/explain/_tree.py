"""The netting tree of a book, rebuilt from the engine's public add-on context.

position k -> pair (account, risk unit) -> child -> node, where a *child* is the level that nets
fully (a pair; under account netting a settlement currency of an account) and a *node* is where the
model's measure is taken (docs/explain.md). Children of a node are contiguous.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import kernels
from ..addons import Context

MEASURE_CODE = {"worst_loss": 0, "var": 1, "es": 2}


@dataclass(eq=False)
class Tree:
    names: np.ndarray  # account names
    ctx: Context
    owner: np.ndarray  # real account of each pseudo-account
    pos_account: np.ndarray
    pos_child: np.ndarray
    pos_weighted: np.ndarray  # (K, S) q * R * w * scale: the position's P&L in its node currency
    pair_child: np.ndarray
    pair_node: np.ndarray
    child_pnl: np.ndarray  # (C, S) weighted, node currency
    child_gain: np.ndarray
    child_count: np.ndarray
    child_scale: np.ndarray
    child_node: np.ndarray
    node_start: np.ndarray
    node_cap: np.ndarray
    node_fx: np.ndarray  # node currency -> USD
    node_pseudo: np.ndarray
    node_name: np.ndarray
    report_fx: float
    risk: np.ndarray  # R as the model counts it

    @property
    def node_owner(self) -> np.ndarray:
        return np.asarray(self.owner[self.node_pseudo])

    @property
    def n_nodes(self) -> int:
        return len(self.node_cap)


def _levels(engine: Any, ctx: Any) -> tuple[Any, ...]:
    """Children and nodes of the model's netting level: (pair -> child, child P&L, child scale, child
    gain factor, child -> node, node pseudo-account, node FX, node gain cap, node name)."""
    model, m, net = engine.model, engine.market, engine.netting
    units = list(m.units)
    currencies, unit_cur, cur_fx = net.currencies, net.unit_cur, net.cur_fx
    weighted = ctx.pair_pnl * ctx.weight[ctx.pair_unit]
    n_pairs = len(ctx.pair_unit)
    pa, pu = ctx.pair_account.astype(np.int64), ctx.pair_unit.astype(np.int64)
    n_cur = len(currencies)
    if model.netting == "risk_unit":
        pair_child = np.arange(n_pairs)
        child_pnl = weighted
        child_scale = np.ones(n_pairs)
        child_gain = np.ones(n_pairs)
        child_node = np.arange(n_pairs)
        node_pseudo, node_fx = pa, m.unit_fx[pu]
        node_cap = np.full(n_pairs, np.inf)
        node_name = np.array(units, dtype=object)[pu] if n_pairs else np.zeros(0, dtype=object)
    elif model.netting == "currency":
        node_key, pair_node = np.unique(pa * n_cur + unit_cur[pu], return_inverse=True)
        order = np.argsort(pair_node, kind="stable")
        pair_child = np.empty(n_pairs, dtype=np.int64)
        pair_child[order] = np.arange(n_pairs)
        child_pnl = weighted[order]
        child_scale = np.ones(n_pairs)
        child_gain = net.unit_gain[pu][order]
        child_node = pair_node[order]
        node_pseudo, node_fx = node_key // n_cur, cur_fx[node_key % n_cur]
        node_cap = model.gain_cap / node_fx
        node_name = np.array(currencies, dtype=object)[node_key % n_cur]
    else:  # account
        child_key, pair_child = np.unique(pa * n_cur + unit_cur[pu], return_inverse=True)
        scale = cur_fx[child_key % n_cur]
        child_pnl = np.zeros((len(child_key), weighted.shape[1]))
        np.add.at(child_pnl, pair_child, weighted)
        child_pnl *= scale[:, None]
        child_scale = scale
        child_gain = net.cur_gain[child_key % n_cur]
        node_key, child_node = np.unique(child_key // n_cur, return_inverse=True)
        node_pseudo, node_fx = node_key, np.ones(len(node_key))
        node_cap = np.full(len(node_key), float(model.gain_cap))
        node_name = np.full(len(node_key), None, dtype=object)
    return (pair_child, child_pnl, child_scale, child_gain, child_node, node_pseudo, node_fx, node_cap, node_name)


def build(engine: Any, positions: Any, accounts: Iterable[Any] | None = None, mode: str | None = None) -> Tree:
    ev = engine.evaluate(positions, accounts, mode=mode)
    ctx = ev.context
    names, pos_account, owner = ev.positions.names, ev.positions.account, ev.pairs.owner
    (pair_child, child_pnl, child_scale, child_gain, child_node, node_pseudo, node_fx, node_cap, node_name) = _levels(
        engine, ctx
    )
    pos_child = pair_child[ctx.pos_pair]
    child_count = np.bincount(pos_child, minlength=len(child_node)).astype(np.int64)
    node_start = np.zeros(len(node_cap) + 1, dtype=np.int64)
    np.cumsum(np.bincount(child_node, minlength=len(node_cap)), out=node_start[1:])
    risk = engine.counted_risk
    inst = ctx.pos_instrument
    pos_weighted = (ctx.pos_quantity[:, None] * risk[inst]) * ctx.weight[ctx.pos_unit] * child_scale[pos_child][:, None]
    return Tree(
        names,
        ctx,
        owner,
        pos_account,
        pos_child,
        pos_weighted,
        pair_child,
        child_node[pair_child],
        np.ascontiguousarray(child_pnl),
        child_gain.astype(float),
        child_count,
        np.asarray(child_scale, float),
        child_node,
        node_start,
        np.asarray(node_cap, float),
        np.asarray(node_fx, float),
        np.asarray(node_pseudo, np.int64),
        node_name,
        float(engine.report_fx),
        risk,
    )


def joint(tree: Tree) -> tuple[np.ndarray, np.ndarray]:
    """Per node: the joint P&L (N, S); per child: the factor (C, S) its P&L counts with in it."""
    x, node = tree.child_pnl, tree.child_node
    n_nodes = tree.n_nodes
    count = np.bincount(node, minlength=n_nodes)
    gains = np.zeros((n_nodes, x.shape[1]))
    losses = np.zeros_like(gains)
    np.add.at(losses, node, np.minimum(x, 0.0))
    np.add.at(gains, node, tree.child_gain[:, None] * np.maximum(x, 0.0))
    cap = tree.node_cap[:, None]
    multi = count >= 2
    out = np.zeros_like(gains)
    single = ~multi[node]
    out[node[single]] = x[single]
    out[multi] = losses[multi] + np.minimum(cap, gains)[multi]
    with np.errstate(divide="ignore", invalid="ignore"):
        cap_scale = np.where(gains > cap, cap / gains, 1.0)
    factor = np.where(x < 0.0, 1.0, tree.child_gain[:, None] * cap_scale[node])
    factor[single] = 1.0
    return out, factor


def tail(joint_pnl: np.ndarray, model: Any, probability: Any) -> tuple[np.ndarray, np.ndarray]:
    """Per node: the scan (>= 0) and the tail weights (N, S) summing to 1 over the scenarios that
    set it (worst loss: the tied worst scenarios; VaR: the tied quantile scenarios; ES: the
    scenarios at or below the quantile, by probability)."""
    n = joint_pnl.shape[0]
    if n == 0:
        return np.zeros(0), np.zeros_like(joint_pnl)
    if model.measure == "worst_loss":
        low = joint_pnl.min(axis=1)
        mask = (joint_pnl == low[:, None]).astype(float)
        value = -low
    else:
        var, es = kernels.value_at_risk(np.ascontiguousarray(joint_pnl), model.confidence, probability)
        q = -var
        if model.measure == "var":
            mask = (joint_pnl == q[:, None]).astype(float)
            value = var
        else:
            p = np.ones(joint_pnl.shape[1]) if probability is None else np.asarray(probability, float)
            mask = np.where(joint_pnl <= q[:, None], p[None, :], 0.0)
            value = es
    scan = np.maximum(0.0, value)
    weights = mask / mask.sum(axis=1, keepdims=True)
    weights[scan <= 0.0] = 0.0
    return scan, weights
