"""The book holds SPAN's delta spreads (issue 8): ``intra_spread`` (a charge per (account, risk unit)
pair) and ``inter_spread`` (a credit coupling the risk units of an account). ``book.margin(a)``
equals Engine.margin to 1e-9 relative -- IM, MM, scan risk, each add-on, each node, each pair's
charges -- on the span preset and on generated spread models at every netting level and mode; every
what-if is bit for bit the margin after the fill, also when the order changes the credit of other
nodes; a market refresh equals a rebuild; what the book cannot hold is refused by name."""

from __future__ import annotations

import tomllib
from dataclasses import replace
from importlib import resources

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from book_checks import assert_book_matches, close
from marginkernel import _core, book_spreads, demo
from marginkernel.account import account_book
from marginkernel.engine import Engine
from marginkernel.market import Market
from marginkernel.model import load_model

INST, MARKET, POSITIONS = demo.demo_inputs()
IDS = list(INST.ids)
SPAN = load_model("span")
COLLATERAL = [
    {"account": "a", "currency": "BTC", "amount": 3.0},
    {"account": "b", "currency": "USDC", "amount": 50_000.0},
    {"account": "naked-short", "currency": "USDC", "amount": 500_000.0},
]

TIERS = [{"tier": 1, "end": "2026-12"}, {"tier": 2, "start": "2027-01"}]
#: spread add-on sets on the demo's units (BTC and ETH settle in coin, BTC/USDC in USDC): tiers, whole
#: spreads, several spreads, `after` set or not, price risk "span" and "scan", 3-leg inter spreads
SPREAD_SETS = [
    {  # the span preset's calendar spreads with an inter-commodity spread on the remaining deltas
        "intra": {
            "type": "intra_spread",
            "underlyings": ["BTC", "ETH"],
            "currency": "USD",
            "tiers": TIERS,
            "spreads": [
                {"rate": 100.0, "legs": [{"tier": 1, "side": "A"}, {"tier": 1, "side": "B"}]},
                {"rate": 150.0, "legs": [{"tier": 1, "side": "A"}, {"tier": 2, "side": "B"}]},
                {"rate": 100.0, "legs": [{"tier": 2, "side": "A"}, {"tier": 2, "side": "B"}]},
            ],
        },
        "inter": {
            "type": "inter_spread",
            "after": "intra",
            "spreads": [
                {"rate": 0.5, "legs": [{"unit": "BTC", "side": "A"}, {"unit": "ETH", "side": "B", "ratio": 10.0}]},
                {"rate": 0.3, "legs": [{"unit": "BTC", "side": "A"}, {"unit": "BTC/USDC", "side": "B"}]},
            ],
        },
    },
    {  # whole spreads, scan price risk, no `after`, unit tiers, a 3-leg spread, a floor beside them
        "intra": {
            "type": "intra_spread",
            "whole": True,
            "spreads": [{"rate": 0.001, "legs": [{"tier": 0, "side": "A"}, {"tier": 0, "side": "B", "ratio": 0.5}]}],
        },
        "inter": {
            "type": "inter_spread",
            "price_risk": "scan",
            "whole": True,
            "tiers": {"BTC": [{"tier": 1, "end": "2026-12"}]},
            "spreads": [
                {"rate": 0.4, "legs": [{"unit": "BTC", "tier": 1, "side": "A"}, {"unit": "BTC/USDC", "side": "B"}]},
                {
                    "rate": 0.2,
                    "legs": [
                        {"unit": "BTC", "side": "A"},
                        {"unit": "ETH", "side": "A", "ratio": 5.0},
                        {"unit": "BTC/USDC", "side": "B", "ratio": 0.5},
                    ],
                },
            ],
        },
        "som": {"type": "short_option_minimum", "rate": {"default": 0.0, "BTC": 500.0}, "currency": "USD"},
    },
    {  # inter spreads alone (SPAN price risk on the book's deltas), one naming a unit the engine lacks
        "inter": {
            "type": "inter_spread",
            "spreads": [
                {"rate": 0.8, "legs": [{"unit": "ETH", "side": "A", "ratio": 20.0}, {"unit": "BTC", "side": "B"}]},
                {"rate": 0.9, "legs": [{"unit": "SOL", "side": "A"}, {"unit": "BTC", "side": "B"}]},
                {"rate": 0.4, "legs": [{"unit": "BTC/USDC", "side": "A"}, {"unit": "BTC", "side": "B"}]},
            ],
        },
    },
    {  # calendar spreads alone, rates in the settlement currency, across tiers only
        "cal": {
            "type": "intra_spread",
            "tiers": TIERS,
            "spreads": [{"rate": 0.002, "legs": [{"tier": 1, "side": "A"}, {"tier": 2, "side": "B", "ratio": 2.0}]}],
        },
        "roll_shock": {"annualised_move_risk": 0.1, "min_annualised_move": 0.01},
    },
]
NETTINGS = [(n, mode) for n in ("risk_unit", "currency", "account") for mode in ("cross", "isolated")]


