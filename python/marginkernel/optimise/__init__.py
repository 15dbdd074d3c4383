"""Margin optimisation with HiGHS: hedges (LP / MILP), liquidation plans and allocation.

SciPy (HiGHS) is imported when a problem is solved, not on ``import marginkernel``.
"""

from __future__ import annotations

from .allocate import Allocation, allocate
from .hedge import HedgeResult, hedge
from .liquidate import LiquidationPlan, liquidation_plan

__all__ = ["Allocation", "HedgeResult", "LiquidationPlan", "allocate", "hedge", "liquidation_plan"]
