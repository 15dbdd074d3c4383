"""Calibration of grid price ranges to a coverage target, checked by hand on a small history."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import marginkernel as mk
from marginkernel.cli import main
from marginkernel.historical import history_from_frame
from marginkernel.historical.calibrate import calibrate

# 11 prices, 10 one-day moves: +10 %, -9 %, +5 %, -2 %, +1 %, -20 %, +3 %, +4 %, -1 %, +50 %
MOVES = [0.10, -0.09, 0.05, -0.02, 0.01, -0.20, 0.03, 0.04, -0.01, 0.50]


def _history():
    prices = np.cumprod([100.0, *(1 + np.array(MOVES))])
    frame = pd.DataFrame({"date": pd.date_range("2024-01-01", periods=11).strftime("%Y-%m-%d"), "btc": prices})
    return history_from_frame(frame, "h.csv", {"BTC": "btc"})


def test_symmetric_range_is_the_inverted_cdf_quantile_of_absolute_moves():
    model = mk.load_model("deribit-pm")
    # in sample: moves ending on days 1..8 (split 2024-01-10 = row 9): |d| = .10 .09 .05 .02 .01 .20 .03 .04
    # target 0.75: the smallest R with #(|d| <= R) / 8 >= 0.75, i.e. the 6th smallest |d|: sorted
    # .01 .02 .03 .04 .05 .09 .10 .20 -> R = 0.09 (covers 6 of 8 = 0.75)
    res = calibrate(model, history=_history(), target=0.75, split="2024-01-10")
    row = res.table.loc["BTC"]
    assert row["price_range"] == pytest.approx(0.09, rel=1e-12)
    assert row["coverage_in"] == pytest.approx(6 / 8)
    # out of sample: moves ending on days 9, 10: -1 % (covered), +50 % (not) -> 1/2
    assert row["coverage_out"] == pytest.approx(0.5)
    assert (row["moves_in"], row["moves_out"]) == (8, 2)
    assert res.model.scenario_params["price_range"]["BTC"] == pytest.approx(0.09)
    assert res.model.name == "deribit-pm-calibrated"
    assert "price_range = { BTC = 0.09 }" in res.toml()


def test_two_sided_range_points_and_span():
    # range_points: down = -Q_0.125(d), up = Q_0.875(d) at target 0.75 over the 8 in-sample moves:
    # sorted d: -.20 -.09 -.02 .01 .03 .04 .05 .10; Q_0.125 = 1st (ceil(8 x 0.125) = 1) = -.20;
    # Q_0.875 = 7th = .05 -> down 0.20, up 0.05; covered: all but +.10 -> 7/8
    res = calibrate(mk.load_model("tims"), history=_history(), target=0.75, split="2024-01-10")
    row = res.table.loc["BTC"]
    assert (row["down"], row["up"]) == pytest.approx((0.20, 0.05), rel=1e-12)
    assert row["coverage_in"] == pytest.approx(7 / 8)
    span = calibrate(mk.load_model("span"), history=_history(), target=0.75, split="2024-01-10")
    assert span.table.loc["BTC", "price_scan"] == pytest.approx(0.09)


def test_two_day_horizon_moves():
    res = calibrate(mk.load_model("deribit-pm"), history=_history(), target=0.5, horizon=2, split="2024-01-11")
    prices = np.cumprod([100.0, *(1 + np.array(MOVES))])
    d = np.abs(prices[2:10] / prices[:8] - 1)  # 2-day moves ending on rows 2..9
    assert res.table.loc["BTC", "price_range"] == pytest.approx(np.sort(d)[3], rel=1e-12)  # ceil(8 x .5) = 4th


def test_calibration_on_shipped_history_covers_out_of_sample():
    res = calibrate(mk.load_model("deribit-pm"), target=0.99, split="2023-01-01")
    for u in ("BTC", "ETH"):
        assert res.table.loc[u, "coverage_in"] >= 0.99
        assert 0.95 < res.table.loc[u, "coverage_out"] <= 1.0
        assert 0.05 < res.table.loc[u, "price_range"] < 0.5


def test_calibration_errors():
    with pytest.raises(ValueError, match="builder 'historical_simulation' has no price range"):
        calibrate(mk.load_model("hist-var99"))
    with pytest.raises(ValueError, match="target: must be in"):
        calibrate(mk.load_model("deribit-pm"), target=1.0)
    with pytest.raises(ValueError, match="split: 2024-01-01 leaves no move in sample"):
        calibrate(mk.load_model("deribit-pm"), history=_history(), split="2024-01-01")
    with pytest.raises(ValueError, match="no price column for underlying 'SOL'"):
        calibrate(mk.load_model("deribit-pm"), underlyings=["SOL"])


def test_cli_calibrate(capsys):
    assert main(["calibrate", "--model", "span", "--split", "2023-01-01", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["parameters"] == ["price_scan"] and [r["underlying"] for r in out["underlyings"]] == ["BTC", "ETH"]
    assert all(r["coverage_in"] >= 0.99 and isinstance(r["moves_in"], int) for r in out["underlyings"])
    assert main(["calibrate", "--model", "deribit-pm"]) == 0
    assert "price_range = { BTC = " in capsys.readouterr().out
    assert main(["calibrate", "--model", "deribit-pm", "--target", "2"]) == 2
    assert "marginkernel: error: target: must be <= 1.0" in capsys.readouterr().err
