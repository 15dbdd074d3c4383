"""The ``historical_simulation`` scenario builder: a model file's ``[scenarios]`` for historical VaR/ES.

``[scenarios] builder = "historical_simulation"`` with the keys of :class:`HistoricalSpec`; the
model's ``measure`` ("var" / "es") and ``confidence`` reduce the scenario P&L, ``im_factor`` carries
the anti-procyclicality buffer (1.10: a 10 % buffer). See docs/historical.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..scenarios import ScenarioSet
from .simulate import HistoricalSpec, Simulator

#: key types for the model loader (see marginkernel.scenarios.PARAM_TYPES); "table" and "date" are
#: checked here, by HistoricalSpec
PARAM_TYPES: dict[str, str] = {
    "columns": "table",
    "history": "str",
    "as_of": "date",
    "lookback": "int",
    "horizon": "int",
    "weighting": "str",
    "age_decay": "number",
    "filtered": "bool",
    "ewma_lambda": "number",
    "ewma_seed_days": "int",
    "vol_rule": "str",
    "vol_beta": "per_underlying",
    "stress_weight": "number",
    "stress_start": "date",
    "stress_end": "date",
    "stress_days": "int",
    "floor_lookback": "int",
}


def _day(value: object, key: str) -> str | None:
    if value is None:
        return None
    if hasattr(value, "isoformat"):  # a TOML date
        return str(value.isoformat())[:10]
    if not isinstance(value, str):
        raise ValueError(f"{key}: expected an ISO date, got {value!r}")
    return value


def historical_simulation(
    underlyings: Sequence[str],
    *,
    columns: Mapping[str, str] | None = None,
    history: str = "crypto-daily-usdt",
    as_of: object = None,
    lookback: int = 750,
    horizon: int = 2,
    weighting: str = "equal",
    age_decay: float = 0.995,
    filtered: bool = False,
    ewma_lambda: float = 0.94,
    ewma_seed_days: int = 30,
    vol_rule: str = "constant",
    vol_beta: float | Mapping[str, float] = 0.0,
    stress_weight: float = 0.0,
    stress_start: object = None,
    stress_end: object = None,
    stress_days: int = 250,
    floor_lookback: int = 0,
) -> ScenarioSet:
    """Joint (filtered) historical scenarios of the history up to ``as_of`` (default: its last day)."""
    spec = HistoricalSpec(
        columns=columns or {},
        history=history,
        as_of=_day(as_of, "as_of"),
        lookback=lookback,
        horizon=horizon,
        weighting=weighting,
        age_decay=age_decay,
        filtered=filtered,
        ewma_lambda=ewma_lambda,
        ewma_seed_days=ewma_seed_days,
        vol_rule=vol_rule,
        vol_beta=vol_beta,
        stress_weight=stress_weight,
        stress_start=_day(stress_start, "stress_start"),
        stress_end=_day(stress_end, "stress_end"),
        stress_days=stress_days,
        floor_lookback=floor_lookback,
    )
    sim = Simulator(spec, underlyings)
    return sim.scenario_set(sim.row(spec.as_of))


def spec_of(params: Mapping[str, Any]) -> HistoricalSpec:
    """The :class:`HistoricalSpec` of a model's ``[scenarios]`` parameters (without ``builder``)."""
    p = dict(params)
    for key in ("as_of", "stress_start", "stress_end"):
        p[key] = _day(p.get(key), key)
    p["columns"] = p.get("columns") or {}
    return HistoricalSpec(**p)


__all__ = ["PARAM_TYPES", "historical_simulation", "spec_of"]
