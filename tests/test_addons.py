"""Add-ons (marginkernel.addons): each against hand-computed values, the vectorised computation
against the plain-loop reference on random books, and how the engine combines them.

Market: no carry, zero rates, so every forward is the index (BTC 100,000, ETH 4,000, SPX 5,000)
and every discount factor 1. Valuation 2026-11-21 08:00 UTC; expiries 25 Dec 2026 (34 days),
26 Mar 2027 (125 days), 25 Jun 2027 (216 days). Tolerances: 1e-12 relative (hand values are exact
arithmetic on these inputs).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import ndtr

import marginkernel as mk
from marginkernel import addons, reference

T0 = "2026-11-21T08:00:00Z"
DEC, MAR, JUN = "2026-12-25T08:00:00Z", "2027-03-26T08:00:00Z", "2027-06-25T08:00:00Z"
YEAR = 365 * 86400
T_DEC, T_MAR, T_JUN = 34 * 86400 / YEAR, 125 * 86400 / YEAR, 216 * 86400 / YEAR
REL = 1e-12


def instruments():
    return mk.Instruments.from_records(
        [
            {"id": "F1", "kind": "future", "underlying": "BTC", "expiry": DEC},
            {"id": "F2", "kind": "future", "underlying": "BTC", "expiry": MAR},
            {"id": "F3", "kind": "future", "underlying": "BTC", "expiry": JUN},
            {"id": "C", "kind": "call", "underlying": "BTC", "strike": 100_000.0, "expiry": DEC},
            {"id": "C2", "kind": "call", "underlying": "BTC", "strike": 110_000.0, "expiry": DEC},
            {"id": "P", "kind": "put", "underlying": "BTC", "strike": 100_000.0, "expiry": DEC},
            {"id": "E1", "kind": "future", "underlying": "ETH", "expiry": DEC},
            {"id": "EP", "kind": "perpetual", "underlying": "ETH"},
            {
                "id": "IF",
                "kind": "future",
                "underlying": "BTC",
                "settlement": "inverse",
                "expiry": DEC,
                "multiplier": 10.0,
            },
            {
                "id": "IC",
                "kind": "call",
                "underlying": "BTC",
                "settlement": "inverse",
                "strike": 105_000.0,
                "expiry": MAR,
            },
            {"id": "SPXC", "kind": "call", "underlying": "SPX", "strike": 5_000.0, "expiry": DEC, "multiplier": 100.0},
        ]
    )


def market():
    return mk.Market.from_dict(
        {
            "time": T0,
            "spot": {"BTC": 100_000.0, "ETH": 4_000.0, "SPX": 5_000.0},
            "vols": {"C": 0.6, "C2": 0.65, "P": 0.6, "IC": 0.55, "SPXC": 0.2},
        }
    )


def engine(addon_tables: dict | None = None, **model):
    params = dict(
        name="t",
        builder="span16",
        scenario_params={"price_scan": 0.1, "vol_scan": 0.2, "cover_fraction": 0.0},
        addons=addon_tables or {},
    )
    params.update(model)
    return mk.Engine(instruments(), market(), mk.MarginModel(**params))


def book(*rows, account="a"):
    return [{"account": account, "instrument": i, "quantity": q} for i, q in rows]


def charge(kind: str, table: dict, positions, by="risk_unit") -> pd.Series:
    """The add-on's raw charge per risk unit (settlement currency), computed alone."""
    eng = engine()
    addon = addons.build("x", {"type": kind, **table})
    ctx = eng.context(positions)
    got = addon(ctx)
    ref = addon.reference(ctx, addon.resolve(ctx.unit_names, ctx.unit_underlying))
    np.testing.assert_allclose(got, ref, rtol=REL, atol=1e-9)
    return pd.Series(got, index=[ctx.unit_names[u] for u in ctx.pair_unit])


# --- conventions --------------------------------------------------------------------------------


