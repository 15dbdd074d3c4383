"""Derive PM2 (portfolio margin 2): the ``derive-pm2`` margin model and its oracle-case loader.

Algorithm: derivexyz/v2-core ``src/risk-managers/PMRM_2.sol`` and ``PMRMLib_2.sol`` (BUSL-1.1; read
for conformance, not copied). ``docs/derive-pm2.md`` states it step by step, maps every JSON field
and lists the conformance results against Derive's own portfolio cases.

Layers:

* :func:`load_case` / :func:`parse_case` turn one portfolio-case JSON (``Scenario``, ``Parameters``,
  ``Result``) into a :class:`Case` of clean dataclasses: :class:`Portfolio`, :class:`PM2Params`,
  :class:`Expected`. Malformed input raises ``ValueError`` naming the JSON field.
* :func:`load_preset` reads ``presets/derive-pm2.toml`` (or any file in that layout) into
  :class:`PM2Params`.
* :func:`evaluate` computes every PM2 component for one portfolio and returns a :class:`PM2Result`.
  Option, perpetual and collateral revaluation goes through the C++ kernels
  (:func:`marginkernel.kernels.revalue` and :func:`marginkernel.kernels.net`) with
  ``engine="kernel"``, or through their pure-NumPy twins in :mod:`marginkernel.reference` with
  ``engine="reference"``; everything after netting (static discounts, skew inversion, dampening,
  contingencies, IM / MM) is NumPy here.

Signs follow Derive, not DESIGN §3's "loss > 0": scenario values are P&L (> 0 is a gain; Derive's
JSON calls them ``reg_losses`` but a loss is negative), and ``im`` / ``mm`` are Derive's margin
*balances* (mark-to-market + cash - requirement; < 0 means under-margined). The requirements
themselves, >= 0, are ``im_requirement`` / ``mm_requirement``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from . import kernels as _kernels
from . import reference as _reference

try:  # Python >= 3.11
    import tomllib as _toml
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as _toml  # type: ignore[no-redef]

__all__ = [
    "SECONDS_PER_YEAR",
    "FORWARD_SPLIT_SECONDS",
    "VOL_SHOCKS",
    "Option",
    "ExpiryFeed",
    "Collateral",
    "Portfolio",
    "Scenario",
    "VolShockParams",
    "SkewShockParams",
    "MarginParams",
    "BasisContingencyParams",
    "OtherContingencyParams",
    "PM2Params",
    "Expected",
    "Case",
    "PM2Result",
    "parse_case",
    "load_case",
    "parse_params",
    "load_preset",
    "preset_path",
    "params_to_json",
    "evaluate",
    "forward_portions",
    "vol_shock_multipliers",
    "static_discounts",
    "skew_multipliers",
    "naked_shorts",
]

SECONDS_PER_YEAR = 365 * 86400
DAY = 86400
#: expiries closer than this have a fixed (unshockable) forward portion (PM2 forward feed, see
#: forward_portions)
FORWARD_SPLIT_SECONDS = 30 * 60
#: scenario vol-shock directions: JSON spelling -> ours
VOL_SHOCKS = {"Up": "up", "Down": "down", "None": "none", "LINEAR": "linear", "ABS": "abs"}
_SKEW = ("linear", "abs")
#: smallest positive vol shift: makes the kernel apply its up-vol floor (keyed on shift > 0) in Up
#: scenarios when VOLRANGEUP == 0, while sigma * (1 + 1e-300 * tau^p) == sigma exactly in doubles
_TINY_SHIFT = 1e-300
#: stands in for DTE_FLOOR == 0 (the kernel requires a positive floor); only differs from 0 for
#: options less than 1e-9 s from expiry, whose vol does not matter (sigma * sqrt(T) ~ 0)
_TINY_FLOOR_DAYS = 1e-14


# ------------------------------------------------------------------------------------------------
# Input validation helpers: every error names the JSON (or TOML) field it came from
# ------------------------------------------------------------------------------------------------


def _need(obj: Mapping, key: str, where: str):
    if not isinstance(obj, Mapping):
        raise ValueError(f"{where}: expected an object, got {type(obj).__name__}")
    if key not in obj:
        raise ValueError(f"{where}.{key}: missing")
    return obj[key]


def _num(obj: Mapping, key: str, where: str, *, default=None, lo=None, hi=None, positive=False):
    """A finite float from a JSON number or numeric string."""
    if default is not None and isinstance(obj, Mapping) and key not in obj:
        return float(default)
    raw = _need(obj, key, where)
    name = f"{where}.{key}"
    if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
        raise ValueError(f"{name}: expected a number, got {raw!r}")
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name}: expected a number, got {raw!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"{name}: must be finite, got {raw!r}")
    if positive and not value > 0.0:
        raise ValueError(f"{name}: must be > 0, got {raw!r}")
    if lo is not None and value < lo:
        raise ValueError(f"{name}: must be >= {lo}, got {raw!r}")
    if hi is not None and value > hi:
        raise ValueError(f"{name}: must be <= {hi}, got {raw!r}")
    return value


def _flag(obj: Mapping, key: str, where: str) -> bool:
    raw = _need(obj, key, where)
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, (int, float)) and raw in (0, 1):
        return bool(raw)
    raise ValueError(f"{where}.{key}: expected a boolean or 0/1, got {raw!r}")


def _seconds(obj: Mapping, key: str, where: str) -> int:
    value = _num(obj, key, where, lo=0.0)
    if value != int(value):
        raise ValueError(f"{where}.{key}: expected whole seconds, got {obj[key]!r}")
    return int(value)


def _list(obj: Mapping, key: str, where: str) -> list:
    raw = _need(obj, key, where)
    if not isinstance(raw, list):
        raise ValueError(f"{where}.{key}: expected a list, got {type(raw).__name__}")
    return raw


# ------------------------------------------------------------------------------------------------
# Portfolio and market
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Option:
    """One option position (``Scenario.Options[i]``)."""

    expiry_seconds: int  # Expiry: seconds from now to expiry (0 = expired)
    strike: float  # Strike
    is_call: bool  # IsCall
    amount: float  # Amount: contracts, < 0 short
    vol: float  # MarkVol: the feed's (SVI) implied vol at this strike


@dataclass(frozen=True)
class ExpiryFeed:
    """Forward, rate and confidences of one expiry (``Scenario.OptionFeeds[i]``)."""

    expiry_seconds: int  # FeedExpiry
    forward: float  # Forward
    forward_confidence: float  # ForwardConfidence
    rate: float  # Rate (annual, continuously compounded; PM2 floors it at 0)
    rate_confidence: float  # RateConfidence
    vol_confidence: float  # OptionVolConfidences


@dataclass(frozen=True)
class Collateral:
    """One collateral holding (``Scenario.Collaterals[i]``)."""

    name: str  # Name
    amount: float  # Amount
    price: float  # Price (USD)
    confidence: float  # Confidence of its price feed
    risk_cancelling: bool  # IsRiskCancelling: moves with the underlying's spot in scenarios
    im_haircut: float  # IMHaircut
    mm_haircut: float  # MMHaircut


@dataclass(frozen=True)
class Portfolio:
    """A PM2 subaccount and its market (the JSON's ``Scenario`` object)."""

    spot: float  # SpotPrice
    spot_confidence: float = 1.0  # SpotConfidence
    cash: float = 0.0  # Cash (USDC)
    perp_amount: float = 0.0  # NumPerps
    perp_price: float = 0.0  # PerpPrice
    perp_confidence: float = 1.0  # PerpConfidence
    unrealised_perp_pnl: float = 0.0  # UnrealisedPerpPNL
    unrealised_funding: float = 0.0  # UnrealisedFunding
    stable_price: float = 1.0  # StablePrice (USDC in USD)
    options: tuple[Option, ...] = ()
    feeds: tuple[ExpiryFeed, ...] = ()
    collaterals: tuple[Collateral, ...] = ()

    def expiries(self) -> list[int]:
        """Distinct option expiries (seconds) in order of first appearance among the options."""
        seen: dict[int, None] = {}
        for o in self.options:
            seen.setdefault(o.expiry_seconds, None)
        return list(seen)


def parse_portfolio(obj: Mapping, where: str = "Scenario") -> Portfolio:
    """:class:`Portfolio` from a case's ``Scenario`` object."""
    options = []
    for i, o in enumerate(_list(obj, "Options", where)):
        w = f"{where}.Options[{i}]"
        options.append(
            Option(
                expiry_seconds=_seconds(o, "Expiry", w),
                strike=_num(o, "Strike", w, positive=True),
                is_call=_flag(o, "IsCall", w),
                amount=_num(o, "Amount", w),
                vol=_num(o, "MarkVol", w, lo=0.0),
            )
        )
    feeds = []
    for i, f in enumerate(_list(obj, "OptionFeeds", where)):
        w = f"{where}.OptionFeeds[{i}]"
        feeds.append(
            ExpiryFeed(
                expiry_seconds=_seconds(f, "FeedExpiry", w),
                forward=_num(f, "Forward", w, positive=True),
                forward_confidence=_num(f, "ForwardConfidence", w, lo=0.0, hi=1.0),
                rate=_num(f, "Rate", w),
                rate_confidence=_num(f, "RateConfidence", w, lo=0.0, hi=1.0),
                vol_confidence=_num(f, "OptionVolConfidences", w, lo=0.0, hi=1.0),
            )
        )
    collaterals = []
    for i, c in enumerate(_list(obj, "Collaterals", where)):
        w = f"{where}.Collaterals[{i}]"
        name = _need(c, "Name", w)
        if not isinstance(name, str):
            raise ValueError(f"{w}.Name: expected a string, got {name!r}")
        collaterals.append(
            Collateral(
                name=name,
                amount=_num(c, "Amount", w, lo=0.0),
                price=_num(c, "Price", w, lo=0.0),
                confidence=_num(c, "Confidence", w, lo=0.0, hi=1.0),
                risk_cancelling=_flag(c, "IsRiskCancelling", w),
                im_haircut=_num(c, "IMHaircut", w, lo=0.0),
                mm_haircut=_num(c, "MMHaircut", w, lo=0.0),
            )
        )
    perp_amount = _num(obj, "NumPerps", where)
    portfolio = Portfolio(
        spot=_num(obj, "SpotPrice", where, positive=True),
        spot_confidence=_num(obj, "SpotConfidence", where, lo=0.0, hi=1.0),
        cash=_num(obj, "Cash", where),
        perp_amount=perp_amount,
        perp_price=_num(obj, "PerpPrice", where, lo=0.0),
        perp_confidence=_num(obj, "PerpConfidence", where, lo=0.0, hi=1.0),
        unrealised_perp_pnl=_num(obj, "UnrealisedPerpPNL", where),
        unrealised_funding=_num(obj, "UnrealisedFunding", where),
        stable_price=_num(obj, "StablePrice", where, positive=True),
        options=tuple(options),
        feeds=tuple(feeds),
        collaterals=tuple(collaterals),
    )
    if perp_amount != 0.0 and not portfolio.perp_price > 0.0:
        raise ValueError(f"{where}.PerpPrice: must be > 0 when NumPerps != 0, got {portfolio.perp_price}")
    feed_expiries = [f.expiry_seconds for f in feeds]
    if len(set(feed_expiries)) != len(feed_expiries):
        raise ValueError(f"{where}.OptionFeeds: duplicate FeedExpiry in {feed_expiries}")
    for i, o in enumerate(options):
        if o.expiry_seconds not in feed_expiries:
            raise ValueError(
                f"{where}.Options[{i}].Expiry: no OptionFeeds entry with FeedExpiry {o.expiry_seconds}"
            )
    return portfolio


# ------------------------------------------------------------------------------------------------
# Parameters
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    """One margin scenario: spot multiplier, vol-shock direction and dampening (cover) factor."""

    spot_shock: float  # SpotShock: price multiplier, e.g. 0.82 for -18 %
    vol_shock: str  # "up" | "down" | "none" | "linear" | "abs"
    dampening: float = 1.0  # DampeningFactor, applied to the scenario's P&L
    #: reporting class of a non-skew scenario; None: a tail iff dampening != 1. Only labels the
    #: scenario (regular vs tail losses); the margin treats every scenario alike.
    tail: bool | None = None

    @property
    def kind(self) -> str:
        """"skew" (linear / abs), "tail" or "regular"."""
        if self.vol_shock in _SKEW:
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


#: (section, JSON group, dataclass, [(field, JSON key)]) - the one mapping of PM2 parameter names
_PARAM_GROUPS: tuple = (
    (
        "vol_shock",
        "VolShock",
        VolShockParams,
        [
            ("vol_range_up", "VOLRANGEUP"),
            ("vol_range_down", "VOLRANGEDOWN"),
            ("short_term_power", "SHORTTERMPOWER"),
            ("long_term_power", "LONGTERMPOWER"),
            ("dte_floor_days", "DTE_FLOOR"),
            ("min_vol_up", "MIN_VOL_EVAL_SHOCKED"),
        ],
    ),
    (
        "skew_shock",
        "SkewShock",
        SkewShockParams,
        [
            ("linear_base_cap", "LINEAR_SCALE_CAP"),
            ("linear_c_base", "LINEAR_CBASE"),
            ("abs_base_cap", "ABS_SCALE_CAP"),
            ("abs_c_base", "ABS_CBASE"),
            ("min_k_star", "MIN_K_STAR"),
            ("width_scale", "MIN_WIDTH_SCALE"),
            ("vol_param_static", "VOL_PARAM_STATIC"),
            ("vol_param_scale", "VOL_PARAM_SCALE"),
        ],
    ),
    (
        "margin",
        "Margin",
        MarginParams,
        [
            ("mm_factor", "MM_LOSS_FACTOR"),
            ("im_factor", "IM_LOSS_FACTOR"),
            ("short_rate_mult_scale", "SHORT_RATE_MULTSCALE"),
            ("long_rate_mult_scale", "LONG_RATE_MULTSCALE"),
            ("short_rate_add_scale", "SHORT_RATE_ADDSCALE"),
            ("long_rate_add_scale", "LONG_RATE_ADDSCALE"),
            ("long_base_static_discount", "BASE_STATIC_DISCOUNT"),
            ("short_base_static_discount", "BASE_STATIC_DISCOUNT_NEG"),
        ],
    ),
    (
        "basis_contingency",
        "BasisContingency",
        BasisContingencyParams,
        [
            ("scenario_spot_up", "SCENARIO_SPOT_UP"),
            ("scenario_spot_down", "SCENARIO_SPOT_DOWN"),
            ("add_factor", "BASIS_CONT_ADD_FACTOR"),
            ("mult_factor", "BASIS_CONT_MULT_FACTOR"),
        ],
    ),
    (
        "other_contingency",
        "OtherContingency",
        OtherContingencyParams,
        [
            ("peg_loss_threshold", "PEG_LOSS_THRESHOLD"),
            ("peg_loss_factor", "PEG_LOSS_FACTOR"),
            ("conf_threshold", "CONF_THRESHOLD"),
            ("conf_margin", "CONF_MARGIN"),
            ("mm_perp_percent", "MM_PERP_PERCENT"),
            ("im_perp_percent", "IM_PERP_PERCENT"),
            ("mm_option_percent", "MM_OPTION_PERCENT"),
            ("im_option_percent", "IM_OPTION_PERCENT"),
        ],
    ),
)
_SECTION_ATTR = {"vol_shock": "vol_shock", "skew_shock": "skew_shock", "margin": "margin",
                 "basis_contingency": "basis", "other_contingency": "other"}


def _check_scenarios(scenarios: Sequence[Scenario], where: str) -> None:
    if not scenarios:
        raise ValueError(f"{where}: at least one scenario is required")
    for kind in _SKEW:
        found = [i for i, s in enumerate(scenarios) if s.vol_shock == kind]
        if len(found) > 1:
            raise ValueError(f"{where}: at most one {kind!r} skew scenario, found {len(found)}")
        if found and scenarios[found[0]].spot_shock != 1.0:
            raise ValueError(f"{where}[{found[0]}]: a skew scenario must have spot shock 1")


def parse_params(obj: Mapping, where: str = "Parameters") -> PM2Params:
    """:class:`PM2Params` from a case's ``Parameters`` object (JSON key names)."""
    scenarios = []
    for i, s in enumerate(_list(obj, "Scenarios", where)):
        w = f"{where}.Scenarios[{i}]"
        direction = _need(s, "VolShockDirection", w)
        if direction not in VOL_SHOCKS:
            raise ValueError(f"{w}.VolShockDirection: must be one of {sorted(VOL_SHOCKS)}, got {direction!r}")
        scenarios.append(
            Scenario(
                spot_shock=_num(s, "SpotShock", w, positive=True),
                vol_shock=VOL_SHOCKS[direction],
                dampening=_num(s, "DampeningFactor", w, lo=0.0),
            )
        )
    _check_scenarios(scenarios, f"{where}.Scenarios")
    groups = {}
    for section, group, cls, names in _PARAM_GROUPS:
        sub = _need(obj, group, where)
        groups[_SECTION_ATTR[section]] = cls(**{f: _num(sub, key, f"{where}.{group}") for f, key in names})
    return PM2Params(scenarios=tuple(scenarios), **groups)


def preset_path() -> Path:
    """Path of the packaged ``derive-pm2`` preset."""
    return Path(__file__).with_name("presets") / "derive-pm2.toml"


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
    except _toml.TOMLDecodeError as exc:
        raise ValueError(f"{path}: not valid TOML: {exc}") from None
    model = doc.get("model", {})
    if not isinstance(model, Mapping):
        raise ValueError("model: expected a table")
    table = _need(doc, "scenarios", str(path))
    unknown = set(table) - {"regular", "tail", "skew"} if isinstance(table, Mapping) else set()
    if unknown:
        raise ValueError(f"scenarios: unknown keys {sorted(unknown)}")
    scenarios = []
    for group, allowed in (("regular", ("up", "down", "none")), ("tail", ("up", "down", "none")),
                           ("skew", _SKEW)):
        for i, s in enumerate(_list(table, group, "scenarios") if group in table else []):
            w = f"scenarios.{group}[{i}]"
            direction = _need(s, "vol_shock", w)
            if direction not in allowed:
                raise ValueError(f"{w}.vol_shock: must be one of {list(allowed)}, got {direction!r}")
            scenarios.append(
                Scenario(
                    spot_shock=_num(s, "spot_shock", w, positive=True, default=1.0),
                    vol_shock=direction,
                    dampening=_num(s, "dampening", w, lo=0.0, default=1.0),
                    tail=None if group == "skew" else group == "tail",
                )
            )
    _check_scenarios(scenarios, "scenarios")
    groups = {}
    for section, _group, cls, names in _PARAM_GROUPS:
        sub = _need(doc, section, str(path))
        unknown = set(sub) - {f for f, _ in names}
        if unknown:
            raise ValueError(f"{section}: unknown keys {sorted(unknown)}")
        groups[_SECTION_ATTR[section]] = cls(**{f: _num(sub, f, section) for f, _ in names})
    return PM2Params(
        scenarios=tuple(scenarios),
        name=str(model.get("name", "derive-pm2")),
        as_of=str(model.get("as_of", "")),
        source=str(model.get("source", "")),
        **groups,
    )


def params_to_json(params: PM2Params) -> dict:
    """The ``Parameters`` object of a portfolio-case JSON for ``params`` (inverse of parse_params)."""
    back = {v: k for k, v in VOL_SHOCKS.items()}
    out: dict[str, Any] = {
        "Scenarios": [
            {"SpotShock": s.spot_shock, "VolShockDirection": back[s.vol_shock], "DampeningFactor": s.dampening}
            for s in params.scenarios
        ]
    }
    for section, group, _cls, names in _PARAM_GROUPS:
        sub = getattr(params, _SECTION_ATTR[section])
        out[group] = {key: getattr(sub, f) for f, key in names}
    return out


# ------------------------------------------------------------------------------------------------
# Oracle case
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Expected:
    """A case's ``Result``: Derive's own numbers for every component (floats)."""

    regular: np.ndarray  # reg_losses[:, 2]: P&L of each regular scenario, in scenario order
    tail: np.ndarray  # tail_losses[:, 2]
    skew: dict[str, float]  # skew_losses: {"linear": P&L, "abs": P&L}
    components: dict[str, Any]  # every other Result key, as given (IM, MM, *Cont, ...)

    def __getitem__(self, key: str):
        return self.components[key]


@dataclass(frozen=True)
class Case:
    name: str
    portfolio: Portfolio
    params: PM2Params
    expected: Expected | None


def _parse_expected(obj: Mapping, where: str = "Result") -> Expected:
    def losses(key: str, col: int) -> np.ndarray:
        rows = _list(obj, key, where)
        out = []
        for i, row in enumerate(rows):
            if not isinstance(row, list) or len(row) <= col:
                raise ValueError(f"{where}.{key}[{i}]: expected a list with at least {col + 1} entries")
            out.append(_num({"v": row[col]}, "v", f"{where}.{key}[{i}][{col}]"))
        return np.array(out, dtype=float)

    skew = {}
    for i, row in enumerate(_list(obj, "skew_losses", where)):
        if not isinstance(row, list) or len(row) != 2 or row[0] not in ("LINEAR", "ABS"):
            raise ValueError(f"{where}.skew_losses[{i}]: expected [\"LINEAR\" | \"ABS\", value]")
        skew[VOL_SHOCKS[row[0]]] = _num({"v": row[1]}, "v", f"{where}.skew_losses[{i}][1]")
    rest = {k: v for k, v in obj.items() if k not in ("reg_losses", "tail_losses", "skew_losses")}
    return Expected(regular=losses("reg_losses", 2), tail=losses("tail_losses", 2), skew=skew, components=rest)


def parse_case(obj: Mapping, name: str = "case") -> Case:
    """:class:`Case` from a decoded portfolio-case JSON object."""
    if not isinstance(obj, Mapping):
        raise ValueError(f"{name}: expected a JSON object, got {type(obj).__name__}")
    portfolio = parse_portfolio(_need(obj, "Scenario", name))
    params = parse_params(_need(obj, "Parameters", name))
    expected = _parse_expected(obj["Result"]) if "Result" in obj else None
    if expected is not None:
        # Derive lists the regular scenarios first, then the tails, then the skews; the Result's
        # counts say where the regular ones end (a tail may have dampening 1, e.g. test_34)
        price = [i for i, s in enumerate(params.scenarios) if s.kind != "skew"]
        n_skew = len(params.scenarios) - len(price)
        n_reg, n_tail = len(expected.regular), len(expected.tail)
        if n_reg + n_tail != len(price) or len(expected.skew) != n_skew:
            raise ValueError(
                f"Result: {n_reg} reg_losses + {n_tail} tail_losses + {len(expected.skew)} skew_losses do not "
                f"match Parameters.Scenarios ({len(price)} price scenarios, {n_skew} skew scenarios)"
            )
        scen = list(params.scenarios)
        for rank, i in enumerate(price):
            scen[i] = replace(scen[i], tail=rank >= n_reg)
        params = replace(params, scenarios=tuple(scen))
    return Case(name=name, portfolio=portfolio, params=params, expected=expected)


def load_case(path: str | Path) -> Case:
    """:class:`Case` from a portfolio-case JSON file."""
    path = Path(path)
    try:
        obj = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path.name}: not valid JSON: {exc}") from None
    return parse_case(obj, name=path.stem)


