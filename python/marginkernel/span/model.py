"""The parsed SPAN file: :class:`SpanFile`, the per-file parameters, and the column store the
streaming reader fills (compact typed columns instead of one dict per contract)."""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..spreads import Spread, Tier

#: portfolio elements read as options (same <series>/<opt> layout): on physicals, futures, equities, combos
OPTION_PORTFOLIOS = ("oopPf", "oofPf", "ooePf", "oocPf")
LINEAR_PORTFOLIOS = ("phyPf", "futPf")
PF_TYPE = {"phyPf": "PHY", "futPf": "FUT", "oopPf": "OOP", "oofPf": "OOF", "ooePf": "OOE", "oocPf": "OOC"}


@dataclass(frozen=True)
class FileParams:
    """Per-file parameters of ``<clearingOrg>`` that change how arrays are computed or margined.

    ``look_ahead_years`` is ``<lookAheadYears>``, else ``<lookAheadDays>`` / ``<daysPerYear>``
    (days per year 365 when only the days are given), else None (the file does not say).
    ``cap_anov``: ``<capAnov>`` (cap the available net option value)."""

    look_ahead_years: float | None = None
    look_ahead_days: float | None = None
    days_per_year: float | None = None
    cap_anov: bool = False


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
      -1 if none), expiry_row (row in ``expiries``, -1 for physicals). For futures, ``rate`` is the
      future's own ``<intrRate>`` (the carry of the look-ahead, NaN when the file gives none).
    * ``scan_points`` / ``delta_points``: point, price_mult, price_num, price_den, vol_mult,
      vol_num, vol_den, weight (and paired_point for scan points), indexed from 0.
    * ``commodities``: one row per combined commodity (index cc) -- name, currency, som_method,
      adj_rate, cmb_method, wfpr_method, cap_anov.
    * ``currency_conversions``: from_cur, to_cur, factor.

    ``risk_arrays`` (n_contracts, n_points) holds the published arrays as losses per contract with
    the scan-point weights already applied. ``intra_spreads`` / ``inter_spreads`` are tuples of
    :class:`Spread` in the file's order (inter: by spread number); ``intra_tiers``, ``inter_tiers``
    and ``som_tiers`` map cc to its tiers (``som_tiers``: tuples of (Tier, rate)). ``params``: the
    file's :class:`FileParams`."""

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
    intra_tiers: dict[str, tuple[Tier, ...]]
    inter_tiers: dict[str, tuple[Tier, ...]]
    som_tiers: dict[str, tuple[tuple[Tier, float], ...]]
    intra_spreads: tuple[Spread, ...]
    inter_spreads: tuple[Spread, ...]
    currency_conversions: pd.DataFrame
    params: FileParams = field(default_factory=FileParams)

    @property
    def n_points(self) -> int:
        return len(self.scan_points)

    @property
    def look_ahead(self) -> float | None:
        """The file's look-ahead in years (``<lookAheadYears>`` or days / days per year), or None."""
        p = self.params
        if p.look_ahead_years is not None:
            return p.look_ahead_years
        if p.look_ahead_days is not None:
            return p.look_ahead_days / (p.days_per_year or 365.0)
        return None

    def spread_legs(self) -> pd.DataFrame:
        """All spread legs as one table: scope ('intra'/'inter'), cc_spread, number, charge_method,
        rate, leg, cc, tier, period (pLeg, else None), side, ratio."""
        rows = []
        for scope, spreads in (("intra", self.intra_spreads), ("inter", self.inter_spreads)):
            for s in spreads:
                for j, leg in enumerate(s.legs):
                    rows.append(
                        (
                            scope,
                            s.cc,
                            s.number,
                            s.charge_method,
                            s.rate,
                            j,
                            leg.cc,
                            leg.tier,
                            leg.period,
                            leg.side,
                            leg.ratio,
                        )
                    )
        cols = ["scope", "cc_spread", "number", "charge_method", "rate", "leg", "cc", "tier", "period", "side", "ratio"]
        return pd.DataFrame(rows, columns=cols)


class Columns:
    """Append-only typed columns: floats and ints in ``array`` buffers (8 bytes a value), anything
    else in lists (shared strings cost a pointer). ``frame()`` turns them into a DataFrame."""

    def __init__(self, floats: tuple[str, ...], ints: tuple[str, ...], objects: tuple[str, ...]) -> None:
        self._cols: dict[str, Any] = {}
        for name in floats:
            self._cols[name] = array("d")
        for name in ints:
            self._cols[name] = array("q")
        for name in objects:
            self._cols[name] = []
        self.order = (*objects, *ints, *floats)
        self.n = 0

    def append(self, row: dict[str, Any]) -> None:
        for name, col in self._cols.items():
            col.append(row[name])
        self.n += 1

    def extend(self, cols: dict[str, Any], n: int) -> None:
        """Append ``n`` rows given column-wise (every column, each of length ``n``)."""
        for name, col in self._cols.items():
            values = cols[name]
            col.extend(values.tolist() if isinstance(values, np.ndarray) else values)
        self.n += n

    def set(self, name: str, i: int, value: Any) -> None:
        self._cols[name][i] = value

    def get(self, name: str, i: int) -> Any:
        return self._cols[name][i]

    def frame(self, columns: list[str]) -> pd.DataFrame:
        data = {}
        for name in columns:
            col = self._cols[name]
            if isinstance(col, array):
                data[name] = np.array(col, dtype=np.float64 if col.typecode == "d" else np.int64)
            else:
                data[name] = col
        return pd.DataFrame(data, columns=columns)


__all__ = ["LINEAR_PORTFOLIOS", "OPTION_PORTFOLIOS", "PF_TYPE", "Columns", "FileParams", "SpanFile"]
