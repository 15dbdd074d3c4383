"""Every C++ kernel against its pure-NumPy reference, on every SIMD target this CPU supports.

Tolerances (measured with the strategies of marginkernel.testing over ~6,000 cases per test and
target on an AMD Zen 4 -- MK_HYPOTHESIS_SCALE=30 -- then set with a margin of ~4x; run with ``-s``
to print this run's maxima):

* revalue (R and value_now): |kernel - reference| <= PRICE_RTOL = 2e-14 x the price scale of the
  instrument (linear: multiplier x forward; inverse futures/perps: multiplier / forward; inverse
  options: multiplier x forward / spot). Measured max 4.6e-15 for R (a few ulp of K or F_s, which
  reach 4 F and 5 F), 1.0e-15 for value_now. architecture §3 requires <= 1e-13.
* net: |kernel - reference| <= NET_RTOL = 1e-15 x sum_k |q_k| |R[i_k, s]|. Measured max 2.2e-16.
* worst_loss: the loss is bit-identical (same operations in the same order); the worst scenario
  index is identical when the minimum is unique, and otherwise attains the minimum (both report
  the first).
* value_at_risk: VaR bit-identical (it is an element of P), with equal and with probability
  weights; ES within ES_RTOL = 5e-14 x max |P| of the row (the kernel sums sequentially, NumPy
  pairwise). Measured max 9.6e-15. Skipped edge: probability-weighted cases whose cumulative
  probability lies within 2e-12 of the level (the order of tied P&L values may differ, and with it
  the rounding of the cumulative sum). The level 1 - confidence is snapped by a relative 1e-12 in
  both (reference.LEVEL_RTOL; test_var_level_rounding).
* normal_cdf: absolute difference to scipy.special.ndtr <= 4.5e-16 (measured 2.2e-16; each is within
  ~2.2e-16 of the truth, see tests/test_normal_cdf.py for the accuracy against mpmath).
"""

from __future__ import annotations

import os
from collections import defaultdict

import numpy as np
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from marginkernel import kernels, reference
from marginkernel.testing import invariants as inv
from marginkernel.testing import simd_targets, using_simd_target
from marginkernel.testing import strategies as mks
from tail_cases import order_dependent_case

TARGETS = simd_targets()
#: MK_HYPOTHESIS_SCALE=30 multiplies every example count (the tolerances below were measured so)
SCALE = int(os.environ.get("MK_HYPOTHESIS_SCALE", "1"))

PRICE_RTOL = 2e-14
NET_RTOL = 1e-15
ES_RTOL = 5e-14
CDF_ATOL = 4.5e-16

MEASURED: dict[str, float] = defaultdict(float)


@pytest.fixture(scope="module", autouse=True)
def report_measured():
    yield
    if MEASURED:
        print("\nmeasured max errors (kernel vs reference):")
        for key, val in sorted(MEASURED.items()):
            print(f"  {key:40s} {val:.3g}")


def _record(key: str, value: float) -> None:
    MEASURED[key] = max(MEASURED[key], float(value))


INITIAL_TARGET = kernels.simd_target()


def test_every_target_is_tested():
    """The portable baseline is always there (last: best first) and the active target is one of them."""
    assert TARGETS[-1] == "baseline"
    assert kernels.simd_target() in TARGETS


# ---------------------------------------------------------------------------------------------
# revalue


