"""Stress: user scenarios, historical replays and reverse stress, checked against hand values."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import marginkernel as mk
from marginkernel import reference, stress
from marginkernel.demo import demo_inputs

T0 = "2026-11-21T08:00:00Z"
EXP = "2026-12-27T08:00:00Z"


def engine():
    inst = mk.Instruments.from_records(
        [
            {"id": "F", "kind": "future", "underlying": "BTC", "expiry": EXP},
            {"id": "G", "kind": "future", "underlying": "ETH", "expiry": EXP},
            {"id": "C", "kind": "call", "underlying": "BTC", "strike": 100_000.0, "expiry": EXP},
        ]
    )
    mkt = mk.Market.from_dict({"time": T0, "spot": {"BTC": 100_000.0, "ETH": 4_000.0}, "vols": {"C": 0.6}})
    return mk.Engine(inst, mkt, mk.MarginModel(name="t", builder="range_points"))


BOOK = pd.DataFrame({"account": ["a", "a", "b"], "instrument": ["F", "G", "C"], "quantity": [2.0, -10.0, 5.0]})


def test_user_stress_linear_moves_by_hand():
    out = stress.run(
        engine(),
        BOOK,
        [stress.Stress("crash", {"BTC": -0.3, "ETH": -0.4})],
        collateral={"a": {"USD": 1e5}, "b": {"USD": 0.0}},
    ).set_index("account")
    # long 2 BTC futures lose 2 x 30,000; short 10 ETH futures gain 10 x 1,600
    assert out.loc["a", "pnl"] == pytest.approx(-60_000.0 + 16_000.0, rel=1e-12)
    assert out.loc["a", "equity_after"] == pytest.approx(1e5 - 44_000.0, rel=1e-12)


def test_user_stress_vol_and_time_fully_revalue_the_option():
    eng = engine()
    out = stress.run(eng, BOOK[BOOK.account == "b"], [{"name": "vol", "vol": {"BTC": 0.5}, "days": 10}])
    m = eng.market
    t, f, df = m.expiry_years[2], m.forward[2], m.discount[2]
    now = reference.black76(f, 100_000.0, 0.6, t, df, True)
    later = reference.black76(f, 100_000.0, 0.9, t - 10 / 365, df, True)
    assert out["pnl"].iloc[0] == pytest.approx(5 * (later - now), rel=1e-10)


def test_stress_bad_input_names_the_field():
    eng = engine()
    with pytest.raises(ValueError, match=r"stress\[x\].price.SOL"):
        stress.run(eng, BOOK, [stress.Stress("x", {"SOL": -0.1})])
    with pytest.raises(ValueError, match=r"stress\[x\].price.BTC"):
        stress.Stress("x", {"BTC": -1.5})
    with pytest.raises(ValueError, match=r"stress\[x\].days"):
        stress.Stress("x", days=-1)
    with pytest.raises(ValueError, match=r"stress\[0\].shock: unknown key"):
        stress.from_tables([{"name": "a", "shock": 1}])
    with pytest.raises((ValueError, TypeError), match=r"stress\[x\].price.BTC"):
        stress.Stress("x", {"BTC": "down"})


@pytest.fixture(scope="module")
def history():
    return stress.load_closes()  # the closes shipped in the package (marginkernel.historical.load_history)


def test_load_closes_reads_a_history_file_and_names_its_problems(tmp_path):
    good = tmp_path / "closes.csv"
    good.write_text("date,btc_usdt,eth_usdt\n2020-03-11,7935.0,194.0\n2020-03-12,4800.0,107.5\n")
    closes = stress.load_closes(good)
    assert list(closes.columns) == ["BTC", "ETH"]
    assert str(closes.index[1].date()) == "2020-03-12"
    assert closes.loc["2020-03-12", "BTC"] == 4800.0
    bad = tmp_path / "bad.csv"
    bad.write_text("date,btc_usdt\n2020-03-11,7935.0\n2020-03-12,-1\n")
    with pytest.raises(ValueError, match=r"bad.csv: line 3 \(2020-03-12\): column 'btc_usdt': price must be > 0"):
        stress.load_closes(bad)
    with pytest.raises(ValueError, match="neither"):
        stress.load_closes(tmp_path / "missing.csv")


def test_worst_historical_moves_have_their_dates(history):
    closes = history
    assert list(closes.columns) == ["BTC", "ETH"]
    assert len(closes) == 2694
    worst = stress.worst_moves(closes, (1,)).set_index(["underlying", "side"])
    # README: largest daily log returns BTC -0.50 and ETH -0.59 on 2020-03-12
    assert str(worst.loc[("BTC", "worst"), "end"].date()) == "2020-03-12"
    assert math.log1p(worst.loc[("BTC", "worst"), "move"]) == pytest.approx(-0.50, abs=0.005)
    assert math.log1p(worst.loc[("ETH", "worst"), "move"]) == pytest.approx(-0.59, abs=0.005)


def test_replay_ranks_the_worst_joint_move_for_a_long_future(history):
    eng = engine()
    closes = history
    out = stress.replay(eng, BOOK[BOOK.account == "a"].iloc[:1], (1, 5), top=2, closes=closes)
    first = out[(out.days == 1) & (out["rank"] == 1)].iloc[0]
    assert str(first["end"].date()) == "2020-03-12"
    assert first["pnl"] == pytest.approx(2 * 100_000.0 * first["move_BTC"], rel=1e-12)
    five = stress.moves(closes, 5)
    assert out[(out.days == 5) & (out["rank"] == 1)]["move_BTC"].iloc[0] == pytest.approx(five["BTC"].min())


def test_reverse_stress_finds_the_exhausting_move():
    eng = engine()
    book = BOOK[BOOK.account == "a"].iloc[:1]
    out = stress.reverse_stress(
        eng,
        book,
        {"down": {"price": {"default": -1.0}}, "up": {"price": {"BTC": 1.0}}},
        collateral={"a": {"USD": 50_000.0}},
    ).set_index("direction")
    # long 2 BTC futures at 100,000 with 50,000 equity: exhausted by a 25 % fall
    assert out.loc["down", "scale"] == pytest.approx(0.25, abs=1e-8)
    assert out.loc["down", "equity_after"] == pytest.approx(0.0, abs=1e-3)
    assert np.isnan(out.loc["up", "scale"])  # a rally never exhausts a long future


def test_reverse_stress_bad_input():
    eng = engine()
    with pytest.raises(ValueError, match="collateral"):
        stress.reverse_stress(eng, BOOK, {"d": {"price": {"default": -1}}}, collateral=None)
    with pytest.raises(ValueError, match="zero direction"):
        stress.reverse_stress(eng, BOOK, {"d": {"price": {"default": 0}}}, collateral={"a": {"USD": 1}})
    with pytest.raises(ValueError, match="max_scale"):
        stress.reverse_stress(eng, BOOK, {"d": {"price": {"default": -1}}}, collateral={"a": {"USD": 1}}, max_scale=2)


def test_demo_book_replay_runs_on_every_account(history):
    inst, mkt, pos = demo_inputs()
    eng = mk.Engine(inst, mkt, mk.load_model("deribit-pm"))
    out = stress.replay(eng, pos, (1,), top=1, closes=history)
    assert len(out) == pos["account"].nunique()
    assert np.isfinite(out["pnl"]).all()
