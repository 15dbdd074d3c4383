"""Regression tests for the adversarial review of the library side (issue 9, items 2e, 2g, 2h, 2i):
each input below once gave a silent wrong number, a non-finite result or a crash-like exception;
now each is a ValueError / TypeError naming the field."""

from __future__ import annotations

import numpy as np
import pytest

import marginkernel as mk

T0 = "2026-11-21T08:00:00Z"
BASE = '[model]\nname = "x"\n[scenarios]\n'


def inst(*extra):
    return mk.Instruments.from_records(
        [
            {"id": "F", "kind": "future", "underlying": "BTC", "expiry": "2026-12-27T08:00:00Z"},
            {"id": "C", "kind": "call", "underlying": "BTC", "strike": 100_000.0, "expiry": "2026-12-27T08:00:00Z"},
            {"id": "PERP", "kind": "perpetual", "underlying": "BTC"},
            *extra,
        ]
    )


def mkt(**extra):
    return mk.Market.from_dict({"time": T0, "spot": {"BTC": 100_000.0}, "vols": {"C": 0.6}, **extra})


def grid():
    return mk.MarginModel(name="g", builder="range_points", scenario_params={"up": 0.1, "down": 0.1})


# -- 2e: forwards keyed by date, unknown ids -----------------------------------------------------


def test_forward_keyed_by_date_matches_the_expiry_on_that_date():
    by_time = mkt(forwards={"BTC": {"2026-12-27T08:00:00Z": 135_900.0}}).resolve(inst())
    by_date = mkt(forwards={"BTC": {"2026-12-27": 135_900.0}}).resolve(inst())
    assert by_date.forward[0] == by_time.forward[0] == 135_900.0
    assert by_date.forward[1] == 135_900.0 and by_date.forward[2] == 100_000.0
    df = mkt(discounts={"BTC": {"2026-12-27": 0.99}}).resolve(inst())
    assert df.discount[0] == df.discount[1] == 0.99


def test_forward_keyed_by_an_ambiguous_or_unmatched_date_is_an_error():
    two = inst({"id": "F2", "kind": "future", "underlying": "BTC", "expiry": "2026-12-27T16:00:00Z"})
    with pytest.raises(ValueError, match=r"market.forwards.BTC\['2026-12-27'\]: ambiguous, 2 expiries"):
        mkt(forwards={"BTC": {"2026-12-27": 1.0}}).resolve(two)
    with pytest.raises(ValueError, match=r"market.discounts.BTC\['2026-12-28'\]: no future or option"):
        mkt(discounts={"BTC": {"2026-12-28": 0.9}}).resolve(inst())


@pytest.mark.parametrize("key", ["marks", "vols"])
def test_unknown_ids_under_marks_and_vols_are_errors(key):
    extra = {"marks": {"PERP": 1.0, "PERP-TYPO": 2.0}} if key == "marks" else {"vols": {"C": 0.6, "C2": 0.7}}
    with pytest.raises(ValueError, match=rf"market.{key}: unknown instrument id\(s\) \['(PERP-TYPO|C2)'\]"):
        mk.Engine(inst(), mkt(**extra), grid())


# -- 2g: non-finite results from finite input ----------------------------------------------------


def test_revaluation_overflow_names_the_instrument():
    big = inst(
        {"id": "HUGE", "kind": "future", "underlying": "BTC", "expiry": "2026-12-27T08:00:00Z", "multiplier": 1e305}
    )
    with pytest.raises(ValueError, match=r"instrument 'HUGE' \(row 3\): its revaluation overflows"):
        mk.Engine(big, mkt(), grid())


def test_position_overflow_names_the_account():
    eng = mk.Engine(inst(), mkt(), grid())
    with pytest.raises(ValueError, match=r"account 'a' overflows"):
        eng.margin(
            [
                {"account": "a", "instrument": "F", "quantity": 1e306},
                {"account": "b", "instrument": "F", "quantity": 1.0},
            ]
        )


