"""Roll / basis shock and delta shock add-ons."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from .base import AddOn, Context, kind_mask
from .conventions import KIND_NAMES
from .params import REQUIRED, Param


class RollShock(AddOn):
    """Roll / basis shock (Deribit "roll shock", OKX "basis risk" MR4), combine = add.

    Per pair: ``sum_k |q_k| * notional_k * max(min_annualised_move_u, annualised_move_risk_u * T_k)``
    over positions k of the kinds listed (default futures and perpetuals), T_k the years to expiry
    (0 for perpetuals). For a coin-settled perpetual this is |position in coin| x min annualised move.
    """

    type = "roll_shock"
    combine = "add"
    params: ClassVar[dict[str, Param]] = {
        "annualised_move_risk": Param("per_unit", 0.0, lo=0.0, doc="annualised move of the basis, per year to expiry"),
        "min_annualised_move": Param("per_unit", 0.0, lo=0.0, doc="floor of the move (fraction of notional)"),
        "kinds": Param("strs", ("future", "perpetual"), choices=KIND_NAMES, doc="instrument kinds charged"),
    }
    per_unit = ("annualised_move_risk", "min_annualised_move")

    def _move(self, ctx: Context, p: dict[str, Any], i: np.ndarray) -> np.ndarray:
        u = ctx.unit_of_row[i]
        return np.asarray(
            np.maximum(
                p["min_annualised_move"][u], p["annualised_move_risk"][u] * np.maximum(ctx.expiry_years[i], 0.0)
            ),
            dtype=float,
        )

    def compute(self, ctx: Context, p: dict[str, Any]) -> np.ndarray:
        i = ctx.pos_instrument
        sel = kind_mask(p["kinds"])[ctx.kind[i]]
        amount = np.abs(ctx.pos_quantity) * ctx.notional[i] * self._move(ctx, p, i)
        return ctx.per_pair(amount, sel)

    def reference(self, ctx: Context, p: dict[str, Any]) -> np.ndarray:
        out = np.zeros(ctx.n_pairs)
        for pair, i, q in zip(ctx.pos_pair, ctx.pos_instrument, ctx.pos_quantity, strict=True):
            if KIND_NAMES[ctx.kind[i]] in p["kinds"]:
                u = ctx.unit_of_row[i]
                move = max(p["min_annualised_move"][u], p["annualised_move_risk"][u] * max(ctx.expiry_years[i], 0.0))
                out[pair] += abs(q) * ctx.notional[i] * move
        return out


class DeltaShock(AddOn):
    """Delta shock above a liquidity threshold (Deribit "delta shock"), combine = add.

    Per pair: net delta D = sum_k q_k * delta_k (underlying units), USD delta |D| * S_u;
    charge = ``shock_u * max(0, |D| * S_u - threshold_u)`` USD, in settlement currency (/ fx_u).
    """

    type = "delta_shock"
    combine = "add"
    params: ClassVar[dict[str, Param]] = {
        "threshold": Param("per_unit", 0.0, lo=0.0, doc="USD delta notional exempt from the shock"),
        "shock": Param("per_unit", REQUIRED, lo=0.0, doc="fraction of the USD delta above the threshold"),
    }
    per_unit = ("threshold", "shock")

    def compute(self, ctx: Context, p: dict[str, Any]) -> np.ndarray:
        net = ctx.per_pair(ctx.pos_quantity * ctx.delta[ctx.pos_instrument])
        u = ctx.pair_unit
        usd = np.abs(net) * ctx.unit_spot[u]
        return np.asarray(p["shock"][u] * np.maximum(usd - p["threshold"][u], 0.0) / ctx.unit_fx[u], dtype=float)

    def reference(self, ctx: Context, p: dict[str, Any]) -> np.ndarray:
        net = np.zeros(ctx.n_pairs)
        for pair, i, q in zip(ctx.pos_pair, ctx.pos_instrument, ctx.pos_quantity, strict=True):
            net[pair] += q * ctx.delta[i]
        out = np.zeros(ctx.n_pairs)
        for pair in range(ctx.n_pairs):
            u = ctx.pair_unit[pair]
            usd = abs(net[pair]) * ctx.unit_spot[u]
            out[pair] = p["shock"][u] * max(usd - p["threshold"][u], 0.0) / ctx.unit_fx[u]
        return out


__all__ = ["DeltaShock", "RollShock"]
