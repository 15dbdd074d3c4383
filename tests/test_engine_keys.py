"""engine.keys against NumPy: unique_inverse against np.unique, on both of its paths (table and
sort); first_max against the first row of each group after np.lexsort. results.text_column against
the object array it stands for."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from marginkernel.engine.keys import TABLE_FACTOR, TABLE_FLOOR, first_max, unique_inverse
from marginkernel.engine.results import text_column


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


@settings(max_examples=200, deadline=None)
@given(
    n_groups=st.integers(1, 12),
    data=st.data(),
)
def test_first_max_is_the_first_row_of_each_group_after_lexsort(n_groups: int, data: st.DataObject) -> None:
    """Ties (and 0.0 beside -0.0) go to the earlier row; a group without rows gets -1."""
    n = data.draw(st.integers(0, 60))
    group = data.draw(hnp.arrays(np.int64, n, elements=st.integers(0, n_groups - 1)))
    values = data.draw(hnp.arrays(np.float64, n, elements=st.sampled_from([-2.0, -0.0, 0.0, 1.5, 3.0])))
    before = values.copy()
    order = np.lexsort((-values, group))
    expected = np.full(n_groups, -1)
    for row in order[::-1]:
        expected[group[row]] = row
    np.testing.assert_array_equal(first_max(values, group, n_groups), expected)
    assert before.tobytes() == values.tobytes()


@given(
    labels=st.lists(st.one_of(st.text(max_size=3), st.integers(-5, 5)), min_size=0, max_size=4),
    data=st.data(),
)
def test_text_column_is_typed_as_the_object_array(labels: list, data: st.DataObject) -> None:
    """The same dtype and values as the frame column pandas builds from the object array
    ``labels[index]`` with None for -1: text (NaN for None) when every label is text and one is
    taken; else objects (all None, mixed labels, no rows)."""
    index = data.draw(hnp.arrays(np.int64, st.integers(0, 20), elements=st.integers(-1, len(labels) - 1)))
    objects = np.array([None if k < 0 else labels[k] for k in index] + [0], dtype=object)[:-1]
    want = pd.DataFrame({"c": objects})["c"]
    got = pd.DataFrame({"c": text_column(labels, index)})["c"]
    pd.testing.assert_series_equal(got, want)