# ------------------------------------------------------------------------------------------------
# PM2 building blocks (NumPy, per expiry)
# ------------------------------------------------------------------------------------------------


def forward_portions(forward, seconds):
    """(fixed, variable) forward portions: F_s = variable * spot_shock + fixed.

    Derive's forward feed fixes the part of the forward already averaged into the settlement price:
    within the last 30 minutes the variable part is F * T / 30 min (the test harness and the feed
    use the same split); before that the whole forward is variable.
    """
    forward = np.asarray(forward, dtype=float)
    seconds = np.asarray(seconds, dtype=float)
    near = seconds < FORWARD_SPLIT_SECONDS
    variable = np.where(near, forward * seconds / FORWARD_SPLIT_SECONDS, forward)
    fixed = np.where(near, forward * (FORWARD_SPLIT_SECONDS - seconds) / FORWARD_SPLIT_SECONDS, 0.0)
    return fixed, variable


def vol_shock_multipliers(seconds, p: VolShockParams):
    """(up, down) vol multipliers per expiry: 1 + up * tau^p and max(0, 1 - down * tau^p),
    tau = 30 days / max(T, DTE floor), p = short power if T <= 30 days else long power."""
    seconds = np.asarray(seconds, dtype=float)
    with np.errstate(divide="ignore"):
        tau = 30.0 * DAY / np.maximum(seconds, p.dte_floor_days * DAY)
    scale = tau ** np.where(seconds <= 30 * DAY, p.short_term_power, p.long_term_power)
    return 1.0 + p.vol_range_up * scale, np.maximum(0.0, 1.0 - p.vol_range_down * scale)


