"""The book is the model (issue 8): marginkernel.account.account_book(engine) holds the Engine's full
generic model in C++; its margins equal Engine.margin to 1e-9 relative, its what-ifs equal the state
after the fill bit for bit, and bad input leaves it unchanged."""

from __future__ import annotations

import math
import tomllib
from dataclasses import replace
from importlib import resources
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from book_checks import assert_book_matches, close
from marginkernel import book as book_module
from marginkernel import demo, reference
from marginkernel.account import ModelBook, UnknownIdError, account_book
from marginkernel.engine import Engine
from marginkernel.market import Market
from marginkernel.model import MarginModel, load_model
from tail_cases import order_dependent_case

INST, MARKET, POSITIONS = demo.demo_inputs()
IDS = list(INST.ids)
COLLATERAL = [
    {"account": "delta-hedged", "currency": "BTC", "amount": 2.0},
    {"account": "naked-short", "currency": "USDC", "amount": 500_000.0},
    {"account": "perp-basis", "currency": "ETH", "amount": 30.0},
    {"account": "perp-basis", "currency": "USDC", "amount": -1_000.0},
]


def _market_dict() -> dict:
    with (resources.files("marginkernel") / "data" / "demo_market.toml").open("rb") as fh:
        return tomllib.load(fh)


#: every shipped preset the book holds (span: tests/test_book_span.py; derive-pm2: its own module)
PRESETS = ["deribit-pm", "okx-pm", "tims", "hist-var99", "fhs-es975-apc"]


@pytest.mark.parametrize("preset", PRESETS)
def test_presets_equal_engine(preset):
    engine = Engine(INST, MARKET, load_model(preset))
    book = account_book(engine, POSITIONS, collateral=COLLATERAL)
    assert_book_matches(book, engine, POSITIONS, COLLATERAL)
    # a known figure: deribit-pm's naked short (IM 807,616.12, tests/test_engine.py's demo book)
    if preset == "deribit-pm":
        assert book.result(book.account_id("naked-short"))["im"] == pytest.approx(807616.123584419, rel=1e-12)


def test_refused_parts_are_named():
    # the span preset's spreads are held (tests/test_book_span.py); an add-on type the book does not
    # know is refused by name
    unknown = SimpleNamespace(name="custom", type="custom_charge")
    with pytest.raises(ValueError, match=r"addons\.custom: add-on type 'custom_charge' is not held"):
        book_module._refuse_unheld(SimpleNamespace(measure="worst_loss", addons=(unknown,)))
    # MarginModel admits only the engine's measures, all held; anything else is refused by name
    with pytest.raises(ValueError, match=r"model\.measure: 'cvar' is not held by the book"):
        book_module._refuse_unheld(SimpleNamespace(measure="cvar", addons=()))


def _model(**kw) -> MarginModel:
    base = {
        "name": "user",
        "builder": "deribit_grid",
        "scenario_params": {"price_range": 0.15, "extended_options_only": True},
        "mm_factor": 0.75,
        "im_factor": 1.1,
    }
    base.update(kw)
    return MarginModel(**base)


ADDON_SETS = [
    {},
    {
        "roll_shock": {"annualised_move_risk": {"default": 0.1, "ETH": 0.2}, "min_annualised_move": 0.01},
        "delta_shock": {"threshold": 1e5, "shock": 0.1},
    },
    {
        "som": {"type": "short_option_minimum", "rate": {"default": 0.01}, "basis": "notional", "method": "max"},
        "pcm": {
            "type": "per_contract_minimum",
            "rate": 0.002,
            "basis": "notional",
            "tiers": [[0, 1], [10000, 2], [70000, 4]],
            "kinds": ["future", "perpetual", "call", "put"],
        },
    },
    {
        "conc": {"type": "concentration", "measure": "gross_delta", "tiers": [[0, 0.0], [1e6, 0.01]]},
        "cont": {"type": "contingency", "option_rate": 0.005, "option_side": "short", "future_rate": 0.002},
        "som": {"type": "short_option_minimum", "rate": {"default": 5.0, "BTC": 50.0}, "currency": "USD"},
    },
]
MODELS = [
    {"netting": n, "mode": mode, "gain_factor": g, "gain_cap": cap, "collateral_haircut": h, "addons": adds}
    for n in ("risk_unit", "currency", "account")
    for mode in ("cross", "isolated")
    for g, cap, h in (
        (1.0, math.inf, 0.0),
        (0.0, math.inf, {"default": 0.1, "BTC": 0.05}),
        ({"default": 0.5, "USDC": 0.0, "BTC/USDC": 0.25}, 5e4, 0.02),
    )
    for adds in ADDON_SETS
]


