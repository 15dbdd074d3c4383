"""Backtest statistics against hand-computed textbook values; the backtest against Engine; the CLI."""

from __future__ import annotations

import json
import math
import struct

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st_h
from hypothesis.extra import numpy as hnp

import marginkernel as mk
from marginkernel.cli import main
from marginkernel.historical import backtest, load_history
from marginkernel.historical import stats as st

# -- statistics, by hand ---------------------------------------------------------------------------


def test_kupiec_textbook_value():
    # n = 250 days, x = 5 exceptions, p = 1 %:
    # ln L0 = 245 ln 0.99 + 5 ln 0.01 = 245 (-0.01005034) + 5 (-4.60517019) = -25.48818321
    # ln L1 = 245 ln 0.98 + 5 ln 0.02 = 245 (-0.02020271) + 5 (-3.91202301) = -24.50977832
    # LR = -2 (ln L0 - ln L1) = 1.95680979; p = P(chi2_1 > LR) = erfc(sqrt(LR / 2)) = 0.16185492
    lr, p = st.kupiec(250, 5, 0.99)
    assert lr == pytest.approx(1.9568097882306296, rel=1e-12)
    assert p == pytest.approx(0.1618549171960419, rel=1e-10)
    # no exception in 250 days: LR = -2 * 250 ln 0.99 = 5.02516793, p = 0.02498150
    lr, p = st.kupiec(250, 0, 0.99)
    assert lr == pytest.approx(5.025167926750721, rel=1e-12)
    assert p == pytest.approx(0.02498150305344977, rel=1e-10)
    # exactly the expected rate: LR = 0, p = 1
    assert st.kupiec(200, 2, 0.99) == pytest.approx((0.0, 1.0), abs=1e-12)


def test_christoffersen_textbook_value():
    seq = [0, 0, 0, 1, 1, 1, 0, 0, 0, 0]
    # pairs: 00 00 01 11 11 10 00 00 00 -> n00 = 5, n01 = 1, n10 = 1, n11 = 2
    assert st.transitions(seq) == (5, 1, 1, 2)
    # pi0 = 1/6, pi1 = 2/3, pi = 3/9 = 1/3
    # ln L(pi) = 6 ln(2/3) + 3 ln(1/3) = -2.43279065 - 3.29583687 = -5.72862751
    # ln L(pi0, pi1) = 5 ln(5/6) + ln(1/6) + ln(1/3) + 2 ln(2/3) = -4.61290976
    # LR_ind = -2 (-5.72862751 + 4.61290976) = 2.23143551; p = erfc(sqrt(LR / 2)) = 0.13522816
    lr, p = st.christoffersen(seq)
    assert lr == pytest.approx(2.2314355131420976, rel=1e-12)
    assert p == pytest.approx(0.1352281576870666, rel=1e-10)
    # Kupiec for the same 10 days at 95 %: x = 3, n = 10:
    # LR = -2 [7 ln 0.95 + 3 ln 0.05 - 7 ln 0.7 - 3 ln 0.3] = 6.47521372; LR_cc = 6.47521372 + 2.23143551 = 8.70664923
    # p_cc = P(chi2_2 > 8.70664923) = exp(-8.70664923 / 2) = 0.01286397
    out = st.coverage_tests(np.array(seq, dtype=bool), 0.95)
    assert out["kupiec_lr"] == pytest.approx(6.475213721651784, rel=1e-12)
    assert out["conditional_coverage_lr"] == pytest.approx(8.706649234793882, rel=1e-12)
    assert out["conditional_coverage_p"] == pytest.approx(0.012863973617874459, rel=1e-10)
    # pairs 00 01 11 10 00 00 01 10 00: n00 = 4, n01 = 2, n10 = 2, n11 = 1, pi0 = pi1 = 1/3 -> LR_ind = 0
    assert st.christoffersen([0, 0, 1, 1, 0, 0, 0, 1, 0, 0]) == pytest.approx((0.0, 1.0), abs=1e-12)


