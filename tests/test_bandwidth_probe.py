"""The probes the benchmarks measure their ceilings with: bandwidth (marginkernel._core._stream_seconds)
and arithmetic (_core._mul_add_seconds)."""

from __future__ import annotations

import numpy as np
import pytest

from marginkernel import _core, kernels


@pytest.mark.parametrize("target", kernels.available_simd_targets())
@pytest.mark.parametrize("offset", [0, 1, 3])
def test_write_probe_writes_every_element(target: str, offset: int) -> None:
    """Every element is written by the last pass (value = pass index), unaligned head and tail
    included, and nothing outside the view is touched."""
    original = kernels.simd_target()
    try:
        kernels.select_simd_target(target)
        storage = np.full(1037 + 8, -1.0)
        view = storage[offset : offset + 1037]
        seconds = _core._stream_seconds(view, 3, True)
    finally:
        kernels.select_simd_target(original)
    assert seconds > 0.0
    assert np.all(view == 2.0)
    assert np.all(storage[:offset] == -1.0) and np.all(storage[offset + 1037 :] == -1.0)


def test_probe_refuses_read_only_for_write() -> None:
    x = np.ones(64)
    x.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        _core._stream_seconds(x, 1, True)
    assert _core._stream_seconds(x, 1, False) > 0.0


@pytest.mark.parametrize("target", kernels.available_simd_targets())
def test_arithmetic_probe_reads_its_input_and_refuses_a_short_one(target: str) -> None:
    """The multiply-add probe (netting's arithmetic ceiling in bench/bench_net.py) runs on every
    target, leaves its input as it was, and needs one block of 8 packets of any target."""
    original = kernels.simd_target()
    x = np.linspace(-1.0, 1.0, 2048)
    before = x.copy()
    try:
        kernels.select_simd_target(target)
        seconds = _core._mul_add_seconds(x, 200)
    finally:
        kernels.select_simd_target(original)
    assert 0.0 < seconds < float("inf")
    assert np.array_equal(x, before)
    with pytest.raises(ValueError, match="x: needs at least 64 values, got 63"):
        _core._mul_add_seconds(np.ones(63), 1)
    assert _core._mul_add_seconds(np.ones(64), 1) > 0.0
