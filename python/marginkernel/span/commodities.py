"""Combined commodities (``<ccDef>``), their tiers and delta spreads (``<dSpread>`` with ``<tLeg>`` or
``<pLeg>`` legs), and the inter-commodity spreads (``<interSpreads>``)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any

from ..spreads import Spread, SpreadLeg, Tier, period_month
from . import fields as F
from .schema import check_children

#: values of ccDef fields under which the margin is computed as implemented here
_ACCEPTED = {"marginMeth": ("", "SPAN"), "spreadType": ("", "DEFAULT")}


@dataclass
class CommodityDefs:
    """Everything the ``<ccDef>`` elements and ``<interSpreads>`` define, collected while streaming."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    links: dict[int, tuple[str, str]] = field(default_factory=dict)  # pfId -> (cc, path of the pfLink)
    intra_tiers: dict[str, tuple[Tier, ...]] = field(default_factory=dict)
    inter_tiers: dict[str, tuple[Tier, ...]] = field(default_factory=dict)
    som_tiers: dict[str, tuple[tuple[Tier, float], ...]] = field(default_factory=dict)
    intra_spreads: list[tuple[Spread, str]] = field(default_factory=list)
    inter_spreads: list[tuple[Spread, str]] = field(default_factory=list)


def _leg(leg: ET.Element, tag: str, w: str, cc: str | None) -> SpreadLeg:
    check_children(F.children(leg), tag, w)
    side = F.text(leg, "rs", w)
    if side not in ("A", "B"):
        raise ValueError(f"{w}/<rs>: must be 'A' or 'B', got {side!r}")
    ratio = F.num(leg, "i", w)
    if ratio <= 0:
        raise ValueError(f"{w}/<i>: delta ratio must be > 0, got {ratio}")
    leg_cc = F.text(leg, "cc", w) if cc is None else F.text(leg, "cc", w, cc)
    if tag == "pLeg":
        return SpreadLeg(cc=leg_cc, tier=0, side=side, ratio=ratio, period=F.text(leg, "pe", w))
    return SpreadLeg(cc=leg_cc, tier=F.integer(leg, "tn", w, 0), side=side, ratio=ratio)


def spread(e: ET.Element, where: str, cc: str | None) -> Spread:
    """A ``<dSpread>``: intra-commodity (``cc`` given) or inter-commodity; legs in file order."""
    check_children(F.children(e), "dSpread", where)
    kind = F.text(e, "spreadType", where, "")
    if kind not in _ACCEPTED["spreadType"]:
        raise ValueError(f"{where}/<spreadType>: {kind!r} spreads are not supported (DEFAULT only)")
    legs = []
    counts = {"tLeg": 0, "pLeg": 0}
    for leg in e:
        if leg.tag in counts:
            legs.append(_leg(leg, leg.tag, f"{where}/{leg.tag}[{counts[leg.tag]}]", cc))
            counts[leg.tag] += 1
    if len(legs) < 2:
        raise ValueError(f"{where}: a spread needs at least two legs (<tLeg> or <pLeg>), got {len(legs)}")
    rate = F.rate_r1(e, "rate", where)
    if rate is None:
        raise ValueError(f"{where}: missing <rate>")
    return Spread(
        number=F.integer(e, "spread", where),
        charge_method=F.text(e, "chargeMeth", where),
        rate=F.num(rate, "val", where + "/rate"),
        legs=tuple(legs),
        cc=cc,
    )


def _tier(t: ET.Element, where: str) -> Tier:
    check_children(F.children(t), "tier", where)
    start, end = F.text(t, "sPe", where, None), F.text(t, "ePe", where, None)
    return Tier(
        F.integer(t, "tn", where),
        None if start is None else period_month(start),
        None if end is None else period_month(end),
    )


def _tiers(parent: ET.Element, tag: str, where: str) -> tuple[Tier, ...]:
    block = parent.find(tag)
    if block is None:
        return (Tier(0),)
    check_children(F.children(block), "tiers", f"{where}/{tag}")
    out = [_tier(t, f"{where}/{tag}/tier[{j}]") for j, t in enumerate(block.findall("tier"))]
    return tuple(out) or (Tier(0),)


