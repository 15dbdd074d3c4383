"""Shared by the bad-input tests of marginkernel.kernels (test_kernels_bad_input*.py): a valid call
of each kernel, and :func:`rejects`, which checks the error and that no input was modified."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from marginkernel import InputError

NAN, INF = float("nan"), float("inf")


def revalue_inputs() -> dict:
    """A valid revalue call: 5 instruments (future, inverse perp, call, inverse put, spot) on 2 risk
    units, 6 scenarios, with vol shifts and look-ahead."""
    s = 6
    return dict(
        kind=np.array([0, 1, 2, 3, 4], np.int8),
        settlement=np.array([0, 1, 0, 1, 0], np.int8),
        risk_unit=np.array([0, 1, 0, 1, 0], np.int32),
        strike=np.array([1.0, 1.0, 100.0, 2000.0, 1.0]),
        expiry=np.array([0.5, 0.0, 0.25, 0.1, 0.0]),
        multiplier=np.array([1.0, 10.0, 1.0, 1.0, 1.0]),
        forward=np.array([101.0, 2010.0, 101.0, 2020.0, 100.0]),
        discount=np.array([0.99, 1.0, 0.995, 0.998, 1.0]),
        vol=np.array([0.0, 0.0, 0.5, 0.7, 0.0]),
        spot=np.array([100.0, 2000.0]),
        price_multiplier=np.tile(np.linspace(0.8, 1.2, s), (2, 1)),
        vol_shift=np.tile(np.array([-0.2, 0.0, 0.2, -0.2, 0.0, 0.2]), (2, 1)),
        time_shift=np.full(s, 1.0 / 365),
        vol_shock="multiplicative",
    )


def net_inputs() -> dict:
    """A valid net call: 3 instruments on 2 units, 3 accounts (the middle one empty)."""
    return dict(
        risk=np.arange(12.0).reshape(3, 4) - 5.0,
        risk_unit=np.array([0, 1, 0], np.int32),
        n_units=2,
        account_start=np.array([0, 2, 2, 4], np.int64),
        instrument=np.array([0, 1, 2, 0], np.int32),
        quantity=np.array([1.0, -2.0, 0.5, 3.0]),
    )


def worst_inputs() -> dict:
    return dict(
        pnl=np.array([[-1.0, 2.0, -3.0], [4.0, -5.0, 6.0]]), weight=np.array([[1.0, 0.5, 1.0]]), gain_factor=0.5
    )


def var_inputs() -> dict:
    return dict(
        pnl=np.array([[-1.0, 2.0, -3.0, 0.5], [4.0, -5.0, 6.0, 1.0]]),
        confidence=0.75,
        probability=np.array([0.1, 0.2, 0.3, 0.4]),
    )


def snapshot(kwargs):
    return {k: (np.array(v, copy=True) if isinstance(v, np.ndarray) else copy.deepcopy(v)) for k, v in kwargs.items()}


def assert_unchanged(kwargs, before):
    for k, v in before.items():
        if isinstance(v, np.ndarray):
            assert kwargs[k].dtype == v.dtype and kwargs[k].shape == v.shape, f"{k} changed type or shape"
            np.testing.assert_array_equal(kwargs[k], v, err_msg=f"input {k} was modified")
        else:
            assert kwargs[k] == v or (v != v and kwargs[k] != kwargs[k]), f"input {k} was modified"


def rejects(fn, kwargs, exc, field, row=None, input_error=True):
    """Calls fn(**kwargs), expects `exc` naming `field` (and `row`), and no input modified."""
    before = snapshot(kwargs)
    with pytest.raises(exc) as info:
        fn(**kwargs)
    err = info.value
    msg = str(err)
    if row is None:
        assert msg.startswith(f"{field}:") or msg.startswith(f"{field} "), msg
    else:
        assert msg.startswith(f"{field}[{row}]"), msg
    if input_error:
        assert isinstance(err, InputError), f"{type(err).__name__}: {msg}"
        assert err.field == field and err.row == row, (err.field, err.row, msg)
    assert_unchanged(kwargs, before)
    return err
