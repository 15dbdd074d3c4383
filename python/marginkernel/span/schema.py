"""Coverage of the SPAN XML schema (CME ``spanrisk.xsd``, fileFormat 4.x), element by element.

For every element the reader descends into, the children it *reads*, the ones it *skips* because
they are informational (they never change a margin figure computed here) and the ones it *refuses*
because they would change a margin figure in a way this package does not implement. A child in
none of the three sets is not part of the schema as read here and is refused as well: silently
ignoring an element of unknown meaning could give a wrong margin. ``docs/span.md`` lists the same
sets (a test holds the two together).
"""

from __future__ import annotations

from collections.abc import Mapping

_PRODUCT_INFO = frozenset(
    {
        "domain",
        "specs",
        "group",
        "alias",
        "contractSize",
        "uomQty",
        "uom",
        "eqPosFactor",
        "notionAmt",
        "priceDl",
        "priceFmt",
        "priceMeth",
        "useOTCRounding",
        "positionsAllowed",
        "isVariableTick",
        "strikeDl",
        "strikeFmt",
        "cab",
    }
)
_CONTRACT_INFO = frozenset(
    {
        "alias",
        "priceType",
        "dvas",
        "volType",
        "sc",
        "fdot",
        "ldot",
        "fDeliv",
        "lDeliv",
        "tick",
        "venue",
        "haircut",
        "haircutRsv",
        "pq",
        "svf",
        "volSrc",
        "seriesSetlMeth",
        "refPriceFlag",
        "refPrice",
    }
)

#: element kind -> children read into the SpanFile
READ: Mapping[str, frozenset[str]] = {
    "spanFile": frozenset({"fileFormat", "created", "pointInTime"}),
    "pointInTime": frozenset({"date", "isSetl", "clearingOrg"}),
    "clearingOrg": frozenset(
        {
            "ec",
            "capAnov",
            "lookAheadYears",
            "lookAheadDays",
            "daysPerYear",
            "curConv",
            "pointDef",
            "exchange",
            "ccDef",
            "interSpreads",
            "superSpreads",
            "superInterClearSpreads",
            "interClearSpreads",
        }
    ),
    "curConv": frozenset({"fromCur", "toCur", "factor"}),
    "pointDef": frozenset({"r", "scanPointDef", "deltaPointDef"}),
    "scanPointDef": frozenset({"point", "priceScanDef", "volScanDef", "weight", "pairedPoint"}),
    "deltaPointDef": frozenset({"point", "priceScanDef", "volScanDef", "weight"}),
    "priceScanDef": frozenset({"mult", "numerator", "denominator"}),
    "volScanDef": frozenset({"mult", "numerator", "denominator"}),
    "exchange": frozenset({"exch", "phyPf", "futPf", "oopPf", "oofPf", "ooePf", "oocPf"}),
    "linearPf": frozenset(
        {"pfId", "pfCode", "name", "currency", "cvf", "valueMeth", "setlMeth", "undPf", "phy", "fut"}
    ),
    "optionPf": frozenset(
        {
            "pfId",
            "pfCode",
            "name",
            "exercise",
            "currency",
            "cvf",
            "priceModel",
            "valueMeth",
            "setlMeth",
            "undPf",
            "series",
        }
    ),
    "undPf": frozenset({"pfId"}),
    "phy": frozenset({"cId", "pe", "p", "d", "v", "cvf", "val", "scanRate", "ra"}),
    "fut": frozenset({"cId", "pe", "p", "d", "v", "cvf", "val", "setlDate", "t", "undC", "intrRate", "scanRate", "ra"}),
    "series": frozenset({"pe", "v", "setlDate", "t", "cvf", "undC", "intrRate", "divRate", "scanRate", "opt"}),
    "opt": frozenset({"cId", "o", "k", "p", "d", "v", "cvf", "val", "ra"}),
    "undC": frozenset({"pfId", "cId"}),
    "intrRate": frozenset({"val"}),
    "divRate": frozenset({"val"}),
    "scanRate": frozenset({"r", "priceScan", "volScan", "volScanPct", "quoteInOptTerms"}),
    "ra": frozenset({"r", "a", "d"}),
    "ccDef": frozenset(
        {
            "cc",
            "name",
            "currency",
            "riskExponent",
            "capAnov",
            "wfprMeth",
            "somMeth",
            "cmbMeth",
            "marginMeth",
            "concScaleUp",
            "isCDSScanRisk",
            "binaryArrays",
            "pfLink",
            "adjRate",
            "intraTiers",
            "interTiers",
            "somTiers",
            "dSpread",
        }
    ),
    "pfLink": frozenset({"pfId"}),
    "adjRate": frozenset({"r", "baseR", "val"}),
    "tiers": frozenset({"tier"}),
    "tier": frozenset({"tn", "sPe", "ePe", "rate"}),
    "rate": frozenset({"r", "val"}),
    "dSpread": frozenset({"spread", "spreadType", "chargeMeth", "rate", "tLeg", "pLeg"}),
    "tLeg": frozenset({"cc", "tn", "rs", "i"}),
    "pLeg": frozenset({"cc", "pe", "rs", "i"}),
    "interSpreads": frozenset({"dSpread"}),
}