BASEL_1996 = [  # Basel Committee (1996), backtesting framework, Table 1: 250 days at 99 %, cumulative probability
    (0, 0.0811, "green"),
    (1, 0.2858, "green"),
    (2, 0.5432, "green"),
    (3, 0.7581, "green"),
    (4, 0.8922, "green"),
    (5, 0.9588, "yellow"),
    (6, 0.9863, "yellow"),
    (7, 0.9960, "yellow"),
    (8, 0.9989, "yellow"),
    (9, 0.9997, "yellow"),
    (10, 0.9999, "red"),
    (11, 1.0000, "red"),
]


@pytest.mark.parametrize(("x", "cumulative", "zone"), BASEL_1996)
def test_basel_traffic_light_table(x, cumulative, zone):
    assert st.binomial_cdf(x, 250, 0.01) == pytest.approx(cumulative, abs=5e-5)  # the table's 4 decimals
    assert st.traffic_light(250, x, 0.99) == zone


def test_procyclicality_figures():
    m = [100.0, 120.0, 90.0, 180.0, 150.0, 60.0]
    out = st.procyclicality(m, n_days=2)
    assert out["peak_to_trough"] == pytest.approx(180.0 / 60.0)
    # 2-day ratios: 90/100, 180/120, 150/90, 60/180 -> largest 150/90 - 1 = 2/3 starting on day 2
    assert out["largest_increase"] == pytest.approx(2 / 3) and out["largest_increase_start"] == 2
    assert out["largest_abs_increase"] == pytest.approx(60.0)


def test_buffer_release_rule():
    # b = 10 %: C0 = 110; M rises to 105: C = min(max(110, 105), 115.5) = 110 (buffer used);
    # 120: max(110, 120) = 120; falls to 100: min(max(120, 100), 110) = 110
    np.testing.assert_allclose(
        backtest.charged(np.array([100.0, 105.0, 120.0, 100.0]), 1.1, True), [110.0, 110.0, 120.0, 110.0]
    )
    np.testing.assert_allclose(backtest.charged(np.array([100.0, 105.0]), 1.1, False), [110.0, 115.5])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((0, 0, 0.99), "n: must be >= 1"),
        ((10, 11, 0.99), "exceptions: must be <= 10"),
        ((10, 1, 1.0), "confidence: must be in (0, 1)"),
    ],
)
def test_stats_bad_input(args, message):
    with pytest.raises(ValueError) as err:
        st.kupiec(*args)
    assert message in str(err.value)


# -- the backtest against the engine ---------------------------------------------------------------


def _linear():
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


def _model(**scen):
    return mk.MarginModel.from_dict(
        {
            "model": {"name": "h", "measure": "var", "confidence": 0.99, "netting": "account"},
            "scenarios": {
                "builder": "historical_simulation",
                "columns": {"BTC": "btc_usdt", "ETH": "eth_usdt"},
                "lookback": 250,
                "horizon": 2,
                **scen,
            },
        }
    )


BOOK = pd.DataFrame({"instrument": ["BTC-LIN", "ETH-LIN"], "quantity": [-1.0, 20.0]})


def test_backtest_margin_is_the_engine_margin_of_each_day_and_realised_pnl_by_hand():
    h = load_history()
    model = _model()
    market0 = mk.Market.from_dict({"time": "2024-01-01T00:00:00Z", "spot": {"BTC": 40000.0, "ETH": 2000.0}})
    engine = mk.Engine(_linear(), market0, model)
    res = backtest.run(model, engine, BOOK, start="2022-11-01", end="2022-11-30")
    f = res.frame
    assert str(f.index[0])[:10] == "2022-11-01" and str(f.index[-1])[:10] == "2022-11-28"  # end - horizon
    for day in ("2022-11-01", "2022-11-09", "2022-11-21"):
        t = h.index_of(day)
        s_btc, s_eth = h.prices[t]
        market = mk.Market.from_dict({"time": "2024-01-01T00:00:00Z", "spot": {"BTC": s_btc, "ETH": s_eth}})
        m_day = _model(as_of=day)
        engine_day = mk.Engine(_linear(), market, m_day)
        im = engine_day.margin(BOOK.assign(account="a")).accounts.loc["a", "im"]
        row = f.loc[pd.Timestamp(day)]
        assert row["requirement"] == pytest.approx(im, rel=1e-12)
        # realised: -1 x (S_btc(t+2) - S_btc(t)) + 20 x (S_eth(t+2) - S_eth(t))
        b2, e2 = h.prices[t + 2]
        assert row["realised"] == pytest.approx(-(b2 - s_btc) + 20 * (e2 - s_eth), rel=1e-12)
        assert row["exception"] == (-row["realised"] > row["margin"])
    assert res.stats["coverage"]["days"] == len(f)
    assert res.stats["coverage"]["exceptions"] == int(f["exception"].sum())
    # without APC options the plain model is itself
    np.testing.assert_array_equal(f["margin_no_apc"], f["margin"])


