"""SPAN files generated from the schema (marginkernel.span.sample), one per variant the published
format allows: period legs (<pLeg>) and tier legs (<tLeg>), intra-commodity tiers, look-ahead in the
file, extreme scan points of each clearing house, futures carry, the net-option-value rule.

Every expected margin is worked out by hand in the test from the generator's round inputs:
underlying IDX at 1000 (STK1 at 1050), price scan 9 % (NSE layout) or 10 % (Takasbank layouts) of
it, rate 7 %, futures F = round(S e^{rT}, 2) in the NSE layout (carry) and F = S otherwise.
"""

from __future__ import annotations

import dataclasses
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from marginkernel import span
from marginkernel.span import sample

B, DT = 0.07, 1 / 365  # NSE layout: futures carry (intrRate) and the file's lookAheadYears


@pytest.fixture(scope="module")
def nse():
    return span.parse_span(span.sample_xml("nse", n_underlyings=1, n_strikes=1))


@pytest.fixture(scope="module")
def takas():
    return span.parse_span(span.sample_xml("takasbank", n_underlyings=2, n_strikes=1))


@pytest.fixture(scope="module")
def tiers():
    return span.parse_span(span.sample_xml("tiers", n_underlyings=1, n_strikes=1))


def _row(result, cc="IDX"):
    return result.by_commodity.set_index("cc").loc[cc]


def _pos(contracts, quantities):
    return pd.DataFrame({"contract": contracts, "quantity": quantities})


# ---- the file's own parameters ---------------------------------------------------------------


def test_look_ahead_and_points_come_from_the_file(nse, takas):
    assert nse.look_ahead == pytest.approx(1 / 365, rel=1e-8)  # <lookAheadYears>0.002739726
    assert takas.look_ahead is None  # the Takasbank layout states none: regeneration uses 1/250
    # extreme points: NSE 2 x scan range covering 35 %, Takasbank 3 x covering 32 %
    for f, mult, cover in ((nse, 2.0, 0.35), (takas, 3.0, 0.32)):
        ext = f.scan_points.iloc[14:16]
        assert ext["price_mult"].tolist() == [mult, -mult] and ext["weight"].tolist() == [cover, cover]
        assert ext["paired_point"].tolist() == [15, 16]
    # a Takasbank-layout future (scan 100, no carry): point 16 = 0.32 * 3 * 100 = 96, point 13 = 100
    row = takas.contracts.index[takas.contracts["contract"] == "FUT:IDX:202401"][0]
    assert takas.risk_arrays[row, 15] == pytest.approx(96.0, abs=1e-6)
    assert takas.risk_arrays[row, 12] == pytest.approx(100.0, abs=1e-6)
    regen = span.regenerate_arrays(takas)
    assert regen.look_ahead == span.DEFAULT_LOOK_AHEAD
    assert regen.arrays[row, 15] == pytest.approx(96.0, abs=1e-4)  # 0.32 * 3 * 100 from the file's points


def test_look_ahead_days_per_year():
    xml = span.sample_xml("nse", n_underlyings=1, n_strikes=0).replace(
        "<lookAheadYears>0.002739726</lookAheadYears>", "<lookAheadDays>1</lookAheadDays><daysPerYear>252</daysPerYear>"
    )
    assert span.parse_span(xml).look_ahead == pytest.approx(1 / 252, rel=1e-15)


def test_futures_carry_term(nse):
    """F = 1004.61 (1000 e^{0.07 * 24/365}), scan 90: the published array has the carry term at the
    points with no price move, which the regeneration reproduces with the file's look-ahead."""
    row = nse.contracts.index[nse.contracts["contract"] == "FUT:IDX:20240125"][0]
    carry = 1004.61 * (1 - math.exp(-B * DT))  # = 0.19265
    np.testing.assert_allclose(nse.risk_arrays[row, :2], [carry, carry], atol=1e-6)
    # point 13 (price -1 scan range): F - (F - 90) e^{-b dt} = carry + 90 e^{-b dt}
    assert nse.risk_arrays[row, 12] == pytest.approx(carry + 90 * math.exp(-B * DT), abs=1e-6)
    regen = span.regenerate_arrays(nse, price_moves="fraction")
    assert regen.look_ahead == pytest.approx(0.002739726)
    np.testing.assert_allclose(regen.arrays[row], nse.risk_arrays[row], atol=2e-6)
    # the carry-free formula (-w cvf dS) misses it
    assert nse.risk_arrays[row, 0] - 0.0 > 0.19
    res = span.margin(nse, _pos(["FUT:IDX:20240125"], [1]))
    assert _row(res).scan_risk == pytest.approx(carry + 90 * math.exp(-B * DT), abs=1e-6)
    assert _row(res).active_point == 13


