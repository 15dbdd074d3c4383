"""Account state and pre-trade what-if (marginkernel.account), against a from-scratch recomputation.

The oracle is the pure-NumPy reference: ``reference.net`` of the account's positions, then
``reference.worst_loss`` per risk unit, IM = sum_u fx[u] * loss_u, MM = mm_factor * IM. The book's
figures are incremental (fills, market updates) and pre-weighted, so they may differ from the oracle
by rounding only: every comparison is to ``RTOL = 1e-12`` of the rounding scale
``sum_u fx[u] * max_s w[u, s] * max(1, gain) * G[u, s]``, where G sums |q| |R[i, s]| over every
term the book ever added to that P (each fill, and old and new rows of each market update): an
incremental sum is exact to a few eps of the terms it added, not of its result (+1000 then -999.999
leaves 0.001 carrying the rounding of 1000). Figures computed by the same arithmetic (a what-if and
the fill it predicts) are compared exactly.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from marginkernel import kernels, reference
from marginkernel.account import AccountBook, Check, InputError, Margin, UnitMargin, UnknownIdError, WhatIf

RTOL = 1e-12
TINY = 1e-290  # absolute slack for gradual underflow (products of tiny values round absolutely)
SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)


@pytest.fixture(params=kernels.available_simd_targets())
def simd(request):
    """Runs the test once per SIMD target this build and CPU support (set once for all examples)."""
    before = kernels.simd_target()
    kernels.select_simd_target(request.param)
    yield request.param
    kernels.select_simd_target(before)


# --- the oracle ---------------------------------------------------------------------------------


class Spec:
    """A book's inputs, kept in NumPy so that the oracle can recompute everything from scratch."""

    def __init__(self, risk, unit, n_units, weight, fx, gain, mm, n_accounts):
        self.risk = np.array(risk, dtype=float)
        self.unit = np.array(unit, dtype=np.int32)
        self.n_units = n_units
        self.weight = np.array(weight, dtype=float)
        self.fx = np.array(fx, dtype=float)
        self.gain = gain
        self.mm = mm
        self.n_accounts = n_accounts
        self.positions = [dict() for _ in range(n_accounts)]
        self.gross = [np.zeros((n_units, self.risk.shape[1])) for _ in range(n_accounts)]

    def book(self, **kw):
        return AccountBook(
            self.risk,
            self.unit,
            self.n_units,
            n_accounts=self.n_accounts,
            weight=self.weight,
            fx=self.fx,
            gain_factor=self.gain,
            mm_factor=self.mm,
            **kw,
        )

    def fill(self, account, instrument, quantity, positions=None, gross=None):
        pos = self.positions[account] if positions is None else positions
        q = pos.get(instrument, 0.0) + quantity
        if q == 0.0:
            pos.pop(instrument, None)
        else:
            pos[instrument] = q
        g = self.gross[account] if gross is None else gross
        g[self.unit[instrument]] += abs(quantity) * np.abs(self.risk[instrument])

    def update(self, unit, rows, fx):
        """A market update of one unit, as the oracle sees it."""
        ids = np.flatnonzero(self.unit == unit)
        for pos, g in zip(self.positions, self.gross):
            for i, k in zip(ids, range(len(ids))):
                if i in pos:
                    g[unit] += abs(pos[i]) * (np.abs(self.risk[i]) + np.abs(rows[k]))
        self.risk[ids] = rows
        if fx is not None:
            self.fx[unit] = fx

    def scratch(self, positions, gross):
        """(pnl (U, S), im, mm, loss (U,), haircut weighted P (U, S), rounding scale) from scratch."""
        ins = np.array(sorted(positions), dtype=np.int32)
        qty = np.array([positions[i] for i in ins], dtype=float)
        pnl = reference.net(self.risk, self.unit, self.n_units, [0, len(ins)], ins, qty)[0]
        loss, _ = reference.worst_loss(pnl, self.weight, self.gain)
        cut = self.weight * np.where(pnl > 0, self.gain * pnl, pnl)
        im = float((self.fx * loss).sum())
        scale = float((self.fx * (self.weight * gross).max(axis=1)).sum()) * max(1.0, self.gain)
        return pnl, im, self.mm * im, loss, cut, scale


def close(a, b, scale):
    return abs(a - b) <= RTOL * scale + TINY


def within(actual, desired, bound):
    bad = ~(np.abs(actual - desired) <= bound + TINY)
    assert not bad.any(), (actual[bad], desired[bad], bound[bad])


