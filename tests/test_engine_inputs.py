"""Engine inputs beyond the model's own grid: scenario sets given directly, scenario files named by
a model, the expiry rule, Arrow tables, and the methodology registry."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import marginkernel as mk
from marginkernel import model as model_module
from marginkernel import reference, scenarios
from marginkernel.scenario_file import read_scenario_set

T0 = "2026-11-21T08:00:00Z"
EXP = "2026-12-27T08:00:00Z"
PAST = "2026-11-20T08:00:00Z"


def instruments(extra=()):
    return mk.Instruments.from_records(
        [
            {"id": "F", "kind": "future", "underlying": "BTC", "expiry": EXP},
            {"id": "C", "kind": "call", "underlying": "BTC", "strike": 100_000.0, "expiry": EXP},
            {"id": "E", "kind": "perpetual", "underlying": "ETH"},
            *extra,
        ]
    )


def market(**extra):
    return mk.Market.from_dict({"time": T0, "spot": {"BTC": 100_000.0, "ETH": 4_000.0}, "vols": {"C": 0.6}, **extra})


def es_model():
    return mk.MarginModel(name="hist", builder="range_points", measure="es", netting="account", confidence=0.975)


BOOK = [{"account": "a", "instrument": "F", "quantity": 1.0}, {"account": "a", "instrument": "E", "quantity": -10.0}]


def joint_es(returns, confidence=0.975):
    joint = 100_000.0 * returns[0] - 10 * 4_000.0 * returns[1]
    return reference.value_at_risk(joint[None, :], confidence)[1][0]


# -- scenario sets as inputs ---------------------------------------------------------------------


def test_engine_takes_a_historical_scenario_set():
    returns = np.random.default_rng(3).normal(0, 0.03, size=(2, 500))
    hist = scenarios.historical(["BTC", "ETH"], {"BTC": returns[0], "ETH": returns[1]})
    eng = mk.Engine(instruments(), market(), es_model(), scenarios=hist)
    assert eng.scenario_set.n_scenarios == 500 and eng.risk.shape == (3, 500)
    res = eng.margin(BOOK)
    assert res.accounts.loc["a", "im"] == pytest.approx(joint_es(returns), rel=1e-12)


def test_a_set_without_underlyings_needs_a_row_per_unit():
    grid = scenarios.range_points(["BTC", "ETH"], up=0.1, down=0.1)
    plain = scenarios.ScenarioSet(grid.labels, grid.price_multiplier, grid.vol_shift, grid.weight)
    eng = mk.Engine(instruments(), market(), es_model(), scenarios=plain)  # units BTC/USD, ETH/USD
    assert eng.scenario_set is plain
    with pytest.raises(ValueError, match=r"scenarios: 2 rows of moves for 3 risk units"):
        mk.Engine(
            instruments([{"id": "IP", "kind": "perpetual", "underlying": "BTC", "settlement": "inverse"}]),
            market(),
            es_model(),
            scenarios=plain,
        )
    with pytest.raises(ValueError, match=r"no moves for underlying\(s\) \['ETH'\]"):
        mk.Engine(instruments(), market(), es_model(), scenarios=scenarios.range_points(["BTC"]))
    with pytest.raises(TypeError, match="scenarios: expected a ScenarioSet"):
        mk.Engine(instruments(), market(), es_model(), scenarios={"BTC": [0.1]})


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_model_file_names_a_scenario_file(tmp_path, suffix):
    returns = np.random.default_rng(5).normal(0, 0.02, size=(2, 300))
    table = pd.DataFrame({"scenario": [f"day {k}" for k in range(300)], "BTC": returns[0], "ETH": returns[1]})
    moves = tmp_path / f"moves{suffix}"
    table.to_csv(moves, index=False) if suffix == ".csv" else table.to_parquet(moves)
    (tmp_path / "m.toml").write_text(
        '[model]\nname = "hist"\nmeasure = "es"\nconfidence = 0.975\nnetting = "account"\n'
        f'[scenarios]\nbuilder = "file"\npath = "moves{suffix}"\n'
    )
    model = mk.load_model(tmp_path / "m.toml")
    eng = mk.Engine(instruments(), market(), model)
    assert eng.scenario_set.labels[:2] == ("day 0", "day 1")
    assert eng.margin(BOOK).accounts.loc["a", "im"] == pytest.approx(joint_es(returns), rel=1e-12)
    direct = mk.Engine(instruments(), market(), es_model(), scenarios=read_scenario_set(moves))
    assert direct.margin(BOOK).accounts.loc["a", "im"] == pytest.approx(joint_es(returns), rel=1e-12)


def test_scenario_file_moves_and_vol_columns(tmp_path):
    path = tmp_path / "m.csv"
    pd.DataFrame({"BTC": [1.1, 0.9], "ETH": [1.0, 1.0], "vol:BTC": [0.1, -0.1], "probability": [0.5, 0.5]}).to_csv(
        path, index=False
    )
    sc = read_scenario_set(path, moves="multiplier")
    np.testing.assert_array_equal(sc.price_multiplier, [[1.1, 0.9], [1.0, 1.0]])
    np.testing.assert_array_equal(sc.vol_shift, [[0.1, -0.1], [0.0, 0.0]])
    assert sc.vol_shock == "additive" and sc.underlyings == ("BTC", "ETH")
    log = read_scenario_set(path, moves="log_return")
    assert log.price_multiplier[0, 0] == pytest.approx(np.exp(1.1), rel=1e-15)


@pytest.mark.parametrize(
    "content, message",
    [
        ("BTC,ETH\n0.1,x\n", r"row 0, column 'ETH': expected a finite number"),
        ("BTC,ETH\n-1.5,0.1\n", r"non-positive or non-finite price"),
        ("scenario,BTC,ETH\nd,0.1,0.1\nd,0.2,0.2\n", r"scenario 'd' appears twice"),
        ("scenario\nd\n", r"no column of moves"),
        ("BTC,ETH\n", r"no scenarios"),
    ],
)
def test_bad_scenario_files_name_the_file_and_row(tmp_path, content, message):
    path = tmp_path / "moves.csv"
    path.write_text(content)
    (tmp_path / "m.toml").write_text('[model]\nname = "h"\n[scenarios]\nbuilder = "file"\npath = "moves.csv"\n')
    with pytest.raises(ValueError, match=message):
        mk.Engine(instruments(), market(), mk.load_model(tmp_path / "m.toml"))


def test_scenario_file_errors(tmp_path):
    (tmp_path / "m.toml").write_text('[model]\nname = "h"\n[scenarios]\nbuilder = "file"\npath = "none.csv"\n')
    with pytest.raises(ValueError, match=r"scenario file .*none.csv.*: not found"):
        mk.load_model(tmp_path / "m.toml")
    (tmp_path / "btc.csv").write_text("BTC\n0.1\n")
    (tmp_path / "m.toml").write_text(
        '[model]\nname = "h"\n[scenarios]\nbuilder = "file"\npath = "btc.csv"\nmoves = "percent"\n'
    )
    with pytest.raises(ValueError, match=r"scenarios.moves: must be one of"):
        mk.load_model(tmp_path / "m.toml")
    (tmp_path / "m.toml").write_text('[model]\nname = "h"\n[scenarios]\nbuilder = "file"\npath = "btc.csv"\n')
    with pytest.raises(ValueError, match=r"no column of moves for underlying\(s\) \['ETH'\]"):
        mk.Engine(instruments(), market(), mk.load_model(tmp_path / "m.toml"))


# -- the expiry rule ------------------------------------------------------------------------------

EXPIRED = [
    {"id": "OLD-P", "kind": "put", "underlying": "BTC", "strike": 105_000.0, "expiry": PAST},
    {"id": "OLD-F", "kind": "future", "underlying": "BTC", "expiry": T0},
]


def test_expired_instruments_are_refused_by_name():
    with pytest.raises(ValueError, match=r"2 expired at or before the valuation time .*'OLD-P', 'OLD-F'"):
        mk.Engine(instruments(EXPIRED), market(vols={"C": 0.6, "OLD-P": 0.5}), es_model())
    with pytest.raises(ValueError, match="expired: must be one of"):
        mk.Engine(instruments(), market(), es_model(), expired="ignore")


def test_expired_instruments_settle_at_intrinsic_value():
    mkt = market(vols={"C": 0.6, "OLD-P": 0.5}, settlement_prices={"BTC": 99_000.0})
    grid = mk.MarginModel(name="g", builder="range_points", scenario_params={"up": 0.1, "down": 0.1})
    eng = mk.Engine(instruments(EXPIRED), mkt, grid, expired="settle")
    rows = [eng.instruments.ids.tolist().index(i) for i in ("OLD-P", "OLD-F")]
    assert not eng.risk[rows].any()
    assert eng.value_now[rows[0]] == pytest.approx(6_000.0, rel=1e-15)
    res = eng.margin(
        [
            {"account": "a", "instrument": "OLD-P", "quantity": -2.0},
            {"account": "a", "instrument": "OLD-F", "quantity": 1.0},
            {"account": "a", "instrument": "F", "quantity": 1.0},
        ]
    )
    acc = res.accounts.loc["a"]
    assert acc["im"] == pytest.approx(10_000.0, rel=1e-14)  # only the live future: 10 % of 100,000
    assert acc["equity"] == pytest.approx(-12_000.0, rel=1e-15)  # short 2 puts settled at 6,000 each
    assert acc["liquidation"]
    missing = market(vols={"C": 0.6, "OLD-P": 0.5})
    with pytest.raises(ValueError, match=r"market.settlement_prices: no value for expired instrument 'OLD-P'"):
        mk.Engine(instruments(EXPIRED), missing, grid, expired="settle")


def test_perpetuals_and_spot_never_expire():
    inst = mk.Instruments.from_records(
        [
            {"id": "P", "kind": "perpetual", "underlying": "BTC", "expiry": PAST},
            {"id": "S", "kind": "spot", "underlying": "BTC"},
        ]
    )
    eng = mk.Engine(inst, market(vols={}), mk.load_model("deribit-pm"))
    assert (
        np.isnan(inst.expiry).all()
        and eng.margin([{"account": "a", "instrument": "P", "quantity": 1.0}]).accounts.loc["a", "im"] > 0
    )


# -- Arrow tables ---------------------------------------------------------------------------------


class StreamOnly:
    """Exposes nothing but the Arrow PyCapsule stream interface (like a polars DataFrame)."""

    def __init__(self, table):
        self._table = table

    def __arrow_c_stream__(self, requested_schema=None):
        return self._table.__arrow_c_stream__(requested_schema)


def test_arrow_tables_are_accepted_wherever_a_frame_is():
    pa = pytest.importorskip("pyarrow")
    frame = pd.DataFrame(BOOK)
    eng = mk.Engine(instruments(), market(), es_model(), scenarios=scenarios.range_points(["BTC", "ETH"]))
    want = eng.margin(frame).accounts
    for table in (pa.Table.from_pandas(frame), pa.RecordBatch.from_pandas(frame), StreamOnly(pa.table(frame))):
        pd.testing.assert_frame_equal(eng.margin(table).accounts, want)
    coll = pa.table({"account": ["a"], "currency": ["USD"], "amount": [1_000.0]})
    assert eng.margin(frame, collateral=coll).accounts.loc["a", "equity"] == 1_000.0
    inst = instruments().to_frame()
    again = mk.Instruments.from_frame(StreamOnly(pa.Table.from_pandas(inst)))
    np.testing.assert_array_equal(again.expiry, instruments().expiry)
    assert list(again.ids) == ["F", "C", "E"]


# -- engine arguments and the methodology registry --------------------------------------------------


@pytest.mark.parametrize("threads", [0, -3, 1.5, "2"])
def test_threads_must_be_a_positive_integer(threads):
    with pytest.raises((TypeError, ValueError), match="threads"):
        mk.Engine(instruments(), market(), es_model(), threads=threads)


def test_a_methodology_registers_with_one_line(tmp_path, monkeypatch):
    monkeypatch.setitem(model_module.METHODOLOGIES, "toy", lambda path: ("toy model", path.name))
    (tmp_path / "t.toml").write_text('[model]\nname = "t"\nmethodology = "toy"\n')
    assert mk.load_model(tmp_path / "t.toml") == ("toy model", "t.toml")
    monkeypatch.setitem(model_module.METHODOLOGIES, "gone", "marginkernel.no_such_module:load")
    (tmp_path / "g.toml").write_text('[model]\nname = "g"\nmethodology = "gone"\n')
    with pytest.raises(ValueError, match=r"model.methodology: 'gone' is registered as .* cannot be loaded"):
        mk.load_model(tmp_path / "g.toml")
    (tmp_path / "u.toml").write_text('[model]\nname = "u"\nmethodology = "nope"\n')
    with pytest.raises(ValueError, match=r"model.methodology: unknown 'nope'"):
        mk.load_model(tmp_path / "u.toml")


def test_context_is_the_one_margin_uses():
    eng = mk.Engine(instruments(), market(), mk.load_model("deribit-pm"))
    ctx = eng.context(BOOK)
    res = eng.margin(BOOK)
    np.testing.assert_array_equal(ctx.pair_pnl, res.pnl[0][ctx.pair_unit])
    assert ctx.n_pairs == 2 and ctx.pnl_rows.shape == (len(eng.units), eng.scenario_set.n_scenarios)