@pytest.mark.parametrize("k", range(0, len(MODELS), 5))
def test_user_models_equal_engine(k):
    engine = Engine(INST, MARKET, _model(**MODELS[k]))
    book = account_book(engine, POSITIONS, collateral=COLLATERAL)
    assert_book_matches(book, engine, POSITIONS, COLLATERAL)


# VaR / ES nodes (issue 8: every measure the engine offers) at every netting level and mode: the
# deribit grid (cover-fraction weights, equally likely; ties of linear P&L in the options-only
# scenarios) and the same scenarios with unequal probabilities (the weighted quantile).
TAIL_MODELS = [
    {"measure": measure, "confidence": conf, "netting": n, "mode": mode, "gain_factor": g, "gain_cap": cap}
    for measure, conf in (("var", 0.9), ("es", 0.95))
    for n in ("risk_unit", "currency", "account")
    for mode in ("cross", "isolated")
    for g, cap in ((1.0, math.inf), ({"default": 0.5, "USDC": 0.0, "BTC/USDC": 0.25}, 5e4))
]


def _tail_engine(k: int, weighted: bool) -> Engine:
    engine = Engine(INST, MARKET, _model(**TAIL_MODELS[k], addons=ADDON_SETS[1]))
    if not weighted:
        return engine
    sc = engine.scenario_set
    probability = np.random.default_rng(k).uniform(0.0, 2.0, sc.n_scenarios)
    probability[:: max(1, sc.n_scenarios // 5)] = 0.0  # scenarios that cannot be the quantile
    return Engine(INST, MARKET, engine.model, scenarios=replace(sc, probability=probability))


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("k", range(len(TAIL_MODELS)))
def test_var_es_models_equal_engine(k, weighted):
    engine = _tail_engine(k, weighted)
    book = account_book(engine, POSITIONS, collateral=COLLATERAL)
    assert_book_matches(book, engine, POSITIONS, COLLATERAL)


def test_weighted_var_where_the_probability_total_depends_on_the_order():
    """NumPy divides the cumulative probability by the total summed in sorted order; here it and the
    total summed in scenario order differ by ulps, and the level lies between the two quotients
    (tests/tail_cases.py). The book takes NumPy's scenario, as the engine does; normalised by the
    scenario-order total it took the next worse one."""
    engine = Engine(INST, MARKET, _model(measure="var", confidence=0.5))
    sc = engine.scenario_set
    n = sc.n_scenarios
    probability, confidence = order_dependent_case(n)
    rise = np.concatenate([[1.01, 1.02], 1.02 + 0.01 * np.arange(1, n - 1)])  # short futures lose most last
    scenarios = replace(
        sc,
        price_multiplier=np.tile(rise, (sc.price_multiplier.shape[0], 1)),
        vol_shift=np.zeros_like(sc.vol_shift),
        weight=np.ones_like(sc.weight),
        options_only=np.zeros(n, dtype=bool),
        probability=probability,
    )
    engine = Engine(INST, MARKET, replace(engine.model, confidence=confidence), scenarios=scenarios)
    frame = pd.DataFrame({"account": ["short"], "instrument": ["BTC-27DEC26"], "quantity": [-10_000.0]})
    x = engine.pnl(engine.book(frame))[0, 0]  # BTC
    assert list(np.argsort(x, kind="stable")) == [*range(n - 1, 1, -1), 1, 0]
    var, _ = reference.value_at_risk(x[None], confidence, probability)
    assert var[0] == -x[0] > 0  # scenario 0, not scenario 1 (-x[1] is about twice as large)
    book = account_book(engine, frame)
    scan_risk = book.result(book.account_id("short"))["scan_risk"]  # USD
    assert scan_risk == pytest.approx(var[0] * MARKET.fx_rate("BTC"), rel=1e-12)
    assert_book_matches(book, engine, frame)


@pytest.mark.parametrize("preset", ["hist-var99", "fhs-es975-apc"])
@pytest.mark.parametrize("netting", ["risk_unit", "currency", "account"])
@pytest.mark.parametrize("mode", ["cross", "isolated"])
def test_historical_presets_at_every_netting_level(preset, netting, mode):
    engine = Engine(INST, MARKET, replace(load_model(preset), netting=netting, mode=mode))
    book = account_book(engine, POSITIONS, collateral=COLLATERAL)
    assert_book_matches(book, engine, POSITIONS, COLLATERAL)
    # a real figure: the naked short put's VaR / ES is a loss, not the clamp at zero
    assert book.result(book.account_id("naked-short"))["scan_risk"] > 1e4


books = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c"]),
        st.sampled_from(IDS),
        st.integers(-40, 40).map(lambda x: x / 4.0).filter(lambda x: x != 0),
    ),
    min_size=1,
    max_size=12,
)


