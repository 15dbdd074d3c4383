"""SPAN risk-parameter files (CME SPAN XML, ``fileFormat`` 4.00): read, regenerate, margin.

Three things live here (docs/span.md has the details and the measured errors):

* :func:`read_span` / :func:`parse_span` turn a ``.spn`` file into a :class:`SpanFile`: pandas
  DataFrames of products (portfolios), expiries (option series / futures periods), contracts with
  their published risk arrays, scan- and delta-point definitions, combined commodities, and the
  intra- and inter-commodity spread definitions as :class:`Spread` dataclasses.
* :func:`regenerate_arrays` recomputes every risk array from the file's own inputs with the C++
  revaluation kernel (:func:`marginkernel.kernels.revalue`): Black-Scholes with dividends (Black-76
  on F = S·e^{(r-q)T}), the file's price-scan and relative vol-scan definitions and weights, and a
  look-ahead of one trading day. :func:`compare_arrays` measures it against the published arrays.
* :func:`margin` margins a positions table on the published (or regenerated) arrays: scan risk per
  combined commodity, intra-commodity (calendar) spread charges, inter-commodity spread credits and
  the short-option minimum, as the file defines them.

Sign conventions. Published SPAN arrays are *losses* per contract (positive = the holder of one long
contract loses), already multiplied by each scan point's weight (cover fraction). That is the
convention of :attr:`SpanFile.risk_arrays` and of :func:`regenerate_arrays`; the library's pipeline
convention (P&L > 0 is a gain, DESIGN §3) is used inside :func:`margin`, which hands
``-arrays`` to :func:`marginkernel.kernels.net` and :func:`marginkernel.kernels.worst_loss`.

Bad input -- malformed XML, a missing or non-numeric field, an id that refers to nothing -- raises
``ValueError`` naming the element and the field.
"""

from __future__ import annotations

import math
import os
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from . import kernels
from .spreads import Spread, SpreadLeg, Tier, consume, delta_sign, form_intra_spread, tier_rows

__all__ = [
    "SpreadLeg",
    "Spread",
    "Tier",
    "SpanFile",
    "RegeneratedArrays",
    "SpanMargin",
    "read_span",
    "parse_span",
    "regenerate_arrays",
    "compare_arrays",
    "error_summary",
    "contract_rows",
    "margin",
    "DEFAULT_LOOK_AHEAD",
    "OPTION_PORTFOLIOS",
]

#: one trading day of a 250-trading-day year: the look-ahead that reproduces the published arrays
#: (the file does not state it; 1/365 and 1/252 reproduce them markedly worse, see docs/span.md)
DEFAULT_LOOK_AHEAD = 1.0 / 250.0

#: portfolio elements read as options (same <series>/<opt> layout): on physicals, futures, equities
OPTION_PORTFOLIOS = ("oopPf", "oofPf", "ooePf", "oocPf")
_LINEAR_PORTFOLIOS = {"phyPf": "PHY", "futPf": "FUT"}
_PF_TYPE = {"phyPf": "PHY", "futPf": "FUT", "oopPf": "OOP", "oofPf": "OOF", "ooePf": "OOE", "oocPf": "OOC"}
_REQUIRED = object()


# --------------------------------------------------------------------------------------------
# dataclasses
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SpanFile:
    """A parsed SPAN risk-parameter file (one ``<pointInTime>``, one ``<clearingOrg>``).

    DataFrames (every ``*_id`` is the file's integer id, periods are the file's ``<pe>`` strings):

    * ``products``: one row per portfolio -- pf_id, pf_code, pf_type (PHY, FUT, OOP, ...), name,
      exchange, currency, cc, exercise, price_model, value_meth, setl_meth, und_pf_id.
    * ``expiries``: one row per option series and per futures contract -- pf_id, pf_code, pf_type,
      period, setl_date, t (years), cvf, rate, div_rate, price_scan, vol_scan, vol_scan_kind
      ('relative' for ``volScanPct``, 'absolute' for ``volScan``), und_pf_id, und_c_id.
    * ``contracts``: one row per contract, aligned with ``risk_arrays`` -- contract (a readable key
      ``TYPE:CODE:PERIOD[:C|P:STRIKE]``), pf_id, c_id, pf_code, pf_type, cc, period, month, kind
      (PHY, FUT, C, P), strike, price, value, cvf, vol, delta (the array's composite delta), t,
      rate, div_rate, price_scan, vol_scan, vol_scan_kind, und_row (row of the underlying contract,
      -1 if none), expiry_row (row in ``expiries``, -1 for physicals).
    * ``scan_points`` / ``delta_points``: point, price_mult, price_num, price_den, vol_mult,
      vol_num, vol_den, weight (and paired_point for scan points), indexed from 0.
    * ``commodities``: one row per combined commodity (index cc) -- name, currency, som_method,
      adj_rate, cmb_method, wfpr_method.
    * ``currency_conversions``: from_cur, to_cur, factor.

    ``risk_arrays`` (n_contracts, n_points) holds the published arrays as losses per contract with
    the scan-point weights already applied. ``intra_spreads`` / ``inter_spreads`` are tuples of
    :class:`Spread` in the file's order; ``intra_tiers``, ``inter_tiers`` and ``som_tiers`` map cc
    to its tiers (``som_tiers``: tuples of (Tier, rate)).
    """

    file_format: str
    created: str
    business_date: str
    is_settlement: bool
    clearing_org: str
    products: pd.DataFrame
    expiries: pd.DataFrame
    contracts: pd.DataFrame
    risk_arrays: np.ndarray
    scan_points: pd.DataFrame
    delta_points: pd.DataFrame
    commodities: pd.DataFrame
    intra_tiers: dict
    inter_tiers: dict
    som_tiers: dict
    intra_spreads: tuple
    inter_spreads: tuple
    currency_conversions: pd.DataFrame

    @property
    def n_points(self) -> int:
        return len(self.scan_points)

    def spread_legs(self) -> pd.DataFrame:
        """All spread legs as one table: scope ('intra'/'inter'), cc_spread, number, charge_method,
        rate, leg, cc, tier, side, ratio."""
        rows = []
        for scope, spreads in (("intra", self.intra_spreads), ("inter", self.inter_spreads)):
            for s in spreads:
                for j, leg in enumerate(s.legs):
                    rows.append(
                        (scope, s.cc, s.number, s.charge_method, s.rate, j, leg.cc, leg.tier, leg.side, leg.ratio)
                    )
        return pd.DataFrame(
            rows,
            columns=["scope", "cc_spread", "number", "charge_method", "rate", "leg", "cc", "tier", "side", "ratio"],
        )


# --------------------------------------------------------------------------------------------
# parsing
# --------------------------------------------------------------------------------------------


def _find(elem, tag: str, where: str):
    child = elem.find(tag)
    if child is None:
        raise ValueError(f"{where}: missing <{tag}>")
    return child


