"""Tools for testing margin models and kernels: hypothesis strategies and invariant checks.

* :mod:`marginkernel.testing.strategies` -- hypothesis strategies for instruments (linear and
  inverse futures, perpetuals, calls, puts, spot), markets, scenario grids, sparse positions (CSR)
  and P&L matrices, with bounded, documented ranges.
* :mod:`marginkernel.testing.invariants` -- checks (permutation invariance, homogeneity,
  subadditivity, put-call parity, the inverse/linear identity, ...) that take any kernels-like
  object (:mod:`marginkernel.kernels`, :mod:`marginkernel.reference` or your own) and assert.

Requires ``hypothesis`` (``pip install marginkernel[test]``).
"""

from __future__ import annotations

import contextlib

from .. import kernels

__all__ = ["simd_targets", "using_simd_target", "strategies", "invariants"]


def simd_targets() -> list[str]:
    """The SIMD targets compiled in and supported by this CPU, best first."""
    return list(kernels.available_simd_targets())


@contextlib.contextmanager
def using_simd_target(name: str):
    """Run the block with the kernels on SIMD target ``name``; the previous target is restored
    afterwards (also on error). Not thread-safe against concurrent kernel calls."""
    before = kernels.simd_target()
    kernels.select_simd_target(name)
    try:
        yield name
    finally:
        kernels.select_simd_target(before)


def __getattr__(name):  # lazy: importing marginkernel.testing does not import hypothesis
    if name in ("strategies", "invariants"):
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(name)