def _check_revalue(case: mks.RevalueCase, target: str) -> None:
    kw = case.kwargs()
    before = {k: (None if v is None else np.copy(v)) for k, v in kw.items() if isinstance(v, np.ndarray) or v is None}
    with np.errstate(all="ignore"):
        r_ref, v_ref = reference.revalue(**kw)
    with using_simd_target(target):
        r, v = kernels.revalue(**kw)
        r2, v2 = kernels.revalue(**kw, threads=2)
    assert r.shape == (len(case.instruments), case.scenarios.n_scenarios)
    assert r.dtype == np.float64 and v.shape == (len(case.instruments),)
    assert np.isfinite(r).all() and np.isfinite(v).all()
    scale = case.price_scale()
    err_r = np.abs(r - r_ref) / scale[:, None]
    err_v = np.abs(v - v_ref) / scale
    _record(f"revalue R [{target}]", err_r.max())
    _record(f"revalue value_now [{target}]", err_v.max())
    bad = np.argwhere(~(err_r <= PRICE_RTOL))
    if len(bad):
        at = tuple(bad[0])
        raise AssertionError(f"R off at {at}: {r[at]!r} vs {r_ref[at]!r} ({err_r[at]:.3g} of the price scale)")
    assert (err_v <= PRICE_RTOL).all(), f"value_now off by {err_v.max():.3g} of scale"
    # threads split rows only: bit-identical
    np.testing.assert_array_equal(r2, r)
    np.testing.assert_array_equal(v2, v)
    for k, val in before.items():
        if val is not None:
            np.testing.assert_array_equal(kw[k], val, err_msg=f"{k} was modified")


@pytest.mark.parametrize("target", TARGETS)
@settings(max_examples=200 * SCALE, deadline=None)
@given(case=mks.revalue_cases())
def test_revalue_matches_reference(target, case):
    _check_revalue(case, target)


def _grid_case(ns: int, kind: int, settlement: int, expiry: float, vol: float, strike_ratio: float = 1.0):
    spot = np.array([30000.0])
    ins = mks.Instruments(
        kind=np.array([kind], np.int8),
        settlement=np.array([settlement], np.int8),
        risk_unit=np.array([0], np.int32),
        strike=np.array([30500.0 * strike_ratio]),
        expiry=np.array([expiry]),
        multiplier=np.array([1.0]),
        forward=np.array([30500.0]),
        discount=np.array([0.99]),
        vol=np.array([vol]),
    )
    m = np.linspace(0.5, 1.5, ns)[None, :]
    sc = mks.Scenarios(m, np.linspace(-0.5, 0.5, ns)[None, :], np.full(ns, 0.01))
    shock = {"vol_shock": "multiplicative", "tau_floor_days": 1.0, "short_power": 0.5, "long_power": 0.3}
    return mks.RevalueCase(mks.Market(spot), ins, sc, shock)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("ns", [1, 63, 64, 65, 128, 129])
@pytest.mark.parametrize(
    "kind,settlement,expiry,vol,ratio",
    [
        (2, 0, 0.25, 0.6, 1.0),  # ATM call
        (3, 1, 0.25, 0.6, 1.0),  # inverse put
        (2, 1, 1e-9, 0.6, 1.0),  # nearly expired: tiny sigma sqrt(T)
        (3, 0, -0.01, 0.6, 0.9),  # expired put: intrinsic
        (2, 0, 2.0, 3.0, 4.0),  # huge vol, far OTM
        (3, 0, 0.5, 0.0, 1.1),  # zero vol: discounted intrinsic
        (0, 1, 0.0, 0.0, 1.0),  # inverse future
        (1, 0, 0.0, 0.0, 1.0),  # linear perp
    ],
)
def test_revalue_block_edges(target, ns, kind, settlement, expiry, vol, ratio):
    """Scenario counts around the 64-wide block of the C++ kernel, on named instrument corners."""
    _check_revalue(_grid_case(ns, kind, settlement, expiry, vol, ratio), target)


@pytest.mark.parametrize("target", TARGETS)
@settings(max_examples=40 * SCALE, deadline=None)
@given(data=st.data())
def test_zero_scenario_is_exactly_zero(target, data):
    """m = 1, no vol shift, no look-ahead (an all-zero time_shift array included): P&L exactly 0,
    kernel and reference, inverse options included."""
    case = data.draw(mks.revalue_cases(max_scenarios=70))
    with using_simd_target(target):
        inv.check_zero_scenario(kernels, case)
    with np.errstate(all="ignore"):
        inv.check_zero_scenario(reference, case)