def _str(elem, tag: str, where: str, default=_REQUIRED) -> str:
    child = elem.find(tag)
    if child is None or child.text is None or not child.text.strip():
        if default is _REQUIRED:
            raise ValueError(f"{where}: missing <{tag}>" if child is None else f"{where}/<{tag}>: empty")
        return default
    return child.text.strip()


def _num(elem, tag: str, where: str, default=_REQUIRED) -> float:
    text = _str(elem, tag, where, None if default is not _REQUIRED else _REQUIRED)
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{where}/<{tag}>: not a number: {text!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"{where}/<{tag}>: not finite: {text!r}")
    return value


def _int(elem, tag: str, where: str, default=_REQUIRED) -> int:
    value = _num(elem, tag, where, default)
    if value is default and default is not _REQUIRED:
        return default
    if value != int(value):
        raise ValueError(f"{where}/<{tag}>: not an integer: {value!r}")
    return int(value)


def _month(period: str) -> str:
    """The contract month of a period code: its leading digits ('201605S0' -> '201605')."""
    m = re.match(r"\d+", period)
    return m.group(0) if m else period


def _points(pdef, tag: str, where: str) -> pd.DataFrame:
    rows = []
    for j, e in enumerate(pdef.findall(tag)):
        w = f"{where}/{tag}[{j}]"
        price = _find(e, "priceScanDef", w)
        vol = _find(e, "volScanDef", w)
        row = {
            "point": _int(e, "point", w),
            "price_mult": _num(price, "mult", w + "/priceScanDef"),
            "price_num": _num(price, "numerator", w + "/priceScanDef", np.nan),
            "price_den": _num(price, "denominator", w + "/priceScanDef", np.nan),
            "vol_mult": _num(vol, "mult", w + "/volScanDef"),
            "vol_num": _num(vol, "numerator", w + "/volScanDef", np.nan),
            "vol_den": _num(vol, "denominator", w + "/volScanDef", np.nan),
            "weight": _num(e, "weight", w),
        }
        if tag == "scanPointDef":
            row["paired_point"] = _int(e, "pairedPoint", w, row["point"])
        rows.append(row)
    df = pd.DataFrame(rows)
    if len(df):
        df = df.sort_values("point", kind="stable").reset_index(drop=True)
        if list(df["point"]) != list(range(1, len(df) + 1)):
            raise ValueError(f"{where}/{tag}: points must be numbered 1..{len(df)}, got {list(df['point'])}")
        if tag == "scanPointDef" and not df["paired_point"].between(1, len(df)).all():
            raise ValueError(f"{where}/{tag}/pairedPoint: refers to a point that does not exist")
    return df


def _array(elem, where: str, n_points: int) -> tuple[np.ndarray, float]:
    ra = _find(elem, "ra", where)
    values = []
    for a in ra.findall("a"):
        text = (a.text or "").strip()
        try:
            values.append(float(text))
        except ValueError:
            raise ValueError(f"{where}/ra/<a>: not a number: {text!r}") from None
    if len(values) != n_points:
        raise ValueError(f"{where}/ra: {len(values)} <a> values, the file defines {n_points} scan points")
    return np.array(values), _num(ra, "d", where + "/ra", np.nan)


def _spread(e, where: str, cc: str | None) -> Spread:
    legs = []
    for j, leg in enumerate(e.findall("tLeg")):
        w = f"{where}/tLeg[{j}]"
        side = _str(leg, "rs", w)
        if side not in ("A", "B"):
            raise ValueError(f"{w}/<rs>: must be 'A' or 'B', got {side!r}")
        ratio = _num(leg, "i", w)
        if ratio <= 0:
            raise ValueError(f"{w}/<i>: delta ratio must be > 0, got {ratio}")
        leg_cc = _str(leg, "cc", w) if cc is None else _str(leg, "cc", w, cc)
        legs.append(SpreadLeg(cc=leg_cc, tier=_int(leg, "tn", w, 0), side=side, ratio=ratio))
    if len(legs) < 2:
        raise ValueError(f"{where}: a spread needs at least two <tLeg>, got {len(legs)}")
    rate = _find(e, "rate", where)
    return Spread(
        number=_int(e, "spread", where),
        charge_method=_str(e, "chargeMeth", where),
        rate=_num(rate, "val", where + "/rate"),
        legs=tuple(legs),
        cc=cc,
    )


def _tier(t, where: str) -> Tier:
    start, end = _str(t, "sPe", where, None), _str(t, "ePe", where, None)
    return Tier(_int(t, "tn", where), None if start is None else _month(start), None if end is None else _month(end))


def _tiers(parent, tag: str, where: str) -> tuple[Tier, ...]:
    block = parent.find(tag)
    if block is None:
        return (Tier(0),)
    out = []
    for j, t in enumerate(block.findall("tier")):
        out.append(_tier(t, f"{where}/{tag}/tier[{j}]"))
    return tuple(out) or (Tier(0),)


def read_span(path: str | os.PathLike) -> SpanFile:
    """Read a SPAN XML risk-parameter file (``.spn``, fileFormat 4.x) from ``path``."""
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise ValueError(f"{path}: malformed SPAN XML: {exc}") from None
    return _from_root(root)