def test_backtest_with_apc_is_less_procyclical():
    model = mk.load_model("fhs-es975-apc")
    market0 = mk.Market.from_dict({"time": "2024-01-01T00:00:00Z", "spot": {"BTC": 40000.0, "ETH": 2000.0}})
    engine = mk.Engine(_linear(), market0, model)
    res = backtest.run(model, engine, BOOK, start="2021-01-01", end="2022-12-31")
    p, q = res.stats["procyclicality"], res.stats["procyclicality_no_apc"]
    assert p["peak_to_trough"] < q["peak_to_trough"]
    assert p["largest_increase"] < q["largest_increase"]
    assert (res.frame["margin"] >= res.frame["requirement"]).all()


def test_dated_positions_path():
    model = _model()
    market0 = mk.Market.from_dict({"time": "2024-01-01T00:00:00Z", "spot": {"BTC": 40000.0, "ETH": 2000.0}})
    engine = mk.Engine(_linear(), market0, model)
    path = pd.DataFrame(
        {
            "date": ["2023-03-05", "2023-03-10", "2023-03-10"],
            "instrument": ["BTC-LIN", "BTC-LIN", "ETH-LIN"],
            "quantity": [1.0, -2.0, 5.0],
        }
    )
    dates = np.array(["2023-03-04", "2023-03-05", "2023-03-09", "2023-03-10", "2023-03-20"], dtype="datetime64[D]")
    q = backtest.positions_path(path, engine, dates)
    np.testing.assert_array_equal(q, [[0, 0], [1, 0], [1, 0], [-2, 5], [-2, 5]])
    res = backtest.run(model, engine, path, start="2023-03-03", end="2023-03-14")
    assert res.frame.loc["2023-03-04", "margin"] == 0.0 and res.frame.loc["2023-03-05", "margin"] > 0
    with pytest.raises(ValueError, match=r"positions\[1\]: unknown instrument 'XRP'"):
        backtest.positions_path(pd.DataFrame({"instrument": ["BTC-LIN", "XRP"], "quantity": [1, 2]}), engine, dates)
    with pytest.raises(ValueError, match=r"positions\[0\]: field 'quantity' must be a finite number"):
        backtest.positions_path(pd.DataFrame({"instrument": ["BTC-LIN"], "quantity": ["x"]}), engine, dates)
    with pytest.raises(ValueError, match=r"positions\[0\]: field 'date' must be an ISO day"):
        backtest.positions_path(
            pd.DataFrame({"date": ["soon"], "instrument": ["BTC-LIN"], "quantity": [1]}), engine, dates
        )


def test_backtest_window_errors():
    model = _model()
    market0 = mk.Market.from_dict({"time": "2024-01-01T00:00:00Z", "spot": {"BTC": 40000.0, "ETH": 2000.0}})
    engine = mk.Engine(_linear(), market0, model)
    with pytest.raises(ValueError, match="start / end: no day from"):
        backtest.run(model, engine, BOOK, start="2024-12-30")
    with pytest.raises(ValueError, match="start: 2031-01-01 is outside the history"):
        backtest.run(model, engine, BOOK, start="2031-01-01")


# -- CLI -----------------------------------------------------------------------------------------


