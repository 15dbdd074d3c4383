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

Conventions used by several add-ons, per unit of instrument i of risk unit u:

* ``delta_i`` (:func:`instrument_deltas`): exposure in units of the underlying (coins for crypto):
  futures, perpetuals and linear spot: ``multiplier`` (inverse futures / perpetuals:
  ``multiplier / F``, the coin size of a USD notional); inverse spot: 0 (a coin held in its own
  currency has no coin P&L); options: the Black-76 forward delta times the multiplier,
  ``df * N(d1)`` for calls and ``df * (N(d1) - 1)`` for puts (intrinsic 1/0 when sigma*sqrt(T) = 0),
  the same for inverse options (their delta in coin, not premium adjusted). USD delta = delta * S_u.
* ``units_i``: contract size in units of the underlying: ``multiplier`` (inverse futures and
  perpetuals: ``multiplier / F``).
* ``notional_i``: contract notional in settlement currency: ``units_i * F_i`` for linear instruments,
  ``units_i`` (coins) for inverse ones.

Every kind has a vectorised :meth:`AddOn.compute` (NumPy, ``bincount`` over positions; no Python
loop over accounts or positions) and a plain loop :meth:`AddOn.reference` that states its semantics
one position at a time; ``tests/test_addons.py`` holds each to hand-computed values and the two to
each other. The SPAN spread add-ons' reference is :func:`marginkernel.spreads.form_intra_spread` itself.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, ClassVar

import numpy as np

from . import kernels
from .spreads import Spread, SpreadLeg, Tier, consume, form_intra_spread

__all__ = [
    "AddOn", "Context", "ADDONS", "COMBINE", "build", "instrument_deltas", "instrument_units",
    "instrument_notional", "instrument_months", "price_risk",
    "RollShock", "DeltaShock", "ShortOptionMinimum", "PerContractMinimum", "Concentration",
    "Contingency", "IntraSpread", "InterSpread",
]

COMBINE = ("add", "credit", "floor")
KIND_NAMES = ("future", "perpetual", "call", "put", "spot")
FUTURE, PERPETUAL, CALL, PUT, SPOT = range(5)
LINEAR, INVERSE = 0, 1
#: deltas of this size or less count as zero when forming spreads (as in marginkernel.span)
TOL = 1e-9


# ------------------------------------------------------------------------------------------------
# instrument conventions
# ------------------------------------------------------------------------------------------------


def instrument_units(kind, settlement, multiplier, forward) -> np.ndarray:
    """Contract size in units of the underlying: the multiplier; inverse futures, perpetuals and spot
    ``multiplier / F`` (their multiplier is a USD notional)."""
    kind, settlement = np.asarray(kind), np.asarray(settlement)
    mult, fwd = np.asarray(multiplier, float), np.asarray(forward, float)
    linear_like = (kind == CALL) | (kind == PUT) | (settlement == LINEAR)
    return np.where(linear_like, mult, mult / fwd)


def instrument_notional(kind, settlement, multiplier, forward) -> np.ndarray:
    """Contract notional in settlement currency: ``units * F`` (linear) or ``units`` coins (inverse)."""
    units = instrument_units(kind, settlement, multiplier, forward)
    return np.where(np.asarray(settlement) == LINEAR, units * np.asarray(forward, float), units)


def instrument_deltas(kind, settlement, multiplier, forward, strike, vol, expiry, discount) -> np.ndarray:
    """Delta per unit of instrument in units of the underlying (see the module docstring)."""
    kind, settlement = np.asarray(kind), np.asarray(settlement)
    units = instrument_units(kind, settlement, multiplier, forward)
    delta = np.where((kind == SPOT) & (settlement == INVERSE), 0.0, units)
    opt = (kind == CALL) | (kind == PUT)
    if opt.any():
        f = np.asarray(forward, float)[opt]
        k = np.asarray(strike, float)[opt]
        t = np.maximum(np.asarray(expiry, float)[opt], 0.0)
        sd = np.asarray(vol, float)[opt] * np.sqrt(t)
        with np.errstate(divide="ignore", invalid="ignore"):
            d1 = np.where(sd > 0, (np.log(f / k) + 0.5 * sd * sd) / sd, np.sign(f - k) * np.inf)
        n1 = np.where(np.isnan(d1), 0.5, kernels.normal_cdf(np.nan_to_num(d1, posinf=40.0, neginf=-40.0)))
        df = np.asarray(discount, float)[opt]
        call = kind[opt] == CALL
        delta[opt] = np.asarray(multiplier, float)[opt] * df * np.where(call, n1, n1 - 1.0)
    return delta


def instrument_months(expiry) -> np.ndarray:
    """Contract month ``"YYYYMM"`` (UTC) of each expiry (epoch seconds); ``"000000"`` for none."""
    out = np.full(len(expiry), "000000", dtype=object)
    for k, e in enumerate(np.asarray(expiry, float)):
        if math.isfinite(e):
            out[k] = datetime.fromtimestamp(e, tz=timezone.utc).strftime("%Y%m")
    return out


# ------------------------------------------------------------------------------------------------
# the context an add-on computes from
# ------------------------------------------------------------------------------------------------


