"""PM2 parameters: the dataclasses, the one mapping of their names, and their readers.

``parse_params`` reads a portfolio case's ``Parameters`` object (Derive's JSON keys),
``load_preset`` a TOML preset (snake_case keys), ``params_to_json`` writes the former back.
Numbers go through :func:`marginkernel.validation.number`; every error names the field.
"""

from __future__ import annotations

import tomllib as _toml
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..validation import number
from . import _json as js

#: scenario vol-shock directions: the portfolio cases' spelling (PMRM_2 ``VolShockDirection``) ->
#: ours. Not to be confused with :data:`marginkernel.codes.VOL_SHOCKS` (how the kernel applies a
#: vol shift).
VOL_DIRECTIONS = {"Up": "up", "Down": "down", "None": "none", "LINEAR": "linear", "ABS": "abs"}
SKEW_DIRECTIONS = ("linear", "abs")
PRICE_DIRECTIONS = ("up", "down", "none")
#: bound of every scalar parameter and of spot shocks / dampening. The contract's own setters bound
#: each far lower (e.g. imFactor <= 10, dteFloor <= 400 days); this one only keeps doubles finite.
MAX_PARAMETER = 1e6


@dataclass(frozen=True)
class Scenario:
    """One margin scenario: spot multiplier, vol-shock direction and dampening (cover) factor.

    Any spot shock > 0 and dampening >= 0 goes with any direction, as in ``PMRMLib_2``: in a skew
    scenario (linear / abs) the options are revalued at the unshocked forward with skewed vols,
    while perps and risk-cancelling collateral move by the spot shock; every part is dampened.
    """

    spot_shock: float  # SpotShock: price multiplier, e.g. 0.82 for -18 %
    vol_shock: str  # "up" | "down" | "none" | "linear" | "abs"
    dampening: float = 1.0  # DampeningFactor, applied to the scenario's P&L
    #: reporting class of a non-skew scenario; None: a tail iff dampening != 1. Only labels the
    #: scenario (regular vs tail losses); the margin treats every scenario alike.
    tail: bool | None = None

    @property
    def kind(self) -> str:
        """ "skew" (linear / abs), "tail" or "regular"."""
        if self.vol_shock in SKEW_DIRECTIONS:
            return "skew"
        tail = self.dampening != 1.0 if self.tail is None else self.tail
        return "tail" if tail else "regular"


@dataclass(frozen=True)
class VolShockParams:
    vol_range_up: float  # VOLRANGEUP       volRangeUp
    vol_range_down: float  # VOLRANGEDOWN     volRangeDown
    short_term_power: float  # SHORTTERMPOWER   shortTermPower (DTE <= 30 days)
    long_term_power: float  # LONGTERMPOWER    longTermPower
    dte_floor_days: float  # DTE_FLOOR        dteFloor (contract stores seconds)
    min_vol_up: float  # MIN_VOL_EVAL_SHOCKED  minVolUpShock: floor of the vol in Up scenarios


@dataclass(frozen=True)
class SkewShockParams:
    linear_base_cap: float  # LINEAR_SCALE_CAP  linearBaseCap
    linear_c_base: float  # LINEAR_CBASE      linearCBase
    abs_base_cap: float  # ABS_SCALE_CAP     absBaseCap
    abs_c_base: float  # ABS_CBASE         absCBase
    min_k_star: float  # MIN_K_STAR        minKStar
    width_scale: float  # MIN_WIDTH_SCALE   widthScale
    vol_param_static: float  # VOL_PARAM_STATIC  volParamStatic
    vol_param_scale: float  # VOL_PARAM_SCALE   volParamScale


@dataclass(frozen=True)
class MarginParams:
    mm_factor: float  # MM_LOSS_FACTOR           mmFactor
    im_factor: float  # IM_LOSS_FACTOR           imFactor
    short_rate_mult_scale: float  # SHORT_RATE_MULTSCALE     shortRateMultScale
    long_rate_mult_scale: float  # LONG_RATE_MULTSCALE      longRateMultScale
    short_rate_add_scale: float  # SHORT_RATE_ADDSCALE      shortRateAddScale
    long_rate_add_scale: float  # LONG_RATE_ADDSCALE       longRateAddScale
    long_base_static_discount: float  # BASE_STATIC_DISCOUNT     longBaseStaticDiscount
    short_base_static_discount: float  # BASE_STATIC_DISCOUNT_NEG shortBaseStaticDiscount


