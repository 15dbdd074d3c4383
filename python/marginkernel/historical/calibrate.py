"""Calibration of a grid model's price range per underlying to a coverage target of horizon moves.

For underlying u and horizon h the moves are the overlapping simple returns
d_k = S_u(k) / S_u(k - h) - 1 ending on the days k of the window. Symmetric grids (``deribit_grid``:
``price_range``; ``span16``: ``price_scan``) take the smallest range R with
#{k in sample : |d_k| <= R} / n >= target, i.e. R = Q_target(|d|) by the inverted-CDF rule;
``range_points`` takes down = -Q_((1-target)/2)(d) and up = Q_(1-(1-target)/2)(d) with the same
rule, so each side misses at most half of 1 - target. Coverage is reported in sample (moves ending
before ``split``) and out of sample (from ``split`` on).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..model import MarginModel
from ..validation import integer, number
from .history import PriceHistory, load_history

#: the parameter calibrated per builder
PARAMETERS = {"deribit_grid": ("price_range",), "span16": ("price_scan",), "range_points": ("down", "up")}


@dataclass(frozen=True, eq=False)
class CalibrationResult:
    """``table``: one row per underlying with the fitted parameter(s), in- and out-of-sample coverage
    and move counts; ``model``: the input model with the fitted values set per underlying."""

    table: pd.DataFrame
    model: MarginModel
    parameters: tuple[str, ...]
    target: float
    horizon: int
    split: str

    def toml(self) -> str:
        """The ``[scenarios]`` lines to paste into the model file."""
        lines = []
        for p in self.parameters:
            items = ", ".join(f"{u} = {v:.6g}" for u, v in self.table[p].items())
            lines.append(f"{p} = {{ {items} }}")
        return "\n".join(lines)


def _quantile(x: np.ndarray, level: float) -> float:
    return float(np.quantile(x, min(max(level, 0.0), 1.0), method="inverted_cdf"))


def _fit(d: np.ndarray, names: tuple[str, ...], target: float) -> dict[str, float]:
    if len(names) == 1:
        return {names[0]: _quantile(np.abs(d), target)}
    tail = (1.0 - target) / 2.0
    return {"down": max(0.0, -_quantile(d, tail)), "up": max(0.0, _quantile(d, 1.0 - tail))}


def _covered(d: np.ndarray, fit: dict[str, float]) -> float:
    if d.size == 0:
        return float("nan")
    if "down" in fit:
        return float(np.mean((d >= -fit["down"]) & (d <= fit["up"])))
    (r,) = fit.values()
    return float(np.mean(np.abs(d) <= r))


def calibrate(
    model: MarginModel,
    *,
    history: PriceHistory | None = None,
    underlyings: Sequence[str] | None = None,
    target: float = 0.99,
    horizon: int = 1,
    start: str | None = None,
    end: str | None = None,
    split: str | None = None,
) -> CalibrationResult:
    """Fit the model's price range per underlying to ``target`` coverage of ``horizon``-day moves over
    [start, split) and report coverage there and over [split, end] (default split: 70 % through)."""
    if not isinstance(model, MarginModel):
        raise TypeError(f"model: expected a MarginModel, got {type(model).__name__}")
    if model.builder not in PARAMETERS:
        raise ValueError(
            f"model: builder {model.builder!r} has no price range to calibrate; one of {sorted(PARAMETERS)}"
        )
    number(target, "target", lo=0.0, hi=1.0)
    if not 0 < target < 1:
        raise ValueError(f"target: must be in (0, 1), got {target!r}")
    integer(horizon, "horizon", lo=1)
    history = history if history is not None else load_history()
    names = tuple(underlyings) if underlyings is not None else history.underlyings
    lo = history.index_of(start, "start") if start else 0
    hi = history.index_of(end, "end") if end else history.n_days - 1
    ends = np.arange(max(lo, horizon), hi + 1)  # moves ending on these rows
    if ends.size < 2:
        raise ValueError(f"start / end: the window holds {ends.size} {horizon}-day move(s); need at least 2")
    cut = history.index_of(split, "split") if split else int(ends[0] + 0.7 * (ends[-1] - ends[0]))
    ins, outs = ends[ends < cut], ends[ends >= cut]
    if ins.size == 0:
        raise ValueError(
            f"split: {history.dates[cut]} leaves no move in sample (window starts {history.dates[ends[0]]})"
        )
    params = PARAMETERS[model.builder]
    prices = history.select(list(names))
    rows: list[dict[str, object]] = []
    fitted: dict[str, dict[str, float]] = {p: {} for p in params}
    for j, u in enumerate(names):
        d_in = prices[ins, j] / prices[ins - horizon, j] - 1.0
        d_out = prices[outs, j] / prices[outs - horizon, j] - 1.0
        fit = _fit(d_in, params, target)
        for p in params:
            fitted[p][u] = fit[p]
        rows.append(
            {
                "underlying": u,
                **fit,
                "coverage_in": _covered(d_in, fit),
                "coverage_out": _covered(d_out, fit),
                "moves_in": int(d_in.size),
                "moves_out": int(d_out.size),
            }
        )
    table = pd.DataFrame(rows).set_index("underlying")
    new = dict(model.scenario_params)
    for p in params:
        old = new.get(p)
        keep = (
            {k: v for k, v in old.items() if k not in fitted[p]}
            if isinstance(old, dict)
            else ({"default": old} if old is not None else {})
        )
        new[p] = {**keep, **fitted[p]}
    calibrated = dataclasses.replace(model, scenario_params=new, name=f"{model.name}-calibrated")
    return CalibrationResult(table, calibrated, params, target, horizon, str(history.dates[cut]))


__all__ = ["PARAMETERS", "CalibrationResult", "calibrate"]
