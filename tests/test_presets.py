"""The shipped presets: dated, sourced, carrying the published parameters, and margining simple
books to hand-computed values (no carry, zero rates: forwards = index; tolerance 1e-12 relative)."""

from __future__ import annotations

import re
import tomllib
from importlib import resources

import numpy as np
import pytest

import marginkernel as mk

T0 = "2026-11-21T08:00:00Z"
GENERIC = ["deribit-pm", "okx-pm", "span", "tims"]
REL = 1e-12


def test_presets_are_listed_dated_and_sourced():
    assert set(mk.presets()) >= {"deribit-pm", "derive-pm2", "okx-pm", "span", "tims"}
    for name in GENERIC:
        model = mk.load_model(name)
        assert isinstance(model, mk.MarginModel) and model.name == name
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", model.as_of), name
        assert model.source and model.description
        text = (resources.files("marginkernel") / "presets" / f"{name}.toml").read_text()
        assert "http" in text and "Published" in text and "Illustrative" in text, name
        tomllib.loads(text)  # valid TOML
    assert type(mk.load_model("derive-pm2")).__name__ == "PM2Params"


def test_deribit_pm_parameters():
    m = mk.load_model("deribit-pm")
    assert (m.netting, m.im_factor, m.mm_factor, m.gain_factor) == ("currency", 1.0, 0.8, 0.0)
    sc = m.scenarios(["BTC", "ETH"])
    assert sc.n_scenarios == 9 * 3 + 8
    np.testing.assert_allclose(
        sc.price_multiplier[:, :9], 1 + np.outer([0.16, 0.18], np.linspace(-1, 1, 9)), rtol=1e-15
    )
    np.testing.assert_array_equal(sc.vol_shift[0, [0, 9, 18]], [0.5, 0.0, -0.25])
    assert (sc.vol_shock, sc.short_power, sc.long_power, sc.vol_up_floor) == ("multiplicative", 0.30, 0.13, 0.5)
    np.testing.assert_allclose(sc.price_multiplier[0, 27:] - 1, [-0.66, -0.33, 0.5, 1, 2, 3, 4, 5], rtol=1e-15)
    np.testing.assert_allclose(sc.weight[1, 27:], 0.18 / np.abs([-0.66, -0.33, 0.5, 1, 2, 3, 4, 5]), rtol=1e-15)
    assert sc.options_only[27:].all() and not sc.options_only[:27].any()
    assert m.components == ("roll_shock", "delta_shock")


def test_deribit_pm_vol_shock_is_expiry_scaled():
    # one call 10 days out (short power 0.30) and one 100 days out (long power 0.13): the vol-up
    # scenario at 0 price move revalues at sigma * (1 + 0.5 * (30 / DTE)^p), floored at 50 %
    inst = mk.Instruments.from_records(
        [
            {"id": "S", "kind": "call", "underlying": "BTC", "strike": 100_000.0, "expiry": "2026-12-01T08:00:00Z"},
            {"id": "L", "kind": "call", "underlying": "BTC", "strike": 100_000.0, "expiry": "2027-03-01T08:00:00Z"},
        ]
    )
    market = mk.Market.from_dict({"time": T0, "spot": {"BTC": 100_000.0}, "vols": {"S": 0.6, "L": 0.6}})
    eng = mk.Engine(inst, market, mk.load_model("deribit-pm"))
    for k, days, power in ((0, 10, 0.30), (1, 100, 0.13)):
        t = days / 365
        up = 0.6 * (1 + 0.5 * (30 / days) ** power)
        down = 0.6 * (1 - 0.25 * (30 / days) ** power)
        for col, vol in ((4, up), (22, down)):  # 0 % move, vol up / vol down
            want = mk.reference.black76(100_000.0, 100_000.0, vol, t, 1.0, True) - mk.reference.black76(
                100_000.0, 100_000.0, 0.6, t, 1.0, True
            )
            assert eng.risk[k, col] == pytest.approx(float(want), rel=1e-11)


def test_span_preset():
    m = mk.load_model("span")
    assert (m.im_factor, m.mm_factor, m.netting) == (1.1, 1.0, "risk_unit")
    sc = m.scenarios(["BTC"])
    assert sc.n_scenarios == 16
    np.testing.assert_allclose(sc.price_multiplier[0, 14:], [1 + 3 * 0.2, 1 - 3 * 0.2], rtol=1e-15)
    np.testing.assert_array_equal(sc.weight[0, 14:], 0.35)
    np.testing.assert_allclose(sc.time_shift, 1 / 250, rtol=1e-15)
    inst = mk.Instruments.from_records(
        [{"id": "BTCF", "kind": "future", "underlying": "BTC", "expiry": "2026-12-25T08:00:00Z", "multiplier": 5.0}]
    )
    eng = mk.Engine(inst, mk.Market.from_dict({"time": T0, "spot": {"BTC": 100_000.0}}), m)
    res = eng.margin([{"account": "a", "instrument": "BTCF", "quantity": 1.0}])
    mm = 5 * 100_000 * 0.2 * 3 * 0.35  # the covered extreme move beats the full scan (0.21 > 0.20)
    assert res.accounts.loc["a", "mm"] == pytest.approx(mm, rel=REL)
    assert res.accounts.loc["a", "im"] == pytest.approx(1.1 * mm, rel=REL)
    assert res.accounts.loc["a", "worst_scenario"].startswith("16:")


