"""Parsing of add-on tables: every key checked against the add-on's schema, errors name the key.

Numbers go through :mod:`marginkernel.validation` (so a wrong type is a ``NotANumber``, both a
``TypeError`` and a ``ValueError``); everything else is a ``ValueError`` naming
``addons.<name>.<key>`` (and the index inside arrays).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .. import validation as v
from ..spreads import Spread, SpreadLeg, Tier

REQUIRED: Any = object()


@dataclass(frozen=True)
class Param:
    """kind: number | per_unit | int | bool | str | strs | tiers | month_tiers | unit_tiers | spreads |
    inter_spreads. ``lo`` / ``hi`` bound numbers; ``choices`` bound strings; ``allow_inf`` admits +inf
    (an "unlimited" setting, e.g. a threshold)."""

    kind: str
    default: Any = REQUIRED
    lo: float | None = None
    hi: float | None = None
    choices: tuple[str, ...] = ()
    doc: str = ""
    allow_inf: bool = False


def string(value: Any, where: str, choices: Sequence[str] = ()) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{where}: expected a string, got {value!r}")
    if choices and value not in choices:
        raise ValueError(f"{where}: must be one of {list(choices)}, got {value!r}")
    return value


def array(value: Any, where: str) -> list[Any]:
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sequence):
        raise ValueError(f"{where}: expected an array, got {value!r}")
    return list(value)


def keys(table: Mapping[str, Any], known: Sequence[str], where: str, required: Sequence[str] = ()) -> None:
    for key in table:
        if key not in known:
            raise ValueError(f"{where}.{key}: unknown key; known: {sorted(known)}")
    for key in required:
        if key not in table:
            raise ValueError(f"{where}.{key}: missing")


def tier_list(value: Any, where: str) -> tuple[tuple[float, float], ...]:
    """[[start, value], ...] with start >= 0 strictly increasing (the first start is 0 if omitted)."""
    rows = array(value, where)
    if not rows:
        raise ValueError(f"{where}: needs at least one [start, value] pair")
    out: list[tuple[float, float]] = []
    for k, raw in enumerate(rows):
        row = array(raw, f"{where}[{k}]")
        if len(row) != 2:
            raise ValueError(f"{where}[{k}]: expected [start, value], got {row!r}")
        start = v.number(row[0], f"{where}[{k}][0]", lo=0.0)
        rate = v.number(row[1], f"{where}[{k}][1]", lo=0.0)
        if out and start <= out[-1][0]:
            raise ValueError(f"{where}[{k}][0]: starts must increase, got {start} after {out[-1][0]}")
        out.append((start, rate))
    return tuple(out)


def month(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    s = string(value, where).replace("-", "")
    if len(s) != 6 or not s.isdigit():
        raise ValueError(f"{where}: expected a month 'YYYYMM' or 'YYYY-MM', got {value!r}")
    return s


def month_tiers(value: Any, where: str) -> tuple[Tier, ...]:
    """[{tier = 1, start = "2026-12", end = "2027-03"}, ...] -> Tier (open bounds when omitted)."""
    out = []
    for k, raw in enumerate(array(value, where)):
        w = f"{where}[{k}]"
        t = v.table(raw, w)
        keys(t, ("tier", "start", "end"), w, ("tier",))
        out.append(
            Tier(
                v.integer(t["tier"], f"{w}.tier", lo=0),
                month(t.get("start"), f"{w}.start"),
                month(t.get("end"), f"{w}.end"),
            )
        )
    numbers = [t.number for t in out]
    if len(set(numbers)) != len(numbers):
        raise ValueError(f"{where}: tier numbers must be unique, got {numbers}")
    return tuple(out)


def _leg(raw: Any, where: str, inter: bool) -> SpreadLeg:
    leg = v.table(raw, where)
    known = ("unit", "tier", "side", "ratio") if inter else ("tier", "side", "ratio")
    keys(leg, known, where, ("unit", "side") if inter else ("tier", "side"))
    return SpreadLeg(
        cc=string(leg["unit"], f"{where}.unit") if inter else "",
        tier=v.integer(leg.get("tier", 0), f"{where}.tier", lo=0),
        side=string(leg["side"], f"{where}.side", ("A", "B")),
        ratio=v.number(leg.get("ratio", 1.0), f"{where}.ratio", positive=True),
    )


def spreads(value: Any, where: str, inter: bool) -> tuple[Spread, ...]:
    """[{rate = .., legs = [{tier, side, ratio} (+ unit for inter)]}, ...] -> Spread."""
    out = []
    rows = array(value, where)
    if not rows:
        raise ValueError(f"{where}: needs at least one spread")
    for k, raw in enumerate(rows):
        w = f"{where}[{k}]"
        s = v.table(raw, w)
        keys(s, ("rate", "legs"), w, ("rate", "legs"))
        rate = v.number(s["rate"], f"{w}.rate", lo=0.0, hi=1.0 if inter else None)
        leg_rows = array(s["legs"], f"{w}.legs")
        if len(leg_rows) < 2:
            raise ValueError(f"{w}.legs: a spread needs at least two legs, got {len(leg_rows)}")
        legs = [_leg(leg, f"{w}.legs[{j}]", inter) for j, leg in enumerate(leg_rows)]
        if not inter and len({leg.tier for leg in legs}) == 1 and (len(legs) != 2 or legs[0].side == legs[1].side):
            raise ValueError(f"{w}.legs: legs in one tier must be two, one on side A and one on side B")
        if {leg.side for leg in legs} != {"A", "B"}:
            raise ValueError(f"{w}.legs: a spread needs legs on both sides A and B")
        out.append(
            Spread(
                number=k + 1,
                charge_method="W" if inter else "F",
                rate=rate,
                legs=tuple(legs),
                cc=None if inter else "*",
            )
        )
    return tuple(out)


def _strs(value: Any, where: str, choices: Sequence[str]) -> tuple[str, ...]:
    out = tuple(string(x, f"{where}[{k}]", choices) for k, x in enumerate(array(value, where)))
    if not out:
        raise ValueError(f"{where}: must not be empty")
    return out


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{where}: expected true or false, got {value!r}")
    return value


def _value(p: Param, value: Any, where: str) -> Any:
    if p.kind == "number":
        return v.number(value, where, lo=p.lo, hi=p.hi, allow_inf=p.allow_inf)
    if p.kind == "per_unit":
        return v.per_key(value, where, lo=p.lo, hi=p.hi, allow_inf=p.allow_inf)
    if p.kind == "int":
        return v.integer(value, where, lo=None if p.lo is None else int(p.lo))
    if p.kind == "bool":
        return _bool(value, where)
    if p.kind == "str":
        return string(value, where, p.choices)
    if p.kind == "strs":
        return _strs(value, where, p.choices)
    if p.kind == "tiers":
        return tier_list(value, where)
    if p.kind == "month_tiers":
        return month_tiers(value, where)
    if p.kind == "unit_tiers":
        return {str(u): month_tiers(t, f"{where}.{u}") for u, t in v.table(value, where).items()}
    if p.kind in ("spreads", "inter_spreads"):
        return spreads(value, where, inter=p.kind == "inter_spreads")
    raise AssertionError(p.kind)  # pragma: no cover - schema error


def parse(schema: Mapping[str, Param], table: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The add-on's configuration: every key of ``table`` checked against ``schema``, defaults filled."""
    for key in table:
        if key not in schema:
            raise ValueError(f"{where}.{key}: unknown key; known: {sorted(['type', *schema])}")
    out: dict[str, Any] = {}
    for key, p in schema.items():
        w = f"{where}.{key}"
        if key in table:
            out[key] = _value(p, table[key], w)
        elif p.default is REQUIRED:
            raise ValueError(f"{w}: missing")
        else:
            out[key] = p.default
    return out


__all__ = ["REQUIRED", "Param", "array", "keys", "month", "month_tiers", "parse", "spreads", "string", "tier_list"]