def assert_matches_scratch(spec, book, account):
    pnl, im, mm, loss, cut, scale = spec.scratch(spec.positions[account], spec.gross[account])
    tol = RTOL * scale + TINY
    got = book.margin(account)
    assert abs(got.im - im) <= tol, (got.im, im, scale)
    assert abs(got.mm - mm) <= tol * max(1.0, spec.mm)
    # Scenario by scenario, to RTOL of that scenario's own rounding scale (0 where w = 0: exact).
    gross = spec.gross[account]
    within(book.pnl(account), pnl, RTOL * gross)
    within(book.weighted_pnl(account), spec.weight * pnl, RTOL * spec.weight * gross)  # the cache
    for u in range(spec.n_units):
        um = book.unit_margin(account, u)
        assert abs(um.loss - loss[u]) <= tol / spec.fx[u]
        # The reported scenario attains the minimum (up to rounding: near-ties may pick another).
        assert abs(cut[u, um.worst_scenario] - cut[u].min()) <= 2 * tol / spec.fx[u]
    assert book.positions(account) == spec.positions[account]


# --- strategies ---------------------------------------------------------------------------------

finite = dict(allow_nan=False, allow_infinity=False, allow_subnormal=False)
quantities = st.one_of(st.integers(-50, 50).map(float), st.floats(-1e3, 1e3, **finite))


@st.composite
def specs(draw):
    n_units = draw(st.integers(1, 3))
    ns = draw(st.one_of(st.integers(1, 20), st.sampled_from([27, 31, 32, 33, 35, 63, 64, 65, 100, 129])))
    n_instruments = draw(st.integers(1, 7))
    unit = draw(arrays(np.int32, n_instruments, elements=st.integers(0, n_units - 1)))
    # A coarse grid of values makes exact ties (first-scenario rules) common; floats cover the rest.
    values = st.one_of(st.integers(-5, 5).map(float), st.floats(-1e4, 1e4, **finite))
    risk = draw(arrays(np.float64, (n_instruments, ns), elements=values))
    weight = draw(arrays(np.float64, (n_units, ns), elements=st.sampled_from([0.0, 0.5, 1.0]) | st.floats(1e-6, 2)))
    fx = draw(arrays(np.float64, n_units, elements=st.sampled_from([1.0, 65000.0]) | st.floats(0.01, 1e5)))
    gain = draw(st.sampled_from([0.0, 1.0]) | st.floats(0, 1))
    mm = draw(st.sampled_from([1.0, 0.8]) | st.floats(0, 2))
    spec = Spec(risk, unit, n_units, weight, fx, gain, mm, draw(st.integers(1, 3)))
    order = st.tuples(st.integers(0, spec.n_accounts - 1), st.integers(0, n_instruments - 1), quantities)
    fills = draw(st.lists(order, max_size=12))
    return spec, fills, order


# --- properties ---------------------------------------------------------------------------------


@SETTINGS
@given(data=st.data(), case=specs())
def test_what_if_equals_full_recomputation(simd, data, case):
    spec, fills, order = case
    book = spec.book()
    for a, i, q in fills:
        book.add_fill(a, i, q)
        spec.fill(a, i, q)
    for a in range(spec.n_accounts):
        assert_matches_scratch(spec, book, a)

    for a, i, q in data.draw(st.lists(order, min_size=1, max_size=4)):
        before = (book.margin(a), book.weighted_pnl(a), book.positions(a))
        w = book.what_if(a, i, q)
        # The book is unchanged.
        after = (book.margin(a), book.weighted_pnl(a), book.positions(a))
        assert tuple(before[0]) == tuple(after[0]) and before[2] == after[2]
        np.testing.assert_array_equal(before[1], after[1])
        # ... and the what-if equals the account recomputed from scratch with the order.
        hypothetical, gross = dict(spec.positions[a]), spec.gross[a].copy()
        spec.fill(a, i, q, hypothetical, gross)
        _, im, mm, loss, cut, scale = spec.scratch(hypothetical, gross)
        u = int(spec.unit[i])
        assert w.unit == u
        assert w.im_before == before[0].im
        assert close(w.im, im, scale), (w.im, im, scale)
        tol = RTOL * scale + TINY
        assert abs(w.mm - mm) <= tol * max(1.0, spec.mm)
        assert abs(w.unit_loss - loss[u]) <= tol / spec.fx[u]
        assert abs(cut[u, w.worst_scenario] - cut[u].min()) <= 2 * tol / spec.fx[u]
        assert w.im >= 0.0 and w.unit_loss >= 0.0


