"""Typed access to the fields of one XML element; every error names the element path and field.

Numbers go through :func:`marginkernel.validation.number` (finite, bounds); the messages keep the
reader's wording ``<where>/<tag>: not a number: 'x'``.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from typing import Any

from ..validation import NotANumber, number

_REQUIRED: Any = object()


def find(elem: ET.Element, tag: str, where: str) -> ET.Element:
    """The child ``tag`` of ``elem``, or ValueError ``<where>: missing <tag>``."""
    child = elem.find(tag)
    if child is None:
        raise ValueError(f"{where}: missing <{tag}>")
    return child


def text(elem: ET.Element, tag: str, where: str, default: Any = _REQUIRED) -> Any:
    """The stripped text of child ``tag``; ``default`` when absent or empty (required without one)."""
    child = elem.find(tag)
    if child is None or child.text is None or not child.text.strip():
        if default is _REQUIRED:
            raise ValueError(f"{where}: missing <{tag}>" if child is None else f"{where}/<{tag}>: empty")
        return default
    return child.text.strip()


def to_number(raw: str, where: str, **bounds: Any) -> float:
    """``raw`` (text) as a finite float within ``bounds`` (see validation.number)."""
    try:
        return number(raw, where, strings=True, **bounds)
    except NotANumber:
        raise ValueError(f"{where}: not a number: {raw!r}") from None


def num(elem: ET.Element, tag: str, where: str, default: Any = _REQUIRED, **bounds: Any) -> Any:
    """Child ``tag`` as a finite float (``default`` when absent; ``bounds`` as validation.number).

    The path string is built only on the error path: this runs a few times per contract."""
    child = elem.find(tag)
    raw = None if child is None else child.text
    if raw is None or not raw.strip():
        if default is _REQUIRED:
            raise ValueError(f"{where}: missing <{tag}>" if child is None else f"{where}/<{tag}>: empty")
        return default
    try:
        x = float(raw)
    except ValueError:
        raise ValueError(f"{where}/<{tag}>: not a number: {raw.strip()!r}") from None
    if bounds or not math.isfinite(x):
        return number(x, f"{where}/<{tag}>", **bounds)  # finiteness and bounds, with validation's messages
    return x


def integer(elem: ET.Element, tag: str, where: str, default: Any = _REQUIRED) -> Any:
    """Child ``tag`` as an integer (written as ``12`` or ``12.0``)."""
    raw = text(elem, tag, where, None if default is not _REQUIRED else _REQUIRED)
    if raw is None:
        return default
    value = to_number(raw, f"{where}/<{tag}>")
    if value != int(value):
        raise ValueError(f"{where}/<{tag}>: not an integer: {value!r}")
    return int(value)


def flag(elem: ET.Element, tag: str, where: str) -> bool:
    """An ``xs:boolean`` child (absent = false)."""
    raw = text(elem, tag, where, "0").lower()
    if raw not in ("0", "1", "true", "false"):
        raise ValueError(f"{where}/<{tag}>: expected a boolean (0, 1, true, false), got {raw!r}")
    return raw in ("1", "true")


def rate_r1(elem: ET.Element, tag: str, where: str) -> ET.Element | None:
    """The child ``tag`` whose ``<r>`` is 1 (SPAN's core rate), else the first one (or None)."""
    items = elem.findall(tag)
    for item in items:
        if text(item, "r", f"{where}/{tag}", "1") == "1":
            return item
    return items[0] if items else None


def children(elem: ET.Element) -> list[str]:
    """Tags of the children still attached to ``elem``."""
    return [c.tag for c in elem]


__all__ = ["children", "find", "flag", "integer", "num", "rate_r1", "text", "to_number"]