@dataclass(frozen=True)
class BasisContingencyParams:
    scenario_spot_up: float  # SCENARIO_SPOT_UP        scenarioSpotUp
    scenario_spot_down: float  # SCENARIO_SPOT_DOWN      scenarioSpotDown
    add_factor: float  # BASIS_CONT_ADD_FACTOR   basisContAddFactor
    mult_factor: float  # BASIS_CONT_MULT_FACTOR  basisContMultFactor


@dataclass(frozen=True)
class OtherContingencyParams:
    peg_loss_threshold: float  # PEG_LOSS_THRESHOLD  pegLossThreshold
    peg_loss_factor: float  # PEG_LOSS_FACTOR     pegLossFactor
    conf_threshold: float  # CONF_THRESHOLD      confThreshold
    conf_margin: float  # CONF_MARGIN         confMargin
    mm_perp_percent: float  # MM_PERP_PERCENT     MMPerpPercent
    im_perp_percent: float  # IM_PERP_PERCENT     IMPerpPercent (on top of MM)
    mm_option_percent: float  # MM_OPTION_PERCENT   MMOptionPercent
    im_option_percent: float  # IM_OPTION_PERCENT   IMOptionPercent (on top of MM)


@dataclass(frozen=True)
class PM2Params:
    """Everything PMRMLib_2 / PMRM_2 are configured with (the JSON's ``Parameters`` object)."""

    scenarios: tuple[Scenario, ...]
    vol_shock: VolShockParams
    skew_shock: SkewShockParams
    margin: MarginParams
    basis: BasisContingencyParams
    other: OtherContingencyParams
    name: str = "derive-pm2"
    as_of: str = ""
    source: str = ""


@dataclass(frozen=True)
class _Group:
    section: str  # TOML table
    json: str  # JSON object under Parameters
    attr: str  # PM2Params attribute
    cls: type
    fields: tuple[tuple[str, str], ...]  # (dataclass field, JSON key)
    signed: frozenset[str] = frozenset()  # fields the contract stores as int (may be < 0)
    positive: frozenset[str] = frozenset()  # spot multipliers: > 0 (see check_scenarios)


#: the one mapping of PM2 parameter names (data table)
PARAM_GROUPS: tuple[_Group, ...] = (
    _Group(
        "vol_shock",
        "VolShock",
        "vol_shock",
        VolShockParams,
        (
            ("vol_range_up", "VOLRANGEUP"),
            ("vol_range_down", "VOLRANGEDOWN"),
            ("short_term_power", "SHORTTERMPOWER"),
            ("long_term_power", "LONGTERMPOWER"),
            ("dte_floor_days", "DTE_FLOOR"),
            ("min_vol_up", "MIN_VOL_EVAL_SHOCKED"),
        ),
        frozenset({"short_term_power", "long_term_power"}),
    ),
    _Group(
        "skew_shock",
        "SkewShock",
        "skew_shock",
        SkewShockParams,
        (
            ("linear_base_cap", "LINEAR_SCALE_CAP"),
            ("linear_c_base", "LINEAR_CBASE"),
            ("abs_base_cap", "ABS_SCALE_CAP"),
            ("abs_c_base", "ABS_CBASE"),
            ("min_k_star", "MIN_K_STAR"),
            ("width_scale", "MIN_WIDTH_SCALE"),
            ("vol_param_static", "VOL_PARAM_STATIC"),
            ("vol_param_scale", "VOL_PARAM_SCALE"),
        ),
        frozenset({"linear_c_base", "abs_c_base", "vol_param_scale"}),
    ),
    _Group(
        "margin",
        "Margin",
        "margin",
        MarginParams,
        (
            ("mm_factor", "MM_LOSS_FACTOR"),
            ("im_factor", "IM_LOSS_FACTOR"),
            ("short_rate_mult_scale", "SHORT_RATE_MULTSCALE"),
            ("long_rate_mult_scale", "LONG_RATE_MULTSCALE"),
            ("short_rate_add_scale", "SHORT_RATE_ADDSCALE"),
            ("long_rate_add_scale", "LONG_RATE_ADDSCALE"),
            ("long_base_static_discount", "BASE_STATIC_DISCOUNT"),
            ("short_base_static_discount", "BASE_STATIC_DISCOUNT_NEG"),
        ),
    ),
    _Group(
        "basis_contingency",
        "BasisContingency",
        "basis",
        BasisContingencyParams,
        (
            ("scenario_spot_up", "SCENARIO_SPOT_UP"),
            ("scenario_spot_down", "SCENARIO_SPOT_DOWN"),
            ("add_factor", "BASIS_CONT_ADD_FACTOR"),
            ("mult_factor", "BASIS_CONT_MULT_FACTOR"),
        ),
        positive=frozenset({"scenario_spot_up", "scenario_spot_down"}),
    ),
    _Group(
        "other_contingency",
        "OtherContingency",
        "other",
        OtherContingencyParams,
        (
            ("peg_loss_threshold", "PEG_LOSS_THRESHOLD"),
            ("peg_loss_factor", "PEG_LOSS_FACTOR"),
            ("conf_threshold", "CONF_THRESHOLD"),
            ("conf_margin", "CONF_MARGIN"),
            ("mm_perp_percent", "MM_PERP_PERCENT"),
            ("im_perp_percent", "IM_PERP_PERCENT"),
            ("mm_option_percent", "MM_OPTION_PERCENT"),
            ("im_option_percent", "IM_OPTION_PERCENT"),
        ),
    ),
)


