"""Contingencies on options and offsetting futures (Deribit's original PM, Derive-style)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from ..codes import CALL, FUTURE, PERPETUAL, PUT
from .base import AddOn, Context
from .params import Param


class Contingency(AddOn):
    """Contingencies (Deribit's original PM, Derive-style), combine = add.

    Per pair: ``option_rate_u * sum_k |q_k| * notional_k`` over options (``option_side = "gross"``:
    all; ``"short"``: short positions only), plus ``future_rate_u * min(long, short)`` where long /
    short are the summed notionals of long / short futures and perpetuals (offsetting futures).
    """

    type = "contingency"
    combine = "add"
    params: ClassVar[dict[str, Param]] = {
        "option_rate": Param("per_unit", 0.0, lo=0.0),
        "option_side": Param("str", "gross", choices=("gross", "short")),
        "future_rate": Param("per_unit", 0.0, lo=0.0),
    }
    per_unit = ("option_rate", "future_rate")

    def compute(self, ctx: Context, p: dict[str, Any]) -> np.ndarray:
        i, q = ctx.pos_instrument, ctx.pos_quantity
        kind, u = ctx.kind[i], ctx.unit_of_row[i]
        opt = (kind == CALL) | (kind == PUT)
        if p["option_side"] == "short":
            opt &= q < 0
        options = ctx.per_pair(np.abs(q) * ctx.notional[i] * p["option_rate"][u], opt)
        fut = (kind == FUTURE) | (kind == PERPETUAL)
        long_ = ctx.per_pair(q * ctx.notional[i], fut & (q > 0))
        short = ctx.per_pair(-q * ctx.notional[i], fut & (q < 0))
        return np.asarray(options + p["future_rate"][ctx.pair_unit] * np.minimum(long_, short), dtype=float)

    def reference(self, ctx: Context, p: dict[str, Any]) -> np.ndarray:
        options, long_, short = np.zeros(ctx.n_pairs), np.zeros(ctx.n_pairs), np.zeros(ctx.n_pairs)
        for pair, i, q in zip(ctx.pos_pair, ctx.pos_instrument, ctx.pos_quantity, strict=True):
            k, u = ctx.kind[i], ctx.unit_of_row[i]
            if k in (CALL, PUT) and (p["option_side"] == "gross" or q < 0):
                options[pair] += abs(q) * ctx.notional[i] * p["option_rate"][u]
            if k in (FUTURE, PERPETUAL):
                if q > 0:
                    long_[pair] += q * ctx.notional[i]
                else:
                    short[pair] -= q * ctx.notional[i]
        return np.asarray(
            options
            + np.array([p["future_rate"][ctx.pair_unit[k]] * min(long_[k], short[k]) for k in range(ctx.n_pairs)]),
            dtype=float,
        )


__all__ = ["Contingency"]
