"""Margin invariants (marginkernel.testing.invariants) on the C++ kernels -- every SIMD target -- and
on the NumPy reference.

Exact where the arithmetic allows it (reordering instruments, accounts or scenarios; scaling by a
power of two; an empty book; a wider scenario grid), otherwise within the stated rounding bound:
1e-12 x sum |q||R| for netting order, 1e-13 x the price scale for pricing identities.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from marginkernel import kernels, reference
from marginkernel.testing import invariants as inv
from marginkernel.testing import simd_targets, using_simd_target
from marginkernel.testing import strategies as mks

TARGETS = simd_targets()
SCALE = int(os.environ.get("MK_HYPOTHESIS_SCALE", "1"))
#: kernels on each target, then the reference
IMPLS = [pytest.param(t, id=t) for t in TARGETS] + [pytest.param("reference", id="reference")]


class Impl:
    """The kernels on one SIMD target (or the reference) as a kernels-like object."""

    def __init__(self, name: str):
        self.name = name
        self.module = reference if name == "reference" else kernels

    def __enter__(self):
        if self.name != "reference":
            self._ctx = using_simd_target(self.name)
            self._ctx.__enter__()
        self._err = np.errstate(all="ignore")
        self._err.__enter__()
        return self.module

    def __exit__(self, *exc):
        self._err.__exit__(*exc)
        if self.name != "reference":
            self._ctx.__exit__(*exc)


def small_cases(**kw):
    kw.setdefault("max_scenarios", 70)
    kw.setdefault("max_instruments", 6)
    return mks.revalue_cases(**kw)


@st.composite
def books(draw, **kw):
    """(case, positions) with positions over the case's instruments."""
    case = draw(small_cases(**kw))
    pos = draw(mks.positions(len(case.instruments), max_accounts=4, max_per_account=6))
    return case, pos


# ---------------------------------------------------------------------------------------------
# permutation invariance


@pytest.mark.parametrize("impl", IMPLS)
@settings(max_examples=40 * SCALE, deadline=None)
@given(book=books(), data=st.data())
def test_instrument_order(impl, book, data):
    case, pos = book
    perm = data.draw(st.permutations(range(len(case.instruments))))
    with Impl(impl) as k:
        inv.check_instrument_permutation(k, case, pos, perm)


@pytest.mark.parametrize("impl", IMPLS)
@settings(max_examples=40 * SCALE, deadline=None)
@given(book=books(), seed=st.integers(0, 2**32 - 1))
def test_position_order(impl, book, seed):
    case, pos = book
    with Impl(impl) as k:
        risk, _ = inv.risk_arrays(k, case)
        inv.check_position_permutation(k, risk, case.instruments.risk_unit, case.market.n_units, pos, seed)


@pytest.mark.parametrize("impl", IMPLS)
@settings(max_examples=30 * SCALE, deadline=None)
@given(case=small_cases(max_scenarios=130), data=st.data())
def test_scenario_order(impl, case, data):
    perm = data.draw(st.permutations(range(case.scenarios.n_scenarios)))
    with Impl(impl) as k:
        inv.check_scenario_permutation(k, case, perm)


# ---------------------------------------------------------------------------------------------
# margin algebra

# lambda >= 1e-6: no underflow into subnormals, where scaling by a power of two is not exact
LAMBDAS = st.one_of(st.sampled_from([0.0, 0.25, 1.0, 2.0, 1024.0]), st.floats(1e-6, 1e3))


@pytest.mark.parametrize("impl", IMPLS)
@settings(max_examples=40 * SCALE, deadline=None)
@given(book=books(), lam=LAMBDAS, gain=st.sampled_from([1.0, 0.0, 0.5]))
def test_homogeneity(impl, book, lam, gain):
    """margin(lam * book) = lam * margin(book), lam >= 0 (exact for powers of two)."""
    case, pos = book
    with Impl(impl) as k:
        risk, _ = inv.risk_arrays(k, case)
        inv.check_homogeneity(k, risk, case.instruments.risk_unit, case.market.n_units, pos, lam, gain)


@st.composite
def two_books(draw):
    case = draw(small_cases())
    n = len(case.instruments)
    a = draw(mks.positions(n, min_accounts=1, max_accounts=1, max_per_account=6))
    b = draw(mks.positions(n, min_accounts=1, max_accounts=1, max_per_account=6))
    weight = None
    if draw(st.booleans()):
        ns = case.scenarios.n_scenarios
        weight = np.array([[draw(st.floats(0.0, 1.0)) for _ in range(ns)] for _ in range(case.market.n_units)])
    gain = draw(st.one_of(st.sampled_from([0.0, 1.0]), st.floats(0.0, 1.0)))
    return case, a, b, weight, gain


