"""The engine's group sums (netting levels): the netting kernel with quantity 1 against the NumPy loop
it replaces, bit for bit, and the loop taking over where the kernel refuses (non-finite or overflow)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from marginkernel.engine.netting import _Groups

VALUES = st.one_of(
    st.floats(-1e6, 1e6, allow_nan=False),
    st.sampled_from([0.0, -0.0, 5e-324, -5e-324, 1e300, -1e300]),
)


@settings(max_examples=200, deadline=None)
@given(n_groups=st.integers(1, 12), n_scenarios=st.integers(1, 20), data=st.data())
def test_group_sum_is_the_loop_bit_for_bit(n_groups: int, n_scenarios: int, data: st.DataObject) -> None:
    n_rows = data.draw(st.integers(0, 40))
    group = data.draw(hnp.arrays(np.int64, n_rows, elements=st.integers(0, n_groups - 1)))
    rows = data.draw(hnp.arrays(np.float64, (n_rows, n_scenarios), elements=VALUES))
    before = rows.copy()
    groups = _Groups(group, n_groups)
    summed, loop = groups.sum(rows), groups.sum_numpy(rows)
    assert summed.shape == (n_groups, n_scenarios)
    np.testing.assert_array_equal(summed.view(np.int64), loop.view(np.int64))  # signed zeros too
    np.testing.assert_array_equal(rows, before)
    for g in range(n_groups):  # and the loop is the sum in row order, from 0.0
        expected = np.zeros(n_scenarios)
        for k in np.flatnonzero(group == g):
            expected = expected + rows[k]
        np.testing.assert_array_equal(loop[g].view(np.int64), expected.view(np.int64))


def test_group_sum_falls_back_where_the_kernel_refuses() -> None:
    group = np.array([0, 0, 1, 2, 2])
    rows = np.array([[1e308], [1e308], [np.inf], [1.0], [-np.inf]])  # overflow, inf, inf - ... all kept
    groups = _Groups(group, 3)
    with np.errstate(over="ignore", invalid="ignore"):
        np.testing.assert_array_equal(groups.sum(rows), [[np.inf], [np.inf], [-np.inf]])
    finite = np.array([[1e308], [1e308], [1.0], [2.0], [3.0]])
    np.testing.assert_array_equal(groups.sum(finite), [[np.inf], [1.0], [5.0]])
