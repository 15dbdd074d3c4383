"""High-level engine: instruments + market + model -> margin per account, as DataFrames.

The engine revalues every instrument once on construction (the risk arrays R[i, s], shared by all
accounts) and then nets and reduces any number of books against that cache.

Netting hierarchy (``[model] netting``): instrument -> risk unit -> settlement currency -> account.

* ``risk_unit``: the worst weighted loss of each risk unit's scenario P&L, summed in USD;
* ``currency``: per settlement currency, the units' weighted P&L summed scenario by scenario (gains of
  each unit scaled by its ``gain_factor`` and the summed gain credit capped at ``gain_cap``), then
  the worst loss per currency, summed in USD (Deribit's segregated portfolio margin);
* ``account``: per currency as above with full netting, then the currencies' P&L in USD summed
  scenario by scenario with each currency's gains scaled by its ``gain_factor`` (Deribit
  ``pnl_offset``) and capped at ``gain_cap``; one worst loss per account (cross portfolio margin).

Margin modes: ``cross`` nets all of an account's positions as above; ``isolated`` margins each
position alone (its own P&L vector, its own add-ons) and sums. The mode is the model's ``mode``, or
per position with a ``margin_mode`` column of the positions.

Per node of the netting level, add-ons (:mod:`marginkernel.addons`) combine with the scan risk:
``requirement = max(max(0, scan + adds - credits), max(floors))``; IM = ``im_factor`` x requirement,
MM = ``mm_factor`` x requirement. Collateral (per account and currency, with the model's haircuts)
gives equity, margin ratio (MM / equity) and a liquidation flag (equity < MM).

Modules: :mod:`.positions` (parsing and aggregation), :mod:`.netting` (pairs, nodes, scan risk),
:mod:`.results` (add-ons combined, result frames), :mod:`.expiry` (the expiry rule), :mod:`.core`
(the :class:`Engine`).
"""

from __future__ import annotations

from .core import Engine, Evaluation, engine_from_frames
from .expiry import EXPIRED
from .netting import Netting, Nodes, Pairs
from .positions import MODE_COLUMN, UPNL_COLUMN, Book, Positions
from .results import MarginResult, Requirement

__all__ = [
    "EXPIRED",
    "MODE_COLUMN",
    "UPNL_COLUMN",
    "Book",
    "Engine",
    "Evaluation",
    "MarginResult",
    "Netting",
    "Nodes",
    "Pairs",
    "Positions",
    "Requirement",
    "engine_from_frames",
]
