"""Margin optimisation with HiGHS: hedges (LP / MILP), liquidation plans and allocation.

SciPy (HiGHS) is imported when a problem is solved, not on ``import marginkernel``.
"""

from __future__ import annotations

from .hedge import HedgeResult, hedge

__all__ = ["HedgeResult", "hedge"]