_ZERO_KW = dict(
    kind=[2],
    settlement=[0],
    risk_unit=[0],
    strike=[1.0],
    expiry=[2.0],
    multiplier=[1.0],
    forward=[1.0],
    discount=[1.0],
    vol=[1.0],
    spot=[1.0],
    price_multiplier=np.ones((1, 1)),
)


@pytest.mark.parametrize("target", TARGETS)
def test_zero_scenario_with_time_shift(target):
    """Minimal case: an ATM call, T = 2 years, sigma = 1, time_shift = [0.]: R must be exactly 0."""
    with using_simd_target(target):
        r, _ = kernels.revalue(**_ZERO_KW, time_shift=np.zeros(1))
    assert r[0, 0] == 0.0, f"R = {r[0, 0]!r}"


@pytest.mark.parametrize("target", TARGETS)
def test_zero_scenario_inverse_option(target):
    """Minimal case: an inverse put, spot 3, F = 2.9, K = 3.5, m = 1: coin P&L must be exactly 0."""
    kw = dict(
        _ZERO_KW,
        kind=[3],
        settlement=[1],
        strike=[3.5],
        expiry=[0.5],
        forward=[2.9],
        discount=[0.8125],
        vol=[0.3],
        spot=[3.0],
    )
    with using_simd_target(target):
        r, _ = kernels.revalue(**kw)
    assert r[0, 0] == 0.0, f"R = {r[0, 0]!r}"


# ---------------------------------------------------------------------------------------------
# net


@st.composite
def net_cases(draw):
    n_units = draw(st.integers(1, 3))
    n = draw(st.integers(1, 10))
    ns = draw(st.integers(1, 140))
    risk = draw(hnp.arrays(np.float64, (n, ns), elements=st.floats(-1e6, 1e6, allow_subnormal=False)))
    units = draw(hnp.arrays(np.int32, (n,), elements=st.integers(0, n_units - 1)))
    pos = draw(mks.positions(n, min_accounts=0, max_accounts=6))
    return risk, units, n_units, pos


@pytest.mark.parametrize("target", TARGETS)
@settings(max_examples=150 * SCALE, deadline=None)
@given(case=net_cases())
def test_net_matches_reference(target, case):
    risk, units, n_units, pos = case
    copies = [np.copy(a) for a in (risk, units, *pos.arrays().values())]
    want = reference.net(risk, units, n_units, **pos.arrays())
    with using_simd_target(target):
        got = kernels.net(risk, units, n_units, **pos.arrays())
        got2 = kernels.net(risk, units, n_units, **pos.arrays(), threads=2)
    assert got.shape == (pos.n_accounts, n_units, risk.shape[1])
    scale = inv.pnl_scale(risk, units, n_units, pos)
    err = np.abs(got - want)
    if got.size:
        _record(f"net / sum|q||R| [{target}]", np.max(err / np.where(scale > 0, scale, 1.0)))
    assert (err <= NET_RTOL * scale).all()
    np.testing.assert_array_equal(got2, got)
    for a, c in zip((risk, units, *pos.arrays().values()), copies):
        np.testing.assert_array_equal(a, c)


# ---------------------------------------------------------------------------------------------
# worst_loss


@st.composite
def worst_loss_cases(draw):
    pnl = draw(mks.pnl_matrices(max_rows=8))
    rows, ns = pnl.shape
    weight = None
    if draw(st.booleans()):
        w_rows = draw(st.integers(1, 4))
        elements = st.one_of(st.floats(0.0, 1.0), st.sampled_from([0.0, 1.0, 0.3]))
        weight = draw(hnp.arrays(np.float64, (w_rows, ns), elements=elements))
    gain = draw(st.one_of(st.sampled_from([0.0, 1.0, 0.5]), st.floats(0.0, 1.0)))
    return pnl, weight, gain


