"""The records of one SPAN file collected while it streams (:class:`Builder`): headers, contracts
in typed columns, arrays in one buffer, commodity definitions; ``finish`` assembles the SpanFile."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from array import array
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from . import fields as F
from . import records
from .assemble import assemble
from .commodities import CommodityDefs
from .model import PF_TYPE, Columns, FileParams, SpanFile
from .schema import check_children, kind_of

_FLOATS = ("strike", "price", "value", "cvf", "vol", "delta", "t", "rate", "div_rate", "price_scan", "vol_scan")
_OBJECTS = ("pf_code", "pf_type", "period", "kind", "vol_scan_kind")


class Builder:
    """Collects the records of one file while it streams; :meth:`finish` assembles the SpanFile."""

    def __init__(self, products: Iterable[str] | None) -> None:
        self.keep = None if products is None else {str(p) for p in products}
        self.header: dict[str, Any] = {}
        self.params: dict[str, Any] = {}
        self.n_points: int | None = None
        self.scan_points = pd.DataFrame()
        self.delta_points = pd.DataFrame()
        self.products: list[dict[str, Any]] = []
        self.contracts = Columns(_FLOATS, ("pf_id", "c_id", "expiry_row"), _OBJECTS)
        self.expiries: list[dict[str, Any]] = []
        self.values = array("d")
        self.keys: dict[tuple[int, int], int] = {}
        self.und_refs: list[tuple[int, int, str] | None] = []
        self.defs = CommodityDefs()
        self.conversions: list[dict[str, Any]] = []
        self.pf: dict[int, tuple[dict[str, Any], str] | None] = {}  # id(element) -> header, or None: skipped
        self.series: dict[int, dict[str, Any]] = {}
        self.n_org = 0

    # ---- headers ------------------------------------------------------------------------------
    def org_fields(self, org: ET.Element) -> None:
        w = "pointInTime/clearingOrg"
        self.header["clearing_org"] = F.text(org, "ec", w, "")
        self.params = {
            "look_ahead_years": F.num(org, "lookAheadYears", w, None, lo=0.0, hi=1.0),
            "look_ahead_days": F.num(org, "lookAheadDays", w, None, lo=0.0, hi=366.0),
            "days_per_year": F.num(org, "daysPerYear", w, None, lo=1.0, hi=366.0),
            "cap_anov": F.flag(org, "capAnov", w),
        }
        if F.num(org, "minIntExDeltaPct", w, 0.0) != 0:
            raise ValueError(f"{w}/<minIntExDeltaPct>: minimum inter-exchange delta percentages are not supported")

    def portfolio(self, pf: ET.Element, exch: str) -> tuple[dict[str, Any], str] | None:
        key = id(pf)
        if key not in self.pf:
            header, wpf = records.portfolio(pf, pf.tag, exch, PF_TYPE[pf.tag])
            keep = self.keep is None or header["pf_code"] in self.keep
            self.pf[key] = (header, wpf) if keep else None
        return self.pf[key]

    def need_points(self, where: str) -> int:
        if self.n_points is None:
            raise ValueError(f"{where}: <pointDef> must precede the contracts (schema order)")
        return self.n_points

    # ---- records ------------------------------------------------------------------------------
    def add_contract(self, row: dict[str, Any], expiry_row: int) -> None:
        key = (row["pf_id"], row["c_id"])
        if key in self.keys:
            raise ValueError(f"{row['where']}: duplicate contract (pfId {key[0]}, cId {key[1]})")
        self.keys[key] = self.contracts.n
        row["expiry_row"] = expiry_row
        self.contracts.append(row)
        self.values.extend(row["array"])
        self.und_refs.append(row["und"])

    def linear(self, c: ET.Element, pf_elem: ET.Element, exch: str) -> None:
        got = self.portfolio(pf_elem, exch)
        if got is None:
            return
        pf, wpf = got
        row = records.linear_contract(c, c.tag, wpf, pf, self.need_points(wpf))
        expiry_row = -1
        if c.tag == "fut":
            expiry_row = len(self.expiries)
            und = row["und"]
            self.expiries.append(
                {
                    k: row[k]
                    for k in (
                        "pf_id",
                        "pf_code",
                        "pf_type",
                        "period",
                        "setl_date",
                        "t",
                        "cvf",
                        "rate",
                        "div_rate",
                        "price_scan",
                        "vol_scan",
                        "vol_scan_kind",
                    )
                }
                | {"und_pf_id": -1 if und is None else und[0], "und_c_id": -1 if und is None else und[1]}
            )
        self.add_contract(row, expiry_row)

    def series_head(self, series: ET.Element, pf_elem: ET.Element, exch: str) -> dict[str, Any] | None:
        key = id(series)
        if key not in self.series:
            got = self.portfolio(pf_elem, exch)
            if got is None:
                self.series[key] = {}
                return None
            head = records.series_header(series, got[1], got[0])
            head["expiry_row"] = len(self.expiries)
            self.expiries.append({k: v for k, v in head.items() if k not in ("und", "where", "expiry_row")})
            self.series[key] = head
        return self.series[key] or None

    def options(self, series: ET.Element, head: dict[str, Any]) -> None:
        """Every ``<opt>`` of a complete series: all at once when every value passes (the common
        case), else one by one through :func:`records.option`, which names the bad element."""
        opts = series.findall("opt")
        n_points = self.need_points(head["where"])
        cols = records.options_fast(opts, head, n_points) if opts else None
        if cols is None:
            for opt in opts:
                self.add_contract(records.option(opt, head, n_points), head["expiry_row"])
            return
        start, n = self.contracts.n, len(opts)
        keys = list(zip([head["pf_id"]] * n, cols["c_id"], strict=True))
        if len(set(keys)) != n or not self.keys.keys().isdisjoint(keys):
            for c_id in cols["c_id"]:  # find the first duplicate, in file order
                key = (head["pf_id"], c_id)
                if key in self.keys:
                    raise ValueError(f"{head['where']}/opt[cId={c_id}]: duplicate contract (pfId {key[0]}, cId {c_id})")
                self.keys[key] = -1
        self.keys.update(zip(keys, range(start, start + n), strict=True))
        same = {
            k: [head[k]] * n
            for k in (
                "pf_id",
                "pf_code",
                "pf_type",
                "period",
                "t",
                "rate",
                "div_rate",
                "price_scan",
                "vol_scan",
                "vol_scan_kind",
                "expiry_row",
            )
        }
        self.contracts.extend(
            same | {k: cols[k] for k in ("c_id", "kind", "strike", "price", "value", "cvf", "vol", "delta")}, n
        )
        self.values.frombytes(cols["array"].astype(np.float64).tobytes())
        self.und_refs.extend([head["und"]] * n)

    def end_portfolio(self, pf: ET.Element, exch: str) -> None:
        got = self.portfolio(pf, exch)
        kind = kind_of(pf.tag)
        if got is not None:
            check_children(F.children(pf), kind, got[1])
            self.products.append({k: v for k, v in got[0].items() if k != "cvf"})
        self.pf.pop(id(pf), None)

    def point_def(self, pdef: ET.Element) -> None:
        r, scan, delta = records.point_def(pdef, "pointInTime/clearingOrg/pointDef")
        if self.n_points is None or r == "1":
            if self.contracts.n:
                raise ValueError("pointInTime/clearingOrg/pointDef: must precede the contracts (schema order)")
            self.scan_points, self.delta_points, self.n_points = scan, delta, len(scan)

    def finish(self, root_tag: str | None) -> SpanFile:
        if root_tag != "spanFile":
            raise ValueError(f"root element: expected <spanFile>, got <{root_tag}>")
        if self.n_org != 1:
            raise ValueError(f"spanFile/pointInTime: expected one <clearingOrg>, got {self.n_org}")
        if self.n_points is None:
            raise ValueError("pointInTime/clearingOrg: missing <pointDef>")
        return assemble(self, FileParams(**self.params))


__all__ = ["Builder"]
