"""Bad input to every kernel entry point of marginkernel.kernels: revalue and net here, the
reductions in test_kernels_bad_input_reduce.py.

Each case asserts the exception type (TypeError for a wrong dtype, ValueError -- usually
marginkernel.InputError with ``.field`` and ``.row`` -- for everything else), that the message
names the field (and the row where one is to blame), and that no input was modified. Values are
checked in C++ for the rows where they are used (option fields only for options).
"""

from __future__ import annotations

import numpy as np
import pytest

import marginkernel
from bad_input import (
    INF,
    NAN,
    assert_unchanged,
    net_inputs,
    rejects,
    revalue_inputs,
    snapshot,
    var_inputs,
    worst_inputs,
)
from marginkernel import InputError, kernels


def test_input_error_is_a_value_error():
    assert issubclass(InputError, ValueError)
    assert marginkernel.InputError is kernels.InputError
    err = rejects(
        kernels.revalue, {**revalue_inputs(), "vol": np.array([0.0, 0.0, 0.5, -0.75, 0.0])}, InputError, "vol", 3
    )
    assert "must be finite and >= 0" in str(err) and "-0.75" in str(err)


def test_valid_inputs_are_accepted_and_not_modified():
    for fn, make in (
        (kernels.revalue, revalue_inputs),
        (kernels.net, net_inputs),
        (kernels.worst_loss, worst_inputs),
        (kernels.value_at_risk, var_inputs),
    ):
        kw = make()
        before = snapshot(kw)
        out = fn(**kw)
        assert all(np.isfinite(o).all() for o in out)
        assert_unchanged(kw, before)


# ---------------------------------------------------------------------------------------------
# revalue: values

REVALUE_VALUES = [
    # (field, index to spoil (tuple), bad value, expected row)
    ("kind", 2, 5, 2),
    ("kind", 0, -1, 0),
    ("settlement", 4, 2, 4),
    ("settlement", 1, -1, 1),
    ("risk_unit", 3, 2, 3),
    ("risk_unit", 0, -1, 0),
    ("strike", 2, 0.0, 2),
    ("strike", 3, -5.0, 3),
    ("strike", 2, NAN, 2),
    ("strike", 3, INF, 3),
    ("expiry", 2, NAN, 2),
    ("expiry", 3, INF, 3),
    ("multiplier", 0, 0.0, 0),
    ("multiplier", 1, -10.0, 1),
    ("multiplier", 4, NAN, 4),
    ("multiplier", 2, INF, 2),
    ("forward", 0, 0.0, 0),
    ("forward", 1, -1.0, 1),
    ("forward", 2, NAN, 2),
    ("forward", 3, INF, 3),
    ("discount", 2, 0.0, 2),
    ("discount", 3, NAN, 3),
    ("discount", 2, -0.9, 2),
    ("vol", 2, -0.1, 2),
    ("vol", 3, NAN, 3),
    ("vol", 2, INF, 2),
    ("spot", 1, 0.0, 1),
    ("spot", 0, -100.0, 0),
    ("spot", 1, NAN, 1),
    ("spot", 0, INF, 0),
    ("price_multiplier", (1, 3), 0.0, 1),
    ("price_multiplier", (0, 5), -1.0, 0),
    ("price_multiplier", (1, 0), NAN, 1),
    ("price_multiplier", (0, 2), INF, 0),
    ("vol_shift", (1, 4), NAN, 1),
    ("vol_shift", (0, 1), -INF, 0),
    ("time_shift", 4, -1e-3, 4),
    ("time_shift", 2, NAN, 2),
    ("time_shift", 5, INF, 5),
]


@pytest.mark.parametrize("field,index,bad,row", REVALUE_VALUES, ids=[f"{f}[{i}]={b}" for f, i, b, _ in REVALUE_VALUES])
def test_revalue_bad_value(field, index, bad, row):
    kw = revalue_inputs()
    kw[field] = kw[field].copy()
    kw[field][index] = bad
    rejects(kernels.revalue, kw, InputError, field, row)


@pytest.mark.parametrize(
    "name,value",
    [
        ("tau_floor_days", 0.0),
        ("tau_floor_days", -1.0),
        ("tau_floor_days", NAN),
        ("short_power", NAN),
        ("long_power", INF),
        ("vol_up_floor", -0.1),
        ("vol_up_floor", NAN),
    ],
)
def test_revalue_bad_scalar(name, value):
    rejects(kernels.revalue, {**revalue_inputs(), name: value}, InputError, name)


def test_revalue_unknown_vol_shock():
    err = rejects(
        kernels.revalue, {**revalue_inputs(), "vol_shock": "exponential"}, ValueError, "vol_shock", input_error=False
    )
    assert "multiplicative" in str(err)