def _bounds(group: _Group, name: str) -> dict[str, Any]:
    """Contract ``uint`` fields are >= 0, ``int`` fields signed, spot multipliers > 0; all within
    MAX_PARAMETER."""
    return {
        "lo": -MAX_PARAMETER if name in group.signed else 0.0,
        "hi": MAX_PARAMETER,
        "positive": name in group.positive,
    }


def check_scenarios(scenarios: Sequence[Scenario], where: str) -> None:
    """The scenario list rules: at least one scenario (PMRMLib_2 requires it), known directions,
    spot shock in (0, MAX_PARAMETER] and dampening in [0, MAX_PARAMETER], and at most one
    scenario per skew direction (PMRM_2.setScenarios; the case format reports skew P&L by
    direction). docs/derive-pm2.md, "Assumptions", justifies each."""
    if not scenarios:
        raise ValueError(f"{where}: at least one scenario is required")
    for i, s in enumerate(scenarios):
        if not isinstance(s, Scenario):
            raise TypeError(f"{where}[{i}]: expected a Scenario, got {type(s).__name__}")
        if s.vol_shock not in VOL_DIRECTIONS.values():
            raise ValueError(
                f"{where}[{i}].vol_shock: must be one of {sorted(VOL_DIRECTIONS.values())}, got {s.vol_shock!r}"
            )
        number(s.spot_shock, f"{where}[{i}].spot_shock", positive=True, hi=MAX_PARAMETER)
        number(s.dampening, f"{where}[{i}].dampening", lo=0.0, hi=MAX_PARAMETER)
    for kind in SKEW_DIRECTIONS:
        found = [i for i, s in enumerate(scenarios) if s.vol_shock == kind]
        if len(found) > 1:
            raise ValueError(f"{where}: at most one {kind!r} skew scenario, found {len(found)}")


def validate_params(params: PM2Params, where: str = "params") -> None:
    """Every rule the readers apply, for parameters built by hand; errors name the field."""
    if not isinstance(params, PM2Params):
        raise TypeError(f"{where}: expected PM2Params, got {type(params).__name__}")
    check_scenarios(params.scenarios, f"{where}.scenarios")
    for g in PARAM_GROUPS:
        sub = getattr(params, g.attr)
        for name, _key in g.fields:
            number(getattr(sub, name), f"{where}.{g.attr}.{name}", **_bounds(g, name))


def _json_scenario(s: Any, w: str) -> Scenario:
    direction = js.need(s, "VolShockDirection", w)
    if direction not in VOL_DIRECTIONS:
        raise ValueError(f"{w}.VolShockDirection: must be one of {sorted(VOL_DIRECTIONS)}, got {direction!r}")
    return Scenario(
        spot_shock=js.num(s, "SpotShock", w, positive=True, hi=MAX_PARAMETER),
        vol_shock=VOL_DIRECTIONS[direction],
        dampening=js.num(s, "DampeningFactor", w, lo=0.0, hi=MAX_PARAMETER),
    )


def parse_params(obj: Mapping[str, Any], where: str = "Parameters") -> PM2Params:
    """:class:`PM2Params` from a case's ``Parameters`` object (JSON key names)."""
    raw = js.array(obj, "Scenarios", where)
    scenarios = [_json_scenario(s, f"{where}.Scenarios[{i}]") for i, s in enumerate(raw)]
    check_scenarios(scenarios, f"{where}.Scenarios")
    groups = {}
    for g in PARAM_GROUPS:
        sub = js.need(obj, g.json, where)
        groups[g.attr] = g.cls(**{f: js.num(sub, key, f"{where}.{g.json}", **_bounds(g, f)) for f, key in g.fields})
    return PM2Params(scenarios=tuple(scenarios), **groups)