def static_discounts(seconds, rate, discount, p: MarginParams):
    """(positive, negative) static discount per expiry, applied to a shocked expiry value by its sign."""
    tau = np.asarray(seconds, dtype=float) / SECONDS_PER_YEAR
    rate = np.maximum(np.asarray(rate, dtype=float), 0.0)
    pos = p.long_base_static_discount * np.exp(-tau * (rate * p.long_rate_mult_scale + p.long_rate_add_scale))
    neg = p.short_base_static_discount / np.exp(-tau * (rate * p.short_rate_mult_scale + p.short_rate_add_scale))
    return pos, np.minimum(1.0 / np.asarray(discount, dtype=float), neg)


def skew_multipliers(strike, forward, seconds, p: SkewShockParams, kind: str):
    """Per-option vol multiplier of a skew scenario (``kind`` "linear" or "abs"), before max(0, .)."""
    strike = np.asarray(strike, dtype=float)
    sqrt_tau = np.sqrt(np.asarray(seconds, dtype=float) / SECONDS_PER_YEAR)
    base_cap, c_base = (p.linear_base_cap, p.linear_c_base) if kind == "linear" else (p.abs_base_cap, p.abs_c_base)
    cap = c_base * sqrt_tau + base_cap
    vol_param = p.vol_param_static + sqrt_tau * p.vol_param_scale
    k_star = np.maximum(p.min_k_star, sqrt_tau * p.width_scale * vol_param)
    k = np.log(strike / np.asarray(forward, dtype=float))
    if kind == "abs":
        k = np.abs(k)
    with np.errstate(divide="ignore", invalid="ignore"):
        ramp = k * cap / k_star
    ramp = np.where(k == 0.0, 0.0, ramp)  # k_star == 0 with k == 0: no skew
    return 1.0 + np.where(k >= 0.0, np.minimum(cap, ramp), np.maximum(-cap, ramp))