#: element kind -> children skipped: descriptive, or used by SPAN only for reporting and accounts
INFORMATIONAL: Mapping[str, frozenset[str]] = {
    "spanFile": frozenset({"spanVersion", "definitions"}),
    "pointInTime": frozenset({"setlQualifier", "time", "run", "businessFunction", "portfolio"}),
    "clearingOrg": frozenset(
        {
            "name",
            "isContractScale",
            "isNetMargin",
            "finalizeMeth",
            "oopDeltaMeth",
            "custUseLov",
            "useLovPct",
            "limitSubAccountOffset",
            "capRiskArray",
            "pbRateDef",
            "zeroCurve",
            "hvarMarginParams",
            "cdsMarginParams",
        }
    ),
    "curConv": frozenset({"hfactor"}),
    "priceScanDef": frozenset({"defType"}),
    "exchange": frozenset({"name"}),
    "linearPf": _PRODUCT_INFO,
    "optionPf": _PRODUCT_INFO,
    "undPf": frozenset({"exch", "pfCode", "pfType", "s", "i"}),
    "phy": _CONTRACT_INFO,
    "fut": _CONTRACT_INFO,
    "series": _CONTRACT_INFO,
    "opt": _CONTRACT_INFO,
    "undC": frozenset({"exch", "s", "i", "legPriceFlag", "legPrice", "type"}),
    "intrRate": frozenset({"rl", "cpm", "tm", "exm"}),
    "ccDef": frozenset(
        {
            "group",
            "contractSize",
            "uomQty",
            "uom",
            "procMeth",
            "spotMeth",
            "hvarSetId",
            "fxHvarSetId",
            "custUseLov",
            "useLovPct",
            "vmClass",
            "limitSubAccountOffset",
            "limitArraysTo16Points",
            "vmRate",
            "intrRate",
        }
    ),
    "pfLink": frozenset(
        {"exch", "pfCode", "pfType", "sc", "cmbMeth", "applyBasisRisk", "arrayPrecision", "oopDeltaMeth"}
    ),
}

#: elements of the schema that change a margin figure and are not implemented: refused by name
REFUSED: Mapping[str, str] = {
    "debtPf": "debt portfolios",
    "equityPf": "equity portfolios",
    "fwdPf": "forward portfolios",
    "IRSwapPf": "interest-rate swap portfolios",
    "CDSwapPf": "credit-default swap portfolios",
    "eDebtPf": "equivalent-debt portfolios",
    "cmbPf": "combination portfolios",
    "scanTiers": "scanning tiers (scan risk per tier of contract periods)",
    "rateTiers": "rate tiers",
    "concAdjRate": "concentration adjustment rates",
    "pointDef": "per-commodity scan point definitions",
    "spotRate": "spot (delivery-month) charges",
    "liqRate": "liquidity charges",
    "basisRates": "basis risk charges",
    "cdsRate": "credit-default swap rates",
    "sprCharge": "per-contract spread charges",
    "div": "discrete dividends",
    "priceScanPct": "price scan ranges in percent",
    "priceScanDown": "asymmetric (down) price scans",
    "priceScanDownPct": "asymmetric (down) price scans",
    "volScanDown": "asymmetric (down) volatility scans",
    "volScanDownPct": "asymmetric (down) volatility scans",
    "tne": "tier break definitions",
    "tbn": "tier break definitions",
    "btn": "tier break definitions",
    "brk": "tier break definitions",
    "pmpsRate": "per-month per-spread rates",
    "rpLeg": "relative-period spread legs",
    "volRate": "volatility offset rates (DELTAVOL spreads)",
    "sSpread": "scanning-based spreads",
    "awayLeg": "inter-clearing spread legs",
    "homeLeg": "inter-clearing spread legs",
    "clearSpread": "inter-clearing spreads",
}

#: (parent kind, tag) refused where the tag is read elsewhere
REFUSED_IN: Mapping[tuple[str, str], str] = {
    ("tLeg", "rate"): "leg-specific rates",
    ("pLeg", "rate"): "leg-specific rates",
    ("tier", "scanRate"): "per-tier scan rates",
    ("ccDef", "pointDef"): "per-commodity scan point definitions",
}

#: the element kind of a tag seen as a child of ``parent`` (tags shared by several layouts)
_KIND = {
    "phyPf": "linearPf",
    "futPf": "linearPf",
    "oopPf": "optionPf",
    "oofPf": "optionPf",
    "ooePf": "optionPf",
    "oocPf": "optionPf",
    "intraTiers": "tiers",
    "interTiers": "tiers",
    "somTiers": "tiers",
}


def kind_of(tag: str) -> str:
    """The element kind (key of :data:`READ`) of a tag."""
    return _KIND.get(tag, tag)


def check_children(children: list[str], kind: str, where: str) -> None:
    """ValueError naming ``where`` and the first child of an element of ``kind`` that is neither read
    nor informational."""
    read = READ.get(kind, frozenset())
    info = INFORMATIONAL.get(kind, frozenset())
    for tag in children:
        if tag in read or tag in info:
            continue
        if (kind, tag) in REFUSED_IN:
            raise ValueError(
                f"{where}/<{tag}>: {REFUSED_IN[kind, tag]} are not supported (the element changes the margin)"
            )
        if tag in REFUSED:
            raise ValueError(
                f"{where}/<{tag}>: {REFUSED[tag]} are not supported (the element changes the margin; "
                "the file cannot be margined correctly without it)"
            )
        raise ValueError(f"{where}/<{tag}>: unknown element (not part of the SPAN 4.x schema as read here)")


__all__ = ["INFORMATIONAL", "READ", "REFUSED", "REFUSED_IN", "check_children", "kind_of"]