@dataclass(eq=False)
class Context:
    """Everything an add-on may use, for one book. Pairs are (account, risk unit) combinations held
    by the book (in isolated mode: one pair per position), sorted by account then unit; positions
    are aggregated (one row per account / pair and instrument, quantity != 0)."""

    # per instrument (n,)
    kind: np.ndarray
    settlement: np.ndarray
    multiplier: np.ndarray
    forward: np.ndarray
    expiry_years: np.ndarray
    unit_of_row: np.ndarray
    delta: np.ndarray
    units: np.ndarray
    notional: np.ndarray
    month: np.ndarray
    # per risk unit (U,)
    unit_names: list
    unit_underlying: list
    unit_currency: list
    unit_spot: np.ndarray
    unit_fx: np.ndarray
    # scenarios
    price_multiplier: np.ndarray  # (U, S)
    vol_shift: np.ndarray  # (U, S)
    weight: np.ndarray  # (U, S)
    # positions (k,)
    pos_pair: np.ndarray
    pos_instrument: np.ndarray
    pos_quantity: np.ndarray
    # pairs (P,)
    pair_account: np.ndarray  # account (pseudo-account in isolated mode) index
    pair_unit: np.ndarray
    pair_pnl: np.ndarray  # (P, S) scenario P&L, settlement currency, unweighted
    pair_scan: np.ndarray  # weighted worst loss of the pair alone
    pair_worst: np.ndarray
    n_accounts: int
    shared: dict = field(default_factory=dict)  # state add-ons hand to later ones (e.g. spread deltas)

    @property
    def n_pairs(self) -> int:
        return len(self.pair_unit)

    @property
    def n_units(self) -> int:
        return len(self.unit_names)

    @property
    def pos_unit(self) -> np.ndarray:
        return self.unit_of_row[self.pos_instrument]

    def per_pair(self, values, where=None) -> np.ndarray:
        """Sum of per-position ``values`` per pair (``where``: a mask of the positions to count)."""
        values = np.asarray(values, float)
        if where is None:
            return np.bincount(self.pos_pair, values, minlength=self.n_pairs)
        return np.bincount(self.pos_pair[where], values[where], minlength=self.n_pairs)

    def pair_index(self, account: np.ndarray, unit: int) -> np.ndarray:
        """Pair of (account, unit) for each account, -1 where the account does not hold the unit."""
        keys = self.pair_account.astype(np.int64) * self.n_units + self.pair_unit
        want = np.asarray(account, np.int64) * self.n_units + unit
        pos = np.searchsorted(keys, want)
        pos_c = np.minimum(pos, max(len(keys) - 1, 0))
        found = (pos < len(keys)) & (keys[pos_c] == want) if len(keys) else np.zeros(len(want), bool)
        return np.where(found, pos_c, -1)


# ------------------------------------------------------------------------------------------------
# parameter schema
# ------------------------------------------------------------------------------------------------

_REQUIRED = object()


@dataclass(frozen=True)
class Param:
    """kind: number | per_unit | int | bool | str | strs | tiers | spreads | unit_tiers."""

    kind: str
    default: Any = _REQUIRED
    lo: float | None = None
    hi: float | None = None
    choices: tuple = ()
    doc: str = ""


