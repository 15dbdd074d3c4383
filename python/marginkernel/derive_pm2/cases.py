"""Derive's portfolio-case JSON (``Scenario``, ``Parameters``, ``Result``) -> clean dataclasses.

Layout: derivexyz/v2-core ``test/risk-managers/unit-tests/PMRM_2/portfolio_cases/*.json``. Malformed
input raises ``ValueError`` naming the JSON field (``Scenario.Options[1].Strike: ...``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from . import _json as js
from .parameters import VOL_DIRECTIONS, PM2Params, parse_params
from .portfolio import BOUNDS, MAX_SECONDS, Collateral, ExpiryFeed, Option, Portfolio, check_consistency

_JSON_NAMES = {
    "perp_price": "PerpPrice",
    "feeds": "OptionFeeds",
    "options": "Options",
    "expiry": "Expiry",
    "forward_fixed": "ForwardFixed",
}


def _option(o: Any, w: str) -> Option:
    return Option(
        expiry_seconds=js.seconds(o, "Expiry", w, MAX_SECONDS),
        strike=js.num(o, "Strike", w, **BOUNDS["option.strike"]),
        is_call=js.flag(o, "IsCall", w),
        amount=js.num(o, "Amount", w, **BOUNDS["option.amount"]),
        vol=js.num(o, "MarkVol", w, **BOUNDS["option.vol"]),
    )


def _feed(f: Any, w: str) -> ExpiryFeed:
    return ExpiryFeed(
        expiry_seconds=js.seconds(f, "FeedExpiry", w, MAX_SECONDS),
        forward=js.num(f, "Forward", w, **BOUNDS["feed.forward"]),
        forward_confidence=js.num(f, "ForwardConfidence", w, **BOUNDS["feed.forward_confidence"]),
        rate=js.num(f, "Rate", w, **BOUNDS["feed.rate"]),
        rate_confidence=js.num(f, "RateConfidence", w, **BOUNDS["feed.rate_confidence"]),
        vol_confidence=js.num(f, "OptionVolConfidences", w, **BOUNDS["feed.vol_confidence"]),
    )


def _collateral(c: Any, w: str) -> Collateral:
    name = js.need(c, "Name", w)
    if not isinstance(name, str):
        raise ValueError(f"{w}.Name: expected a string, got {name!r}")
    return Collateral(
        name=name,
        amount=js.num(c, "Amount", w, **BOUNDS["collateral.amount"]),
        price=js.num(c, "Price", w, **BOUNDS["collateral.price"]),
        confidence=js.num(c, "Confidence", w, **BOUNDS["collateral.confidence"]),
        risk_cancelling=js.flag(c, "IsRiskCancelling", w),
        im_haircut=js.num(c, "IMHaircut", w, **BOUNDS["collateral.im_haircut"]),
        mm_haircut=js.num(c, "MMHaircut", w, **BOUNDS["collateral.mm_haircut"]),
    )


def parse_portfolio(obj: Mapping[str, Any], where: str = "Scenario") -> Portfolio:
    """:class:`Portfolio` from a case's ``Scenario`` object."""
    options = [_option(o, f"{where}.Options[{i}]") for i, o in enumerate(js.array(obj, "Options", where))]
    feeds = [_feed(f, f"{where}.OptionFeeds[{i}]") for i, f in enumerate(js.array(obj, "OptionFeeds", where))]
    colls = [_collateral(c, f"{where}.Collaterals[{i}]") for i, c in enumerate(js.array(obj, "Collaterals", where))]

    def scalar(key: str, field: str) -> float:
        return js.num(obj, key, where, **BOUNDS[f"portfolio.{field}"])

    portfolio = Portfolio(
        spot=scalar("SpotPrice", "spot"),
        spot_confidence=scalar("SpotConfidence", "spot_confidence"),
        cash=scalar("Cash", "cash"),
        perp_amount=scalar("NumPerps", "perp_amount"),
        perp_price=scalar("PerpPrice", "perp_price"),
        perp_confidence=scalar("PerpConfidence", "perp_confidence"),
        unrealised_perp_pnl=scalar("UnrealisedPerpPNL", "unrealised_perp_pnl"),
        unrealised_funding=scalar("UnrealisedFunding", "unrealised_funding"),
        stable_price=scalar("StablePrice", "stable_price"),
        options=tuple(options),
        feeds=tuple(feeds),
        collaterals=tuple(colls),
    )
    check_consistency(portfolio, where, _JSON_NAMES)
    return portfolio


