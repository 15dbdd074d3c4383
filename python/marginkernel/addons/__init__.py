"""Add-ons: margin components beside the scenario scan, each configured from its own TOML table.

A model file lists add-ons as tables ``[addons.<name>]``; ``type`` picks the kind (default: the
table's name), every other key is a parameter of that kind (checked: an unknown key, a wrong type or
an out-of-range value raises ``ValueError`` naming ``addons.<name>.<key>``)::

    [addons.roll_shock]                  # type defaults to the table name
    annualised_move_risk = { default = 0.075 }
    min_annualised_move = 0.01

    [addons.som]
    type = "short_option_minimum"
    rate = { default = 0.0, ES = 50.0 }

Every add-on computes one charge per (account, risk unit) *pair* of a book, in the risk unit's
settlement currency, from the book (positions), the instruments, the market, the per-instrument
deltas and the pair's scenario P&L. How the engine combines them is the add-on's ``combine``:

* ``"add"``: added to the scan risk (roll shock, delta shock, calendar spread charge, concentration,
  contingencies);
* ``"credit"``: subtracted, never below zero (inter-commodity spread credit);
* ``"floor"``: the requirement is at least this (short-option minimum, per-contract minimum).

Per node of the model's netting level (risk unit, settlement currency or account, see
:mod:`marginkernel.engine`): ``requirement = max(max(0, scan + sum(add) - sum(credit)), max(floor))``
where the pair charges are summed into their node (converted with the market's FX).

Layout: :mod:`.base` (the :class:`Context` and the :class:`AddOn` interface), :mod:`.params` (parsing
of the tables), :mod:`.conventions` (delta, contract size, notional, month), one module per family
(:mod:`.shocks`, :mod:`.minimums`, :mod:`.concentration`, :mod:`.contingency`, :mod:`.spreads`) and
:mod:`.registry` (``ADDONS``, :func:`build`, :func:`register`). ``tests/test_addons.py`` holds every
kind to hand-computed values and its vectorised ``compute`` to its plain-loop ``reference``.
"""

from __future__ import annotations

from .base import COMBINE, AddOn, Context, resolve_per_unit
from .concentration import Concentration
from .contingency import Contingency
from .conventions import KIND_NAMES, instrument_deltas, instrument_months, instrument_notional, instrument_units
from .minimums import PerContractMinimum, ShortOptionMinimum
from .params import Param
from .registry import ADDONS, build, register
from .shocks import DeltaShock, RollShock
from .spreads import TOL, InterSpread, IntraSpread, price_risk

__all__ = [
    "ADDONS",
    "COMBINE",
    "KIND_NAMES",
    "TOL",
    "AddOn",
    "Concentration",
    "Context",
    "Contingency",
    "DeltaShock",
    "InterSpread",
    "IntraSpread",
    "Param",
    "PerContractMinimum",
    "RollShock",
    "ShortOptionMinimum",
    "build",
    "instrument_deltas",
    "instrument_months",
    "instrument_notional",
    "instrument_units",
    "price_risk",
    "register",
    "resolve_per_unit",
]