@SETTINGS
@given(case=specs())
def test_what_if_predicts_the_fill_exactly(case):
    """The what-if and the fill round p + q * r identically: the unit's loss is the same bits."""
    spec, fills, _ = case
    book = spec.book()
    for a, i, q in fills:
        w = book.what_if(a, i, q)
        book.add_fill(a, i, q)
        um = book.unit_margin(a, w.unit)
        assert um.loss == w.unit_loss and um.worst_scenario == w.worst_scenario
        # IM re-summed over units after the fill vs im_before - old + new in the what-if.
        assert close(book.margin(a).im, w.im, w.im_before + w.im)


@SETTINGS
@given(data=st.data(), case=specs())
def test_incremental_refresh_equals_full_recomputation(simd, data, case):
    spec, fills, _ = case
    book = spec.book()
    for a, i, q in fills:
        book.add_fill(a, i, q)
        spec.fill(a, i, q)
    values = st.floats(-1e4, 1e4, **finite)
    for _ in range(data.draw(st.integers(1, 3))):
        u = data.draw(st.integers(0, spec.n_units - 1))
        ids = book.instruments_of(u)
        np.testing.assert_array_equal(ids, np.flatnonzero(spec.unit == u))
        rows = data.draw(arrays(np.float64, (len(ids), spec.risk.shape[1]), elements=values))
        fx = data.draw(st.none() | st.floats(0.01, 1e5))
        others = [
            [tuple(book.unit_margin(a, v)) for v in range(spec.n_units) if v != u] for a in range(spec.n_accounts)
        ]
        book.update_unit(u, rows, fx, threads=data.draw(st.sampled_from([1, 2])))
        spec.update(u, rows, fx)
        for a in range(spec.n_accounts):
            assert_matches_scratch(spec, book, a)
            # Units that did not move are not touched at all.
            assert [tuple(book.unit_margin(a, v)) for v in range(spec.n_units) if v != u] == others[a]
        for i in ids:
            np.testing.assert_array_equal(book.risk_row(int(i)), spec.risk[i])
    # rebuild() recomputes from the positions: same figures.
    book.rebuild()
    for a in range(spec.n_accounts):
        assert_matches_scratch(spec, book, a)


# --- examples -----------------------------------------------------------------------------------


def small_book(**kw):
    risk = np.array(
        [
            [-10.0, -5.0, 0.0, 5.0, 10.0],  # future on unit 0
            [2.0, 1.0, 0.5, 3.0, 8.0],  # option on unit 0
            [-1.0, 0.0, 1.0, 2.0, -3.0],  # unit 1
        ]
    )
    unit = np.array([0, 0, 1])
    weight = np.array([[1.0, 1.0, 1.0, 1.0, 0.5], [1.0, 1.0, 1.0, 1.0, 1.0]])
    opts = dict(n_accounts=2, weight=weight, fx=[1.0, 100.0], gain_factor=0.5, mm_factor=0.8)
    opts.update(kw)
    return AccountBook(risk, unit, **opts)


def test_worked_example():
    book = small_book()
    book.add_fill(0, 0, 2.0)  # P_0 = [-20, -10, 0, 10, 20] -> loss 20 at scenario 0
    m = book.margin(0)
    assert isinstance(m, Margin) and m.im == 20.0 and m.mm == pytest.approx(16.0, rel=1e-15)
    w = book.what_if(0, 1, 4.0)  # P_0 + 4 * [2, 1, .5, 3, 8] = [-12, -6, 2, 22, 52]
    assert isinstance(w, WhatIf) and w._fields == ("im", "mm", "im_before", "unit_loss", "unit", "worst_scenario")
    assert (w.im, w.im_before, w.unit_loss, w.unit, w.worst_scenario) == (12.0, 20.0, 12.0, 0, 0)
    assert w.mm == pytest.approx(9.6, rel=1e-15)
    w = book.what_if(0, 2, -1.0)  # unit 1: [1, 0, -1, -2, 3] -> loss 2 * fx 100
    assert (w.im, w.unit_loss, w.unit, w.worst_scenario) == (220.0, 2.0, 1, 3)
    # Gains are halved and the last scenario has weight 0.5:
    book.add_fill(0, 0, -3.0)  # P_0 = [10, 5, 0, -5, -10] -> w*h = [5, 2.5, 0, -5, -5]: first is 3
    um = book.unit_margin(0, 0)
    assert isinstance(um, UnitMargin) and (um.loss, um.worst_scenario) == (5.0, 3)
    assert book.positions(0) == {0: -1.0}
    assert book.position(0, 0) == -1.0 and book.position(0, 1) == 0.0
    # Records behave like tuples.
    assert tuple(book.margin(0)) == (5.0, 4.0) and len(w) == 6 and w[4] == 1
    im, mm, *_ = w
    assert (im, mm) == (w.im, w.mm)
    assert repr(um) == "UnitMargin(loss=5.0, im=5.0, worst_scenario=3)"
    assert um._asdict() == {"loss": 5.0, "im": 5.0, "worst_scenario": 3}


