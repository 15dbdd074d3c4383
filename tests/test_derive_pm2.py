"""Derive PM2 conformance: marginkernel's ``derive-pm2`` model against Derive's own portfolio cases.

The oracle cases (derivexyz/v2-core test/risk-managers/unit-tests/PMRM_2/portfolio_cases, BUSL-1.1,
used for non-production testing) are read from ``<repo>/../shared/oracles/derive-pmrm2`` or from
``$MARGINKERNEL_ORACLES/derive-pmrm2``; every oracle test skips when the folder is absent. Nothing
from them is copied into the repository.

Each case is checked component by component, each with its own stated tolerance (Derive's own
Solidity harness accepts 1e-8 relative; we hold the double-precision model to 1e-9):

* regular, tail and skew scenario P&L: 1e-9 relative, 1e-8 absolute near zero;
* contingencies (forward/basis, perp, base, option, oracle) and loss factors: same;
* mark-to-market (option, per expiry, collateral, perp, portfolio): same;
* IM and MM: same;
* worst scenario: the worst value of each class to the same tolerance, its identity only where it
  is unique (ties, e.g. box spreads, have no single answer);
* diagnostics (static discount factors, vol-shock multipliers, evaluated up/down vols): 1e-12 rel.

A case/component known not to match is ``xfail(strict=True)`` with its reason (KNOWN_MISMATCHES);
docs/derive-pm2.md lists the same.
"""

from __future__ import annotations

import copy
import functools
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest

from marginkernel import derive_pm2 as pm2


def _oracle_dir() -> Path:
    root = os.environ.get("MARGINKERNEL_ORACLES")
    base = Path(root) if root else Path(__file__).resolve().parent.parent.parent / "shared" / "oracles"
    sub = base / "derive-pmrm2"
    if not sub.is_dir() and base.is_dir() and any(base.glob("test_*.json")):
        return base  # the variable may point straight at the case folder
    return sub


ORACLES = _oracle_dir()
CASE_FILES = sorted(ORACLES.glob("test_*.json"), key=lambda p: int(p.stem.split("_")[1])) if ORACLES.is_dir() else []

RTOL = 1e-9
ATOL = 1e-8
DIAG_RTOL = 1e-12

#: (case stem, component) -> exact reason; these are xfail(strict=True)
KNOWN_MISMATCHES = {
    ("test_66_misc_post_expiry", "discount_factors"): (
        "expired expiry (T = 0): PMRMLib_2._addStaticDiscount gives staticDiscountPos = "
        "BASE_STATIC_DISCOUNT * exp(0) = 0.95, which we follow; Derive's Python case generator reports "
        "1.0. No loss differs: the only option is short, so the negative-value factor min(1/df, "
        "1.04 * exp(0)) = 1 is the one used, and all scenario P&L is 0 either way."
    ),
    ("test_66_misc_post_expiry", "skew_diagnostics"): (
        "expired option: Derive's Python case generator reports linear_mult_cap = abs_mult_cap = k_star = "
        "linear_multiplier = abs_multiplier = 0, while PMRMLib_2._getExpirySkewedShockedMTM computes them "
        "from sqrt(T) = 0 (cap = base cap 0.15, k* = MIN_K_STAR, multiplier 1 + clamp(k * cap / k*)), which "
        "we follow. Black-76 at T = 0 is intrinsic whatever the vol, so the skew P&L (0) agrees."
    ),
}


def _case_params(component: str):
    if not CASE_FILES:
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"oracle folder absent: {ORACLES}"), id="no-oracles")]
    out = []
    for path in CASE_FILES:
        reason = KNOWN_MISMATCHES.get((path.stem, component))
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        out.append(pytest.param(path, marks=marks, id=path.stem))
    return out


@functools.cache
def _evaluated(path: Path):
    case = pm2.load_case(path)
    return case, pm2.evaluate(case.portfolio, case.params)