def test_deltas_are_black76_and_inverse_in_coin():
    eng = engine()
    d = pd.Series(eng.deltas, index=eng.instruments.ids)
    assert d["F1"] == 1.0 and d["EP"] == 1.0
    assert d["IF"] == pytest.approx(10.0 / 100_000.0, rel=REL)  # 10 USD notional in coin
    sd = 0.6 * np.sqrt(T_DEC)
    assert d["C"] == pytest.approx(ndtr(0.5 * sd), rel=1e-14)  # ATM: d1 = sigma sqrt(T) / 2
    assert d["P"] == pytest.approx(ndtr(0.5 * sd) - 1.0, rel=1e-14)
    assert d["SPXC"] == pytest.approx(100.0 * ndtr(0.5 * 0.2 * np.sqrt(T_DEC)), rel=1e-14)
    # the inverse option's delta (coins of underlying) is the same Black-76 forward delta
    f, k, t, h = 100_000.0, 105_000.0, T_MAR, 1e-6
    fd = (
        reference.black76(f * (1 + h), k, 0.55, t, 1.0, True) - reference.black76(f * (1 - h), k, 0.55, t, 1.0, True)
    ) / (2 * h * f)
    assert d["IC"] == pytest.approx(float(fd), rel=1e-8)


# --- each add-on against hand values --------------------------------------------------------------


def test_roll_shock():
    got = charge(
        "roll_shock",
        {"annualised_move_risk": 0.1, "min_annualised_move": 0.02},
        book(("F1", 2.0), ("F2", -3.0), ("C", -5.0), ("EP", 10.0), ("IF", 1000.0)),
    )
    # F1: 0.1 x 34/365 = 0.93 % < 2 % floor; F2: 0.1 x 125/365 = 3.42 %; options not charged (kinds)
    assert got["BTC/USD"] == pytest.approx(2 * 100_000 * 0.02 + 3 * 100_000 * 0.1 * T_MAR, rel=REL)
    assert got["ETH/USD"] == pytest.approx(10 * 4_000 * 0.02, rel=REL)  # perpetual: T = 0 -> the floor
    assert got["BTC"] == pytest.approx(1000 * 10 / 100_000 * 0.02, rel=REL)  # 0.1 BTC of position, in BTC


def test_roll_shock_per_unit_values_and_kinds():
    got = charge(
        "roll_shock",
        {"annualised_move_risk": {"default": 0.0, "ETH": 0.5}, "kinds": ["perpetual"]},
        book(("F1", 2.0), ("EP", -10.0), ("E1", 3.0)),
    )
    assert got["BTC/USD"] == 0.0
    assert got["ETH/USD"] == 0.0  # a perpetual has T = 0 and the floor defaults to 0


def test_delta_shock():
    got = charge("delta_shock", {"threshold": 20e6, "shock": 0.1}, book(("F1", 300.0), ("F2", -50.0), ("E1", 100.0)))
    assert got["BTC/USD"] == pytest.approx(0.1 * (250 * 100_000 - 20e6), rel=REL)  # $25M net delta
    assert got["ETH/USD"] == 0.0  # $0.4M
    got = charge("delta_shock", {"threshold": 1e6, "shock": 0.2}, book(("IF", -300_000.0)))
    usd = 300_000 * 10 / 100_000 * 100_000  # 30 BTC of delta, $3M
    assert got["BTC"] == pytest.approx(0.2 * (usd - 1e6) / 100_000, rel=REL)  # in BTC


def test_short_option_minimum():
    positions = book(("C", -5.0), ("C2", 2.0), ("P", -3.0), ("F1", -1.0))
    assert charge("short_option_minimum", {"rate": 50.0}, positions)["BTC/USD"] == pytest.approx(8 * 50.0, rel=REL)
    assert charge("short_option_minimum", {"rate": 50.0, "method": "max"}, positions)["BTC/USD"] == pytest.approx(250.0)
    got = charge("short_option_minimum", {"rate": 0.01, "basis": "notional"}, positions)
    assert got["BTC/USD"] == pytest.approx(8 * 0.01 * 100_000, rel=REL)
    # USD rates on a coin-settled unit are converted into coin
    got = charge("short_option_minimum", {"rate": 50.0, "currency": "USD"}, book(("IC", -4.0)))
    assert got["BTC"] == pytest.approx(4 * 50.0 / 100_000, rel=REL)


