"""One SPAN XML record at a time: scan points, portfolio headers, contracts, series, risk arrays.

Each function takes one element (complete: the streaming reader calls it at the element's end
event) and the path used in error messages, checks the element's children against
:mod:`.schema`, validates every value and returns plain Python values.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from typing import Any

import numpy as np
import pandas as pd

from ..validation import finite_array
from . import fields as F
from .schema import INFORMATIONAL, READ, check_children


def points(pdef: ET.Element, tag: str, where: str) -> pd.DataFrame:
    """``<scanPointDef>`` or ``<deltaPointDef>`` children of a ``<pointDef>`` as a table."""
    rows = []
    for j, e in enumerate(pdef.findall(tag)):
        w = f"{where}/{tag}[{j}]"
        check_children(F.children(e), tag, w)
        price = F.find(e, "priceScanDef", w)
        vol = F.find(e, "volScanDef", w)
        check_children(F.children(price), "priceScanDef", w + "/priceScanDef")
        check_children(F.children(vol), "volScanDef", w + "/volScanDef")
        row = {
            "point": F.integer(e, "point", w),
            "price_mult": F.num(price, "mult", w + "/priceScanDef"),
            "price_num": F.num(price, "numerator", w + "/priceScanDef", np.nan),
            "price_den": F.num(price, "denominator", w + "/priceScanDef", np.nan),
            "vol_mult": F.num(vol, "mult", w + "/volScanDef"),
            "vol_num": F.num(vol, "numerator", w + "/volScanDef", np.nan),
            "vol_den": F.num(vol, "denominator", w + "/volScanDef", np.nan),
            "weight": F.num(e, "weight", w, lo=0.0),
        }
        if tag == "scanPointDef":
            row["paired_point"] = F.integer(e, "pairedPoint", w, row["point"])
        rows.append(row)
    df = pd.DataFrame(rows)
    if len(df):
        df = df.sort_values("point", kind="stable").reset_index(drop=True)
        if list(df["point"]) != list(range(1, len(df) + 1)):
            raise ValueError(f"{where}/{tag}: points must be numbered 1..{len(df)}, got {list(df['point'])}")
        if tag == "scanPointDef" and not df["paired_point"].between(1, len(df)).all():
            raise ValueError(f"{where}/{tag}/pairedPoint: refers to a point that does not exist")
    return df


def point_def(org_child: ET.Element, where: str) -> tuple[str, pd.DataFrame, pd.DataFrame]:
    """A ``<pointDef>``: its rate id r, scan points and delta points."""
    check_children(F.children(org_child), "pointDef", where)
    scan = points(org_child, "scanPointDef", where)
    if scan.empty:
        raise ValueError(f"{where}: missing <scanPointDef>")
    return F.text(org_child, "r", where, "1"), scan, points(org_child, "deltaPointDef", where)


def scan_rate(elem: ET.Element, where: str) -> tuple[float, float, str]:
    """(price scan, vol scan, 'relative' | 'absolute') from the core-rate ``<scanRate>``."""
    sr = F.rate_r1(elem, "scanRate", where)
    if sr is None:
        raise ValueError(f"{where}: missing <scanRate>")
    w = where + "/scanRate"
    check_children(F.children(sr), "scanRate", w)
    if F.flag(sr, "quoteInOptTerms", w):
        raise ValueError(f"{w}/<quoteInOptTerms>: scan ranges quoted in option terms are not supported")
    price_scan = F.num(sr, "priceScan", w, lo=0.0)
    if sr.find("volScanPct") is not None:
        return price_scan, F.num(sr, "volScanPct", w, lo=0.0), "relative"
    return price_scan, F.num(sr, "volScan", w, 0.0, lo=0.0), "absolute"


def risk_array(elem: ET.Element, where: str, n_points: int) -> tuple[list[float], float]:
    """The core-rate ``<ra>``: its ``n_points`` finite ``<a>`` values and composite delta ``<d>``."""
    ra = F.rate_r1(elem, "ra", where)
    if ra is None:
        raise ValueError(f"{where}: missing <ra>")
    w = where + "/ra"
    check_children(F.children(ra), "ra", w)
    texts = [a.text for a in ra.iter("a")]
    try:
        values = [float(t) for t in texts]  # type: ignore[arg-type]
    except (TypeError, ValueError):
        values = [F.to_number((t or "").strip(), f"{w}/<a>") for t in texts]  # names the bad value
    if not all(map(math.isfinite, values)):
        finite_array(values, f"{w}/<a>")  # raises, naming the first bad value
    if len(values) != n_points:
        raise ValueError(f"{w}: {len(values)} <a> values, the file defines {n_points} scan points")
    return values, F.num(ra, "d", w, np.nan)


def underlying(elem: ET.Element, where: str) -> tuple[int, int, str] | None:
    """(pfId, cId, path) of ``<undC>``, or None."""
    und = elem.find("undC")
    if und is None:
        return None
    w = where + "/undC"
    check_children(F.children(und), "undC", w)
    return F.integer(und, "pfId", w), F.integer(und, "cId", w), w


def rate_value(elem: ET.Element, tag: str, where: str, default: float) -> float:
    """``<intrRate>/<val>`` or ``<divRate>/<val>`` (the first one), or ``default``."""
    child = elem.find(tag)
    if child is None:
        return default
    check_children(F.children(child), tag, f"{where}/{tag}")
    return float(F.num(child, "val", f"{where}/{tag}", default))


def portfolio(pf: ET.Element, tag: str, exch: str, pf_type: str) -> tuple[dict[str, Any], str]:
    """The header of a portfolio element (fields before its contracts) and its path."""
    pf_id = F.integer(pf, "pfId", f"exchange[{exch}]/{tag}")
    wpf = f"{tag}[pfId={pf_id}]"
    pf_code = F.text(pf, "pfCode", wpf)
    und_pf = pf.find("undPf")
    if und_pf is not None:
        check_children(F.children(und_pf), "undPf", wpf + "/undPf")
    header = {
        "pf_id": pf_id,
        "pf_code": pf_code,
        "pf_type": pf_type,
        "name": F.text(pf, "name", wpf, pf_code),
        "exchange": exch,
        "currency": F.text(pf, "currency", wpf),
        "exercise": F.text(pf, "exercise", wpf, ""),
        "price_model": F.text(pf, "priceModel", wpf, ""),
        "value_meth": F.text(pf, "valueMeth", wpf, ""),
        "setl_meth": F.text(pf, "setlMeth", wpf, ""),
        "und_pf_id": -1 if und_pf is None else F.integer(und_pf, "pfId", wpf + "/undPf"),
        # a portfolio-level cvf of 0 (Takasbank writes 0.0000000) means "given per contract"
        "cvf": F.num(pf, "cvf", wpf, np.nan, lo=0.0) or np.nan,
    }
    return header, wpf


def linear_contract(c: ET.Element, child: str, wpf: str, pf: dict[str, Any], n_points: int) -> dict[str, Any]:
    """A ``<phy>`` or ``<fut>`` as a contract row (plus 'array', 'where', 'und' entries)."""
    c_id = F.integer(c, "cId", f"{wpf}/{child}")
    w = f"{wpf}/{child}[cId={c_id}]"
    check_children(F.children(c), child, w)
    price_scan, vol_scan, vol_kind = scan_rate(c, w)
    is_fut = child == "fut"
    if not is_fut and c.find("ra") is None:
        # physicals may carry no array (the schema makes <ra> optional): no published risk; margining
        # a position in it is an error, regenerate_arrays computes one
        array, delta = [float("nan")] * n_points, F.num(c, "d", w, 0.0)
    else:
        array, delta = risk_array(c, w, n_points)
    cvf = F.num(c, "cvf", w, pf["cvf"], positive=True)
    if not cvf > 0:
        raise ValueError(f"{w}: missing <cvf>")
    return {
        "pf_id": pf["pf_id"],
        "c_id": c_id,
        "pf_code": pf["pf_code"],
        "pf_type": pf["pf_type"],
        "period": F.text(c, "pe", w) if is_fut else F.text(c, "pe", w, "000000"),
        "kind": pf["pf_type"],
        "strike": np.nan,
        "price": F.num(c, "p", w),
        "value": F.num(c, "val", w, np.nan),
        "cvf": cvf,
        "vol": F.num(c, "v", w, np.nan, lo=0.0),
        "delta": delta,
        "t": F.num(c, "t", w, lo=0.0) if is_fut else 0.0,
        "rate": rate_value(c, "intrRate", w, np.nan) if is_fut else np.nan,
        "div_rate": np.nan,
        "price_scan": price_scan,
        "vol_scan": vol_scan,
        "vol_scan_kind": vol_kind,
        "setl_date": F.text(c, "setlDate", w, "") if is_fut else "",
        "array": array,
        "where": w,
        "und": underlying(c, w),
    }


def series_header(series: ET.Element, wpf: str, pf: dict[str, Any]) -> dict[str, Any]:
    """The fields of an option ``<series>`` that precede its ``<opt>`` children."""
    period = F.text(series, "pe", wpf + "/series")
    ws = f"{wpf}/series[pe={period}]"
    price_scan, vol_scan, vol_kind = scan_rate(series, ws)
    und = underlying(series, ws)
    if und is None:
        raise ValueError(f"{ws}: missing <undC>")
    cvf = F.num(series, "cvf", ws, pf["cvf"], positive=True)
    if not cvf > 0:
        raise ValueError(f"{ws}: missing <cvf>")
    return {
        "pf_id": pf["pf_id"],
        "pf_code": pf["pf_code"],
        "pf_type": pf["pf_type"],
        "period": period,
        "setl_date": F.text(series, "setlDate", ws, ""),
        "t": F.num(series, "t", ws, lo=0.0),
        "cvf": cvf,
        "rate": rate_value(series, "intrRate", ws, 0.0),
        "div_rate": rate_value(series, "divRate", ws, 0.0),
        "price_scan": price_scan,
        "vol_scan": vol_scan,
        "vol_scan_kind": vol_kind,
        "und_pf_id": und[0],
        "und_c_id": und[1],
        "und": und,
        "where": ws,
    }


def option(opt: ET.Element, head: dict[str, Any], n_points: int) -> dict[str, Any]:
    """An ``<opt>`` of a series as a contract row (plus 'array', 'where', 'und' entries)."""
    ws = head["where"]
    c_id = F.integer(opt, "cId", ws + "/opt")
    w = f"{ws}/opt[cId={c_id}]"
    check_children(F.children(opt), "opt", w)
    kind = F.text(opt, "o", w)
    if kind not in ("C", "P"):
        raise ValueError(f"{w}/<o>: must be 'C' or 'P', got {kind!r}")
    strike = F.num(opt, "k", w)
    if not strike > 0:
        raise ValueError(f"{w}/<k>: strike must be > 0, got {strike!r}")
    vol = F.num(opt, "v", w)
    if vol < 0:
        raise ValueError(f"{w}/<v>: volatility must be >= 0, got {vol!r}")
    array, delta = risk_array(opt, w, n_points)
    return {
        "pf_id": head["pf_id"],
        "c_id": c_id,
        "pf_code": head["pf_code"],
        "pf_type": head["pf_type"],
        "period": head["period"],
        "kind": kind,
        "strike": strike,
        "price": F.num(opt, "p", w),
        "value": F.num(opt, "val", w, np.nan),
        "cvf": F.num(opt, "cvf", w, head["cvf"], positive=True),
        "vol": vol,
        "delta": delta,
        "t": head["t"],
        "rate": head["rate"],
        "div_rate": head["div_rate"],
        "price_scan": head["price_scan"],
        "vol_scan": head["vol_scan"],
        "vol_scan_kind": head["vol_scan_kind"],
        "setl_date": head["setl_date"],
        "array": array,
        "where": w,
        "und": head["und"],
    }


_OPT_OK = READ["opt"] | INFORMATIONAL["opt"]
_RA_OK = READ["ra"]


def _floats(texts: list[str | None]) -> np.ndarray:
    return np.array([float(t) for t in texts])  # type: ignore[arg-type]


def _given(texts: list[str | None]) -> np.ndarray:
    """Mask of texts that are present and non-empty (the optional fields that were written)."""
    return np.fromiter((bool(t) for t in texts), dtype=bool, count=len(texts))


def options_fast(opts: list[ET.Element], head: dict[str, Any], n_points: int) -> dict[str, Any] | None:
    """All ``<opt>`` of a series at once, or None when any needs the checked path of :func:`option`
    (which then raises, naming the element): a missing or odd field, a bound broken, several
    ``<ra>``. Same values as :func:`option` row by row.

    The checks run over the whole series with C-level calls (``find``/``findtext``, set inclusion,
    list counts) and NumPy, not per child in Python: this is the bulk of a file."""
    n = len(opts)
    try:
        tags = [c.tag for o in opts for c in o]
        if not _OPT_OK.issuperset(tags) or tags.count("ra") != n:
            return None
        ras: list[Any] = [o.find("ra") for o in opts]
        if any(ra is None for ra in ras):  # with the count above: exactly one <ra> each
            return None
        if not _RA_OK.issuperset([c.tag for ra in ras for c in ra]):
            return None
        if any((r or "1").strip() != "1" for r in [ra.findtext("r") for ra in ras]):
            return None
        texts = [[a.text for a in ra.iter("a")] for ra in ras]
        if any(len(t) != n_points for t in texts):
            return None
        arrays = _floats([t for row in texts for t in row])
        vals = [o.findtext("val") for o in opts]
        deltas = [ra.findtext("d") for ra in ras]
        cvf = repr(head["cvf"])
        cols: dict[str, Any] = {
            "c_id": [int(o.findtext("cId")) for o in opts],  # type: ignore[arg-type]
            "kind": [o.findtext("o").strip() for o in opts],  # type: ignore[union-attr]
            "strike": _floats([o.findtext("k") for o in opts]),
            "price": _floats([o.findtext("p") for o in opts]),
            "vol": _floats([o.findtext("v") for o in opts]),
            "value": _floats([v or "nan" for v in vals]),
            "cvf": _floats([o.findtext("cvf") or cvf for o in opts]),
            "delta": _floats([d or "nan" for d in deltas]),
        }
    except (TypeError, ValueError, AttributeError):
        return None
    ok = (
        {"C", "P"}.issuperset(cols["kind"])
        and np.isfinite(arrays).all()
        and (cols["strike"] > 0).all()
        and np.isfinite(cols["strike"]).all()
        and (cols["vol"] >= 0).all()
        and np.isfinite(cols["vol"]).all()
        and np.isfinite(cols["price"]).all()
        and (cols["cvf"] > 0).all()
        and np.isfinite(cols["cvf"]).all()
        # an absent or empty <val>/<d> is NaN; one written as "nan" or "inf" is an error (checked path)
        and np.isfinite(cols["value"][_given(vals)]).all()
        and np.isfinite(cols["delta"][_given(deltas)]).all()
    )
    if not ok:
        return None
    cols["array"] = arrays
    return cols


__all__ = [
    "linear_contract",
    "option",
    "options_fast",
    "point_def",
    "portfolio",
    "risk_array",
    "scan_rate",
    "series_header",
]
