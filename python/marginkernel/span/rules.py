"""Clearing-house rules: how a SPAN requirement is finished from the file's figures.

The SPAN file fixes the arrays, spreads and short-option-minimum rates; clearing houses differ in
what they do with them -- whether the net option value is subtracted (``max(0, risk - NOV)``),
whether the short-option minimum applies, the order in which spreads are formed, the currency of
the totals. :class:`SpanRules` holds those choices; ``presets/*.toml`` holds one per clearing
house with the date and the published sources it follows (:func:`rules`, :func:`presets`).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from ..validation import table

_DIR = Path(__file__).with_name("presets")
_CHOICES = {"net_option_value": ("report", "subtract"), "spread_order": ("number", "file")}


@dataclass(frozen=True)
class SpanRules:
    """How :func:`marginkernel.span.margin` finishes a requirement.

    * ``net_option_value``: ``'report'`` -- the net option value (NOV = Σ quantity × option value) is
      reported beside the requirement, which is the SPAN risk; ``'subtract'`` -- requirement =
      max(0, risk − NOV) (long option value offsets risk, short option value adds to it).
    * ``short_option_minimum``: apply the file's ``somTiers`` rates (risk = max(..., SOM)).
    * ``spread_order``: form spreads by ``<spread>`` number (SPAN's priority) or in file order.
    * ``currency``: currency of ``by_account`` (converted with the file's ``curConv``); None keeps
      one row per account and currency.
    * ``whole_spreads``: form whole spreads only (default: deltas as fractions).

    ``name``, ``clearing_house``, ``as_of`` and ``sources`` document a preset."""

    name: str = "default"
    clearing_house: str = ""
    as_of: str = ""
    net_option_value: str = "report"
    short_option_minimum: bool = True
    spread_order: str = "number"
    currency: str | None = None
    whole_spreads: bool = False
    sources: tuple[str, ...] = ()
    notes: str = ""

    def __post_init__(self) -> None:
        for key, allowed in _CHOICES.items():
            if getattr(self, key) not in allowed:
                raise ValueError(f"rules.{key}: must be one of {allowed}, got {getattr(self, key)!r}")
        for key in ("short_option_minimum", "whole_spreads"):
            if not isinstance(getattr(self, key), bool):
                raise TypeError(f"rules.{key}: expected true or false, got {getattr(self, key)!r}")
        if self.currency is not None and not (isinstance(self.currency, str) and self.currency):
            raise TypeError(f"rules.currency: expected a currency code, got {self.currency!r}")


def from_mapping(data: Any, where: str = "rules") -> SpanRules:
    """SpanRules from a TOML/JSON table (unknown keys are errors naming them)."""
    data = dict(table(data, where))
    known = {f.name for f in fields(SpanRules)}
    for key in data:
        if key not in known:
            raise ValueError(f"{where}.{key}: unknown key (known: {', '.join(sorted(known))})")
    for key in ("name", "clearing_house", "as_of", "notes"):
        if key in data and not isinstance(data[key], str):
            raise TypeError(f"{where}.{key}: expected a string, got {data[key]!r}")
    if "as_of" in data:
        data["as_of"] = str(data["as_of"])
    if "sources" in data:
        if not isinstance(data["sources"], list) or not all(isinstance(s, str) for s in data["sources"]):
            raise TypeError(f"{where}.sources: expected a list of strings")
        data["sources"] = tuple(data["sources"])
    return SpanRules(**data)


def presets() -> list[str]:
    """Names of the clearing-house presets shipped with the package."""
    return sorted(p.stem for p in _DIR.glob("*.toml"))


def rules(name_or_path: str | Path) -> SpanRules:
    """The preset ``name`` (see :func:`presets`) or a TOML file with a ``[rules]`` table."""
    path = Path(name_or_path)
    if not path.suffix:
        path = _DIR / f"{name_or_path}.toml"
        if not path.is_file():
            raise ValueError(f"unknown SPAN rules preset {name_or_path!r} (known: {', '.join(presets())})")
    if not path.is_file():
        raise ValueError(f"{path}: not a regular file")
    with open(path, "rb") as fh:
        try:
            data = tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"{path}: malformed TOML: {exc}") from None
    if "rules" not in data:
        raise ValueError(f"{path}: missing [rules] table")
    return from_mapping(data["rules"], "rules")


def resolve(value: SpanRules | str | Path | None) -> SpanRules:
    """A SpanRules from an instance, a preset name / file, or None (the defaults)."""
    if value is None:
        return SpanRules()
    if isinstance(value, SpanRules):
        return value
    if isinstance(value, (str, Path)):
        return rules(value)
    raise TypeError(f"rules: expected SpanRules, a preset name or a path, got {type(value).__name__}")


__all__ = ["SpanRules", "from_mapping", "presets", "resolve", "rules"]
