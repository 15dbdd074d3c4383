"""Incremental margin (IM without each position) and marginal margin (dIM/dq) for every position.

The scan of a position's node without it comes from the C++ kernel (``incremental_scan``: the netted
P&L minus q * R, no re-netting). The add-ons, which may look at the whole account (spreads across risk
units), are evaluated on *variant* accounts built from the same arrays: variant v is the position's
(pseudo-)account with that position's quantity replaced (0: removed; q +- h: for the derivative), its
pair P&L the netted one plus (q' - q) * R. Nothing is revalued or re-netted.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from .. import _core, kernels
from ._contrib import Nodes, addon_charges, combine
from ._tree import MEASURE_CODE, Tree


def _variant_context(tree: Tree, pos: np.ndarray, new_q: np.ndarray) -> tuple[Any, np.ndarray]:
    """Context whose pseudo-account v is position pos[v]'s pseudo-account with quantity new_q[v]."""
    ctx = tree.ctx
    pos_pseudo = ctx.pair_account[ctx.pos_pair].astype(np.int64)
    order = np.argsort(pos_pseudo, kind="stable")
    n_pseudo = int(ctx.n_accounts)
    start = np.zeros(n_pseudo + 1, dtype=np.int64)
    np.cumsum(np.bincount(pos_pseudo, minlength=n_pseudo), out=start[1:])
    p_v = pos_pseudo[pos]
    counts = start[p_v + 1] - start[p_v]
    var_id = np.repeat(np.arange(len(pos)), counts)
    offset = np.arange(len(var_id)) - np.repeat(np.cumsum(counts) - counts, counts)
    rows = order[start[p_v][var_id] + offset]
    q = ctx.pos_quantity[rows].copy()
    is_k = rows == pos[var_id]
    q[is_k] = new_q[var_id[is_k]]
    keep = q != 0.0
    var_id, rows, q = var_id[keep], rows[keep], q[keep]
    n_units = len(ctx.unit_names)
    unit = ctx.unit_of_row[ctx.pos_instrument[rows]].astype(np.int64)
    key, pos_pair = np.unique(var_id * n_units + unit, return_inverse=True)
    first = np.zeros(len(key), dtype=np.int64)
    first[pos_pair[::-1]] = np.arange(len(rows))[::-1]
    orig_pair = ctx.pos_pair[rows[first]]
    pnl = ctx.pair_pnl[orig_pair].copy()
    v_of_pair = key // n_units
    changed = orig_pair == ctx.pos_pair[pos[v_of_pair]]
    k_of = pos[v_of_pair[changed]]
    dq = new_q[v_of_pair[changed]] - ctx.pos_quantity[k_of]
    pnl[changed] += dq[:, None] * tree.risk[ctx.pos_instrument[k_of]]
    pair_unit = key % n_units
    if len(key):
        scan, worst = kernels.worst_loss(np.ascontiguousarray(pnl * ctx.weight[pair_unit]))
    else:
        scan, worst = np.zeros(0), np.zeros(0, dtype=np.int32)
    vctx = dataclasses.replace(
        ctx,
        pos_pair=pos_pair,
        pos_instrument=ctx.pos_instrument[rows],
        pos_quantity=q,
        pair_account=v_of_pair,
        pair_unit=pair_unit,
        pnl_rows=pnl,
        pair_row=np.arange(len(pnl)),
        pair_scan=scan,
        pair_worst=worst,
        n_accounts=len(pos),
        shared={},
    )
    return vctx, tree.pair_node[orig_pair]