def test_per_contract_minimum():
    got = charge("per_contract_minimum", {"rate": 0.375}, book(("SPXC", 4.0), ("SPXC", -10.0), ("F1", 2.0)))
    assert got["SPX/USD"] == pytest.approx(6 * 0.375 * 100, rel=REL)  # net -6 contracts x $0.375 x 100
    assert got["BTC/USD"] == pytest.approx(2 * 0.375 * 1, rel=REL)
    tiers = [[0, 1], [10_000, 2], [70_000, 4]]
    for n, want in ((20, 4_000.0), (200, 10_000 + 30_000 * 2.0), (500, 10_000 + 60_000 * 2 + 30_000 * 4.0)):
        got = charge("per_contract_minimum", {"rate": 0.002, "basis": "notional", "tiers": tiers}, book(("F1", n)))
        assert got["BTC/USD"] == pytest.approx(want, rel=REL)  # raw 0.2 % of n x $100k, tiered


def test_concentration():
    tiers = [[1e6, 0.01], [5e6, 0.02]]
    got = charge("concentration", {"tiers": tiers}, book(("F1", 100.0), ("F2", -20.0)))
    assert got["BTC/USD"] == pytest.approx(0.01 * 4e6 + 0.02 * 3e6, rel=REL)  # net 80 BTC = $8M
    got = charge("concentration", {"tiers": tiers, "measure": "gross_delta"}, book(("F1", 100.0), ("F2", -20.0)))
    assert got["BTC/USD"] == pytest.approx(0.01 * 4e6 + 0.02 * 7e6, rel=REL)  # gross $12M


def test_contingency():
    got = charge(
        "contingency",
        {"option_rate": 0.01, "future_rate": 0.02},
        book(("C", 10.0), ("P", -5.0), ("F1", 4.0), ("F2", -3.0)),
    )
    assert got["BTC/USD"] == pytest.approx(15 * 100_000 * 0.01 + 3 * 100_000 * 0.02, rel=REL)
    got = charge("contingency", {"option_rate": 0.01, "option_side": "short"}, book(("C", 10.0), ("P", -5.0)))
    assert got["BTC/USD"] == pytest.approx(5 * 100_000 * 0.01, rel=REL)


INTRA = {
    "tiers": [{"tier": 1, "end": "2027-03"}, {"tier": 2, "start": "2027-04"}],
    "spreads": [
        {"rate": 100.0, "legs": [{"tier": 1, "side": "A"}, {"tier": 1, "side": "B"}]},
        {"rate": 150.0, "legs": [{"tier": 1, "side": "A"}, {"tier": 2, "side": "B"}]},
    ],
}


def test_intra_commodity_spread():
    # deltas: Dec +5, Mar -3 (tier 1), Jun -4 (tier 2)
    got = charge("intra_spread", INTRA, book(("F1", 5.0), ("F2", -3.0), ("F3", -4.0)))
    # spread 1 (tier 1 long vs short): 3 spreads x 100 leaves Dec +2; spread 2 (tier 1 +2 against
    # tier 2 -4): 2 spreads x 150
    assert got["BTC/USD"] == pytest.approx(3 * 100.0 + 2 * 150.0, rel=REL)
    # same-sign tiers form no tier spread; whole spreads round down
    got = charge("intra_spread", INTRA, book(("F1", 5.0), ("F3", 4.0)))
    assert got["BTC/USD"] == 0.0
    got = charge("intra_spread", {**INTRA, "whole": True}, book(("F1", 2.5), ("F2", -1.5), ("F3", -0.6)))
    assert got["BTC/USD"] == pytest.approx(1 * 100.0, rel=REL)  # 1.5 -> 1; then tier 1 +1.5 vs -0.6 -> 0