def test_regenerated_option_arrays_match_generator(nse):
    regen = span.regenerate_arrays(nse, price_moves="fraction")
    err = span.error_summary(span.compare_arrays(nse, regen))
    assert err.loc["option", "matched"] == 18 and err.loc["option", "max_rel_err"] < 1e-5
    assert (regen.reason[nse.contracts["kind"] == "PHY"] == "").all()  # physicals without <ra>: regenerated


# ---- spreads: period legs, tier legs, tiers ----------------------------------------------------


def test_plegs_calendar_spread(nse):
    """Long 1 future 4 Jan, short 1 future 11 Jan: the scan loss is w (F0 - F1)(1 - e^{-b dt}) < 0 at
    every point -> scan risk 0; the pLeg spread 1 (4 Jan side A, 11 Jan side B) forms once: 400."""
    s1, _ = nse.intra_spreads
    assert [leg.period for leg in s1.legs] == ["20240104", "20240111"] and s1.rate == 400
    res = span.margin(nse, _pos(["FUT:IDX:20240104", "FUT:IDX:20240111"], [1, -1]), rules="nse")
    r = _row(res)
    assert r.scan_risk == 0 and r.intra_spreads == 1 and r.intra_charge == 400
    assert r.risk == 400 and r.requirement == 400


def test_plegs_in_priority_order(nse):
    """+1 (4 Jan), -2 (11 Jan), +1 (25 Jan): spread 1 pairs 4 Jan with 11 Jan (400), leaving -1 on
    11 Jan; spread 2 (11 Jan A, 25 Jan B) pairs it with 25 Jan (410): 810."""
    pos = _pos(["FUT:IDX:20240104", "FUT:IDX:20240111", "FUT:IDX:20240125"], [1, -2, 1])
    r = _row(span.margin(nse, pos))
    assert r.intra_spreads == 2 and r.intra_charge == 400 + 410


def test_tier_legs_between_tiers(tiers):
    """Tier 1 = 202401, tier 2 = 202402..202403; tLeg tier 1 (A) against tier 2 (B) at 30."""
    assert [t.number for t in tiers.intra_tiers["IDX"]] == [1, 2]
    both = span.margin(tiers, _pos(["FUT:IDX:202401", "FUT:IDX:202403"], [1, -1]))
    assert _row(both).scan_risk == 0 and _row(both).intra_charge == 30 and _row(both).risk == 30
    # both legs in tier 2: the spread needs tier 1, nothing forms
    none = span.margin(tiers, _pos(["FUT:IDX:202402", "FUT:IDX:202403"], [1, -1]))
    assert _row(none).intra_charge == 0 and _row(none).risk == 0


def test_short_option_minimum_per_tier(tiers):
    """somTiers: tier 1 rate 5, tier 2 rate 3, GROSS: one short call in 202401 and one short put in
    202402 -> 5 + 3 = 8; the Takasbank preset applies it, rules without it drop it."""
    pos = _pos(["OOP:IDX:202401S0:C:1000", "OOP:IDX:202402S0:P:1000"], [-1, -1])
    r = _row(span.margin(tiers, pos, rules="takasbank"))
    assert r.som == 8 and r.risk == max(r.scan_risk + r.intra_charge, 8)  # the two shorts also spread
    off = span.SpanRules(short_option_minimum=False)
    assert _row(span.margin(tiers, pos, rules=off)).som == 0


def test_inter_commodity_credit(takas):
    """STK1 (side A, scan 105) long 1 against IDX (side B, scan 100) short 1, rate 0.5, ratios 1:1:
    price risk = scan risk (no time or vol risk for futures), credit = 0.5 x 1 x wfpr."""
    res = span.margin(takas, _pos(["FUT:STK1:202401", "FUT:IDX:202401"], [1, -1]))
    stk, idx = _row(res, "STK1"), _row(res, "IDX")
    assert stk.scan_risk == pytest.approx(105) and idx.scan_risk == pytest.approx(100)
    assert stk.inter_credit == pytest.approx(52.5) and idx.inter_credit == pytest.approx(50)
    assert stk.risk == pytest.approx(52.5) and idx.risk == pytest.approx(50)


# ---- clearing-house rules ----------------------------------------------------------------------