def parse_span(text: str | bytes) -> SpanFile:
    """Parse SPAN XML held in memory (see :func:`read_span`)."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise ValueError(f"malformed SPAN XML: {exc}") from None
    return _from_root(root)


def _from_root(root) -> SpanFile:
    if root.tag != "spanFile":
        raise ValueError(f"root element: expected <spanFile>, got <{root.tag}>")
    file_format = _str(root, "fileFormat", "spanFile")
    if not file_format.startswith("4."):
        raise ValueError(f"spanFile/<fileFormat>: unsupported format {file_format!r} (this reader handles 4.x)")
    pits = root.findall("pointInTime")
    if len(pits) != 1:
        raise ValueError(f"spanFile: expected one <pointInTime>, got {len(pits)}")
    pit = pits[0]
    orgs = pit.findall("clearingOrg")
    if len(orgs) != 1:
        raise ValueError(f"spanFile/pointInTime: expected one <clearingOrg>, got {len(orgs)}")
    org = orgs[0]
    where_org = "pointInTime/clearingOrg"

    # scan-point definitions (the rate-1 <pointDef>, or the only one)
    pdefs = org.findall("pointDef")
    if not pdefs:
        raise ValueError(f"{where_org}: missing <pointDef>")
    pdef = next((p for p in pdefs if _str(p, "r", where_org + "/pointDef", "1") == "1"), pdefs[0])
    scan_points = _points(pdef, "scanPointDef", where_org + "/pointDef")
    if scan_points.empty:
        raise ValueError(f"{where_org}/pointDef: missing <scanPointDef>")
    delta_points = _points(pdef, "deltaPointDef", where_org + "/pointDef")
    n_points = len(scan_points)

    products, expiries, contracts, arrays = [], [], [], []
    keys: dict[tuple[int, int], int] = {}
    und_refs: list[tuple[int, int, str] | None] = []  # per contract: (pf_id, c_id, where)

    def add_contract(row: dict, array: np.ndarray, where: str, und):
        key = (row["pf_id"], row["c_id"])
        if key in keys:
            raise ValueError(f"{where}: duplicate contract (pfId {key[0]}, cId {key[1]})")
        keys[key] = len(contracts)
        contracts.append(row)
        arrays.append(array)
        und_refs.append(und)

    def und_of(elem, where: str):
        und = elem.find("undC")
        if und is None:
            return None
        w = where + "/undC"
        return (_int(und, "pfId", w), _int(und, "cId", w), w)

    def scan_rate(elem, where: str):
        sr = _find(elem, "scanRate", where)
        w = where + "/scanRate"
        price_scan = _num(sr, "priceScan", w)
        if sr.find("volScanPct") is not None:
            return price_scan, _num(sr, "volScanPct", w), "relative"
        return price_scan, _num(sr, "volScan", w, 0.0), "absolute"

    for exchange in org.findall("exchange"):
        exch = _str(exchange, "exch", where_org + "/exchange")
        for tag in list(_LINEAR_PORTFOLIOS) + list(OPTION_PORTFOLIOS):
            for pf in exchange.findall(tag):
                pf_id = _int(pf, "pfId", f"exchange[{exch}]/{tag}")
                wpf = f"{tag}[pfId={pf_id}]"
                pf_code = _str(pf, "pfCode", wpf)
                pf_type = _PF_TYPE[tag]
                und_pf = pf.find("undPf")
                products.append(
                    {
                        "pf_id": pf_id,
                        "pf_code": pf_code,
                        "pf_type": pf_type,
                        "name": _str(pf, "name", wpf, pf_code),
                        "exchange": exch,
                        "currency": _str(pf, "currency", wpf),
                        "exercise": _str(pf, "exercise", wpf, ""),
                        "price_model": _str(pf, "priceModel", wpf, ""),
                        "value_meth": _str(pf, "valueMeth", wpf, ""),
                        "setl_meth": _str(pf, "setlMeth", wpf, ""),
                        "und_pf_id": -1 if und_pf is None else _int(und_pf, "pfId", wpf + "/undPf"),
                    }
                )
                if tag in _LINEAR_PORTFOLIOS:
                    child = "phy" if tag == "phyPf" else "fut"
                    for c in pf.findall(child):
                        c_id = _int(c, "cId", f"{wpf}/{child}")
                        w = f"{wpf}/{child}[cId={c_id}]"
                        period = _str(c, "pe", w)
                        price_scan, vol_scan, vol_kind = scan_rate(c, w)
                        array, delta = _array(c, w, n_points)
                        expiry_row = -1
                        t = 0.0
                        if child == "fut":
                            t = _num(c, "t", w)
                            expiry_row = len(expiries)
                            expiries.append(
                                {
                                    "pf_id": pf_id, "pf_code": pf_code, "pf_type": pf_type, "period": period,
                                    "setl_date": _str(c, "setlDate", w, ""), "t": t, "cvf": _num(c, "cvf", w),
                                    "rate": np.nan, "div_rate": np.nan, "price_scan": price_scan,
                                    "vol_scan": vol_scan, "vol_scan_kind": vol_kind,
                                    "und_pf_id": -1, "und_c_id": -1,
                                }
                            )
                        und = und_of(c, w)
                        if expiry_row >= 0 and und is not None:
                            expiries[expiry_row]["und_pf_id"], expiries[expiry_row]["und_c_id"] = und[0], und[1]
                        add_contract(
                            {
                                "pf_id": pf_id, "c_id": c_id, "pf_code": pf_code, "pf_type": pf_type,
                                "period": period, "kind": pf_type, "strike": np.nan,
                                "price": _num(c, "p", w), "value": _num(c, "val", w, np.nan),
                                "cvf": _num(c, "cvf", w), "vol": _num(c, "v", w, np.nan),
                                "delta": delta, "t": t, "rate": np.nan, "div_rate": np.nan,
                                "price_scan": price_scan, "vol_scan": vol_scan, "vol_scan_kind": vol_kind,
                                "expiry_row": expiry_row,
                            },
                            array, w, und,
                        )
                else:
                    for series in pf.findall("series"):
                        period = _str(series, "pe", wpf + "/series")
                        ws = f"{wpf}/series[pe={period}]"
                        price_scan, vol_scan, vol_kind = scan_rate(series, ws)
                        intr = series.find("intrRate")
                        rate = 0.0 if intr is None else _num(intr, "val", ws + "/intrRate")
                        div = series.find("divRate")
                        div_rate = 0.0 if div is None else _num(div, "val", ws + "/divRate", 0.0)
                        und = und_of(series, ws)
                        if und is None:
                            raise ValueError(f"{ws}: missing <undC>")
                        t = _num(series, "t", ws)
                        cvf = _num(series, "cvf", ws)
                        expiry_row = len(expiries)
                        expiries.append(
                            {
                                "pf_id": pf_id, "pf_code": pf_code, "pf_type": pf_type, "period": period,
                                "setl_date": _str(series, "setlDate", ws, ""), "t": t, "cvf": cvf,
                                "rate": rate, "div_rate": div_rate, "price_scan": price_scan,
                                "vol_scan": vol_scan, "vol_scan_kind": vol_kind,
                                "und_pf_id": und[0], "und_c_id": und[1],
                            }
                        )
                        for opt in series.findall("opt"):
                            c_id = _int(opt, "cId", ws + "/opt")
                            w = f"{ws}/opt[cId={c_id}]"
                            kind = _str(opt, "o", w)
                            if kind not in ("C", "P"):
                                raise ValueError(f"{w}/<o>: must be 'C' or 'P', got {kind!r}")
                            strike = _num(opt, "k", w)
                            array, delta = _array(opt, w, n_points)
                            add_contract(
                                {
                                    "pf_id": pf_id, "c_id": c_id, "pf_code": pf_code, "pf_type": pf_type,
                                    "period": period, "kind": kind, "strike": strike,
                                    "price": _num(opt, "p", w), "value": _num(opt, "val", w, np.nan),
                                    "cvf": _num(opt, "cvf", w, cvf), "vol": _num(opt, "v", w),
                                    "delta": delta, "t": t, "rate": rate, "div_rate": div_rate,
                                    "price_scan": price_scan, "vol_scan": vol_scan, "vol_scan_kind": vol_kind,
                                    "expiry_row": expiry_row,
                                },
                                array, w, und,
                            )

    product_df = pd.DataFrame(
        products,
        columns=["pf_id", "pf_code", "pf_type", "name", "exchange", "currency", "exercise", "price_model",
                 "value_meth", "setl_meth", "und_pf_id"],
    )
    if product_df["pf_id"].duplicated().any():
        dup = product_df.loc[product_df["pf_id"].duplicated(), "pf_id"].iloc[0]
        raise ValueError(f"exchange: duplicate portfolio pfId {dup}")
    pf_ids = set(product_df["pf_id"])
    for row in products:
        if row["und_pf_id"] != -1 and row["und_pf_id"] not in pf_ids:
            raise ValueError(
                f"{row['pf_type']} portfolio {row['pf_code']} (pfId {row['pf_id']})/undPf: "
                f"unknown pfId {row['und_pf_id']}"
            )

    # underlying contract of every contract that names one
    und_row = np.full(len(contracts), -1, dtype=np.int64)
    for i, und in enumerate(und_refs):
        if und is None:
            continue
        pf, cid, where = und
        if (pf, cid) not in keys:
            raise ValueError(f"{where}: unknown underlying contract (pfId {pf}, cId {cid})")
        und_row[i] = keys[(pf, cid)]
    for e in expiries:
        if e["und_pf_id"] != -1 and (e["und_pf_id"], e["und_c_id"]) not in keys:
            raise ValueError(
                f"{e['pf_type']} {e['pf_code']} {e['period']}/undC: unknown underlying contract "
                f"(pfId {e['und_pf_id']}, cId {e['und_c_id']})"
            )

    # combined commodities
    cc_rows, intra_tiers, inter_tiers, som_tiers, intra_spreads = [], {}, {}, {}, []
    pf_cc: dict[int, str] = {}
    for j, cd in enumerate(org.findall("ccDef")):
        cc = _str(cd, "cc", f"{where_org}/ccDef[{j}]")
        w = f"ccDef[cc={cc}]"
        adj = cd.find("adjRate")
        cc_rows.append(
            {
                "cc": cc,
                "name": _str(cd, "name", w, cc),
                "currency": _str(cd, "currency", w),
                "som_method": _str(cd, "somMeth", w, "GROSS"),
                "adj_rate": 1.0 if adj is None else _num(adj, "val", w + "/adjRate"),
                "cmb_method": _str(cd, "cmbMeth", w, ""),
                "wfpr_method": _str(cd, "wfprMeth", w, "NORMAL"),
            }
        )
        for k, link in enumerate(cd.findall("pfLink")):
            wl = f"{w}/pfLink[{k}]"
            pf = _int(link, "pfId", wl)
            if pf not in pf_ids:
                raise ValueError(f"{wl}: unknown pfId {pf}")
            if pf in pf_cc and pf_cc[pf] != cc:
                raise ValueError(f"{wl}: pfId {pf} already linked to commodity {pf_cc[pf]}")
            pf_cc[pf] = cc
        intra_tiers[cc] = _tiers(cd, "intraTiers", w)
        inter_tiers[cc] = _tiers(cd, "interTiers", w)
        soms = []
        block = cd.find("somTiers")
        for k, t in enumerate([] if block is None else block.findall("tier")):
            wt = f"{w}/somTiers/tier[{k}]"
            rates = t.findall("rate")
            rate = next((r for r in rates if _str(r, "r", wt + "/rate", "1") == "1"), None)
            soms.append((_tier(t, wt), 0.0 if rate is None else _num(rate, "val", wt + "/rate")))
        som_tiers[cc] = tuple(soms)
        for k, ds in enumerate(cd.findall("dSpread")):
            intra_spreads.append(_spread(ds, f"{w}/dSpread[{k}]", cc))
    commodities = pd.DataFrame(
        cc_rows, columns=["cc", "name", "currency", "som_method", "adj_rate", "cmb_method", "wfpr_method"]
    ).set_index("cc")
    if commodities.index.duplicated().any():
        raise ValueError(f"ccDef: duplicate cc {commodities.index[commodities.index.duplicated()][0]!r}")
    for s in intra_spreads:
        for leg in s.legs:
            if leg.cc not in commodities.index:
                raise ValueError(f"ccDef[cc={s.cc}]/dSpread[spread={s.number}]/tLeg: unknown cc {leg.cc!r}")
    inter_spreads = []
    block = org.find("interSpreads")
    for k, ds in enumerate([] if block is None else block.findall("dSpread")):
        s = _spread(ds, f"{where_org}/interSpreads/dSpread[{k}]", None)
        for leg in s.legs:
            if leg.cc not in commodities.index:
                raise ValueError(f"interSpreads/dSpread[spread={s.number}]/tLeg: unknown cc {leg.cc!r}")
        inter_spreads.append(s)

    product_df["cc"] = product_df["pf_id"].map(pf_cc).fillna("")
    contract_df = pd.DataFrame(
        contracts,
        columns=["pf_id", "c_id", "pf_code", "pf_type", "period", "kind", "strike", "price", "value", "cvf",
                 "vol", "delta", "t", "rate", "div_rate", "price_scan", "vol_scan", "vol_scan_kind", "expiry_row"],
    )
    contract_df.insert(4, "cc", contract_df["pf_id"].map(pf_cc).fillna(""))
    contract_df.insert(6, "month", contract_df["period"].map(_month))
    contract_df["und_row"] = und_row
    contract_df.insert(0, "contract", _contract_keys(contract_df))
    if contract_df["contract"].duplicated().any():
        dup = contract_df.loc[contract_df["contract"].duplicated(), "contract"].iloc[0]
        raise ValueError(f"contracts: two contracts share the key {dup!r}")

    conversions = pd.DataFrame(
        [
            {
                "from_cur": _str(c, "fromCur", where_org + "/curConv"),
                "to_cur": _str(c, "toCur", where_org + "/curConv"),
                "factor": _num(c, "factor", where_org + "/curConv"),
            }
            for c in org.findall("curConv")
        ],
        columns=["from_cur", "to_cur", "factor"],
    )
    risk = np.vstack(arrays) if arrays else np.zeros((0, n_points))
    return SpanFile(
        file_format=file_format,
        created=_str(root, "created", "spanFile", ""),
        business_date=_str(pit, "date", "pointInTime"),
        is_settlement=_str(pit, "isSetl", "pointInTime", "0") == "1",
        clearing_org=_str(org, "ec", where_org, ""),
        products=product_df,
        expiries=pd.DataFrame(
            expiries,
            columns=["pf_id", "pf_code", "pf_type", "period", "setl_date", "t", "cvf", "rate", "div_rate",
                     "price_scan", "vol_scan", "vol_scan_kind", "und_pf_id", "und_c_id"],
        ),
        contracts=contract_df,
        risk_arrays=np.ascontiguousarray(risk, dtype=np.float64),
        scan_points=scan_points,
        delta_points=delta_points,
        commodities=commodities,
        intra_tiers=intra_tiers,
        inter_tiers=inter_tiers,
        som_tiers=som_tiers,
        intra_spreads=tuple(intra_spreads),
        inter_spreads=tuple(sorted(inter_spreads, key=lambda s: s.number)),
        currency_conversions=conversions,
    )


def _contract_keys(df: pd.DataFrame) -> list[str]:
    out = []
    cols = (df["pf_type"], df["pf_code"], df["period"], df["kind"], df["strike"])
    for pf_type, code, period, kind, strike in zip(*cols):
        key = f"{pf_type}:{code}:{period}"
        if kind in ("C", "P"):
            key += f":{kind}:{format(float(strike), '.10g')}"
        out.append(key)
    return out


# --------------------------------------------------------------------------------------------
# regeneration with the revaluation kernel
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RegeneratedArrays:
    """Risk arrays recomputed from the file's inputs, aligned with ``SpanFile.contracts``.

    ``arrays`` is in the published convention (loss per contract, scan-point weights applied);
    rows that could not be regenerated are NaN and ``reason`` says why ('' when regenerated).
    ``theoretical`` is the model value of one contract now (options; 0 for linear contracts).
    ``deltas`` are composite deltas in underlying contracts per contract: for options the
    ``delta_points``-weighted mean of the delta at each delta point (with the look-ahead), by
    central differences of kernel values; 1 for futures; the file's own delta for physicals
    (which the file uses to say whether a physical position takes part in delta spreading)."""

    arrays: np.ndarray
    reason: np.ndarray
    theoretical: np.ndarray
    look_ahead: float
    deltas: np.ndarray


def regenerate_arrays(
    span: SpanFile,
    *,
    look_ahead: float = DEFAULT_LOOK_AHEAD,
    price_moves: str = "mult",
    underlying_price: str = "value",
    threads: int = 1,
) -> RegeneratedArrays:
    """Recompute every contract's risk array with :func:`marginkernel.kernels.revalue`.

    Per scan point s with price multiplier p_s, vol multiplier v_s and weight w_s (``scan_points``;
    ``price_moves='mult'`` uses the file's rounded ``<mult>`` as the published arrays do,
    ``'fraction'`` uses numerator/denominator), for a contract of value factor cvf:

    * the underlying price S is the underlying contract's settlement value ``<val>`` divided by its
      cvf (``underlying_price='value'``, which is what the published arrays were computed from: the
      value is rounded to the currency's decimals), or its price ``<p>`` (``'price'``);
    * the underlying moves by p_s * priceScan / cvf in price units (``priceScan`` is per contract);
    * options: Black-Scholes with dividends on the underlying's price S (physical underlying: carry
      r - q; futures underlying: carry 0) at the relative vol scan sigma * (1 + v_s * volScanPct)
      (``volScan`` in vol points: additive) and time T - ``look_ahead``;
      array_s = w_s * cvf * (V(S, sigma, T) - V(S + dS_s, sigma_s, T - dt));
    * futures and physicals: array_s = -w_s * cvf * dS_s.

    Every value is the kernel's. The kernel keeps F and the discount factor fixed when it shortens
    T by ``time_shift``, whereas SPAN rolls the whole Black-Scholes model forward one day
    (F = S e^{(r-q)(T-dt)}, df = e^{-r(T-dt)}), so options take two kernel calls: one with the
    inputs of today (the theoretical base value), one with forward and discount at T - dt and
    ``time_shift = dt`` for the scan points; a third call (same rolled inputs, each delta point
    bumped by +-1e-5 relative) gives the composite deltas.
    """
    if price_moves not in ("mult", "fraction"):
        raise ValueError(f"price_moves: must be 'mult' or 'fraction', got {price_moves!r}")
    if underlying_price not in ("value", "price"):
        raise ValueError(f"underlying_price: must be 'value' or 'price', got {underlying_price!r}")
    if not (0.0 <= look_ahead < 1.0):
        raise ValueError(f"look_ahead: must be in [0, 1) years, got {look_ahead}")
    c = span.contracts
    sp = span.scan_points
    n, n_pts = len(c), len(sp)
    if price_moves == "fraction":
        price_mult = (sp["price_num"] / sp["price_den"]).to_numpy()
    else:
        price_mult = sp["price_mult"].to_numpy()
    if not np.isfinite(price_mult).all():
        raise ValueError("scan_points: numerator/denominator missing; use price_moves='mult'")
    vol_mult = sp["vol_mult"].to_numpy()
    weight = sp["weight"].to_numpy()

    out = np.full((n, n_pts), np.nan)
    theoretical = np.zeros(n)
    reason = np.full(n, "", dtype=object)
    kind_code = c["kind"].map({"PHY": 4, "FUT": 0, "C": 2, "P": 3}).to_numpy()
    is_opt = np.isin(c["kind"].to_numpy(), ("C", "P"))
    und_row = c["und_row"].to_numpy()
    price = c["price"].to_numpy(dtype=float)
    cvf = c["cvf"].to_numpy(dtype=float)
    scan = c["price_scan"].to_numpy(dtype=float)

    # underlying price (options) or own price (linear), and carry per contract
    if underlying_price == "value":
        value = c["value"].to_numpy(dtype=float)
        with np.errstate(invalid="ignore", divide="ignore"):
            per_unit = np.where(np.isfinite(value) & (cvf > 0), value / cvf, price)
    else:
        per_unit = price
    under = np.where(is_opt, per_unit[np.maximum(und_row, 0)], price)
    und_kind = np.where(und_row >= 0, c["kind"].to_numpy()[np.maximum(und_row, 0)], "")
    carry = np.where(und_kind == "FUT", 0.0, c["rate"].to_numpy(dtype=float) - c["div_rate"].to_numpy(dtype=float))
    exercise = c["pf_id"].map(span.products.set_index("pf_id")["exercise"]).fillna("").to_numpy()

    ok = np.ones(n, dtype=bool)
    checks = [
        (is_opt & (und_row < 0), "option without an underlying contract"),
        (is_opt & np.isin(exercise, ("AMER", "AMERICAN")), "American exercise: the kernel prices European only"),
        (~(under > 0), "underlying price <= 0"),
        (~(cvf > 0), "contract value factor <= 0"),
        (is_opt & ~(c["strike"].to_numpy(dtype=float) > 0), "strike <= 0"),
        (is_opt & ~(c["vol"].to_numpy(dtype=float) >= 0), "volatility < 0"),
        (is_opt & ~(c["t"].to_numpy(dtype=float) >= 0), "time to expiry < 0"),
    ]
    for bad, why in checks:
        take = bad & ok
        reason[take] = why
        ok &= ~bad
    rows = np.flatnonzero(ok)
    deltas = np.full(n, np.nan)
    if rows.size == 0:
        return RegeneratedArrays(out, reason, theoretical, look_ahead, deltas)

    # one risk unit per regenerated contract: its scan range, vol scan and underlying price
    move = scan[rows] / cvf[rows]  # price units per unit price_mult
    s0 = under[rows]
    m = 1.0 + np.outer(move / s0, price_mult)  # (U, S)
    if (m <= 0).any():
        bad = rows[(m <= 0).any(axis=1)]
        reason[bad] = "scan moves the underlying price to <= 0"
        keep = ~(m <= 0).any(axis=1)
        rows, move, s0, m = rows[keep], move[keep], s0[keep], m[keep]
    u = np.arange(rows.size, dtype=np.int32)
    t = np.where(is_opt[rows], c["t"].to_numpy(dtype=float)[rows], 0.0)
    r = np.where(is_opt[rows], np.nan_to_num(c["rate"].to_numpy(dtype=float)[rows]), 0.0)
    q_carry = np.where(is_opt[rows], np.nan_to_num(carry[rows]), 0.0)
    t_later = np.maximum(t - look_ahead, 0.0)
    vol = np.where(is_opt[rows], c["vol"].to_numpy(dtype=float)[rows], 0.0)
    strike = np.where(is_opt[rows], c["strike"].to_numpy(dtype=float)[rows], 0.0)
    kinds = kind_code[rows].astype(np.int8)
    zeros8 = np.zeros(rows.size, dtype=np.int8)
    vol_scan = c["vol_scan"].to_numpy(dtype=float)[rows]
    vol_kind = c["vol_scan_kind"].to_numpy()[rows]

    later_value = np.zeros((rows.size, n_pts))
    opt = is_opt[rows]
    dp = span.delta_points
    fd_step = 1e-5  # relative bump of the central differences for the composite delta
    if len(dp):
        dm = 1.0 + np.outer(move / s0, dp["price_mult"].to_numpy())  # (U, D) underlying multipliers
        dm_fd = np.concatenate([dm * (1.0 + fd_step), dm * (1.0 - fd_step)], axis=1)
        dv_fd = np.tile(dp["vol_mult"].to_numpy(), 2)
        dw = dp["weight"].to_numpy()
        und_cvf = np.where(und_row[rows] >= 0, cvf[np.maximum(und_row[rows], 0)], cvf[rows])
    comp_delta = np.ones(rows.size)
    for vk, shock in (("relative", "relative"), ("absolute", "additive")):
        sel = np.flatnonzero(vol_kind == vk)
        if sel.size == 0:
            continue
        # scenario call: forward and discount rolled to T - dt, time_shift dt on every scan point
        args = (
            kinds[sel], zeros8[sel], np.arange(sel.size, dtype=np.int32), strike[sel], t[sel], cvf[rows][sel],
            s0[sel] * np.exp(q_carry[sel] * t_later[sel]), np.exp(-r[sel] * t_later[sel]), vol[sel], s0[sel],
        )
        risk, now_rolled = kernels.revalue(
            *args, np.ascontiguousarray(m[sel]), np.ascontiguousarray(np.outer(vol_scan[sel], vol_mult)),
            np.full(n_pts, float(look_ahead)), vol_shock=shock, threads=threads,
        )
        later_value[sel] = risk + now_rolled[:, None]
        if len(dp) and opt[sel].any():
            fd, _ = kernels.revalue(
                *args, np.ascontiguousarray(dm_fd[sel]), np.ascontiguousarray(np.outer(vol_scan[sel], dv_fd)),
                np.full(2 * len(dp), float(look_ahead)), vol_shock=shock, threads=threads,
            )
            up, down = fd[:, : len(dp)], fd[:, len(dp):]
            point_delta = (up - down) / (2.0 * fd_step * s0[sel, None] * dm[sel] * und_cvf[sel, None])
            comp_delta[sel] = np.where(opt[sel], point_delta @ dw / dw.sum(), 1.0)
    # today's theoretical value (options): one neutral scenario, no time shift
    now_risk, now = kernels.revalue(
        kinds, zeros8, u, strike, t, cvf[rows], s0 * np.exp(q_carry * t), np.exp(-r * t), vol, s0,
        np.ones((rows.size, 1)), None, None, threads=threads,
    )
    pnl = np.where(opt[:, None], later_value - now[:, None], later_value)
    out[rows] = -(pnl * weight[None, :])
    theoretical[rows] = now
    deltas[rows] = comp_delta if len(dp) else np.where(opt, np.nan, 1.0)
    phy = c["kind"].to_numpy() == "PHY"
    deltas[phy] = c["delta"].to_numpy(dtype=float)[phy]  # the file's say on whether a physical spreads
    return RegeneratedArrays(out, reason, theoretical, look_ahead, deltas)


def compare_arrays(span: SpanFile, regenerated: RegeneratedArrays | np.ndarray) -> pd.DataFrame:
    """Per contract: scale (= max |published|), max_abs_err and rel_err (= max_abs_err / scale, NaN
    when the published array is all zero), with the contract's key, kind and regeneration reason."""
    arrays = regenerated.arrays if isinstance(regenerated, RegeneratedArrays) else np.asarray(regenerated, float)
    pub = span.risk_arrays
    if arrays.shape != pub.shape:
        raise ValueError(f"regenerated: shape {arrays.shape} does not match the published arrays {pub.shape}")
    scale = np.abs(pub).max(axis=1)
    err = np.abs(arrays - pub).max(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = np.where(scale > 0, err / scale, np.nan)
    df = span.contracts[["contract", "cc", "pf_type", "kind"]].copy()
    df["scale"] = scale
    df["max_abs_err"] = err
    df["rel_err"] = rel
    if isinstance(regenerated, RegeneratedArrays):
        df["reason"] = regenerated.reason
    return df


def error_summary(errors: pd.DataFrame) -> pd.DataFrame:
    """Median and max relative error and counts by contract kind (options C+P together), from
    :func:`compare_arrays`. ``matched`` counts rows regenerated with a finite error."""
    kind = errors["kind"].replace({"C": "option", "P": "option"})
    out = []
    for k, g in errors.groupby(kind, sort=True):
        finite = g["max_abs_err"].notna()
        rel = g.loc[finite, "rel_err"].dropna()
        out.append(
            {
                "kind": k,
                "total": len(g),
                "matched": int(finite.sum()),
                "all_zero": int((g.loc[finite, "scale"] == 0).sum()),
                "median_rel_err": float(rel.median()) if len(rel) else np.nan,
                "max_rel_err": float(rel.max()) if len(rel) else np.nan,
                "max_abs_err": float(g.loc[finite, "max_abs_err"].max()) if finite.any() else np.nan,
            }
        )
    return pd.DataFrame(out).set_index("kind")


# --------------------------------------------------------------------------------------------
# margin on published (or regenerated) arrays
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SpanMargin:
    """SPAN requirement per account and combined commodity.

    ``by_commodity`` (one row per account and cc held): scan_risk, active_point (1-based scan point
    of the worst loss), time_risk, vol_risk, price_risk, net_delta, wfpr (weighted futures price
    risk per delta), intra_spreads / intra_charge, inter_credit, som (short-option minimum),
    risk = max(scan_risk + intra_charge - inter_credit, som), maintenance = adj_rate * risk,
    net_option_value (sum of quantity * option value; reported, not netted into risk).
    ``by_account``: the sums per account and currency. ``scenario_loss``: (accounts, commodities,
    points) losses, commodities in ``commodities`` order; ``accounts``: account labels."""

    by_commodity: pd.DataFrame
    by_account: pd.DataFrame
    scenario_loss: np.ndarray
    accounts: list
    commodities: list


def contract_rows(span: SpanFile, positions: pd.DataFrame) -> np.ndarray:
    """Row in ``span.contracts`` of every position, from a ``contract`` key column, from
    ``pf_id`` + ``c_id``, or from ``row``; ValueError names the first unknown one."""
    c = span.contracts
    if "contract" in positions:
        lookup = pd.Series(np.arange(len(c)), index=c["contract"])
        keys = positions["contract"].astype(str)
        rows = keys.map(lookup)
        if rows.isna().any():
            i = int(np.flatnonzero(rows.isna().to_numpy())[0])
            raise ValueError(f"positions['contract'] row {i}: unknown contract {keys.iloc[i]!r}")
        return rows.to_numpy(dtype=np.int64)
    if "pf_id" in positions and "c_id" in positions:
        lookup = {(int(p), int(k)): i for i, (p, k) in enumerate(zip(c["pf_id"], c["c_id"]))}
        out = np.empty(len(positions), dtype=np.int64)
        for i, (p, k) in enumerate(zip(positions["pf_id"], positions["c_id"])):
            try:
                out[i] = lookup[(int(p), int(k))]
            except (KeyError, ValueError, TypeError):
                raise ValueError(f"positions row {i}: unknown contract (pf_id {p!r}, c_id {k!r})") from None
        return out
    if "row" in positions:
        rows = positions["row"].to_numpy()
        if rows.dtype.kind not in "iu":
            raise ValueError("positions['row']: must be integers")
        bad = np.flatnonzero((rows < 0) | (rows >= len(c)))
        if bad.size:
            raise ValueError(f"positions['row'] row {int(bad[0])}: unknown contract row {int(rows[bad[0]])}")
        return rows.astype(np.int64)
    raise ValueError("positions: need a 'contract' column, 'pf_id' and 'c_id' columns, or a 'row' column")


def margin(
    span: SpanFile,
    positions: pd.DataFrame,
    *,
    arrays: np.ndarray | RegeneratedArrays | None = None,
    deltas: np.ndarray | None = None,
    whole_spreads: bool = False,
    threads: int = 1,
) -> SpanMargin:
    """SPAN requirement of every account in ``positions`` on the file's arrays.

    ``positions``: a DataFrame with ``quantity`` (contracts, long > 0), an optional ``account``
    column (default: one account 'account') and the contract (see :func:`contract_rows`).
    ``arrays`` replaces the published arrays (e.g. :func:`regenerate_arrays`), ``deltas`` the
    published composite deltas. Spreads are formed on deltas as fractions unless
    ``whole_spreads``. Per combined commodity, following SPAN:

    1. scan risk: the largest loss over the scan points of the netted arrays (weights included),
       floored at 0; time risk = mean loss of the points with no price move, volatility risk = half
       the difference between the worst point and its paired point, price risk = the rest;
    2. intra-commodity spreads (the commodity's ``<dSpread>``, in order): deltas per contract month;
       legs in one tier pair long months against short months of that tier, legs in different
       tiers pair the tiers' net deltas; charge = spreads * rate (method 'F');
    3. inter-commodity spreads (``<interSpreads>``, in order): on the net deltas left, legs marked
       A on one side, B on the other; credit to each leg's commodity = rate * spreads * ratio *
       price risk / |net delta| (method 'W');
    4. short-option minimum: the tier rate per short option contract ('GROSS': calls + puts;
       'MAX': the larger of the two);
    5. risk = max(scan + intra charge - inter credit, short-option minimum).
    """
    if not isinstance(positions, pd.DataFrame):
        positions = pd.DataFrame(positions)
    if "quantity" not in positions:
        raise ValueError("positions: missing column 'quantity'")
    qty = pd.to_numeric(positions["quantity"], errors="coerce").to_numpy(dtype=float)
    if not np.isfinite(qty).all():
        i = int(np.flatnonzero(~np.isfinite(qty))[0])
        raise ValueError(f"positions['quantity'] row {i}: not a finite number: {positions['quantity'].iloc[i]!r}")
    rows = contract_rows(span, positions)
    c = span.contracts
    ccs = list(span.commodities.index)
    cc_index = {cc: k for k, cc in enumerate(ccs)}
    unlinked = c["cc"].to_numpy()[rows] == ""
    if unlinked.any():
        i = int(np.flatnonzero(unlinked)[0])
        raise ValueError(f"positions row {i}: contract {c['contract'].iat[rows[i]]!r} belongs to no combined commodity")

    if arrays is None:
        arr = span.risk_arrays
    else:
        arr = arrays.arrays if isinstance(arrays, RegeneratedArrays) else np.asarray(arrays, dtype=float)
        if arr.shape != span.risk_arrays.shape:
            raise ValueError(f"arrays: shape {arr.shape} does not match the file's {span.risk_arrays.shape}")
    bad = ~np.isfinite(arr[rows]).all(axis=1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"arrays: no risk array for position row {i} ({c['contract'].iat[rows[i]]})")
    delta = c["delta"].to_numpy(dtype=float) if deltas is None else np.asarray(deltas, dtype=float)
    if delta.shape != (len(c),):
        raise ValueError(f"deltas: expected shape ({len(c)},), got {delta.shape}")
    delta = np.nan_to_num(delta)

    account_col = positions["account"] if "account" in positions else pd.Series(["account"] * len(positions))
    if len(positions) == 0:
        raise ValueError("positions: empty table")
    acc_codes, accounts = pd.factorize(account_col, sort=False)
    if (acc_codes < 0).any():
        raise ValueError(f"positions['account'] row {int(np.flatnonzero(acc_codes < 0)[0])}: missing account")
    accounts = list(accounts)
    n_acc, n_cc, n_pts = len(accounts), len(ccs), span.n_points
    order = np.argsort(acc_codes, kind="stable")
    starts = np.concatenate([[0], np.cumsum(np.bincount(acc_codes, minlength=n_acc))]).astype(np.int64)
    unit = np.array([cc_index.get(x, 0) for x in c["cc"]], dtype=np.int32)

    # 1. scan risk on the netted arrays: the kernel nets P&L (= -loss) per account and commodity
    pnl = kernels.net(
        np.ascontiguousarray(-np.nan_to_num(arr)), unit, n_cc, starts,
        rows[order].astype(np.int32), np.ascontiguousarray(qty[order]), threads=threads,
    )
    flat = pnl.reshape(-1, n_pts)
    scan, worst = kernels.worst_loss(flat)
    loss = -pnl
    scan = scan.reshape(n_acc, n_cc)
    worst = worst.reshape(n_acc, n_cc)
    sp = span.scan_points
    time_pts = np.flatnonzero((sp["price_mult"] == 0).to_numpy())
    paired = sp["paired_point"].to_numpy() - 1
    time_risk = loss[:, :, time_pts].mean(axis=2) if time_pts.size else np.zeros((n_acc, n_cc))
    active = np.take_along_axis(loss, worst[:, :, None].astype(np.int64), axis=2)[:, :, 0]
    pair_loss = np.take_along_axis(loss, paired[worst][:, :, None], axis=2)[:, :, 0]
    vol_risk = np.where(scan > 0, np.maximum(active - pair_loss, 0.0) / 2.0, 0.0)
    price_risk = np.where(scan > 0, np.maximum(scan - time_risk - vol_risk, 0.0), 0.0)

    held = np.zeros((n_acc, n_cc), dtype=bool)
    held[acc_codes, unit[rows]] = True

    # deltas per account, commodity and contract month; short options per commodity and tier
    month = c["month"].to_numpy()
    kind = c["kind"].to_numpy()
    book: dict[tuple[int, int], dict[str, float]] = {}
    shorts: dict[tuple[int, int], list[tuple[str, str, float]]] = {}
    nov = np.zeros((n_acc, n_cc))
    value = np.nan_to_num(c["value"].to_numpy(dtype=float))
    for a, r, q in zip(acc_codes, rows, qty):
        key = (int(a), int(unit[r]))
        months = book.setdefault(key, {})
        months[month[r]] = months.get(month[r], 0.0) + q * delta[r]
        if kind[r] in ("C", "P"):
            nov[key] += q * value[r]
            if q < 0:
                shorts.setdefault(key, []).append((kind[r], month[r], -q))

    tol = 1e-9
    intra_charge = np.zeros((n_acc, n_cc))
    intra_count = np.zeros((n_acc, n_cc))
    som = np.zeros((n_acc, n_cc))
    remaining: dict[tuple[int, int], tuple[list[str], np.ndarray]] = {}
    intra_by_cc: dict[str, list[Spread]] = {}
    for s in span.intra_spreads:
        intra_by_cc.setdefault(s.cc, []).append(s)
    for key, months in book.items():
        a, k = key
        cc = ccs[k]
        mlist = sorted(months)
        d = np.array([months[mth] for mth in mlist])
        tiers = span.intra_tiers.get(cc, (Tier(0),))
        # 2. intra-commodity spreads
        for s in sorted(intra_by_cc.get(cc, []), key=lambda s: s.number):
            n_spreads = form_intra_spread(s, tiers, mlist, d, tol, whole_spreads)
            if n_spreads > 0:
                if s.charge_method != "F":
                    raise ValueError(
                        f"ccDef[cc={cc}]/dSpread[spread={s.number}]/<chargeMeth>: method {s.charge_method!r} "
                        "is not supported for intra-commodity spreads (supported: 'F')"
                    )
                intra_charge[key] += n_spreads * s.rate
                intra_count[key] += n_spreads
        remaining[key] = (mlist, d)
        # 4. short-option minimum
        method = span.commodities.at[cc, "som_method"]
        rate_of = span.som_tiers.get(cc, ())
        calls = puts = 0.0
        charge = 0.0
        for o, mth, n_short in shorts.get(key, []):
            rate = next((rt for t, rt in rate_of if t.contains(mth)), 0.0)
            charge += n_short * rate
            if o == "C":
                calls += n_short * rate
            else:
                puts += n_short * rate
        if method == "GROSS":
            som[key] = charge
        elif method in ("MAX", "NET"):
            som[key] = max(calls, puts)
        elif charge > 0:
            raise ValueError(f"ccDef[cc={cc}]/<somMeth>: method {method!r} is not supported (GROSS, MAX)")

    # 3. inter-commodity spreads on the remaining net deltas
    net_delta = np.zeros((n_acc, n_cc))
    for key, (mlist, d) in remaining.items():
        net_delta[key] = d.sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        wfpr = np.where(np.abs(net_delta) > tol, price_risk / np.abs(net_delta), 0.0)
    inter_credit = np.zeros((n_acc, n_cc))
    for s in span.inter_spreads:
        leg_units = [cc_index[leg.cc] for leg in s.legs]
        for a in range(n_acc):
            if not all(held[a, k] for k in leg_units):
                continue
            legs = []
            for leg, k in zip(s.legs, leg_units):
                mlist, d = remaining[(a, k)]
                idx = tier_rows(span.inter_tiers.get(leg.cc, (Tier(0),)), leg.tier, mlist)
                legs.append((leg, k, idx, float(d[idx].sum()) if idx else 0.0))
            first_leg, _, _, first_d = legs[0]
            sign = delta_sign(first_d, tol) * (1 if first_leg.side == "A" else -1)
            if sign == 0 or any(delta_sign(dl, tol) != (sign if leg.side == "A" else -sign) for leg, _, _, dl in legs):
                continue
            n_spreads = min(abs(dl) / leg.ratio for leg, _, _, dl in legs)
            if whole_spreads:
                n_spreads = math.floor(n_spreads + tol)
            if n_spreads <= tol:
                continue
            if s.charge_method != "W":
                raise ValueError(
                    f"interSpreads/dSpread[spread={s.number}]/<chargeMeth>: method {s.charge_method!r} "
                    "is not supported for inter-commodity spreads (supported: 'W')"
                )
            for leg, k, idx, dl in legs:
                inter_credit[a, k] += s.rate * n_spreads * leg.ratio * wfpr[a, k]
                consume(remaining[(a, k)][1], idx, delta_sign(dl, tol), n_spreads * leg.ratio)

    risk = np.maximum(scan + intra_charge - inter_credit, som)
    adj = span.commodities["adj_rate"].to_numpy(dtype=float)
    a_idx, k_idx = np.nonzero(held)
    by_cc = pd.DataFrame(
        {
            "account": [accounts[a] for a in a_idx],
            "cc": [ccs[k] for k in k_idx],
            "currency": span.commodities["currency"].to_numpy()[k_idx],
            "scan_risk": scan[a_idx, k_idx],
            "active_point": worst[a_idx, k_idx] + 1,
            "time_risk": time_risk[a_idx, k_idx],
            "vol_risk": vol_risk[a_idx, k_idx],
            "price_risk": price_risk[a_idx, k_idx],
            "net_delta": net_delta[a_idx, k_idx],
            "wfpr": wfpr[a_idx, k_idx],
            "intra_spreads": intra_count[a_idx, k_idx],
            "intra_charge": intra_charge[a_idx, k_idx],
            "inter_credit": inter_credit[a_idx, k_idx],
            "som": som[a_idx, k_idx],
            "risk": risk[a_idx, k_idx],
            "maintenance": adj[k_idx] * risk[a_idx, k_idx],
            "net_option_value": nov[a_idx, k_idx],
        }
    )
    sums = ["scan_risk", "intra_charge", "inter_credit", "som", "risk", "maintenance", "net_option_value"]
    by_account = by_cc.groupby(["account", "currency"], sort=False)[sums].sum().reset_index()
    return SpanMargin(by_cc, by_account, loss, accounts, ccs)
