"""Derive PM2 built to the contract (PMRMLib_2 / PMRM_2), beyond the shared portfolio cases.

Each newly accepted parameter combination is checked against a direct computation written here
from the contract's formulas (PMRMLib_2.getScenarioPnL, _getExpirySkewedShockedMTM,
_getShockedPerpPnL, _addStaticDiscount), with its own Black-76 (math.erfc), not the package's.
Tolerance: 1e-12 relative (both sides are double precision; the kernel's Black-76 is accurate to
~1e-15 of the price scale).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from marginkernel import derive_pm2 as pm2

YEAR = 365 * 86400
RTOL = 1e-12


def _ncdf(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def _b76(fwd: float, strike: float, vol: float, seconds: float, df: float, call: bool) -> float:
    t = seconds / YEAR
    sd = vol * math.sqrt(t)
    if sd == 0.0:
        intrinsic = max(fwd - strike, 0.0) if call else max(strike - fwd, 0.0)
        return df * intrinsic
    d1 = (math.log(fwd / strike) + 0.5 * sd * sd) / sd
    d2 = d1 - sd
    if call:
        return df * (fwd * _ncdf(d1) - strike * _ncdf(d2))
    return df * (strike * _ncdf(-d2) - fwd * _ncdf(-d1))


def _portfolio() -> pm2.Portfolio:
    """One expiry (20 days) with a short OTM call and a long OTM put, a short perp and
    risk-cancelling ETH collateral."""
    secs = 20 * 86400
    return pm2.Portfolio(
        spot=3000.0,
        cash=500.0,
        perp_amount=-1.5,
        perp_price=3002.0,
        options=(
            pm2.Option(expiry_seconds=secs, strike=3400.0, is_call=True, amount=-2.0, vol=0.62),
            pm2.Option(expiry_seconds=secs, strike=2600.0, is_call=False, amount=1.0, vol=0.71),
        ),
        feeds=(
            pm2.ExpiryFeed(
                expiry_seconds=secs,
                forward=3010.0,
                forward_confidence=1.0,
                rate=0.04,
                rate_confidence=1.0,
                vol_confidence=1.0,
            ),
        ),
        collaterals=(
            pm2.Collateral(
                name="ETH",
                amount=0.8,
                price=3000.0,
                confidence=1.0,
                risk_cancelling=True,
                im_haircut=0.02,
                mm_haircut=0.03,
            ),
        ),
    )


def _params(*scenarios: pm2.Scenario) -> pm2.PM2Params:
    return dataclasses.replace(pm2.load_preset(), scenarios=tuple(scenarios))


def _direct_skew_pnl(pf: pm2.Portfolio, prm: pm2.PM2Params, scen: pm2.Scenario) -> float:
    """PMRMLib_2.getScenarioPnL for one skew scenario, written out from the contract."""
    feed = pf.feeds[0]
    secs = feed.expiry_seconds
    tau = secs / YEAR
    rate = max(feed.rate, 0.0)
    df = math.exp(-rate * tau)
    fwd = feed.forward  # > 30 min to expiry: all of it is the variable portion, unshocked here
    sk, mp = prm.skew_shock, prm.margin
    base_cap, c_base = (
        (sk.linear_base_cap, sk.linear_c_base) if scen.vol_shock == "linear" else (sk.abs_base_cap, sk.abs_c_base)
    )
    cap = c_base * math.sqrt(tau) + base_cap
    k_star = max(
        sk.min_k_star, math.sqrt(tau) * sk.width_scale * (sk.vol_param_static + math.sqrt(tau) * sk.vol_param_scale)
    )
    mtm = shocked = 0.0
    for o in pf.options:
        mtm += o.amount * _b76(fwd, o.strike, o.vol, secs, df, o.is_call)
        k = math.log(o.strike / fwd)
        if scen.vol_shock == "abs":
            k = abs(k)
        mult = 1.0 + (min(cap, k * cap / k_star) if k >= 0 else max(-cap, k * cap / k_star))
        shocked += o.amount * _b76(fwd, o.strike, o.vol * max(mult, 0.0), secs, df, o.is_call)
    pos = mp.long_base_static_discount * math.exp(-tau * (rate * mp.long_rate_mult_scale + mp.long_rate_add_scale))
    neg = min(
        1.0 / df,
        mp.short_base_static_discount / math.exp(-tau * (rate * mp.short_rate_mult_scale + mp.short_rate_add_scale)),
    )
    expiry_pnl = (shocked * (pos if shocked >= 0 else neg) - mtm) * scen.dampening
    pnl = -abs(expiry_pnl)
    pnl += pf.perp_amount * (scen.spot_shock - 1.0) * pf.perp_price * scen.dampening
    for c in pf.collaterals:
        if c.risk_cancelling:
            pnl += c.amount * c.price / pf.stable_price * (scen.spot_shock - 1.0) * scen.dampening
    return pnl


@pytest.mark.parametrize(
    "scen",
    [
        pm2.Scenario(spot_shock=1.1, vol_shock="linear", dampening=0.5),
        pm2.Scenario(spot_shock=0.9, vol_shock="abs", dampening=0.25),
        pm2.Scenario(spot_shock=1.1, vol_shock="linear"),
        pm2.Scenario(spot_shock=1.0, vol_shock="abs", dampening=3.0),
        pm2.Scenario(spot_shock=0.34, vol_shock="linear", dampening=0.054),
    ],
    ids=["linear-1.1-damp0.5", "abs-0.9-damp0.25", "linear-1.1", "abs-1-damp3", "linear-0.34-tail"],
)
@pytest.mark.parametrize("engine", ["kernel", "reference"])
def test_skew_scenario_with_spot_shock_and_dampening(scen, engine):
    pf = _portfolio()
    prm = _params(pm2.Scenario(spot_shock=1.0, vol_shock="none"), scen)
    res = pm2.evaluate(pf, prm, engine=engine)
    expected = _direct_skew_pnl(pf, prm, scen)
    assert math.isclose(res.skew_pnl[scen.vol_shock], expected, rel_tol=RTOL), (res.skew_pnl, expected)
    # the spot move reaches the linear instruments only: with no perp and no collateral the skew
    # P&L is the same at every spot shock
    bare = dataclasses.replace(pf, perp_amount=0.0, collaterals=())
    at_one = pm2.evaluate(bare, _params(dataclasses.replace(scen, spot_shock=1.0)), engine=engine)
    moved = pm2.evaluate(bare, _params(scen), engine=engine)
    assert moved.scenario_pnl[0] == at_one.scenario_pnl[0]


def test_skew_spot_move_hand_numbers():
    """The linear part of a skew scenario at spot shock 1.1, dampening 0.5, by hand: perp
    -1.5 x 0.1 x 3002 x 0.5 = -225.15; collateral 0.8 x 3000 x 0.1 x 0.5 = +120; sum -105.15."""
    pf = dataclasses.replace(_portfolio(), options=(), feeds=())
    scen = pm2.Scenario(spot_shock=1.1, vol_shock="linear", dampening=0.5)
    res = pm2.evaluate(pf, _params(scen))
    assert math.isclose(res.skew_pnl["linear"], -105.15, rel_tol=1e-13)


def test_skew_scenario_sets_the_margin():
    """A skew scenario with a large spot rise (the book is net short) is the worst scenario and sets IM and MM."""
    pf = _portfolio()
    scen = pm2.Scenario(spot_shock=1.5, vol_shock="abs", dampening=1.0)
    prm = _params(pm2.Scenario(spot_shock=1.0, vol_shock="none"), scen)
    res = pm2.evaluate(pf, prm)
    expected = _direct_skew_pnl(pf, prm, scen)
    assert res.worst_scenario == 1 and math.isclose(res.min_span, expected, rel_tol=RTOL)
    mm_cont = res.mm_perp_cont + res.mm_option_cont + res.mm_base_cont
    assert math.isclose(res.mm_requirement, -expected * prm.margin.mm_factor + mm_cont, rel_tol=RTOL)


def test_skew_spot_shock_accepted_by_every_reader(tmp_path):
    case = {
        "Scenario": {
            "Cash": 0,
            "Collaterals": [],
            "SpotPrice": 3000.0,
            "SpotConfidence": 1.0,
            "NumPerps": 2.0,
            "PerpPrice": 3000.0,
            "PerpConfidence": 1.0,
            "UnrealisedPerpPNL": 0.0,
            "UnrealisedFunding": 0.0,
            "StablePrice": 1.0,
            "Options": [],
            "OptionFeeds": [],
        },
        "Parameters": pm2.params_to_json(_params(pm2.Scenario(1.2, "linear", 0.5))),
    }
    res = pm2.evaluate(*_portfolio_and_params(case))
    # a gain: only the options' expiry P&L is turned into -|P&L| in a skew scenario
    assert math.isclose(res.skew_pnl["linear"], 2.0 * 0.2 * 3000.0 * 0.5, rel_tol=1e-13)
    toml = tmp_path / "p.toml"
    toml.write_text(
        pm2.preset_path()
        .read_text()
        .replace('{ vol_shock = "linear" }', '{ vol_shock = "linear", spot_shock = 1.1, dampening = 0.5 }')
    )
    skew = [s for s in pm2.load_preset(toml).scenarios if s.vol_shock == "linear"]
    assert skew == [pm2.Scenario(spot_shock=1.1, vol_shock="linear", dampening=0.5, tail=None)]


def _portfolio_and_params(case):
    parsed = pm2.parse_case(case)
    return parsed.portfolio, parsed.params


def test_explicit_fixed_forward_portion():
    """ExpiryFeed.forward_fixed (IForwardFeed.getForwardPricePortions) overrides the 30-minute rule;
    given the rule's own split it changes nothing."""
    secs = 600
    fixed_rule, variable_rule = pm2.forward_portions(3000.0, secs)
    assert math.isclose(float(fixed_rule), 3000.0 * 1200 / 1800) and math.isclose(float(variable_rule), 1000.0)
    fixed, variable = pm2.forward_portions([3000.0, 3000.0], [secs, secs], [np.nan, 500.0])
    assert fixed.tolist() == [2000.0, 500.0] and variable.tolist() == [1000.0, 2500.0]
    pf = _portfolio()
    feed = pf.feeds[0]
    same = dataclasses.replace(pf, feeds=(dataclasses.replace(feed, forward_fixed=0.0),))
    prm = pm2.load_preset()
    assert np.array_equal(pm2.evaluate(pf, prm).scenario_pnl, pm2.evaluate(same, prm).scenario_pnl)
    # half the forward fixed: F_s = F/2 * m + F/2, so +18 % on the spot is +9 % on the forward
    half = dataclasses.replace(pf, feeds=(dataclasses.replace(feed, forward_fixed=feed.forward / 2),))
    up18, up9 = pm2.Scenario(1.18, "up"), pm2.Scenario(1.09, "up")
    options_half = pm2.evaluate(half, _params(up18)).scenario_pnl[0] - _linear_pnl(half, up18)
    options_full = pm2.evaluate(pf, _params(up9)).scenario_pnl[0] - _linear_pnl(pf, up9)
    assert math.isclose(options_half, options_full, rel_tol=1e-12)


