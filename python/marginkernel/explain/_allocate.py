"""Allocation of each add-on's pair charge to the pair's positions, by the add-on's own rule.

Every rule returns one amount per position (settlement currency) whose sum over a pair's positions
is the pair's charge (docs/explain.md states each rule):

* roll shock, per-contract minimum (before tiers), short-option minimum, contingency option part:
  each position's own term (tiers and the short-option "max" method scale the terms pro rata);
* delta shock, net-delta concentration: pro rata to the position's signed delta q_k * delta_k over the
  pair's net delta (the Euler rule of a charge in |D|);
* gross-delta concentration, SPAN spread charges and credits, any other add-on: pro rata to
  |q_k * delta_k| (equal shares when the pair has no delta);
* contingency futures part ``rate * min(long, short)``: pro rata to the notional of the smaller side
  (half to each side on a tie).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..addons import AddOn, Context
from ..addons.conventions import KIND_NAMES
from ..codes import CALL, FUTURE, PERPETUAL, PUT


def _pro_rata(ctx: Context, charge: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """charge[pair] shared over its positions in proportion to `basis` (equal shares if it sums to 0)."""
    total = np.bincount(ctx.pos_pair, basis, minlength=ctx.n_pairs)
    count = np.bincount(ctx.pos_pair, minlength=ctx.n_pairs)
    t = total[ctx.pos_pair]
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(t != 0.0, basis / np.where(t != 0.0, t, 1.0), 1.0 / np.maximum(count[ctx.pos_pair], 1))
    return np.asarray(charge[ctx.pos_pair] * share, dtype=float)


def _kinds(ctx: Context, kinds: Any) -> np.ndarray:
    mask = np.array([k in kinds for k in KIND_NAMES])
    return np.asarray(mask[ctx.kind[ctx.pos_instrument]], dtype=bool)


def _own_terms(addon: AddOn, ctx: Context, p: dict[str, Any]) -> np.ndarray | None:
    """Each position's own term of a position-separable add-on (before tiers), or None."""
    i, q = ctx.pos_instrument, ctx.pos_quantity
    u = ctx.unit_of_row[i]
    t = addon.type
    if t == "roll_shock":
        move = np.maximum(
            p["min_annualised_move"][u], p["annualised_move_risk"][u] * np.maximum(ctx.expiry_years[i], 0.0)
        )
        return np.where(_kinds(ctx, p["kinds"]), np.abs(q) * ctx.notional[i] * move, 0.0)
    if t == "per_contract_minimum":
        per = ctx.multiplier[i] / ctx.unit_fx[u] if p["currency"] == "USD" else ctx.multiplier[i]
        size = per if p["basis"] == "multiplier" else ctx.notional[i]
        return np.where(_kinds(ctx, p["kinds"]), np.abs(q) * p["rate"][u] * size, 0.0)
    if t == "short_option_minimum":
        if p["basis"] == "contract":
            per = 1.0 / ctx.unit_fx[u] if p["currency"] == "USD" else np.ones(len(i))
        else:
            per = ctx.notional[i]
        kind = ctx.kind[i]
        amount = np.where((kind == CALL) | (kind == PUT), np.maximum(-q, 0.0) * p["rate"][u] * per, 0.0)
        if p["method"] == "max":
            calls = ctx.per_pair(amount, kind == CALL)
            puts = ctx.per_pair(amount, kind == PUT)
            side_call = calls >= puts
            side_put = puts >= calls
            keep = np.where(kind == CALL, side_call[ctx.pos_pair], side_put[ctx.pos_pair])
            amount = np.where(keep, amount, 0.0)
        return amount
    return None


def _contingency(ctx: Context, p: dict[str, Any], charge: np.ndarray) -> np.ndarray:
    i, q = ctx.pos_instrument, ctx.pos_quantity
    kind, u = ctx.kind[i], ctx.unit_of_row[i]
    opt = (kind == CALL) | (kind == PUT)
    if p["option_side"] == "short":
        opt &= q < 0
    out = np.where(opt, np.abs(q) * ctx.notional[i] * p["option_rate"][u], 0.0)
    fut = (kind == FUTURE) | (kind == PERPETUAL)
    long_ = ctx.per_pair(q * ctx.notional[i], fut & (q > 0))
    short = ctx.per_pair(-q * ctx.notional[i], fut & (q < 0))
    part = p["future_rate"][ctx.pair_unit] * np.minimum(long_, short)
    side_long = np.where(long_ < short, 1.0, np.where(long_ == short, 0.5, 0.0))
    pair = ctx.pos_pair
    notional = np.abs(q) * ctx.notional[i]
    with np.errstate(divide="ignore", invalid="ignore"):
        share_long = np.where(fut & (q > 0) & (long_[pair] > 0), notional / long_[pair], 0.0) * side_long[pair]
        share_short = np.where(fut & (q < 0) & (short[pair] > 0), notional / short[pair], 0.0) * (1 - side_long[pair])
    out = out + part[pair] * (share_long + share_short)
    # exact by construction; any rounding residue goes pro rata to the terms
    return _pro_rata(ctx, charge, out) if np.any(charge) else out * 0.0


def allocate(addon: AddOn, ctx: Context, p: dict[str, Any], charge: np.ndarray) -> np.ndarray:
    """Per position: its share of its pair's `charge` of this add-on (settlement currency)."""
    if len(ctx.pos_pair) == 0:
        return np.zeros(0)
    if addon.type == "contingency":
        return _contingency(ctx, p, charge)
    own = _own_terms(addon, ctx, p)
    if own is not None:
        return _pro_rata(ctx, charge, own)
    d = ctx.pos_quantity * ctx.delta[ctx.pos_instrument]
    if addon.type == "delta_shock" or (addon.type == "concentration" and p["measure"] == "net_delta"):
        return _pro_rata(ctx, charge, d)
    return _pro_rata(ctx, charge, np.abs(d))