def test_inter_commodity_spread_credit():
    table = {
        "spreads": [
            {"rate": 0.5, "legs": [{"unit": "BTC/USD", "side": "A"}, {"unit": "ETH/USD", "side": "B", "ratio": 25.0}]}
        ]
    }
    got = charge("inter_spread", table, book(("F1", 2.0), ("E1", -50.0)))
    # no extreme cover, futures only: price risk = scan = 2 x $100k x 10 % and 50 x $4k x 10 %;
    # per delta $10,000 (BTC) and $400 (ETH); 2 spreads of 1 BTC : 25 ETH
    assert got["BTC/USD"] == pytest.approx(0.5 * 2 * 1 * 10_000.0, rel=REL)
    assert got["ETH/USD"] == pytest.approx(0.5 * 2 * 25 * 400.0, rel=REL)
    # same direction: no spread
    got = charge("inter_spread", table, book(("F1", 2.0), ("E1", 50.0)))
    assert (got == 0).all()


def test_inter_spread_after_intra_uses_the_remaining_deltas():
    tables = {
        "intra": {"type": "intra_spread", **INTRA},
        "inter": {
            "type": "inter_spread",
            "after": "intra",
            "spreads": [
                {
                    "rate": 0.5,
                    "legs": [{"unit": "BTC/USD", "side": "B"}, {"unit": "ETH/USD", "side": "A", "ratio": 10.0}],
                }
            ],
        },
    }
    eng = engine(tables)
    positions = book(("F1", 5.0), ("F2", -3.0), ("F3", -4.0), ("E1", 100.0))
    res = eng.margin(positions)
    # intra leaves BTC Jun -2 (Dec +5, Mar -3, Jun -4: net -2), wfpr = scan / 2 BTC
    btc_scan = 0.1 * 100_000 * 2.0  # worst move on the net -2 BTC: +10 %
    eth_scan = 0.1 * 4_000 * 100.0
    wfpr_btc, wfpr_eth = btc_scan / 2.0, eth_scan / 100.0
    n = min(2.0 / 1.0, 100.0 / 10.0)
    credit = 0.5 * n * (1.0 * wfpr_btc + 10.0 * wfpr_eth)
    row = res.accounts.loc["a"]
    assert row["intra"] == pytest.approx(600.0, rel=REL)
    assert row["inter"] == pytest.approx(-credit, rel=REL)
    assert row["risk"] == pytest.approx(btc_scan + eth_scan + 600.0 - credit, rel=REL)


# --- vectorised == reference on random books ------------------------------------------------------


ALL = {
    "roll": {
        "type": "roll_shock",
        "annualised_move_risk": {"default": 0.1, "ETH": 0.2},
        "min_annualised_move": 0.01,
        "kinds": ["future", "perpetual", "call"],
    },
    "delta": {"type": "delta_shock", "threshold": 1e5, "shock": 0.05},
    "som": {"type": "short_option_minimum", "rate": 30.0, "method": "max"},
    "pcm": {"type": "per_contract_minimum", "rate": 0.001, "basis": "notional", "tiers": [[0, 1], [500, 3]]},
    "conc": {"type": "concentration", "tiers": [[0, 0.001], [1e6, 0.01]], "measure": "gross_delta"},
    "cont": {"type": "contingency", "option_rate": 0.005, "future_rate": 0.01},
    "intra": {"type": "intra_spread", **INTRA},
    "inter": {
        "type": "inter_spread",
        "after": "intra",
        "spreads": [
            {"rate": 0.4, "legs": [{"unit": "BTC/USD", "side": "A"}, {"unit": "ETH/USD", "side": "B", "ratio": 20.0}]},
            {"rate": 0.3, "legs": [{"unit": "BTC/USD", "side": "A"}, {"unit": "BTC", "side": "B", "ratio": 0.5}]},
        ],
    },
}


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("mode", ["cross", "isolated"])
def test_vectorised_equals_reference(seed, mode):
    rng = np.random.default_rng(seed)
    ids = list(instruments().ids)
    n = 400
    positions = pd.DataFrame(
        {
            "account": rng.integers(0, 40, n).astype(str),
            "instrument": rng.choice(ids, n),
            "quantity": np.round(rng.normal(0, 5, n), 1),
        }
    )
    eng = engine(ALL)
    ctx = eng.context(positions, mode=mode)
    assert ctx.n_pairs > 40
    for addon in eng.model.addons:
        p = addon.resolve(ctx.unit_names, ctx.unit_underlying)
        got = addon.compute(ctx, p)
        want = addon.reference(ctx, p)
        np.testing.assert_allclose(got, want, rtol=REL, atol=1e-9, err_msg=addon.name)
        assert (got >= 0).all()
    assert ctx.shared["intra"][2].shape[0] == ctx.n_pairs