def _png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_cli_backtest_json_and_plot(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    book = tmp_path / "book.csv"
    book.write_text("instrument,quantity\nBTC-PERPETUAL,-20000\nETH-27DEC26-3000-P,-30\n")
    png = tmp_path / "bt.png"
    assert (
        main(["backtest", "--model", "hist-var99", str(book), "--start", "2023-01-01", "--json", "--plot", str(png)])
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert out["model"] == "hist-var99" and out["start"] == "2023-01-01" and out["end"] == "2024-12-29"
    assert out["coverage"]["days"] == 729 and out["coverage"]["traffic_light"] in ("green", "yellow", "red")
    assert out["procyclicality"]["peak_to_trough"] >= 1.0
    tests = json.loads(json.dumps(out))
    assert set(tests) >= {"coverage_no_apc", "procyclicality", "procyclicality_no_apc", "horizon_days"}
    assert _png_size(png) == (1000, 500)  # 10 x 5 inches at 100 dpi
    assert png.stat().st_size > 10_000


def test_cli_backtest_text_and_errors(tmp_path, capsys):
    book = tmp_path / "book.csv"
    book.write_text("account,instrument,quantity\na,BTC-PERPETUAL,-20000\nb,ETH-PERPETUAL,100\n")
    assert main(["backtest", "--model", "fhs-es975-apc", str(book), "--account", "a", "--start", "2024-06-01"]) == 0
    text = capsys.readouterr().out
    assert "Kupiec POF" in text and "Basel traffic light" in text and "without APC" in text
    bad = tmp_path / "prices.csv"
    bad.write_text("date,btc_usdt,eth_usdt\n2024-01-01,1,1\n2024-01-01,2,2\n")
    assert main(["backtest", "--model", "hist-var99", str(book), "--history", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("marginkernel: error: ") and "prices.csv: line 3: duplicate date 2024-01-01" in err
    assert err.count("\n") == 1
    assert main(["backtest", "--model", "hist-var99", str(book), "--account", "zz"]) == 2
    assert "no positions of account 'zz'" in capsys.readouterr().err


def test_chi2_sf_values():
    assert st.chi2_sf(3.841458820694124, 1) == pytest.approx(0.05, rel=1e-9)  # 95 % point of chi2(1)
    assert st.chi2_sf(5.991464547107979, 2) == pytest.approx(0.05, rel=1e-9)  # 95 % point of chi2(2)
    assert math.isclose(st.chi2_sf(0.0, 1), 1.0)


def test_backtest_bad_arguments_and_inputs_untouched():
    model = _model()
    market0 = mk.Market.from_dict({"time": "2024-01-01T00:00:00Z", "spot": {"BTC": 40000.0, "ETH": 2000.0}})
    engine = mk.Engine(_linear(), market0, model)
    book = BOOK.copy()
    with pytest.raises(ValueError, match="horizon: must be >= 1"):
        backtest.run(model, engine, book, horizon=0)
    with pytest.raises(ValueError, match="coverage: must be in"):
        backtest.run(model, engine, book, coverage=1.0)
    res = backtest.run(model, engine, book, start="2024-06-01", horizon=5)
    pd.testing.assert_frame_equal(book, BOOK)  # not mutated
    assert res.horizon == 5 and str(res.frame.index[-1])[:10] == "2024-12-26"
    assert np.isfinite(res.frame.to_numpy(dtype=float)).all()
    empty = backtest.run(model, engine, book.assign(quantity=0.0), start="2024-06-01")
    assert (empty.frame["margin"] == 0).all() and empty.stats["coverage"]["exceptions"] == 0


@settings(max_examples=60, deadline=None)
@given(
    seq=hnp.arrays(np.bool_, st_h.integers(2, 400)),
    confidence=st_h.sampled_from([0.9, 0.95, 0.975, 0.99, 0.995]),
)
def test_statistics_against_scipy(seq, confidence):
    scipy_stats = pytest.importorskip("scipy.stats")
    out = st.coverage_tests(seq, confidence)
    n, x = len(seq), int(seq.sum())
    for key, dof in (("kupiec", 1), ("christoffersen", 1), ("conditional_coverage", 2)):
        lr = out[f"{key}_lr"]
        assert lr >= 0.0 and np.isfinite(lr)
        assert out[f"{key}_p"] == pytest.approx(scipy_stats.chi2.sf(lr, dof), rel=1e-9, abs=1e-15)
    assert out["conditional_coverage_lr"] == pytest.approx(out["kupiec_lr"] + out["christoffersen_lr"], rel=1e-12)
    assert st.binomial_cdf(x, n, 1 - confidence) == pytest.approx(
        scipy_stats.binom.cdf(x, n, 1 - confidence), rel=1e-9, abs=1e-15
    )
