"""Floors: the short-option minimum and the per-contract minimum."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from ..codes import CALL, PUT
from .base import AddOn, Context, kind_mask, per_contract, tiered, tiered_scalar
from .conventions import KIND_NAMES
from .params import REQUIRED, Param


class ShortOptionMinimum(AddOn):
    """SPAN short-option minimum, combine = floor.

    Per pair: per short option (net quantity q < 0) an amount ``-q * rate_u`` (``basis = "contract"``,
    rate per contract in ``currency``: "settlement" or "USD", converted with the unit's FX) or
    ``-q * rate_u * notional_k`` (``"notional"``, rate a fraction); ``method = "gross"`` sums calls
    and puts, ``"max"`` takes the larger of the two sums (as span.py's GROSS / MAX).
    """

    type = "short_option_minimum"
    combine = "floor"
    params: ClassVar[dict[str, Param]] = {
        "rate": Param("per_unit", REQUIRED, lo=0.0),
        "basis": Param("str", "contract", choices=("contract", "notional")),
        "method": Param("str", "gross", choices=("gross", "max")),
        "currency": Param("str", "settlement", choices=("settlement", "USD")),
    }
    per_unit = ("rate",)

    def compute(self, ctx: Context, p: dict[str, Any]) -> np.ndarray:
        i, q = ctx.pos_instrument, ctx.pos_quantity
        kind = ctx.kind[i]
        per = per_contract(ctx, p, i) if p["basis"] == "contract" else ctx.notional[i]
        amount = np.maximum(-q, 0.0) * p["rate"][ctx.unit_of_row[i]] * per
        calls = ctx.per_pair(amount, kind == CALL)
        puts = ctx.per_pair(amount, kind == PUT)
        return np.asarray(calls + puts if p["method"] == "gross" else np.maximum(calls, puts), dtype=float)

    def reference(self, ctx: Context, p: dict[str, Any]) -> np.ndarray:
        calls, puts = np.zeros(ctx.n_pairs), np.zeros(ctx.n_pairs)
        for pair, i, q in zip(ctx.pos_pair, ctx.pos_instrument, ctx.pos_quantity, strict=True):
            if q >= 0 or ctx.kind[i] not in (CALL, PUT):
                continue
            u = ctx.unit_of_row[i]
            per = (
                (1.0 / ctx.unit_fx[u] if p["currency"] == "USD" else 1.0)
                if p["basis"] == "contract"
                else ctx.notional[i]
            )
            amount = -q * p["rate"][u] * per
            if ctx.kind[i] == CALL:
                calls[pair] += amount
            else:
                puts[pair] += amount
        return calls + puts if p["method"] == "gross" else np.maximum(calls, puts)


class PerContractMinimum(AddOn):
    """Per-contract minimum (OCC TIMS / FINRA 4210(g): $0.375 x multiplier per long or short
    contract; OKX MR7-style minimum charge with ``basis = "notional"`` and tiers), combine = floor.

    Per pair: raw = ``sum_k |q_k| * rate_u * (multiplier_k | notional_k)`` over positions of the
    listed kinds, in settlement currency (``basis = "multiplier"``: the rate is an amount per unit of
    multiplier in ``currency``, "settlement" or "USD"; ``"notional"``: a fraction of the notional).
    With ``tiers = [[start_usd, multiplier], ...]`` the USD raw amount is scaled piecewise:
    ``sum_j m_j * overlap(raw_usd, [start_j, start_j+1))``.
    """

    type = "per_contract_minimum"
    combine = "floor"
    params: ClassVar[dict[str, Param]] = {
        "rate": Param("per_unit", REQUIRED, lo=0.0),
        "kinds": Param("strs", ("call", "put", "future"), choices=KIND_NAMES),
        "basis": Param("str", "multiplier", choices=("multiplier", "notional")),
        "currency": Param("str", "settlement", choices=("settlement", "USD")),
        "tiers": Param("tiers", None),
    }
    per_unit = ("rate",)

    def check(self) -> None:
        tiers = self.config["tiers"]
        if tiers is not None and tiers[0][0] != 0.0:
            raise ValueError(f"{self.where}.tiers[0][0]: the first tier must start at 0, got {tiers[0][0]}")

    def compute(self, ctx: Context, p: dict[str, Any]) -> np.ndarray:
        i = ctx.pos_instrument
        sel = kind_mask(p["kinds"])[ctx.kind[i]]
        size = ctx.multiplier[i] * per_contract(ctx, p, i) if p["basis"] == "multiplier" else ctx.notional[i]
        raw = ctx.per_pair(np.abs(ctx.pos_quantity) * p["rate"][ctx.unit_of_row[i]] * size, sel)
        if p["tiers"] is None:
            return raw
        fx = ctx.unit_fx[ctx.pair_unit]
        return np.asarray(tiered(raw * fx, p["tiers"]) / fx, dtype=float)

    def reference(self, ctx: Context, p: dict[str, Any]) -> np.ndarray:
        raw = np.zeros(ctx.n_pairs)
        for pair, i, q in zip(ctx.pos_pair, ctx.pos_instrument, ctx.pos_quantity, strict=True):
            if KIND_NAMES[ctx.kind[i]] in p["kinds"]:
                fx = ctx.unit_fx[ctx.unit_of_row[i]] if p["currency"] == "USD" else 1.0
                size = ctx.multiplier[i] / fx if p["basis"] == "multiplier" else ctx.notional[i]
                raw[pair] += abs(q) * p["rate"][ctx.unit_of_row[i]] * size
        if p["tiers"] is None:
            return raw
        out = np.zeros(ctx.n_pairs)
        for pair in range(ctx.n_pairs):
            fx = ctx.unit_fx[ctx.pair_unit[pair]]
            out[pair] = tiered_scalar(raw[pair] * fx, p["tiers"]) / fx
        return out


__all__ = ["PerContractMinimum", "ShortOptionMinimum"]