def _is_number(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def _number(v, where: str, lo=None, hi=None) -> float:
    if not _is_number(v):
        raise ValueError(f"{where}: expected a number, got {v!r}")
    x = float(v)
    if math.isnan(x) or (math.isinf(x) and not (hi is None and x > 0)):
        raise ValueError(f"{where}: must be finite, got {v!r}")
    if lo is not None and x < lo:
        raise ValueError(f"{where}: must be >= {lo}, got {v!r}")
    if hi is not None and x > hi:
        raise ValueError(f"{where}: must be <= {hi}, got {v!r}")
    return x


def _int(v, where: str, lo=None) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise ValueError(f"{where}: expected an integer, got {v!r}")
    if lo is not None and v < lo:
        raise ValueError(f"{where}: must be >= {lo}, got {v!r}")
    return int(v)


def _str(v, where: str, choices=()) -> str:
    if not isinstance(v, str):
        raise ValueError(f"{where}: expected a string, got {v!r}")
    if choices and v not in choices:
        raise ValueError(f"{where}: must be one of {list(choices)}, got {v!r}")
    return v


def _table(v, where: str) -> Mapping:
    if not isinstance(v, Mapping):
        raise ValueError(f"{where}: expected a table, got {v!r}")
    return v


def _list(v, where: str) -> list:
    if isinstance(v, (str, bytes, Mapping)) or not isinstance(v, Sequence):
        raise ValueError(f"{where}: expected an array, got {v!r}")
    return list(v)


def _keys(table: Mapping, known: Sequence[str], where: str, required: Sequence[str] = ()) -> None:
    for key in table:
        if key not in known:
            raise ValueError(f"{where}.{key}: unknown key; known: {sorted(known)}")
    for key in required:
        if key not in table:
            raise ValueError(f"{where}.{key}: missing")


def _tier_list(v, where: str) -> tuple[tuple[float, float], ...]:
    """[[start, value], ...] with start >= 0 strictly increasing (the first start is 0 if omitted)."""
    rows = _list(v, where)
    if not rows:
        raise ValueError(f"{where}: needs at least one [start, value] pair")
    out = []
    for k, row in enumerate(rows):
        row = _list(row, f"{where}[{k}]")
        if len(row) != 2:
            raise ValueError(f"{where}[{k}]: expected [start, value], got {row!r}")
        start = _number(row[0], f"{where}[{k}][0]", lo=0.0)
        value = _number(row[1], f"{where}[{k}][1]", lo=0.0)
        if out and start <= out[-1][0]:
            raise ValueError(f"{where}[{k}][0]: starts must increase, got {start} after {out[-1][0]}")
        out.append((start, value))
    return tuple(out)


def _month(v, where: str) -> str | None:
    if v is None:
        return None
    if isinstance(v, int) and not isinstance(v, bool):
        v = str(v)
    s = _str(v, where).replace("-", "")
    if len(s) != 6 or not s.isdigit():
        raise ValueError(f"{where}: expected a month 'YYYYMM' or 'YYYY-MM', got {v!r}")
    return s


def _tiers(v, where: str) -> tuple[Tier, ...]:
    """[{tier = 1, start = "2026-12", end = "2027-03"}, ...] -> span.Tier (open bounds when omitted)."""
    out = []
    for k, t in enumerate(_list(v, where)):
        w = f"{where}[{k}]"
        t = _table(t, w)
        _keys(t, ("tier", "start", "end"), w, ("tier",))
        out.append(Tier(_int(t["tier"], f"{w}.tier", lo=0), _month(t.get("start"), f"{w}.start"),
                        _month(t.get("end"), f"{w}.end")))
    numbers = [t.number for t in out]
    if len(set(numbers)) != len(numbers):
        raise ValueError(f"{where}: tier numbers must be unique, got {numbers}")
    return tuple(out)


def _spreads(v, where: str, inter: bool) -> tuple[Spread, ...]:
    """[{rate = .., legs = [{tier, side, ratio} (+ unit for inter)]}, ...] -> span.Spread."""
    out = []
    rows = _list(v, where)
    if not rows:
        raise ValueError(f"{where}: needs at least one spread")
    for k, s in enumerate(rows):
        w = f"{where}[{k}]"
        s = _table(s, w)
        _keys(s, ("rate", "legs"), w, ("rate", "legs"))
        rate = _number(s["rate"], f"{w}.rate", lo=0.0, hi=1.0 if inter else None)
        legs = []
        leg_rows = _list(s["legs"], f"{w}.legs")
        if len(leg_rows) < 2:
            raise ValueError(f"{w}.legs: a spread needs at least two legs, got {len(leg_rows)}")
        for j, leg in enumerate(leg_rows):
            lw = f"{w}.legs[{j}]"
            leg = _table(leg, lw)
            known = ("unit", "tier", "side", "ratio") if inter else ("tier", "side", "ratio")
            _keys(leg, known, lw, ("unit", "side") if inter else ("tier", "side"))
            legs.append(SpreadLeg(
                cc=_str(leg["unit"], f"{lw}.unit") if inter else "",
                tier=_int(leg.get("tier", 0), f"{lw}.tier", lo=0),
                side=_str(leg["side"], f"{lw}.side", ("A", "B")),
                ratio=_number(leg.get("ratio", 1.0), f"{lw}.ratio", lo=0.0),
            ))
            if legs[-1].ratio <= 0:
                raise ValueError(f"{lw}.ratio: must be > 0, got {legs[-1].ratio}")
        if not inter and len({leg.tier for leg in legs}) == 1 and (
                len(legs) != 2 or legs[0].side == legs[1].side):
            raise ValueError(f"{w}.legs: legs in one tier must be two, one on side A and one on side B")
        if not {leg.side for leg in legs} == {"A", "B"}:
            raise ValueError(f"{w}.legs: a spread needs legs on both sides A and B")
        out.append(Spread(number=k + 1, charge_method="W" if inter else "F", rate=rate, legs=tuple(legs),
                          cc=None if inter else "*"))
    return tuple(out)


def _per_unit_spec(v, where: str, lo=None, hi=None):
    """A number or a table of numbers keyed by risk unit or underlying, with optional 'default'."""
    if isinstance(v, Mapping):
        out = {}
        for key, x in v.items():
            out[str(key)] = _number(x, f"{where}.{key}", lo, hi)
        return out
    return _number(v, where, lo, hi)


def _parse(spec: Mapping[str, Param], table: Mapping, where: str) -> dict:
    for key in table:
        if key not in spec:
            raise ValueError(f"{where}.{key}: unknown key; known: {sorted(['type', *spec])}")
    out = {}
    for key, p in spec.items():
        w = f"{where}.{key}"
        if key not in table:
            if p.default is _REQUIRED:
                raise ValueError(f"{w}: missing")
            out[key] = p.default
            continue
        v = table[key]
        if p.kind == "number":
            out[key] = _number(v, w, p.lo, p.hi)
        elif p.kind == "per_unit":
            out[key] = _per_unit_spec(v, w, p.lo, p.hi)
        elif p.kind == "int":
            out[key] = _int(v, w, p.lo)
        elif p.kind == "bool":
            if not isinstance(v, bool):
                raise ValueError(f"{w}: expected true or false, got {v!r}")
            out[key] = v
        elif p.kind == "str":
            out[key] = _str(v, w, p.choices)
        elif p.kind == "strs":
            items = _list(v, w)
            out[key] = tuple(_str(x, f"{w}[{k}]", p.choices) for k, x in enumerate(items))
            if not out[key]:
                raise ValueError(f"{w}: must not be empty")
        elif p.kind == "tiers":
            out[key] = _tier_list(v, w)
        elif p.kind == "month_tiers":
            out[key] = _tiers(v, w)
        elif p.kind == "unit_tiers":
            out[key] = {str(u): _tiers(t, f"{w}.{u}") for u, t in _table(v, w).items()}
        elif p.kind in ("spreads", "inter_spreads"):
            out[key] = _spreads(v, w, inter=p.kind == "inter_spreads")
        else:  # pragma: no cover - schema error
            raise AssertionError(p.kind)
    return out


def resolve_per_unit(spec, unit_names: Sequence[str], unit_underlying: Sequence[str], where: str) -> np.ndarray:
    """Per risk unit value of a per_unit parameter: by unit name, then underlying, then 'default'."""
    if not isinstance(spec, Mapping):
        return np.full(len(unit_names), float(spec))
    out = np.empty(len(unit_names))
    for k, (name, under) in enumerate(zip(unit_names, unit_underlying)):
        if name in spec:
            out[k] = spec[name]
        elif under in spec:
            out[k] = spec[under]
        elif "default" in spec:
            out[k] = spec["default"]
        else:
            raise ValueError(f"{where}: no value for risk unit {name!r} (underlying {under!r}) and no 'default'")
    return out


def _tiered(x: np.ndarray, tiers: Sequence[tuple[float, float]]) -> np.ndarray:
    """sum_k value_k * overlap(x, [start_k, start_{k+1})): marginal rates (or multipliers) by tier;
    below the first start nothing counts."""
    x = np.asarray(x, float)
    out = np.zeros_like(x)
    for k, (start, value) in enumerate(tiers):
        end = tiers[k + 1][0] if k + 1 < len(tiers) else np.inf
        out += value * np.clip(x - start, 0.0, end - start)
    return out


def _tiered_scalar(x: float, tiers) -> float:
    total = 0.0
    for k, (start, value) in enumerate(tiers):
        end = tiers[k + 1][0] if k + 1 < len(tiers) else math.inf
        total += value * min(max(x - start, 0.0), end - start)
    return total


# ------------------------------------------------------------------------------------------------
# the add-on interface
# ------------------------------------------------------------------------------------------------


class AddOn:
    """Base class. Subclasses set ``type``, ``combine``, ``params`` (the schema) and implement
    :meth:`compute` (vectorised) and :meth:`reference` (plain loops, the definition)."""

    type: ClassVar[str] = ""
    combine: ClassVar[str] = "add"
    params: ClassVar[dict[str, Param]] = {}
    per_unit: ClassVar[tuple[str, ...]] = ()  # parameters resolved per risk unit

    def __init__(self, name: str, table: Mapping | None = None, *, where: str | None = None):
        self.name = name
        self.where = where or f"addons.{name}"
        self.config = _parse(self.params, {k: v for k, v in (table or {}).items() if k != "type"}, self.where)
        self.check()

    def check(self) -> None:
        """Cross-parameter checks (raise ValueError naming the key)."""

    def resolve(self, unit_names, unit_underlying) -> dict:
        """Parameters with the per-unit ones as arrays over the engine's risk units."""
        out = dict(self.config)
        for key in self.per_unit:
            out[key] = resolve_per_unit(self.config[key], unit_names, unit_underlying, f"{self.where}.{key}")
        return out

    def compute(self, ctx: Context, p: dict) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def reference(self, ctx: Context, p: dict) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def __call__(self, ctx: Context) -> np.ndarray:
        return self.compute(ctx, self.resolve(ctx.unit_names, ctx.unit_underlying))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, {self.config})"


