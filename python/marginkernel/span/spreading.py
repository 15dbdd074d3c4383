"""Delta spreading and the short-option minimum of one SPAN margin run.

Per account and combined commodity the deltas are summed per contract month; intra-commodity
spreads (``<dSpread>`` of the commodity) form on them first, then inter-commodity spreads
(``<interSpreads>``) on what is left, as :mod:`marginkernel.spreads` defines it (tier legs and
period legs alike). The short-option minimum uses the commodity's ``somTiers``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..spreads import Spread, Tier, consume, delta_sign, form_intra_spread, leg_rows
from .model import SpanFile
from .rules import SpanRules

TOL = 1e-9  # deltas of this size or less count as zero when forming spreads


@dataclass
class Book:
    """Deltas per (account, commodity) and contract month, short options, net option value."""

    months: dict[tuple[int, int], dict[str, float]] = field(default_factory=dict)
    shorts: dict[tuple[int, int], list[tuple[str, str, float]]] = field(default_factory=dict)
    remaining: dict[tuple[int, int], tuple[list[str], np.ndarray]] = field(default_factory=dict)


def _ordered(spreads: list[Spread] | tuple[Spread, ...], rules: SpanRules) -> list[Spread]:
    return sorted(spreads, key=lambda s: s.number) if rules.spread_order == "number" else list(spreads)


def intra_charges(span: SpanFile, book: Book, ccs: list[str], rules: SpanRules, out: dict[str, np.ndarray]) -> None:
    """Intra-commodity charges into ``out['intra_charge']`` / ``out['intra_count']``; fills
    ``book.remaining`` with the month deltas left for inter-commodity spreads."""
    by_cc: dict[str | None, list[Spread]] = {}
    for s in span.intra_spreads:
        by_cc.setdefault(s.cc, []).append(s)
    for key, months in book.months.items():
        cc = ccs[key[1]]
        mlist = sorted(months)
        d = np.array([months[m] for m in mlist])
        tiers = span.intra_tiers.get(cc, (Tier(0),))
        for s in _ordered(by_cc.get(cc, []), rules):
            n = form_intra_spread(s, tiers, mlist, d, TOL, rules.whole_spreads)
            if n > 0:
                if s.charge_method != "F":
                    raise ValueError(
                        f"ccDef[cc={cc}]/dSpread[spread={s.number}]/<chargeMeth>: method {s.charge_method!r} "
                        "is not supported for intra-commodity spreads (supported: 'F')"
                    )
                out["intra_charge"][key] += n * s.rate
                out["intra_count"][key] += n
        book.remaining[key] = (mlist, d)


def som_charges(span: SpanFile, book: Book, ccs: list[str], out: np.ndarray) -> None:
    """Short-option minimum per (account, commodity): the tier rate per short option contract;
    'GROSS' counts calls + puts, 'MAX' / 'NET' the larger of the two."""
    for key, shorts in book.shorts.items():
        cc = ccs[key[1]]
        method = span.commodities.at[cc, "som_method"]
        rate_of = span.som_tiers.get(cc, ())
        calls = puts = 0.0
        for o, mth, n_short in shorts:
            rate = next((rt for t, rt in rate_of if t.contains(mth)), 0.0)
            if o == "C":
                calls += n_short * rate
            else:
                puts += n_short * rate
        if method == "GROSS":
            out[key] = calls + puts
        elif method in ("MAX", "NET"):
            out[key] = max(calls, puts)
        elif calls + puts > 0:
            raise ValueError(f"ccDef[cc={cc}]/<somMeth>: method {method!r} is not supported (GROSS, MAX)")


def inter_credits(span: SpanFile, book: Book, held: np.ndarray, wfpr: np.ndarray, rules: SpanRules) -> np.ndarray:
    """Inter-commodity credits per (account, commodity), consuming ``book.remaining`` deltas:
    credit to each leg's commodity = rate × spreads × ratio × wfpr (method 'W')."""
    cc_index = {cc: k for k, cc in enumerate(span.commodities.index)}
    credit = np.zeros(held.shape)
    for s in _ordered(span.inter_spreads, rules):
        units = [cc_index[leg.cc] for leg in s.legs]
        for a in range(held.shape[0]):
            if not all(held[a, k] for k in units):
                continue
            legs = []
            for leg, k in zip(s.legs, units, strict=True):
                mlist, d = book.remaining[(a, k)]
                idx = leg_rows(leg, span.inter_tiers.get(leg.cc, (Tier(0),)), mlist)
                legs.append((leg, k, idx, float(d[idx].sum()) if idx else 0.0))
            first, _, _, first_d = legs[0]
            sign = delta_sign(first_d, TOL) * (1 if first.side == "A" else -1)
            if sign == 0 or any(delta_sign(dl, TOL) != (sign if lg.side == "A" else -sign) for lg, _, _, dl in legs):
                continue
            n = min(abs(dl) / lg.ratio for lg, _, _, dl in legs)
            if rules.whole_spreads:
                n = math.floor(n + TOL)
            if n <= TOL:
                continue
            if s.charge_method != "W":
                raise ValueError(
                    f"interSpreads/dSpread[spread={s.number}]/<chargeMeth>: method {s.charge_method!r} "
                    "is not supported for inter-commodity spreads (supported: 'W')"
                )
            for lg, k, idx, dl in legs:
                credit[a, k] += s.rate * n * lg.ratio * wfpr[a, k]
                consume(book.remaining[(a, k)][1], idx, delta_sign(dl, TOL), n * lg.ratio)
    return credit


__all__ = ["TOL", "Book", "inter_credits", "intra_charges", "som_charges"]