def test_tims_preset():
    m = mk.load_model("tims")
    sc = m.scenarios(["SPX", "RUT", "AAPL"])
    assert sc.n_scenarios == 10
    np.testing.assert_allclose(sc.price_multiplier.min(axis=1), [0.92, 0.90, 0.85], rtol=1e-15)
    np.testing.assert_allclose(sc.price_multiplier.max(axis=1), [1.06, 1.10, 1.15], rtol=1e-15)
    assert not np.any(sc.price_multiplier == 1.0)  # ten points, no zero move
    inst = mk.Instruments.from_records(
        [
            {"id": "ES", "kind": "future", "underlying": "SPX", "expiry": "2026-12-18T14:30:00Z", "multiplier": 50.0},
            {
                "id": "OTM",
                "kind": "call",
                "underlying": "AAPL",
                "strike": 400.0,
                "expiry": "2026-12-18T21:00:00Z",
                "multiplier": 100.0,
            },
        ]
    )
    market = mk.Market.from_dict({"time": T0, "spot": {"SPX": 5_000.0, "AAPL": 200.0}, "vols": {"OTM": 0.25}})
    eng = mk.Engine(inst, market, m)
    res = eng.margin(
        [
            {"account": "fut", "instrument": "ES", "quantity": 1.0},
            {"account": "opt", "instrument": "OTM", "quantity": 4.0},
        ]
    )
    assert res.accounts.loc["fut", "im"] == pytest.approx(0.08 * 5_000 * 50, rel=REL)  # -8 % on a broad index
    # a far out-of-the-money long call loses (almost) nothing: $0.375 x 100 per contract binds
    assert res.accounts.loc["opt", "im"] == pytest.approx(4 * 0.375 * 100, rel=REL)
    assert res.accounts.loc["opt", "per_contract_minimum"] > 0


def test_okx_pm_preset():
    m = mk.load_model("okx-pm")
    assert (m.im_factor, m.mm_factor, m.netting) == (1.3, 1.0, "risk_unit")
    sc = m.scenarios(["BTC", "XRP", "DOGE"])
    assert sc.n_scenarios == 7 + 2
    np.testing.assert_allclose(
        np.sort(sc.price_multiplier[0, :7]) - 1, [-0.12, -0.08, -0.04, 0, 0.04, 0.08, 0.12], atol=1e-15
    )
    np.testing.assert_allclose(sc.price_multiplier[:, 7:] - 1, [[0.24, -0.24], [0.36, -0.36], [0.5, -0.5]], rtol=1e-14)
    np.testing.assert_allclose(sc.weight[:, 7:], 0.333333333333, rtol=1e-15)
    inst = mk.Instruments.from_records(
        [
            {"id": "BTC-USDT-SWAP", "kind": "perpetual", "underlying": "BTC", "currency": "USDT"},
            {
                "id": "BTC-USDT-1Y",
                "kind": "future",
                "underlying": "BTC",
                "currency": "USDT",
                "expiry": "2027-11-21T08:00:00Z",
            },
        ]
    )
    eng = mk.Engine(inst, mk.Market.from_dict({"time": T0, "spot": {"BTC": 100_000.0}}), m)
    res = eng.margin(
        [
            {"account": "perp", "instrument": "BTC-USDT-SWAP", "quantity": 1.0},
            {"account": "fut", "instrument": "BTC-USDT-1Y", "quantity": -1.0},
            {"account": "big", "instrument": "BTC-USDT-SWAP", "quantity": 0.01},
        ]
    )
    perp, fut = res.accounts.loc["perp"], res.accounts.loc["fut"]
    assert perp["mm"] == pytest.approx(12_000, rel=REL)  # MR1 -12 % (MR6: 24 % x 1/3 < 12 %)
    assert perp["im"] == pytest.approx(1.3 * 12_000, rel=REL)
    assert perp["basis"] == 0.0  # a perpetual: T = 0, no basis floor
    assert fut["basis"] == pytest.approx(100_000 * 0.05 * 1.0, rel=REL)  # 5 % annualised x 1 year
    assert fut["mm"] == pytest.approx(12_000 + 5_000, rel=REL)
    # MR7 (0.2 % of a $1,000 notional = $2) does not bind against MR1 ($120): no uplift
    assert res.accounts.loc["big", "minimum_charge"] == 0.0
    assert res.by_unit.set_index("account").loc["big", "minimum_charge"] == pytest.approx(2.0, rel=REL)


def test_okx_minimum_charge_tiers():
    model = mk.MarginModel.from_dict(
        {
            "model": {"name": "x"},
            "scenarios": {"builder": "range_points", "up": 0.001, "down": 0.001, "points": 2},
            "addons": {
                "mr7": {
                    "type": "per_contract_minimum",
                    "rate": 0.002,
                    "basis": "notional",
                    "kinds": ["perpetual"],
                    "tiers": [[0, 1], [10_000, 2], [70_000, 4]],
                }
            },
        }
    )
    inst = mk.Instruments.from_records([{"id": "P", "kind": "perpetual", "underlying": "BTC", "currency": "USDT"}])
    eng = mk.Engine(inst, mk.Market.from_dict({"time": T0, "spot": {"BTC": 100_000.0}}), model)
    res = eng.margin([{"account": "a", "instrument": "P", "quantity": 200.0}])
    # raw $40,000 -> 10,000 x 1 + 30,000 x 2 (OKX's published example logic)
    assert res.accounts.loc["a", "risk"] == pytest.approx(70_000, rel=REL)