def _kind_mask(kinds: Sequence[str]) -> np.ndarray:
    return np.array([k in kinds for k in KIND_NAMES])


def _per_contract(ctx: Context, p: dict, i: np.ndarray) -> np.ndarray:
    """Settlement-currency units per unit of a per-contract amount given in ``p["currency"]``."""
    if p["currency"] == "USD":
        return 1.0 / ctx.unit_fx[ctx.unit_of_row[i]]
    return np.ones(len(i))


class RollShock(AddOn):
    """Roll / basis shock (Deribit "roll shock", OKX "basis risk" MR4), combine = add.

    Per pair: ``sum_k |q_k| * notional_k * max(min_annualised_move_u, annualised_move_risk_u * T_k)``
    over positions k of the kinds listed (default futures and perpetuals), T_k the years to expiry
    (0 for perpetuals). For a coin-settled perpetual this is |position in coin| x min annualised move.
    """

    type = "roll_shock"
    combine = "add"
    params = {
        "annualised_move_risk": Param("per_unit", 0.0, lo=0.0, doc="annualised move of the basis, per year to expiry"),
        "min_annualised_move": Param("per_unit", 0.0, lo=0.0, doc="floor of the move (fraction of notional)"),
        "kinds": Param("strs", ("future", "perpetual"), choices=KIND_NAMES, doc="instrument kinds charged"),
    }
    per_unit = ("annualised_move_risk", "min_annualised_move")

    def _move(self, ctx, p, i):
        u = ctx.unit_of_row[i]
        return np.maximum(p["min_annualised_move"][u], p["annualised_move_risk"][u] * np.maximum(ctx.expiry_years[i], 0.0))

    def compute(self, ctx, p):
        i = ctx.pos_instrument
        sel = _kind_mask(p["kinds"])[ctx.kind[i]]
        amount = np.abs(ctx.pos_quantity) * ctx.notional[i] * self._move(ctx, p, i)
        return ctx.per_pair(amount, sel)

    def reference(self, ctx, p):
        out = np.zeros(ctx.n_pairs)
        for pair, i, q in zip(ctx.pos_pair, ctx.pos_instrument, ctx.pos_quantity):
            if KIND_NAMES[ctx.kind[i]] in p["kinds"]:
                u = ctx.unit_of_row[i]
                move = max(p["min_annualised_move"][u], p["annualised_move_risk"][u] * max(ctx.expiry_years[i], 0.0))
                out[pair] += abs(q) * ctx.notional[i] * move
        return out


class DeltaShock(AddOn):
    """Delta shock above a liquidity threshold (Deribit "delta shock"), combine = add.

    Per pair: net delta D = sum_k q_k * delta_k (underlying units), USD delta |D| * S_u;
    charge = ``shock_u * max(0, |D| * S_u - threshold_u)`` USD, in settlement currency (/ fx_u).
    """

    type = "delta_shock"
    combine = "add"
    params = {
        "threshold": Param("per_unit", 0.0, lo=0.0, doc="USD delta notional exempt from the shock"),
        "shock": Param("per_unit", _REQUIRED, lo=0.0, doc="fraction of the USD delta above the threshold"),
    }
    per_unit = ("threshold", "shock")

    def compute(self, ctx, p):
        net = ctx.per_pair(ctx.pos_quantity * ctx.delta[ctx.pos_instrument])
        u = ctx.pair_unit
        usd = np.abs(net) * ctx.unit_spot[u]
        return p["shock"][u] * np.maximum(usd - p["threshold"][u], 0.0) / ctx.unit_fx[u]

    def reference(self, ctx, p):
        net = np.zeros(ctx.n_pairs)
        for pair, i, q in zip(ctx.pos_pair, ctx.pos_instrument, ctx.pos_quantity):
            net[pair] += q * ctx.delta[i]
        out = np.zeros(ctx.n_pairs)
        for pair in range(ctx.n_pairs):
            u = ctx.pair_unit[pair]
            usd = abs(net[pair]) * ctx.unit_spot[u]
            out[pair] = p["shock"][u] * max(usd - p["threshold"][u], 0.0) / ctx.unit_fx[u]
        return out


