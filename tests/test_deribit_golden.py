"""Deribit's published portfolio-margin example, through the Engine with the deribit-pm preset.

Deribit's API reference (private/pme/simulate, example response of 2024-06-17) publishes the
27-point standard risk vector of a BTC-PERPETUAL position (coin-settled, inverse): a position of
x = 0.314538364 BTC has scenario P&L x * (1 - 1/m) at price multiplier m (three vol states each),
-0.05991206933333334 BTC at -16 % and +0.0433846... at +16 % (issue 3 quotes them rounded:
-0.0599121 and +0.0433846 for 0.314538 BTC). Roll shock = sum |position in coin| x min annualised
move (0.01); MM = 0.8 x the risk-matrix margin.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import marginkernel as mk

T0 = "2024-06-17T10:22:20Z"
INDEX = 100_000.0
X = 0.314538364  # BTC: 0.05991206933333334 * 5.25, the position behind the published vector

# Deribit's published BTC-PERPETUAL standard vector: entries 0, 3, 6, ..., 18 (one per price move
# -16 % ... +8 %; each repeated for vol up / same / down), as printed in the API reference.
PUBLISHED = {
    -0.16: -0.05991206933333334,
    -0.12: -0.04289159509090909,
    -0.08: -0.027351162086956524,
    -0.04: -0.013105765166666668,
    0.00: 0.0,
    0.04: 0.012097629384615385,
}


def engine(extra_instruments=()):
    inst = mk.Instruments.from_records(
        [
            {
                "id": "BTC-PERPETUAL",
                "kind": "perpetual",
                "underlying": "BTC",
                "settlement": "inverse",
                "multiplier": 1.0,
            },
            {
                "id": "BTC-28JUN24-70000-C",
                "kind": "call",
                "underlying": "BTC",
                "settlement": "inverse",
                "strike": 70_000.0,
                "expiry": "2024-06-28T08:00:00Z",
            },
            *extra_instruments,
        ]
    )
    market = mk.Market.from_dict(
        {"time": T0, "spot": {"BTC": INDEX}, "marks": {"BTC-PERPETUAL": INDEX}, "vols": {"BTC-28JUN24-70000-C": 0.5}}
    )
    return mk.Engine(inst, market, mk.load_model("deribit-pm"))


def perp(coins: float, account: str = "a") -> list[dict]:
    # a 1-USD inverse contract: coins of exposure = quantity / F
    return [{"account": account, "instrument": "BTC-PERPETUAL", "quantity": coins * INDEX}]


def test_published_risk_vector_of_a_perpetual():
    eng = engine()
    res = eng.margin(perp(X))
    vec = res.scenario_pnl("a")["BTC"]
    moves = np.round(eng.scenario_set.price_multiplier[0, :9] - 1.0, 10)
    for block in range(3):  # vol up, same, down: a perpetual has no vega
        got = vec.iloc[9 * block : 9 * block + 9].to_numpy()
        for move, want in PUBLISHED.items():
            k = int(np.flatnonzero(np.isclose(moves, move))[0])
            assert got[k] == pytest.approx(want, rel=1e-13, abs=1e-17)
    # issue 3's rounded figures, for 0.314538 BTC
    res = eng.margin(perp(0.314538))
    vec = res.scenario_pnl("a")["BTC"].to_numpy()
    assert vec[0] == pytest.approx(0.314538 * (1 - 1 / 0.84), rel=1e-13)
    assert vec[8] == pytest.approx(0.314538 * (1 - 1 / 1.16), rel=1e-13)
    assert vec[0] == pytest.approx(-0.0599121, abs=1.5e-7)  # -0.05991200 exactly for 0.314538 BTC
    assert vec[8] == pytest.approx(0.0433846, abs=5e-8)
    # the extended table counts options only: a perpetual-only vector is 0 there (as published)
    np.testing.assert_array_equal(vec[27:], 0.0)


def test_roll_shock_and_mm_of_the_published_position():
    res = engine().margin(perp(X))
    row = res.accounts.loc["a"]
    worst = -PUBLISHED[-0.16]  # BTC
    roll = X * 0.01  # |position in coin| x min annualised move (a perpetual: T = 0)
    assert row["scan_risk"] == pytest.approx(worst * INDEX, rel=1e-13)
    assert row["roll_shock"] == pytest.approx(roll * INDEX, rel=1e-13)
    assert row["delta_shock"] == 0.0  # $31k of delta, far below the $20M threshold
    assert row["im"] == pytest.approx((worst + roll) * INDEX, rel=1e-13)
    assert row["mm"] == pytest.approx(0.8 * (worst + roll) * INDEX, rel=1e-13)
    assert row["worst_unit"] == "BTC" and row["worst_scenario"] == "-100% of range, vol up"
    unit = res.by_unit.set_index("risk_unit").loc["BTC"]
    assert unit["loss"] == pytest.approx(worst, rel=1e-13)
    assert unit["roll_shock"] == pytest.approx(roll, rel=1e-13)  # in BTC
    assert unit["currency"] == "BTC"


def test_short_perpetual_is_margined_on_the_up_move():
    res = engine().margin(perp(-X))
    up = X * (1 - 1 / 1.16)
    assert res.accounts.loc["a", "scan_risk"] == pytest.approx(up * INDEX, rel=1e-13)
    assert res.accounts.loc["a", "roll_shock"] == pytest.approx(X * 0.01 * INDEX, rel=1e-13)
    assert res.accounts.loc["a", "worst_scenario"] == "+100% of range, vol up"


def test_roll_shock_of_a_future_scales_with_time_to_expiry():
    eng = engine(
        [
            {
                "id": "BTC-27DEC24",
                "kind": "future",
                "underlying": "BTC",
                "settlement": "inverse",
                "expiry": "2024-12-27T08:00:00Z",
                "multiplier": 10.0,
            }
        ]
    )
    t = (pd.Timestamp("2024-12-27T08:00:00Z") - pd.Timestamp(T0)).total_seconds() / (365 * 86400)
    fwd = eng.market.forward[2]
    res = eng.margin([{"account": "a", "instrument": "BTC-27DEC24", "quantity": 1000.0}])
    coins = 1000.0 * 10.0 / fwd
    want = coins * max(0.01, 0.075 * t)  # 0.075 x 0.53 years > the 1 % floor
    assert 0.075 * t > 0.01
    assert res.by_unit.set_index("risk_unit").loc["BTC", "roll_shock"] == pytest.approx(want, rel=1e-13)


def test_delta_shock_above_the_threshold():
    res = engine().margin(perp(500.0))  # 500 BTC x $100k = $50M of delta
    excess_usd = 500.0 * INDEX - 20_000_000.0
    assert res.accounts.loc["a", "delta_shock"] == pytest.approx(0.1 * excess_usd, rel=1e-13)
    coins = 500.0
    want = coins * (1 / 0.84 - 1) + coins * 0.01 + 0.1 * excess_usd / INDEX
    assert res.accounts.loc["a", "im"] == pytest.approx(want * INDEX, rel=1e-13)
    assert res.accounts.loc["a", "mm"] == pytest.approx(0.8 * want * INDEX, rel=1e-13)


def test_options_count_in_the_extended_table():
    eng = engine()
    res = eng.margin([{"account": "a", "instrument": "BTC-28JUN24-70000-C", "quantity": -10.0}])
    vec = res.scenario_pnl("a")["BTC"].to_numpy()
    assert vec[27:].min() < 0  # a short call loses at +50 % ... +500 %
    w = eng.scenario_set.weight[0, 27:]
    np.testing.assert_allclose(w, 0.16 / np.abs([-0.66, -0.33, 0.5, 1, 2, 3, 4, 5]), rtol=1e-15)
    scan = max(0.0, -min((vec[:27]).min(), (w * vec[27:]).min()))
    assert res.accounts.loc["a", "scan_risk"] == pytest.approx(scan * INDEX, rel=1e-13)