def test_check():
    book = small_book()
    book.add_fill(0, 0, 2.0)  # IM 20
    c = book.check(0, 0, 1.0, 30.0)  # IM 30 after
    assert isinstance(c, Check) and c.accepted and c.excess == 0.0 and c.im == 30.0 and c.im_before == 20.0
    c = book.check(0, 0, 1.0, 29.999)
    assert not c.accepted and c.excess == pytest.approx(-0.001, abs=1e-12)
    # Risk-reducing orders pass even when equity is short, unless the rule says otherwise.
    assert book.check(0, 0, -1.0, 0.0).accepted
    assert book.check(account=0, instrument=0, quantity=-1.0, equity=0.0).im == 10.0
    strict = small_book(allow_risk_reducing=False)
    strict.add_fill(0, 0, 2.0)
    assert not strict.check(0, 0, -1.0, 0.0).accepted
    assert strict.check(0, 0, -1.0, 10.0).accepted


def test_bad_input_raises_and_changes_nothing():
    book = small_book(expiry=[1.0, 0.0, np.inf])
    book.add_fill(0, 0, 2.0)
    book.add_fill(1, 2, -1.0)

    def state():
        return [(tuple(book.margin(a)), book.positions(a), book.weighted_pnl(a).tobytes()) for a in range(2)]

    before = state()
    for call in (
        lambda: book.what_if(2, 0, 1.0),
        lambda: book.what_if(-1, 0, 1.0),
        lambda: book.add_fill(5, 0, 1.0),
        lambda: book.check(9, 0, 1.0, 1e9),
        lambda: book.margin(2),
        lambda: book.what_if(0, 3, 1.0),
        lambda: book.what_if(0, -1, 1.0),
        lambda: book.what_if(0, 2**40, 1.0),
        lambda: book.add_fill(0, 7, 1.0),
        lambda: book.unit_margin(0, 2),
        lambda: book.update_unit(2, np.zeros((0, 5))),
    ):
        with pytest.raises(KeyError) as info:
            call()
        assert isinstance(info.value, ValueError) and isinstance(info.value, UnknownIdError)
        assert info.value.field in ("account", "instrument", "unit")
        assert "unknown" in str(info.value) and not str(info.value).startswith("'")
    with pytest.raises(KeyError, match=r"account\[2\]: unknown account id \(the book has 2, ids 0..1\)"):
        book.what_if(2, 0, 1.0)
    for q in (np.nan, np.inf, -np.inf):
        with pytest.raises(InputError, match="quantity: must be finite"):
            book.what_if(0, 0, q)
        with pytest.raises(ValueError, match="quantity"):
            book.add_fill(0, 0, q)
    with pytest.raises(ValueError, match=r"instrument\[1\]: has expired"):
        book.what_if(0, 1, 1.0)
    with pytest.raises(ValueError, match="expired"):
        book.add_fill(0, 1, 1.0)
    with pytest.raises(ValueError, match="expired"):
        book.check(0, 1, 1.0, 1e9)
    with pytest.raises(ValueError, match="too large"):
        book.add_fill(0, 0, 1e300)
    with pytest.raises(ValueError, match="equity"):
        book.check(0, 0, 1.0, np.nan)
    with pytest.raises(TypeError):
        book.what_if(0, 1.5, 1.0)
    with pytest.raises(TypeError):
        book.what_if("0", 1, 1.0)
    with pytest.raises(TypeError):
        book.what_if(0, 1)
    with pytest.raises(TypeError):
        book.what_if(0, 1, 1.0, account=0)
    # Bulk fills: nothing applied if one is bad.
    with pytest.raises(ValueError, match=r"fills\[2\]"):
        book.add_fills([0, 1, 0], [0, 2, 0], [1.0, 1.0, np.nan])
    with pytest.raises(KeyError):
        book.add_fills([0, 3], [0, 0], [1.0, 1.0])
    # Bad market updates.
    with pytest.raises(ValueError, match="rows"):
        book.update_unit(0, np.zeros((1, 5)))
    with pytest.raises(ValueError, match="not finite"):
        book.update_unit(0, np.full((2, 5), np.nan))
    with pytest.raises(ValueError, match="fx"):
        book.update_unit(0, np.zeros((2, 5)), fx=-1.0)
    with pytest.raises(ValueError, match="shape"):
        book.update_unit(0, np.zeros((2, 4)))
    with pytest.raises(ValueError, match="fx"):
        book.set_fx(0, 0.0)
    with pytest.raises(ValueError, match="NaN"):
        book.set_expiry(0, np.nan)
    assert state() == before
    # Bad construction.
    with pytest.raises(ValueError, match="risk"):
        AccountBook([[1.0, np.nan]], [0])
    with pytest.raises(ValueError, match="risk_unit"):
        AccountBook([[1.0, 2.0]], [3], n_units=2)
    with pytest.raises(ValueError, match="weight"):
        AccountBook([[1.0, 2.0]], [0], weight=[[1.0, -1.0]])
    with pytest.raises(ValueError, match="gain_factor"):
        AccountBook([[1.0, 2.0]], [0], gain_factor=-0.5)
    with pytest.raises(ValueError, match="shape"):
        AccountBook([[1.0, 2.0]], [0], fx=[1.0, 2.0])