def naked_shorts(strikes: Sequence[float], amounts: Sequence[float]) -> float:
    """PMRMLib_2._addOptionContingency's count of short contracts not covered by a long at the same
    strike (calls and puts alike), in the contract's own pairwise loop."""
    n = len(strikes)
    seen = [False] * n
    total = 0.0
    for i in range(n):
        if seen[i]:
            continue
        a = amounts[i]
        found = False
        for j in range(i + 1, n):
            if strikes[j] != strikes[i]:
                continue
            seen[j] = True
            b = amounts[j]
            if a * b < 0:
                total += -a - min(-a, b) if a < 0 else -b - min(a, -b)
            elif a < 0:
                total += -a - b
            found = True
        if not found and a < 0:
            total += -a
    return total


# ------------------------------------------------------------------------------------------------
# Evaluation
# ------------------------------------------------------------------------------------------------


@dataclass
class PM2Result:
    """Every PM2 component of one portfolio (Derive's signs: P&L > 0 is a gain)."""

    scenarios: tuple[Scenario, ...]
    scenario_pnl: np.ndarray  # (S,) dampened, discounted P&L vs the undiscounted mark, per scenario
    expiry_pnl: np.ndarray  # (E, S) the options' share per expiry (after skew inversion)
    basis_contingency: float  # ForwardContingency (<= 0)
    min_span: float  # min(basis contingency, scenario P&L) (<= 0)
    worst_scenario: int  # index into scenarios, or len(scenarios) for the basis contingency
    expiries: np.ndarray  # (E,) seconds, in order of first appearance among the options
    option_mtm_per_expiry: np.ndarray  # (E,)
    discount_factors: np.ndarray  # (E, 2): static discount for positive / negative expiry value
    vol_shock_up: np.ndarray  # (E,) multipliers
    vol_shock_down: np.ndarray  # (E,)
    option_mtm: float
    collateral_mtm: float
    perp_mtm: float  # unrealised perp P&L
    funding: float  # unrealised funding
    cash: float
    portfolio_mtm: float
    mm_perp_cont: float  # contingencies as positive amounts (Derive's JSON shows them negated)
    im_perp_cont: float
    mm_base_cont: float
    im_base_cont: float
    mm_option_cont: float
    im_option_cont: float
    oracle_cont: float
    mm_loss_factor: float
    im_loss_factor: float  # IM factor after the USDC peg-loss increase
    mm_requirement: float  # >= 0
    im_requirement: float  # >= 0
    mm: float  # Derive's MM: portfolio MtM - MM requirement
    im: float  # Derive's IM: portfolio MtM - IM requirement
    extra: dict = field(default_factory=dict)

    def pnl_of(self, kind: str) -> np.ndarray:
        """Scenario P&L of the "regular", "tail" or "skew" scenarios, in scenario order."""
        return self.scenario_pnl[[i for i, s in enumerate(self.scenarios) if s.kind == kind]]

    @property
    def skew_pnl(self) -> dict[str, float]:
        return {s.vol_shock: float(v) for s, v in zip(self.scenarios, self.scenario_pnl) if s.kind == "skew"}


