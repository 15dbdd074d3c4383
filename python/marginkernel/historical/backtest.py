"""Margin backtest: margin each day from data up to that day against the realised P&L over the horizon.

For day t of the history the book (fixed, or the dated path of positions in force on day t) is
marked at that day's close: every forward is F_i S_u(t) / S_u(0) (the basis of the market snapshot
kept), implied vols and times to expiry are the snapshot's (constant maturity; the backtest measures
the price risk the scenarios model). The model's scenario set for day t uses history rows <= t only;
the realised move of day t is m_u = S_u(t+h) / S_u(t), revalued by the same kernel as one more
scenario, so scenario P&L and realised P&L are computed the same way. Coin-settled P&L converts to
USD at the coin's close on day t. An exception is a realised loss above the margin charged.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .. import kernels
from ..engine import Engine
from ..model import MarginModel
from ..validation import integer, number
from . import stats as _stats
from .builder import spec_of
from .history import PriceHistory, load_history
from .simulate import Simulator

BUILDER = "historical_simulation"
APC_OFF = {"stress_weight": 0.0, "floor_lookback": 0}


@dataclass(frozen=True, eq=False)
class BacktestResult:
    """``frame`` (index date): ``requirement`` (model margin before the IM factor), ``margin`` (charged:
    IM, with the buffer rule), ``realised`` (P&L of the book over the next ``horizon`` days, USD),
    ``exception``; the same without APC in ``margin_no_apc``. ``stats``: coverage tests and
    procyclicality with and without anti-procyclicality."""

    frame: pd.DataFrame
    stats: dict[str, Any]
    model: str
    horizon: int
    coverage: float

    def plot(self, path: str, *, width: float = 10.0, height: float = 5.0, dpi: int = 100) -> None:
        """Margin and realised loss per day, exceptions marked, saved to ``path`` (PNG, SVG, PDF by suffix;
        matplotlib needed)."""
        from .plot import plot_backtest

        plot_backtest(self, path, width=width, height=height, dpi=dpi)


def positions_path(positions: pd.DataFrame, engine: Engine, dates: np.ndarray) -> np.ndarray:
    """Quantity per (day, instrument): a fixed book, or with a ``date`` column the full book of each
    date held from that day until the next date listed (before the first date: no positions)."""
    for col in ("instrument", "quantity"):
        if col not in positions.columns:
            raise ValueError(f"positions: missing column {col!r}; have {list(positions.columns)}")
    index = {iid: k for k, iid in enumerate(engine.instruments.ids)}
    rows = np.empty(len(positions), dtype=np.int64)
    for k, iid in enumerate(positions["instrument"]):
        if iid not in index:
            raise ValueError(f"positions[{k}]: unknown instrument {iid!r}")
        rows[k] = index[iid]
    qty = pd.to_numeric(positions["quantity"], errors="coerce").to_numpy(dtype=float)
    bad = np.flatnonzero(~np.isfinite(qty))
    if bad.size:
        raise ValueError(
            f"positions[{int(bad[0])}]: field 'quantity' must be a finite number, "
            f"got {positions['quantity'].iloc[int(bad[0])]!r}"
        )
    n_inst = len(engine.instruments.ids)
    if "date" not in positions.columns:
        q = np.zeros(n_inst)
        np.add.at(q, rows, qty)
        return np.broadcast_to(q, (len(dates), n_inst))
    day = pd.to_datetime(positions["date"], format="%Y-%m-%d", errors="coerce")
    if day.isna().any():
        k = int(np.flatnonzero(day.isna().to_numpy())[0])
        raise ValueError(f"positions[{k}]: field 'date' must be an ISO day, got {positions['date'].iloc[k]!r}")
    day_arr = day.to_numpy().astype("datetime64[D]")
    starts = np.unique(day_arr)
    books = np.zeros((len(starts), n_inst))
    np.add.at(books, (np.searchsorted(starts, day_arr), rows), qty)
    which = np.searchsorted(starts, dates, side="right") - 1
    out = np.where((which >= 0)[:, None], books[np.maximum(which, 0)], 0.0)
    return out


class _Day:
    """Everything fixed over the run: instruments, the snapshot's basis and vols, unit mapping."""

    def __init__(self, engine: Engine, history: PriceHistory):
        m = engine.market
        self.engine, self.m = engine, m
        self.units = list(m.units)
        self.spot_cols = [history.column(u) for u in m.unit_underlying]
        self.basis = m.forward / m.unit_spot[m.unit_of_row]  # F_i / S_u at the snapshot
        self.fx_cols = [history.column(c) if c in history.underlyings else -1 for c in m.unit_currency]
        self.prices = history.prices
        n_units = len(self.units)
        self.owner = np.zeros((n_units, len(m.unit_of_row)))
        self.owner[m.unit_of_row, np.arange(len(m.unit_of_row))] = 1.0

    def spot(self, t: int) -> np.ndarray:
        return self.prices[t, self.spot_cols]

    def fx(self, t: int) -> np.ndarray:
        return np.array([self.prices[t, c] if c >= 0 else f for c, f in zip(self.fx_cols, self.m.unit_fx, strict=True)])

    def unit_pnl(self, t: int, q: np.ndarray, mult: np.ndarray, kw: Mapping[str, Any]) -> np.ndarray:
        """P&L (units, scenarios) of the book q in settlement currency on day t."""
        inst, m = self.engine.instruments, self.m
        s = self.spot(t)
        risk, _ = kernels.revalue(
            inst.kind,
            inst.settlement,
            m.unit_of_row,
            inst.strike,
            m.expiry_years,
            inst.multiplier,
            self.basis * s[m.unit_of_row],
            m.discount,
            m.vol,
            s,
            price_multiplier=np.ascontiguousarray(mult),
            **kw,
        )
        return np.asarray((self.owner * q) @ risk)