def assert_close(actual, expected, what: str, rtol: float = RTOL, atol: float = ATOL):
    actual = np.atleast_1d(np.asarray(actual, dtype=float))
    expected = np.atleast_1d(np.asarray(expected, dtype=float))
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != expected {expected.shape}"
    err = np.abs(actual - expected)
    bad = err > np.maximum(atol, rtol * np.abs(expected))
    assert not bad.any(), (
        f"{what}: {int(bad.sum())} of {bad.size} differ; worst at {int(np.argmax(err))}: "
        f"{actual.ravel()[np.argmax(err)]!r} vs {expected.ravel()[np.argmax(err)]!r}"
    )


# ------------------------------------------------------------------------------------------------
# Oracle conformance, one test per component
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", _case_params("regular"))
def test_regular_losses(path):
    case, res = _evaluated(path)
    assert_close(res.pnl_of("regular"), case.expected.regular, "regular scenario P&L")


@pytest.mark.parametrize("path", _case_params("tail"))
def test_tail_losses(path):
    case, res = _evaluated(path)
    assert_close(res.pnl_of("tail"), case.expected.tail, "tail scenario P&L")


@pytest.mark.parametrize("path", _case_params("skew"))
def test_skew_losses(path):
    case, res = _evaluated(path)
    assert set(res.skew_pnl) == set(case.expected.skew)
    for kind, value in case.expected.skew.items():
        assert_close(res.skew_pnl[kind], value, f"{kind} skew P&L")


@pytest.mark.parametrize("path", _case_params("contingencies"))
def test_contingencies(path):
    case, res = _evaluated(path)
    e = case.expected
    assert_close(res.basis_contingency, e["ForwardContingency"], "ForwardContingency")
    # Derive's JSON shows each contingency as a (negative) margin contribution
    for name, ours in (
        ("MMPerpCont", res.mm_perp_cont),
        ("IMPerpCont", res.im_perp_cont),
        ("MMBaseCont", res.mm_base_cont),
        ("IMBaseCont", res.im_base_cont),
        ("MMOptionCont", res.mm_option_cont),
        ("IMOptionCont", res.im_option_cont),
        ("OracleCont", res.oracle_cont),
    ):
        assert_close(-ours, e[name], name)
    assert_close(res.mm_perp_cont + res.im_perp_cont, -e["IMPerpContNormal"], "IMPerpContNormal")
    assert_close(res.mm_option_cont + res.im_option_cont, -e["IMOptionContNormal"], "IMOptionContNormal")
    assert_close(res.mm_base_cont + res.im_base_cont, -e["IMBaseContNormal"], "IMBaseContNormal")
    assert_close(res.mm_loss_factor, e["MMLossFactor"], "MMLossFactor")
    assert_close(res.im_loss_factor, e["IMLossFactor"], "IMLossFactor")


@pytest.mark.parametrize("path", _case_params("mark_to_market"))
def test_mark_to_market(path):
    case, res = _evaluated(path)
    e = case.expected
    assert_close(res.option_mtm, e["OptionMTM"], "OptionMTM")
    assert_close(res.collateral_mtm, e["CollateralMTM"], "CollateralMTM")
    assert_close(res.perp_mtm, e["PerpMTM"], "PerpMTM")
    assert_close(res.funding, e["UnrealisedFunding"], "UnrealisedFunding")
    assert_close(res.cash, e["Cash"], "Cash")
    assert_close(res.portfolio_mtm, e["PortfolioMTM"], "PortfolioMTM")
    # Derive lists expiries in OptionFeeds order
    order = [
        int(np.flatnonzero(res.expiries == f.expiry_seconds)[0])
        for f in case.portfolio.feeds
        if f.expiry_seconds in res.expiries
    ]
    assert_close(res.option_mtm_per_expiry[order], e["OptionMTMPerExpiry"], "OptionMTMPerExpiry")