@dataclass(frozen=True)
class Expected:
    """A case's ``Result``: Derive's own numbers for every component (floats)."""

    regular: np.ndarray  # reg_losses[:, 2]: P&L of each regular scenario, in scenario order
    tail: np.ndarray  # tail_losses[:, 2]
    skew: dict[str, float]  # skew_losses: {"linear": P&L, "abs": P&L}
    components: dict[str, Any]  # every other Result key, as given (IM, MM, *Cont, ...)

    def __getitem__(self, key: str) -> Any:
        return self.components[key]


@dataclass(frozen=True)
class Case:
    name: str
    portfolio: Portfolio
    params: PM2Params
    expected: Expected | None


def _losses(obj: Mapping[str, Any], key: str, col: int, where: str) -> np.ndarray:
    out = []
    for i, row in enumerate(js.array(obj, key, where)):
        if not isinstance(row, list) or len(row) <= col:
            raise ValueError(f"{where}.{key}[{i}]: expected a list with at least {col + 1} entries")
        out.append(js.num({"v": row[col]}, "v", f"{where}.{key}[{i}][{col}]"))
    return np.array(out, dtype=float)


def parse_expected(obj: Mapping[str, Any], where: str = "Result") -> Expected:
    """:class:`Expected` from a case's ``Result`` object."""
    skew = {}
    for i, row in enumerate(js.array(obj, "skew_losses", where)):
        if not isinstance(row, list) or len(row) != 2 or row[0] not in ("LINEAR", "ABS"):
            raise ValueError(f'{where}.skew_losses[{i}]: expected ["LINEAR" | "ABS", value]')
        skew[VOL_DIRECTIONS[row[0]]] = js.num({"v": row[1]}, "v", f"{where}.skew_losses[{i}][1]")
    rest = {k: v for k, v in obj.items() if k not in ("reg_losses", "tail_losses", "skew_losses")}
    return Expected(
        regular=_losses(obj, "reg_losses", 2, where),
        tail=_losses(obj, "tail_losses", 2, where),
        skew=skew,
        components=rest,
    )


def _label_tails(params: PM2Params, expected: Expected) -> PM2Params:
    """Derive lists the regular scenarios first, then the tails, then the skews; the Result's counts
    say where the regular ones end (a tail may have dampening 1, e.g. test_34)."""
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
    return replace(params, scenarios=tuple(scen))


def parse_case(obj: Any, name: str = "case") -> Case:
    """:class:`Case` from a decoded portfolio-case JSON object."""
    if not isinstance(obj, Mapping):
        raise ValueError(f"{name}: expected a JSON object, got {type(obj).__name__}")
    portfolio = parse_portfolio(js.need(obj, "Scenario", name))
    params = parse_params(js.need(obj, "Parameters", name))
    expected = parse_expected(obj["Result"]) if "Result" in obj else None
    if expected is not None:
        params = _label_tails(params, expected)
    return Case(name=name, portfolio=portfolio, params=params, expected=expected)


def load_case(path: str | Path) -> Case:
    """:class:`Case` from a portfolio-case JSON file."""
    path = Path(path)
    try:
        obj = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise ValueError(f"{path.name}: not valid JSON: {exc}") from None
    return parse_case(obj, name=path.stem)


__all__ = ["Case", "Expected", "load_case", "parse_case", "parse_expected", "parse_portfolio"]
