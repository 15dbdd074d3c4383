"""The end of a streamed read: resolve references (underlyings, portfolio links, spread legs) and
turn the collected columns into the :class:`.model.SpanFile` tables."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..spreads import period_month
from .commodities import check_legs
from .model import FileParams, SpanFile

if TYPE_CHECKING:  # pragma: no cover
    from .builder import Builder

_PRODUCT_COLS = [
    "pf_id",
    "pf_code",
    "pf_type",
    "name",
    "exchange",
    "currency",
    "exercise",
    "price_model",
    "value_meth",
    "setl_meth",
    "und_pf_id",
]
_EXPIRY_COLS = [
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
    "und_pf_id",
    "und_c_id",
]
_CONTRACT_COLS = [
    "pf_id",
    "c_id",
    "pf_code",
    "pf_type",
    "period",
    "kind",
    "strike",
    "price",
    "value",
    "cvf",
    "vol",
    "delta",
    "t",
    "rate",
    "div_rate",
    "price_scan",
    "vol_scan",
    "vol_scan_kind",
    "expiry_row",
]


def _products(b: Builder) -> pd.DataFrame:
    df = pd.DataFrame(b.products, columns=_PRODUCT_COLS)
    if df["pf_id"].duplicated().any():
        raise ValueError(f"exchange: duplicate portfolio pfId {df.loc[df['pf_id'].duplicated(), 'pf_id'].iloc[0]}")
    ids = set(df["pf_id"])
    for row in b.products:
        if row["und_pf_id"] != -1 and row["und_pf_id"] not in ids and b.keep is None:
            raise ValueError(
                f"{row['pf_type']} portfolio {row['pf_code']} (pfId {row['pf_id']})/undPf: "
                f"unknown pfId {row['und_pf_id']}"
            )
    return df


def _underlyings(b: Builder) -> np.ndarray:
    und_row = np.full(b.contracts.n, -1, dtype=np.int64)
    for i, und in enumerate(b.und_refs):
        if und is None:
            continue
        pf, cid, where = und
        if (pf, cid) not in b.keys:
            hint = " (read with products= that include it)" if b.keep is not None else ""
            raise ValueError(f"{where}: unknown underlying contract (pfId {pf}, cId {cid}){hint}")
        und_row[i] = b.keys[(pf, cid)]
    return und_row


def _links(b: Builder, pf_ids: set[int]) -> dict[int, str]:
    pf_cc = {}
    for pf, (cc, where) in b.defs.links.items():
        if pf not in pf_ids:
            if b.keep is None:
                raise ValueError(f"{where}: unknown pfId {pf}")
            continue
        pf_cc[pf] = cc
    return pf_cc


def _contract_keys(df: pd.DataFrame) -> list[str]:
    # plain lists (iterating pandas string columns costs a call per value); a strike's text once
    strikes: dict[float, str] = {}
    out = []
    cols = (df[c].tolist() for c in ("pf_type", "pf_code", "period", "kind", "strike"))
    for pf_type, code, period, kind, strike in zip(*cols, strict=True):
        key = f"{pf_type}:{code}:{period}"
        if kind in ("C", "P"):
            text = strikes.get(strike)
            if text is None:
                text = strikes[strike] = format(float(strike), ".10g")
            key += f":{kind}:{text}"
        out.append(key)
    return out


def _months(periods: pd.Series) -> list[str]:
    """period_month of every period, computed once per distinct period."""
    values = periods.tolist()
    month = {p: period_month(p) for p in set(values)}
    return [month[p] for p in values]


def _contracts(b: Builder, pf_cc: dict[int, str]) -> pd.DataFrame:
    df = b.contracts.frame(_CONTRACT_COLS)
    df.insert(4, "cc", df["pf_id"].map(pf_cc).fillna(""))
    df.insert(6, "month", _months(df["period"]))
    df["und_row"] = _underlyings(b)
    df.insert(0, "contract", _contract_keys(df))
    if df["contract"].duplicated().any():
        raise ValueError(
            f"contracts: two contracts share the key {df.loc[df['contract'].duplicated(), 'contract'].iloc[0]!r}"
        )
    return df


def assemble(b: Builder, params: FileParams) -> SpanFile:
    """The SpanFile of everything ``b`` collected."""
    products = _products(b)
    pf_cc = _links(b, set(products["pf_id"]))
    commodities = pd.DataFrame(
        b.defs.rows,
        columns=["cc", "name", "currency", "som_method", "adj_rate", "cmb_method", "wfpr_method", "cap_anov"],
    ).set_index("cc")
    if commodities.index.duplicated().any():
        raise ValueError(f"ccDef: duplicate cc {commodities.index[commodities.index.duplicated()][0]!r}")
    check_legs(b.defs, set(commodities.index))
    products["cc"] = products["pf_id"].map(pf_cc).fillna("")
    contracts = _contracts(b, pf_cc)
    n_points = b.n_points or 0
    risk = np.array(b.values, dtype=np.float64).reshape(-1, n_points) if n_points else np.zeros((0, 0))
    h: dict[str, Any] = b.header
    return SpanFile(
        file_format=h["file_format"],
        created=h.get("created", ""),
        business_date=h["date"],
        is_settlement=h["is_settl"],
        clearing_org=h.get("clearing_org", ""),
        products=products,
        expiries=pd.DataFrame(b.expiries, columns=_EXPIRY_COLS),
        contracts=contracts,
        risk_arrays=np.ascontiguousarray(risk),
        scan_points=b.scan_points,
        delta_points=b.delta_points,
        commodities=commodities,
        intra_tiers=b.defs.intra_tiers,
        inter_tiers=b.defs.inter_tiers,
        som_tiers=b.defs.som_tiers,
        intra_spreads=tuple(s for s, _ in b.defs.intra_spreads),
        inter_spreads=tuple(sorted((s for s, _ in b.defs.inter_spreads), key=lambda s: s.number)),
        currency_conversions=pd.DataFrame(b.conversions, columns=["from_cur", "to_cur", "factor"]),
        params=params,
    )


__all__ = ["assemble"]