def _engine(k: int, netting: str = "risk_unit", mode: str = "cross", market: Market = MARKET) -> Engine:
    return Engine(INST, market, replace(SPAN, addons=SPREAD_SETS[k], netting=netting, mode=mode))


def _rows(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["account", "instrument", "quantity"])


#: an account holding every unit: calendar spreads in BTC, BTC long against ETH and BTC/USDC short
SPREAD_BOOK = _rows(
    [
        ("a", "BTC-27DEC26", 50_000.0),
        ("a", "BTC-26MAR27", -20_000.0),
        ("a", "ETH-27DEC26", -100_000.0),
        ("a", "ETH-27DEC26-3000-P", 20.0),
        ("a", "BTC_USDC-PERPETUAL", -0.2),
        ("b", "BTC-PERPETUAL", 30_000.0),
        ("b", "ETH-PERPETUAL", -60_000.0),
        ("b", "BTC-27DEC26-100000-C", 2.0),
    ]
)
BOOK = pd.concat([POSITIONS, SPREAD_BOOK], ignore_index=True)


def test_span_preset_equals_engine():
    engine = Engine(INST, MARKET, SPAN)
    book = engine.account_book(BOOK, collateral=COLLATERAL)
    assert_book_matches(book, engine, BOOK, COLLATERAL)
    # a real figure: the calendar account's intra-commodity charge (Engine.margin: 299.896 USD)
    assert book.result(book.account_id("calendar"))["intra_spread"] == pytest.approx(299.8964465099346, rel=1e-9)


@pytest.mark.parametrize(("netting", "mode"), NETTINGS)
@pytest.mark.parametrize("k", range(len(SPREAD_SETS)))
def test_spread_models_equal_engine(k, netting, mode):
    engine = _engine(k, netting, mode)
    book = account_book(engine, BOOK, collateral=COLLATERAL)
    assert_book_matches(book, engine, BOOK, COLLATERAL)
    comps = engine.margin(BOOK).accounts[list(engine.model.components)]
    if mode == "cross" and k in (0, 2):  # the credit is real: a test that can fail
        assert comps["inter"].loc["a"] < -1e3


def test_a_credit_moves_the_other_nodes():
    """An ETH order changes the BTC node's credit (risk-unit nodes, in BTC): the what-if re-finishes it,
    and equals the fill and the engine."""
    engine = _engine(0)
    book = account_book(engine, SPREAD_BOOK)
    a, eth = book.account_id("a"), IDS.index("ETH-27DEC26")
    btc = book.units.index("BTC")
    before = {n["unit"]: n for n in book.nodes(a)}[btc]
    w = book.what_if(a, eth, 50_000.0)
    book.add_fill(a, eth, 50_000.0)
    after = {n["unit"]: n for n in book.nodes(a)}[btc]
    assert book.margin(a)["im"] == w.im
    assert after["scan"] == before["scan"] and after["requirement"] > 1.2 * before["requirement"]
    held = pd.concat([SPREAD_BOOK, _rows([("a", "ETH-27DEC26", 50_000.0)])])
    assert close(w.im, float(engine.margin(held).accounts.loc["a", "im"]))


