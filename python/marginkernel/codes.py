"""Integer codes shared by the C++ core and Python: the one definition on the Python side.

They mirror ``cpp/include/marginkernel/types.hpp`` (``Kind``, ``Settlement``, ``VolShockKind``);
``tests/test_codes.py`` holds the two to each other.
"""

from __future__ import annotations

from enum import IntEnum


class Kind(IntEnum):
    """Instrument kind (``InstrumentsView::kind``)."""

    FUTURE = 0
    PERPETUAL = 1
    CALL = 2
    PUT = 3
    SPOT = 4


class Settlement(IntEnum):
    """Settlement currency of a contract: the quote currency (linear) or the base coin (inverse)."""

    LINEAR = 0
    INVERSE = 1


class VolShock(IntEnum):
    """How a scenario's vol shift changes an implied vol (``ScenariosView::vol_shock``)."""

    NONE = 0
    MULTIPLICATIVE = 1
    ADDITIVE = 2
    RELATIVE = 3


#: name -> code, as written in instrument records and model files
KINDS: dict[str, int] = {k.name.lower(): int(k) for k in Kind}
SETTLEMENTS: dict[str, int] = {s.name.lower(): int(s) for s in Settlement}
VOL_SHOCKS: dict[str, int] = {v.name.lower(): int(v) for v in VolShock}

FUTURE, PERPETUAL, CALL, PUT, SPOT = (int(k) for k in Kind)
LINEAR, INVERSE = (int(s) for s in Settlement)

__all__ = [
    "CALL",
    "FUTURE",
    "INVERSE",
    "KINDS",
    "LINEAR",
    "PERPETUAL",
    "PUT",
    "SETTLEMENTS",
    "SPOT",
    "VOL_SHOCKS",
    "Kind",
    "Settlement",
    "VolShock",
]