class ShortOptionMinimum(AddOn):
    """SPAN short-option minimum, combine = floor.

    Per pair: per short option (net quantity q < 0) an amount ``-q * rate_u`` (``basis = "contract"``,
    rate per contract in ``currency``: "settlement" or "USD", converted with the unit's FX) or
    ``-q * rate_u * notional_k`` (``"notional"``, rate a fraction); ``method = "gross"`` sums calls
    and puts, ``"max"`` takes the larger of the two sums (as span.py's GROSS / MAX).
    """

    type = "short_option_minimum"
    combine = "floor"
    params = {
        "rate": Param("per_unit", _REQUIRED, lo=0.0),
        "basis": Param("str", "contract", choices=("contract", "notional")),
        "method": Param("str", "gross", choices=("gross", "max")),
        "currency": Param("str", "settlement", choices=("settlement", "USD")),
    }
    per_unit = ("rate",)

    def compute(self, ctx, p):
        i, q = ctx.pos_instrument, ctx.pos_quantity
        kind = ctx.kind[i]
        per = _per_contract(ctx, p, i) if p["basis"] == "contract" else ctx.notional[i]
        amount = np.maximum(-q, 0.0) * p["rate"][ctx.unit_of_row[i]] * per
        calls = ctx.per_pair(amount, kind == CALL)
        puts = ctx.per_pair(amount, kind == PUT)
        return calls + puts if p["method"] == "gross" else np.maximum(calls, puts)

    def reference(self, ctx, p):
        calls, puts = np.zeros(ctx.n_pairs), np.zeros(ctx.n_pairs)
        for pair, i, q in zip(ctx.pos_pair, ctx.pos_instrument, ctx.pos_quantity):
            if q >= 0 or ctx.kind[i] not in (CALL, PUT):
                continue
            u = ctx.unit_of_row[i]
            per = (1.0 / ctx.unit_fx[u] if p["currency"] == "USD" else 1.0) if p["basis"] == "contract" else ctx.notional[i]
            amount = -q * p["rate"][u] * per
            if ctx.kind[i] == CALL:
                calls[pair] += amount
            else:
                puts[pair] += amount
        return calls + puts if p["method"] == "gross" else np.maximum(calls, puts)


class PerContractMinimum(AddOn):
    """Per-contract minimum (OCC TIMS / FINRA 4210(g): $0.375 x multiplier per long or short
    contract; OKX MR7-style minimum charge with ``basis = "notional"`` and tiers), combine = floor.

    Per pair: raw = ``sum_k |q_k| * rate_u * (multiplier_k | notional_k)`` over positions of the
    listed kinds, in settlement currency (``basis = "multiplier"``: the rate is an amount per unit of
    multiplier in ``currency``, "settlement" or "USD"; ``"notional"``: a fraction of the notional).
    With ``tiers = [[start_usd, multiplier], ...]`` the USD raw amount is scaled piecewise:
    ``sum_j m_j * overlap(raw_usd, [start_j, start_j+1))``.
    """

    type = "per_contract_minimum"
    combine = "floor"
    params = {
        "rate": Param("per_unit", _REQUIRED, lo=0.0),
        "kinds": Param("strs", ("call", "put", "future"), choices=KIND_NAMES),
        "basis": Param("str", "multiplier", choices=("multiplier", "notional")),
        "currency": Param("str", "settlement", choices=("settlement", "USD")),
        "tiers": Param("tiers", None),
    }
    per_unit = ("rate",)

    def check(self):
        tiers = self.config["tiers"]
        if tiers is not None and tiers[0][0] != 0.0:
            raise ValueError(f"{self.where}.tiers[0][0]: the first tier must start at 0, got {tiers[0][0]}")

    def compute(self, ctx, p):
        i = ctx.pos_instrument
        sel = _kind_mask(p["kinds"])[ctx.kind[i]]
        size = ctx.multiplier[i] * _per_contract(ctx, p, i) if p["basis"] == "multiplier" else ctx.notional[i]
        raw = ctx.per_pair(np.abs(ctx.pos_quantity) * p["rate"][ctx.unit_of_row[i]] * size, sel)
        if p["tiers"] is None:
            return raw
        fx = ctx.unit_fx[ctx.pair_unit]
        return _tiered(raw * fx, p["tiers"]) / fx

    def reference(self, ctx, p):
        raw = np.zeros(ctx.n_pairs)
        for pair, i, q in zip(ctx.pos_pair, ctx.pos_instrument, ctx.pos_quantity):
            if KIND_NAMES[ctx.kind[i]] in p["kinds"]:
                fx = ctx.unit_fx[ctx.unit_of_row[i]] if p["currency"] == "USD" else 1.0
                size = ctx.multiplier[i] / fx if p["basis"] == "multiplier" else ctx.notional[i]
                raw[pair] += abs(q) * p["rate"][ctx.unit_of_row[i]] * size
        if p["tiers"] is None:
            return raw
        out = np.zeros(ctx.n_pairs)
        for pair in range(ctx.n_pairs):
            fx = ctx.unit_fx[ctx.pair_unit[pair]]
            out[pair] = _tiered_scalar(raw[pair] * fx, p["tiers"]) / fx
        return out


class Concentration(AddOn):
    """Concentration add-on, combine = add.

    Per pair: x = USD delta, ``|sum_k q_k delta_k| * S_u`` (``measure = "net_delta"``) or
    ``sum_k |q_k delta_k| * S_u`` (``"gross_delta"``); charge = ``sum_j rate_j * overlap(x,
    [start_j, start_j+1))`` USD (``tiers = [[start_usd, rate], ...]``, marginal rates), in settlement
    currency.
    """

    type = "concentration"
    combine = "add"
    params = {
        "measure": Param("str", "net_delta", choices=("net_delta", "gross_delta")),
        "tiers": Param("tiers", _REQUIRED),
    }

    def compute(self, ctx, p):
        d = ctx.pos_quantity * ctx.delta[ctx.pos_instrument]
        x = np.abs(ctx.per_pair(d)) if p["measure"] == "net_delta" else ctx.per_pair(np.abs(d))
        u = ctx.pair_unit
        return _tiered(x * ctx.unit_spot[u], p["tiers"]) / ctx.unit_fx[u]

    def reference(self, ctx, p):
        net, gross = np.zeros(ctx.n_pairs), np.zeros(ctx.n_pairs)
        for pair, i, q in zip(ctx.pos_pair, ctx.pos_instrument, ctx.pos_quantity):
            net[pair] += q * ctx.delta[i]
            gross[pair] += abs(q * ctx.delta[i])
        out = np.zeros(ctx.n_pairs)
        for pair in range(ctx.n_pairs):
            u = ctx.pair_unit[pair]
            x = abs(net[pair]) if p["measure"] == "net_delta" else gross[pair]
            out[pair] = _tiered_scalar(x * ctx.unit_spot[u], p["tiers"]) / ctx.unit_fx[u]
        return out