def _frame(rows) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["account", "instrument", "quantity"])
    # contract sizes: inverse futures and perpetuals are USD notionals
    big = frame["instrument"].isin([i for i, k in zip(IDS, INST.kind, strict=True) if k in (0, 1)])
    frame.loc[big, "quantity"] *= 1000.0
    return frame


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=books, k=st.integers(0, len(MODELS) - 1))
def test_generated_books_equal_engine(rows, k):
    engine = Engine(INST, MARKET, _model(**MODELS[k]))
    frame = _frame(rows)
    book = account_book(
        engine,
        frame,
        accounts=["a", "b", "c"],
        collateral=[*COLLATERAL[:2], {"account": "a", "currency": "BTC", "amount": 1.5}],
    )
    assert_book_matches(book, engine, frame, [*COLLATERAL[:2], {"account": "a", "currency": "BTC", "amount": 1.5}])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=books, stream=books, k=st.integers(0, len(MODELS) - 1))
def test_what_if_is_what_happens(rows, stream, k):
    """Every what-if equals, bit for bit, the margin after the fill, and Engine.margin of the
    post-trade book to 1e-9; check() decides on that same figure."""
    _what_if_stream(Engine(INST, MARKET, _model(**MODELS[k])), rows, stream)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=books, stream=books, k=st.integers(0, len(TAIL_MODELS) - 1), weighted=st.booleans())
def test_var_es_what_if_is_what_happens(rows, stream, k, weighted):
    _what_if_stream(_tail_engine(k, weighted), rows, stream)


def _what_if_stream(engine: Engine, rows, stream) -> None:
    frame = _frame(rows)
    book = account_book(engine, frame, accounts=["a", "b", "c"])
    held = frame.copy()
    for name, inst, q in _frame(stream).itertuples(index=False):
        a, i = book.account_id(name), IDS.index(inst)
        w = book.what_if(a, i, q)
        c = book.check(a, i, q, w.im)
        assert c.accepted and c.excess == 0.0 and c.im == w.im
        book.add_fill(a, i, q)
        after = book.margin(a)
        assert after["im"] == w.im and after["mm"] == w.mm
        held = pd.concat([held, pd.DataFrame([{"account": name, "instrument": inst, "quantity": q}])])
        res = engine.margin(held, accounts=["a", "b", "c"]).accounts.loc[name]
        assert close(w.im, float(res["im"])) and close(w.mm, float(res["mm"]))


def _moved_engine(model, spot_move: float) -> Engine:
    data = _market_dict()
    data["spot"] = {k: v * spot_move for k, v in data["spot"].items()}
    data["marks"] = {k: v * spot_move for k, v in data["marks"].items()}
    data["forwards"] = {u: {t: f * spot_move for t, f in tab.items()} for u, tab in data["forwards"].items()}
    return Engine(INST, Market.from_dict(data), model)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=books, stream=books, k=st.integers(0, len(MODELS) - 1), move=st.sampled_from([0.9, 1.07]))
