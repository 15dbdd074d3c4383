"""engine.keys.unique_inverse against np.unique, on both of its paths (table and sort)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from marginkernel.engine.keys import TABLE_FACTOR, TABLE_FLOOR, unique_inverse


@settings(max_examples=200, deadline=None)
@given(
    n_keys=st.one_of(st.integers(1, 50), st.integers(TABLE_FLOOR, 3 * TABLE_FLOOR)),
    data=st.data(),
)
def test_unique_inverse_is_np_unique(n_keys: int, data: st.DataObject) -> None:
    key = data.draw(hnp.arrays(np.int64, st.integers(0, 300), elements=st.integers(0, n_keys - 1)))
    before = key.copy()
    uniq, inverse = unique_inverse(key, n_keys)
    expected_uniq, expected_inverse = np.unique(key, return_inverse=True)
    np.testing.assert_array_equal(uniq, expected_uniq)
    np.testing.assert_array_equal(inverse, expected_inverse.reshape(-1))
    assert uniq.dtype == np.int64 and inverse.shape == key.shape
    np.testing.assert_array_equal(key, before)  # the input is not touched


def test_unique_inverse_sorts_a_sparse_key_space() -> None:
    """Keys far apart (a key space beyond TABLE_FACTOR x rows + TABLE_FLOOR) take the sorting path
    and allocate nothing of the key space's size."""
    n_keys = 1 << 62
    key = np.array([n_keys - 1, 5, n_keys - 1, 0], dtype=np.int64)
    assert n_keys > TABLE_FACTOR * len(key) + TABLE_FLOOR
    uniq, inverse = unique_inverse(key, n_keys)
    np.testing.assert_array_equal(uniq, [0, 5, n_keys - 1])
    np.testing.assert_array_equal(inverse, [2, 1, 2, 0])
