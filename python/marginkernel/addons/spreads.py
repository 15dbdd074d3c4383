"""SPAN delta spreads as add-ons: the intra-commodity (calendar) charge and the inter-commodity credit.

The semantics are those of :mod:`marginkernel.spreads` (the reference of :class:`IntraSpread` is
:func:`marginkernel.spreads.form_intra_spread` itself); this module vectorises them over pairs."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from ..spreads import SpreadLeg, Tier, consume, form_intra_spread
from .base import AddOn, Context
from .params import REQUIRED, Param

#: deltas of this size or less count as zero when forming spreads (as in marginkernel.span)
TOL = 1e-9


def _month_table(ctx: Context) -> tuple[list[str], np.ndarray]:
    months, code = np.unique(ctx.month.astype(str), return_inverse=True)
    return list(months), code


def _tier_cols(tiers: Sequence[Tier], tn: int, months: Sequence[str]) -> np.ndarray:
    """Columns (months) of tier ``tn``: tier 0 undefined means every month (spreads.tier_rows)."""
    tier = next((t for t in tiers if t.number == tn), None)
    if tier is None:
        return np.arange(len(months)) if tn == 0 else np.zeros(0, dtype=np.int64)
    return np.array([k for k, m in enumerate(months) if tier.contains(m)], dtype=np.int64)


def _sgn(x: np.ndarray) -> np.ndarray:
    return np.where(np.abs(x) <= TOL, 0, np.where(x > 0, 1, -1))


def _consume_rows(d: np.ndarray, rows: np.ndarray, cols: np.ndarray, sign: np.ndarray, amount: np.ndarray) -> None:
    """Vectorised spreads.consume: in rows ``rows`` take ``amount`` of delta of sign ``sign`` out of
    columns ``cols``, pro rata (in place)."""
    if cols.size == 0 or rows.size == 0:
        return
    sub = d[np.ix_(rows, cols)]
    s = sign[:, None].astype(float)
    side = np.where(s * sub > 0, s * sub, 0.0)
    total = side.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where((total > 0) & (amount > 0), np.minimum(amount / total, 1.0), 0.0)
    d[np.ix_(rows, cols)] = sub - s * side * frac[:, None]


def _form(
    d: np.ndarray, rows: np.ndarray, legs: list[tuple[SpreadLeg, np.ndarray]], whole: bool, same_tier: bool
) -> np.ndarray:
    """Spreads formed per row of ``d`` (months in columns) by one spread with these legs (each with
    its columns); consumes the deltas. Vectorised spreads.form_intra_spread / the inter-commodity step."""
    if same_tier:
        (a_leg, cols), (b_leg, _) = sorted(legs, key=lambda lc: lc[0].side)
        sub = d[np.ix_(rows, cols)]
        long_ = np.where(sub > 0, sub, 0.0).sum(axis=1)
        short = np.where(sub < 0, -sub, 0.0).sum(axis=1)
        n1 = np.minimum(long_ / a_leg.ratio, short / b_leg.ratio)
        n2 = np.minimum(short / a_leg.ratio, long_ / b_leg.ratio)
        n = np.maximum(n1, n2)
        if whole:
            n = np.floor(n + TOL)
        n = np.where(n > TOL, n, 0.0)
        a_sign = np.where(n1 >= n2, 1, -1)
        _consume_rows(d, rows, cols, a_sign, n * a_leg.ratio)
        _consume_rows(d, rows, cols, -a_sign, n * b_leg.ratio)
        return n
    tier_d = np.stack(
        [d[np.ix_(rows, cols)].sum(axis=1) if cols.size else np.zeros(rows.size) for _, cols in legs], axis=1
    )
    first = legs[0][0]
    sign = _sgn(tier_d[:, 0]) * (1 if first.side == "A" else -1)
    ok = sign != 0
    for k, (leg, _) in enumerate(legs):
        ok &= _sgn(tier_d[:, k]) == (sign if leg.side == "A" else -sign)
    ratios = np.array([leg.ratio for leg, _ in legs])
    n = np.min(np.abs(tier_d) / ratios, axis=1)
    if whole:
        n = np.floor(n + TOL)
    n = np.where(ok & (n > TOL), n, 0.0)
    for k, (leg, cols) in enumerate(legs):
        _consume_rows(d, rows, cols, _sgn(tier_d[:, k]), n * leg.ratio)
    return n


class IntraSpread(AddOn):
    """SPAN intra-commodity (calendar) spread charge, combine = add.

    Per pair of a risk unit in ``underlyings`` (all when omitted; risk-unit names or underlyings):
    deltas per contract month, ``d[m] = sum_k q_k delta_k`` over instruments expiring in month m
    (perpetuals and spot: month "000000"). The spreads are formed in order, exactly as SPAN (and
    :func:`marginkernel.spreads.form_intra_spread`, the reference): two legs in one tier pair the tier's long months
    against its short months, ``n = max(min(long/rA, short/rB), min(short/rA, long/rB))``; legs in
    different tiers pair the tiers' net deltas when their signs match the legs' sides (A one way, B
    the other), ``n = min |d_tier| / ratio``; formed deltas are consumed pro rata. Charge =
    ``sum n * rate`` (rate per spread in ``currency``: "settlement" or "USD", converted with the
    unit's FX). ``whole = true`` forms whole spreads only. The remaining
    deltas are handed to an ``inter_spread`` add-on that names this one in ``after``.
    """

    type = "intra_spread"
    combine = "add"
    params: ClassVar[dict[str, Param]] = {
        "underlyings": Param("strs", None),
        "tiers": Param("month_tiers", ()),
        "spreads": Param("spreads", REQUIRED),
        "whole": Param("bool", False),
        "currency": Param("str", "settlement", choices=("settlement", "USD")),
    }

    def _scope(self, ctx: Context) -> np.ndarray:
        names = self.config["underlyings"]
        if names is None:
            return np.ones(ctx.n_units, dtype=bool)
        return np.array([n in names or u in names for n, u in zip(ctx.unit_names, ctx.unit_underlying, strict=True)])

    def compute(self, ctx: Context, p: dict[str, Any]) -> np.ndarray:
        months, code = _month_table(ctx)
        rows = np.flatnonzero(self._scope(ctx)[ctx.pair_unit])
        d = np.zeros((ctx.n_pairs, len(months)))
        np.add.at(d, (ctx.pos_pair, code[ctx.pos_instrument]), ctx.pos_quantity * ctx.delta[ctx.pos_instrument])
        charge = np.zeros(ctx.n_pairs)
        for s in p["spreads"]:
            legs = [(leg, _tier_cols(p["tiers"], leg.tier, months)) for leg in s.legs]
            same = len({leg.tier for leg in s.legs}) == 1
            charge[rows] += _form(d, rows, legs, p["whole"], same) * s.rate
        ctx.shared[self.name] = (months, rows, d)
        return charge / ctx.unit_fx[ctx.pair_unit] if p["currency"] == "USD" else charge

    def reference(self, ctx: Context, p: dict[str, Any]) -> np.ndarray:
        scope = self._scope(ctx)
        charge = np.zeros(ctx.n_pairs)
        for pair in range(ctx.n_pairs):
            if not scope[ctx.pair_unit[pair]]:
                continue
            by_month: dict[str, float] = {}
            for pp, i, q in zip(ctx.pos_pair, ctx.pos_instrument, ctx.pos_quantity, strict=True):
                if pp == pair:
                    by_month[str(ctx.month[i])] = by_month.get(str(ctx.month[i]), 0.0) + q * ctx.delta[i]
            months = sorted(by_month)
            d = np.array([by_month[m] for m in months])
            tiers = p["tiers"] or (Tier(0),)
            for s in p["spreads"]:
                charge[pair] += form_intra_spread(s, tiers, months, d, TOL, p["whole"]) * s.rate
            if p["currency"] == "USD":
                charge[pair] /= ctx.unit_fx[ctx.pair_unit[pair]]
        return charge


def price_risk(ctx: Context) -> np.ndarray:
    """SPAN price risk per pair: scan risk minus time risk (mean weighted loss of the scenarios with no
    price move) minus volatility risk (half the excess of the worst scenario's loss over its paired
    scenario's: same price move, opposite vol shift), floored at 0 (as marginkernel.span.margin)."""
    if ctx.n_pairs == 0:
        return np.zeros(0)
    m, v = ctx.price_multiplier, ctx.vol_shift
    n_units, n_s = m.shape
    paired = np.tile(np.arange(n_s), (n_units, 1))
    for u in range(n_units):
        first: dict[tuple[float, float], int] = {}
        for s in range(n_s):
            first.setdefault((float(m[u, s]), float(v[u, s])), s)
        for s in range(n_s):
            if v[u, s] != 0:
                paired[u, s] = first.get((float(m[u, s]), -float(v[u, s])), s)
    loss = -(ctx.pair_pnl * ctx.weight[ctx.pair_unit])
    scan = ctx.pair_scan
    time_mask = (m == 1.0)[ctx.pair_unit]
    counts = time_mask.sum(axis=1)
    time_risk = np.where(counts > 0, (loss * time_mask).sum(axis=1) / np.maximum(counts, 1), 0.0)
    rows = np.arange(ctx.n_pairs)
    active = loss[rows, ctx.pair_worst]
    pair_loss = loss[rows, paired[ctx.pair_unit, ctx.pair_worst]]
    vol_risk = np.where(scan > 0, np.maximum(active - pair_loss, 0.0) / 2.0, 0.0)
    return np.where(scan > 0, np.maximum(scan - time_risk - vol_risk, 0.0), 0.0)


class InterSpread(AddOn):
    """SPAN inter-commodity spread credit (delta based), combine = credit.

    Legs name risk units (``unit``), a tier of that unit (``tiers``: per unit, like intra tiers;
    tier 0 undefined = every month), a side and a delta ratio. Per account holding every leg's unit,
    spreads are formed in order on the units' deltas (those an ``intra_spread`` add-on named in
    ``after`` left, else the book's): the legs' tier deltas must have signs matching their sides;
    ``n = min |d_leg| / ratio``; each leg's pair is credited ``rate * n * ratio * wfpr`` where
    ``wfpr = price risk / |net delta|`` (``price_risk = "span"``, see :func:`price_risk`, or
    ``"scan"`` for the whole scan risk) with the net delta before inter-commodity spreading; formed
    deltas are consumed. Credit in each leg unit's settlement currency.
    """

    type = "inter_spread"
    combine = "credit"
    params: ClassVar[dict[str, Param]] = {
        "spreads": Param("inter_spreads", REQUIRED),
        "tiers": Param("unit_tiers", {}),
        "after": Param("str", ""),
        "price_risk": Param("str", "span", choices=("span", "scan")),
        "whole": Param("bool", False),
    }

    def check(self) -> None:
        for k, spread in enumerate(self.config["spreads"]):
            units = [leg.cc for leg in spread.legs]
            if len(set(units)) != len(units):
                raise ValueError(f"{self.where}.spreads[{k}].legs: each leg must name a different unit, got {units}")

    def _deltas(self, ctx: Context, p: dict[str, Any]) -> tuple[list[str], np.ndarray]:
        months, code = _month_table(ctx)
        d = np.zeros((ctx.n_pairs, len(months)))
        np.add.at(d, (ctx.pos_pair, code[ctx.pos_instrument]), ctx.pos_quantity * ctx.delta[ctx.pos_instrument])
        if p["after"]:
            if p["after"] not in ctx.shared:
                raise ValueError(f"{self.where}.after: no intra_spread add-on {p['after']!r} computed before this one")
            m_after, rows, d_after = ctx.shared[p["after"]]
            if list(m_after) != months:  # pragma: no cover - same context
                raise AssertionError("month tables differ")
            d[rows] = d_after[rows]
        return months, d

    def _wfpr(self, ctx: Context, p: dict[str, Any], d: np.ndarray) -> np.ndarray:
        risk = price_risk(ctx) if p["price_risk"] == "span" else ctx.pair_scan
        net = d.sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(np.abs(net) > TOL, risk / np.abs(net), 0.0)

    def compute(self, ctx: Context, p: dict[str, Any]) -> np.ndarray:
        months, d = self._deltas(ctx, p)
        wfpr = self._wfpr(ctx, p, d)
        credit = np.zeros(ctx.n_pairs)
        unit_index = {n: k for k, n in enumerate(ctx.unit_names)}
        accounts = np.unique(ctx.pair_account)
        for s in p["spreads"]:
            if any(leg.cc not in unit_index for leg in s.legs):
                continue
            pairs = np.stack([ctx.pair_index(accounts, unit_index[leg.cc]) for leg in s.legs], axis=1)
            pairs = pairs[(pairs >= 0).all(axis=1)]
            if pairs.size == 0:
                continue
            legs = [(leg, _tier_cols(p["tiers"].get(leg.cc, ()), leg.tier, months)) for leg in s.legs]
            leg_d = np.stack(
                [
                    d[np.ix_(pairs[:, k], cols)].sum(axis=1) if cols.size else np.zeros(len(pairs))
                    for k, (_, cols) in enumerate(legs)
                ],
                axis=1,
            )
            first = s.legs[0]
            sign = _sgn(leg_d[:, 0]) * (1 if first.side == "A" else -1)
            ok = sign != 0
            for k, leg in enumerate(s.legs):
                ok &= _sgn(leg_d[:, k]) == (sign if leg.side == "A" else -sign)
            ratios = np.array([leg.ratio for leg in s.legs])
            n = np.min(np.abs(leg_d) / ratios, axis=1)
            if p["whole"]:
                n = np.floor(n + TOL)
            n = np.where(ok & (n > TOL), n, 0.0)
            for k, (leg, cols) in enumerate(legs):
                rows = pairs[:, k]
                np.add.at(credit, rows, s.rate * n * leg.ratio * wfpr[rows])
                _consume_rows(d, rows, cols, _sgn(leg_d[:, k]), n * leg.ratio)
        return credit

    def reference(self, ctx: Context, p: dict[str, Any]) -> np.ndarray:
        months, d = self._deltas(ctx, p)
        wfpr = self._wfpr(ctx, p, d)
        credit = np.zeros(ctx.n_pairs)
        unit_index = {n: k for k, n in enumerate(ctx.unit_names)}
        held = {(int(a), int(u)): k for k, (a, u) in enumerate(zip(ctx.pair_account, ctx.pair_unit, strict=True))}
        for s in p["spreads"]:
            if any(leg.cc not in unit_index for leg in s.legs):
                continue
            for a in sorted({int(x) for x in ctx.pair_account}):
                keys = [held.get((a, unit_index[leg.cc])) for leg in s.legs]
                if any(k is None for k in keys):
                    continue
                legs = []
                for leg, pair in zip(s.legs, keys, strict=True):
                    cols = list(_tier_cols(p["tiers"].get(leg.cc, ()), leg.tier, months))
                    legs.append((leg, pair, cols, float(d[pair, cols].sum()) if cols else 0.0))
                first_leg, _, _, first_d = legs[0]
                sign = (0 if abs(first_d) <= TOL else (1 if first_d > 0 else -1)) * (1 if first_leg.side == "A" else -1)
                signs = [0 if abs(x) <= TOL else (1 if x > 0 else -1) for _, _, _, x in legs]
                if sign == 0 or any(
                    sg != (sign if leg.side == "A" else -sign) for (leg, _, _, _), sg in zip(legs, signs, strict=True)
                ):
                    continue
                n = min(abs(x) / leg.ratio for leg, _, _, x in legs)
                if p["whole"]:
                    n = math.floor(n + TOL)
                if n <= TOL:
                    continue
                for (leg, pair, cols, _x), sg in zip(legs, signs, strict=True):
                    credit[pair] += s.rate * n * leg.ratio * wfpr[pair]
                    row = d[pair]
                    consume(row, cols, sg, n * leg.ratio)
        return credit


__all__ = ["TOL", "InterSpread", "IntraSpread", "price_risk"]