def test_refresh_equals_rebuild_in_any_order(rows, stream, k, move):
    _refresh_in_any_order(_model(**MODELS[k]), rows, stream, move)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=books, stream=books, k=st.integers(0, len(TAIL_MODELS) - 1), move=st.sampled_from([0.9, 1.07]))
def test_var_es_refresh_equals_rebuild_in_any_order(rows, stream, k, move):
    _refresh_in_any_order(_model(**TAIL_MODELS[k], addons=ADDON_SETS[1]), rows, stream, move)


def _refresh_in_any_order(model: MarginModel, rows, stream, move: float) -> None:
    engine, moved = Engine(INST, MARKET, model), _moved_engine(model, move)
    frame, fills = _frame(rows), _frame(stream)
    everything = pd.concat([frame, fills])
    # fills, then refresh
    one = account_book(engine, frame, accounts=["a", "b", "c"])
    for name, inst, q in fills.itertuples(index=False):
        one.add_fill(one.account_id(name), IDS.index(inst), q)
    one.refresh(moved)
    # refresh, then fills, then a rebuild
    two = account_book(engine, frame, accounts=["a", "b", "c"])
    two.refresh(moved)
    for name, inst, q in fills.itertuples(index=False):
        two.add_fill(two.account_id(name), IDS.index(inst), q)
    two.rebuild()
    # a full rebuild on the new market
    fresh = account_book(moved, everything, accounts=["a", "b", "c"])
    for name in ("a", "b", "c"):
        ms = [b.margin(b.account_id(name)) for b in (one, two, fresh)]
        for key in ("im", "mm", "scan_risk"):
            values = [m[key] for m in ms]
            assert all(close(v, values[2]) for v in values), (name, key, values)
    assert_book_matches(fresh, moved, everything)
    # refresh recomputes from positions: with the same positions, bit for bit a fresh book
    three = account_book(engine, everything, accounts=["a", "b", "c"])
    three.refresh(moved)
    for name in ("a", "b", "c"):
        x, y = three.margin(three.account_id(name)), fresh.margin(fresh.account_id(name))
        assert repr(x) == repr(y)  # bit for bit (repr: NaN equity compares equal)


# -- bad input loses nothing ----------------------------------------------------------------------


@pytest.fixture
def book():
    engine = Engine(INST, MARKET, load_model("deribit-pm"))
    return engine, account_book(engine, POSITIONS, collateral=COLLATERAL)


def _state(book):
    return [(book.margin(a), book.positions(a), book.nodes(a)) for a in range(book.n_accounts)]


def test_bad_orders_leave_the_book_unchanged(book):
    _, b = book
    before = _state(b)
    perp = IDS.index("BTC-PERPETUAL")
    for args, err in [
        ((0, perp, math.nan), "quantity"),
        ((0, perp, math.inf), "quantity"),
        ((0, perp, 1e306), "too large"),
        ((0, 99, 1.0), "unknown instrument"),
        ((99, perp, 1.0), "unknown account"),
        ((0, -1, 1.0), "unknown instrument"),
    ]:
        for method in (b.what_if, b.add_fill):
            with pytest.raises(ValueError, match=err):
                method(*args)
        with pytest.raises(ValueError, match=err):
            b.check(*args, 1e6)
    with pytest.raises(ValueError, match="fills"):
        b.add_fills(np.array([0, 0]), np.array([perp, perp], dtype=np.int32), np.array([1.0, math.nan]))
    assert _state(b) == before