@pytest.mark.parametrize("path", _case_params("im_mm"))
def test_im_mm(path):
    case, res = _evaluated(path)
    assert_close(res.im, case.expected["IM"], "IM")
    assert_close(res.mm, case.expected["MM"], "MM")
    assert res.mm_requirement >= 0.0 and res.im_requirement >= 0.0


@pytest.mark.parametrize("path", _case_params("worst"))
def test_worst_scenario(path):
    case, res = _evaluated(path)
    e = case.expected
    for kind, key in (("regular", "worst_reg_loss"), ("tail", "worst_tail_loss")):
        assert_close(res.pnl_of(kind).min(), e[key], key)
    assert_close(min(res.skew_pnl.values()), e["worst_skew_loss"], "worst_skew_loss")
    # identity of the overall worst, where it is unique
    pnl = np.append(res.scenario_pnl, res.basis_contingency)
    worst = pnl.min()
    ties = np.abs(pnl - worst) <= np.maximum(ATOL, RTOL * abs(worst))
    if ties.sum() == 1:
        basis = res.worst_scenario == len(res.scenarios)
        label = "fwd_contingency" if basis else res.scenarios[res.worst_scenario].kind
        assert label == e["worst_all_scenarios"]
        if label == "regular":
            s = res.scenarios[res.worst_scenario]
            direction = {"up": 1, "none": 0, "down": -1}[s.vol_shock]
            assert math.isclose(s.spot_shock - 1.0, e["worst_reg_scenario"][0], abs_tol=1e-12)
            assert direction == e["worst_reg_scenario"][1]


@pytest.mark.parametrize("path", _case_params("discount_factors"))
def test_static_discounts(path):
    case, res = _evaluated(path)
    order = [
        int(np.flatnonzero(res.expiries == f.expiry_seconds)[0])
        for f in case.portfolio.feeds
        if f.expiry_seconds in res.expiries
    ]
    expected = np.asarray(case.expected["discount_factors"], dtype=float).reshape(-1, 2)
    assert_close(res.discount_factors[order], expected, "discount_factors", rtol=DIAG_RTOL, atol=0.0)


@pytest.mark.parametrize("path", _case_params("vol_shocks"))
def test_vol_shocks(path):
    case, res = _evaluated(path)
    e, pf, vs = case.expected, case.portfolio, case.params.vol_shock
    index = {int(t): i for i, t in enumerate(res.expiries)}
    up = np.array([res.vol_shock_up[index[o.expiry_seconds]] for o in pf.options])
    down = np.array([res.vol_shock_down[index[o.expiry_seconds]] for o in pf.options])
    vol = np.array([o.vol for o in pf.options])
    assert_close(up, np.asarray(e["VolShockUpMultiplier"], float).ravel(), "VolShockUpMultiplier", DIAG_RTOL, 0.0)
    assert_close(down, np.asarray(e["VolShockDownMultiplier"], float).ravel(), "VolShockDownMultiplier", DIAG_RTOL, 0.0)
    assert_close(
        np.maximum(vs.min_vol_up, vol * up),
        np.asarray(e["VolShockUpEvaluated"], float).ravel(),
        "VolShockUpEvaluated",
        DIAG_RTOL,
        0.0,
    )
    assert_close(
        vol * down, np.asarray(e["VolShockDownEvaluated"], float).ravel(), "VolShockDownEvaluated", DIAG_RTOL, 0.0
    )


