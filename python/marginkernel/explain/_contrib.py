"""Per-position contributions: the scan by the Euler / component rule, add-ons by their own rules."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..addons import Context
from ..engine.results import addon_charges as engine_addon_charges
from . import _allocate
from ._tree import Tree, joint, tail


@dataclass(eq=False)
class Nodes:
    """Per node: scan, add-on charges (node currency) and how the requirement combines them."""

    scan: np.ndarray
    tail: np.ndarray  # (N, S) tail weights of the scan
    factor: np.ndarray  # (C, S) child factors in the joint P&L
    charge: np.ndarray  # (k, N)
    requirement: np.ndarray
    contrib: np.ndarray  # (k, N) component contributions (engine's rule)
    share: np.ndarray  # applied credit / credits
    uplift: np.ndarray
    binding: np.ndarray  # floor component binding per node (-1: none)
    net: np.ndarray


def addon_charges(engine: Any, ctx: Context) -> tuple[np.ndarray, list[Any]]:
    """Pair charges (components, pairs) of the model's add-ons on `ctx` (in order: later add-ons may
    read what earlier ones leave in ctx.shared) and the resolved parameters."""
    return engine_addon_charges(engine, ctx, ctx.n_pairs), list(engine.addon_params)


def to_nodes(
    pair_values: np.ndarray, pair_node: np.ndarray, pair_unit: np.ndarray, unit_fx: Any, node_fx: Any
) -> np.ndarray:
    """Pair amounts (settlement currency) summed into their node (node currency)."""
    n = len(node_fx)
    return np.array(
        [np.bincount(pair_node, v * unit_fx[pair_unit], minlength=n) / node_fx for v in pair_values]
    ).reshape(len(pair_values), n)


def combine(kinds: list[str], scan: np.ndarray, charge: np.ndarray) -> tuple[np.ndarray, ...]:
    """The engine's rule: requirement = max(max(0, scan + adds - credits), max(floors))."""
    kinds_a = np.array(kinds, dtype=object)
    is_add, is_credit, is_floor = (kinds_a == "add"), (kinds_a == "credit"), (kinds_a == "floor")
    base = scan + charge[is_add].sum(axis=0)
    credits = charge[is_credit].sum(axis=0)
    applied = np.minimum(credits, base)
    net = base - applied
    floors = charge[is_floor]
    top = floors.max(axis=0) if len(floors) else np.zeros(len(scan))
    uplift = np.maximum(top - net, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(credits > 0, applied / np.where(credits > 0, credits, 1.0), 0.0)
    binding = np.full(len(scan), -1)
    if len(floors):
        binding = np.where(uplift > 0, np.flatnonzero(is_floor)[np.argmax(floors, axis=0)], -1)
    contrib = np.zeros_like(charge)
    contrib[is_add] = charge[is_add]
    contrib[is_credit] = -charge[is_credit] * share
    for k in range(len(kinds)):
        contrib[k] += np.where(binding == k, uplift, 0.0)
    return net + uplift, contrib, share, uplift, binding, net


def nodes(engine: Any, tree: Tree) -> tuple[Nodes, np.ndarray, list[Any]]:
    model = engine.model
    jp, factor = joint(tree)
    scan, weights = tail(jp, model, engine.scenario_set.probability)
    pair_charge, params = addon_charges(engine, tree.ctx)
    charge = to_nodes(pair_charge, tree.pair_node, tree.ctx.pair_unit, tree.ctx.unit_fx, tree.node_fx)
    kinds = [a.combine for a in model.addons]
    req, contrib, share, uplift, binding, net = combine(kinds, scan, charge)
    return Nodes(scan, weights, factor, charge, req, contrib, share, uplift, binding, net), pair_charge, params


def position_contributions(
    engine: Any, tree: Tree, nd: Nodes, pair_charge: np.ndarray, params: list[Any]
) -> np.ndarray:
    """(1 + components, K) contributions of each position in the node currency (not yet scaled to IM)."""
    ctx = tree.ctx
    pos_node = tree.child_node[tree.pos_child]
    k_pos = len(pos_node)
    out = np.zeros((1 + len(params), k_pos))
    if k_pos == 0:
        return out
    f = nd.factor[tree.pos_child]
    out[0] = -np.einsum("ks,ks,ks->k", nd.tail[pos_node], f, tree.pos_weighted)
    fx = ctx.unit_fx[ctx.pos_unit] / tree.node_fx[pos_node]
    for k, (addon, p) in enumerate(zip(engine.model.addons, params, strict=False)):
        alloc = _allocate.allocate(addon, ctx, p, pair_charge[k]) * fx
        if addon.combine == "add":
            out[1 + k] = alloc
        elif addon.combine == "credit":
            out[1 + k] = -alloc * nd.share[pos_node]
        else:
            total = nd.charge[k][pos_node]
            bind = (nd.binding[pos_node] == k) & (total > 0)
            with np.errstate(divide="ignore", invalid="ignore"):
                out[1 + k] = np.where(bind, nd.uplift[pos_node] * alloc / np.where(bind, total, 1.0), 0.0)
    return out