@pytest.mark.parametrize("target", TARGETS)
@settings(max_examples=150 * SCALE, deadline=None)
@given(case=worst_loss_cases())
@example(case=(np.array([[-1.0, -3.0, -3.0, 2.0]]), None, 1.0))  # tie: first index wins
@example(case=(np.array([[5.0, 4.0]]), None, 0.0))  # all gains: loss 0
def test_worst_loss_matches_reference(target, case):
    pnl, weight, gain = case
    copies = [np.copy(pnl), None if weight is None else np.copy(weight)]
    want_loss, want_arg = reference.worst_loss(pnl, weight, gain)
    with using_simd_target(target):
        loss, arg = kernels.worst_loss(pnl, weight, gain)
    np.testing.assert_array_equal(loss, want_loss)  # same arithmetic, same order: exact
    assert (loss >= 0).all()
    assert arg.dtype == np.int32
    haircut = np.where(pnl > 0, gain * pnl, pnl)
    if weight is not None:
        haircut = weight[np.arange(len(pnl)) % len(weight)] * haircut
    mins = haircut.min(axis=1)
    rows = np.arange(len(pnl))
    np.testing.assert_array_equal(haircut[rows, arg], mins)  # the reported scenario attains the min
    unique = (haircut == mins[:, None]).sum(axis=1) == 1
    np.testing.assert_array_equal(arg[unique], want_arg[unique])
    np.testing.assert_array_equal(arg, want_arg)  # ties: both report the first minimum
    np.testing.assert_array_equal(pnl, copies[0])
    if weight is not None:
        np.testing.assert_array_equal(weight, copies[1])


# ---------------------------------------------------------------------------------------------
# value_at_risk

CONFIDENCES = st.one_of(st.sampled_from([0.9, 0.95, 0.975, 0.99, 0.995, 0.5]), st.floats(0.5, 0.999))


@pytest.mark.parametrize("target", TARGETS)
@settings(max_examples=150 * SCALE, deadline=None)
@given(pnl=mks.pnl_matrices(max_scenarios=250), confidence=CONFIDENCES)
@example(pnl=np.arange(100.0)[None, :] - 50.0, confidence=0.9)  # n * level is whole up to rounding
@example(pnl=np.arange(100.0)[None, :] - 50.0, confidence=0.75)  # n * level is whole
@example(pnl=np.arange(100.0)[None, :] - 50.0, confidence=0.99)  # n * level a hair above 1: snapped
def test_value_at_risk_equal_weights(target, pnl, confidence):
    copy = np.copy(pnl)
    want_var, want_es = reference.value_at_risk(pnl, confidence)
    with using_simd_target(target):
        var, es = kernels.value_at_risk(pnl, confidence)
    np.testing.assert_array_equal(var, want_var)
    scale = np.abs(pnl).max(axis=1)
    assert (es >= var - ES_RTOL * scale).all()  # the tail's mean is no better than its best point
    _record(f"ES equal weights / max|P| [{target}]", np.max(np.abs(es - want_es) / np.where(scale > 0, scale, 1)))
    assert (np.abs(es - want_es) <= ES_RTOL * scale).all()
    np.testing.assert_array_equal(pnl, copy)


@st.composite
def weighted_var_cases(draw):
    pnl = draw(mks.pnl_matrices(max_rows=4, max_scenarios=120))
    prob = draw(mks.probabilities(pnl.shape[1]))
    confidence = draw(CONFIDENCES)
    return pnl, prob, confidence