@pytest.mark.parametrize("path", _case_params("skew_diagnostics"))
def test_skew_diagnostics(path):
    """Per-option skew inputs the case generator reports: k, caps, k*, LINEAR / ABS multipliers."""
    case, _ = _evaluated(path)
    raw = json.loads(path.read_text())["Scenario"]["Options"]
    if not raw:
        return
    pf, sk = case.portfolio, case.params.skew_shock
    feeds = {f.expiry_seconds: f for f in pf.feeds}
    strike = np.array([o.strike for o in pf.options])
    secs = np.array([o.expiry_seconds for o in pf.options], dtype=float)
    fwd = np.array([sum(pm2.forward_portions(feeds[o.expiry_seconds].forward, o.expiry_seconds)) for o in pf.options])
    sqrt_tau = np.sqrt(secs / pm2.SECONDS_PER_YEAR)
    vol_param = sk.vol_param_static + sqrt_tau * sk.vol_param_scale
    k_star = np.maximum(sk.min_k_star, sqrt_tau * sk.width_scale * vol_param)
    ours = {
        "k": np.log(strike / fwd),
        "linear_mult_cap": sk.linear_c_base * sqrt_tau + sk.linear_base_cap,
        "abs_mult_cap": sk.abs_c_base * sqrt_tau + sk.abs_base_cap,
        "k_star": k_star,
        "linear_multiplier": pm2.skew_multipliers(strike, fwd, secs, sk, "linear"),
        "abs_multiplier": pm2.skew_multipliers(strike, fwd, secs, sk, "abs"),
    }
    for key, value in ours.items():
        assert_close(value, [o[key] for o in raw], key, DIAG_RTOL, 1e-15)


@pytest.mark.parametrize("path", _case_params("engines"))
def test_kernel_matches_reference_engine(path):
    case, res = _evaluated(path)
    ref = pm2.evaluate(case.portfolio, case.params, engine="reference")
    scale = max(1.0, float(np.abs(res.expiry_pnl).max(initial=0.0)), abs(res.portfolio_mtm))
    assert_close(
        res.scenario_pnl, ref.scenario_pnl, "scenario P&L, kernel vs reference", rtol=1e-10, atol=1e-12 * scale
    )
    assert_close([res.im, res.mm], [ref.im, ref.mm], "IM/MM, kernel vs reference", rtol=1e-10, atol=1e-12 * scale)


@pytest.mark.skipif(not CASE_FILES, reason=f"oracle folder absent: {ORACLES}")
def test_preset_is_the_fixture_baseline():
    """The packaged preset equals the Parameters of Derive's baseline (non-sweep) cases."""
    preset = pm2.load_preset()
    baseline = pm2.load_case(ORACLES / "test_20_structures_basic_put.json").params
    assert [s.kind for s in preset.scenarios] == [s.kind for s in baseline.scenarios]
    assert [s.vol_shock for s in preset.scenarios] == [s.vol_shock for s in baseline.scenarios]
    assert_close(
        [s.spot_shock for s in preset.scenarios], [s.spot_shock for s in baseline.scenarios], "spot", 1e-15, 0.0
    )
    assert_close([s.dampening for s in preset.scenarios], [s.dampening for s in baseline.scenarios], "damp", 1e-15, 0.0)
    for group in ("vol_shock", "skew_shock", "margin", "basis", "other"):
        ours, theirs = getattr(preset, group), getattr(baseline, group)
        for name in type(ours).__dataclass_fields__:
            assert math.isclose(getattr(ours, name), getattr(theirs, name), rel_tol=1e-15), f"{group}.{name}"


# ------------------------------------------------------------------------------------------------
# No oracles needed: preset, bad input, synthetic sanity
# ------------------------------------------------------------------------------------------------


def test_preset_loads():
    p = pm2.load_preset()
    kinds = [s.kind for s in p.scenarios]
    assert (kinds.count("regular"), kinds.count("tail"), kinds.count("skew")) == (23, 6, 2)
    assert p.name == "derive-pm2" and p.as_of == "2025-02-19" and "v2-core" in p.source
    assert p.margin.mm_factor == 0.8 and p.vol_shock.min_vol_up == 0.45