def _confidence_contingency(confidence: float, notional: float, p: OtherContingencyParams) -> float:
    if confidence < p.conf_threshold:
        return (1.0 - confidence) * p.conf_margin * notional
    return 0.0


def _validate(pf: Portfolio, prm: PM2Params) -> None:
    """Checks evaluate() needs beyond what parse_portfolio / parse_params already guarantee, for
    portfolios and parameters built by hand; errors name the dataclass field."""
    if not (math.isfinite(pf.spot) and pf.spot > 0.0):
        raise ValueError(f"portfolio.spot: must be finite and > 0, got {pf.spot}")
    if not (math.isfinite(pf.stable_price) and pf.stable_price > 0.0):
        raise ValueError(f"portfolio.stable_price: must be finite and > 0, got {pf.stable_price}")
    if pf.perp_amount != 0.0 and not pf.perp_price > 0.0:
        raise ValueError(f"portfolio.perp_price: must be > 0 when perp_amount != 0, got {pf.perp_price}")
    feeds = {f.expiry_seconds: f for f in pf.feeds}
    for i, f in enumerate(pf.feeds):
        if not (math.isfinite(f.forward) and f.forward > 0.0):
            raise ValueError(f"portfolio.feeds[{i}].forward: must be finite and > 0, got {f.forward}")
    for i, o in enumerate(pf.options):
        if o.expiry_seconds not in feeds:
            raise ValueError(f"portfolio.options[{i}].expiry_seconds: no feed for expiry {o.expiry_seconds}")
        if not (math.isfinite(o.strike) and o.strike > 0.0):
            raise ValueError(f"portfolio.options[{i}].strike: must be finite and > 0, got {o.strike}")
        if not (math.isfinite(o.vol) and o.vol >= 0.0):
            raise ValueError(f"portfolio.options[{i}].vol: must be finite and >= 0, got {o.vol}")
    _check_scenarios(prm.scenarios, "params.scenarios")
    for i, s in enumerate(prm.scenarios):
        if s.vol_shock not in VOL_SHOCKS.values():
            raise ValueError(f"params.scenarios[{i}].vol_shock: must be one of {sorted(VOL_SHOCKS.values())}")
        if not (math.isfinite(s.spot_shock) and s.spot_shock > 0.0):
            raise ValueError(f"params.scenarios[{i}].spot_shock: must be finite and > 0, got {s.spot_shock}")
    for attr, name in (("scenario_spot_up", "params.basis.scenario_spot_up"),
                       ("scenario_spot_down", "params.basis.scenario_spot_down")):
        if not getattr(prm.basis, attr) > 0.0:
            raise ValueError(f"{name}: must be > 0, got {getattr(prm.basis, attr)}")