def test_revalue_option_fields_ignored_for_non_options():
    """strike / expiry / discount / vol are unused for futures, perps and spot: any value passes
    there (rows 0, 1, 4), and the risk arrays do not change."""
    kw = revalue_inputs()
    want, now = kernels.revalue(**kw)
    for field in ("strike", "expiry", "discount", "vol"):
        kw[field] = kw[field].copy()
        kw[field][[0, 1, 4]] = NAN
    got, now2 = kernels.revalue(**kw)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(now2, now)


def test_revalue_first_bad_row_is_named():
    kw = revalue_inputs()
    kw["forward"] = np.array([101.0, 2010.0, -1.0, 2020.0, -1.0])
    rejects(kernels.revalue, kw, InputError, "forward", 2)


# ---------------------------------------------------------------------------------------------
# revalue: dtype, shape, layout, emptiness


@pytest.mark.parametrize(
    "field,value",
    [
        ("kind", np.array([0.0, 1.0, 2.0, 3.0, 4.0])),  # floats for an integer field
        ("settlement", np.array([False, True, False, True, False])),
        ("risk_unit", np.array([0.0, 1.0, 0.0, 1.0, 0.0])),
        ("strike", np.array([1, 1, 100, 2000, 1])),  # integers for a float field
        ("forward", np.array(["101", "2010", "101", "2020", "100"])),
        ("vol", np.array([0, 0, 0.5, 0.7, 0], dtype=object)),
        ("spot", np.array([100, 2000], dtype=np.int64)),
        ("price_multiplier", np.ones((2, 6), dtype=np.complex128)),
        ("time_shift", np.zeros(6, dtype=np.int32)),
    ],
)
def test_revalue_wrong_dtype(field, value):
    kw = {**revalue_inputs(), field: value}
    err = rejects(kernels.revalue, kw, TypeError, field, input_error=False)
    assert "dtype" in str(err)


def test_revalue_integer_fields_out_of_range():
    kw = {**revalue_inputs(), "kind": np.array([0, 1, 300, 3, 4])}
    rejects(kernels.revalue, kw, ValueError, "kind", input_error=False)


def test_revalue_compatible_dtypes_are_converted():
    """int64 for int8 / int32 fields and float32 for float64 fields are accepted (exact)."""
    kw = revalue_inputs()
    want, _ = kernels.revalue(**kw)
    kw2 = {
        **kw,
        "kind": kw["kind"].astype(np.int64),
        "risk_unit": kw["risk_unit"].astype(np.uint8),
        "spot": kw["spot"].astype(np.float32),
    }
    got, _ = kernels.revalue(**kw2)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize(
    "field,value,exc_is_input_error",
    [
        ("kind", np.array([[0, 1, 2, 3, 4]], np.int8), False),  # 2-d for 1-d
        ("settlement", np.array([0, 1, 0, 1], np.int8), True),  # one short
        ("risk_unit", np.array([0, 1, 0, 1, 0, 0], np.int32), True),
        ("strike", np.array([1.0, 1.0, 100.0, 2000.0]), True),
        ("expiry", np.zeros(6), True),
        ("multiplier", np.ones(4), True),
        ("forward", np.ones((5, 1)), False),
        ("discount", np.ones(4), True),
        ("vol", np.ones(6), True),
        ("price_multiplier", np.ones(6), False),  # 1-d for 2-d
        ("price_multiplier", np.ones((3, 6)), True),  # one unit too many
        ("vol_shift", np.zeros((2, 5)), True),
        ("vol_shift", np.zeros((1, 6)), True),
        ("time_shift", np.zeros(7), True),
        ("time_shift", np.zeros((1, 6)), False),
    ],
)
def test_revalue_wrong_shape(field, value, exc_is_input_error):
    kw = {**revalue_inputs(), field: value}
    err = rejects(kernels.revalue, kw, ValueError, field, input_error=exc_is_input_error)
    assert "shape" in str(err) or "-d" in str(err)


@pytest.mark.parametrize(
    "field,make",
    [
        ("strike", lambda kw: np.repeat(kw["strike"], 2)[::2]),
        ("kind", lambda kw: np.repeat(kw["kind"], 2)[::2]),
        ("price_multiplier", lambda kw: np.asfortranarray(kw["price_multiplier"])),
        ("vol_shift", lambda kw: np.repeat(kw["vol_shift"], 2, axis=1)[:, ::2]),
        ("time_shift", lambda kw: np.repeat(kw["time_shift"], 3)[::3]),
    ],
)
def test_revalue_non_contiguous(field, make):
    kw = revalue_inputs()
    kw[field] = make(kw)
    assert not kw[field].flags.c_contiguous
    err = rejects(kernels.revalue, kw, ValueError, field, input_error=False)
    assert "C-contiguous" in str(err)


