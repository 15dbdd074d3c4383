"""Every kernel in marginkernel.kernels has a twin in marginkernel.reference with the same
signature: same parameter names, kinds, defaults and annotations."""

from __future__ import annotations

import inspect

import pytest

from marginkernel import kernels, reference

KERNELS = [
    name for name in kernels.__all__ if inspect.isfunction(getattr(kernels, name)) and name not in {"check_threads"}
]


def test_the_kernel_list_is_what_we_think() -> None:
    assert sorted(KERNELS) == ["net", "normal_cdf", "revalue", "value_at_risk", "worst_loss"]


@pytest.mark.parametrize("name", KERNELS)
def test_same_signature(name: str) -> None:
    assert hasattr(reference, name), f"marginkernel.reference has no twin of kernels.{name}"
    assert inspect.signature(getattr(kernels, name)) == inspect.signature(getattr(reference, name))