@pytest.mark.parametrize("target", TARGETS)
@settings(max_examples=150 * SCALE, deadline=None)
@given(case=weighted_var_cases())
@example(case=(np.array([[3.0, -1.0, 2.0, -5.0]]), np.array([0.1, 0.2, 0.3, 0.4]), 0.7))
def test_value_at_risk_probability_weights(target, case):
    pnl, prob, confidence = case
    level = 1.0 - confidence
    for row in pnl:  # skip cases on the edge where the cdf equals the level up to rounding
        order = np.argsort(row, kind="stable")
        cdf = np.cumsum(prob[order]) / prob.sum()
        assume(np.min(np.abs(cdf - level)) > 2e-12)
    copies = np.copy(pnl), np.copy(prob)
    want_var, want_es = reference.value_at_risk(pnl, confidence, prob)
    with using_simd_target(target):
        var, es = kernels.value_at_risk(pnl, confidence, prob)
    np.testing.assert_array_equal(var, want_var)
    scale = np.abs(pnl).max(axis=1)
    assert (es >= var - ES_RTOL * scale).all()
    _record(f"ES prob weights / max|P| [{target}]", np.max(np.abs(es - want_es) / np.where(scale > 0, scale, 1)))
    assert (np.abs(es - want_es) <= ES_RTOL * scale).all()
    np.testing.assert_array_equal(pnl, copies[0])
    np.testing.assert_array_equal(prob, copies[1])


@pytest.mark.parametrize("target", TARGETS)
def test_value_at_risk_equal_probabilities_match_unweighted(target):
    """Equal probability weights give the same VaR / ES as no weights (both inverted-CDF), and at
    90% of 1000 scenarios that is the 100th smallest P&L and the mean of the 100 smallest."""
    rng = np.random.default_rng(7)
    pnl = rng.normal(size=(5, 1000)) * 100
    with using_simd_target(target):
        for c in (0.9, 0.95, 0.99, 0.997, 0.5, 0.8):
            v0, e0 = kernels.value_at_risk(pnl, c)
            v1, e1 = kernels.value_at_risk(pnl, c, np.full(1000, 1.0))
            np.testing.assert_array_equal(v1, v0)
            np.testing.assert_allclose(e1, e0, rtol=1e-13)
        v, e = kernels.value_at_risk(pnl, 0.9)
    ordered = np.sort(pnl, axis=1)
    np.testing.assert_array_equal(v, -ordered[:, 99])
    np.testing.assert_allclose(e, -ordered[:, :100].mean(axis=1), rtol=1e-13)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("confidence", [0.999, 0.99, 0.975, 0.9, 0.5])
def test_value_at_risk_weighted_long_rows_with_ties(target, confidence):
    """Rows of 1,000 scenarios with many tied values and EWMA probabilities: the selection over
    SIMD packets (Kernels::tail_indices: chunk minima for a tail quantile, a partition for a deep
    one) gives NumPy's VaR exactly and its ES, on every target."""
    rng = np.random.default_rng(11)
    pnl = np.round(rng.normal(size=(40, 1000)) * 4) * 25.0  # about 30 distinct values per row
    pnl[5] = np.linspace(-10.0, 10.0, 1000)  # rising: each chunk's minimum is its first value
    pnl[6] = pnl[5][::-1].copy()
    prob = 0.99 ** np.arange(1000)[::-1]
    want_var, want_es = reference.value_at_risk(pnl, confidence, prob)
    with using_simd_target(target):
        var, es = kernels.value_at_risk(pnl, confidence, prob)
    np.testing.assert_array_equal(var, want_var)
    np.testing.assert_allclose(es, want_es, rtol=1e-13, atol=1e-13 * np.abs(pnl).max())