def test_net_option_value_rule(nse):
    """Short 1 call (25 Jan, K 1000, value 22.79): NSE requirement = max(0, risk - NOV) with
    NOV = -22.79, i.e. risk + 22.79; Takasbank reports NOV and keeps the risk."""
    short = _pos(["OOP:IDX:20240125:C:1000"], [-1])
    r = _row(span.margin(nse, short, rules="nse"))
    assert r.net_option_value == pytest.approx(-22.79)
    assert r.requirement == pytest.approx(r.risk + 22.79, abs=1e-12)
    takasbank = dataclasses.replace(span.rules("takasbank"), currency=None)  # its totals are in TRY
    t = _row(span.margin(nse, short, rules=takasbank))
    assert t.requirement == t.risk == r.risk
    # a long call loses at most its value: risk - NOV = scan - 22.79 <= 0 up to the 2-decimal value
    long_ = _row(span.margin(nse, _pos(["OOP:IDX:20240125:C:1000"], [1]), rules="nse"))
    assert long_.net_option_value == pytest.approx(22.79)
    assert 0 <= long_.requirement <= 0.005 and long_.scan_risk > 10


def test_rules_presets_and_currency(takas):
    assert set(span.rule_presets()) >= {"nse", "takasbank"}
    for name in ("nse", "takasbank"):
        r = span.rules(name)
        assert r.name == name and r.as_of and r.sources and r.clearing_house
    assert span.rules("nse").net_option_value == "subtract"
    assert span.rules("takasbank").net_option_value == "report" and span.rules("takasbank").currency == "TRY"
    # totals in USD through the file's curConv USD -> TRY 80: 100 TRY of risk = 1.25 USD
    pos = _pos(["FUT:IDX:202401"], [1])
    usd = span.margin(takas, pos, rules=span.SpanRules(currency="USD"))
    assert usd.by_account.iloc[0]["currency"] == "USD"
    assert usd.by_account.iloc[0]["requirement"] == pytest.approx(100 / 80)
    with pytest.raises(ValueError, match=r"rules.currency: the file has no <curConv> from TRY to EUR"):
        span.margin(takas, pos, rules=span.SpanRules(currency="EUR"))
    with pytest.raises(ValueError, match=r"unknown SPAN rules preset 'cme'"):
        span.rules("cme")
    with pytest.raises(ValueError, match=r"rules.net_option_value: must be one of"):
        span.SpanRules(net_option_value="sometimes")


def test_rules_file_unknown_key(tmp_path):
    p = tmp_path / "r.toml"
    p.write_text('[rules]\nname = "x"\nnov = "subtract"\n')
    with pytest.raises(ValueError, match=r"rules.nov: unknown key"):
        span.rules(p)


# ---- reading ------------------------------------------------------------------------------------


def test_products_filter_and_streaming_file(tmp_path):
    path = span.sample_file(tmp_path / "two.spn", "takasbank", n_underlyings=2, n_strikes=1)
    full = span.read_span(path)
    only = span.read_span(path, products=["STK1"])
    assert set(only.contracts["pf_code"]) == {"STK1"} and set(full.contracts["pf_code"]) == {"IDX", "STK1"}
    keep = full.contracts["pf_code"] == "STK1"
    np.testing.assert_array_equal(only.risk_arrays, full.risk_arrays[keep.to_numpy()])
    assert len(only.commodities) == 2  # definitions are always read