books = st.lists(
    st.tuples(
        st.sampled_from(["a", "b"]),
        st.sampled_from(IDS),
        st.integers(-40, 40).map(lambda x: x / 4.0).filter(lambda x: x != 0),
    ),
    min_size=1,
    max_size=12,
)
_LINEAR = {i for i, kind in zip(IDS, INST.kind, strict=True) if kind in (0, 1)}


def _frame(rows) -> pd.DataFrame:
    frame = _rows(rows)
    big = frame["instrument"].isin(_LINEAR - {"BTC_USDC-PERPETUAL"})  # inverse contracts: USD notionals
    frame.loc[big, "quantity"] *= 10_000.0
    return frame


@settings(max_examples=40, deadline=None)
@given(rows=books, k=st.integers(0, len(SPREAD_SETS) - 1), net=st.sampled_from(NETTINGS))
def test_generated_books_equal_engine(rows, k, net):
    engine, frame = _engine(k, *net), pd.concat([SPREAD_BOOK, _frame(rows)])
    book = account_book(engine, frame, collateral=COLLATERAL[:2])
    assert_book_matches(book, engine, frame, COLLATERAL[:2])


@settings(max_examples=30, deadline=None)
@given(rows=books, stream=books, k=st.integers(0, len(SPREAD_SETS) - 1), net=st.sampled_from(NETTINGS))
def test_what_if_is_what_happens(rows, stream, k, net):
    """Every what-if equals, bit for bit, the margin after the fill (check decides on it), and
    Engine.margin of the post-trade book to 1e-9."""
    engine = _engine(k, *net)
    held = pd.concat([SPREAD_BOOK, _frame(rows)], ignore_index=True)
    book = account_book(engine, held, accounts=["a", "b"])
    for name, inst, q in _frame(stream).itertuples(index=False):
        a, i = book.account_id(name), IDS.index(inst)
        w = book.what_if(a, i, q)
        c = book.check(a, i, q, w.im)
        assert c.accepted and c.excess == 0.0 and c.im == w.im
        book.add_fill(a, i, q)
        after = book.margin(a)
        assert after["im"] == w.im and after["mm"] == w.mm
        held = pd.concat([held, _rows([(name, inst, q)])], ignore_index=True)
        res = engine.margin(held, accounts=["a", "b"]).accounts.loc[name]
        assert close(w.im, float(res["im"])) and close(w.mm, float(res["mm"]))
    assert_book_matches(book, engine, held)


def _moved_market(move: float) -> Market:
    with (resources.files("marginkernel") / "data" / "demo_market.toml").open("rb") as fh:
        data = tomllib.load(fh)
    data["spot"] = {k: v * move for k, v in data["spot"].items()}
    data["marks"] = {k: v * move for k, v in data["marks"].items()}
    data["forwards"] = {u: {t: f * move for t, f in tab.items()} for u, tab in data["forwards"].items()}
    return Market.from_dict(data)