def test_expiry_settle_accounts_and_fx():
    book = small_book()
    assert book.expiry(1) == np.inf
    book.add_fill(0, 1, 2.0)
    book.add_fill(0, 0, -1.0)
    book.add_fill(1, 1, -1.0)
    book.set_expiry(1, 0.0)
    with pytest.raises(ValueError, match="expired"):
        book.what_if(0, 1, 1.0)
    book.settle(1)
    assert book.positions(0) == {0: -1.0} and book.positions(1) == {}
    assert book.margin(1).im == 0.0 and not book.weighted_pnl(1).any()
    assert book.margin(0).im == 5.0  # -R_0 = [10, 5, 0, -5, -10] -> w * h -> loss 5
    first = book.add_accounts(3)
    assert first == 2 and book.n_accounts == 5 and book.margin(4).im == 0.0
    book.add_fill(4, 2, 1.0)  # unit 1: loss 3 * fx 100
    assert book.margin(4).im == 300.0
    book.set_fx(1, 2.0)
    assert book.margin(4).im == 6.0 and book.unit_margin(4, 1).im == 6.0
    assert (book.n_instruments, book.n_units, book.n_scenarios) == (3, 2, 5)
    assert (book.gain_factor, book.mm_factor, book.allow_risk_reducing) == (0.5, 0.8, True)


def revalue_inputs():
    instruments = dict(
        kind=np.array([0, 2, 3, 0, 2, 1], dtype=np.int8),
        settlement=np.array([0, 0, 0, 1, 1, 1], dtype=np.int8),
        risk_unit=np.array([0, 0, 0, 1, 1, 1], dtype=np.int32),
        strike=np.array([0, 100, 95, 0, 2000, 0.0]),
        expiry=np.array([0.5, 0.25, 0.25, 0.5, 0.1, 0.0]),
        multiplier=np.array([1, 1, 1, 10, 1, 10.0]),
        forward=np.array([100, 100, 100, 2000, 2000, 2000.0]),
        discount=np.array([1, 0.99, 0.99, 1, 1, 1.0]),
        vol=np.array([0, 0.6, 0.7, 0, 0.8, 0.0]),
    )
    m = np.linspace(0.8, 1.2, 19)
    scenarios = dict(
        spot=np.array([100.0, 2000.0]),
        price_multiplier=np.vstack([m, m]),
        vol_shift=np.vstack([np.linspace(-0.3, 0.3, 19)] * 2),
        vol_shock="multiplicative",
    )
    return instruments, scenarios