def _linear_pnl(pf: pm2.Portfolio, scen: pm2.Scenario) -> float:
    coll = sum(c.amount * c.price for c in pf.collaterals if c.risk_cancelling)
    return (pf.perp_amount * pf.perp_price + coll) * (scen.spot_shock - 1.0) * scen.dampening


def test_confidence_above_one_acts_as_one():
    pf = _portfolio()
    hi = dataclasses.replace(pf, spot_confidence=1.5)
    prm = pm2.load_preset()
    assert pm2.evaluate(hi, prm).oracle_cont == pm2.evaluate(pf, prm).oracle_cont == 0.0


# ------------------------------------------------------------------------------------------------
# Bounds: finite input never gives a non-finite margin (issue 9, 2g)
# ------------------------------------------------------------------------------------------------


def _case_json() -> dict:
    return {
        "Scenario": {
            "Cash": 0,
            "Collaterals": [],
            "SpotPrice": 3000.0,
            "SpotConfidence": 1.0,
            "NumPerps": 0.0,
            "PerpPrice": 0.0,
            "PerpConfidence": 1.0,
            "UnrealisedPerpPNL": 0.0,
            "UnrealisedFunding": 0.0,
            "StablePrice": 1.0,
            "Options": [{"Expiry": 86400 * 10, "Strike": 3000.0, "IsCall": 1, "MarkVol": 0.6, "Amount": -1.0}],
            "OptionFeeds": [
                {
                    "FeedExpiry": 86400 * 10,
                    "Forward": 3000.0,
                    "ForwardConfidence": 1.0,
                    "Rate": 0.0,
                    "RateConfidence": 1.0,
                    "OptionVolConfidences": 1.0,
                }
            ],
        },
        "Parameters": pm2.params_to_json(pm2.load_preset()),
    }


