"""Explain: contributions add up to IM, incremental margin equals brute force, marginal margin equals
a finite difference away from kinks, and the C++ incremental kernel equals its NumPy reference."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import marginkernel as mk
from marginkernel import _core
from marginkernel.demo import demo_inputs
from marginkernel.explain import explain
from marginkernel.explain import reference as ref

GENERIC = ["deribit-pm", "okx-pm", "span", "tims"]
INST, MKT, POS = demo_inputs()


def custom_models():
    """Models that exercise every netting level, measure and add-on combination rule."""
    addons = {
        "delta_shock": {"shock": 0.05, "threshold": 1e5},
        "concentration": {"measure": "gross_delta", "tiers": [[0, 0.0], [1e6, 0.01]]},
        "contingency": {"option_rate": 0.002, "future_rate": 0.001},
        "som": {"type": "short_option_minimum", "rate": 2000.0, "method": "max", "currency": "USD"},
    }
    grid = {"price_range": {"default": 0.15}, "steps": 5}
    return {
        "account-haircut": mk.MarginModel(
            name="a",
            builder="deribit_grid",
            scenario_params=grid,
            netting="account",
            gain_factor={"default": 0.5, "USDC": 0.8},
            gain_cap=2e5,
            addons=addons,
        ),
        "currency-cap": mk.MarginModel(
            name="c",
            builder="deribit_grid",
            scenario_params=grid,
            netting="currency",
            gain_factor={"default": 0.3},
            gain_cap=1e3,
            im_factor=1.2,
            mm_factor=0.9,
        ),
        "var": mk.MarginModel(
            name="v",
            builder="range_points",
            measure="var",
            confidence=0.9,
            netting="account",
            scenario_params={"up": 0.2, "down": 0.2, "points": 40},
            addons=addons,
        ),
        "es": mk.MarginModel(
            name="e",
            builder="range_points",
            measure="es",
            confidence=0.9,
            netting="currency",
            gain_factor=0.5,
            scenario_params={"up": 0.2, "down": 0.25, "points": 30},
        ),
    }


ALL = {**{p: mk.load_model(p) for p in GENERIC}, **custom_models()}


def engine(name):
    return mk.Engine(INST, MKT, ALL[name])


def brute_incremental(eng, positions, mode=None):
    base = eng.margin(positions, mode=mode).accounts["im"]
    out = []
    for k in range(len(positions)):
        row = positions.iloc[k]
        rest = positions.drop(positions.index[k])
        im = eng.margin(rest, accounts=[row["account"]], mode=mode).accounts.loc[row["account"], "im"]
        out.append(base[row["account"]] - im)
    return np.array(out)


@pytest.mark.parametrize("name", list(ALL))
@pytest.mark.parametrize("mode", ["cross", "isolated"])
def test_contributions_add_up_to_im(name, mode):
    eng = engine(name)
    ex = explain(eng, POS, mode=mode, incremental=False, marginal=False)
    im = ex.accounts["im"]
    assert (im > 0).sum() >= 4
    total = ex.positions.groupby("account")["contribution"].sum().reindex(im.index)
    np.testing.assert_allclose(total.to_numpy(), im.to_numpy(), rtol=1e-9, atol=1e-9 * im.max())
    parts = ex.positions[["scan", *ex.components]].sum(axis=1)
    np.testing.assert_allclose(parts, ex.positions["contribution"], rtol=1e-12, atol=1e-9)
    # the scan part alone adds up to the engine's scan risk (im_factor applied)
    scan = ex.positions.groupby("account")["scan"].sum().reindex(im.index)
    np.testing.assert_allclose(scan, eng.model.im_factor * ex.accounts["scan_risk"], rtol=1e-9, atol=1e-6)


@pytest.mark.parametrize("name", list(ALL))
def test_incremental_equals_brute_force(name):
    eng = engine(name)
    ex = explain(eng, POS, marginal=False)
    frame = ex.positions
    positions = frame[["account", "instrument", "quantity"]]
    expected = brute_incremental(eng, positions)
    np.testing.assert_allclose(frame["incremental"], expected, rtol=1e-9, atol=1e-9 * ex.accounts["im"].max())


def test_incremental_isolated_mode_removes_the_position_alone():
    eng = engine("deribit-pm")
    ex = explain(eng, POS, mode="isolated", marginal=False)
    expected = brute_incremental(eng, ex.positions[["account", "instrument", "quantity"]], mode="isolated")
    np.testing.assert_allclose(ex.positions["incremental"], expected, rtol=1e-9, atol=1e-6)
    # in isolated mode a position's incremental margin is its own contribution
    np.testing.assert_allclose(ex.positions["incremental"], ex.positions["contribution"], rtol=1e-9, atol=1e-6)


@pytest.mark.parametrize("name", list(ALL))
def test_marginal_equals_finite_difference_away_from_kinks(name):
    eng = engine(name)
    ex = explain(eng, POS, incremental=False)
    frame = ex.positions
    checked = 0
    for k, row in frame.iterrows():
        q = row["quantity"]
        h = 1e-5 * abs(q)

        def im(dq, row=row, k=k, q=q):
            book = frame[["account", "instrument", "quantity"]].copy()
            book.loc[k, "quantity"] = q + dq
            return eng.margin(book[book["account"] == row["account"]]).accounts.loc[row["account"], "im"]

        mid = im(0.0)
        up, down = (im(h) - mid) / h, (mid - im(-h)) / h
        if abs(up - down) > 1e-4 * max(1.0, abs(up)):
            continue  # a kink (binding scenario or add-on branch changes within the step)
        assert row["marginal"] == pytest.approx((up + down) / 2, rel=1e-4, abs=1e-6 * max(1.0, abs(mid) / abs(q)))
        checked += 1
    assert checked >= len(frame) // 2


def test_account_without_positions_gives_zero_rows():
    eng = engine("deribit-pm")
    ex = explain(eng, POS, account="nobody")
    assert len(ex.positions) == 0
    assert ex.accounts.loc["nobody", "im"] == 0.0
    assert ex.accounts.loc["nobody", "contributions"] == 0.0
    one = explain(eng, POS, account="calendar")
    assert set(one.positions["account"]) == {"calendar"}
    assert one.accounts.loc["calendar", "contributions"] == pytest.approx(one.accounts.loc["calendar", "im"], rel=1e-9)


def test_collateral_credits_are_shown():
    eng = engine("deribit-pm")
    coll = {"calendar": {"BTC": 2.0, "USDC": 1000.0}}
    ex = explain(eng, POS, account="calendar", collateral=coll)
    c = ex.collateral.set_index("currency")
    assert c.loc["BTC", "value"] == pytest.approx(2.0 * 98000.0, rel=1e-12)
    assert c.loc["USDC", "value"] == pytest.approx(1000.0, rel=1e-12)
    assert ex.accounts.loc["calendar", "collateral_value"] == pytest.approx(197000.0, rel=1e-12)
    assert ex.accounts.loc["calendar", "equity"] == pytest.approx(197000.0, rel=1e-12)


def test_euler_rule_by_hand_two_futures():
    """Long and short future in one risk unit: the scan is each future's P&L in the worst scenario."""
    inst = mk.Instruments.from_records(
        [
            {"id": "F1", "kind": "future", "underlying": "BTC", "expiry": "2026-12-27T08:00:00Z"},
            {"id": "F2", "kind": "future", "underlying": "BTC", "expiry": "2027-03-26T08:00:00Z"},
        ]
    )
    mkt = mk.Market.from_dict({"time": "2026-11-21T08:00:00Z", "spot": {"BTC": 100_000.0}})
    model = mk.MarginModel(name="t", builder="range_points", scenario_params={"up": 0.1, "down": 0.1, "points": 2})
    eng = mk.Engine(inst, mkt, model)
    ex = explain(
        eng,
        [{"account": "a", "instrument": "F1", "quantity": 3.0}, {"account": "a", "instrument": "F2", "quantity": -1.0}],
    )
    scan = ex.positions.set_index("instrument")["scan"]
    # worst scenario is -10 %: F1 loses 3 x 10,000, F2 gains 1 x 10,000
    assert scan["F1"] == pytest.approx(30_000.0, rel=1e-12)
    assert scan["F2"] == pytest.approx(-10_000.0, rel=1e-12)
    assert ex.accounts.loc["a", "im"] == pytest.approx(20_000.0, rel=1e-12)
    assert ex.positions.set_index("instrument")["marginal"]["F1"] == pytest.approx(10_000.0, rel=1e-12)