# The weighted quantile orders only the lowest values, bracketing the sorted-order total that NumPy
# divides by (cpp/src/reduce.cpp weighted_quantile); where the bracket cannot decide, it sorts every
# value. Both must give NumPy's scenario: probabilities whose total depends on the summing order, at
# a level between the two quotients (tests/tail_cases.py), and equal probabilities over 5,000
# scenarios at levels of k / n (within the bracket's width of a cumulative probability).
@pytest.mark.parametrize("target", TARGETS)
def test_value_at_risk_weighted_where_the_order_of_summing_matters(target):
    n = 35
    pnl = -np.arange(1.0, n + 1.0)[None, :]  # sorts as n - 1, ..., 1, 0
    probability, confidence = order_dependent_case(n)
    want_var, want_es = reference.value_at_risk(pnl, confidence, probability)
    assert want_var[0] == 1.0  # scenario 0; a scenario-order total would give 2.0
    rng = np.random.default_rng(3)
    wide = rng.standard_normal((4, 5000)) * 100
    with using_simd_target(target):
        var, es = kernels.value_at_risk(pnl, confidence, probability)
        np.testing.assert_array_equal(var, want_var)
        np.testing.assert_allclose(es, want_es, rtol=1e-15)
        equal = np.ones(5000)
        for c in (0.99, 0.9, 0.5):
            got = kernels.value_at_risk(wide, c, equal)[0]
            np.testing.assert_array_equal(got, reference.value_at_risk(wide, c, equal)[0])
            np.testing.assert_array_equal(got, kernels.value_at_risk(wide, c)[0])


# 1 - confidence in binary is a rounding error above the intended level for 0.95, 0.975, 0.99,
# 0.995, 0.999 (1 - 0.99 = 0.010000000000000009): n x level is then a hair above a whole number and,
# unless the level is snapped (reference.LEVEL_RTOL), the inverted-CDF index is rounded up one order
# statistic -- VaR 99% over 100 scenarios would be the 2nd worst P&L, over 1000 the 11th worst.
@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("weighted", [False, True], ids=["equal", "probability"])
@pytest.mark.parametrize("n,confidence", [(100, 0.99), (1000, 0.99), (1000, 0.95), (2000, 0.975), (1000, 0.999)])
def test_var_level_rounding(n, confidence, weighted, target):
    pnl = -np.arange(1.0, n + 1.0)[None, ::-1].copy()  # losses n, n-1, ..., 1
    k = round(n * (1 - confidence))  # the inverted-CDF quantile at 1 - c is the k-th worst loss
    want = n - k + 1  # which is n - k + 1 here
    prob = np.ones(n) if weighted else None
    ref_var, ref_es = reference.value_at_risk(pnl, confidence, prob)
    assert ref_var[0] == want
    with using_simd_target(target):
        var, es = kernels.value_at_risk(pnl, confidence, prob)
    assert var[0] == want, f"VaR {var[0]} is the {n - var[0] + 1:.0f}-th worst loss, expected the {k}-th"
    np.testing.assert_allclose(es, ref_es, rtol=1e-14)


# The quantile of a tail (k + 1 <= 64 order statistics) is selected in one pass that keeps the
# smallest values seen; rows whose P&L falls scenario by scenario would make every value enter, so
# past a budget the row goes to std::nth_element. Every order, with ties, either side of k = 64.
@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("order", ["random", "rising", "falling", "ties", "zigzag"])
@pytest.mark.parametrize(("n", "confidence"), [(1000, 0.99), (2500, 0.975), (130, 0.5), (2000, 0.968)])
def test_value_at_risk_selection_in_any_row_order(target, order, n, confidence):
    rng = np.random.default_rng(n)
    values = rng.standard_t(3, n) * 1e4
    rows = {
        "random": values,
        "rising": np.sort(values),
        "falling": np.sort(values)[::-1],
        "ties": np.round(values / 1e4),
        "zigzag": np.where(np.arange(n) % 2 == 0, np.sort(values), np.sort(values)[::-1]),
    }
    pnl = np.ascontiguousarray(np.stack([rows[order], -rows[order]]))
    want_var, want_es = reference.value_at_risk(pnl, confidence)
    with using_simd_target(target):
        var, es = kernels.value_at_risk(pnl, confidence)
    np.testing.assert_array_equal(var, want_var)
    np.testing.assert_allclose(es, want_es, rtol=1e-13)