@settings(max_examples=20, deadline=None)
@given(
    rows=books,
    stream=books,
    k=st.integers(0, len(SPREAD_SETS) - 1),
    net=st.sampled_from(NETTINGS),
    move=st.sampled_from([0.9, 1.07]),
)
def test_refresh_equals_rebuild(rows, stream, k, net, move):
    engine, moved = _engine(k, *net), _engine(k, *net, market=_moved_market(move))
    frame, fills = pd.concat([SPREAD_BOOK, _frame(rows)], ignore_index=True), _frame(stream)
    everything = pd.concat([frame, fills], ignore_index=True)
    one = account_book(engine, frame, accounts=["a", "b"])
    for name, inst, q in fills.itertuples(index=False):
        one.add_fill(one.account_id(name), IDS.index(inst), q)
    one.refresh(moved)
    fresh = account_book(moved, everything, accounts=["a", "b"])
    for name in ("a", "b"):
        x, y = one.margin(one.account_id(name)), fresh.margin(fresh.account_id(name))
        for key in ("im", "mm", "scan_risk"):
            assert close(x[key], y[key]), (name, key)
    assert_book_matches(fresh, moved, everything)
    # refresh recomputes from positions: with the same positions, bit for bit a fresh book
    three = account_book(engine, everything, accounts=["a", "b"])
    three.refresh(moved)
    for name in ("a", "b"):
        assert repr(three.margin(three.account_id(name))) == repr(fresh.margin(fresh.account_id(name)))


# -- what the book cannot hold is refused by name ---------------------------------------------------


def test_spreads_of_more_than_eight_legs_are_refused():
    legs = [{"unit": "BTC", "side": "A"}] + [{"unit": f"U{k}", "side": "B"} for k in range(8)]
    model = replace(SPAN, addons={"inter": {"type": "inter_spread", "spreads": [{"rate": 0.5, "legs": legs}]}})
    with pytest.raises(ValueError, match=r"addons\.inter\.spreads\[0\]\.legs: the book holds spreads of at most 8"):
        account_book(Engine(INST, MARKET, model), BOOK)


def test_bad_spread_inputs_are_refused_by_the_core(monkeypatch):
    """Month codes out of range or a missing scenario table: an InputError naming the field."""
    engine = _engine(0)
    table, code = book_spreads.month_table(engine)
    monkeypatch.setattr(book_spreads, "month_table", lambda e: (table, code + len(table)))
    with pytest.raises(_core.InputError, match="month"):
        account_book(engine, BOOK)
    monkeypatch.undo()
    real = book_spreads.spread_market

    def without_moves(e):
        out = real(e)
        out.pop("price_multiplier")
        out.pop("vol_shift")
        return out

    monkeypatch.setattr(book_spreads, "spread_market", without_moves)
    with pytest.raises(_core.InputError, match="price_multiplier"):
        account_book(engine, BOOK)


def test_moves_of_the_scenario_set_are_checked(monkeypatch):
    """A vol shift that is not finite cannot price a SPAN price risk: refused naming it."""
    engine = _engine(0)
    real = book_spreads.spread_market

    def nan_shift(e):
        out = real(e)
        out["vol_shift"] = out["vol_shift"].copy()
        out["vol_shift"][1, 3] = np.nan
        return out

    monkeypatch.setattr(book_spreads, "spread_market", nan_shift)
    with pytest.raises(_core.InputError, match=r"vol_shift\[1\]: scenario 3 is not finite"):
        account_book(engine, BOOK)


def test_refresh_needs_the_same_scenario_moves():
    """The SPAN price risk reads the scenario moves the book was built with: a refresh from an engine
    with other moves is refused by name (the book unchanged)."""
    engine = _engine(0)
    book = account_book(engine, BOOK)
    before = [repr(book.margin(a)) for a in range(book.n_accounts)]
    params = {**SPAN.scenario_params, "price_scan": {"default": 0.1, "BTC": 0.3}}
    other = Engine(INST, _moved_market(1.07), replace(engine.model, scenario_params=params))
    with pytest.raises(ValueError, match=r"engine\.scenario_set: addons inter_spread"):
        book.refresh(other)
    assert [repr(book.margin(a)) for a in range(book.n_accounts)] == before


# -- generated spread models ------------------------------------------------------------------------

_UNITS = ["BTC", "ETH", "BTC/USDC"]
_TIER_SETS = [(), tuple(TIERS), ({"tier": 1, "start": "2026-12"},), ({"tier": 3, "end": "2026-12"},)]
_ratios = st.sampled_from([0.5, 1.0, 2.0, 5.0, 10.0, 25.0])
_SIDE = {"BTC": "A", "ETH": "B", "BTC/USDC": "B"}


