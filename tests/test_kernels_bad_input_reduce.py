"""Bad input to the reductions of marginkernel.kernels (worst_loss, value_at_risk), normal_cdf and
the SIMD target selection; the conventions of test_kernels_bad_input.py."""

from __future__ import annotations

import numpy as np
import pytest

from bad_input import INF, NAN, rejects, var_inputs, worst_inputs
from marginkernel import InputError, kernels

# ---------------------------------------------------------------------------------------------
# worst_loss


@pytest.mark.parametrize("col", [0])
@pytest.mark.parametrize("bad", [NAN, -INF])
def test_worst_loss_non_finite_pnl_first(col, bad):
    kw = worst_inputs()
    kw["pnl"] = kw["pnl"].copy()
    kw["pnl"][1, col] = bad
    rejects(kernels.worst_loss, kw, InputError, "pnl", 1)


@pytest.mark.parametrize("col,bad", [(1, NAN), (2, NAN), (2, INF)])
def test_worst_loss_non_finite_pnl_later(col, bad):
    kw = worst_inputs()
    kw["pnl"] = kw["pnl"].copy()
    kw["pnl"][1, col] = bad
    rejects(kernels.worst_loss, kw, InputError, "pnl", 1)


@pytest.mark.parametrize(
    "kw,field,row",
    [
        ({"weight": np.array([[1.0, -0.5, 1.0]])}, "weight", 0),
        ({"weight": np.array([[1.0, 1.0, 1.0], [1.0, NAN, 1.0]])}, "weight", 1),
        ({"weight": np.array([[1.0, 1.0, INF]])}, "weight", 0),
        ({"gain_factor": -0.5}, "gain_factor", None),
        ({"gain_factor": NAN}, "gain_factor", None),
        ({"gain_factor": INF}, "gain_factor", None),
        ({"weight": np.zeros((0, 3))}, "weight", None),
        ({"weight": np.ones((1, 4))}, "weight", None),  # wrong number of scenarios
        ({"pnl": np.zeros((2, 0)), "weight": None}, "pnl", None),
    ],
)
def test_worst_loss_bad_input(kw, field, row):
    rejects(kernels.worst_loss, {**worst_inputs(), **kw}, InputError, field, row)


@pytest.mark.parametrize(
    "field,value,exc",
    [
        ("pnl", np.array([[-1, 2, -3]]), TypeError),
        ("weight", np.array([[1, 0, 1]]), TypeError),
        ("pnl", np.array([-1.0, 2.0, -3.0]), ValueError),
        ("weight", np.array([1.0, 0.5, 1.0]), ValueError),
        ("pnl", np.asfortranarray(np.array([[-1.0, 2.0, -3.0], [4.0, -5.0, 6.0]])), ValueError),
    ],
)
def test_worst_loss_bad_array(field, value, exc):
    rejects(kernels.worst_loss, {**worst_inputs(), field: value}, exc, field, input_error=False)


def test_worst_loss_no_rows():
    loss, worst = kernels.worst_loss(np.zeros((0, 3)))
    assert loss.shape == (0,) and worst.shape == (0,)


# ---------------------------------------------------------------------------------------------
# value_at_risk


@pytest.mark.parametrize("col,bad", [(0, NAN), (3, NAN), (2, INF), (1, -INF)])
def test_value_at_risk_non_finite_pnl(col, bad):
    kw = var_inputs()
    kw["pnl"] = kw["pnl"].copy()
    kw["pnl"][1, col] = bad
    err = rejects(kernels.value_at_risk, kw, InputError, "pnl", 1)
    assert f"scenario {col}" in str(err)


# Equally likely scenarios, many of them: the kernel checks each row as it selects its quantile
# (the first packets seed the chunk minima, the rest stream past them, the last ns % L are scalar).
@pytest.mark.parametrize("target", kernels.available_simd_targets())
@pytest.mark.parametrize("col,bad", [(0, NAN), (3, INF), (17, -INF), (500, NAN), (1002, INF)])
@pytest.mark.parametrize("confidence", [0.99, 0.5])
def test_value_at_risk_non_finite_pnl_in_a_long_row(target, col, bad, confidence):
    pnl = np.random.default_rng(col).normal(size=(3, 1003))
    pnl[1, col] = bad
    original = kernels.simd_target()
    try:
        kernels.select_simd_target(target)
        err = rejects(kernels.value_at_risk, {"pnl": pnl, "confidence": confidence}, InputError, "pnl", 1)
    finally:
        kernels.select_simd_target(original)
    assert f"scenario {col}" in str(err)


@pytest.mark.parametrize(
    "kw,field,row",
    [
        ({"confidence": 0.0}, "confidence", None),
        ({"confidence": 1.0}, "confidence", None),
        ({"confidence": 1.5}, "confidence", None),
        ({"confidence": NAN}, "confidence", None),
        ({"probability": np.array([0.1, -0.2, 0.3, 0.4])}, "probability", 1),
        ({"probability": np.array([0.1, 0.2, NAN, 0.4])}, "probability", 2),
        ({"probability": np.array([0.1, 0.2, 0.3, INF])}, "probability", 3),
        ({"probability": np.zeros(4)}, "probability", None),
        ({"probability": np.ones(5)}, "probability", None),
        ({"pnl": np.zeros((2, 0)), "probability": None}, "pnl", None),
    ],
)
def test_value_at_risk_bad_input(kw, field, row):
    rejects(kernels.value_at_risk, {**var_inputs(), **kw}, InputError, field, row)


@pytest.mark.parametrize(
    "field,value,exc",
    [
        ("pnl", np.array([[-1, 2, -3, 0]]), TypeError),
        ("probability", np.array([1, 2, 3, 4]), TypeError),
        ("pnl", np.array([-1.0, 2.0, -3.0, 0.5]), ValueError),
        ("probability", np.ones((1, 4)), ValueError),
        ("probability", np.repeat(np.array([0.1, 0.2, 0.3, 0.4]), 2)[::2], ValueError),
    ],
)
def test_value_at_risk_bad_array(field, value, exc):
    rejects(kernels.value_at_risk, {**var_inputs(), field: value}, exc, field, input_error=False)


def test_value_at_risk_no_rows():
    var, es = kernels.value_at_risk(np.zeros((0, 4)), 0.99)
    assert var.shape == (0,) and es.shape == (0,)


# ---------------------------------------------------------------------------------------------
# normal_cdf and SIMD target selection


def test_normal_cdf_bad_input():
    rejects(kernels.normal_cdf, {"x": np.array([1, 2, 3])}, TypeError, "x", input_error=False)
    rejects(kernels.normal_cdf, {"x": np.linspace(-1, 1, 10)[::2]}, ValueError, "x", input_error=False)
    assert kernels.normal_cdf(np.zeros(0)).shape == (0,)
    assert kernels.normal_cdf(np.zeros((2, 0, 3))).shape == (2, 0, 3)


def test_select_unknown_simd_target():
    before = kernels.simd_target()
    err = rejects(kernels.select_simd_target, {"name": "sse9"}, InputError, "simd_target")
    assert "baseline" in str(err)
    assert kernels.simd_target() == before
