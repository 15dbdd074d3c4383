"""The high-level engine: instruments + market + model -> margin, checked against hand values and
against the NumPy reference pipeline; its bad-input handling; the demo and the CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

import marginkernel as mk
from marginkernel import reference, scenarios
from marginkernel.cli import main as cli_main
from marginkernel.demo import demo_inputs, run_demo

T0 = "2026-11-21T08:00:00Z"
EXP = "2026-12-27T08:00:00Z"


def market(**extra):
    base = {"time": T0, "spot": {"BTC": 100_000.0, "ETH": 4_000.0}, "vols": {"C": 0.6, "P": 0.6}}
    base.update(extra)
    return mk.Market.from_dict(base)


def instruments():
    return mk.Instruments.from_records(
        [
            {"id": "F", "kind": "future", "underlying": "BTC", "expiry": EXP},
            {"id": "C", "kind": "call", "underlying": "BTC", "strike": 100_000.0, "expiry": EXP},
            {"id": "P", "kind": "put", "underlying": "BTC", "strike": 100_000.0, "expiry": EXP},
            {"id": "IPERP", "kind": "perpetual", "underlying": "BTC", "settlement": "inverse", "multiplier": 10.0},
            {"id": "E", "kind": "perpetual", "underlying": "ETH"},
        ]
    )


def grid_model(**kw):
    params = dict(builder="range_points", scenario_params={"up": 0.1, "down": 0.1, "points": 10})
    params.update(kw)
    return mk.MarginModel(name="test", **params)


def test_linear_future_margin_is_the_largest_move():
    eng = mk.Engine(instruments(), market(), grid_model(mm_factor=0.75))
    res = eng.margin([{"account": "a", "instrument": "F", "quantity": 2.0}])
    # No carry: F = spot; the worst of +-10% on a long linear future is the -10% move.
    assert res.accounts.loc["a", "im"] == pytest.approx(2 * 100_000.0 * 0.1, rel=1e-14)
    assert res.accounts.loc["a", "mm"] == pytest.approx(0.75 * 2 * 100_000.0 * 0.1, rel=1e-14)
    assert res.accounts.loc["a", "worst_scenario"] == "price -1 of range"
    assert res.accounts.loc["a", "worst_unit"] == "BTC/USD"


def test_inverse_perp_margin_in_coin_and_usd():
    eng = mk.Engine(instruments(), market(), grid_model())
    res = eng.margin([{"account": "a", "instrument": "IPERP", "quantity": -1000.0}])
    # Short 10,000 USD notional of an inverse perp: coin P&L at +10% is -N (1/F - 1/(1.1 F)).
    coin = 10_000.0 * (1 / 100_000.0 - 1 / 110_000.0)
    row = res.by_unit.set_index("risk_unit").loc["BTC"]
    assert row["currency"] == "BTC"
    assert row["loss"] == pytest.approx(coin, rel=1e-13)
    assert row["loss_usd"] == pytest.approx(coin * 100_000.0, rel=1e-13)
    assert res.accounts.loc["a", "im"] == pytest.approx(coin * 100_000.0, rel=1e-13)


def test_engine_matches_the_reference_pipeline():
    inst, mkt, positions = demo_inputs()
    eng = mk.Engine(inst, mkt, mk.load_model("deribit-pm"))
    res = eng.margin(positions)
    m, sc = eng.market, eng.scenario_set
    risk, _ = reference.revalue(
        inst.kind,
        inst.settlement,
        m.unit_of_row,
        inst.strike,
        m.expiry_years,
        inst.multiplier,
        m.forward,
        m.discount,
        m.vol,
        m.unit_spot,
        **sc.kernel_arguments(),
    )
    np.testing.assert_allclose(eng.risk, risk, rtol=0, atol=1e-9)  # USD-scale values, ~1e-15 relative
    # Deribit's extended table counts options only: futures and perpetuals add nothing there.
    risk[np.ix_(~np.isin(inst.kind, [2, 3]), sc.options_only)] = 0.0
    book = eng.book(positions)
    pnl = reference.net(risk, m.unit_of_row, len(eng.units), book.account_start, book.instrument, book.quantity)
    loss, _ = reference.worst_loss(pnl.reshape(-1, pnl.shape[2]), sc.weight, 1.0)
    im = (loss.reshape(pnl.shape[:2]) * m.unit_fx).sum(axis=1)
    np.testing.assert_allclose(res.accounts["scan_risk"].to_numpy(), im, rtol=1e-11)
    # IM = risk-matrix margin + roll shock + delta shock; MM = 0.8 x IM.
    np.testing.assert_allclose(
        res.accounts["im"], res.accounts[["scan_risk", "roll_shock", "delta_shock"]].sum(axis=1), rtol=1e-12
    )
    np.testing.assert_allclose(res.accounts["mm"], 0.8 * res.accounts["im"], rtol=1e-11)


def test_risk_arrays_are_cached_and_shared():
    eng = mk.Engine(instruments(), market(), grid_model())
    risk = eng.risk
    eng.margin([{"account": "a", "instrument": "F", "quantity": 1.0}])
    eng.margin([{"account": "b", "instrument": "C", "quantity": 1.0}])
    assert eng.risk is risk
    assert eng.risk_arrays().shape == (5, 10)


def test_accounts_without_positions_get_zero_and_empty_book_is_an_error():
    eng = mk.Engine(instruments(), market(), grid_model())
    res = eng.margin([], accounts=["idle"])
    assert res.accounts.loc["idle", "im"] == 0.0 and res.accounts.loc["idle", "mm"] == 0.0
    with pytest.raises(ValueError, match="empty book"):
        eng.margin([])


def test_offsetting_positions_and_repeated_rows():
    eng = mk.Engine(instruments(), market(), grid_model())
    res = eng.margin(
        [
            {"account": "flat", "instrument": "C", "quantity": 3.0},
            {"account": "flat", "instrument": "C", "quantity": -3.0},
            {"account": "twice", "instrument": "F", "quantity": 1.0},
            {"account": "twice", "instrument": "F", "quantity": 1.0},
            {"account": "once", "instrument": "F", "quantity": 2.0},
        ]
    )
    assert res.accounts.loc["flat", "im"] == 0.0
    assert res.accounts.loc["twice", "im"] == res.accounts.loc["once", "im"]
    np.testing.assert_array_equal(res.scenario_pnl("twice"), res.scenario_pnl("once"))


def test_synthetic_forward_put_call_parity_through_the_engine():
    eng = mk.Engine(instruments(), market(), grid_model())
    res = eng.margin(
        [
            {"account": "syn", "instrument": "C", "quantity": 1.0},
            {"account": "syn", "instrument": "P", "quantity": -1.0},
            {"account": "fut", "instrument": "F", "quantity": 1.0},
        ]
    )
    # Zero rates: long call - long put = long forward, scenario by scenario.
    np.testing.assert_allclose(
        res.scenario_pnl("syn")["BTC/USD"], res.scenario_pnl("fut")["BTC/USD"], rtol=0, atol=1e-9
    )


def test_var_and_es_on_joint_historical_scenarios():
    inst = instruments()
    returns = np.random.default_rng(3).normal(0, 0.03, size=(2, 500))
    model = mk.MarginModel(name="hvar", builder="range_points", measure="es", netting="account", confidence=0.975)
    # Joint historical scenarios for BTC and ETH (the risk units' underlyings), given to the engine.
    hist = scenarios.historical(["BTC", "ETH"], {"BTC": returns[0], "ETH": returns[1]})
    eng = mk.Engine(inst, market(), model, scenarios=hist)
    res = eng.margin(
        [{"account": "a", "instrument": "F", "quantity": 1.0}, {"account": "a", "instrument": "E", "quantity": -10.0}]
    )
    joint = 100_000.0 * (1 + returns[0] - 1) - 10 * 4_000.0 * returns[1]
    var, es = reference.value_at_risk(joint[None, :], 0.975)
    assert res.accounts.loc["a", "im"] == pytest.approx(es[0], rel=1e-12)
    assert var[0] > 0 and es[0] >= var[0]


def test_scenario_builders_follow_their_definitions():
    span = scenarios.span16(["X"], price_scan=0.09, vol_scan=0.2)
    assert span.n_scenarios == 16
    np.testing.assert_allclose(
        span.price_multiplier[0, [0, 2, 6, 10, 14, 15]], [1.0, 1.03, 1.06, 1.09, 1.27, 0.73], rtol=1e-15
    )
    np.testing.assert_array_equal(span.weight[0, 14:], [0.35, 0.35])
    np.testing.assert_array_equal(span.weight[0, :14], 1.0)
    np.testing.assert_allclose(span.time_shift, 1 / 365)
    assert span.vol_shock == "relative" and span.vol_shift[0, 0] == 0.2 and span.vol_shift[0, 1] == -0.2

    occ = scenarios.range_points(["X"], up=0.06, down=0.08, points=10)
    np.testing.assert_allclose(
        occ.price_multiplier[0] - 1,
        [-0.08, -0.064, -0.048, -0.032, -0.016, 0.012, 0.024, 0.036, 0.048, 0.06],
        atol=1e-15,
    )

    der = scenarios.deribit_grid(["BTC", "ETH"], price_range={"BTC": 0.16, "ETH": 0.18})
    assert der.n_scenarios == 27 + 8
    np.testing.assert_allclose(der.price_multiplier[:, :9].min(axis=1), [0.84, 0.82])
    np.testing.assert_allclose(der.weight[0, 27:], 0.16 / np.abs([-0.66, -0.33, 0.5, 1, 2, 3, 4, 5]))
    np.testing.assert_array_equal(der.vol_shift[0, 27:], 0.5)


def test_demo_runs_and_is_consistent():
    eng, res = run_demo()
    assert list(res.accounts.index) == [
        "delta-hedged",
        "naked-short",
        "calendar",
        "long-straddle",
        "perp-basis",
        "eth-hedged",
    ]
    assert (res.accounts["im"] > 0).all()
    np.testing.assert_allclose(res.accounts["mm"], 0.8 * res.accounts["im"], rtol=1e-15)
    # The naked short is the riskiest book; the calendar spread nets almost everything.
    assert res.accounts["im"].idxmax() == "naked-short"
    assert res.accounts["im"].idxmin() == "calendar"


def test_cli_demo_and_json(capsys):
    assert cli_main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "naked-short" in out and "deribit-pm" in out
    assert cli_main(["demo", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {a["account"] for a in data["accounts"]} >= {"calendar", "naked-short"}
    assert all(math.isclose(a["mm"], 0.8 * a["im"], rel_tol=1e-12) for a in data["accounts"])


def test_cli_margin_on_files(tmp_path, capsys):
    inst, _, positions = demo_inputs()
    inst.to_frame().assign(expiry=lambda f: f["expiry"].astype(str).replace("NaT", "")).to_csv(
        tmp_path / "inst.csv", index=False
    )
    positions.to_csv(tmp_path / "pos.csv", index=False)
    from importlib import resources

    (tmp_path / "mkt.toml").write_bytes((resources.files("marginkernel") / "data" / "demo_market.toml").read_bytes())
    args = [
        "margin",
        str(tmp_path / "pos.csv"),
        "--model",
        "deribit-pm",
        "--instruments",
        str(tmp_path / "inst.csv"),
        "--market",
        str(tmp_path / "mkt.toml"),
        "--json",
    ]
    assert cli_main(args) == 0
    data = json.loads(capsys.readouterr().out)
    _, expected = run_demo()
    got = {a["account"]: a["im"] for a in data["accounts"]}
    for acc, im in expected.accounts["im"].items():
        assert got[acc] == pytest.approx(im, rel=1e-12)
    assert cli_main(args[:1] + [str(tmp_path / "missing.csv")] + args[2:]) == 2
    assert "missing.csv" in capsys.readouterr().err


# --- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "record, message",
    [
        ({"id": "X", "kind": "swap", "underlying": "BTC"}, "kind"),
        ({"id": "X", "kind": "call", "underlying": "BTC", "expiry": EXP}, "strike"),
        ({"id": "X", "kind": "call", "underlying": "BTC", "strike": -1.0, "expiry": EXP}, "strike"),
        ({"id": "X", "kind": "call", "underlying": "BTC", "strike": float("nan"), "expiry": EXP}, "strike"),
        ({"id": "X", "kind": "future", "underlying": "BTC"}, "expiry"),
        ({"id": "X", "kind": "future", "underlying": "BTC", "expiry": "not a date"}, "expiry"),
        ({"id": "X", "kind": "future", "underlying": "BTC", "expiry": EXP, "multiplier": 0.0}, "multiplier"),
        ({"id": "X", "kind": "future", "underlying": "BTC", "expiry": EXP, "settlement": "quanto"}, "settlement"),
        ({"id": "X", "kind": "future", "underlying": "BTC", "expiry": EXP, "colour": "red"}, "unknown field"),
        ({"id": "", "kind": "future", "underlying": "BTC", "expiry": EXP}, "'id'"),
    ],
)
def test_bad_instrument_records_name_the_field(record, message):
    with pytest.raises((ValueError, TypeError), match=message):
        mk.Instruments.from_records([{"id": "OK", "kind": "perpetual", "underlying": "BTC"}, record])


def test_duplicate_and_empty_instruments():
    with pytest.raises(ValueError, match=r"instrument 'A' \(row 1\): duplicate id"):
        mk.Instruments.from_records([{"id": "A", "kind": "spot", "underlying": "BTC"}] * 2)
    with pytest.raises(ValueError, match="no instruments"):
        mk.Instruments.from_records([])


@pytest.mark.parametrize(
    "change, message",
    [
        ({"spot": {"ETH": 4000.0}}, "no index price for underlying 'BTC'"),
        ({"spot": {"BTC": -1.0, "ETH": 4000.0}}, r"market.spot.BTC: must be > 0"),
        ({"spot": {"BTC": float("inf"), "ETH": 4000.0}}, r"market.spot.BTC: must be finite"),
        ({"vols": {"C": 0.5}}, "no implied vol for option 'P'"),
        ({"vols": {"C": -0.5, "P": 0.5}}, r"market.vols.C: must be >= 0"),
        ({"carry": {"BTC": "high"}}, r"market.carry.BTC: must be a number"),
        ({"tide": 1}, "unknown key"),
    ],
)
def test_bad_market_names_the_field(change, message):
    with pytest.raises((ValueError, TypeError), match=message):
        mk.Engine(instruments(), market(**change), grid_model())


@pytest.mark.parametrize(
    "positions, exc, message",
    [
        ([{"account": "a", "instrument": "NOPE", "quantity": 1.0}], ValueError, r"row 0: unknown instrument 'NOPE'"),
        (
            [
                {"account": "a", "instrument": "F", "quantity": 1.0},
                {"account": "a", "instrument": "F", "quantity": float("nan")},
            ],
            ValueError,
            "row 1: quantity must be finite",
        ),
        ([{"account": "a", "instrument": "F", "quantity": "ten"}], TypeError, "quantity: must be numeric"),
        ([{"account": None, "instrument": "F", "quantity": 1.0}], ValueError, "row 0: missing account"),
        ([{"account": "a", "instrument": "F"}], ValueError, r"missing column\(s\) \['quantity'\]"),
    ],
)
def test_bad_positions_name_the_row(positions, exc, message):
    eng = mk.Engine(instruments(), market(), grid_model())
    with pytest.raises(exc, match=message):
        eng.margin(positions)


def test_inputs_are_not_mutated():
    inst, mkt, positions = demo_inputs()
    before_pos = positions.copy(deep=True)
    before_inst = inst.to_frame()
    eng = mk.Engine(inst, mkt, mk.load_model("deribit-pm"))
    eng.margin(positions)
    pd.testing.assert_frame_equal(positions, before_pos)
    pd.testing.assert_frame_equal(inst.to_frame(), before_inst)


def test_model_file_errors_name_the_key(tmp_path):
    bad = tmp_path / "m.toml"
    bad.write_text('[model]\nname = "x"\nmesure = "var"\n[scenarios]\nbuilder = "span16"\n')
    with pytest.raises(ValueError, match="model.mesure: unknown key"):
        mk.MarginModel.from_toml(bad)
    bad.write_text('[model]\nname = "x"\n[scenarios]\nbuilder = "span16"\nprice_skan = 0.1\n')
    with pytest.raises(ValueError, match="scenarios.price_skan: not a parameter of span16"):
        mk.MarginModel.from_toml(bad)
    bad.write_text('[model]\nname = "x"\nmm_factor = -1\n[scenarios]\nbuilder = "span16"\n')
    with pytest.raises(ValueError, match="model.mm_factor"):
        mk.MarginModel.from_toml(bad)
    bad.write_text('[model\nname = "x"\n')
    with pytest.raises(ValueError, match="not valid TOML"):
        mk.MarginModel.from_toml(bad)


def test_discount_factor_per_expiry_overrides_rates():
    inst = mk.Instruments.from_records(
        [{"id": "C", "kind": "call", "underlying": "BTC", "strike": 100.0, "expiry": "2027-01-01T00:00:00Z"}]
    )
    base = {"time": "2026-01-01T00:00:00Z", "spot": {"BTC": 100.0}, "vols": {"C": 0.5}, "rates": {"BTC": 0.05}}
    by_rate = mk.Market.from_dict(base).resolve(inst).discount[0]
    assert by_rate == pytest.approx(math.exp(-0.05), rel=1e-15)
    quoted = mk.Market.from_dict({**base, "discounts": {"BTC": {"2027-01-01T00:00:00Z": 0.9}}})
    assert quoted.resolve(inst).discount[0] == 0.9
    with pytest.raises(ValueError, match=r"market.discounts.BTC\[.*\]: must be > 0"):
        mk.Market.from_dict({**base, "discounts": {"BTC": {"2027-01-01": 0.0}}})


def test_revalue_into_a_reused_buffer():
    inst = instruments()
    eng = mk.Engine(inst, market(), grid_model())
    m, sc = eng.market, eng.scenario_set
    args = (
        inst.kind,
        inst.settlement,
        m.unit_of_row,
        inst.strike,
        m.expiry_years,
        inst.multiplier,
        m.forward,
        m.discount,
        m.vol,
        m.unit_spot,
    )
    out = np.full_like(eng.risk, np.nan)
    risk, _ = mk.kernels.revalue(*args, out=out, **sc.kernel_arguments())
    assert risk is out
    np.testing.assert_array_equal(out, eng.risk)
    with pytest.raises(ValueError, match=r"out: has shape \(5, 9\), expected \(5, 10\)"):
        mk.kernels.revalue(*args, out=np.zeros((5, 9)), **sc.kernel_arguments())
    with pytest.raises(TypeError, match="out: expected a float64"):
        mk.kernels.revalue(*args, out=np.zeros((5, 10), np.float32), **sc.kernel_arguments())
    with pytest.raises(ValueError, match="out: must be C-contiguous and writeable"):
        mk.kernels.revalue(*args, out=np.zeros((10, 5)).T, **sc.kernel_arguments())


def test_net_into_a_reused_buffer():
    rng = np.random.default_rng(5)
    risk = rng.normal(size=(6, 70))
    unit = np.array([0, 1, 0, 1, 0, 1], np.int32)
    start = np.array([0, 3, 3, 5], np.int64)
    inst = np.array([0, 1, 5, 2, 2], np.int32)
    qty = rng.normal(size=5)
    out = np.full((3, 2, 70), np.nan)
    got = mk.kernels.net(risk, unit, 2, start, inst, qty, out=out)
    assert got is out
    np.testing.assert_allclose(out, reference.net(risk, unit, 2, start, inst, qty), rtol=0, atol=1e-15)
    assert (out[1] == 0).all()  # the account without positions is cleared, not left as it was
    with pytest.raises(ValueError, match="out: overlaps an input array"):
        mk.kernels.net(risk, unit, 2, start, inst, qty, out=risk.reshape(6, 1, 70)[:3].reshape(3, 1, 70))
