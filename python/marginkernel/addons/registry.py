"""The add-on registry: type name -> class, and :func:`build` for an ``[addons.<name>]`` table."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .. import validation as v
from .base import AddOn
from .concentration import Concentration
from .contingency import Contingency
from .minimums import PerContractMinimum, ShortOptionMinimum
from .shocks import DeltaShock, RollShock
from .spreads import InterSpread, IntraSpread

ADDONS: dict[str, type[AddOn]] = {
    cls.type: cls
    for cls in (
        RollShock,
        DeltaShock,
        ShortOptionMinimum,
        PerContractMinimum,
        Concentration,
        Contingency,
        IntraSpread,
        InterSpread,
    )
}


def register(cls: type[AddOn]) -> type[AddOn]:
    """Add an add-on class to the registry under its ``type`` (usable as a class decorator)."""
    if not cls.type:
        raise ValueError(f"{cls.__name__}: an add-on class needs a non-empty 'type'")
    ADDONS[cls.type] = cls
    return cls


def build(name: str, table: Mapping[str, Any], where: str | None = None) -> AddOn:
    """The add-on of TOML table ``[addons.<name>]``; its ``type`` defaults to ``name``."""
    where = where or f"addons.{name}"
    table = v.table(table, where)
    kind = table.get("type", name)
    if not isinstance(kind, str):
        raise ValueError(f"{where}.type: expected a string, got {kind!r}")
    if kind not in ADDONS:
        raise ValueError(f"{where}.type: unknown add-on {kind!r}; known: {sorted(ADDONS)}")
    return ADDONS[kind](name, table, where=where)


__all__ = ["ADDONS", "build", "register"]
