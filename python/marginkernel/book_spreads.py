"""The SPAN delta-spread add-ons (``intra_spread``, ``inter_spread``) as the C++ model book takes them
(:mod:`marginkernel.book`, docs/book.md): the contract month of each instrument as a code into the
book's sorted month table, each spread leg's months (its tier) as codes, the intra scope per risk
unit, and per unit the scenario set's price multipliers and vol shifts (the SPAN price risk).

The semantics are :mod:`marginkernel.addons.spreads`; this module only lays its resolved parameters
out as arrays, with the same month table and tier rules (:func:`marginkernel.spreads.tier_rows`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .addons import instrument_months
from .spreads import Spread, Tier, tier_rows

__all__ = ["month_table", "spread_market", "spread_spec"]


def month_table(engine: Any) -> tuple[list[str], np.ndarray]:
    """(sorted months, code of each instrument): the add-ons' month table (``"YYYYMM"``, perpetuals
    and spot ``"000000"``) over every instrument of the engine."""
    months = np.asarray(instrument_months(engine.instruments.expiry)).astype(str)
    table, code = np.unique(months, return_inverse=True)
    return [str(m) for m in table], np.ascontiguousarray(code.reshape(-1), dtype=np.int32)


def spread_market(engine: Any) -> dict[str, Any]:
    """The book's market entries for spread add-ons: ``month`` / ``n_months``, and with an
    ``inter_spread`` the scenario set's ``price_multiplier`` and ``vol_shift`` (units x scenarios)."""
    table, code = month_table(engine)
    out: dict[str, Any] = {"month": code, "n_months": len(table)}
    if any(a.type == "inter_spread" for a in engine.model.addons):
        sc = engine.scenario_set
        out["price_multiplier"] = np.ascontiguousarray(sc.price_multiplier, dtype=np.float64)
        out["vol_shift"] = np.ascontiguousarray(sc.vol_shift, dtype=np.float64)
    return out


def _leg(tiers: Sequence[Tier], leg: Any, months: list[str], unit: int) -> dict[str, Any]:
    cols = np.asarray(tier_rows(tiers, leg.tier, months), dtype=np.int32)
    return {"unit": unit, "side_a": leg.side == "A", "ratio": float(leg.ratio), "months": cols}


def _intra(params: Mapping[str, Any], months: list[str], engine: Any) -> dict[str, Any]:
    names = params["underlyings"]
    units, underlying = list(engine.units), list(engine.market.unit_underlying)
    scope = [names is None or n in names or u in names for n, u in zip(units, underlying, strict=True)]
    spreads = [
        {
            "rate": float(s.rate),
            "one_tier": len({leg.tier for leg in s.legs}) == 1,
            "legs": [_leg(params["tiers"], leg, months, -1) for leg in s.legs],
        }
        for s in params["spreads"]
    ]
    return {"spreads": spreads, "scope": np.array(scope, dtype=np.uint8), "usd": params["currency"] == "USD"}


def _inter(addon: Any, params: Mapping[str, Any], months: list[str], engine: Any) -> dict[str, Any]:
    unit_index = {n: k for k, n in enumerate(engine.units)}
    spreads = []
    for s in params["spreads"]:
        s_: Spread = s
        if any(leg.cc not in unit_index for leg in s_.legs):
            continue  # as the engine: a spread naming a unit the engine does not have never forms
        legs = [_leg(params["tiers"].get(leg.cc, ()), leg, months, unit_index[leg.cc]) for leg in s_.legs]
        spreads.append({"rate": float(s_.rate), "one_tier": False, "legs": legs})
    after = -1
    if params["after"]:
        names = [a.name for a in engine.model.addons]
        k = names.index(params["after"]) if params["after"] in names else -1
        mine = names.index(addon.name)
        if k < 0 or k > mine or engine.model.addons[k].type != "intra_spread":
            raise ValueError(
                f"{addon.where}.after: no intra_spread add-on {params['after']!r} computed before this one"
            )
        after = k
    return {"spreads": spreads, "after": after, "scan_price_risk": params["price_risk"] == "scan"}


def spread_spec(engine: Any, addon: Any, params: Mapping[str, Any]) -> dict[str, Any]:
    """The C++ spec entries of one spread add-on (its resolved parameters ``params``)."""
    for k, s in enumerate(params["spreads"]):
        if len(s.legs) > 8:
            raise ValueError(
                f"{addon.where}.spreads[{k}].legs: the book holds spreads of at most 8 legs, got {len(s.legs)}"
            )
    months, _ = month_table(engine)
    spec = _intra(params, months, engine) if addon.type == "intra_spread" else _inter(addon, params, months, engine)
    spec["whole"] = bool(params["whole"])
    return spec