@pytest.mark.parametrize("impl", IMPLS)
@settings(max_examples=60 * SCALE, deadline=None)
@given(books=two_books())
def test_subadditivity(impl, books):
    """Worst-loss margin(A + B) <= margin(A) + margin(B), any weights >= 0, gain factor in [0, 1]."""
    case, a, b, weight, gain = books
    with Impl(impl) as k:
        risk, _ = inv.risk_arrays(k, case)
        inv.check_subadditivity(k, risk, case.instruments.risk_unit, case.market.n_units, a, b, weight, gain)


def test_subadditivity_is_not_vacuous():
    """A long and a short future: each alone has margin, together none."""
    risk = np.array([[-10.0, 0.0, 10.0]])
    units = np.array([0], np.int32)
    a = mks.Positions(np.array([0, 1], np.int64), np.array([0], np.int32), np.array([1.0]))
    b = mks.Positions(np.array([0, 1], np.int64), np.array([0], np.int32), np.array([-1.0]))
    both = inv.concat_accounts(a, b)
    merged = mks.Positions(np.array([0, 2], np.int64), both.instrument, both.quantity)
    margin = lambda p: inv.worst_loss_margin(kernels, inv.book_pnl(kernels, risk, units, 1, p))  # noqa: E731
    assert margin(a)[0] == 10.0 and margin(b)[0] == 10.0 and margin(merged)[0] == 0.0
    inv.check_subadditivity(kernels, risk, units, 1, a, a)  # 20 <= 10 + 10
    with pytest.raises(AssertionError):  # and the check does fail for a superadditive "margin"
        inv.check_subadditivity(_Superadditive(), risk, units, 1, a, a)  # 400 > 100 + 100


class _Superadditive:
    """A deliberately wrong kernels-like object: margin = square of the loss."""

    revalue = staticmethod(kernels.revalue)
    net = staticmethod(kernels.net)
    value_at_risk = staticmethod(kernels.value_at_risk)

    @staticmethod
    def worst_loss(pnl, weight=None, gain_factor=1.0):
        loss, arg = kernels.worst_loss(pnl, weight, gain_factor)
        return loss**2, arg


@pytest.mark.parametrize("impl", IMPLS)
@settings(max_examples=20 * SCALE, deadline=None)
@given(case=small_cases(), n_accounts=st.integers(0, 4))
def test_empty_book(impl, case, n_accounts):
    with Impl(impl) as k:
        risk, _ = inv.risk_arrays(k, case)
        inv.check_empty_book(k, risk, case.instruments.risk_unit, case.market.n_units, n_accounts)


@pytest.mark.parametrize("impl", IMPLS)
@settings(max_examples=40 * SCALE, deadline=None)
@given(book=books(), data=st.data())
def test_offsetting_position(impl, book, data):
    case, pos = book
    i = data.draw(st.integers(0, len(case.instruments) - 1))
    q = data.draw(mks.quantities(allow_zero=False))
    with Impl(impl) as k:
        risk, _ = inv.risk_arrays(k, case)
        inv.check_offsetting_position(k, risk, case.instruments.risk_unit, case.market.n_units, pos, i, q)


@pytest.mark.parametrize("target", TARGETS)
def test_flat_account_has_zero_pnl(target):
    """One account, +q then -q of one instrument: P&L exactly 0, margin 0, on every target (a fused
    multiply-add would leave fl(qR) - qR: net() must round each product before adding it)."""
    risk = np.array([[0.1, -0.7, 3.0]])
    units = np.array([0], np.int32)
    q = 0.1234567
    with using_simd_target(target):
        pnl = kernels.net(risk, units, 1, np.array([0, 2]), np.array([0, 0], np.int32), np.array([q, -q]))
        loss, _ = kernels.worst_loss(pnl[:, 0, :])
    assert (pnl == 0.0).all(), f"flat account P&L {pnl.ravel()!r}"
    assert loss[0] == 0.0


# ---------------------------------------------------------------------------------------------
# pricing identities


@pytest.mark.parametrize("impl", IMPLS)
@settings(max_examples=40 * SCALE, deadline=None)
@given(case=small_cases(kinds=(2, 3)), q=mks.log_uniform(-3, 4))
def test_long_option_loses_at_most_its_premium(impl, case, q):
    with Impl(impl) as k:
        inv.check_long_option_loss_within_premium(k, case, q)


def test_long_option_premium_bound_is_attained():
    """Non-vacuous: a call whose underlying falls to 20% loses (almost) all its premium."""
    case = mks.RevalueCase(
        mks.Market(np.array([100.0])),
        mks.Instruments(
            np.array([2], np.int8),
            np.array([0], np.int8),
            np.array([0], np.int32),
            np.array([100.0]),
            np.array([0.1]),
            np.array([1.0]),
            np.array([100.0]),
            np.array([1.0]),
            np.array([0.5]),
        ),
        mks.Scenarios(np.array([[0.2, 1.0, 1.5]]), None, np.array([0.0, 0.0, 0.1])),
    )
    risk, now = kernels.revalue(**case.kwargs())
    loss, worst = kernels.worst_loss(risk)
    assert worst[0] == 0 and 0.999999 * now[0] < loss[0] <= now[0]
    inv.check_long_option_loss_within_premium(kernels, case)


