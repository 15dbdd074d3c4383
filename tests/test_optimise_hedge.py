"""Hedge optimisation: the solver's objective is the engine's IM + cost of the optimal book, no random
feasible hedge beats it, lots are respected, and bad input fails naming the field."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import marginkernel as mk
from marginkernel.demo import demo_inputs
from marginkernel.optimise import hedge
from marginkernel.optimise.hedge import with_trades

INST, MKT, POS = demo_inputs()
HEDGES = pd.DataFrame(
    {
        "instrument": [
            "BTC-PERPETUAL",
            "BTC-27DEC26",
            "BTC-27DEC26-90000-P",
            "BTC-27DEC26-110000-C",
            "ETH-PERPETUAL",
            "ETH-27DEC26-3000-P",
            "BTC_USDC-PERPETUAL",
        ],
        "min": [-1e5, -1e5, -50, -50, -1e6, -300, -5],
        "max": [1e5, 1e5, 50, 50, 1e6, 300, 5],
        "cost": [0.05, 0.05, 20.0, 20.0, 0.005, 2.0, 30.0],
    }
)


def custom(name):
    addons = {
        "delta_shock": {"shock": 0.05, "threshold": 1e5},
        "concentration": {"measure": "gross_delta", "tiers": [[0, 0.0], [1e6, 0.01]]},
        "contingency": {"option_rate": 0.002},
        "som": {"type": "short_option_minimum", "rate": 2000.0, "method": "max", "currency": "USD"},
        "pcm": {"type": "per_contract_minimum", "rate": 0.001, "basis": "notional", "tiers": [[0, 1], [1e5, 2]]},
    }
    grid = {"price_range": {"default": 0.15}, "steps": 5}
    if name == "account":
        return mk.MarginModel(
            name="a",
            builder="deribit_grid",
            scenario_params=grid,
            netting="account",
            gain_factor={"default": 0.5, "USDC": 0.8},
            addons=addons,
            im_factor=1.2,
        )
    return mk.MarginModel(
        name="e",
        builder="range_points",
        measure="es",
        confidence=0.9,
        netting="currency",
        gain_factor=0.5,
        scenario_params={"up": 0.2, "down": 0.25, "points": 30},
        addons=addons,
    )


MODELS = {p: mk.load_model(p) for p in ("deribit-pm", "okx-pm", "tims")}
MODELS.update({"account": custom("account"), "es": custom("es")})
ENGINES = {k: mk.Engine(INST, MKT, m) for k, m in MODELS.items()}


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("account", ["naked-short", "long-straddle", "perp-basis"])
def test_objective_equals_engine_im_plus_cost(name, account):
    r = hedge(ENGINES[name], POS, HEDGES, account=account)
    assert r.im_after + r.cost == pytest.approx(r.objective, rel=1e-7, abs=1e-6)
    assert r.objective <= r.im_before + 1e-7 * r.im_before  # doing nothing is feasible
    # the plain delta hedge is feasible here, so the optimum is never worse
    assert r.saving_vs_delta_hedge >= -1e-7 * max(1.0, r.objective)


@pytest.mark.parametrize("name", ["deribit-pm", "account"])
def test_lots_make_it_a_milp(name):
    lots = HEDGES.assign(lot=[10.0, 10.0, 1.0, 1.0, 1.0, 1.0, 0.1])
    r = hedge(ENGINES[name], POS, lots, account="naked-short")
    assert r.integer
    units = r.trades["quantity"].to_numpy() / lots["lot"].to_numpy()
    np.testing.assert_allclose(units, np.round(units), atol=1e-9)
    assert r.im_after + r.cost == pytest.approx(r.objective, rel=1e-7)


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.floats(-1.0, 1.0), min_size=7, max_size=7),
    st.sampled_from(list(MODELS)),
    st.sampled_from(["naked-short", "long-straddle", "eth-hedged"]),
)
def test_no_random_feasible_hedge_beats_the_optimum(fractions, name, account):
    eng = ENGINES[name]
    r = hedge(eng, POS, HEDGES, account=account)
    lo, hi = HEDGES["min"].to_numpy(), HEDGES["max"].to_numpy()
    f = np.asarray(fractions)
    qty = np.where(f >= 0, f * hi, -f * lo) * np.abs(f) ** 2  # many small trades, some large
    book = with_trades(
        POS[POS["account"] == account][["account", "instrument", "quantity"]], account, HEDGES["instrument"], qty
    )
    im = eng.margin(book).accounts.loc[account, "im"]
    cost = float(np.sum(HEDGES["cost"].to_numpy() * np.abs(qty)))
    assert im + cost >= r.objective * (1 - 1e-7) - 1e-6


def test_hand_checked_future_hedge():
    """A long linear future hedged by the same future at no cost: the optimum closes it (IM 0)."""
    inst = mk.Instruments.from_records(
        [{"id": "F", "kind": "future", "underlying": "BTC", "expiry": "2026-12-27T08:00:00Z"}]
    )
    mkt = mk.Market.from_dict({"time": "2026-11-21T08:00:00Z", "spot": {"BTC": 100_000.0}})
    eng = mk.Engine(
        inst, mkt, mk.MarginModel(name="t", builder="range_points", scenario_params={"up": 0.1, "down": 0.1})
    )
    r = hedge(
        eng,
        [{"account": "a", "instrument": "F", "quantity": 2.0}],
        [{"instrument": "F", "min": -1.5, "max": 0.0, "cost": 100.0}],
    )
    # each unit sold saves 10,000 of IM for 100 of cost: sell the most allowed, 1.5
    assert r.trades["quantity"].iloc[0] == pytest.approx(-1.5, rel=1e-9)
    assert r.im_before == pytest.approx(20_000.0, rel=1e-12)
    assert r.im_after == pytest.approx(5_000.0, rel=1e-9)
    assert r.objective == pytest.approx(5_150.0, rel=1e-9)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"instrument": ["NOPE"]}, "unknown instrument 'NOPE'"),
        ({"cost": [float("nan")]}, "cost"),
        ({"cost": [-1.0]}, "cost"),
        ({"min": [5.0], "max": [3.0]}, r"min 5\.0 <= quantity <= max 3\.0 cannot hold"),
        ({"min": [0.2], "max": [0.8], "lot": [1.0]}, "no multiple of the lot"),
        ({"cost": ["cheap"]}, "cost"),
    ],
)
def test_bad_hedge_input_names_the_field(change, message):
    row = {"instrument": "BTC-PERPETUAL", "min": -10.0, "max": 10.0, "cost": 0.0}
    row.update({k: v[0] for k, v in change.items()})
    with pytest.raises((ValueError, TypeError), match=message):
        hedge(ENGINES["deribit-pm"], POS, [row], account="naked-short")


def test_duplicate_hedge_and_nonconvex_models_are_refused():
    with pytest.raises(ValueError, match="listed twice"):
        hedge(ENGINES["deribit-pm"], POS, pd.concat([HEDGES, HEDGES.iloc[:1]]), account="naked-short")
    span = mk.Engine(INST, MKT, mk.load_model("span"))
    with pytest.raises(ValueError, match=r"addons\.intra_spread"):
        hedge(span, POS, HEDGES, account="naked-short")
    var = mk.Engine(INST, MKT, mk.MarginModel(name="v", builder="range_points", measure="var"))
    with pytest.raises(ValueError, match=r"model\.measure"):
        hedge(var, POS, HEDGES, account="naked-short")
    with pytest.raises(ValueError, match="name one"):
        hedge(ENGINES["deribit-pm"], POS, HEDGES)
