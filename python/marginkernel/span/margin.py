"""SPAN requirement of a positions table on a file's published (or regenerated) arrays."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import kernels
from ..validation import NotANumber, number
from .arrays import RegeneratedArrays
from .model import SpanFile
from .rules import SpanRules, resolve
from .spreading import TOL, Book, inter_credits, intra_charges, som_charges


@dataclass(frozen=True)
class SpanMargin:
    """SPAN requirement per account and combined commodity.

    ``by_commodity`` (one row per account and cc held): scan_risk, active_point (1-based scan point
    of the worst loss), time_risk, vol_risk, price_risk, net_delta, wfpr (weighted futures price
    risk per delta), intra_spreads / intra_charge, inter_credit, som (short-option minimum),
    risk = max(scan_risk + intra_charge - inter_credit, som), net_option_value (Σ quantity ×
    option value), requirement (= risk, or max(0, risk - net_option_value) when the rules subtract
    it), maintenance = adj_rate × requirement, fx (factor to the rules' currency, 1 without one).
    ``by_account``: sums per account and currency (the rules' currency when set).
    ``scenario_loss``: (accounts, commodities, points) losses, commodities in ``commodities``
    order; ``accounts``: account labels; ``rules``: the :class:`SpanRules` applied."""

    by_commodity: pd.DataFrame
    by_account: pd.DataFrame
    scenario_loss: np.ndarray
    accounts: list[Any]
    commodities: list[str]
    rules: SpanRules = dataclasses.field(default_factory=SpanRules)


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
        return np.asarray(rows.to_numpy(dtype=np.int64))
    if "pf_id" in positions and "c_id" in positions:
        lookup = {(int(p), int(k)): i for i, (p, k) in enumerate(zip(c["pf_id"], c["c_id"], strict=True))}
        out = np.empty(len(positions), dtype=np.int64)
        for i, (p, k) in enumerate(zip(positions["pf_id"], positions["c_id"], strict=True)):
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
        return np.asarray(rows, dtype=np.int64)
    raise ValueError("positions: need a 'contract' column, 'pf_id' and 'c_id' columns, or a 'row' column")


def _quantities(positions: pd.DataFrame) -> np.ndarray:
    raw = positions["quantity"]
    if raw.dtype.kind in "iuf":
        qty = raw.to_numpy(dtype=float)
        bad = np.flatnonzero(~np.isfinite(qty))
        if bad.size:
            i = int(bad[0])
            raise ValueError(f"positions['quantity'] row {i}: not a finite number: {raw.iloc[i]!r}")
        return np.asarray(qty, dtype=np.float64)
    out = np.empty(len(raw))
    for i, v in enumerate(raw):
        try:
            out[i] = number(v, f"positions['quantity'] row {i}", strings=True)
        except (NotANumber, ValueError):
            raise ValueError(f"positions['quantity'] row {i}: not a finite number: {v!r}") from None
    return out


def _arrays(span: SpanFile, arrays: Any, deltas: Any, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    c = span.contracts
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
    return arr, np.nan_to_num(delta)


def _scan(
    span: SpanFile,
    arr: np.ndarray,
    *,
    unit: np.ndarray,
    n_cc: int,
    acc: np.ndarray,
    n_acc: int,
    rows: np.ndarray,
    qty: np.ndarray,
    threads: int,
) -> dict[str, np.ndarray]:
    """Scan risk and its split (time, volatility, price) per account and commodity."""
    n_pts = span.n_points
    order = np.argsort(acc, kind="stable")
    starts = np.concatenate([[0], np.cumsum(np.bincount(acc, minlength=n_acc))]).astype(np.int64)
    # the kernel nets P&L (= -loss) per account and commodity
    pnl = kernels.net(
        np.ascontiguousarray(-np.nan_to_num(arr)),
        unit,
        n_cc,
        starts,
        rows[order].astype(np.int32),
        np.ascontiguousarray(qty[order]),
        threads=threads,
    )
    scan, worst = kernels.worst_loss(pnl.reshape(-1, n_pts))
    loss = -pnl
    scan, worst = scan.reshape(n_acc, n_cc), worst.reshape(n_acc, n_cc)
    sp = span.scan_points
    time_pts = np.flatnonzero((sp["price_mult"] == 0).to_numpy())
    paired = sp["paired_point"].to_numpy() - 1
    time_risk = loss[:, :, time_pts].mean(axis=2) if time_pts.size else np.zeros((n_acc, n_cc))
    active = np.take_along_axis(loss, worst[:, :, None].astype(np.int64), axis=2)[:, :, 0]
    pair_loss = np.take_along_axis(loss, paired[worst][:, :, None], axis=2)[:, :, 0]
    vol_risk = np.where(scan > 0, np.maximum(active - pair_loss, 0.0) / 2.0, 0.0)
    price_risk = np.where(scan > 0, np.maximum(scan - time_risk - vol_risk, 0.0), 0.0)
    return {
        "scan_risk": scan,
        "worst": worst,
        "loss": loss,
        "time_risk": time_risk,
        "vol_risk": vol_risk,
        "price_risk": price_risk,
    }


def _book(
    span: SpanFile,
    *,
    acc: np.ndarray,
    unit: np.ndarray,
    rows: np.ndarray,
    qty: np.ndarray,
    delta: np.ndarray,
    nov: np.ndarray,
) -> Book:
    c = span.contracts
    month, kind = c["month"].to_numpy(), c["kind"].to_numpy()
    value = np.nan_to_num(c["value"].to_numpy(dtype=float))
    book = Book()
    for a, r, q in zip(acc, rows, qty, strict=True):
        key = (int(a), int(unit[r]))
        months = book.months.setdefault(key, {})
        months[month[r]] = months.get(month[r], 0.0) + q * delta[r]
        if kind[r] in ("C", "P"):
            nov[key] += q * value[r]
            if q < 0:
                book.shorts.setdefault(key, []).append((kind[r], month[r], -q))
    return book


def _fx(span: SpanFile, currencies: np.ndarray, target: str | None) -> np.ndarray:
    """Factor from each commodity's currency to ``target`` (curConv, or its inverse)."""
    if target is None:
        return np.ones(len(currencies))
    conv = span.currency_conversions
    out = np.empty(len(currencies))
    for k, cur in enumerate(currencies):
        if cur == target:
            out[k] = 1.0
            continue
        fwd = conv[(conv["from_cur"] == cur) & (conv["to_cur"] == target)]
        back = conv[(conv["from_cur"] == target) & (conv["to_cur"] == cur)]
        if len(fwd):
            out[k] = float(fwd["factor"].iloc[0])
        elif len(back):
            out[k] = 1.0 / float(back["factor"].iloc[0])
        else:
            raise ValueError(f"rules.currency: the file has no <curConv> from {cur} to {target}")
    return out


def _positions(span: SpanFile, positions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[Any]]:
    """Checked quantities, contract rows, account codes and account labels of ``positions``."""
    if not isinstance(positions, pd.DataFrame):
        positions = pd.DataFrame(positions)
    if "quantity" not in positions:
        raise ValueError("positions: missing column 'quantity'")
    qty = _quantities(positions)
    rows = contract_rows(span, positions)
    c = span.contracts
    unlinked = c["cc"].to_numpy()[rows] == ""
    if unlinked.any():
        i = int(np.flatnonzero(unlinked)[0])
        raise ValueError(f"positions row {i}: contract {c['contract'].iat[rows[i]]!r} belongs to no combined commodity")
    if len(positions) == 0:
        raise ValueError("positions: empty table")
    account_col = positions["account"] if "account" in positions else pd.Series(["account"] * len(positions))
    acc, labels = pd.factorize(account_col, sort=False)
    if (acc < 0).any():
        raise ValueError(f"positions['account'] row {int(np.flatnonzero(acc < 0)[0])}: missing account")
    return qty, rows, acc, list(labels)


def margin(
    span: SpanFile,
    positions: pd.DataFrame,
    *,
    arrays: np.ndarray | RegeneratedArrays | None = None,
    deltas: np.ndarray | None = None,
    whole_spreads: bool = False,
    rules: SpanRules | str | Path | None = None,
    threads: int = 1,
) -> SpanMargin:
    """SPAN requirement of every account in ``positions`` on the file's arrays.

    ``positions``: a DataFrame with ``quantity`` (contracts, long > 0), an optional ``account``
    column (default: one account 'account') and the contract (see :func:`contract_rows`).
    ``arrays`` replaces the published arrays (e.g. :func:`regenerate_arrays`), ``deltas`` the
    published composite deltas. ``rules``: a :class:`SpanRules`, a preset name ('takasbank',
    'nse') or a TOML file (default: :class:`SpanRules` defaults); ``whole_spreads=True`` forms whole
    spreads only whatever the rules say. Per combined commodity, following SPAN:

    1. scan risk: the largest loss over the scan points of the netted arrays (weights included),
       floored at 0; time risk = mean loss of the points with no price move, volatility risk = half
       the difference between the worst point and its paired point, price risk = the rest;
    2. intra-commodity spreads (the commodity's ``<dSpread>``): deltas per contract month; tier
       legs in one tier pair long months against short months, legs in different tiers or period
       legs (``<pLeg>``) pair the legs' net deltas; charge = spreads × rate (method 'F');
    3. inter-commodity spreads on the net deltas left: legs marked A on one side, B on the other;
       credit to each leg's commodity = rate × spreads × ratio × price risk / |net delta| ('W');
    4. short-option minimum: the tier rate per short option contract ('GROSS': calls + puts;
       'MAX': the larger of the two), when the rules apply it;
    5. risk = max(scan + intra charge − inter credit, short-option minimum); requirement = risk,
       or max(0, risk − net option value) when the rules subtract it.
    """
    rules = resolve(rules)
    if whole_spreads:
        rules = dataclasses.replace(rules, whole_spreads=True)
    qty, rows, acc, accounts = _positions(span, positions)
    arr, delta = _arrays(span, arrays, deltas, rows)
    c = span.contracts
    ccs = list(span.commodities.index)
    n_acc, n_cc = len(accounts), len(ccs)
    cc_index = {cc: k for k, cc in enumerate(ccs)}
    unit = np.array([cc_index.get(x, 0) for x in c["cc"]], dtype=np.int32)
    res = _scan(span, arr, unit=unit, n_cc=n_cc, acc=acc, n_acc=n_acc, rows=rows, qty=qty, threads=threads)
    held = np.zeros((n_acc, n_cc), dtype=bool)
    held[acc, unit[rows]] = True
    out = {k: np.zeros((n_acc, n_cc)) for k in ("nov", "intra_charge", "intra_count", "som", "net_delta")}
    book = _book(span, acc=acc, unit=unit, rows=rows, qty=qty, delta=delta, nov=out["nov"])
    intra_charges(span, book, ccs, rules, out)
    if rules.short_option_minimum:
        som_charges(span, book, ccs, out["som"])
    for key, (_, d) in book.remaining.items():
        out["net_delta"][key] = d.sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        wfpr = np.where(np.abs(out["net_delta"]) > TOL, res["price_risk"] / np.abs(out["net_delta"]), 0.0)
    inter = inter_credits(span, book, held, wfpr, rules)
    risk = np.maximum(res["scan_risk"] + out["intra_charge"] - inter, out["som"])
    req = np.maximum(risk - out["nov"], 0.0) if rules.net_option_value == "subtract" else risk
    return _result(
        span,
        rules,
        accounts=accounts,
        ccs=ccs,
        held=held,
        res=res,
        v=out | {"inter": inter, "wfpr": wfpr, "risk": risk, "req": req},
    )


def _result(
    span: SpanFile,
    rules: SpanRules,
    *,
    accounts: list[Any],
    ccs: list[str],
    held: np.ndarray,
    res: dict[str, np.ndarray],
    v: dict[str, np.ndarray],
) -> SpanMargin:
    a, k = np.nonzero(held)
    currency = span.commodities["currency"].to_numpy()
    fx = _fx(span, currency, rules.currency)
    adj = span.commodities["adj_rate"].to_numpy(dtype=float)
    by_cc = pd.DataFrame(
        {
            "account": [accounts[i] for i in a],
            "cc": [ccs[j] for j in k],
            "currency": currency[k],
            "scan_risk": res["scan_risk"][a, k],
            "active_point": res["worst"][a, k] + 1,
            "time_risk": res["time_risk"][a, k],
            "vol_risk": res["vol_risk"][a, k],
            "price_risk": res["price_risk"][a, k],
            "net_delta": v["net_delta"][a, k],
            "wfpr": v["wfpr"][a, k],
            "intra_spreads": v["intra_count"][a, k],
            "intra_charge": v["intra_charge"][a, k],
            "inter_credit": v["inter"][a, k],
            "som": v["som"][a, k],
            "risk": v["risk"][a, k],
            "net_option_value": v["nov"][a, k],
            "requirement": v["req"][a, k],
            "maintenance": adj[k] * v["req"][a, k],
            "fx": fx[k],
        }
    )
    sums = [
        "scan_risk",
        "intra_charge",
        "inter_credit",
        "som",
        "risk",
        "net_option_value",
        "requirement",
        "maintenance",
    ]
    conv = by_cc[["account", "currency"]].copy()
    if rules.currency is not None:
        conv["currency"] = rules.currency
    for col in sums:
        conv[col] = by_cc[col] * by_cc["fx"]
    by_account = conv.groupby(["account", "currency"], sort=False)[sums].sum().reset_index()
    return SpanMargin(by_cc, by_account, res["loss"], accounts, ccs, rules)


__all__ = ["SpanMargin", "contract_rows", "margin"]