class Contingency(AddOn):
    """Contingencies (Deribit's original PM, Derive-style), combine = add.

    Per pair: ``option_rate_u * sum_k |q_k| * notional_k`` over options (``option_side = "gross"``:
    all; ``"short"``: short positions only), plus ``future_rate_u * min(long, short)`` where long /
    short are the summed notionals of long / short futures and perpetuals (offsetting futures).
    """

    type = "contingency"
    combine = "add"
    params = {
        "option_rate": Param("per_unit", 0.0, lo=0.0),
        "option_side": Param("str", "gross", choices=("gross", "short")),
        "future_rate": Param("per_unit", 0.0, lo=0.0),
    }
    per_unit = ("option_rate", "future_rate")

    def compute(self, ctx, p):
        i, q = ctx.pos_instrument, ctx.pos_quantity
        kind, u = ctx.kind[i], ctx.unit_of_row[i]
        opt = (kind == CALL) | (kind == PUT)
        if p["option_side"] == "short":
            opt &= q < 0
        options = ctx.per_pair(np.abs(q) * ctx.notional[i] * p["option_rate"][u], opt)
        fut = (kind == FUTURE) | (kind == PERPETUAL)
        long_ = ctx.per_pair(q * ctx.notional[i], fut & (q > 0))
        short = ctx.per_pair(-q * ctx.notional[i], fut & (q < 0))
        return options + p["future_rate"][ctx.pair_unit] * np.minimum(long_, short)

    def reference(self, ctx, p):
        options, long_, short = np.zeros(ctx.n_pairs), np.zeros(ctx.n_pairs), np.zeros(ctx.n_pairs)
        for pair, i, q in zip(ctx.pos_pair, ctx.pos_instrument, ctx.pos_quantity):
            k, u = ctx.kind[i], ctx.unit_of_row[i]
            if k in (CALL, PUT) and (p["option_side"] == "gross" or q < 0):
                options[pair] += abs(q) * ctx.notional[i] * p["option_rate"][u]
            if k in (FUTURE, PERPETUAL):
                if q > 0:
                    long_[pair] += q * ctx.notional[i]
                else:
                    short[pair] -= q * ctx.notional[i]
        return options + np.array([p["future_rate"][ctx.pair_unit[k]] * min(long_[k], short[k])
                                   for k in range(ctx.n_pairs)])


# ------------------------------------------------------------------------------------------------
# SPAN delta spreads
# ------------------------------------------------------------------------------------------------


def _month_table(ctx: Context) -> tuple[list[str], np.ndarray]:
    months, code = np.unique(ctx.month.astype(str), return_inverse=True)
    return list(months), code


def _tier_cols(tiers: Sequence[Tier], tn: int, months: Sequence[str]) -> np.ndarray:
    """Columns (months) of tier ``tn``: tier 0 undefined means every month (spreads.tier_rows)."""
    tier = next((t for t in tiers if t.number == tn), None)
    if tier is None:
        return np.arange(len(months)) if tn == 0 else np.zeros(0, dtype=np.int64)
    return np.array([k for k, m in enumerate(months) if tier.contains(m)], dtype=np.int64)


def _sgn(x: np.ndarray) -> np.ndarray:
    return np.where(np.abs(x) <= TOL, 0, np.where(x > 0, 1, -1))


def _consume_rows(d: np.ndarray, rows: np.ndarray, cols: np.ndarray, sign: np.ndarray, amount: np.ndarray) -> None:
    """Vectorised spreads.consume: in rows ``rows`` take ``amount`` of delta of sign ``sign`` out of
    columns ``cols``, pro rata (in place)."""
    if cols.size == 0 or rows.size == 0:
        return
    sub = d[np.ix_(rows, cols)]
    s = sign[:, None].astype(float)
    side = np.where(s * sub > 0, s * sub, 0.0)
    total = side.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where((total > 0) & (amount > 0), np.minimum(amount / total, 1.0), 0.0)
    d[np.ix_(rows, cols)] = sub - s * side * frac[:, None]


def _form(d: np.ndarray, rows: np.ndarray, legs: list[tuple[SpreadLeg, np.ndarray]], whole: bool,
          same_tier: bool) -> np.ndarray:
    """Spreads formed per row of ``d`` (months in columns) by one spread with these legs (each with
    its columns); consumes the deltas. Vectorised spreads.form_intra_spread / the inter-commodity step."""
    if same_tier:
        (a_leg, cols), (b_leg, _) = sorted(legs, key=lambda lc: lc[0].side)
        sub = d[np.ix_(rows, cols)]
        long_ = np.where(sub > 0, sub, 0.0).sum(axis=1)
        short = np.where(sub < 0, -sub, 0.0).sum(axis=1)
        n1 = np.minimum(long_ / a_leg.ratio, short / b_leg.ratio)
        n2 = np.minimum(short / a_leg.ratio, long_ / b_leg.ratio)
        n = np.maximum(n1, n2)
        if whole:
            n = np.floor(n + TOL)
        n = np.where(n > TOL, n, 0.0)
        a_sign = np.where(n1 >= n2, 1, -1)
        _consume_rows(d, rows, cols, a_sign, n * a_leg.ratio)
        _consume_rows(d, rows, cols, -a_sign, n * b_leg.ratio)
        return n
    tier_d = np.stack([d[np.ix_(rows, cols)].sum(axis=1) if cols.size else np.zeros(rows.size)
                       for _, cols in legs], axis=1)
    first = legs[0][0]
    sign = _sgn(tier_d[:, 0]) * (1 if first.side == "A" else -1)
    ok = sign != 0
    for k, (leg, _) in enumerate(legs):
        ok &= _sgn(tier_d[:, k]) == (sign if leg.side == "A" else -sign)
    ratios = np.array([leg.ratio for leg, _ in legs])
    n = np.min(np.abs(tier_d) / ratios, axis=1)
    if whole:
        n = np.floor(n + TOL)
    n = np.where(ok & (n > TOL), n, 0.0)
    for k, (leg, cols) in enumerate(legs):
        _consume_rows(d, rows, cols, _sgn(tier_d[:, k]), n * leg.ratio)
    return n