@st.composite
def _intra(draw):
    tiers = draw(st.sampled_from(_TIER_SETS))
    numbers = sorted({0, *(t["tier"] for t in tiers)})
    spreads = []
    for _ in range(draw(st.integers(1, 3))):
        a, b = draw(st.sampled_from(numbers)), draw(st.sampled_from(numbers))
        legs = [
            {"tier": a, "side": "A", "ratio": draw(_ratios)},
            {"tier": b, "side": "B", "ratio": draw(_ratios)},
        ]
        spreads.append({"rate": draw(st.sampled_from([0.001, 0.01, 25.0, 150.0])), "legs": legs})
    return {
        "type": "intra_spread",
        "tiers": list(tiers),
        "spreads": spreads,
        "whole": draw(st.booleans()),
        "currency": draw(st.sampled_from(["settlement", "USD"])),
        **({"underlyings": draw(st.sampled_from([["BTC"], ["BTC", "ETH"]]))} if draw(st.booleans()) else {}),
    }


@st.composite
def _inter(draw, after: bool):
    spreads = []
    for _ in range(draw(st.integers(1, 3))):
        units = draw(st.permutations(_UNITS))[: draw(st.integers(2, 3))]
        sides = [_SIDE[u] for u in units]  # mostly the sides SPREAD_BOOK's account "a" holds
        if len(set(sides)) == 1 or draw(st.integers(0, 3)) == 0:
            sides = ["A", "B"] + [draw(st.sampled_from(["A", "B"])) for _ in units[2:]]
        legs = [{"unit": u, "side": s, "ratio": draw(_ratios)} for u, s in zip(units, sides, strict=True)]
        spreads.append({"rate": draw(st.sampled_from([0.2, 0.5, 0.9])), "legs": legs})
    table = {
        "type": "inter_spread",
        "spreads": spreads,
        "price_risk": draw(st.sampled_from(["span", "scan"])),
        "whole": draw(st.integers(0, 3)) == 0,
    }
    if draw(st.booleans()):
        table["tiers"] = {"BTC": [{"tier": 0, "end": "2026-12"}], "ETH": list(TIERS)}
    if after:
        table["after"] = "intra"
    return table


@st.composite
def spread_models(draw):
    addons = {}
    with_intra = draw(st.booleans())
    if with_intra:
        addons["intra"] = draw(_intra())
    if draw(st.booleans()) or not with_intra:
        addons["inter"] = draw(_inter(with_intra and draw(st.booleans())))
    netting, mode = draw(st.sampled_from(NETTINGS + [(n, "cross") for n, _ in NETTINGS]))  # cross: credits form
    return replace(SPAN, addons=addons, netting=netting, mode=mode)


@settings(max_examples=60, deadline=None)
@given(model=spread_models(), rows=books, stream=books)
def test_generated_spread_models(model, rows, stream):
    """Generated spread add-ons (tiers, ratios, whole spreads, 2- and 3-leg inter spreads, `after`,
    both price risks, unit tiers): the book equals the engine, before and after a stream of fills,
    and each what-if is the fill."""
    engine = Engine(INST, MARKET, model)
    held = pd.concat([SPREAD_BOOK, _frame(rows)], ignore_index=True)
    book = account_book(engine, held, accounts=["a", "b"], collateral=COLLATERAL[:2])
    assert_book_matches(book, engine, held, COLLATERAL[:2])
    for name, inst, q in _frame(stream).itertuples(index=False):
        a, i = book.account_id(name), IDS.index(inst)
        w = book.what_if(a, i, q)
        book.add_fill(a, i, q)
        assert book.margin(a)["im"] == w.im
        held = pd.concat([held, _rows([(name, inst, q)])], ignore_index=True)
    assert_book_matches(book, engine, held, COLLATERAL[:2])