def _synthetic_case() -> dict:
    """A small hand-made case (not oracle data) in the portfolio-case JSON layout."""
    return {
        "Scenario": {
            "Cash": 1000.0,
            "Collaterals": [
                {
                    "Name": "ETH",
                    "Amount": 2.0,
                    "Price": 3000.0,
                    "Confidence": 1.0,
                    "IsRiskCancelling": True,
                    "IMHaircut": 0.01,
                    "MMHaircut": 0.02,
                },
            ],
            "SpotPrice": 3000.0,
            "SpotConfidence": 1.0,
            "NumPerps": -1.0,
            "PerpPrice": 3001.0,
            "PerpConfidence": 1.0,
            "UnrealisedPerpPNL": 0.0,
            "UnrealisedFunding": 0.0,
            "StablePrice": 1.0,
            "StableConfidence": 1.0,
            "Options": [
                {"Expiry": 14 * 86400, "Strike": 3200.0, "IsCall": 1, "MarkVol": 0.6, "Amount": -3.0},
                {"Expiry": 14 * 86400, "Strike": 2800.0, "IsCall": 0, "MarkVol": 0.65, "Amount": 1.0},
                {"Expiry": 60 * 86400, "Strike": 3000.0, "IsCall": 1, "MarkVol": 0.55, "Amount": 2.0},
            ],
            "OptionFeeds": [
                {
                    "FeedExpiry": 14 * 86400,
                    "Forward": 3005.0,
                    "ForwardConfidence": 1.0,
                    "Rate": 0.05,
                    "RateConfidence": 1.0,
                    "OptionVolConfidences": 1.0,
                },
                {
                    "FeedExpiry": 60 * 86400,
                    "Forward": 3020.0,
                    "ForwardConfidence": 1.0,
                    "Rate": 0.05,
                    "RateConfidence": 1.0,
                    "OptionVolConfidences": 1.0,
                },
            ],
        },
        "Parameters": pm2.params_to_json(pm2.load_preset()),
    }


def test_synthetic_case_evaluates():
    case = pm2.parse_case(_synthetic_case())
    res = pm2.evaluate(case.portfolio, case.params)
    ref = pm2.evaluate(case.portfolio, case.params, engine="reference")
    assert_close(res.scenario_pnl, ref.scenario_pnl, "kernel vs reference", 1e-10, 1e-9)
    assert res.scenario_pnl.shape == (31,)
    assert res.im_requirement >= res.mm_requirement >= 0.0
    assert math.isclose(res.im, res.portfolio_mtm - res.im_requirement)
    assert res.basis_contingency <= 0.0 and res.min_span <= 0.0
    # 3 short calls at 3200 with nothing long at that strike: 3 naked shorts
    assert math.isclose(res.mm_option_cont, 3 * 3000.0 * 0.003)


def test_empty_portfolio_needs_no_margin():
    obj = _synthetic_case()
    obj["Scenario"].update(Cash=0, Collaterals=[], NumPerps=0, Options=[], OptionFeeds=[])
    case = pm2.parse_case(obj)
    res = pm2.evaluate(case.portfolio, case.params)
    assert res.im == 0.0 and res.mm == 0.0 and not res.scenario_pnl.any()


def test_naked_shorts_follow_the_contract_loop():
    assert pm2.naked_shorts([100.0, 100.0], [-3.0, 1.0]) == 2.0  # call short 3 vs put long 1, same strike
    assert pm2.naked_shorts([100.0, 100.0], [-1.0, -2.0]) == 3.0
    assert pm2.naked_shorts([100.0, 110.0], [-1.0, 5.0]) == 1.0
    assert pm2.naked_shorts([100.0], [4.0]) == 0.0