def test_revalue_empty():
    kw = revalue_inputs()
    no_instruments = {
        k: (
            v[:0]
            if k in ("kind", "settlement", "risk_unit", "strike", "expiry", "multiplier", "forward", "discount", "vol")
            else v
        )
        for k, v in kw.items()
    }
    rejects(kernels.revalue, no_instruments, InputError, "instruments")
    no_units = {**kw, "spot": np.zeros(0), "price_multiplier": np.ones((0, 6)), "vol_shift": np.zeros((0, 6))}
    rejects(kernels.revalue, no_units, InputError, "spot")
    no_scenarios = {**kw, "price_multiplier": np.ones((2, 0)), "vol_shift": np.zeros((2, 0)), "time_shift": np.zeros(0)}
    rejects(kernels.revalue, no_scenarios, InputError, "price_multiplier")


# ---------------------------------------------------------------------------------------------
# net


@pytest.mark.parametrize(
    "field,index,bad,row",
    [
        ("risk_unit", 1, 2, 1),
        ("risk_unit", 2, -1, 2),
        ("account_start", 0, 1, 0),
        ("account_start", 2, 1, 2),  # 2 -> 1 after 2: decreasing
        ("instrument", 3, 3, 3),
        ("instrument", 0, -1, 0),
        ("quantity", 1, NAN, 1),
        ("quantity", 3, INF, 3),
        ("quantity", 0, -INF, 0),
    ],
)
def test_net_bad_value(field, index, bad, row):
    kw = net_inputs()
    kw[field] = kw[field].copy()
    kw[field][index] = bad
    rejects(kernels.net, kw, InputError, field, row)


def test_net_last_start_must_be_number_of_positions():
    rejects(
        kernels.net, {**net_inputs(), "account_start": np.array([0, 2, 2, 3], np.int64)}, InputError, "account_start", 3
    )
    rejects(kernels.net, {**net_inputs(), "account_start": np.zeros(0, np.int64)}, InputError, "account_start")


@pytest.mark.parametrize("n_units", [0, -1])
def test_net_bad_n_units(n_units):
    rejects(kernels.net, {**net_inputs(), "n_units": n_units}, ValueError, "n_units", input_error=False)


def test_net_n_units_too_small_for_risk_unit():
    rejects(kernels.net, {**net_inputs(), "n_units": 1}, InputError, "risk_unit", 1)


@pytest.mark.parametrize(
    "field,value,exc,input_error",
    [
        ("risk", np.arange(12).reshape(3, 4), TypeError, False),
        ("risk_unit", np.array([0.0, 1.0, 0.0]), TypeError, False),
        ("account_start", np.array([0.0, 2.0, 2.0, 4.0]), TypeError, False),
        ("instrument", np.array([0.0, 1.0, 2.0, 0.0]), TypeError, False),
        ("quantity", np.array([1, -2, 1, 3]), TypeError, False),
        ("risk", np.zeros(12), ValueError, False),  # 1-d
        ("risk_unit", np.array([0, 1], np.int32), ValueError, True),  # one short
        ("quantity", np.array([1.0, -2.0, 0.5]), ValueError, True),  # one short
        ("instrument", np.array([[0, 1, 2, 0]], np.int32), ValueError, False),
        ("risk", np.ascontiguousarray(np.repeat(np.arange(12.0).reshape(3, 4), 2, axis=1))[:, ::2], ValueError, False),
        ("quantity", np.repeat(np.array([1.0, -2.0, 0.5, 3.0]), 2)[::2], ValueError, False),
    ],
)
def test_net_bad_array(field, value, exc, input_error):
    rejects(kernels.net, {**net_inputs(), field: value}, exc, field, input_error=input_error)


def test_net_empty():
    rejects(kernels.net, {**net_inputs(), "risk": np.zeros((3, 0))}, InputError, "risk")
    # no accounts, or accounts without positions, are valid: zero rows / zero P&L
    kw = {
        **net_inputs(),
        "account_start": np.zeros(1, np.int64),
        "instrument": np.zeros(0, np.int32),
        "quantity": np.zeros(0),
    }
    assert kernels.net(**kw).shape == (0, 2, 4)
    kw["account_start"] = np.zeros(3, np.int64)
    np.testing.assert_array_equal(kernels.net(**kw), np.zeros((2, 2, 4)))


@pytest.mark.parametrize("bad", [NAN, INF])
def test_net_non_finite_risk(bad):
    kw = net_inputs()
    kw["risk"] = kw["risk"].copy()
    kw["risk"][2, 1] = bad
    rejects(kernels.net, kw, InputError, "risk", 2)