def _variant_nodes(tree: Tree, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows (variant, node) for every node of each variant's pseudo-account."""
    pos_pseudo = tree.ctx.pair_account[tree.ctx.pos_pair].astype(np.int64)[pos]
    lo = np.searchsorted(tree.node_pseudo, pos_pseudo, side="left")
    hi = np.searchsorted(tree.node_pseudo, pos_pseudo, side="right")
    counts = hi - lo
    var = np.repeat(np.arange(len(pos)), counts)
    node = np.repeat(lo, counts) + np.arange(len(var)) - np.repeat(np.cumsum(counts) - counts, counts)
    return var, node


def _variant_charges(
    engine: Any, tree: Tree, pos: np.ndarray, new_q: np.ndarray, rows: tuple[np.ndarray, np.ndarray]
) -> np.ndarray:
    """Add-on charges (components, rows) at each (variant, node) row, node currency."""
    var, node = rows
    n_comp = len(engine.model.addons)
    if n_comp == 0:
        return np.zeros((0, len(var)))
    vctx, vnode = _variant_context(tree, pos, new_q)
    charge, _ = addon_charges(engine, vctx)
    n_nodes = tree.n_nodes
    row_of = {}
    keys = var * n_nodes + node
    order = np.argsort(keys)
    pair_key = vctx.pair_account * n_nodes + vnode
    idx = np.searchsorted(keys[order], pair_key)
    row_of = order[np.minimum(idx, len(order) - 1)]
    fx = vctx.unit_fx[vctx.pair_unit] / tree.node_fx[vnode]
    out = np.zeros((n_comp, len(var)))
    for k in range(n_comp):
        out[k] = np.bincount(row_of, charge[k] * fx, minlength=len(var))
    return out


def incremental_scan(engine: Any, tree: Tree) -> np.ndarray:
    """Scan of each position's node without it (node currency), by the C++ kernel."""
    ctx, model, sc = tree.ctx, engine.model, engine.scenario_set
    if len(ctx.pos_instrument) == 0:
        return np.zeros(0)
    return np.asarray(
        _core.incremental_scan(
            tree.child_pnl,
            tree.child_gain,
            tree.child_count,
            tree.child_scale,
            tree.node_start,
            tree.node_cap,
            MEASURE_CODE[model.measure],
            float(model.confidence),
            sc.probability,
            np.ascontiguousarray(tree.risk),
            np.ascontiguousarray(ctx.weight, dtype=float),
            ctx.pos_instrument.astype(np.int32),
            ctx.pos_unit.astype(np.int32),
            tree.pos_child.astype(np.int64),
            np.ascontiguousarray(ctx.pos_quantity, float),
        )
    )


def incremental(engine: Any, tree: Tree, nd: Nodes, scan_without: np.ndarray) -> np.ndarray:
    """IM with minus IM without each position (report currency)."""
    ctx = tree.ctx
    n = len(ctx.pos_instrument)
    if n == 0:
        return np.zeros(0)
    pos = np.arange(n)
    var, node = _variant_nodes(tree, pos)
    scan = nd.scan[node].copy()
    at_k = node == tree.child_node[tree.pos_child][var]
    scan[at_k] = scan_without[var[at_k]]
    charge = _variant_charges(engine, tree, pos, np.zeros(n), (var, node))
    kinds = [a.combine for a in engine.model.addons]
    req_without = combine(kinds, scan, charge.reshape(len(kinds), len(var)))[0]
    diff = (nd.requirement[node] - req_without) * tree.node_fx[node] / tree.report_fx
    return np.asarray(engine.model.im_factor * np.bincount(var, diff, minlength=n), dtype=float)


def marginal(engine: Any, tree: Tree, nd: Nodes, scan_contribution: np.ndarray, rel_step: float = 1e-6) -> np.ndarray:
    """dIM/dq per position (report currency per unit): the scan's derivative exactly (Euler: the
    position's P&L over the tail scenarios), each add-on's by a central difference of the add-on on
    variant accounts; combined through the branch of the requirement rule that holds."""
    ctx = tree.ctx
    n = len(ctx.pos_instrument)
    if n == 0:
        return np.zeros(0)
    pos = np.arange(n)
    q = ctx.pos_quantity
    var, node = _variant_nodes(tree, pos)
    n_comp = len(engine.model.addons)
    dcharge = np.zeros((n_comp, len(var)))
    if n_comp:
        h = rel_step * np.maximum(np.abs(q), 1.0)
        up = _variant_charges(engine, tree, pos, q + h, (var, node))
        down = _variant_charges(engine, tree, pos, q - h, (var, node))
        dcharge = (up - down) / (2 * h[var])
    at_k = node == tree.child_node[tree.pos_child][var]
    dscan = np.where(at_k, scan_contribution[var] / q[var], 0.0)
    kinds = np.array([a.combine for a in engine.model.addons], dtype=object)
    d_add = dcharge[kinds == "add"].sum(axis=0) if n_comp else 0.0
    d_credit = dcharge[kinds == "credit"].sum(axis=0) if n_comp else 0.0
    through_net = np.where(nd.net[node] > 0, dscan + d_add - d_credit * (nd.share[node] >= 1.0), 0.0)
    binding = nd.binding[node]
    if n_comp:
        through_floor = dcharge[np.maximum(binding, 0), np.arange(len(var))]
        dreq = np.where(binding >= 0, through_floor, through_net)
    else:
        dreq = through_net
    out = engine.model.im_factor * np.bincount(var, dreq * tree.node_fx[node] / tree.report_fx, minlength=n)
    return np.asarray(out, dtype=float)
