"""Netting hierarchy (risk unit -> settlement currency -> account), gain haircut and cap, cross and
isolated margin, collateral with haircuts, equity in a chosen currency, margin ratio, liquidation.

Two scenarios only (range_points, +-10 %, no carry, zero rates), so every scenario P&L is exact:
a long BTC future (index 100,000) has P&L [-10,000, +10,000], ten short ETH perpetuals (4,000)
[+4,000, -4,000]. Tolerance 1e-12 relative.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import marginkernel as mk

T0 = "2026-11-21T08:00:00Z"
REL = 1e-12


def instruments():
    return mk.Instruments.from_records(
        [
            {"id": "F", "kind": "future", "underlying": "BTC", "expiry": "2026-12-25T08:00:00Z"},
            {"id": "F2", "kind": "future", "underlying": "BTC", "expiry": "2027-03-26T08:00:00Z"},
            {"id": "F3", "kind": "future", "underlying": "BTC", "expiry": "2027-06-25T08:00:00Z"},
            {"id": "E", "kind": "perpetual", "underlying": "ETH"},
            {"id": "U", "kind": "perpetual", "underlying": "BTC", "currency": "USDC"},
            {"id": "I", "kind": "perpetual", "underlying": "BTC", "settlement": "inverse", "multiplier": 10.0},
        ]
    )


MARKET = mk.Market.from_dict({"time": T0, "spot": {"BTC": 100_000.0, "ETH": 4_000.0}})


def engine(**model):
    params = dict(name="t", builder="range_points", scenario_params={"up": 0.1, "down": 0.1, "points": 2})
    params.update(model)
    return mk.Engine(instruments(), MARKET, mk.MarginModel(**params))


def book(*rows, account="a"):
    return [{"account": account, "instrument": i, "quantity": q} for i, q in rows]


LONG_BTC_SHORT_ETH = book(("F", 1.0), ("E", -10.0))


@pytest.mark.parametrize(
    "netting, gain, cap, want",
    [
        ("risk_unit", 1.0, math.inf, 10_000 + 4_000),
        ("currency", 1.0, math.inf, 6_000),  # [-10k + 4k, +10k - 4k]
        ("currency", 0.0, math.inf, 10_000),  # gains never offset: [-10k, -4k]
        ("currency", 0.5, math.inf, 8_000),  # [-10k + 2k, -4k + 5k]
        ("currency", 1.0, 1_000.0, 9_000),  # at most $1,000 of gains offset: [-9k, -3k]
        ("currency", {"default": 1.0, "BTC/USD": 0.0}, math.inf, 6_000),  # BTC's gains out: [-10k + 4k, 0 - 4k]
    ],
)
def test_netting_levels_and_gain_haircut(netting, gain, cap, want):
    res = engine(netting=netting, gain_factor=gain, gain_cap=cap).margin(LONG_BTC_SHORT_ETH)
    assert res.accounts.loc["a", "im"] == pytest.approx(want, rel=REL)
    assert res.accounts.loc["a", "worst_unit"] == ("USD" if netting == "currency" else "BTC/USD")


@pytest.mark.parametrize(
    "gain, cap, want",
    [
        (1.0, math.inf, 4_000),  # USD [-6k, +6k] + USDC [+10k, -10k]
        ({"default": 1.0, "USDC": 0.0}, math.inf, 6_000),  # [-6k + 0, +6k - 10k]
        (1.0, 1_000.0, 9_000),  # [-6k + 1k, -10k + 1k]
    ],
)
def test_account_netting_across_settlement_currencies(gain, cap, want):
    positions = LONG_BTC_SHORT_ETH + book(("U", -1.0))
    res = engine(netting="account", gain_factor=gain, gain_cap=cap).margin(positions)
    assert res.accounts.loc["a", "im"] == pytest.approx(want, rel=REL)
    assert res.accounts.loc["a", "worst_unit"] is None
    # currency netting: each currency's worst, summed: USD 6k + USDC 10k
    res = engine(netting="currency").margin(positions)
    assert res.accounts.loc["a", "im"] == pytest.approx(16_000, rel=REL)


def test_isolated_margins_each_position_alone():
    calendar = book(("F", 1.0), ("F2", -1.0))
    cross = engine().margin(calendar)
    iso = engine(mode="isolated").margin(calendar)
    assert cross.accounts.loc["a", "im"] == 0.0  # same forward, exact offset
    assert iso.accounts.loc["a", "im"] == pytest.approx(20_000, rel=REL)
    assert engine().margin(calendar, mode="isolated").accounts.loc["a", "im"] == pytest.approx(20_000, rel=REL)
    # the account's P&L vector is the netted one in both modes
    np.testing.assert_array_equal(iso.pnl, cross.pnl)
    # by_unit sums the positions' own losses
    assert iso.by_unit.set_index("risk_unit").loc["BTC/USD", "loss"] == pytest.approx(20_000, rel=REL)


def test_per_position_margin_mode_column():
    positions = pd.DataFrame(
        {
            "account": ["a", "a", "a", "b"],
            "instrument": ["F", "F2", "F3", "F"],
            "quantity": [1.0, -1.0, 1.0, 2.0],
            "margin_mode": ["isolated", None, "cross", "isolated"],
        }
    )
    before = positions.copy()
    res = engine().margin(positions)
    # a: F alone (10k) + the cross group F2 / F3 netting to 0; b: 2 x 10k
    assert res.accounts.loc["a", "im"] == pytest.approx(10_000, rel=REL)
    assert res.accounts.loc["b", "im"] == pytest.approx(20_000, rel=REL)
    pd.testing.assert_frame_equal(positions, before)


def test_isolated_addons_apply_per_position():
    addons = {"delta_shock": {"threshold": 150_000.0, "shock": 0.1}}
    positions = book(("F", 1.0), ("F3", 1.0))
    cross = engine(addons=addons).margin(positions)
    iso = engine(addons=addons, mode="isolated").margin(positions)
    assert cross.accounts.loc["a", "delta_shock"] == pytest.approx(0.1 * 50_000, rel=REL)  # $200k net
    assert iso.accounts.loc["a", "delta_shock"] == 0.0  # $100k each


def test_collateral_equity_ratio_and_liquidation():
    eng = engine(mm_factor=0.8, collateral_haircut={"default": 0.0, "BTC": 0.1})
    collateral = pd.DataFrame(
        {
            "account": ["a", "a", "a", "c"],
            "currency": ["BTC", "USDC", "ETH", "USDC"],
            "amount": [1.0, 5_000.0, -1.0, 100.0],
        }
    )
    before = collateral.copy()
    res = eng.margin(book(("F", 1.0)) + book(("F", 1.0), account="b"), collateral=collateral)
    pd.testing.assert_frame_equal(collateral, before)
    a, b, c = (res.accounts.loc[k] for k in "abc")
    # 1 BTC at 90 % + 5,000 USDC - a 1 ETH debt (no haircut on debts)
    assert a["equity"] == pytest.approx(0.9 * 100_000 + 5_000 - 4_000, rel=REL)
    assert a["mm"] == pytest.approx(8_000, rel=REL)
    assert a["margin_ratio"] == pytest.approx(8_000 / 91_000, rel=REL)
    assert a["available"] == pytest.approx(91_000 - 10_000, rel=REL)
    assert not a["liquidation"]
    assert b["equity"] == 0.0 and b["margin_ratio"] == math.inf and b["liquidation"]  # no collateral
    assert c["im"] == 0.0 and c["equity"] == 100.0 and c["margin_ratio"] == 0.0 and not c["liquidation"]
    # the same balances as a mapping
    res2 = eng.margin(book(("F", 1.0)), collateral={"a": {"BTC": 1.0, "USDC": 5_000.0, "ETH": -1.0}})
    assert res2.accounts.loc["a", "equity"] == pytest.approx(91_000, rel=REL)


def test_liquidation_when_equity_below_mm_and_unrealised_pnl():
    eng = engine(mm_factor=0.8)
    positions = pd.DataFrame(
        {"account": ["a"], "instrument": ["I"], "quantity": [1_000.0], "unrealised_pnl": [-0.02]}
    )  # BTC, the inverse perp's settlement currency
    res = eng.margin(positions, collateral=[{"account": "a", "currency": "USD", "amount": 2_000.0}])
    row = res.accounts.loc["a"]
    coins = 1_000 * 10 / 100_000
    mm = 0.8 * coins * (1 / 0.9 - 1) * 100_000  # long inverse perp: worst at -10 %
    assert row["mm"] == pytest.approx(mm, rel=REL)
    assert row["equity"] == pytest.approx(2_000 - 0.02 * 100_000, rel=REL)  # = 0
    assert row["liquidation"] and row["margin_ratio"] == math.inf


def test_no_collateral_leaves_equity_unknown():
    res = engine().margin(LONG_BTC_SHORT_ETH)
    assert math.isnan(res.accounts.loc["a", "equity"]) and math.isnan(res.accounts.loc["a", "margin_ratio"])
    assert res.accounts["liquidation"].isna().all()


def test_reporting_currency():
    res = engine(currency="BTC", mm_factor=0.5).margin(book(("F", 1.0)), collateral={"a": {"USD": 50_000.0}})
    row = res.accounts.loc["a"]
    assert res.currency == "BTC"
    assert row["im"] == pytest.approx(0.1, rel=REL) and row["mm"] == pytest.approx(0.05, rel=REL)
    assert row["equity"] == pytest.approx(0.5, rel=REL)
    assert res.by_unit.iloc[0]["loss_usd"] == pytest.approx(10_000, rel=REL)  # by_unit stays in USD


def test_book_input_and_bad_mode():
    eng = engine()
    book_ = eng.book(LONG_BTC_SHORT_ETH, accounts=["idle"])
    res = eng.margin(book_)
    assert list(res.accounts.index) == ["a", "idle"]
    assert res.accounts.loc["a", "im"] == pytest.approx(14_000, rel=REL)
    with pytest.raises(ValueError, match="mode: must be 'cross' or 'isolated'"):
        eng.margin(LONG_BTC_SHORT_ETH, mode="segregated")
    with pytest.raises(ValueError, match=r"positions row 1: margin_mode must be 'cross' or 'isolated'"):
        eng.margin(
            pd.DataFrame(
                {
                    "account": ["a", "a"],
                    "instrument": ["F", "E"],
                    "quantity": [1.0, 1.0],
                    "margin_mode": ["cross", "solo"],
                }
            )
        )
    with pytest.raises(ValueError, match=r"collateral row 0: .*no USD price for settlement currency 'DOGE'"):
        eng.margin(LONG_BTC_SHORT_ETH, collateral={"a": {"DOGE": 1.0}})
    with pytest.raises(ValueError, match=r"collateral row 0: amount: must be finite"):
        eng.margin(LONG_BTC_SHORT_ETH, collateral=[{"account": "a", "currency": "USD", "amount": float("nan")}])
    with pytest.raises(ValueError, match=r"collateral: missing column\(s\) \['amount'\]"):
        eng.margin(LONG_BTC_SHORT_ETH, collateral=[{"account": "a", "currency": "USD"}])


def test_large_book_both_modes():
    # 20,000 positions over 5,000 accounts, both modes (speed is for bench/, not asserted here)
    rng = np.random.default_rng(7)
    n = 20_000
    positions = pd.DataFrame(
        {
            "account": rng.integers(0, 5_000, n),
            "instrument": rng.choice(list("FEUI"), n),
            "quantity": rng.normal(0, 3, n),
        }
    )
    eng = engine(
        netting="account",
        addons={"roll_shock": {"min_annualised_move": 0.01}, "delta_shock": {"threshold": 1e5, "shock": 0.1}},
    )
    for mode in ("cross", "isolated"):
        res = eng.margin(positions, mode=mode)
        assert len(res.accounts) == positions["account"].nunique()
        parts = res.accounts[["scan_risk", "roll_shock", "delta_shock"]].sum(axis=1)
        np.testing.assert_allclose(parts, res.accounts["risk"], rtol=1e-12)
