"""Structure helpers for the portfolio-case JSON and the preset TOML: every error names the field.

Numbers go through :func:`marginkernel.validation.number`; these helpers only check the shape
(objects, lists, flags, whole seconds) around them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..validation import NotANumber, integer, number


def need(obj: Any, key: str, where: str) -> Any:
    """``obj[key]``, or an error naming ``where.key`` (``where`` when ``obj`` is not an object)."""
    if not isinstance(obj, Mapping):
        raise ValueError(f"{where}: expected an object, got {type(obj).__name__}")
    if key not in obj:
        raise ValueError(f"{where}.{key}: missing")
    return obj[key]


def num(
    obj: Any,
    key: str,
    where: str,
    *,
    default: float | None = None,
    lo: float | None = None,
    hi: float | None = None,
    positive: bool = False,
) -> float:
    """A finite float from a JSON number or numeric string at ``obj[key]``."""
    if default is not None and isinstance(obj, Mapping) and key not in obj:
        return float(default)
    return number(need(obj, key, where), f"{where}.{key}", lo=lo, hi=hi, positive=positive, strings=True)


def signed(obj: Any, key: str, where: str, bound: float) -> float:
    """A finite float with ``|x| <= bound``."""
    return num(obj, key, where, lo=-bound, hi=bound)


def flag(obj: Any, key: str, where: str) -> bool:
    """A JSON boolean, or 0 / 1."""
    raw = need(obj, key, where)
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, (int, float)) and raw in (0, 1):
        return bool(raw)
    raise ValueError(f"{where}.{key}: expected a boolean or 0/1, got {raw!r}")


def seconds(obj: Any, key: str, where: str, hi: float) -> int:
    """Whole seconds in [0, hi] (a JSON integer, or an integral float / numeric string)."""
    raw = need(obj, key, where)
    value = number(raw, f"{where}.{key}", lo=0.0, hi=hi, strings=True)
    if value != int(value):
        raise ValueError(f"{where}.{key}: expected whole seconds, got {raw!r}")
    return integer(int(value), f"{where}.{key}")


def array(obj: Any, key: str, where: str) -> list[Any]:
    """A JSON list at ``obj[key]``."""
    raw = need(obj, key, where)
    if not isinstance(raw, list):
        raise ValueError(f"{where}.{key}: expected a list, got {type(raw).__name__}")
    return raw


__all__ = ["NotANumber", "array", "flag", "need", "num", "seconds", "signed"]