class IntraSpread(AddOn):
    """SPAN intra-commodity (calendar) spread charge, combine = add.

    Per pair of a risk unit in ``underlyings`` (all when omitted; risk-unit names or underlyings):
    deltas per contract month, ``d[m] = sum_k q_k delta_k`` over instruments expiring in month m
    (perpetuals and spot: month "000000"). The spreads are formed in order, exactly as SPAN (and
    :func:`marginkernel.spreads.form_intra_spread`, the reference): two legs in one tier pair the tier's long months
    against its short months, ``n = max(min(long/rA, short/rB), min(short/rA, long/rB))``; legs in
    different tiers pair the tiers' net deltas when their signs match the legs' sides (A one way, B
    the other), ``n = min |d_tier| / ratio``; formed deltas are consumed pro rata. Charge =
    ``sum n * rate`` (rate per spread in ``currency``: "settlement" or "USD", converted with the
    unit's FX). ``whole = true`` forms whole spreads only. The remaining
    deltas are handed to an ``inter_spread`` add-on that names this one in ``after``.
    """

    type = "intra_spread"
    combine = "add"
    params = {
        "underlyings": Param("strs", None),
        "tiers": Param("month_tiers", ()),
        "spreads": Param("spreads", _REQUIRED),
        "whole": Param("bool", False),
        "currency": Param("str", "settlement", choices=("settlement", "USD")),
    }

    def _scope(self, ctx) -> np.ndarray:
        names = self.config["underlyings"]
        if names is None:
            return np.ones(ctx.n_units, dtype=bool)
        return np.array([n in names or u in names for n, u in zip(ctx.unit_names, ctx.unit_underlying)])

    def compute(self, ctx, p):
        months, code = _month_table(ctx)
        rows = np.flatnonzero(self._scope(ctx)[ctx.pair_unit])
        d = np.zeros((ctx.n_pairs, len(months)))
        np.add.at(d, (ctx.pos_pair, code[ctx.pos_instrument]), ctx.pos_quantity * ctx.delta[ctx.pos_instrument])
        charge = np.zeros(ctx.n_pairs)
        for s in p["spreads"]:
            legs = [(leg, _tier_cols(p["tiers"], leg.tier, months)) for leg in s.legs]
            same = len({leg.tier for leg in s.legs}) == 1
            charge[rows] += _form(d, rows, legs, p["whole"], same) * s.rate
        ctx.shared[self.name] = (months, rows, d)
        return charge / ctx.unit_fx[ctx.pair_unit] if p["currency"] == "USD" else charge

    def reference(self, ctx, p):
        scope = self._scope(ctx)
        charge = np.zeros(ctx.n_pairs)
        for pair in range(ctx.n_pairs):
            if not scope[ctx.pair_unit[pair]]:
                continue
            by_month: dict[str, float] = {}
            for pp, i, q in zip(ctx.pos_pair, ctx.pos_instrument, ctx.pos_quantity):
                if pp == pair:
                    by_month[str(ctx.month[i])] = by_month.get(str(ctx.month[i]), 0.0) + q * ctx.delta[i]
            months = sorted(by_month)
            d = np.array([by_month[m] for m in months])
            tiers = p["tiers"] or (Tier(0),)
            for s in p["spreads"]:
                charge[pair] += form_intra_spread(s, tiers, months, d, TOL, p["whole"]) * s.rate
            if p["currency"] == "USD":
                charge[pair] /= ctx.unit_fx[ctx.pair_unit[pair]]
        return charge


def price_risk(ctx: Context) -> np.ndarray:
    """SPAN price risk per pair: scan risk minus time risk (mean weighted loss of the scenarios with no
    price move) minus volatility risk (half the excess of the worst scenario's loss over its paired
    scenario's: same price move, opposite vol shift), floored at 0 (as marginkernel.span.margin)."""
    if ctx.n_pairs == 0:
        return np.zeros(0)
    m, v = ctx.price_multiplier, ctx.vol_shift
    n_units, n_s = m.shape
    paired = np.tile(np.arange(n_s), (n_units, 1))
    for u in range(n_units):
        first: dict[tuple[float, float], int] = {}
        for s in range(n_s):
            first.setdefault((float(m[u, s]), float(v[u, s])), s)
        for s in range(n_s):
            if v[u, s] != 0:
                paired[u, s] = first.get((float(m[u, s]), -float(v[u, s])), s)
    loss = -(ctx.pair_pnl * ctx.weight[ctx.pair_unit])
    scan = ctx.pair_scan
    time_mask = (m == 1.0)[ctx.pair_unit]
    counts = time_mask.sum(axis=1)
    time_risk = np.where(counts > 0, (loss * time_mask).sum(axis=1) / np.maximum(counts, 1), 0.0)
    rows = np.arange(ctx.n_pairs)
    active = loss[rows, ctx.pair_worst]
    pair_loss = loss[rows, paired[ctx.pair_unit, ctx.pair_worst]]
    vol_risk = np.where(scan > 0, np.maximum(active - pair_loss, 0.0) / 2.0, 0.0)
    return np.where(scan > 0, np.maximum(scan - time_risk - vol_risk, 0.0), 0.0)


