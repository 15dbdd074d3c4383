"""The concentration add-on (tiered charge on the USD delta of a pair)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from .base import AddOn, Context, tiered, tiered_scalar
from .params import REQUIRED, Param


class Concentration(AddOn):
    """Concentration add-on, combine = add.

    Per pair: x = USD delta, ``|sum_k q_k delta_k| * S_u`` (``measure = "net_delta"``) or
    ``sum_k |q_k delta_k| * S_u`` (``"gross_delta"``); charge = ``sum_j rate_j * overlap(x,
    [start_j, start_j+1))`` USD (``tiers = [[start_usd, rate], ...]``, marginal rates), in settlement
    currency.
    """

    type = "concentration"
    combine = "add"
    params: ClassVar[dict[str, Param]] = {
        "measure": Param("str", "net_delta", choices=("net_delta", "gross_delta")),
        "tiers": Param("tiers", REQUIRED),
    }

    def compute(self, ctx: Context, p: dict[str, Any]) -> np.ndarray:
        d = ctx.pos_quantity * ctx.delta[ctx.pos_instrument]
        x = np.abs(ctx.per_pair(d)) if p["measure"] == "net_delta" else ctx.per_pair(np.abs(d))
        u = ctx.pair_unit
        return np.asarray(tiered(x * ctx.unit_spot[u], p["tiers"]) / ctx.unit_fx[u], dtype=float)

    def reference(self, ctx: Context, p: dict[str, Any]) -> np.ndarray:
        net, gross = np.zeros(ctx.n_pairs), np.zeros(ctx.n_pairs)
        for pair, i, q in zip(ctx.pos_pair, ctx.pos_instrument, ctx.pos_quantity, strict=True):
            net[pair] += q * ctx.delta[i]
            gross[pair] += abs(q * ctx.delta[i])
        out = np.zeros(ctx.n_pairs)
        for pair in range(ctx.n_pairs):
            u = ctx.pair_unit[pair]
            x = abs(net[pair]) if p["measure"] == "net_delta" else gross[pair]
            out[pair] = tiered_scalar(x * ctx.unit_spot[u], p["tiers"]) / ctx.unit_fx[u]
        return out


__all__ = ["Concentration"]
