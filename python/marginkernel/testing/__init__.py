"""Tools for testing margin models and kernels: hypothesis strategies and invariant checks.

* :mod:`marginkernel.testing.strategies` -- hypothesis strategies for instruments (linear and
  inverse futures, perpetuals, calls, puts, spot), markets, scenario grids, sparse positions (CSR)
  and P&L matrices, with bounded, documented ranges.
* :mod:`marginkernel.testing.invariants` -- checks (permutation invariance, homogeneity,
  subadditivity, put-call parity, the inverse/linear identity, ...) that take any kernels-like
  object (:mod:`marginkernel.kernels`, :mod:`marginkernel.reference` or your own) and assert.
* :mod:`marginkernel.testing.books` -- strategies for whole books (instruments, market, positions,
  collateral) for a chosen margin model.
* :mod:`marginkernel.testing.checker` -- for your own margin function: the invariants of its model
  class (row order, splitting, offsetting, homogeneity, subadditivity, monotonicity, IM >= MM >= 0,
  cash translation, determinism) and differential testing against the Engine, reporting a shrunk
  counterexample (docs/testing.md).
* :mod:`marginkernel.testing.pytest_plugin` -- pytest fixtures for the above.

Requires ``hypothesis`` (``pip install marginkernel[test]``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from types import ModuleType

from .. import kernels

__all__ = ["books", "checker", "invariants", "simd_targets", "strategies", "using_simd_target"]


def simd_targets() -> list[str]:
    """The SIMD targets compiled in and supported by this CPU, best first."""
    return list(kernels.available_simd_targets())


@contextlib.contextmanager
def using_simd_target(name: str) -> Iterator[str]:
    """Run the block with the kernels on SIMD target ``name``; the previous target is restored
    afterwards (also on error). Not thread-safe against concurrent kernel calls."""
    before = kernels.simd_target()
    kernels.select_simd_target(name)
    try:
        yield name
    finally:
        kernels.select_simd_target(before)


def __getattr__(name: str) -> ModuleType:  # lazy: importing marginkernel.testing does not import hypothesis
    if name in ("strategies", "invariants", "books", "checker"):
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(name)
