"""Hypothesis-driven fuzzing of the Python bindings (issue 9.3): arbitrary, extreme and hostile
arguments -- non-finite and huge values in any field, `out=` aliasing any input, any thread count.

The contract checked on every draw: the call either raises ``TypeError`` / ``ValueError`` (which
includes ``InputError``) or returns finite results; inputs are never modified; a result never
depends on the thread count; and on inputs inside the documented ranges the result agrees with the
NumPy reference (the tolerances of tests/test_kernels_vs_reference.py). Never a crash or hang.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from marginkernel import kernels, reference
from marginkernel.testing import strategies as mks

SCALE = int(os.environ.get("MK_HYPOTHESIS_SCALE", "1"))

EXTREME = st.sampled_from([0.0, -0.0, 1e-308, 5e-324, 1e308, -1e308, 1e154, np.inf, -np.inf, np.nan, -1.0, 1e-300])
THREADS = st.one_of(st.integers(-3, 6), st.sampled_from([40000, 2**31, 2**63 - 1, 1.5, 2.0, True, None, "2"]))


def _copy(kwargs: dict) -> dict:
    return {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in kwargs.items()}


def _unchanged(before: dict, after: dict) -> None:
    for k, v in before.items():
        if isinstance(v, np.ndarray):
            np.testing.assert_array_equal(after[k], v, err_msg=k)


def _threads_ok(threads: object) -> bool:
    return isinstance(threads, int) and not isinstance(threads, bool) and threads >= 1


FLOAT_FIELDS = ["strike", "expiry", "multiplier", "forward", "discount", "vol", "spot", "price_multiplier", "vol_shift"]


@settings(max_examples=150 * SCALE, deadline=None)
@given(
    case=mks.revalue_cases(max_instruments=5, max_scenarios=70, vol_shift=True),
    poison=st.lists(st.tuples(st.sampled_from(FLOAT_FIELDS), st.integers(0, 10**6), EXTREME), max_size=2),
    powers=st.tuples(st.sampled_from([0.0, 0.5, 300.0, -300.0, 1000.0]), st.sampled_from([0.0, 1.0, -1000.0])),
    threads=THREADS,
)
def test_revalue_is_finite_or_refused(
    case: mks.RevalueCase, poison: list[tuple[str, int, float]], powers: tuple[float, float], threads: object
) -> None:
    kwargs = case.kwargs()
    kwargs["short_power"], kwargs["long_power"] = powers
    for field, where, value in poison:
        flat = kwargs[field].reshape(-1)
        flat[where % flat.size] = value
    before = _copy(kwargs)
    try:
        risk, now = kernels.revalue(**kwargs, threads=threads)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        _unchanged(before, kwargs)
        return
    assert _threads_ok(threads)
    _unchanged(before, kwargs)
    assert np.isfinite(risk).all() and np.isfinite(now).all()
    again, now_again = kernels.revalue(**kwargs)
    assert np.array_equal(again, risk) and np.array_equal(now_again, now)
    if not poison and powers == (0.0, 0.0):  # inside the documented ranges: the reference agrees
        want, _ = reference.revalue(**kwargs)
        scale = case.price_scale()[:, None]
        assert np.all(np.abs(risk - want) <= 1e-9 * scale)


REVALUE_ARRAYS = ["strike", "expiry", "multiplier", "forward", "discount", "vol", "spot", "price_multiplier"]


@settings(max_examples=60 * SCALE, deadline=None)
@given(case=mks.revalue_cases(max_instruments=4, max_scenarios=20), victim=st.sampled_from(REVALUE_ARRAYS))
def test_revalue_out_aliasing_an_input_is_refused(case: mks.RevalueCase, victim: str) -> None:
    kwargs = case.kwargs()
    n, ns = len(kwargs["kind"]), kwargs["price_multiplier"].shape[1]
    source = kwargs[victim]
    buffer = np.zeros(max(n * ns, source.size) + 1)
    alias = buffer[: source.size].reshape(source.shape)
    alias[...] = source
    kwargs[victim] = alias
    out = buffer[: n * ns].reshape(n, ns) if n * ns <= buffer.size else None
    with pytest.raises(ValueError, match="out"):
        kernels.revalue(**kwargs, out=out)
    np.testing.assert_array_equal(kwargs[victim], source)


NET_ARRAYS = ["risk", "risk_unit", "account_start", "instrument", "quantity"]


@st.composite
def net_cases(draw: st.DrawFn) -> dict:
    n, units, ns = draw(st.integers(1, 6)), draw(st.integers(1, 3)), draw(st.integers(1, 70))
    risk = np.array(draw(st.lists(st.floats(-1e3, 1e3), min_size=n * ns, max_size=n * ns))).reshape(n, ns)
    unit = np.array(draw(st.lists(st.integers(0, units - 1), min_size=n, max_size=n)), np.int32)
    pos = draw(mks.positions(n, min_accounts=0, max_accounts=6))
    return {"risk": risk, "risk_unit": unit, "n_units": units, **pos.arrays()}


@settings(max_examples=150 * SCALE, deadline=None)
@given(
    case=net_cases(),
    poison=st.lists(st.tuples(st.sampled_from(["risk", "quantity"]), st.integers(0, 10**6), EXTREME), max_size=2),
    threads=THREADS,
    alias=st.one_of(st.none(), st.sampled_from(NET_ARRAYS)),
)
def test_net_is_exact_finite_or_refused(case: dict, poison: list, threads: object, alias: str | None) -> None:
    for field, where, value in poison:
        if case[field].size:
            case[field].reshape(-1)[where % case[field].size] = value
    shape = (len(case["account_start"]) - 1, case["n_units"], case["risk"].shape[1])
    out = np.full(shape, -7.0)
    if out.size == 0:
        alias = None
    if alias is not None:  # the input lives inside `out`
        source = case[alias]
        room = out.reshape(-1).view(source.dtype)
        if room.size >= source.size and source.size:
            room[: source.size] = source.reshape(-1)
            case[alias] = room[: source.size].reshape(source.shape)
        else:
            alias = None
    before = _copy(case)
    try:
        pnl = kernels.net(**case, threads=threads, out=out)  # type: ignore[arg-type]
    except (TypeError, ValueError) as err:
        _unchanged(before, case)
        if alias is not None and _threads_ok(threads):
            assert "overlaps" in str(err)
        return
    assert alias is None and _threads_ok(threads)
    _unchanged(before, case)
    assert pnl is out and np.isfinite(pnl).all()
    want = reference.net(**case)
    np.testing.assert_allclose(pnl, want, rtol=1e-12, atol=1e-12 * np.abs(case["risk"]).max(initial=1.0) * 1e4)
    assert np.array_equal(kernels.net(**case, threads=1), pnl)


@settings(max_examples=150 * SCALE, deadline=None)
@given(
    pnl=mks.pnl_matrices(max_scenarios=70),
    weight_scale=st.sampled_from([None, 1.0, 1e300, 1e308, 0.0]),
    gain=st.sampled_from([0.0, 0.5, 1.0, 1e300, np.inf, -1.0, np.nan]),
    poison=st.lists(st.tuples(st.integers(0, 10**6), EXTREME), max_size=2),
    confidence=st.sampled_from([0.5, 0.99, 0.0, 1.0, np.nan, 1e-300]),
    probability_scale=st.sampled_from([None, 1.0, 1e307, 1e308]),
)
def test_reductions_are_finite_or_refused(
    pnl: np.ndarray,
    weight_scale: float | None,
    gain: float,
    poison: list,
    confidence: float,
    probability_scale: float | None,
) -> None:
    for where, value in poison:
        pnl.reshape(-1)[where % pnl.size] = value
    weight = None if weight_scale is None else np.full((2, pnl.shape[1]), weight_scale)
    before = pnl.copy()
    try:
        loss, worst = kernels.worst_loss(pnl, weight, gain)
    except ValueError:
        pass
    else:
        assert np.isfinite(loss).all() and (loss >= 0).all()
        with np.errstate(all="ignore"):  # the reference may overflow where the kernel refused nothing
            want_loss, want_worst = reference.worst_loss(pnl, weight, gain)
        assert np.array_equal(loss, want_loss) and np.array_equal(worst, want_worst)
    probability = None if probability_scale is None else np.full(pnl.shape[1], probability_scale)
    try:
        var, es = kernels.value_at_risk(pnl, confidence, probability)
    except ValueError:
        pass
    else:
        assert np.isfinite(var).all() and np.isfinite(es).all()
    np.testing.assert_array_equal(pnl, before)