def test_update_unit_from_market_revalues_only_that_unit():
    instruments, scenarios = revalue_inputs()
    risk, _ = kernels.revalue(**instruments, **scenarios)
    book = AccountBook(risk, instruments["risk_unit"], n_accounts=2, fx=[1.0, 2000.0], gain_factor=0.0)
    book.add_fills([0, 0, 1, 1], [1, 4, 3, 0], [-3.0, 2.0, 1.0, 5.0])
    instruments["forward"][3:] = 2100.0
    instruments["vol"][3:] *= 1.1
    instruments["forward"][0] = 120.0  # unit 0 must not be re-revalued
    scenarios["spot"] = np.array([100.0, 2100.0])
    book.update_unit_from_market(1, instruments, scenarios, fx=2100.0)
    fresh, _ = kernels.revalue(**instruments, **scenarios)
    for i in range(6):
        np.testing.assert_array_equal(book.risk_row(i), fresh[i] if i >= 3 else risk[i])
    spec = Spec(risk, instruments["risk_unit"], 2, np.ones((2, 19)), [1.0, 2000.0], 0.0, 1.0, 2)
    for a, i, q in [(0, 1, -3.0), (0, 4, 2.0), (1, 3, 1.0), (1, 0, 5.0)]:
        spec.fill(a, i, q)
    spec.update(1, fresh[3:], 2100.0)
    for a in range(2):
        assert_matches_scratch(spec, book, a)
    with pytest.raises(ValueError, match="risk units"):
        bad = dict(instruments, risk_unit=np.array([0, 0, 1, 1, 1, 1], dtype=np.int32))
        book.update_unit_from_market(1, bad, scenarios)


def test_concurrent_readers_and_writers():
    """Python threads: what-ifs (GIL held) against fills and market updates (GIL released)."""
    rng = np.random.default_rng(3)
    spec = Spec(
        rng.normal(size=(9, 64)) * 100, np.arange(9) % 3, 3, rng.uniform(0.5, 1, (3, 64)), [1.0, 2.0, 3.0], 0.5, 0.8, 50
    )
    book = spec.book()
    book.add_fill(0, 0, 4.0)
    expected = {book.what_if(0, 0, 1.0).im}
    book.add_fill(0, 1, 3.0)
    expected.add(book.what_if(0, 0, 1.0).im)
    book.add_fill(0, 1, -3.0)
    rows = book.instruments_of(2)
    stop = threading.Event()
    errors = []

    def reader():
        while not stop.is_set():
            if book.what_if(0, 0, 1.0).im not in expected:
                errors.append("torn read")

    def writer():
        for _ in range(2000):
            book.add_fill(0, 1, 3.0)
            book.add_fill(0, 1, -3.0)

    def market():
        for k in range(50):
            book.update_unit(2, spec.risk[rows] * (1.0 + 0.01 * k))
            for a in range(2, 50):
                book.add_fill(a, 2 + 3 * (a % 3), 1.0)

    readers = [threading.Thread(target=reader) for _ in range(2)]
    workers = [threading.Thread(target=writer), threading.Thread(target=market)]
    for t in readers + workers:
        t.start()
    for t in workers:
        t.join()
    stop.set()
    for t in readers:
        t.join()
    assert not errors
    for a in range(2, 50):
        spec.positions[a] = {2 + 3 * (a % 3): 50.0}
        spec.gross[a][2] = 50.0 * 50 * 2 * np.abs(spec.risk[2 + 3 * (a % 3)]) * 1.5  # every update's terms
    spec.risk[rows] = spec.risk[rows] * 1.49
    for a in range(2, 50):
        assert_matches_scratch(spec, book, a)


def test_gain_factor_moves_only_the_worst_scenario_of_a_unit_without_loss():
    """h is non-decreasing, so the gain factor never changes a unit's loss under this rule; with no
    loss it decides the reported scenario (the first with the smallest haircut P&L)."""
    risk = np.array([[5.0, 0.0, 3.0, 2.0], [-1.0, 4.0, -2.0, 1.0]])
    for gain, worst_gain_only, worst_loss in ((1.0, 1, 2), (0.5, 1, 2), (0.0, 0, 2)):
        book = AccountBook(risk, [0, 0], n_accounts=1, gain_factor=gain)
        w = book.what_if(0, 0, 1.0)  # P = [5, 0, 3, 2]: no loss
        assert (w.unit_loss, w.worst_scenario) == (0.0, worst_gain_only)
        w = book.what_if(0, 1, 1.0)  # P = [-1, 4, -2, 1]: loss 2 whatever the gain factor
        assert (w.unit_loss, w.worst_scenario) == (2.0, worst_loss)
        _, worst = reference.worst_loss(risk[:1], None, gain)
        assert worst[0] == worst_gain_only