@pytest.mark.parametrize("impl", IMPLS)
@settings(max_examples=40 * SCALE, deadline=None)
@given(case=small_cases(kinds=(2, 3)))
def test_put_call_parity(impl, case):
    """Long call - long put = discount x (F_s - K) x multiplier in every scenario (linear)."""
    with Impl(impl) as k:
        inv.check_put_call_parity(k, case)


@pytest.mark.parametrize("impl", IMPLS)
@settings(max_examples=40 * SCALE, deadline=None)
@given(case=small_cases(kinds=(0, 1, 2, 3, 4)))
def test_inverse_linear_identity(impl, case):
    """architecture §3: inverse option = V(F_s)/S_s - V(F)/S; inverse future = N (1/F - 1/F_s)."""
    with Impl(impl) as k:
        inv.check_inverse_linear_identity(k, case)


def test_inverse_identity_numbers():
    """The identity on numbers worked by hand: BTC inverse future of 10 USD notional, F = 50,000,
    F_s = 40,000: coin P&L = 10 (1/50000 - 1/40000) = -5e-5 BTC."""
    kw = dict(
        kind=[0],
        settlement=[1],
        risk_unit=[0],
        strike=[1.0],
        expiry=[0.1],
        multiplier=[10.0],
        forward=[50000.0],
        discount=[1.0],
        vol=[0.5],
        spot=[50000.0],
        price_multiplier=[[0.8, 1.0, 1.25]],
    )
    r, v = kernels.revalue(**kw)
    np.testing.assert_allclose(r[0], [-5e-5, 0.0, 4e-5], rtol=1e-15, atol=0)
    assert v[0] == 0.0


# ---------------------------------------------------------------------------------------------
# wider grid


@st.composite
def nested_grids(draw):
    """(case, positions, wide grid, indices of the narrow grid inside it): the narrow grid is a
    regular price grid +-r x vol states, the wide one adds moves beyond +-r, shuffled in."""
    case = draw(small_cases(max_scenarios=2))
    units = case.market.n_units
    r = draw(st.floats(0.01, 0.5))
    n_points = draw(st.integers(2, 9))
    states = draw(st.lists(st.floats(-0.5, 0.5), min_size=1, max_size=3))
    narrow = mks.regular_grid(r, n_points, states, units)
    extra_m = draw(st.lists(st.floats(0.2, 1.0 - r) | st.floats(1.0 + r, 5.0), min_size=1, max_size=20))
    extra_v = draw(st.lists(st.floats(-0.5, 0.5), min_size=len(extra_m), max_size=len(extra_m)))
    m = np.concatenate([narrow.price_multiplier, np.tile(extra_m, (units, 1))], axis=1)
    v = np.concatenate([narrow.vol_shift, np.tile(extra_v, (units, 1))], axis=1)
    ns = m.shape[1]
    dt = np.full(ns, draw(st.sampled_from([0.0, 1.0 / 365]))) if draw(st.booleans()) else None
    perm = np.asarray(draw(st.permutations(range(ns))))
    wide = mks.Scenarios(m[:, perm].copy(), v[:, perm].copy(), None if dt is None else dt[perm].copy())
    narrow_cols = np.flatnonzero(perm < narrow.price_multiplier.shape[1])
    shock = draw(mks.vol_shock_params())
    pos = draw(mks.positions(len(case.instruments), max_accounts=4))
    return mks.RevalueCase(case.market, case.instruments, wide, shock), pos, wide, narrow_cols


@pytest.mark.parametrize("impl", IMPLS)
@settings(max_examples=40 * SCALE, deadline=None)
@given(grids=nested_grids())
def test_wider_price_range_never_lowers_margin(impl, grids):
    case, pos, wide, narrow_cols = grids
    with Impl(impl) as k:
        inv.check_wider_range_monotone(k, case, pos, wide, narrow_cols)


def test_wider_range_raises_margin_of_a_short_straddle():
    """Non-vacuous: a short straddle's margin grows strictly with the price range."""
    ins = mks.Instruments(
        np.array([2, 3], np.int8),
        np.array([0, 0], np.int8),
        np.array([0, 0], np.int32),
        np.array([100.0, 100.0]),
        np.array([0.25, 0.25]),
        np.array([1.0, 1.0]),
        np.array([100.0, 100.0]),
        np.array([0.99, 0.99]),
        np.array([0.4, 0.4]),
    )
    pos = mks.Positions(np.array([0, 2], np.int64), np.array([0, 1], np.int32), np.array([-1.0, -1.0]))
    margins = []
    for r in (0.05, 0.1, 0.2):
        case = mks.RevalueCase(mks.Market(np.array([100.0])), ins, mks.regular_grid(r, 7))
        risk, _ = kernels.revalue(**case.kwargs())
        margins.append(inv.worst_loss_margin(kernels, inv.book_pnl(kernels, risk, ins.risk_unit, 1, pos))[0])
    assert margins[0] < margins[1] < margins[2]
