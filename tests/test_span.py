"""SPAN XML 4.00: parser, regeneration of risk arrays with our kernel, margin on published arrays.

Two sets of tests:
* a small hand-written SPAN file (below; synthetic numbers) pins the parser, the bad-input
  errors, the regeneration formula against the NumPy reference and the margin rules against
  values worked out by hand;
* the Borsa Istanbul / Takasbank file in ../shared/oracles/span-takasbank (skipped when absent;
  MARGINKERNEL_ORACLES overrides the oracle directory) checks regeneration against 2,628
  published option arrays and the margin functions on real parameters.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.special import ndtr

from marginkernel import reference, span

# --------------------------------------------------------------------------------------------
# a synthetic SPAN file: 8 scan points, one stock commodity STK (physical, two futures, one
# option series with a call and a put) and one index commodity IDX (physical, one future)
# --------------------------------------------------------------------------------------------

POINTS = [  # price mult, vol mult, weight, paired point
    (0, 1, 1.0, 2),
    (0, -1, 1.0, 1),
    (1, 1, 1.0, 4),
    (1, -1, 1.0, 3),
    (-1, 1, 1.0, 6),
    (-1, -1, 1.0, 5),
    (2, 0, 0.5, 7),
    (-2, 0, 0.5, 8),
]
FUT_STK = [0, 0, -50, -50, 50, 50, -50, 50]  # priceScan 50: loss = -50 * price mult * weight
FUT_IDX = [0, 0, -60, -60, 60, 60, -60, 60]
CALL = [1, 1, -20, -18, 22, 20, -30, 25]
PUT = [0.5, 0.5, 10, 12, -15, -13, 20, -30]


def _ra(values, delta):
    return "<ra><r>1</r>" + "".join(f"<a>{v}</a>" for v in values) + f"<d>{delta}</d></ra>"


def _point(tag, k, pm, vm, w, pair=None):
    extra = f"<pairedPoint>{pair}</pairedPoint>" if pair is not None else ""
    return (
        f"<{tag}><point>{k}</point><priceScanDef><mult>{pm}</mult><numerator>{pm}</numerator>"
        f"<denominator>1</denominator></priceScanDef><volScanDef><mult>{vm}</mult><numerator>{vm}"
        f"</numerator><denominator>1</denominator></volScanDef><weight>{w}</weight>{extra}</{tag}>"
    )


def _fut(cid, pe, p, t, scan, arr):
    return (
        f"<fut><cId>{cid}</cId><pe>{pe}</pe><p>{p}</p><d>1</d><v>0</v><cvf>10</cvf><val>{10 * p}</val>"
        f"<sc>1</sc><setlDate>{pe}28</setlDate><t>{t}</t><undC><exch>X</exch><pfId>1</pfId><cId>1</cId>"
        f"<s>B</s><i>1</i></undC><scanRate><r>1</r><priceScan>{scan}</priceScan><volScan>0</volScan>"
        f"</scanRate>{_ra(arr, 1)}</fut>"
    )


def _leg(cc, side, ratio):
    return f"<tLeg><cc>{cc}</cc><tn>0</tn><rs>{side}</rs><i>{ratio}</i></tLeg>"


def _cc(cc, pfs, som, intra, adj):
    links = "".join(f"<pfLink><exch>X</exch><pfId>{p}</pfId><pfCode>{cc}</pfCode></pfLink>" for p in pfs)
    return (
        f"<ccDef><cc>{cc}</cc><name>{cc}</name><currency>TRY</currency><somMeth>GROSS</somMeth>{links}"
        f"<adjRate><r>1</r><baseR>1</baseR><val>{adj}</val></adjRate>"
        f"<intraTiers><tier><tn>0</tn></tier></intraTiers><interTiers><tier><tn>0</tn></tier></interTiers>"
        f"<somTiers><tier><tn>0</tn><rate><r>1</r><val>{som}</val></rate></tier></somTiers>"
        f"<dSpread><spread>1</spread><chargeMeth>F</chargeMeth><rate><r>1</r><val>{intra}</val></rate>"
        f"{_leg(cc, 'B', 1)}{_leg(cc, 'A', 1)}</dSpread></ccDef>"
    )


SYNTHETIC = (
    '<?xml version="1.0" encoding="ISO-8859-1"?>\n<spanFile><fileFormat>4.00</fileFormat>'
    "<created>202401021830</created><pointInTime><date>20240102</date><isSetl>1</isSetl>"
    "<clearingOrg><ec>TEST</ec><curConv><fromCur>USD</fromCur><toCur>TRY</toCur><factor>30</factor></curConv>"
    "<pointDef><r>1</r>"
    + "".join(_point("scanPointDef", k + 1, pm, vm, w, pair) for k, (pm, vm, w, pair) in enumerate(POINTS))
    + "".join(_point("deltaPointDef", k + 1, pm, 0, w) for k, (pm, w) in enumerate([(-1, 0.25), (0, 0.5), (1, 0.25)]))
    + "</pointDef><exchange><exch>X</exch>"
    "<phyPf><pfId>1</pfId><pfCode>STK</pfCode><name>STK</name><currency>TRY</currency>"
    "<phy><cId>1</cId><pe>00000S</pe><p>100</p><d>1</d><v>0</v><cvf>10</cvf><val>1000</val>"
    "<scanRate><r>1</r><priceScan>0</priceScan><volScan>0</volScan></scanRate>" + _ra([0] * 8, 1) + "</phy></phyPf>"
    "<phyPf><pfId>4</pfId><pfCode>IDX</pfCode><name>IDX</name><currency>TRY</currency>"
    "<phy><cId>1</cId><pe>00000S</pe><p>1000</p><d>0</d><v>0</v><cvf>1</cvf><val>1000</val>"
    "<scanRate><r>1</r><priceScan>0</priceScan><volScan>0</volScan></scanRate>" + _ra([0] * 8, 0) + "</phy></phyPf>"
    "<futPf><pfId>2</pfId><pfCode>STK</pfCode><name>STK FUT</name><currency>TRY</currency>"
    "<undPf><pfId>1</pfId><pfCode>STK</pfCode><pfType>PHY</pfType></undPf>"
    + _fut(11, "202401", 101, 0.1, 50, FUT_STK)
    + _fut(12, "202402", 102, 0.2, 50, FUT_STK)
    + "</futPf><futPf><pfId>5</pfId><pfCode>IDX</pfCode><name>IDX FUT</name><currency>TRY</currency>"
    + _fut(41, "202401", 1001, 0.1, 60, FUT_IDX)
    .replace("<pfId>1</pfId>", "<pfId>4</pfId>")
    .replace("<cvf>10</cvf>", "<cvf>1</cvf>")
    + "</futPf>"
    "<oopPf><pfId>3</pfId><pfCode>STK</pfCode><name>STK OPT</name><exercise>EURO</exercise><currency>TRY</currency>"
    "<priceModel>M</priceModel><undPf><pfId>1</pfId><pfCode>STK</pfCode><pfType>PHY</pfType></undPf>"
    "<series><pe>202401S0</pe><setlDate>20240128</setlDate><t>0.1</t><cvf>10</cvf>"
    "<undC><exch>X</exch><pfId>1</pfId><cId>1</cId><s>B</s><i>1</i></undC>"
    "<intrRate><val>0.05</val></intrRate><divRate><val>0.01</val></divRate>"
    "<scanRate><r>1</r><priceScan>50</priceScan><volScanPct>0.25</volScanPct></scanRate>"
    "<opt><cId>21</cId><o>C</o><k>100</k><p>4.5</p><v>0.3</v><val>45</val>" + _ra(CALL, 0.55) + "</opt>"
    "<opt><cId>22</cId><o>P</o><k>95</k><p>1.5</p><v>0.32</v><val>15</val>" + _ra(PUT, -0.3) + "</opt>"
    "</series></oopPf></exchange>"
    + _cc("STK", [1, 2, 3], 7, 12, 0.8)
    + _cc("IDX", [4, 5], 0, 20, 0.8)
    + "<interSpreads><dSpread><spread>1</spread><chargeMeth>W</chargeMeth><rate><r>1</r><val>0.5</val></rate>"
    + _leg("STK", "A", 10)
    + _leg("IDX", "B", 1)
    + "</dSpread></interSpreads></clearingOrg></pointInTime></spanFile>"
)


@pytest.fixture(scope="module")
def synth():
    return span.parse_span(SYNTHETIC)


def _by_cc(result, account=None):
    df = result.by_commodity
    if account is not None:
        df = df[df["account"] == account]
    return df.set_index("cc")


def test_parse_synthetic(synth):
    s = synth
    assert s.file_format == "4.00" and s.business_date == "20240102" and s.is_settlement
    assert s.n_points == 8 and len(s.delta_points) == 3
    assert s.scan_points["paired_point"].tolist() == [p[3] for p in POINTS]
    assert list(s.contracts["contract"]) == [
        "PHY:STK:00000S",
        "PHY:IDX:00000S",
        "FUT:STK:202401",
        "FUT:STK:202402",
        "FUT:IDX:202401",
        "OOP:STK:202401S0:C:100",
        "OOP:STK:202401S0:P:95",
    ]
    assert list(s.contracts["cc"]) == ["STK", "IDX", "STK", "STK", "IDX", "STK", "STK"]
    assert list(s.contracts["month"]) == ["00000", "00000", "202401", "202402", "202401", "202401", "202401"]
    opt = s.contracts.iloc[5]
    assert (opt.kind, opt.strike, opt.vol, opt.rate, opt.div_rate, opt.delta) == ("C", 100.0, 0.3, 0.05, 0.01, 0.55)
    assert opt.und_row == 0 and opt.vol_scan_kind == "relative" and opt.vol_scan == 0.25
    np.testing.assert_array_equal(s.risk_arrays[5], CALL)
    assert s.risk_arrays.shape == (7, 8)
    assert set(s.products["pf_type"]) == {"PHY", "FUT", "OOP"}
    assert dict(zip(s.products.pf_id, s.products.cc, strict=True))[3] == "STK"
    assert len(s.expiries) == 4  # three futures and one option series
    assert s.commodities.loc["STK", "adj_rate"] == 0.8
    assert s.som_tiers["STK"][0][1] == 7.0
    (inter,) = s.inter_spreads
    assert inter.charge_method == "W" and inter.rate == 0.5
    assert [(leg.cc, leg.side, leg.ratio) for leg in inter.legs] == [("STK", "A", 10.0), ("IDX", "B", 1.0)]
    legs = s.spread_legs()
    assert len(legs) == 6 and set(legs["scope"]) == {"intra", "inter"}
    assert s.currency_conversions.iloc[0].tolist() == ["USD", "TRY", 30.0]


def test_regenerate_synthetic_matches_numpy_black_scholes(synth):
    """The kernel-based regeneration equals Black-Scholes with dividends written out in NumPy."""
    dt = 1 / 250
    out = span.regenerate_arrays(synth, look_ahead=dt)
    assert (out.reason == "").all()
    pm = np.array([p[0] for p in POINTS], float)
    vm = np.array([p[1] for p in POINTS], float)
    w = np.array([p[2] for p in POINTS], float)
    s0, r, q, t, cvf, scan, vs = 100.0, 0.05, 0.01, 0.1, 10.0, 50.0, 0.25
    for row, k, vol, is_call in ((5, 100.0, 0.3, True), (6, 95.0, 0.32, False)):

        def bs(s, sigma, tau, k=k, is_call=is_call):
            return cvf * reference.black76(s * np.exp((r - q) * tau), k, sigma, tau, np.exp(-r * tau), is_call)

        now = bs(s0, vol, t)
        later = bs(s0 + scan / cvf * pm, vol * (1 + vs * vm), t - dt)
        np.testing.assert_allclose(out.arrays[row], w * (now - later), rtol=1e-12, atol=1e-12)
        assert out.theoretical[row] == pytest.approx(float(now), rel=1e-13)
        # composite delta: delta-point weights 1/4, 1/2, 1/4 at -1, 0, +1 price scan ranges
        tau = t - dt
        s_j = s0 + scan / cvf * np.array([-1.0, 0.0, 1.0])
        sd = vol * np.sqrt(tau)
        d1 = (np.log(s_j * np.exp((r - q) * tau) / k) + 0.5 * sd * sd) / sd
        point_delta = np.exp(-q * tau) * (ndtr(d1) if is_call else ndtr(d1) - 1.0)
        assert out.deltas[row] == pytest.approx(point_delta @ [0.25, 0.5, 0.25], abs=1e-8)
    # futures: -weight * priceScan * price move; physicals with no scan range: zero
    np.testing.assert_allclose(out.arrays[2], FUT_STK, atol=1e-12)
    np.testing.assert_allclose(out.arrays[4], FUT_IDX, atol=1e-12)
    np.testing.assert_array_equal(out.arrays[0], 0.0)
    err = span.compare_arrays(synth, out)
    assert err.loc[2, "max_abs_err"] < 1e-12 and np.isnan(err.loc[0, "rel_err"])


def test_margin_calendar_spread(synth):
    pos = pd.DataFrame({"contract": ["FUT:STK:202401", "FUT:STK:202402"], "quantity": [1, -1]})
    row = _by_cc(span.margin(synth, pos)).loc["STK"]
    assert row.scan_risk == 0 and row.intra_spreads == 1 and row.intra_charge == 12
    assert row.risk == 12 and row.maintenance == pytest.approx(0.8 * 12)


def test_margin_short_calls_scan_and_risk_split(synth):
    pos = pd.DataFrame({"contract": ["OOP:STK:202401S0:C:100"], "quantity": [-2]})
    row = _by_cc(span.margin(synth, pos)).loc["STK"]
    # losses -2 * CALL = [-2, -2, 40, 36, -44, -40, 60, -50]: worst is the extreme point 7
    assert row.scan_risk == 60 and row.active_point == 7
    assert row.time_risk == -2 and row.vol_risk == 0 and row.price_risk == 62
    assert row.som == 14 and row.risk == 60 and row.net_option_value == -90
    assert row.net_delta == pytest.approx(-1.1)


def test_margin_short_option_minimum_binds(synth):
    pos = pd.DataFrame({"contract": ["OOP:STK:202401S0:C:100", "OOP:STK:202401S0:P:95"], "quantity": [-1, -1]})
    row = _by_cc(span.margin(synth, pos)).loc["STK"]
    # losses -(CALL + PUT) = [-1.5, -1.5, 10, 6, -7, -7, 10, 5]
    assert row.scan_risk == 10 and row.active_point == 3
    assert row.vol_risk == 2 and row.time_risk == -1.5 and row.price_risk == 9.5
    assert row.som == 14 and row.risk == 14


def test_margin_inter_commodity_credit(synth):
    pos = pd.DataFrame({"contract": ["FUT:STK:202401", "FUT:IDX:202401"], "quantity": [10, -1]})
    res = span.margin(synth, pos)
    tab = _by_cc(res)
    assert tab.loc["STK", "scan_risk"] == 500 and tab.loc["IDX", "scan_risk"] == 60
    assert tab.loc["STK", "wfpr"] == 50 and tab.loc["IDX", "wfpr"] == 60
    # one spread (10 STK deltas against 1 IDX delta): credit = 0.5 * ratio * wfpr per leg
    assert tab.loc["STK", "inter_credit"] == 250 and tab.loc["IDX", "inter_credit"] == 30
    assert tab.loc["STK", "risk"] == 250 and tab.loc["IDX", "risk"] == 30
    assert res.by_account["risk"].tolist() == [280]
    # the same direction on both legs forms no spread
    same = span.margin(synth, pd.DataFrame({"contract": ["FUT:STK:202401", "FUT:IDX:202401"], "quantity": [10, 1]}))
    assert same.by_commodity["inter_credit"].sum() == 0


def test_margin_fractional_and_whole_spreads(synth):
    pos = pd.DataFrame({"contract": ["OOP:STK:202401S0:C:100", "FUT:STK:202402"], "quantity": [1, -1]})
    assert _by_cc(span.margin(synth, pos)).loc["STK", "intra_charge"] == pytest.approx(0.55 * 12)
    assert _by_cc(span.margin(synth, pos, whole_spreads=True)).loc["STK", "intra_charge"] == 0


def test_margin_accounts_and_identifiers(synth):
    pos = pd.DataFrame(
        {
            "account": ["x", "y", "x", "y"],
            "pf_id": [2, 2, 2, 3],
            "c_id": [11, 11, 12, 21],
            "quantity": [1, 2, -1, -2],
        }
    )
    res = span.margin(synth, pos)
    assert res.accounts == ["x", "y"]
    by = res.by_account.set_index("account")["risk"]
    assert by["x"] == 12  # calendar spread
    # y: 2 long futures and 2 short calls, netted: losses 2 * (FUT - CALL)
    y = 2 * (np.array(FUT_STK) - np.array(CALL))
    assert by["y"] == max(y.max(), 14.0)
    rows = pd.DataFrame({"row": [2, 3], "quantity": [1, -1]})
    assert span.margin(synth, rows).by_account["risk"].tolist() == [12]


def test_margin_scan_equals_numpy_netting(synth):
    rng = np.random.default_rng(7)
    n = len(synth.contracts)
    pos = pd.DataFrame(
        {"account": rng.integers(0, 5, 40), "row": rng.integers(0, n, 40), "quantity": rng.integers(-5, 6, 40)}
    )
    res = span.margin(synth, pos)
    for (acct, cc), got in res.by_commodity.set_index(["account", "cc"])["scan_risk"].items():
        sel = (pos["account"] == acct) & (synth.contracts["cc"].to_numpy()[pos["row"]] == cc)
        loss = (pos.loc[sel, "quantity"].to_numpy()[:, None] * synth.risk_arrays[pos.loc[sel, "row"]]).sum(axis=0)
        assert got == pytest.approx(max(loss.max(), 0.0), abs=1e-9)


# --------------------------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "old, new, match",
    [
        ("</spanFile>", "", r"malformed SPAN XML"),
        ("<spanFile>", "<spanFiles>", r"malformed SPAN XML"),
        ("<fileFormat>4.00</fileFormat>", "<fileFormat>3.00</fileFormat>", r"fileFormat"),
        ("<o>C</o><k>100</k>", "<o>C</o>", r"opt\[cId=21\]: missing <k>"),
        ("<p>4.5</p>", "<p>four</p>", r"opt\[cId=21\]/<p>: not a number: 'four'"),
        ("<o>C</o>", "<o>X</o>", r"opt\[cId=21\]/<o>"),
        ("<cId>22</cId>", "<cId>21</cId>", r"duplicate contract \(pfId 3, cId 21\)"),
        (
            "<undC><exch>X</exch><pfId>1</pfId><cId>1</cId><s>B</s><i>1</i></undC><intrRate>",
            "<undC><exch>X</exch><pfId>9</pfId><cId>1</cId><s>B</s><i>1</i></undC><intrRate>",
            r"series\[pe=202401S0\]/undC: unknown underlying contract \(pfId 9, cId 1\)",
        ),
        (
            "<pfLink><exch>X</exch><pfId>5</pfId>",
            "<pfLink><exch>X</exch><pfId>55</pfId>",
            r"ccDef\[cc=IDX\]/pfLink\[1\]: unknown pfId 55",
        ),
        (
            "<tLeg><cc>IDX</cc><tn>0</tn><rs>B</rs><i>1</i></tLeg></dSpread></interSpreads>",
            "<tLeg><cc>NOPE</cc><tn>0</tn><rs>B</rs><i>1</i></tLeg></dSpread></interSpreads>",
            r"interSpreads/dSpread\[spread=1\]/tLeg: unknown cc 'NOPE'",
        ),
        (
            "<rs>B</rs><i>1</i></tLeg></dSpread></interSpreads>",
            "<rs>Q</rs><i>1</i></tLeg></dSpread></interSpreads>",
            r"tLeg\[1\]/<rs>: must be 'A' or 'B'",
        ),
        ("<a>-30</a><a>25</a>", "<a>-30</a>", r"opt\[cId=21\]/ra: 7 <a> values, the file defines 8 scan points"),
        ("<a>-30</a><a>25</a>", "<a>-30</a><a>x</a>", r"opt\[cId=21\]/ra/<a>: not a number"),
        (
            "<priceScan>50</priceScan><volScanPct>",
            "<volScanPct>",
            r"series\[pe=202401S0\]/scanRate: missing <priceScan>",
        ),
        ("<pairedPoint>2</pairedPoint>", "<pairedPoint>20</pairedPoint>", r"pairedPoint"),
        ("<t>0.1</t><cvf>10</cvf>", "<t>soon</t><cvf>10</cvf>", r"series\[pe=202401S0\]/<t>: not a number"),
        ("<pfCode>STK</pfCode><name>STK FUT</name>", "<name>STK FUT</name>", r"futPf\[pfId=2\]: missing <pfCode>"),
    ],
)
def test_bad_input_names_element_and_field(old, new, match):
    assert old in SYNTHETIC
    with pytest.raises(ValueError, match=match):
        span.parse_span(SYNTHETIC.replace(old, new, 1))


def test_read_span_errors(tmp_path):
    bad = tmp_path / "bad.spn"
    bad.write_text("<spanFile><fileFormat>4.00</fileFormat>", encoding="ascii")
    with pytest.raises(ValueError, match=r"bad.spn: malformed SPAN XML"):
        span.read_span(bad)
    with pytest.raises(ValueError, match=r"root element: expected <spanFile>"):
        span.parse_span("<other/>")
    with pytest.raises(ValueError, match=r"missing <pointDef>"):
        span.parse_span(
            "<spanFile><fileFormat>4.00</fileFormat><pointInTime><date>1</date><clearingOrg/></pointInTime></spanFile>"
        )


def test_bad_positions(synth):
    with pytest.raises(ValueError, match=r"positions\['contract'\] row 1: unknown contract 'FUT:STK:209912'"):
        span.margin(synth, pd.DataFrame({"contract": ["FUT:STK:202401", "FUT:STK:209912"], "quantity": [1, 1]}))
    with pytest.raises(ValueError, match=r"unknown contract \(pf_id 2, c_id 99\)"):
        span.margin(synth, pd.DataFrame({"pf_id": [2], "c_id": [99], "quantity": [1]}))
    with pytest.raises(ValueError, match=r"missing column 'quantity'"):
        span.margin(synth, pd.DataFrame({"contract": ["FUT:STK:202401"]}))
    with pytest.raises(ValueError, match=r"positions\['quantity'\] row 0: not a finite number"):
        span.margin(synth, pd.DataFrame({"contract": ["FUT:STK:202401"], "quantity": ["many"]}))
    with pytest.raises(ValueError, match=r"positions\['row'\] row 0: unknown contract row 70"):
        span.margin(synth, pd.DataFrame({"row": [70], "quantity": [1]}))
    with pytest.raises(ValueError, match=r"positions\['account'\] row 1: missing account"):
        span.margin(synth, pd.DataFrame({"account": ["a", None], "row": [2, 3], "quantity": [1, 1]}))
    with pytest.raises(ValueError, match=r"positions: empty table"):
        span.margin(synth, pd.DataFrame({"row": np.array([], dtype=int), "quantity": []}))
    with pytest.raises(ValueError, match=r"arrays: shape"):
        span.margin(synth, pd.DataFrame({"row": [2], "quantity": [1]}), arrays=np.zeros((2, 8)))
    with pytest.raises(ValueError, match=r"look_ahead"):
        span.regenerate_arrays(synth, look_ahead=-1)


# --------------------------------------------------------------------------------------------
# the Takasbank (Borsa Istanbul, 2016-05-17) oracle
# --------------------------------------------------------------------------------------------


def _oracle_file() -> Path:
    root = os.environ.get("MARGINKERNEL_ORACLES")
    base = Path(root) if root else Path(__file__).resolve().parents[2] / "shared" / "oracles"
    return base / "span-takasbank" / "takas.spn"


@pytest.fixture(scope="module")
def takas():
    path = _oracle_file()
    if not path.is_file():
        pytest.skip(f"SPAN oracle not found at {path}")
    return span.read_span(path)


@pytest.fixture(scope="module")
def regenerated(takas):
    return span.regenerate_arrays(takas)


def test_oracle_structure(takas):
    c = takas.contracts
    assert takas.file_format == "4.00" and takas.business_date == "20160517"
    assert c["kind"].isin(["C", "P"]).sum() == 2628
    assert (c["kind"] == "FUT").sum() == 146 and (c["kind"] == "PHY").sum() == 37
    assert takas.n_points == 16 and len(takas.delta_points) == 7
    assert len(takas.commodities) == 40 and (c["cc"] != "").all()
    assert len(takas.inter_spreads) == 56 and len(takas.intra_spreads) == 40
    opts = c[c["kind"].isin(["C", "P"])]
    assert (c["kind"].to_numpy()[opts["und_row"]] == "PHY").all()  # options on physicals
    assert (opts["vol_scan_kind"] == "relative").all()
    # the extreme points carry their cover fraction inside the published arrays
    sp = takas.scan_points
    ext = sp.index[sp["weight"] < 1]
    fut = c.index[c["kind"] == "FUT"]
    scan = c.loc[fut, "price_scan"].to_numpy()
    np.testing.assert_allclose(
        np.abs(takas.risk_arrays[np.ix_(fut, ext)]),
        np.outer(scan, (sp.loc[ext, "weight"] * sp.loc[ext, "price_mult"].abs()).to_numpy()),
        rtol=1e-6,
    )


def test_oracle_regeneration_errors(takas, regenerated):
    err = span.compare_arrays(takas, regenerated)
    summary = span.error_summary(err)
    assert (regenerated.reason == "").all()
    opt = summary.loc["option"]
    assert opt["total"] == opt["matched"] == 2628
    # targets: median <= 1e-4, max <= 2e-3 of each array's largest |value|; measured 1.02e-6 / 3.1e-5
    assert opt["median_rel_err"] <= 1e-5
    assert opt["max_rel_err"] <= 1e-4
    assert summary.loc["FUT", "max_rel_err"] <= 1e-6 and summary.loc["FUT", "matched"] == 146
    assert summary.loc["PHY", "all_zero"] == 37 and summary.loc["PHY", "max_abs_err"] == 0
    # composite deltas from the delta points: measured median 2.5e-7, max 1.2e-6
    c = takas.contracts
    is_opt = c["kind"].isin(["C", "P"]).to_numpy()
    d_err = np.abs(regenerated.deltas - c["delta"].to_numpy())[is_opt]
    assert np.median(d_err) <= 1e-6 and d_err.max() <= 1e-5


def test_oracle_underlying_price_is_value_over_cvf(takas):
    """The arrays were computed from the underlying's rounded value / cvf: with the raw price the
    mini index options (cvf 1, value rounded to 2 decimals) are off by ~1e-4 of their scale."""
    err = span.compare_arrays(takas, span.regenerate_arrays(takas, underlying_price="price"))
    mini = err[(err["cc"] == "XU030X") & err["kind"].isin(["C", "P"])]
    assert mini["rel_err"].median() > 3e-5


def test_oracle_look_ahead_is_one_trading_day(takas):
    """A calendar-day look-ahead misses the published arrays by orders of magnitude more."""
    err = span.compare_arrays(takas, span.regenerate_arrays(takas, look_ahead=1 / 365))
    opt = err[err["kind"].isin(["C", "P"])]
    assert opt["rel_err"].median() > 1e-3


def test_oracle_margin_published_vs_regenerated(takas, regenerated):
    rng = np.random.default_rng(2016)
    c = takas.contracts
    n = 400
    pos = pd.DataFrame(
        {
            "account": rng.integers(0, 20, n),
            "row": rng.integers(0, len(c), n),
            "quantity": rng.integers(-10, 11, n),
        }
    )
    pub = span.margin(takas, pos)
    reg = span.margin(takas, pos, arrays=regenerated, deltas=regenerated.deltas)
    a, b = pub.by_commodity, reg.by_commodity
    assert list(a["cc"]) == list(b["cc"])
    scale = np.maximum(a["scan_risk"].abs(), 1.0)
    assert (np.abs(a["scan_risk"] - b["scan_risk"]) / scale).max() < 2e-3
    # scan risk against plain NumPy netting of the published arrays
    for (acct, cc), got in a.set_index(["account", "cc"])["scan_risk"].items():
        sel = (pos["account"] == acct).to_numpy() & (c["cc"].to_numpy()[pos["row"]] == cc)
        loss = (pos["quantity"].to_numpy()[sel, None] * takas.risk_arrays[pos["row"].to_numpy()[sel]]).sum(axis=0)
        assert got == pytest.approx(max(loss.max(), 0.0), rel=1e-12, abs=1e-9)
    assert (a["risk"] >= a["som"] - 1e-9).all()
    assert (a["risk"] >= 0).all() and (a["inter_credit"] <= a["price_risk"] + 1e-9).all()


def test_oracle_calendar_and_inter_spreads(takas):
    c = takas.contracts
    futs = c[(c["cc"] == "AKBNKE") & (c["kind"] == "FUT")].sort_values("month")
    near, far = futs["contract"].iloc[0], futs["contract"].iloc[1]
    (intra,) = [s for s in takas.intra_spreads if s.cc == "AKBNKE"]
    cal = span.margin(takas, pd.DataFrame({"contract": [near, far], "quantity": [3, -3]}))
    row = cal.by_commodity.iloc[0]
    assert row.scan_risk == pytest.approx(0.0, abs=1e-9)
    assert row.intra_spreads == 3 and row.intra_charge == pytest.approx(3 * intra.rate)
    # an inter-commodity spread of the file: AKBNKE (side A) against XU030 (side B)
    spread = next(s for s in takas.inter_spreads if {leg.cc for leg in s.legs} == {"AKBNKE", "XU030"})
    leg = {l.cc: l for l in spread.legs}
    xu = c[(c["cc"] == "XU030") & (c["kind"] == "FUT")].sort_values("month")["contract"].iloc[0]
    n_ak = leg["AKBNKE"].ratio * 2  # deltas for exactly two spreads (futures have delta 1)
    pos = pd.DataFrame({"contract": [near, xu], "quantity": [n_ak, -2 * leg["XU030"].ratio]})
    res = span.margin(takas, pos).by_commodity.set_index("cc")
    assert leg["AKBNKE"].side != leg["XU030"].side
    for cc in ("AKBNKE", "XU030"):
        r = res.loc[cc]
        expected = spread.rate * 2 * leg[cc].ratio * r.price_risk / abs(r.net_delta)
        assert r.inter_credit == pytest.approx(expected, rel=1e-12)
        assert r.risk == pytest.approx(max(r.scan_risk - r.inter_credit, r.som), rel=1e-12)
        assert 0 < r.inter_credit <= spread.rate * r.price_risk * (1 + 1e-12)
