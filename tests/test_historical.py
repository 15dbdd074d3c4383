"""Historical simulation: price history checks, scenario moves (hand-computed), the model type, presets."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import marginkernel as mk
from marginkernel.historical import HistoricalSpec, Simulator, history_from_frame, load_history, read_history
from marginkernel.historical.builder import historical_simulation

COLS = {"BTC": "btc", "ETH": "eth"}


def _history(btc, eth=None, start="2024-01-01"):
    days = pd.date_range(start, periods=len(btc), freq="D").strftime("%Y-%m-%d")
    frame = pd.DataFrame({"date": days, "btc": btc, "eth": eth if eth is not None else btc})
    return history_from_frame(frame, "synthetic.csv", COLS)


# -- history files ---------------------------------------------------------------------------


def _write(tmp_path, text: str):
    p = tmp_path / "prices.csv"
    p.write_text(text)
    return p


def test_shipped_history_matches_its_readme():
    h = load_history()
    assert h.underlyings == ("BTC", "ETH")
    assert h.n_days == 2694  # README: 2,694 rows, one per calendar day
    assert str(h.dates[0]) == "2017-08-17" and str(h.dates[-1]) == "2024-12-31"
    btc = h.prices[:, 0]
    assert btc.min() == pytest.approx(3189.02) and btc.max() == pytest.approx(106133.74)
    assert btc[h.index_of("2020-03-12")] == pytest.approx(4800.00)  # README reference point
    worst = np.log(btc[1:] / btc[:-1]).min()
    assert worst == pytest.approx(-0.50, abs=0.005)  # README: largest BTC daily log return -0.50


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "date,btc_usdt\n2024-01-01,1\n2024-01-03,2\n",
            "prices.csv: line 3: gap of 1 day(s) between 2024-01-01 and 2024-01-03",
        ),
        (
            "date,btc_usdt\n2024-01-01,1\n2024-01-01,2\n",
            "prices.csv: line 3: duplicate date 2024-01-01 (also on line 2)",
        ),
        ("date,btc_usdt\n2024-01-02,1\n2024-01-01,2\n", "prices.csv: line 3: date 2024-01-01 is before 2024-01-02"),
        (
            "date,btc_usdt\n2024-01-01,1\n2024-01-02,0\n",
            "prices.csv: line 3 (2024-01-02): column 'btc_usdt': price must be > 0, got '0'",
        ),
        ("date,btc_usdt\n2024-01-01,-5\n2024-01-02,1\n", "line 2 (2024-01-01): column 'btc_usdt': price must be > 0"),
        (
            "date,btc_usdt\n2024-01-01,abc\n2024-01-02,1\n",
            "line 2 (2024-01-01): column 'btc_usdt': expected a finite number, got 'abc'",
        ),
        (
            "date,btc_usdt\n2024-01-01,\n2024-01-02,1\n",
            "line 2 (2024-01-01): column 'btc_usdt': expected a finite number",
        ),
        ("date,btc_usdt\n2024-01-01,nan\n2024-01-02,1\n", "column 'btc_usdt': expected a finite number, got 'nan'"),
        ("date,btc_usdt\n2024-01-01,inf\n2024-01-02,1\n", "column 'btc_usdt': expected a finite number, got 'inf'"),
        (
            "date,btc_usdt\n2024-13-01,1\n2024-01-02,1\n",
            "line 2: column 'date': expected an ISO day YYYY-MM-DD, got '2024-13-01'",
        ),
        ("day,btc_usdt\n2024-01-01,1\n2024-01-02,1\n", "no 'date' column"),
        ("date,btc_usdt\n2024-01-01,1\n", "a history needs at least 2 rows"),
        ("date\n2024-01-01\n2024-01-02\n", "no price columns besides 'date'"),
    ],
)
def test_bad_history_files_name_the_file_row_and_column(tmp_path, text, message):
    path = _write(tmp_path, text)
    with pytest.raises(ValueError, match=r"prices\.csv") as err:
        read_history(path)
    assert message in str(err.value)


def test_history_missing_file_and_missing_column(tmp_path):
    with pytest.raises(ValueError, match=r"nope\.csv: history file not found"):
        read_history(tmp_path / "nope.csv")
    path = _write(tmp_path, "date,btc_usdt\n2024-01-01,1\n2024-01-02,1\n")
    with pytest.raises(ValueError, match=r"columns\.ETH: no column 'eth_usdt'"):
        read_history(path, {"ETH": "eth_usdt"})
    with pytest.raises(ValueError, match="history: 'nothing-here' is neither"):
        load_history("nothing-here")


def test_history_is_read_only_and_the_file_is_unchanged(tmp_path):
    text = "date,btc_usdt\n2024-01-01,1\n2024-01-02,2\n"
    path = _write(tmp_path, text)
    h = read_history(path)
    with pytest.raises(ValueError):
        h.prices[0, 0] = 5.0
    assert path.read_text() == text


# -- scenario moves, by hand -----------------------------------------------------------------------


PRICES = [100.0, 110.0, 99.0, 99.0, 120.0, 90.0, 95.0, 100.0]
ETH = [10.0, 9.0, 9.9, 12.0, 12.0, 11.0, 11.0, 10.0]


def test_overlapping_horizon_moves_keep_dates_joint():
    h = _history(PRICES, ETH)
    sim = Simulator(HistoricalSpec(columns=COLS, lookback=4, horizon=2), ["BTC", "ETH"], h)
    mv = sim.moves(7)  # as of day 7: moves ending on days 4..7, each over 2 days
    expect_btc = [math.log(120 / 99), math.log(90 / 99), math.log(95 / 120), math.log(100 / 90)]
    expect_eth = [math.log(12 / 9.9), math.log(11 / 12), math.log(11 / 12), math.log(10 / 11)]
    np.testing.assert_allclose(mv.log_return[0], expect_btc, rtol=1e-14)
    np.testing.assert_allclose(mv.log_return[1], expect_eth, rtol=1e-14)  # the same dates for both: joint
    np.testing.assert_allclose(mv.probability, 0.25)
    assert [str(d) for d in mv.end] == ["2024-01-05", "2024-01-06", "2024-01-07", "2024-01-08"]
    assert [str(d) for d in mv.start] == ["2024-01-03", "2024-01-04", "2024-01-05", "2024-01-06"]
    sc = sim.scenario_set(7)
    np.testing.assert_allclose(sc.price_multiplier[0], [120 / 99, 90 / 99, 95 / 120, 100 / 90], rtol=1e-14)
    assert sc.probability is None and sc.labels[0] == "2024-01-03..2024-01-05"
    assert sim.first_day() == 5  # 4 moves of 2 days need rows 0..5


def test_exponential_age_weights():
    h = _history(PRICES, ETH)
    sim = Simulator(
        HistoricalSpec(columns=COLS, lookback=4, horizon=1, weighting="exponential", age_decay=0.5), ["BTC"], h
    )
    # weights 0.5^3, 0.5^2, 0.5, 1 (oldest first), normalised by their sum 1.875
    np.testing.assert_allclose(sim.moves(7).probability, [0.125 / 1.875, 0.25 / 1.875, 0.5 / 1.875, 1 / 1.875])


def test_filtered_returns_rescaled_to_current_ewma_vol():
    h = _history(PRICES, ETH)
    lam, seed = 0.9, 2
    sim = Simulator(
        HistoricalSpec(columns=COLS, lookback=3, horizon=1, filtered=True, ewma_lambda=lam, ewma_seed_days=seed),
        ["BTC"],
        h,
    )
    x = np.log(np.array(PRICES[1:]) / np.array(PRICES[:-1]))  # x[j-1] is the return of day j
    v = [np.mean(x[:seed] ** 2)]  # seed: mean square of the first 2 returns
    for r in x:
        v.append(lam * v[-1] + (1 - lam) * r**2)  # v[j] after day j (v[0] = seed)
    # as of day 7: moves of days 5, 6, 7, each x_j * sigma_7 / sigma_(j-1)
    expect = [x[j - 1] * math.sqrt(v[7]) / math.sqrt(v[j - 1]) for j in (5, 6, 7)]
    np.testing.assert_allclose(sim.moves(7).log_return[0], expect, rtol=1e-13)


def test_stress_weight_and_volatility_floor():
    h = _history(PRICES, ETH)
    spec = HistoricalSpec(
        columns=COLS, lookback=3, horizon=1, stress_weight=0.25, stress_start="2024-01-04", stress_end="2024-01-06"
    )
    mv = Simulator(spec, ["BTC"], h).moves(7)
    # window moves of days 5..7 share 75 %, the stressed moves ending 2024-01-05 and 06 (rows 4, 5) 25 %
    np.testing.assert_allclose(mv.probability, [0.25, 0.25, 0.25, 0.125, 0.125])
    np.testing.assert_allclose(mv.log_return[0, 3:], [math.log(120 / 99), math.log(90 / 120)])
    assert mv.stressed.tolist() == [False, False, False, True, True]
    # ten-year floor: the last 3 days' vol sqrt(mean x^2) is scaled up to the vol of all 7 returns
    calm = [100.0, 130.0, 80.0, 120.0, 121.0, 120.0, 121.0, 120.0]
    x = np.log(np.array(calm[1:]) / np.array(calm[:-1]))
    own, long = math.sqrt(np.mean(x[-3:] ** 2)), math.sqrt(np.mean(x**2))
    assert long > 10 * own
    floor = HistoricalSpec(columns=COLS, lookback=3, horizon=1, floor_lookback=3650)
    floored = Simulator(floor, ["BTC"], _history(calm, ETH))
    np.testing.assert_allclose(floored.moves(7).log_return[0], x[-3:] * long / own, rtol=1e-13)
    # a floor below the window's own vol changes nothing
    plain = Simulator(HistoricalSpec(columns=COLS, lookback=3, horizon=1), ["BTC"], h).moves(7).log_return
    np.testing.assert_allclose(Simulator(floor, ["BTC"], h).moves(7).log_return, plain, rtol=1e-15)


def test_spot_beta_vol_rule():
    h = _history(PRICES, ETH)
    sim = Simulator(
        HistoricalSpec(columns=COLS, lookback=4, horizon=2, vol_rule="spot_beta", vol_beta={"BTC": -0.5, "ETH": -1.0}),
        ["BTC", "ETH"],
        h,
    )
    sc = sim.scenario_set(7)
    assert sc.vol_shock == "additive"
    np.testing.assert_allclose(sc.vol_shift[0], -0.5 * np.log(sc.price_multiplier[0]), rtol=1e-14)
    np.testing.assert_allclose(sc.vol_shift[1], -1.0 * np.log(sc.price_multiplier[1]), rtol=1e-14)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lookback": 4, "horizon": 4}, "horizon: 4 days must be shorter than the lookback (4 days)"),
        ({"lookback": 4, "horizon": 9}, "horizon: 9 days must be shorter than the lookback"),
        ({"lookback": 1}, "lookback: must be >= 2"),
        ({"horizon": 0}, "horizon: must be >= 1"),
        ({"lookback": 2.5}, "lookback: expected an integer"),
        ({"stress_weight": 0.1}, "stress_weight: must be 0 (off) or >= 0.25"),
        ({"stress_weight": 1.5}, "stress_weight: must be <= 1.0"),
        ({"weighting": "linear"}, "weighting: must be one of"),
        ({"ewma_lambda": 1.0}, "ewma_lambda: must be < 1"),
        ({"age_decay": 0.0}, "age_decay: must be > 0"),
        ({"vol_rule": "sticky"}, "vol_rule: must be one of"),
        ({"stress_start": "2024-01-01"}, "stress_start / stress_end: give both or neither"),
        ({"columns": {}}, "columns: required"),
    ],
)
def test_bad_specs_name_the_key(kwargs, message):
    args = {"columns": COLS, **kwargs}
    with pytest.raises(ValueError) as err:
        HistoricalSpec(**args)
    assert message in str(err.value)


def test_lookback_longer_than_history_names_the_file_and_day():
    h = _history(PRICES, ETH)
    sim = Simulator(HistoricalSpec(columns=COLS, lookback=7, horizon=2), ["BTC"], h)
    with pytest.raises(
        ValueError,
        match=r"lookback: 7 days of 2-day moves need 9 rows of synthetic.csv up to "
        r"as_of 2024-01-08, it has 8",
    ):
        sim.moves(7)
    with pytest.raises(ValueError, match="as_of: 2030-01-01 is outside the history"):
        historical_simulation(["BTC"], columns={"BTC": "btc_usdt"}, as_of="2030-01-01")
    with pytest.raises(ValueError, match="columns: no history column for underlying 'SOL'"):
        historical_simulation(["SOL"], columns={"BTC": "btc_usdt"})


# -- the model type, Engine and VaR / ES conventions ----------------------------------------------


def _linear_book():
    inst = mk.Instruments.from_records(
        [
            {
                "id": "BTC-LIN",
                "kind": "perpetual",
                "underlying": "BTC",
                "settlement": "linear",
                "currency": "USDC",
                "multiplier": 1.0,
            },
            {
                "id": "ETH-LIN",
                "kind": "perpetual",
                "underlying": "ETH",
                "settlement": "linear",
                "currency": "USDC",
                "multiplier": 1.0,
            },
        ]
    )
    return inst


def test_engine_var_and_es_match_the_ore_order_statistic_rule():
    h = load_history()
    t = h.index_of("2024-12-31")
    btc, eth = h.prices[:, 0], h.prices[:, 1]
    market = mk.Market.from_dict({"time": "2024-12-31T00:00:00Z", "spot": {"BTC": 93000.0, "ETH": 3300.0}})
    data = {
        "model": {"name": "h", "measure": "var", "confidence": 0.99, "netting": "account"},
        "scenarios": {
            "builder": "historical_simulation",
            "columns": {"BTC": "btc_usdt", "ETH": "eth_usdt"},
            "lookback": 750,
            "horizon": 2,
        },
    }
    engine = mk.Engine(_linear_book(), market, mk.MarginModel.from_dict(data))
    pos = [
        {"account": "a", "instrument": "BTC-LIN", "quantity": -2.0},
        {"account": "a", "instrument": "ETH-LIN", "quantity": 30.0},
    ]
    res = engine.margin(pos)
    k = np.arange(t - 749, t + 1)
    pnl = -2.0 * 93000.0 * (btc[k] / btc[k - 2] - 1) + 30.0 * 3300.0 * (eth[k] / eth[k - 2] - 1)
    losses = np.sort(-pnl)[::-1]
    # ORE (boost tail_quantile, right tail): the ceil(N (1 - c))-th largest loss; N = 750: ceil(7.5) = 8
    assert res.accounts.loc["a", "im"] == pytest.approx(losses[7], rel=1e-12)
    assert res.accounts.loc["a", "im"] == pytest.approx(-np.quantile(pnl, 0.01, method="inverted_cdf"), rel=1e-12)
    es_engine = mk.Engine(
        _linear_book(), market, mk.MarginModel.from_dict({**data, "model": {**data["model"], "measure": "es"}})
    )
    # ES: the mean of the P&L at or below the VaR quantile = the 8 largest losses
    assert es_engine.margin(pos).accounts.loc["a", "im"] == pytest.approx(losses[:8].mean(), rel=1e-12)
    # N = 1000 at 99 %: Np = 10 is an integer; the inverted CDF takes the 10th largest loss, ORE's
    # ceil(N (1 - p))-th = 990th largest P&L is the 11th largest loss (docs/historical.md)
    m1000 = mk.MarginModel.from_dict({**data, "scenarios": {**data["scenarios"], "lookback": 1000}})
    k = np.arange(t - 999, t + 1)
    pnl = -2.0 * 93000.0 * (btc[k] / btc[k - 2] - 1) + 30.0 * 3300.0 * (eth[k] / eth[k - 2] - 1)
    losses = np.sort(-pnl)[::-1]
    im = mk.Engine(_linear_book(), market, m1000).margin(pos).accounts.loc["a", "im"]
    assert im == pytest.approx(losses[9], rel=1e-12)
    ore_rank = math.ceil(1000 * (1 - 0.01))  # 990th largest P&L = 11th smallest
    assert np.sort(pnl)[::-1][ore_rank - 1] == pytest.approx(-losses[10], rel=1e-12) and losses[10] < losses[9]


def test_presets_load_run_and_are_dated():
    from marginkernel.demo import demo_inputs

    inst, market, positions = demo_inputs()
    for name in ("hist-var99", "fhs-es975-apc"):
        model = mk.load_model(name)
        assert model.builder == "historical_simulation" and model.as_of == "2024-12-31"
        engine = mk.Engine(inst, market, model)
        res = engine.margin(positions)
        assert np.all(np.isfinite(res.accounts["im"])) and (res.accounts["im"] >= 0).all()
        assert res.accounts.loc["naked-short", "im"] > 0
    apc = mk.load_model("fhs-es975-apc")
    sc = mk.Engine(inst, market, apc).scenario_set
    stressed = np.array([lab.startswith("stress") for lab in sc.labels])
    assert sc.probability[stressed].sum() == pytest.approx(0.25)  # EMIR Art. 28(1)(b)
    assert apc.im_factor == pytest.approx(1.10)


def test_model_file_errors_name_file_and_key(tmp_path):
    p = tmp_path / "m.toml"
    p.write_text(
        '[model]\nname = "x"\nmeasure = "var"\n[scenarios]\nbuilder = "historical_simulation"\n'
        'columns = { BTC = "btc_usdt" }\nlookback = 100\nhorizon = 100\n'
    )
    with pytest.raises(ValueError, match=r"m.toml.*horizon: 100 days must be shorter than the lookback"):
        mk.load_model(str(p))
    p.write_text(
        '[model]\nname = "x"\n[scenarios]\nbuilder = "historical_simulation"\n'
        'columns = { BTC = "btc_usdt" }\nlookback = 5000\n'
    )
    with pytest.raises(ValueError, match=r"m.toml.*lookback: 5000 days of 2-day moves need 5002 rows"):
        mk.load_model(str(p))
    p.write_text('[model]\nname = "x"\n[scenarios]\nbuilder = "historical_simulation"\nlookbak = 10\n')
    with pytest.raises(ValueError, match=r"scenarios.lookbak: not a parameter of historical_simulation"):
        mk.load_model(str(p))
    p.write_text('[model]\nname = "x"\n[scenarios]\nbuilder = "historical_simulation"\nlookback = 300\n')
    with pytest.raises(ValueError, match=r"columns: required"):
        mk.load_model(str(p))


def test_margin_by_blocks_equals_engine_margin():
    from marginkernel.demo import demo_inputs
    from marginkernel.historical.stream import margin_by_blocks

    inst, market, _ = demo_inputs()
    rng = np.random.default_rng(7)
    ids = list(inst.ids)
    rows = [
        {"account": f"a{k // 4}", "instrument": ids[int(rng.integers(len(ids)))], "quantity": float(rng.normal(0, 10))}
        for k in range(400)
    ]
    for name in ("hist-var99", "fhs-es975-apc"):
        engine = mk.Engine(inst, market, mk.load_model(name))
        want = engine.margin(rows).accounts["im"]
        got = margin_by_blocks(engine, engine.book(rows), block=7)
        np.testing.assert_allclose(got.to_numpy(), want.to_numpy(), rtol=1e-12, atol=1e-9)
        assert list(got.index) == list(want.index)
    engine = mk.Engine(inst, market, mk.load_model("deribit-pm"))
    with pytest.raises(ValueError, match="margin_by_blocks computes account netting"):
        margin_by_blocks(engine, engine.book(rows))


def test_more_bad_model_values_name_the_key(tmp_path):
    base = {"builder": "historical_simulation", "columns": {"BTC": "btc_usdt", "ETH": "eth_usdt"}, "lookback": 100}
    cases = [
        ({"as_of": "yesterday"}, "as_of: not an ISO date, got 'yesterday'"),
        ({"columns": {"BTC": 3}}, "columns.BTC: expected a column name, got 3"),
        ({"vol_rule": "spot_beta", "vol_beta": {"BTC": -0.5}}, "vol_beta: no value for underlying 'ETH'"),
        (
            {"stress_weight": 0.25, "stress_start": "2019-01-01", "stress_end": "2019-01-02"},
            "stress_end: 2019-01-02 must be at least horizon days after stress_start",
        ),
        ({"columns": {"BTC": "btc"}}, "columns.BTC: no column 'btc'"),
    ]
    for extra, message in cases:
        with pytest.raises(ValueError) as err:
            mk.MarginModel.from_dict({"model": {"name": "x"}, "scenarios": {**base, **extra}})
        assert message in str(err.value), (extra, str(err.value))
    bad = tmp_path / "gappy.csv"
    bad.write_text("date,btc_usdt\n" + "".join(f"2024-01-{d:02d},100\n" for d in (1, 2, 3, 5)))
    with pytest.raises(ValueError, match=r"gappy\.csv: line 5: gap of 1 day\(s\) between 2024-01-03 and 2024-01-05"):
        mk.MarginModel.from_dict(
            {
                "model": {"name": "x"},
                "scenarios": {
                    "builder": "historical_simulation",
                    "history": str(bad),
                    "columns": {"BTC": "btc_usdt"},
                    "lookback": 2,
                    "horizon": 1,
                },
            }
        )


def test_cli_margin_runs_a_historical_preset(capsys):
    import json
    import pathlib

    from marginkernel.cli import main

    root = pathlib.Path(mk.__file__).parent / "data"
    args = [
        "margin",
        "--model",
        "fhs-es975-apc",
        "--instruments",
        str(root / "demo_instruments.csv"),
        "--market",
        str(root / "demo_market.toml"),
        str(root / "demo_positions.csv"),
        "--json",
    ]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    im = {a["account"]: a["im"] for a in out["accounts"]}
    assert im["naked-short"] > 0 and im["perp-basis"] == 0