@pytest.mark.parametrize(
    "path, value, field",
    [
        (("Options", 0, "Amount"), 1e306, r"Scenario\.Options\[0\]\.Amount: must be <= 1e\+20"),
        (("SpotPrice",), 1e308, r"Scenario\.SpotPrice: must be <= 1e\+20"),
        (("Options", 0, "Strike"), 1e300, r"Scenario\.Options\[0\]\.Strike"),
        (("Options", 0, "MarkVol"), 1e300, r"Scenario\.Options\[0\]\.MarkVol"),
        (("Options", 0, "Expiry"), 10**15, r"Scenario\.Options\[0\]\.Expiry"),
        (("OptionFeeds", 0, "Forward"), 1e300, r"Scenario\.OptionFeeds\[0\]\.Forward"),
        (("Cash",), -1e300, r"Scenario\.Cash"),
    ],
)
def test_huge_input_names_the_field(path, value, field):
    case = _case_json()
    target = case["Scenario"]
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(ValueError, match=field):
        pm2.parse_case(case)


def test_huge_hand_built_input_names_the_field():
    pf = _portfolio()
    big = dataclasses.replace(pf, options=(dataclasses.replace(pf.options[0], amount=1e306),))
    with pytest.raises(ValueError, match=r"portfolio\.options\[0\]\.amount"):
        pm2.evaluate(big, pm2.load_preset())
    with pytest.raises(ValueError, match=r"portfolio\.spot"):
        pm2.evaluate(dataclasses.replace(pf, spot=1e308), pm2.load_preset())
    with pytest.raises(ValueError, match=r"params\.scenarios\[0\]\.dampening"):
        pm2.evaluate(pf, _params(pm2.Scenario(1.0, "none", dampening=1e300)))
    with pytest.raises(ValueError, match=r"params\.margin\.im_factor"):
        prm = pm2.load_preset()
        pm2.evaluate(pf, dataclasses.replace(prm, margin=dataclasses.replace(prm.margin, im_factor=float("inf"))))


def test_rate_that_overflows_the_discount_names_the_feed():
    pf = _portfolio()
    feed = dataclasses.replace(pf.feeds[0], expiry_seconds=10**10, rate=1e19)
    opts = tuple(dataclasses.replace(o, expiry_seconds=10**10) for o in pf.options)
    with pytest.raises(ValueError, match=r"portfolio\.feeds\[0\]\.rate"):
        pm2.evaluate(dataclasses.replace(pf, feeds=(feed,), options=opts), pm2.load_preset())


def test_largest_allowed_input_gives_finite_margin():
    case = _case_json()
    case["Scenario"]["Options"][0]["Amount"] = -1e20
    case["Scenario"]["SpotPrice"] = 1e20
    case["Scenario"]["Options"][0]["Strike"] = 1e20
    case["Scenario"]["OptionFeeds"][0]["Forward"] = 1e20
    res = pm2.evaluate(*_portfolio_and_params(case))
    assert math.isfinite(res.im) and math.isfinite(res.mm) and res.im_requirement > 0.0