class InterSpread(AddOn):
    """SPAN inter-commodity spread credit (delta based), combine = credit.

    Legs name risk units (``unit``), a tier of that unit (``tiers``: per unit, like intra tiers;
    tier 0 undefined = every month), a side and a delta ratio. Per account holding every leg's unit,
    spreads are formed in order on the units' deltas (those an ``intra_spread`` add-on named in
    ``after`` left, else the book's): the legs' tier deltas must have signs matching their sides;
    ``n = min |d_leg| / ratio``; each leg's pair is credited ``rate * n * ratio * wfpr`` where
    ``wfpr = price risk / |net delta|`` (``price_risk = "span"``, see :func:`price_risk`, or
    ``"scan"`` for the whole scan risk) with the net delta before inter-commodity spreading; formed
    deltas are consumed. Credit in each leg unit's settlement currency.
    """

    type = "inter_spread"
    combine = "credit"
    params = {
        "spreads": Param("inter_spreads", _REQUIRED),
        "tiers": Param("unit_tiers", {}),
        "after": Param("str", ""),
        "price_risk": Param("str", "span", choices=("span", "scan")),
        "whole": Param("bool", False),
    }

    def check(self):
        for k, spread in enumerate(self.config["spreads"]):
            units = [leg.cc for leg in spread.legs]
            if len(set(units)) != len(units):
                raise ValueError(f"{self.where}.spreads[{k}].legs: each leg must name a different unit, got {units}")

    def _deltas(self, ctx, p):
        months, code = _month_table(ctx)
        d = np.zeros((ctx.n_pairs, len(months)))
        np.add.at(d, (ctx.pos_pair, code[ctx.pos_instrument]), ctx.pos_quantity * ctx.delta[ctx.pos_instrument])
        if p["after"]:
            if p["after"] not in ctx.shared:
                raise ValueError(f"{self.where}.after: no intra_spread add-on {p['after']!r} computed before this one")
            m_after, rows, d_after = ctx.shared[p["after"]]
            if list(m_after) != months:  # pragma: no cover - same context
                raise AssertionError("month tables differ")
            d[rows] = d_after[rows]
        return months, d

    def _wfpr(self, ctx, p, d):
        risk = price_risk(ctx) if p["price_risk"] == "span" else ctx.pair_scan
        net = d.sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(np.abs(net) > TOL, risk / np.abs(net), 0.0)

    def compute(self, ctx, p):
        months, d = self._deltas(ctx, p)
        wfpr = self._wfpr(ctx, p, d)
        credit = np.zeros(ctx.n_pairs)
        unit_index = {n: k for k, n in enumerate(ctx.unit_names)}
        accounts = np.unique(ctx.pair_account)
        for s in p["spreads"]:
            if any(leg.cc not in unit_index for leg in s.legs):
                continue
            pairs = np.stack([ctx.pair_index(accounts, unit_index[leg.cc]) for leg in s.legs], axis=1)
            pairs = pairs[(pairs >= 0).all(axis=1)]
            if pairs.size == 0:
                continue
            legs = [(leg, _tier_cols(p["tiers"].get(leg.cc, ()), leg.tier, months)) for leg in s.legs]
            leg_d = np.stack([d[np.ix_(pairs[:, k], cols)].sum(axis=1) if cols.size else np.zeros(len(pairs))
                              for k, (_, cols) in enumerate(legs)], axis=1)
            first = s.legs[0]
            sign = _sgn(leg_d[:, 0]) * (1 if first.side == "A" else -1)
            ok = sign != 0
            for k, leg in enumerate(s.legs):
                ok &= _sgn(leg_d[:, k]) == (sign if leg.side == "A" else -sign)
            ratios = np.array([leg.ratio for leg in s.legs])
            n = np.min(np.abs(leg_d) / ratios, axis=1)
            if p["whole"]:
                n = np.floor(n + TOL)
            n = np.where(ok & (n > TOL), n, 0.0)
            for k, (leg, cols) in enumerate(legs):
                rows = pairs[:, k]
                np.add.at(credit, rows, s.rate * n * leg.ratio * wfpr[rows])
                _consume_rows(d, rows, cols, _sgn(leg_d[:, k]), n * leg.ratio)
        return credit

    def reference(self, ctx, p):
        months, d = self._deltas(ctx, p)
        wfpr = self._wfpr(ctx, p, d)
        credit = np.zeros(ctx.n_pairs)
        unit_index = {n: k for k, n in enumerate(ctx.unit_names)}
        held = {(int(a), int(u)): k for k, (a, u) in enumerate(zip(ctx.pair_account, ctx.pair_unit))}
        for s in p["spreads"]:
            if any(leg.cc not in unit_index for leg in s.legs):
                continue
            for a in sorted({int(x) for x in ctx.pair_account}):
                keys = [held.get((a, unit_index[leg.cc])) for leg in s.legs]
                if any(k is None for k in keys):
                    continue
                legs = []
                for leg, pair in zip(s.legs, keys):
                    cols = list(_tier_cols(p["tiers"].get(leg.cc, ()), leg.tier, months))
                    legs.append((leg, pair, cols, float(d[pair, cols].sum()) if cols else 0.0))
                first_leg, _, _, first_d = legs[0]
                sign = (0 if abs(first_d) <= TOL else (1 if first_d > 0 else -1)) * (1 if first_leg.side == "A" else -1)
                signs = [0 if abs(x) <= TOL else (1 if x > 0 else -1) for _, _, _, x in legs]
                if sign == 0 or any(sg != (sign if leg.side == "A" else -sign) for (leg, _, _, _), sg in zip(legs, signs)):
                    continue
                n = min(abs(x) / leg.ratio for leg, _, _, x in legs)
                if p["whole"]:
                    n = math.floor(n + TOL)
                if n <= TOL:
                    continue
                for (leg, pair, cols, x), sg in zip(legs, signs):
                    credit[pair] += s.rate * n * leg.ratio * wfpr[pair]
                    row = d[pair]
                    consume(row, cols, sg, n * leg.ratio)
        return credit


ADDONS: dict[str, type[AddOn]] = {
    cls.type: cls for cls in (RollShock, DeltaShock, ShortOptionMinimum, PerContractMinimum, Concentration,
                              Contingency, IntraSpread, InterSpread)
}


def build(name: str, table: Mapping, where: str | None = None) -> AddOn:
    """The add-on of TOML table ``[addons.<name>]``; its ``type`` defaults to ``name``."""
    where = where or f"addons.{name}"
    table = _table(table, where)
    kind = table.get("type", name)
    if not isinstance(kind, str):
        raise ValueError(f"{where}.type: expected a string, got {kind!r}")
    if kind not in ADDONS:
        raise ValueError(f"{where}.type: unknown add-on {kind!r}; known: {sorted(ADDONS)}")
    return ADDONS[kind](name, table, where=where)