def _checked_settings(cd: ET.Element, w: str) -> None:
    """Refuse ccDef settings that change the margin in ways not implemented here."""
    meth = F.text(cd, "marginMeth", w, "")
    if meth not in _ACCEPTED["marginMeth"]:
        raise ValueError(f"{w}/<marginMeth>: margin method {meth!r} is not supported (SPAN only)")
    if F.num(cd, "riskExponent", w, 0.0) != 0:
        raise ValueError(f"{w}/<riskExponent>: a non-zero risk exponent is not supported")
    if F.num(cd, "concScaleUp", w, 0.0) != 0:
        raise ValueError(f"{w}/<concScaleUp>: concentration scale-ups are not supported")
    for tag in ("isCDSScanRisk", "binaryArrays"):
        if F.flag(cd, tag, w):
            raise ValueError(f"{w}/<{tag}>: not supported")


def add_commodity(defs: CommodityDefs, cd: ET.Element, index: int, where_org: str) -> None:
    """Read one ``<ccDef>`` into ``defs``."""
    cc = F.text(cd, "cc", f"{where_org}/ccDef[{index}]")
    w = f"ccDef[cc={cc}]"
    check_children(F.children(cd), "ccDef", w)
    _checked_settings(cd, w)
    adj = F.rate_r1(cd, "adjRate", w)
    defs.rows.append(
        {
            "cc": cc,
            "name": F.text(cd, "name", w, cc),
            "currency": F.text(cd, "currency", w),
            "som_method": F.text(cd, "somMeth", w, "GROSS"),
            "adj_rate": 1.0 if adj is None else F.num(adj, "val", w + "/adjRate", lo=0.0),
            "cmb_method": F.text(cd, "cmbMeth", w, ""),
            "wfpr_method": F.text(cd, "wfprMeth", w, "NORMAL"),
            "cap_anov": F.flag(cd, "capAnov", w),
        }
    )
    for k, link in enumerate(cd.findall("pfLink")):
        wl = f"{w}/pfLink[{k}]"
        check_children(F.children(link), "pfLink", wl)
        pf = F.integer(link, "pfId", wl)
        if pf in defs.links and defs.links[pf][0] != cc:
            raise ValueError(f"{wl}: pfId {pf} already linked to commodity {defs.links[pf][0]}")
        defs.links[pf] = (cc, wl)
    defs.intra_tiers[cc] = _tiers(cd, "intraTiers", w)
    defs.inter_tiers[cc] = _tiers(cd, "interTiers", w)
    soms = []
    block = cd.find("somTiers")
    if block is not None:
        check_children(F.children(block), "tiers", w + "/somTiers")
    for k, t in enumerate([] if block is None else block.findall("tier")):
        wt = f"{w}/somTiers/tier[{k}]"
        rate = F.rate_r1(t, "rate", wt)
        soms.append((_tier(t, wt), 0.0 if rate is None else float(F.num(rate, "val", wt + "/rate", lo=0.0))))
    defs.som_tiers[cc] = tuple(soms)
    for k, ds in enumerate(cd.findall("dSpread")):
        defs.intra_spreads.append((spread(ds, f"{w}/dSpread[{k}]", cc), f"ccDef[cc={cc}]/dSpread"))


def add_inter_spreads(defs: CommodityDefs, block: ET.Element, where_org: str) -> None:
    """Read ``<interSpreads>`` into ``defs``."""
    check_children(F.children(block), "interSpreads", f"{where_org}/interSpreads")
    for k, ds in enumerate(block.findall("dSpread")):
        defs.inter_spreads.append((spread(ds, f"{where_org}/interSpreads/dSpread[{k}]", None), "interSpreads/dSpread"))


def check_legs(defs: CommodityDefs, ccs: set[str]) -> None:
    """Every leg names a defined commodity and, for tier legs, a tier the commodity defines."""
    for spreads, tiers_of in ((defs.intra_spreads, defs.intra_tiers), (defs.inter_spreads, defs.inter_tiers)):
        for s, where in spreads:
            w = f"{where}[spread={s.number}]"
            for leg in s.legs:
                tag = "pLeg" if leg.period is not None else "tLeg"
                if leg.cc not in ccs:
                    raise ValueError(f"{w}/{tag}: unknown cc {leg.cc!r}")
                tiers = tiers_of.get(leg.cc, ())
                if leg.period is None and leg.tier != 0 and all(t.number != leg.tier for t in tiers):
                    raise ValueError(f"{w}/tLeg: tier {leg.tier} is not defined for commodity {leg.cc!r}")


__all__ = ["CommodityDefs", "add_commodity", "add_inter_spreads", "check_legs", "spread"]