def test_informational_elements_skipped_margin_changing_refused(nse):
    xml = span.sample_xml("nse", n_underlyings=1, n_strikes=0)
    # descriptive elements the schema allows are skipped
    extra = xml.replace("<o>C</o>", "<alias><aType>T</aType><aVal>x</aVal></alias><o>C</o>", 1)
    assert len(span.parse_span(extra).contracts) == len(span.parse_span(xml).contracts)
    cases = [
        (
            "<intraTiers>",
            "<scanTiers><tier><tn>1</tn></tier></scanTiers><intraTiers>",
            r"ccDef\[cc=IDX\]/<scanTiers>: scanning tiers",
        ),
        ("<intraTiers>", "<rateTiers><tier><tn>1</tn></tier></rateTiers><intraTiers>", r"ccDef\[cc=IDX\]/<rateTiers>"),
        (
            "</somTiers>",
            "</somTiers><spotRate><r>1</r><pe>20240104</pe><sprd>1</sprd><outr>1</outr></spotRate>",
            r"<spotRate>",
        ),
        ("<o>C</o>", "<bogus>1</bogus><o>C</o>", r"opt\[cId=\d+\]/<bogus>: unknown element"),
        ("<riskExponent>0</riskExponent>", "<riskExponent>1</riskExponent>", r"ccDef\[cc=IDX\]/<riskExponent>"),
        (
            "</dSpread>",
            "<rpLeg><cc>IDX</cc><rpNum>1</rpNum><rs>A</rs><i>1</i></rpLeg></dSpread>",
            r"dSpread\[0\]/<rpLeg>",
        ),
        ("</exchange>", "<cmbPf><pfId>99</pfId></cmbPf></exchange>", r"exchange/<cmbPf>: combination portfolios"),
        (
            "<volScanPct>0.25</volScanPct>",
            "<volScanPct>0.25</volScanPct><priceScanDown>5</priceScanDown>",
            r"scanRate/<priceScanDown>",
        ),
        (
            "</clearingOrg>",
            "<superSpreads><dSpread/></superSpreads></clearingOrg>",
            r"<superSpreads>: superSpreads are not supported",
        ),
        (
            "<rs>A</rs><i>1</i></pLeg>",
            "<rs>A</rs><i>1</i><rate><r>1</r><val>5</val></rate></pLeg>",
            r"pLeg\[0\]/<rate>: leg-specific rates are not supported",
        ),
        (
            "<lookAheadYears>",
            "<minIntExDeltaPct>0.5</minIntExDeltaPct><lookAheadYears>",
            r"clearingOrg/<minIntExDeltaPct>",
        ),
    ]
    for old, new, match in cases:
        assert old in xml, old
        with pytest.raises(ValueError, match=match):
            span.parse_span(xml.replace(old, new, 1))


def test_reader_not_loaded_by_import_marginkernel():
    code = "import sys, marginkernel; print(any(m.startswith('marginkernel.span') for m in sys.modules))"
    src = str(Path(span.__file__).resolve().parents[2])  # the folder holding marginkernel
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env={**os.environ, "PYTHONPATH": src}
    )
    assert out.stdout.strip() == "False"


def test_generator_formulas_are_independent_of_the_kernel():
    """The generator's futures formula at the points, written out: w (F - (F + 90 m) e^{-b dt})."""
    lay = sample._LAYOUTS["nse"]
    pts = sample.points_arrays(lay)
    got = sample.futures_array(lay, pts, f=1000.58, scan=90.0, b=B)
    m = np.array([0, 0, 1, 1, -1, -1, 2, 2, -2, -2, 3, 3, -3, -3, 6, -6]) / 3
    w = np.array([1.0] * 14 + [0.35, 0.35])
    np.testing.assert_allclose(got, w * (1000.58 - (1000.58 + 90 * m) * math.exp(-B * DT)), rtol=1e-15)


def test_period_leg_rows():
    """A pLeg takes the months starting with its period's digits: a weekly expiry itself, or every
    period of a month; tier legs take their tier (Tier.contains compares on the bounds' precision)."""
    from marginkernel.spreads import SpreadLeg, Tier, leg_rows

    months = ["20240104", "20240111", "20240201"]
    assert leg_rows(SpreadLeg("IDX", 0, "A", 1.0, period="20240111"), (), months) == [1]
    assert leg_rows(SpreadLeg("IDX", 0, "A", 1.0, period="202401"), (), months) == [0, 1]
    assert leg_rows(SpreadLeg("IDX", 2, "B", 1.0), (Tier(1, None, "202401"), Tier(2, "202402")), months) == [2]


@pytest.mark.parametrize("layout", ["nse", "takasbank", "tiers"])
def test_batched_options_equal_the_checked_path(layout, monkeypatch):
    """Series are read all at once when every value passes; the element-by-element path (which
    names bad elements) gives the same tables."""
    xml = span.sample_xml(layout, n_underlyings=2, n_strikes=2)
    fast = span.parse_span(xml)
    monkeypatch.setattr(span.records, "options_fast", lambda *args: None)
    slow = span.parse_span(xml)
    pd.testing.assert_frame_equal(fast.contracts, slow.contracts)
    pd.testing.assert_frame_equal(fast.expiries, slow.expiries)
    np.testing.assert_array_equal(fast.risk_arrays, slow.risk_arrays)


def test_reader_restores_the_cyclic_collector():
    import gc

    assert gc.isenabled()
    span.parse_span(span.sample_xml("nse", n_underlyings=1, n_strikes=0))
    assert gc.isenabled()
    with pytest.raises(ValueError, match="malformed"):
        span.parse_span("<spanFile><pointInTime>")
    assert gc.isenabled()
    gc.disable()
    try:
        span.parse_span(span.sample_xml("nse", n_underlyings=1, n_strikes=0))
        assert not gc.isenabled()  # left as the caller had it
    finally:
        gc.enable()