def _requirement(model: MarginModel, joint: np.ndarray, probability: np.ndarray | None) -> float:
    if model.measure == "worst_loss":
        return float(max(0.0, -joint.min()))
    var, es = kernels.value_at_risk(joint[None, :], model.confidence, probability)
    return max(0.0, float((var if model.measure == "var" else es)[0]))


def _node_sum(
    model: MarginModel, pnl: np.ndarray, fx: np.ndarray, currencies: list[str], prob: np.ndarray | None
) -> float:
    """Margin of the book from its unit P&L (units, S) by the model's netting level, USD."""
    if model.netting == "account":
        return _requirement(model, fx @ pnl, prob)
    if model.netting == "risk_unit":
        return sum(
            (float(f) * _requirement(model, row, prob) for f, row in zip(fx, pnl, strict=True) if np.any(row)), 0.0
        )
    total = 0.0
    for c in dict.fromkeys(currencies):
        sel = np.array([x == c for x in currencies])
        total += float(fx[sel][0]) * _requirement(model, pnl[sel].sum(axis=0), prob)
    return total


def _scenarios_for(
    sim: Simulator | None, engine: Engine, t: int, realised: np.ndarray
) -> tuple[np.ndarray, dict[str, Any], np.ndarray | None, np.ndarray | None]:
    """(multipliers with the realised move appended, kernel keywords, weights, probability)."""
    n_units = len(realised)
    if sim is not None:
        _, mult, shift, prob = sim.arrays(t)
        kw: dict[str, Any] = {"vol_shock": sim.vol_shock}
        weight = None
    else:
        sc = engine.scenario_set
        mult, shift, prob, weight = sc.price_multiplier, sc.vol_shift, sc.probability, sc.weight
        kw = sc.kernel_arguments()
        del kw["price_multiplier"]
        if sc.time_shift is not None:
            kw["time_shift"] = np.concatenate([sc.time_shift, [0.0]])
    kw["vol_shift"] = np.ascontiguousarray(np.concatenate([shift, np.zeros((n_units, 1))], axis=1))
    return np.concatenate([mult, realised[:, None]], axis=1), kw, weight, prob


def _run_one(
    model: MarginModel, engine: Engine, history: PriceHistory, q: np.ndarray, *, rows: np.ndarray, horizon: int
) -> tuple[np.ndarray, np.ndarray]:
    """(requirement, realised P&L) per day row."""
    day = _Day(engine, history)
    sim = None
    if model.builder == BUILDER:
        sim = Simulator(spec_of(model.scenario_params), engine.market.unit_underlying, history)
    req, real = np.zeros(len(rows)), np.zeros(len(rows))
    cur = list(engine.market.unit_currency)
    for k, t in enumerate(rows):
        if not np.any(q[k]):
            continue
        realised = day.spot(t + horizon) / day.spot(t)
        mult, kw, weight, prob = _scenarios_for(sim, engine, t, realised)
        pnl = day.unit_pnl(t, q[k], mult, kw)
        fx = day.fx(t)
        real[k] = float(fx @ pnl[:, -1])
        scen = pnl[:, :-1] if weight is None else pnl[:, :-1] * weight
        req[k] = _node_sum(model, scen, fx, cur, prob)
    return req, real


