"""Scenario sets: per risk unit a price multiplier, a vol shift and a weight per scenario.

A scenario s moves the forward of every instrument of risk unit u to F * m[u, s], shifts implied
vols by v[u, s] (how: ``vol_shock``, architecture §3), optionally looks ahead ``time_shift[s]`` years,
and its P&L counts with weight w[u, s] (cover fraction) in the worst case. Builders take the
risk units' underlyings and parameters that are either one number or a mapping per underlying
(with an optional ``"default"``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from . import validation as check
from .codes import VOL_SHOCKS
from .keyed import keyed_array

#: size limits, enforced by the builders and ScenarioSet (docs/models.md): beyond them a model file
#: would take minutes and gigabytes to load
MAX_SCENARIOS = 1_000_000
MAX_STEPS = 1_000  # deribit_grid: moves per side
MAX_POINTS = 10_000  # range_points: points
MAX_LIST = 1_000  # extended_moves, vol_shift: entries


@dataclass(frozen=True, eq=False)
class ScenarioSet:
    labels: tuple[str, ...]  # one per scenario
    price_multiplier: np.ndarray  # (U, S)
    vol_shift: np.ndarray  # (U, S)
    weight: np.ndarray  # (U, S)
    time_shift: np.ndarray | None = None  # (S,) years
    probability: np.ndarray | None = None  # (S,) for VaR / ES; None = equally likely
    options_only: np.ndarray | None = None  # (S,) bool: only options' P&L counts in these scenarios
    vol_shock: str = "none"
    tau_floor_days: float = 1.0
    short_power: float = 0.0
    long_power: float = 0.0
    vol_up_floor: float = 0.0
    underlyings: tuple[str, ...] | None = None  # the underlying of each row, when built per underlying

    def __post_init__(self) -> None:
        if np.ndim(self.price_multiplier) != 2:
            raise ValueError(
                f"scenarios.price_multiplier: expected a (units, scenarios) array, got shape "
                f"{np.shape(self.price_multiplier)}"
            )
        u, s = np.shape(self.price_multiplier)
        if s > MAX_SCENARIOS:
            raise ValueError(f"scenarios: {s} scenarios, more than the limit {MAX_SCENARIOS}")
        for name in ("vol_shift", "weight"):
            if np.shape(getattr(self, name)) != (u, s):
                raise ValueError(f"scenarios.{name}: shape {np.shape(getattr(self, name))}, expected {(u, s)}")
        if len(self.labels) != s:
            raise ValueError(f"scenarios.labels: {len(self.labels)} labels for {s} scenarios")
        if self.time_shift is not None and np.shape(self.time_shift) != (s,):
            raise ValueError(f"scenarios.time_shift: shape {np.shape(self.time_shift)}, expected {(s,)}")
        if self.probability is not None and np.shape(self.probability) != (s,):
            raise ValueError(f"scenarios.probability: shape {np.shape(self.probability)}, expected {(s,)}")
        if self.options_only is not None and np.shape(self.options_only) != (s,):
            raise ValueError(f"scenarios.options_only: shape {np.shape(self.options_only)}, expected {(s,)}")
        if self.vol_shock not in VOL_SHOCKS:
            raise ValueError(f"scenarios.vol_shock: must be one of {sorted(VOL_SHOCKS)}, got {self.vol_shock!r}")
        if not np.all(np.isfinite(self.weight) & (np.asarray(self.weight) >= 0)):
            raise ValueError("scenarios.weight: must be finite and >= 0")

    @property
    def n_scenarios(self) -> int:
        return len(self.labels)

    def for_underlyings(self, underlyings: Sequence[str]) -> ScenarioSet:
        """This set with one row per entry of ``underlyings`` (e.g. the risk units' underlyings),
        taken from the row of that underlying; needs ``self.underlyings``."""
        if self.underlyings is None:
            raise ValueError("scenarios: the set does not name the underlying of its rows")
        if tuple(underlyings) == self.underlyings:
            return self
        index = {u: k for k, u in enumerate(self.underlyings)}
        missing = [u for u in dict.fromkeys(underlyings) if u not in index]
        if missing:
            raise ValueError(f"scenarios: no moves for underlying(s) {missing}; the set has {list(self.underlyings)}")
        rows = np.array([index[u] for u in underlyings], dtype=np.int64)
        return replace(
            self,
            price_multiplier=self.price_multiplier[rows],
            vol_shift=self.vol_shift[rows],
            weight=self.weight[rows],
            underlyings=tuple(underlyings),
        )

    def kernel_arguments(self) -> dict[str, Any]:
        """Keyword arguments of :func:`marginkernel.kernels.revalue` that describe the scenarios."""
        return {
            "price_multiplier": self.price_multiplier,
            "vol_shift": self.vol_shift,
            "time_shift": self.time_shift,
            "vol_shock": self.vol_shock,
            "tau_floor_days": self.tau_floor_days,
            "short_power": self.short_power,
            "long_power": self.long_power,
            "vol_up_floor": self.vol_up_floor,
        }


def per_underlying(name: str, value: Any, underlyings: Sequence[str]) -> np.ndarray:
    """A parameter given as one number or a mapping per underlying (with "default"), per unit."""
    arr = keyed_array(value, [(u,) for u in underlyings], name, labels=[f"underlying {u!r}" for u in underlyings])
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: must be finite, got {arr.tolist()}")
    return arr


def _pct(x: float) -> str:
    return f"{x * 100:+.4g}%"


def deribit_grid(
    underlyings: Sequence[str],
    *,
    price_range: Any = 0.16,
    steps: int = 4,
    vol_up: float = 0.5,
    vol_down: float = 0.25,
    extended_moves: Sequence[float] = (-0.66, -0.33, 0.5, 1.0, 2.0, 3.0, 4.0, 5.0),
    extended_dampener: float = 1.0,
    short_power: float = 0.30,
    long_power: float = 0.13,
    tau_floor_days: float = 1.0,
    vol_up_floor: float = 0.0,
    extended_options_only: bool = False,
) -> ScenarioSet:
    """Deribit-style risk matrix: 2*steps+1 evenly spaced moves over +-price_range, each with vol
    up / same / down (multiplicative, (30/DTE)^p scaled), then `extended_moves` on vol up only,
    weighted price_range / |move| * extended_dampener; with `extended_options_only` only options'
    P&L counts in the extended moves (Deribit: the extended table is for far out-of-the-money short
    options; futures and perpetuals contribute 0 there)."""
    if not 1 <= check.integer(steps, "steps") <= MAX_STEPS:
        raise ValueError(f"steps: must be in [1, {MAX_STEPS}], got {steps}")
    if len(extended_moves) > MAX_LIST:
        raise ValueError(f"extended_moves: at most {MAX_LIST} moves, got {len(extended_moves)}")
    for key, value in (
        ("vol_up", vol_up),
        ("vol_down", vol_down),
        ("extended_dampener", extended_dampener),
        ("vol_up_floor", vol_up_floor),
    ):
        check.number(value, key, lo=0.0)
    check.number(tau_floor_days, "tau_floor_days", positive=True)
    check.number(short_power, "short_power")
    check.number(long_power, "long_power")
    rng = per_underlying("price_range", price_range, underlyings)
    if np.any(rng <= 0) or np.any(rng >= 1):
        raise ValueError(f"price_range: must be in (0, 1), got {rng.tolist()}")
    fractions = np.arange(-steps, steps + 1) / steps
    labels, mult, shift, weight = [], [], [], []
    for vol_name, v in (("up", vol_up), ("same", 0.0), ("down", -vol_down)):
        for f in fractions:
            labels.append(f"{_pct(f)} of range, vol {vol_name}")
            mult.append(1.0 + f * rng)
            shift.append(np.full(len(rng), v))
            weight.append(np.ones(len(rng)))
    for move in extended_moves:
        if move <= -1 or move == 0:
            raise ValueError(f"extended_moves: each move must be > -100% and non-zero, got {move}")
        labels.append(f"extended {_pct(move)}, vol up")
        mult.append(np.full(len(rng), 1.0 + move))
        shift.append(np.full(len(rng), vol_up))
        weight.append(rng / abs(move) * extended_dampener)
    return ScenarioSet(
        labels=tuple(labels),
        price_multiplier=np.array(mult).T.copy(),
        vol_shift=np.array(shift).T.copy(),
        weight=np.array(weight).T.copy(),
        vol_shock="multiplicative",
        tau_floor_days=tau_floor_days,
        short_power=short_power,
        long_power=long_power,
        vol_up_floor=vol_up_floor,
        options_only=np.arange(len(labels)) >= 3 * len(fractions) if extended_options_only else None,
        underlyings=tuple(underlyings),
    )


def span16(
    underlyings: Sequence[str],
    *,
    price_scan: Any = 0.1,
    vol_scan: Any = 0.25,
    extreme_multiple: float = 3.0,
    cover_fraction: float = 0.35,
    lookahead_days: float = 1.0,
    year_days: float = 365.0,
) -> ScenarioSet:
    """The standard SPAN 16 scan points: price 0, +-1/3, +-2/3, +-1 of the price scan range, each with
    the relative vol scan up and down, then +-extreme_multiple ranges at `cover_fraction`, all
    looking ahead `lookahead_days` of a `year_days`-day year (365: calendar days; 250: one trading
    day as SPAN files are computed, see docs/span.md) (architecture §1)."""
    scan = per_underlying("price_scan", price_scan, underlyings)
    vscan = per_underlying("vol_scan", vol_scan, underlyings)
    if np.any(scan <= 0) or np.any(scan * extreme_multiple >= 1):
        raise ValueError("price_scan: must be > 0 with price_scan * extreme_multiple < 1")
    if np.any(vscan < 0):
        raise ValueError(f"vol_scan: must be >= 0, got {vscan.tolist()}")
    if not 0 <= check.number(cover_fraction, "cover_fraction") <= 1:
        raise ValueError(f"cover_fraction: must be in [0, 1], got {cover_fraction}")
    check.number(extreme_multiple, "extreme_multiple", positive=True)
    check.number(lookahead_days, "lookahead_days", lo=0.0)
    check.number(year_days, "year_days", positive=True)
    points = [
        (0, 1),
        (0, -1),
        (1 / 3, 1),
        (1 / 3, -1),
        (-1 / 3, 1),
        (-1 / 3, -1),
        (2 / 3, 1),
        (2 / 3, -1),
        (-2 / 3, 1),
        (-2 / 3, -1),
        (1, 1),
        (1, -1),
        (-1, 1),
        (-1, -1),
    ]
    labels, mult, shift, weight = [], [], [], []
    for k, (f, v) in enumerate(points, start=1):
        labels.append(f"{k}: price {f:+.3g} range, vol {'up' if v > 0 else 'down'}")
        mult.append(1.0 + f * scan)
        shift.append(v * vscan)
        weight.append(np.ones(len(scan)))
    for k, sign in ((15, 1.0), (16, -1.0)):
        labels.append(f"{k}: price {sign * extreme_multiple:+g} ranges (extreme), covered {cover_fraction:g}")
        mult.append(1.0 + sign * extreme_multiple * scan)
        shift.append(np.zeros(len(scan)))
        weight.append(np.full(len(scan), cover_fraction))
    return ScenarioSet(
        labels=tuple(labels),
        price_multiplier=np.array(mult).T.copy(),
        vol_shift=np.array(shift).T.copy(),
        weight=np.array(weight).T.copy(),
        time_shift=np.full(16, lookahead_days / year_days),
        vol_shock="relative",
        underlyings=tuple(underlyings),
    )


def range_points(
    underlyings: Sequence[str],
    *,
    up: Any = 0.1,
    down: Any = 0.1,
    points: int = 10,
    include_zero: bool = False,
    vol_shift: Sequence[float] = (0.0,),
    vol_shock: str = "none",
    extreme_multiple: float = 0.0,
    extreme_cover: float = 1.0,
    extreme_vol_shift: float = 0.0,
    short_power: float = 0.0,
    long_power: float = 0.0,
    tau_floor_days: float = 1.0,
    lookahead_days: float = 0.0,
) -> ScenarioSet:
    """A generic N-point range (OCC TIMS / OKX spot-shock style): points/2 evenly spaced moves down to
    -down and up to +up (asymmetric when they differ, e.g. +6%/-8%), optionally 0, crossed with each
    vol shift (how it applies: `vol_shock`, scaled by tau^power for "multiplicative"/"additive");
    then, when `extreme_multiple` > 0, two extreme moves +up*multiple and -down*multiple at vol shift
    `extreme_vol_shift`, weighted `extreme_cover` (cover fraction). All scenarios look ahead
    `lookahead_days` calendar days."""
    if isinstance(points, bool) or not isinstance(points, (int, np.integer)) or points < 2 or points % 2:
        raise ValueError(f"points: must be an even number >= 2, got {points}")
    if points > MAX_POINTS:
        raise ValueError(f"points: must be <= {MAX_POINTS}, got {points}")
    if len(vol_shift) > MAX_LIST:
        raise ValueError(f"vol_shift: at most {MAX_LIST} vol shifts, got {len(vol_shift)}")
    ups = per_underlying("up", up, underlyings)
    downs = per_underlying("down", down, underlyings)
    if np.any(ups <= 0) or np.any(downs <= 0) or np.any(downs >= 1):
        raise ValueError(f"up/down: must be > 0 (and down < 1), got up {ups.tolist()}, down {downs.tolist()}")
    for key, value in (
        ("short_power", short_power),
        ("long_power", long_power),
        ("extreme_vol_shift", extreme_vol_shift),
    ):
        check.number(value, key)
    check.number(tau_floor_days, "tau_floor_days", positive=True)
    if check.number(extreme_multiple, "extreme_multiple") < 0 or np.any(downs * extreme_multiple >= 1):
        raise ValueError(f"extreme_multiple: must be >= 0 with down * extreme_multiple < 1, got {extreme_multiple}")
    if not 0 <= check.number(extreme_cover, "extreme_cover") <= 1:
        raise ValueError(f"extreme_cover: must be in [0, 1], got {extreme_cover}")
    check.number(lookahead_days, "lookahead_days", lo=0.0)
    if len(vol_shift) == 0:
        raise ValueError("vol_shift: needs at least one vol shift (0 for none)")
    half = points // 2
    fractions = (
        [-(k / half) for k in range(half, 0, -1)]
        + ([0.0] if include_zero else [])
        + [k / half for k in range(1, half + 1)]
    )
    labels, mult, shift, weight = [], [], [], []
    for v in vol_shift:
        for f in fractions:
            labels.append(f"price {f:+.3g} of range" + (f", vol {v:+g}" if len(vol_shift) > 1 or v else ""))
            mult.append(1.0 + np.where(f < 0, f * downs, f * ups))
            shift.append(np.full(len(ups), float(v)))
            weight.append(np.ones(len(ups)))
    if extreme_multiple > 0:
        for sign in (1.0, -1.0):
            labels.append(f"extreme {sign * extreme_multiple:+g} ranges, covered {extreme_cover:g}")
            mult.append(1.0 + sign * extreme_multiple * (ups if sign > 0 else downs))
            shift.append(np.full(len(ups), float(extreme_vol_shift)))
            weight.append(np.full(len(ups), float(extreme_cover)))
    mult_arr = np.array(mult).T.copy()
    return ScenarioSet(
        labels=tuple(labels),
        price_multiplier=mult_arr,
        vol_shift=np.array(shift).T.copy(),
        weight=np.array(weight).T.copy(),
        time_shift=np.full(len(labels), lookahead_days / 365.0) if lookahead_days else None,
        vol_shock=vol_shock,
        tau_floor_days=tau_floor_days,
        short_power=short_power,
        long_power=long_power,
        underlyings=tuple(underlyings),
    )


def historical(
    underlyings: Sequence[str],
    returns: Mapping[str, Sequence[float]],
    *,
    log_returns: bool = False,
    probability: Sequence[float] | None = None,
    labels: Sequence[str] | None = None,
) -> ScenarioSet:
    """Joint historical scenarios: one return per underlying per scenario (a column per underlying,
    e.g. a DataFrame), as simple returns (m = 1 + r) or log returns (m = exp(r))."""
    cols = []
    for u in underlyings:
        if u not in returns:
            raise ValueError(f"returns: no column for underlying {u!r}")
        cols.append(np.asarray(returns[u], dtype=float))
    r = np.array(cols)
    if r.ndim != 2 or r.shape[1] == 0:
        raise ValueError("returns: need at least one scenario per underlying, all of one length")
    if not np.all(np.isfinite(r)):
        raise ValueError("returns: must be finite")
    mult = np.exp(r) if log_returns else 1.0 + r
    if np.any(mult <= 0):
        raise ValueError("returns: a simple return <= -100% leaves a non-positive price")
    s = r.shape[1]
    return ScenarioSet(
        labels=tuple(labels) if labels is not None else tuple(f"historical {k}" for k in range(s)),
        price_multiplier=mult,
        vol_shift=np.zeros_like(mult),
        weight=np.ones_like(mult),
        probability=None if probability is None else np.asarray(probability, dtype=float),
        underlyings=tuple(underlyings),
    )


BUILDERS: dict[str, Callable[..., ScenarioSet]] = {
    "deribit_grid": deribit_grid,
    "span16": span16,
    "range_points": range_points,
}

#: the type of every builder parameter a model file may set: "per_underlying" (a number or a table of
#: numbers per underlying with an optional "default"), "number", "int", "bool", "str", "numbers" (an
#: array of numbers). MarginModel checks values against it and names the key on a mismatch.
PARAM_TYPES = {
    "deribit_grid": {
        "price_range": "per_underlying",
        "steps": "int",
        "vol_up": "number",
        "vol_down": "number",
        "extended_moves": "numbers",
        "extended_dampener": "number",
        "short_power": "number",
        "long_power": "number",
        "tau_floor_days": "number",
        "vol_up_floor": "number",
        "extended_options_only": "bool",
    },
    "span16": {
        "price_scan": "per_underlying",
        "vol_scan": "per_underlying",
        "extreme_multiple": "number",
        "cover_fraction": "number",
        "lookahead_days": "number",
        "year_days": "number",
    },
    "range_points": {
        "up": "per_underlying",
        "down": "per_underlying",
        "points": "int",
        "include_zero": "bool",
        "vol_shift": "numbers",
        "vol_shock": "str",
        "extreme_multiple": "number",
        "extreme_cover": "number",
        "extreme_vol_shift": "number",
        "short_power": "number",
        "long_power": "number",
        "tau_floor_days": "number",
        "lookahead_days": "number",
    },
}

# Historical simulation (marginkernel.historical, docs/historical.md) registers its builder here until
# model types have their own registry; imported last because it builds on ScenarioSet above.
from .historical import builder as _historical  # noqa: E402

BUILDERS["historical_simulation"] = _historical.historical_simulation
PARAM_TYPES["historical_simulation"] = _historical.PARAM_TYPES