def test_tail_rules_share_ties():
    from marginkernel.explain._tree import tail

    joint = np.array([[-5.0, -5.0, 3.0, 1.0], [2.0, 1.0, 4.0, 3.0]])
    worst = mk.MarginModel(name="t", builder="range_points")
    scan, w = tail(joint, worst, None)
    np.testing.assert_array_equal(scan, [5.0, 0.0])
    np.testing.assert_array_equal(w, [[0.5, 0.5, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    es = mk.MarginModel(name="t", builder="range_points", measure="es", confidence=0.5)
    scan, w = tail(joint[:1], es, np.array([0.1, 0.3, 0.2, 0.4]))
    # quantile at level 0.5 by probability: -5 (cdf 0.4), then 1 (cdf 0.8): ES over P <= 1
    np.testing.assert_allclose(w, [[0.125, 0.375, 0.0, 0.5]])
    assert scan[0] == pytest.approx(-(0.1 * -5 + 0.3 * -5 + 0.4 * 1.0) / 0.8)


# --- the C++ kernel against its NumPy reference ---------------------------------------------------


@st.composite
def trees(draw):
    ns = draw(st.integers(1, 12))
    n_nodes = draw(st.integers(1, 4))
    per_node = [draw(st.integers(1, 3)) for _ in range(n_nodes)]
    nc = sum(per_node)
    node_start = np.concatenate([[0], np.cumsum(per_node)]).astype(np.int64)
    vals = st.floats(-1e4, 1e4, allow_nan=False).map(lambda v: round(v, 2))  # ties happen
    n_inst = draw(st.integers(1, 4))
    n_units = draw(st.integers(1, 3))
    risk = np.array(draw(st.lists(vals, min_size=n_inst * ns, max_size=n_inst * ns))).reshape(n_inst, ns)
    weight = np.array(
        draw(st.lists(st.sampled_from([0.0, 0.35, 1.0]), min_size=n_units * ns, max_size=n_units * ns))
    ).reshape(n_units, ns)
    counts = np.array([draw(st.integers(1, 3)) for _ in range(nc)], dtype=np.int64)
    n_pos = int(counts.sum())
    child = np.repeat(np.arange(nc), counts).astype(np.int64)
    inst = np.array([draw(st.integers(0, n_inst - 1)) for _ in range(n_pos)], dtype=np.int32)
    unit = np.array([draw(st.integers(0, n_units - 1)) for _ in range(n_pos)], dtype=np.int32)
    qty = np.array([draw(st.sampled_from([-3.0, -1.0, 0.5, 2.0])) for _ in range(n_pos)])
    scale = np.array([draw(st.sampled_from([1.0, 0.5, 2.0])) for _ in range(nc)])
    child_pnl = np.zeros((nc, ns))
    for k in range(n_pos):
        child_pnl[child[k]] += ((qty[k] * risk[inst[k]]) * weight[unit[k]]) * scale[child[k]]
    gain = np.array([draw(st.sampled_from([0.0, 0.3, 1.0])) for _ in range(nc)])
    cap = np.array([draw(st.sampled_from([np.inf, 0.0, 500.0])) for _ in range(n_nodes)])
    measure = draw(st.integers(0, 2))
    prob = draw(st.one_of(st.none(), st.lists(st.floats(0.1, 1.0), min_size=ns, max_size=ns).map(np.array)))
    return (child_pnl, gain, counts, scale, node_start, cap, measure, 0.8, prob, risk, weight, inst, unit, child, qty)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trees())
def test_incremental_scan_kernel_equals_reference(args):
    got = _core.incremental_scan(*args)
    want = ref.incremental_scan(*args)
    # tolerance: the kernel and the reference sum the same terms in the same order; VaR/ES pick the
    # same scenario, so the only difference is the last bit of the removals' rounding
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-9)
    nodes = _core.node_scan(*args[:9])
    np.testing.assert_allclose(nodes, ref.node_scan(*args[:9]), rtol=1e-12, atol=1e-9)


def test_kernel_bad_input_names_the_field():
    pnl = np.zeros((1, 2))
    ok = {
        "child_pnl": pnl,
        "child_gain": np.ones(1),
        "child_count": np.ones(1, np.int64),
        "child_scale": np.ones(1),
        "node_start": np.array([0, 1], np.int64),
        "node_cap": np.array([np.inf]),
        "measure": 0,
        "confidence": 0.9,
        "probability": None,
        "risk": np.zeros((1, 2)),
        "weight": np.ones((1, 2)),
        "instrument": np.zeros(1, np.int32),
        "unit": np.zeros(1, np.int32),
        "child": np.zeros(1, np.int64),
        "quantity": np.ones(1),
    }
    assert _core.incremental_scan(**ok)[0] == 0.0
    with pytest.raises(mk.InputError, match="instrument"):
        _core.incremental_scan(**{**ok, "instrument": np.array([3], np.int32)})
    with pytest.raises(mk.InputError, match="child_gain"):
        _core.incremental_scan(**{**ok, "child_gain": np.array([1.5])})
    with pytest.raises(mk.InputError, match="node_start"):
        _core.incremental_scan(**{**ok, "node_start": np.array([0, 2], np.int64)})
    with pytest.raises(mk.InputError, match="quantity"):
        _core.incremental_scan(**{**ok, "quantity": np.array([np.nan])})


def test_explain_does_not_mutate_inputs():
    eng = engine("span")
    before = POS.copy()
    explain(eng, POS)
    pd.testing.assert_frame_equal(POS, before)


def test_expired_positions_settled_out_and_arrow_input():
    """Positions in expired instruments (``expired="settle"``) carry no risk: explain leaves them out
    and still adds up to IM; an Arrow table explains like the DataFrame it came from."""
    import pyarrow as pa

    t0, exp, past = "2026-11-21T08:00:00Z", "2026-12-27T08:00:00Z", "2026-11-20T08:00:00Z"
    inst = mk.Instruments.from_records(
        [
            {"id": "F", "kind": "future", "underlying": "BTC", "expiry": exp},
            {"id": "C", "kind": "call", "underlying": "BTC", "strike": 100_000.0, "expiry": exp},
            {"id": "OLD-P", "kind": "put", "underlying": "BTC", "strike": 105_000.0, "expiry": past},
        ]
    )
    mkt = mk.Market.from_dict(
        {
            "time": t0,
            "spot": {"BTC": 100_000.0},
            "vols": {"C": 0.6, "OLD-P": 0.5},
            "settlement_prices": {"BTC": 99_000.0},
        }
    )
    grid = mk.MarginModel(name="g", builder="range_points", scenario_params={"up": 0.1, "down": 0.1})
    eng = mk.Engine(inst, mkt, grid, expired="settle")
    book = pd.DataFrame({"account": ["a", "a", "a"], "instrument": ["OLD-P", "F", "C"], "quantity": [-2.0, 1.0, -1.0]})
    ex = explain(eng, book)
    assert list(ex.positions["instrument"]) == ["F", "C"]
    im = ex.accounts.loc["a", "im"]
    assert im > 0
    assert ex.positions["contribution"].sum() == pytest.approx(im, rel=1e-12)
    assert ex.accounts.loc["a", "equity"] == pytest.approx(-12_000.0, rel=1e-15)  # 2 puts settled at 6,000
    arrow = explain(eng, pa.Table.from_pandas(book))
    pd.testing.assert_frame_equal(arrow.positions, ex.positions)
