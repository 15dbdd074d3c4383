"""Liquidation plans and allocation: hand-checked optima, engine agreement, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import marginkernel as mk
from marginkernel.demo import demo_inputs
from marginkernel.optimise.allocate import allocate
from marginkernel.optimise.liquidate import liquidation_plan

T0, EXP, EXP2 = "2026-11-21T08:00:00Z", "2026-12-27T08:00:00Z", "2027-03-26T08:00:00Z"
INST, MKT, POS = demo_inputs()


def futures_engine(**model):
    inst = mk.Instruments.from_records(
        [
            {"id": "F", "kind": "future", "underlying": "BTC", "expiry": EXP},
            {"id": "G", "kind": "future", "underlying": "BTC", "expiry": EXP2},
        ]
    )
    mkt = mk.Market.from_dict({"time": T0, "spot": {"BTC": 100_000.0}})
    params = {"name": "t", "builder": "range_points", "scenario_params": {"up": 0.1, "down": 0.1}}
    params.update(model)
    return mk.Engine(inst, mkt, mk.MarginModel(**params))


def test_liquidation_by_hand_single_future():
    """Long 4 F: MM = 0.1 x 100,000 x q. Equity 30,000, target 0.5: MM after <= 0.5 (30,000 - cost).
    With cost 100 per unit: 10,000 q <= 15,000 - 50 (4 - q) -> q = 14,800 / 9,950."""
    eng = futures_engine()
    plan = liquidation_plan(
        eng,
        [{"account": "a", "instrument": "F", "quantity": 4.0}],
        [{"instrument": "F", "half_spread": 100.0}],
        collateral={"a": {"USD": 30_000.0}},
        target_ratio=0.5,
    )
    keep = 14_800.0 / 9_950.0
    assert plan.closes["closed"].iloc[0] == pytest.approx(4.0 - keep, rel=1e-7)
    assert plan.ratio_after == pytest.approx(0.5, rel=1e-7)
    assert plan.cost == pytest.approx(100.0 * (4.0 - keep), rel=1e-7)


def test_liquidation_prefers_the_cheaper_close_and_respects_impact():
    eng = mk.Engine(INST, MKT, mk.load_model("deribit-pm"))
    costs = pd.DataFrame(
        {
            "instrument": list(INST.ids),
            "half_spread": 5.0,
            "impact": [[[0, 0.0], [5, 50.0], [15, 500.0]]] * len(INST.ids),
        }
    )
    coll = {"naked-short": {"USDC": 500_000.0}}
    plan = liquidation_plan(eng, POS, costs, collateral=coll, target_ratio=0.8, account="naked-short")
    assert plan.ratio_before > 1.0
    assert plan.ratio_after == pytest.approx(0.8, rel=1e-6)
    after = eng.margin(plan.positions, collateral={"naked-short": {"USDC": 500_000.0 - plan.cost}})
    assert after.accounts.loc["naked-short", "margin_ratio"] == pytest.approx(0.8, rel=1e-6)
    # closes go towards zero and never beyond
    c = plan.closes
    assert (np.sign(c["trade"]) != np.sign(c["quantity"])).all() or (c["trade"].abs() < 1e-9).any()
    assert (c["closed"] <= c["quantity"].abs() + 1e-9).all()


def test_liquidation_bad_input():
    eng = futures_engine()
    book = [{"account": "a", "instrument": "F", "quantity": 4.0}]
    costs = [{"instrument": "F", "half_spread": 1.0}]
    with pytest.raises(ValueError, match=r"target_ratio: 2\.0 is not below the current margin ratio"):
        liquidation_plan(eng, book, costs, collateral={"a": {"USD": 1e6}}, target_ratio=2.0)
    with pytest.raises(ValueError, match="collateral"):
        liquidation_plan(eng, book, costs, collateral=None, target_ratio=0.5)
    with pytest.raises(ValueError, match="half_spread"):
        liquidation_plan(
            eng,
            book,
            [{"instrument": "F", "half_spread": float("nan")}],
            collateral={"a": {"USD": 1e4}},
            target_ratio=0.5,
        )
    with pytest.raises(ValueError, match="no row for instrument 'F'"):
        liquidation_plan(eng, book, [{"instrument": "G"}], collateral={"a": {"USD": 1e4}}, target_ratio=0.5)
    with pytest.raises(ValueError, match="impact"):
        liquidation_plan(
            eng,
            book,
            [{"instrument": "F", "impact": [[0, 5.0], [1, 1.0]]}],
            collateral={"a": {"USD": 1e4}},
            target_ratio=0.5,
        )
    with pytest.raises(ValueError, match="no set of closes"):
        liquidation_plan(
            eng,
            book,
            [{"instrument": "F", "half_spread": 50_000.0}],
            collateral={"a": {"USD": 30_000.0}},
            target_ratio=0.5,
        )


def test_allocation_splits_a_delta_shock_below_its_threshold():
    """Two long BTC futures, 1.5 BTC each, delta shock 10 % above 100,000 USD of delta: together
    0.1 x 200,000 = 20,000; apart 2 x 0.1 x 50,000 = 10,000; the scan is the same either way."""
    eng = futures_engine(addons={"delta_shock": {"shock": 0.1, "threshold": 100_000.0}})
    book = [{"account": "a", "instrument": "F", "quantity": 1.5}, {"account": "a", "instrument": "G", "quantity": 1.5}]
    out = allocate(eng, book, sub_accounts=2)
    assert out.im_before - out.im_after == pytest.approx(10_000.0, rel=1e-6)
    assert out.objective == pytest.approx(out.im_after, rel=1e-7)
    assert out.assignment["target"].nunique() == 2


@pytest.mark.parametrize("preset", ["deribit-pm", "okx-pm", "tims"])
def test_allocation_objective_equals_engine(preset):
    eng = mk.Engine(INST, MKT, mk.load_model(preset))
    book = POS.assign(account="all")
    for isolated in (False, True):
        out = allocate(eng, book, isolated=isolated)
        assert out.objective == pytest.approx(out.im_after, rel=1e-7)
        assert out.im_after <= out.im_before * (1 + 1e-9)


def test_allocation_bad_input():
    eng = futures_engine()
    with pytest.raises(ValueError, match="sub_accounts"):
        allocate(eng, [{"account": "a", "instrument": "F", "quantity": 1.0}], sub_accounts=1)
    with pytest.raises(ValueError, match="max_positions"):
        allocate(
            eng,
            [
                {"account": "a", "instrument": "F", "quantity": 1.0},
                {"account": "a", "instrument": "G", "quantity": 1.0},
            ],
            max_positions=1,
        )