def charged(requirement: np.ndarray, im_factor: float, release: bool) -> np.ndarray:
    """Margin charged: im_factor x requirement; with ``release`` (EMIR Art. 28(1)(a)) the buffer
    b = im_factor - 1 is used up while margins rise: C_t = min(max(C_{t-1}, M_t), (1 + b) M_t)."""
    if not release or im_factor <= 1.0:
        return im_factor * requirement
    out = np.empty_like(requirement)
    prev = im_factor * requirement[0] if len(requirement) else 0.0
    for k, m in enumerate(requirement):
        prev = min(max(prev, m), im_factor * m)
        out[k] = prev
    return out


def _without_apc(model: MarginModel) -> MarginModel:
    """The model with its anti-procyclicality options off (itself when it has none)."""
    params = dict(model.scenario_params)
    if model.builder == BUILDER:
        spec = spec_of(params)
        if spec.stress_weight == 0 and spec.floor_lookback == 0 and model.im_factor == 1.0:
            return model
        params.update(APC_OFF)
    elif model.im_factor == 1.0:
        return model
    return dataclasses.replace(model, scenario_params=params, im_factor=1.0)


def run(
    model: MarginModel,
    engine: Engine,
    positions: pd.DataFrame,
    *,
    history: PriceHistory | None = None,
    start: str | None = None,
    end: str | None = None,
    horizon: int | None = None,
    release: bool = True,
    n_days: int = 30,
    coverage: float | None = None,
) -> BacktestResult:
    """Backtest `model` on the book `positions` (instruments and snapshot of `engine`) over the
    history's days [start, end - horizon]; see the module docstring and docs/historical.md. The
    coverage tests expect exceptions at rate 1 - ``coverage`` (default: the model's confidence)."""
    if not isinstance(model, MarginModel):
        raise TypeError(f"model: expected a MarginModel, got {type(model).__name__}")
    spec = spec_of(model.scenario_params) if model.builder == BUILDER else None
    if history is None:
        history = load_history(spec.history, dict(spec.columns)) if spec else load_history()
    h = integer(horizon, "horizon", lo=1) if horizon is not None else (spec.horizon if spec else 1)
    if coverage is not None and not 0 < number(coverage, "coverage", lo=0.0, hi=1.0) < 1:
        raise ValueError(f"coverage: must be in (0, 1), got {coverage!r}")
    first = Simulator(spec, engine.market.unit_underlying, history).first_day() if spec else 0
    lo = max(first, history.index_of(start, "start") if start else 0)
    hi = (history.index_of(end, "end") if end else history.n_days - 1) - h
    if hi < lo:
        raise ValueError(
            f"start / end: no day from {history.dates[min(lo, history.n_days - 1)]} with {h} days of "
            f"history after it (history {history.source} ends {history.dates[-1]}; first day with a "
            f"full lookback {history.dates[min(first, history.n_days - 1)]})"
        )
    rows = np.arange(lo, hi + 1)
    dates = history.dates[rows]
    q = positions_path(positions, engine, dates)
    req, real = _run_one(model, engine, history, q, rows=rows, horizon=h)
    base = _without_apc(model)
    req0, _ = _run_one(base, engine, history, q, rows=rows, horizon=h) if base is not model else (req, real)
    margin = charged(req, model.im_factor, release)
    margin0 = req0
    exc = -real > margin
    frame = pd.DataFrame(
        {
            "requirement": req,
            "margin": margin,
            "realised": real,
            "exception": exc,
            "margin_no_apc": margin0,
            "exception_no_apc": -real > margin0,
        },
        index=pd.Index(dates, name="date"),
    )
    level = model.confidence if coverage is None else coverage
    result = {
        "coverage": _stats.coverage_tests(exc, level),
        "coverage_no_apc": _stats.coverage_tests(frame["exception_no_apc"].to_numpy(), level),
        "procyclicality": _stats.procyclicality(margin, n_days),
        "procyclicality_no_apc": _stats.procyclicality(margin0, n_days),
        "start": str(dates[0]),
        "end": str(dates[-1]),
        "horizon_days": h,
    }
    return BacktestResult(frame, result, model.name, h, level)


__all__ = ["BacktestResult", "charged", "positions_path", "run"]