def preset_path() -> Path:
    """Path of the packaged ``derive-pm2`` preset."""
    return Path(__file__).resolve().parent.parent / "presets" / "derive-pm2.toml"


def _toml_scenarios(doc: Mapping[str, Any], path: Path) -> list[Scenario]:
    table = js.need(doc, "scenarios", str(path))
    unknown = set(table) - {"regular", "tail", "skew"} if isinstance(table, Mapping) else set()
    if unknown:
        raise ValueError(f"scenarios: unknown keys {sorted(unknown)}")
    scenarios = []
    for group, allowed in (("regular", PRICE_DIRECTIONS), ("tail", PRICE_DIRECTIONS), ("skew", SKEW_DIRECTIONS)):
        for i, s in enumerate(js.array(table, group, "scenarios") if group in table else []):
            w = f"scenarios.{group}[{i}]"
            direction = js.need(s, "vol_shock", w)
            if direction not in allowed:
                raise ValueError(f"{w}.vol_shock: must be one of {list(allowed)}, got {direction!r}")
            scenarios.append(
                Scenario(
                    spot_shock=js.num(s, "spot_shock", w, positive=True, hi=MAX_PARAMETER, default=1.0),
                    vol_shock=direction,
                    dampening=js.num(s, "dampening", w, lo=0.0, hi=MAX_PARAMETER, default=1.0),
                    tail=None if group == "skew" else group == "tail",
                )
            )
    check_scenarios(scenarios, "scenarios")
    return scenarios


def load_preset(path: str | Path | None = None) -> PM2Params:
    """:class:`PM2Params` from a TOML preset (default: the packaged ``presets/derive-pm2.toml``).

    Layout (see the packaged file): ``[model]`` (name, as_of, source); one table per parameter
    group with the dataclasses' snake_case field names (``[vol_shock]``, ``[skew_shock]``,
    ``[margin]``, ``[basis_contingency]``, ``[other_contingency]``); ``[scenarios]`` with three
    arrays ``regular``, ``tail`` and ``skew`` of inline tables ``{spot_shock, vol_shock,
    dampening}`` (vol_shock "up" / "down" / "none" for regular and tail, "linear" / "abs" for skew;
    spot_shock defaults to 1 and dampening to 1). Scenarios are used in that order.
    """
    path = preset_path() if path is None else Path(path)
    try:
        with open(path, "rb") as fh:
            doc = _toml.load(fh)
    except (_toml.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not valid TOML: {exc}") from None
    model = doc.get("model", {})
    if not isinstance(model, Mapping):
        raise ValueError("model: expected a table")
    scenarios = _toml_scenarios(doc, path)
    groups = {}
    for g in PARAM_GROUPS:
        sub = js.need(doc, g.section, str(path))
        unknown = set(sub) - {f for f, _ in g.fields}
        if unknown:
            raise ValueError(f"{g.section}: unknown keys {sorted(unknown)}")
        groups[g.attr] = g.cls(**{f: js.num(sub, f, g.section, **_bounds(g, f)) for f, _ in g.fields})
    return PM2Params(
        scenarios=tuple(scenarios),
        name=str(model.get("name", "derive-pm2")),
        as_of=str(model.get("as_of", "")),
        source=str(model.get("source", "")),
        **groups,
    )


def params_to_json(params: PM2Params) -> dict[str, Any]:
    """The ``Parameters`` object of a portfolio-case JSON for ``params`` (inverse of parse_params)."""
    back = {v: k for k, v in VOL_DIRECTIONS.items()}
    out: dict[str, Any] = {
        "Scenarios": [
            {"SpotShock": s.spot_shock, "VolShockDirection": back[s.vol_shock], "DampeningFactor": s.dampening}
            for s in params.scenarios
        ]
    }
    for g in PARAM_GROUPS:
        sub = getattr(params, g.attr)
        out[g.json] = {key: getattr(sub, f) for f, key in g.fields}
    return out


__all__ = [
    "MAX_PARAMETER",
    "PARAM_GROUPS",
    "PRICE_DIRECTIONS",
    "SKEW_DIRECTIONS",
    "VOL_DIRECTIONS",
    "BasisContingencyParams",
    "MarginParams",
    "OtherContingencyParams",
    "PM2Params",
    "Scenario",
    "SkewShockParams",
    "VolShockParams",
    "check_scenarios",
    "load_preset",
    "params_to_json",
    "parse_params",
    "preset_path",
    "validate_params",
]