# --- combination in the engine ----------------------------------------------------------------------


def test_floor_binds_and_breakdown_adds_up():
    eng = engine(
        {
            "som": {"type": "short_option_minimum", "rate": 10_000.0},
            "roll": {"type": "roll_shock", "min_annualised_move": 0.01},
        }
    )
    res = eng.margin(book(("C2", -1.0), ("F1", 0.001)))
    row = res.accounts.loc["a"]
    scan = row["scan_risk"]
    roll = 0.001 * 100_000 * 0.01
    assert scan + roll < 10_000.0  # one out-of-the-money call: the floor binds
    assert row["risk"] == pytest.approx(10_000.0, rel=REL)
    assert row["roll"] == pytest.approx(roll, rel=REL)
    assert row["som"] == pytest.approx(10_000.0 - scan - roll, rel=REL)  # its uplift
    parts = row[["scan_risk", "som", "roll"]].sum()
    assert parts == pytest.approx(row["risk"], rel=REL)
    assert res.by_unit.set_index("risk_unit").loc["BTC/USD", "som"] == 10_000.0  # raw charge


def test_credit_never_makes_margin_negative():
    eng = engine(
        {
            "inter": {
                "type": "inter_spread",
                "price_risk": "scan",
                "spreads": [
                    {
                        "rate": 1.0,
                        "legs": [{"unit": "BTC/USD", "side": "A"}, {"unit": "ETH/USD", "side": "B", "ratio": 25.0}],
                    }
                ],
            }
        }
    )
    res = eng.margin(book(("F1", 2.0), ("E1", -50.0)))
    row = res.accounts.loc["a"]
    # 100 % credit on both legs: the whole scan risk
    assert row["risk"] == pytest.approx(0.0, abs=1e-9)
    assert row["inter"] == pytest.approx(-row["scan_risk"], rel=REL)


def test_addon_bad_config_names_the_key():
    with pytest.raises(ValueError, match=r"addons.x.shock: missing"):
        addons.build("x", {"type": "delta_shock"})
    with pytest.raises(ValueError, match=r"addons.x.tiers\[1\]\[0\]: starts must increase"):
        addons.build("x", {"type": "concentration", "tiers": [[5, 0.1], [1, 0.2]]})
    with pytest.raises(ValueError, match=r"addons.x.spreads\[0\].legs: legs in one tier must be two"):
        addons.build(
            "x",
            {
                "type": "intra_spread",
                "spreads": [{"rate": 1.0, "legs": [{"tier": 1, "side": "A"}, {"tier": 1, "side": "A"}]}],
            },
        )
    with pytest.raises(ValueError, match=r"addons.x.rate: no value for risk unit 'BTC/USD'"):
        engine({"x": {"type": "short_option_minimum", "rate": {"ETH": 1.0}}})


def test_price_risk_is_scan_minus_time_and_vol_risk():
    # SPAN 16 layout: points 1-2 are the zero move (vol up / down); points 2k+1 and 2k+2 share a
    # price move with opposite vol; 15-16 the extremes (no vol shift: paired with themselves)
    eng = engine(scenario_params={"price_scan": 0.05, "vol_scan": 0.3, "cover_fraction": 0.35})
    positions = book(("C", -3.0), ("P", -2.0), ("F1", 0.5))  # short vega: worst on a vol-up point
    ctx = eng.context(positions)
    loss = -(ctx.pair_pnl[0] * ctx.weight[ctx.pair_unit[0]])
    scan = loss.max()
    worst = int(np.argmax(loss))
    time_risk = loss[:2].mean()
    pair = worst + 1 if worst < 14 and worst % 2 == 0 else (worst - 1 if worst < 14 else worst)
    vol_risk = max(loss[worst] - loss[pair], 0.0) / 2
    assert scan > 0 and vol_risk > 0
    assert addons.price_risk(ctx)[0] == pytest.approx(max(scan - time_risk - vol_risk, 0.0), rel=REL)