def test_overflowing_refresh_is_refused(book):
    """A fill of 1e300 then a market refresh: refused with an error, the book unchanged."""
    engine, b = book
    perp = IDS.index("BTC_USDC-PERPETUAL")
    row_max = np.abs(engine.counted_risk[perp]).max()
    q = 0.9e300 / row_max
    b.add_fill(0, perp, q)
    assert math.isfinite(b.margin(0)["im"])
    before = _state(b)
    moved = _moved_engine(engine.model, 2.0)
    u = int(engine.market.unit_of_row[perp])
    ids = b.instruments_of(u)
    with pytest.raises(ValueError, match="market update refused"):  # each unit's update is atomic
        b.update_unit(u, moved.counted_risk[ids], forward=moved.market.forward[ids], spot=moved.market.unit_spot[u])
    assert _state(b) == before
    with pytest.raises(ValueError, match="market update refused"):  # all units or none
        b.refresh(moved)
    assert _state(b) == before
    assert math.isfinite(b.what_if(0, perp, 1.0).im)


def test_expired_instruments_are_refused():
    data = _market_dict()
    data["time"] = "2026-12-28T08:00:00Z"  # after the December expiries
    try:
        engine = Engine(INST, Market.from_dict(data), load_model("deribit-pm"))
    except ValueError as exc:  # the engine may refuse expired instruments itself (one rule)
        assert "27DEC26" in str(exc)
        return
    with pytest.raises(ValueError, match=r"BTC-27DEC26.*expired"):
        account_book(engine, POSITIONS)
    b = account_book(engine, None, accounts=["x"])
    dec = IDS.index("BTC-27DEC26")
    with pytest.raises(ValueError, match="expired"):
        b.what_if(0, dec, 1.0)
    # perpetuals (expiry 0 in engine.market.expiry_years) and spot never expire
    assert b.what_if(0, IDS.index("BTC-PERPETUAL"), 10.0).im > 0


def test_uninitialised_books_raise_cleanly():
    from marginkernel.account import AccountBook

    calls = [("margin", (0,)), ("what_if", (0, 0, 1.0)), ("check", (0, 0, 1.0, 1.0)), ("add_fill", (0, 0, 1.0))]
    for cls in (AccountBook, ModelBook):
        raw = cls.__new__(cls)
        for name, args in calls:
            with pytest.raises(TypeError, match="not initialised"):
                getattr(raw, name)(*args)
        with pytest.raises(TypeError, match="not initialised"):
            _ = raw.n_accounts


def test_out_of_range_ids_raise_unknown_id_everywhere(book):
    from marginkernel.account import AccountBook

    _, b = book
    simple = AccountBook(np.ones((2, 3)), np.array([0, 1]), n_accounts=1)
    for huge in (2**40, 2**70, -(2**70)):
        calls = [
            (b.margin, (huge,)),
            (b.what_if, (huge, 0, 1.0)),
            (b.what_if, (0, huge, 1.0)),
            (b.check, (huge, 0, 1.0, 1.0)),
            (b.add_fill, (0, huge, 1.0)),
            (b.pair, (0, huge)),
            (b.positions, (huge,)),
            (simple.margin, (huge,)),
            (simple.what_if, (huge, 0, 1.0)),
            (simple.what_if, (0, huge, 1.0)),
            (simple.add_fill, (huge, 0, 1.0)),
            (simple.unit_margin, (0, huge)),
            (simple.position, (0, huge)),
            (simple.check, (0, huge, 1.0, 1.0)),
            (simple.instruments_of, (huge,)),
        ]
        for method, args in calls:
            with pytest.raises(UnknownIdError):
                method(*args)


@pytest.mark.parametrize("preset", PRESETS)
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stream=books)
def test_preset_what_if_equals_engine_after_the_trade(preset, stream):
    engine = Engine(INST, MARKET, load_model(preset))
    book = account_book(engine, POSITIONS, accounts=["a", "b", "c"])
    held = POSITIONS.copy()
    for name, inst, q in _frame(stream).itertuples(index=False):
        a, i = book.account_id(name), IDS.index(inst)
        w = book.what_if(a, i, q)
        book.add_fill(a, i, q)
        assert book.margin(a)["im"] == w.im
        held = pd.concat([held, pd.DataFrame([{"account": name, "instrument": inst, "quantity": q}])])
    res = engine.margin(held, accounts=["a", "b", "c"]).accounts
    for name in ("a", "b", "c"):
        assert close(book.margin(book.account_id(name))["im"], float(res.loc[name, "im"]))