def test_isolated_positions_whose_sum_overflows_name_the_account():
    two = inst({"id": "F2", "kind": "future", "underlying": "BTC", "expiry": "2026-12-27T08:00:00Z"})
    eng = mk.Engine(two, mkt(), grid())
    book = [
        {"account": "ok", "instrument": "F", "quantity": 1.0, "margin_mode": "isolated"},
        {"account": "big", "instrument": "F", "quantity": 1e304, "margin_mode": "isolated"},
        {"account": "big", "instrument": "F2", "quantity": 1e304, "margin_mode": "isolated"},
    ]
    with pytest.raises(ValueError, match=r"account 'big' overflows"):
        eng.margin(book)
    book[1]["quantity"] = book[2]["quantity"] = 1e3
    res = eng.margin(book)  # finite again: isolated P&L rows add into the accounts' totals
    np.testing.assert_array_equal(res.pnl[1], eng.margin([{**r, "margin_mode": "cross"} for r in book]).pnl[1])
    assert res.accounts.loc["big", "im"] == pytest.approx(2 * 1e3 * 10_000.0, rel=1e-14)


def test_addon_overflow_names_the_addon():
    model = mk.MarginModel(name="g", builder="range_points", addons={"roll_shock": {"min_annualised_move": 1e300}})
    eng = mk.Engine(inst(), mkt(), model)
    with pytest.raises(ValueError, match=r"addons.roll_shock: the charge overflows for risk unit 'BTC/USD'"):
        eng.margin([{"account": "a", "instrument": "PERP", "quantity": 1e10}])


# -- 2h: clean ValueErrors instead of OverflowError / RecursionError / runaway sizes ------------


@pytest.mark.parametrize(
    "extra, message",
    [
        ({"carry": {"BTC": 1e6}}, r"market.carry.BTC: must be <= 10.0"),
        ({"rates": {"BTC": -1e4}}, r"market.rates.BTC: must be >= -10.0"),
    ],
)
def test_huge_carry_and_rates_are_value_errors(extra, message):
    with pytest.raises(ValueError, match=message):
        mk.Engine(inst(), mkt(**extra), grid())


def test_deeply_nested_model_file_is_a_value_error(tmp_path):
    path = tmp_path / "deep.toml"
    path.write_text("x = " + "[" * 100_000 + "]" * 100_000 + "\n")
    with pytest.raises(ValueError, match=r"model file .*deep.toml.*: not valid TOML"):
        mk.load_model(path)


def test_model_file_must_be_a_regular_file(tmp_path):
    import os

    fifo = tmp_path / "fifo.toml"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match=r"not a regular file|neither a preset"):
        mk.load_model(fifo)
    with pytest.raises(ValueError, match="not a regular file"):
        mk.MarginModel.from_toml(fifo)


@pytest.mark.parametrize(
    "params, message",
    [
        ('builder = "deribit_grid"\nsteps = 300000\n', r"scenarios.steps: must be in \[1, 1000\]"),
        ('builder = "range_points"\npoints = 100000000\n', r"scenarios.points: must be <= 10000"),
        ('builder = "range_points"\npoints = 1e8\n', r"scenarios.points: expected an integer"),
        ('builder = "range_points"\nvol_shift = [' + ", ".join(["0.1"] * 1001) + "]\n", r"at most 1000 entries"),
    ],
)
def test_scenario_sizes_are_limited(tmp_path, params, message):
    path = tmp_path / "m.toml"
    path.write_text(BASE + params)
    # refused by the size check itself (the message names the limit), before anything is built
    with pytest.raises(ValueError, match=message):
        mk.load_model(path)


# -- 2i: complex quantities, wall-clock times -------------------------------------------------------


@pytest.mark.parametrize("quantity", [1j, np.complex128(2 + 0j)])
def test_complex_quantities_are_refused(quantity):
    eng = mk.Engine(inst(), mkt(), grid())
    with pytest.raises(TypeError, match=r"positions.quantity: must be a real number; row \d has"):
        eng.margin(
            [
                {"account": "a", "instrument": "F", "quantity": 1.0},
                {"account": "a", "instrument": "F", "quantity": quantity},
            ]
        )
    import pandas as pd

    frame = pd.DataFrame({"account": ["a"], "instrument": ["F"], "quantity": np.array([1 + 0j])})
    with pytest.raises(TypeError, match=r"positions.quantity: must be a real number"):
        eng.margin(frame)


@pytest.mark.parametrize("word", ["now", "today", " Today "])
def test_wall_clock_words_are_refused_as_times(word):
    with pytest.raises(ValueError, match=r"market.time: .* is relative to the wall clock"):
        mk.Market.from_dict({"time": word, "spot": {"BTC": 1.0}})
    with pytest.raises(ValueError, match=r"instrument 'X' \(row 0\): expiry: .* is relative to the wall clock"):
        mk.Instruments.from_records([{"id": "X", "kind": "future", "underlying": "BTC", "expiry": word}])
