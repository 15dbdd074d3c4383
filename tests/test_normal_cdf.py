"""Accuracy of the kernel's vectorised normal CDF (cpp/src/kernels_isa.cpp: Hart 1968 / West 2005
rational approximation times exp, continued fraction for 7.07 <= |x| < 37) against mpmath at 50
digits, on every SIMD target.

Grid: [-40, 40] in steps of 0.004, plus dense grids (step 1e-4) around the branch switch at
|x| = 7.07, around 0 and around the flush-to-zero at |x| = 37. Measured on AMD Zen 4, identical on
baseline / AVX2 / AVX-512:

* max absolute error over [-40, 40]: 2.2e-16 (x > 0, where N = 1 - N(-x) is rounded near 1);
* max relative error of N(x), x <= 0: 5.0e-16 on [-1, 0], 3.8e-15 on [-2.5, 0], 6.9e-14 on
  [-3.5, 0], 6.1e-12 on [-4.5, 0], 2.9e-9 on the rational branch [-7.07, 0] (at -7.07), 8.9e-9 on
  (-37, 0] (continued fraction, max near x = -7.79);
* N(x) = 0 for x <= -37 (the true value is below 5.8e-300: relative error 1 there).

The rational approximation itself (evaluated exactly) has these relative errors: the tail error is
the approximation's, not rounding. Absolute accuracy is what Black-76 needs (architecture §3: price error
<= 1e-13 of the price scale, tests/test_black76_golden.py); the relative bounds are asserted so that
a regression in the tail is noticed. Run with ``-s`` to print the measured numbers.
"""

from __future__ import annotations

import mpmath
import numpy as np
import pytest

from marginkernel import kernels
from marginkernel.testing import simd_targets, using_simd_target

TARGETS = simd_targets()

ABS_TOL = 4.5e-16  # two half-ulps of 1
# (lower end of [lo, 0], bound on the relative error of N(x) there); measured value in the comment
REL_TOL = [
    (-1.0, 1e-15),  # 5.0e-16
    (-2.5, 1e-14),  # 3.8e-15
    (-3.5, 1.5e-13),  # 6.9e-14
    (-4.5, 1.5e-11),  # 6.1e-12
    (-7.07, 6e-9),  # 2.9e-9
    (-37.0, 1.5e-8),  # 8.9e-9
]


def _grid() -> np.ndarray:
    parts = [
        np.linspace(-40.0, 40.0, 20001),
        np.linspace(-7.2, -6.9, 3001),
        np.linspace(6.9, 7.2, 3001),
        np.linspace(-0.15, 0.15, 3001),
        np.linspace(-37.15, -36.85, 3001),
        [-7.07106781186547, -7.071067811865475, -7.0710678118654, 7.07106781186547, -37.0, 37.0, 0.0, -0.0],
    ]
    return np.unique(np.concatenate(parts))


@pytest.fixture(scope="module")
def truth():
    mpmath.mp.dps = 50
    x = _grid()
    half = mpmath.mpf(1) / 2
    sqrt2 = mpmath.sqrt(2)
    return x, np.array([float(half * mpmath.erfc(-mpmath.mpf(v) / sqrt2)) for v in x])


@pytest.mark.parametrize("target", TARGETS)
def test_normal_cdf_vs_mpmath(target, truth):
    x, want = truth
    with using_simd_target(target):
        got = kernels.normal_cdf(x)
    abs_err = np.abs(got - want)
    i = int(abs_err.argmax())
    print(f"\n[{target}] max absolute error over [-40, 40]: {abs_err[i]:.3g} at x = {x[i]:.6g}")
    assert abs_err.max() <= ABS_TOL

    for lo, tol in REL_TOL:
        sel = (x <= 0.0) & (x > lo)
        rel = np.abs(got[sel] - want[sel]) / want[sel]
        j = int(rel.argmax())
        print(f"[{target}] max relative error of N(x) on ({lo}, 0]: {rel[j]:.3g} at x = {x[sel][j]:.6g}")
        assert rel.max() <= tol, f"relative error {rel.max():.3g} on ({lo}, 0] > {tol}"

    deep = x <= -37.0
    assert (got[deep] == 0.0).all() and (want[deep] < 5.8e-300).all()
    assert (got[x >= 37.0] == 1.0).all()
    # monotone and symmetric: N(-x) + N(x) == 1 up to the rounding of 1 - N(-x)
    assert (np.diff(got) >= 0).all()
    with using_simd_target(target):
        mirrored = kernels.normal_cdf(-x)
    assert np.abs(got + mirrored - 1.0).max() <= 2.3e-16


@pytest.mark.parametrize("target", TARGETS)
def test_normal_cdf_known_values(target):
    """Values anyone can check: N(0) = 1/2 exactly, N(1.959963984540054) = 0.975, N(-1), N(-5)
    (relative tolerances from the measured bounds above)."""
    x = np.array([0.0, 1.959963984540054, -1.0, -5.0])
    with using_simd_target(target):
        got = kernels.normal_cdf(x)
    assert got[0] == 0.5
    assert abs(got[1] - 0.975) <= 2.3e-16
    assert abs(got[2] - 0.15865525393145705) <= 1e-15 * 0.16
    assert abs(got[3] - 2.866515718791939e-07) <= 1e-10 * 2.9e-7