# Worst loss on rows longer than the kernel's four accumulators span (4 SIMD packets), with the
# minimum first, in the middle, in the last packet and in the scalar tail, as -0.0 against 0.0, and
# repeated (the first one is reported).
@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("n", [1000, 1003, 37])
@pytest.mark.parametrize("where", [0, 1, "middle", "last packet", "tail", "zero", "repeated"])
def test_worst_loss_minimum_anywhere_in_a_long_row(target, n, where):
    rng = np.random.default_rng(n)
    pnl = rng.uniform(-100.0, 100.0, (3, n))
    weight = rng.uniform(0.5, 1.0, (2, n))
    spot = {0: 0, 1: 1, "middle": n // 2, "last packet": n - n % 8 - 3, "tail": n - 1}
    if where == "zero":
        pnl = np.abs(pnl) + 1.0  # gains only: the minimum is the first zero, -0.0 or 0.0
        pnl[:, n // 3] = -0.0
        pnl[:, n // 2] = 0.0
    elif where == "repeated":
        pnl[:, [n // 4, n // 3, n - 1]] = -1e6
        weight[:, [n // 4, n // 3, n - 1]] = 1.0
    else:
        pnl[:, spot[where]] = -1e6
    want_loss, want_arg = reference.worst_loss(pnl, weight, 0.3)
    with using_simd_target(target):
        loss, arg = kernels.worst_loss(pnl, weight, 0.3)
    np.testing.assert_array_equal(loss, want_loss)
    np.testing.assert_array_equal(arg, want_arg)
    assert not np.signbit(loss).any()


# ---------------------------------------------------------------------------------------------
# normal_cdf


@pytest.mark.parametrize("target", TARGETS)
@settings(max_examples=60 * SCALE, deadline=None)
@given(x=hnp.arrays(np.float64, st.integers(0, 200), elements=st.floats(-45, 45, allow_subnormal=False)))
def test_normal_cdf_matches_reference(target, x):
    with using_simd_target(target):
        got = kernels.normal_cdf(x)
    want = reference.normal_cdf(x)
    assert got.shape == x.shape
    err = np.abs(got - want)
    if x.size:
        _record(f"normal_cdf abs vs ndtr [{target}]", err.max())
    assert (err <= CDF_ATOL).all()
    assert ((got >= 0) & (got <= 1)).all()


@pytest.mark.parametrize("target", TARGETS)
def test_normal_cdf_shapes_and_specials(target):
    x = np.array([[-np.inf, -40.0, 0.0], [np.inf, -37.5, 40.0]])
    with using_simd_target(target):
        got = kernels.normal_cdf(x)
        nan = kernels.normal_cdf(np.array([np.nan, 1.0]))
    assert got.shape == (2, 3)
    np.testing.assert_array_equal(got, [[0.0, 0.0, 0.5], [1.0, 0.0, 1.0]])
    assert np.isnan(nan[0]) and abs(nan[1] - reference.normal_cdf(1.0)) <= CDF_ATOL


@pytest.mark.parametrize("target", TARGETS)
def test_normal_cdf_nan_propagates_next_to_tail_values(target):
    """N(NaN) is NaN whatever else is in its 64-value block (a tail-branch select once mapped it to 0)."""
    with using_simd_target(target):
        got = kernels.normal_cdf(np.array([np.nan, 40.0, -8.0, np.nan, 0.0]))
    assert np.isnan(got[[0, 3]]).all(), f"N(nan) = {got[[0, 3]]!r}"
    assert got[1] == 1.0 and got[4] == 0.5


@pytest.mark.parametrize("target", TARGETS)
def test_targets_restore(target):
    before = kernels.simd_target()
    with using_simd_target(target):
        assert kernels.simd_target() == target
    assert kernels.simd_target() == before == INITIAL_TARGET  # every test above restored it
