"""Delta spreads between contract months and commodities: tiers, legs and how spreads form.

Generic to spread-based margin add-ons (SPAN intra-commodity charges and inter-commodity credits,
and any model file that declares spreads); :mod:`marginkernel.span` reads them from clearing-house
files and :mod:`marginkernel.addons` applies them. This is the plain-loop definition the vectorised
add-ons are tested against.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SpreadLeg:
    """One leg of a delta spread: ``ratio`` deltas of tier ``tier`` of commodity ``cc`` on side
    ``side`` ('A' or 'B': legs marked A are on one side of the market, legs marked B on the other).

    ``period`` set: the leg is one contract period (a SPAN ``<pLeg>``: the deltas of the months whose
    leading digits equal the period's) instead of a tier (``<tLeg>``); ``tier`` is then ignored."""

    cc: str
    tier: int
    side: str
    ratio: float
    period: str | None = None


@dataclass(frozen=True)
class Spread:
    """A delta-based spread (``<dSpread>``): intra-commodity when ``cc`` is set, else inter-commodity.

    ``charge_method`` is the file's ``<chargeMeth>``: 'F' -- a flat ``rate`` per spread formed
    (intra-commodity charge); 'W' -- a credit of ``rate`` (a fraction) times the weighted futures
    price risk of each leg (inter-commodity credit)."""

    number: int
    charge_method: str
    rate: float
    legs: tuple[SpreadLeg, ...]
    cc: str | None = None


@dataclass(frozen=True)
class Tier:
    """A tier of contract periods of one commodity; ``None`` bounds mean open-ended."""

    number: int
    start: str | None = None
    end: str | None = None

    def contains(self, month: str) -> bool:
        """``month`` within the bounds, compared on the bounds' own precision: a tier ending at
        ``202606`` contains the weekly period ``20260630``."""
        lo = self.start is None or month[: len(self.start)] >= self.start
        return lo and (self.end is None or month[: len(self.end)] <= self.end)


def tier_rows(tiers: Iterable[Tier], tn: int, months: list[str]) -> list[int]:
    tier = next((t for t in tiers if t.number == tn), None)
    if tier is None:
        return [] if tn != 0 else list(range(len(months)))
    return [k for k, mth in enumerate(months) if tier.contains(mth)]


def period_month(period: str) -> str:
    """The leading digits of a period code ('201605S0' -> '201605', '20260630' -> '20260630')."""
    end = 0
    while end < len(period) and period[end].isdigit():
        end += 1
    return period[:end] if end else period


def leg_rows(leg: SpreadLeg, tiers: Iterable[Tier], months: list[str]) -> list[int]:
    """Rows of ``months`` a leg takes deltas from: the months that start with its period's leading
    digits (pLeg) or its tier (tLeg)."""
    if leg.period is not None:
        want = period_month(leg.period)  # a month leg (202401) takes every period of that month (20240104, ...)
        return [k for k, mth in enumerate(months) if mth[: len(want)] == want]
    return tier_rows(tiers, leg.tier, months)


def delta_sign(x: float, tol: float) -> int:
    return 0 if abs(x) <= tol else (1 if x > 0 else -1)


def consume(deltas: np.ndarray, idx: list[int], sign: int, amount: float) -> None:
    """Take ``amount`` of delta of sign ``sign`` out of months ``idx``, pro rata."""
    if amount <= 0 or not idx:
        return
    sub = deltas[idx]
    side = np.where(sign * sub > 0, sign * sub, 0.0)
    total = side.sum()
    if total <= 0:
        return
    deltas[idx] = sub - sign * side * min(amount / total, 1.0)


def form_intra_spread(  # noqa: PLR0917 -- positional since the first release (the add-ons call it so)
    s: Spread, tiers: Iterable[Tier], months: list[str], d: np.ndarray, tol: float, whole: bool
) -> float:
    """Form spread ``s`` on month deltas ``d`` (consumed in place); returns the number formed."""
    legs = [(leg, leg_rows(leg, tiers, months)) for leg in s.legs]
    if all(leg.period is None for leg in s.legs) and len({leg.tier for leg in s.legs}) == 1:
        if len(legs) != 2 or legs[0][0].side == legs[1][0].side:
            raise ValueError(
                f"ccDef[cc={s.cc}]/dSpread[spread={s.number}]: legs in one tier must be two, one on side A "
                "and one on side B"
            )
        idx = legs[0][1]
        sub = d[idx]
        long_, short = float(sub[sub > 0].sum()), float(-sub[sub < 0].sum())
        a_leg = next(leg for leg, _ in legs if leg.side == "A")
        b_leg = next(leg for leg, _ in legs if leg.side == "B")
        n1 = min(long_ / a_leg.ratio, short / b_leg.ratio)  # A long, B short
        n2 = min(short / a_leg.ratio, long_ / b_leg.ratio)  # A short, B long
        n = max(n1, n2)
        if whole:
            n = math.floor(n + tol)
        if n <= tol:
            return 0.0
        a_sign = 1 if n1 >= n2 else -1
        consume(d, idx, a_sign, n * a_leg.ratio)
        consume(d, idx, -a_sign, n * b_leg.ratio)
        return n
    tier_d = [float(d[idx].sum()) if idx else 0.0 for _, idx in legs]
    first_leg = legs[0][0]
    sign = delta_sign(tier_d[0], tol) * (1 if first_leg.side == "A" else -1)
    if sign == 0 or any(
        delta_sign(td, tol) != (sign if leg.side == "A" else -sign) for (leg, _), td in zip(legs, tier_d, strict=True)
    ):
        return 0.0
    n = min(abs(td) / leg.ratio for (leg, _), td in zip(legs, tier_d, strict=True))
    if whole:
        n = math.floor(n + tol)
    if n <= tol:
        return 0.0
    for (leg, idx), td in zip(legs, tier_d, strict=True):
        consume(d, idx, delta_sign(td, tol), n * leg.ratio)
    return n


__all__ = [
    "Spread",
    "SpreadLeg",
    "Tier",
    "consume",
    "delta_sign",
    "form_intra_spread",
    "leg_rows",
    "period_month",
    "tier_rows",
]