@pytest.mark.parametrize(
    "mutate, field",
    [
        (lambda c: c["Scenario"].pop("SpotPrice"), r"Scenario\.SpotPrice: missing"),
        (lambda c: c["Scenario"]["Options"][1].__setitem__("Strike", "abc"), r"Scenario\.Options\[1\]\.Strike"),
        (lambda c: c["Scenario"]["Options"][0].__setitem__("Strike", -5.0), r"Scenario\.Options\[0\]\.Strike"),
        (
            lambda c: c["Scenario"]["Options"][0].__setitem__("MarkVol", float("nan")),
            r"Scenario\.Options\[0\]\.MarkVol",
        ),
        (lambda c: c["Scenario"]["Options"][0].__setitem__("IsCall", "yes"), r"Scenario\.Options\[0\]\.IsCall"),
        (lambda c: c["Scenario"]["Options"][2].__setitem__("Expiry", 99), r"Scenario\.Options\[2\]\.Expiry"),
        (lambda c: c["Scenario"]["Options"][2].__setitem__("Expiry", 1.5), r"Scenario\.Options\[2\]\.Expiry"),
        (lambda c: c["Scenario"]["OptionFeeds"][0].pop("Forward"), r"Scenario\.OptionFeeds\[0\]\.Forward"),
        (
            lambda c: c["Scenario"]["Collaterals"][0].__setitem__("IsRiskCancelling", None),
            r"Scenario\.Collaterals\[0\]\.IsRiskCancelling",
        ),
        (lambda c: c["Scenario"].__setitem__("Options", {}), r"Scenario\.Options: expected a list"),
        (lambda c: c["Scenario"].__setitem__("PerpPrice", 0.0), r"Scenario\.PerpPrice"),
        (
            lambda c: c["Parameters"]["Scenarios"][3].__setitem__("VolShockDirection", "Sideways"),
            r"Parameters\.Scenarios\[3\]\.VolShockDirection",
        ),
        (
            lambda c: c["Parameters"]["Scenarios"][0].__setitem__("SpotShock", 0),
            r"Parameters\.Scenarios\[0\]\.SpotShock",
        ),
        (lambda c: c["Parameters"]["Margin"].pop("IM_LOSS_FACTOR"), r"Parameters\.Margin\.IM_LOSS_FACTOR: missing"),
        (lambda c: c["Parameters"].pop("SkewShock"), r"Parameters\.SkewShock: missing"),
        (
            lambda c: c["Parameters"]["Scenarios"].append(dict(c["Parameters"]["Scenarios"][-1])),
            r"Parameters\.Scenarios: at most one",
        ),
        (lambda c: c.__setitem__("Result", {"reg_losses": [], "tail_losses": [], "skew_losses": []}), r"Result"),
        (lambda c: c.pop("Scenario"), r"case\.Scenario: missing"),
    ],
)
def test_malformed_case_names_the_field(mutate, field):
    obj = copy.deepcopy(_synthetic_case())
    mutate(obj)
    with pytest.raises(ValueError, match=field):
        pm2.parse_case(obj)


def test_malformed_files(tmp_path):
    bad = tmp_path / "broken.json"
    bad.write_text("{ not json")
    with pytest.raises(ValueError, match=r"broken\.json: not valid JSON"):
        pm2.load_case(bad)
    bad.write_text(json.dumps([1, 2]))
    with pytest.raises(ValueError, match="broken: expected a JSON object"):
        pm2.load_case(bad)
    toml = tmp_path / "p.toml"
    toml.write_text(pm2.preset_path().read_text().replace("vol_range_up = 0.5", 'vol_range_up = "x"'))
    with pytest.raises(ValueError, match=r"vol_shock\.vol_range_up"):
        pm2.load_preset(toml)
    toml.write_text(pm2.preset_path().read_text().replace('vol_shock = "linear"', 'vol_shock = "up"'))
    with pytest.raises(ValueError, match=r"scenarios\.skew\[0\]\.vol_shock"):
        pm2.load_preset(toml)


def test_bad_engine_and_hand_built_input():
    case = pm2.parse_case(_synthetic_case())
    with pytest.raises(ValueError, match="engine"):
        pm2.evaluate(case.portfolio, case.params, engine="gpu")
    orphan = pm2.Option(expiry_seconds=123, strike=100.0, is_call=True, amount=1.0, vol=0.5)
    pf = pm2.Portfolio(spot=100.0, options=(orphan,))
    with pytest.raises(ValueError, match=r"portfolio\.options\[0\]\.expiry_seconds"):
        pm2.evaluate(pf, case.params)