def evaluate(portfolio: Portfolio, params: PM2Params, *, engine: str = "kernel") -> PM2Result:
    """All PM2 components of ``portfolio`` under ``params``.

    ``engine="kernel"`` revalues through the C++ kernels, ``"reference"`` through their NumPy
    twins (same inputs, same post-processing), for cross-checking.
    """
    if engine == "kernel":
        mk = _kernels
    elif engine == "reference":
        mk = _reference
    else:
        raise ValueError(f"engine: must be 'kernel' or 'reference', got {engine!r}")
    _validate(portfolio, params)
    pf, prm = portfolio, params
    vs, other = prm.vol_shock, prm.other
    scen = prm.scenarios
    n_scen = len(scen)

    # ---- per expiry ----------------------------------------------------------------------------
    expiries = np.array(pf.expiries(), dtype=np.int64)
    n_exp = len(expiries)
    feed_of = {f.expiry_seconds: f for f in pf.feeds}
    feeds = [feed_of[int(t)] for t in expiries]
    secs = expiries.astype(float)
    years = secs / SECONDS_PER_YEAR
    fwd = np.array([f.forward for f in feeds])
    rate = np.maximum(np.array([f.rate for f in feeds]), 0.0)
    disc = np.exp(-rate * secs / SECONDS_PER_YEAR)
    fixed, variable = forward_portions(fwd, secs)
    fwd_now = variable + fixed  # == fwd up to rounding
    up, down = vol_shock_multipliers(secs, vs)
    pos_disc, neg_disc = static_discounts(secs, rate, disc, prm.margin)

    # ---- instruments: options (risk unit = their expiry), then perp and collateral -------------
    exp_index = {int(t): e for e, t in enumerate(expiries)}
    opts = pf.options
    n_opt = len(opts)
    o_exp = np.array([exp_index[o.expiry_seconds] for o in opts], dtype=np.int32)
    o_strike = np.array([o.strike for o in opts])
    o_amount = np.array([o.amount for o in opts])
    o_vol = np.array([o.vol for o in opts])
    o_call = np.array([o.is_call for o in opts], dtype=bool)

    # linear instruments live on risk unit n_exp, whose multiplier is the plain spot shock
    lin_value, lin_qty = [], []
    if pf.perp_amount != 0.0:
        lin_value.append(pf.perp_price)
        lin_qty.append(pf.perp_amount)
    coll_value = np.array([c.amount * c.price / pf.stable_price for c in pf.collaterals])
    for c, v in zip(pf.collaterals, coll_value):
        if c.risk_cancelling and v > 0.0:
            lin_value.append(v)
            lin_qty.append(1.0)
    n_lin = len(lin_value)

    # scenario columns: the margin scenarios that move spot / vol, then basis up / down
    price_cols = [i for i, s in enumerate(scen) if s.kind != "skew"]
    col_mult = np.array([scen[i].spot_shock for i in price_cols]
                        + [prm.basis.scenario_spot_up, prm.basis.scenario_spot_down])
    col_dir = [scen[i].vol_shock for i in price_cols] + ["none", "none"]
    n_col = len(col_mult)

    shocked = np.zeros((n_exp, n_col))  # shocked undiscounted option value per expiry
    mtm = np.zeros(n_exp)
    lin_pnl = np.zeros(n_col)
    if n_opt + n_lin:
        # risk unit e < n_exp: expiry e, multiplier (variable * m + fixed) / F; unit n_exp: spot
        m_eff = np.vstack([(variable[:, None] * col_mult[None, :] + fixed[:, None]) / fwd_now[:, None],
                           col_mult[None, :]])
        up_shift = vs.vol_range_up if vs.vol_range_up > 0.0 else _TINY_SHIFT
        shift_row = np.array([up_shift if d == "up" else -vs.vol_range_down if d == "down" else 0.0
                              for d in col_dir])
        shift = np.broadcast_to(shift_row, (n_exp + 1, n_col)).copy()
        kind = np.concatenate([np.where(o_call, _reference.CALL, _reference.PUT),
                               np.full(n_lin, _reference.PERPETUAL)]).astype(np.int8)
        unit = np.concatenate([o_exp, np.full(n_lin, n_exp)]).astype(np.int32)
        risk, value_now = mk.revalue(
            kind,
            np.zeros(n_opt + n_lin, dtype=np.int8),
            unit,
            np.concatenate([o_strike, np.ones(n_lin)]),
            np.concatenate([years[o_exp], np.zeros(n_lin)]),
            np.ones(n_opt + n_lin),
            np.concatenate([fwd_now[o_exp], np.array(lin_value)]),
            np.concatenate([disc[o_exp], np.ones(n_lin)]),
            np.concatenate([o_vol, np.zeros(n_lin)]),
            np.concatenate([fwd_now, [pf.spot]]),
            m_eff,
            shift,
            vol_shock="multiplicative",
            tau_floor_days=max(vs.dte_floor_days, _TINY_FLOOR_DAYS),
            short_power=vs.short_term_power,
            long_power=vs.long_term_power,
            vol_up_floor=vs.min_vol_up,
        )
        qty = np.concatenate([o_amount, np.array(lin_qty)])
        netted = mk.net(risk, unit, n_exp + 1, np.array([0, n_opt + n_lin], dtype=np.int64),
                        np.arange(n_opt + n_lin, dtype=np.int32), qty)[0]
        mtm = np.bincount(o_exp, weights=o_amount * value_now[:n_opt], minlength=n_exp)
        shocked = netted[:n_exp] + mtm[:, None]
        lin_pnl = netted[n_exp]

    # ---- skew scenarios: per-option vol multiplier at the unshocked forward -----------------------
    skew_idx = [i for i, s in enumerate(scen) if s.kind == "skew"]
    skew_shocked = np.zeros((n_exp, len(skew_idx)))
    if skew_idx and n_opt:
        mults = np.column_stack([
            skew_multipliers(o_strike, fwd_now[o_exp], secs[o_exp], prm.skew_shock, scen[i].vol_shock)
            for i in skew_idx
        ])
        per_option = np.arange(n_opt, dtype=np.int32)  # one risk unit per option: its own vol shift
        risk, value_now = mk.revalue(
            np.where(o_call, _reference.CALL, _reference.PUT).astype(np.int8),
            np.zeros(n_opt, dtype=np.int8),
            per_option,
            o_strike,
            years[o_exp],
            np.ones(n_opt),
            fwd_now[o_exp],
            disc[o_exp],
            o_vol,
            fwd_now[o_exp],
            np.ones((n_opt, len(skew_idx))),
            mults - 1.0,
            vol_shock="relative",
        )
        netted = mk.net(risk, o_exp, n_exp, np.array([0, n_opt], dtype=np.int64), per_option, o_amount)[0]
        skew_shocked = netted + np.bincount(o_exp, weights=o_amount * value_now, minlength=n_exp)[:, None]

    # ---- scenario P&L ----------------------------------------------------------------------------
    damp = np.array([s.dampening for s in scen])
    values = np.zeros((n_exp, n_scen))
    values[:, price_cols] = shocked[:, : len(price_cols)]
    values[:, skew_idx] = skew_shocked
    discounted = values * np.where(values >= 0.0, pos_disc[:, None], neg_disc[:, None])
    expiry_pnl = (discounted - mtm[:, None]) * damp[None, :]
    expiry_pnl[:, skew_idx] = -np.abs(expiry_pnl[:, skew_idx])
    scenario_pnl = expiry_pnl.sum(axis=0)
    scenario_pnl[price_cols] += lin_pnl[: len(price_cols)] * damp[price_cols]

    # ---- basis (forward) contingency -------------------------------------------------------------
    basis_up, basis_down = shocked[:, -2], shocked[:, -1]
    worst_basis = np.minimum(np.minimum(basis_up - mtm, basis_down - mtm), 0.0)
    basis_factor = prm.basis.add_factor + prm.basis.mult_factor * years
    basis_contingency = float(np.sum(worst_basis * basis_factor))

    # ---- contingencies ---------------------------------------------------------------------------
    min_conf = pf.spot_confidence
    if pf.perp_amount != 0.0:
        min_conf = min(min_conf, pf.perp_confidence)
    perp_notional = abs(pf.perp_amount) * pf.spot
    mm_perp = perp_notional * other.mm_perp_percent
    im_perp = perp_notional * other.im_perp_percent
    oracle = _confidence_contingency(min_conf, perp_notional, other)
    mm_option = im_option = 0.0
    for e in range(n_exp):
        sel = np.flatnonzero(o_exp == e)[::-1]  # PMRM_2 fills each expiry's options back to front
        conf = min(min_conf, feeds[e].forward_confidence, feeds[e].rate_confidence)
        if len(sel):
            conf = min(conf, feeds[e].vol_confidence)
        shorts = naked_shorts(o_strike[sel].tolist(), o_amount[sel].tolist()) * pf.spot
        mm_option += shorts * other.mm_option_percent
        im_option += shorts * other.im_option_percent
        oracle += _confidence_contingency(conf, float(np.abs(o_amount[sel]).sum()) * pf.spot, other)
    mm_base = im_base = 0.0
    for c, v in zip(pf.collaterals, coll_value):
        mm_base += v * c.mm_haircut
        im_base += v * c.im_haircut
        oracle += _confidence_contingency(min(c.confidence, pf.spot_confidence), v, other)

    # ---- IM / MM ---------------------------------------------------------------------------------
    option_mtm = float(mtm.sum())
    collateral_mtm = float(coll_value.sum())
    perp_mtm = pf.unrealised_perp_pnl
    portfolio_mtm = option_mtm + collateral_mtm + perp_mtm + pf.unrealised_funding + pf.cash

    candidates = np.concatenate([scenario_pnl, [basis_contingency]])
    worst = int(np.argmin(candidates)) if n_scen else 0
    if candidates[worst] >= basis_contingency:  # ties go to the basis contingency, as in PMRMLib_2
        worst = n_scen
    min_span = float(min(basis_contingency, scenario_pnl.min(initial=np.inf)))
    im_factor = prm.margin.im_factor
    if pf.stable_price < other.peg_loss_threshold:
        im_factor += (other.peg_loss_threshold - pf.stable_price) * other.peg_loss_factor
    mm_req = -min_span * prm.margin.mm_factor + mm_perp + mm_option + mm_base
    im_req = -min_span * im_factor + mm_perp + mm_option + mm_base + im_perp + im_option + im_base + oracle

    return PM2Result(
        scenarios=scen,
        scenario_pnl=scenario_pnl,
        expiry_pnl=expiry_pnl,
        basis_contingency=basis_contingency,
        min_span=min_span,
        worst_scenario=worst,
        expiries=expiries,
        option_mtm_per_expiry=mtm,
        discount_factors=np.column_stack([pos_disc, neg_disc]) if n_exp else np.zeros((0, 2)),
        vol_shock_up=up,
        vol_shock_down=down,
        option_mtm=option_mtm,
        collateral_mtm=collateral_mtm,
        perp_mtm=perp_mtm,
        funding=pf.unrealised_funding,
        cash=pf.cash,
        portfolio_mtm=portfolio_mtm,
        mm_perp_cont=mm_perp,
        im_perp_cont=im_perp,
        mm_base_cont=mm_base,
        im_base_cont=im_base,
        mm_option_cont=mm_option,
        im_option_cont=im_option,
        oracle_cont=oracle,
        mm_loss_factor=prm.margin.mm_factor,
        im_loss_factor=im_factor,
        mm_requirement=mm_req,
        im_requirement=im_req,
        mm=portfolio_mtm - mm_req,
        im=portfolio_mtm - im_req,
    )
