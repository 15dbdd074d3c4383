"""The add-on interface: the :class:`Context` an add-on computes from and the :class:`AddOn` base.

Every add-on computes one charge per (account, risk unit) *pair* of a book, in the risk unit's
settlement currency. Each kind has a vectorised :meth:`AddOn.compute` (NumPy, ``bincount`` over
positions; no Python loop over accounts or positions) and a plain loop :meth:`AddOn.reference`
that states its semantics one position at a time.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar

import numpy as np

from ..keyed import keyed_array
from .conventions import KIND_NAMES
from .params import Param, parse

COMBINE = ("add", "credit", "floor")


@dataclass(eq=False)
class Context:
    """Everything an add-on may use, for one book. Pairs are (account, risk unit) combinations held
    by the book (in isolated mode: one pair per position), sorted by account then unit; positions
    are aggregated (one row per account / pair and instrument, quantity != 0).

    The pairs' scenario P&L is not copied out of the engine's arrays: ``pnl_rows`` holds scenario
    P&L rows (e.g. the accounts' (account x unit) rows) and ``pair_row`` the row of each pair;
    :attr:`pair_pnl` gathers them when an add-on first asks."""

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
    unit_names: list[str]
    unit_underlying: list[str]
    unit_currency: list[str]
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
    pnl_rows: np.ndarray  # (rows, S) scenario P&L, settlement currency, unweighted
    pair_row: np.ndarray  # (P,) row of pnl_rows of each pair
    pair_scan: np.ndarray  # weighted worst loss of the pair alone
    pair_worst: np.ndarray
    n_accounts: int
    shared: dict[str, Any] = field(default_factory=dict)  # state add-ons hand to later ones

    @cached_property
    def pair_pnl(self) -> np.ndarray:
        """(P, S) scenario P&L of each pair, settlement currency, unweighted (gathered on first use)."""
        return np.asarray(self.pnl_rows[self.pair_row])

    @property
    def n_pairs(self) -> int:
        return len(self.pair_unit)

    @property
    def n_units(self) -> int:
        return len(self.unit_names)

    @property
    def pos_unit(self) -> np.ndarray:
        return np.asarray(self.unit_of_row[self.pos_instrument])

    def per_pair(self, values: Any, where: np.ndarray | None = None) -> np.ndarray:
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


def resolve_per_unit(
    spec: float | Mapping[str, float], unit_names: Sequence[str], unit_underlying: Sequence[str], where: str
) -> np.ndarray:
    """Per risk unit value of a per_unit parameter: by unit name, then underlying, then 'default'."""
    labels = [f"risk unit {n!r} (underlying {u!r})" for n, u in zip(unit_names, unit_underlying, strict=True)]
    return keyed_array(spec, list(zip(unit_names, unit_underlying, strict=True)), where, labels=labels)


def tiered(x: np.ndarray, tiers: Sequence[tuple[float, float]]) -> np.ndarray:
    """sum_k value_k * overlap(x, [start_k, start_{k+1})): marginal rates (or multipliers) by tier;
    below the first start nothing counts."""
    x = np.asarray(x, float)
    out = np.zeros_like(x)
    for k, (start, value) in enumerate(tiers):
        end = tiers[k + 1][0] if k + 1 < len(tiers) else np.inf
        out += value * np.clip(x - start, 0.0, end - start)
    return out


def tiered_scalar(x: float, tiers: Sequence[tuple[float, float]]) -> float:
    total = 0.0
    for k, (start, value) in enumerate(tiers):
        end = tiers[k + 1][0] if k + 1 < len(tiers) else math.inf
        total += value * min(max(x - start, 0.0), end - start)
    return total


def kind_mask(kinds: Sequence[str]) -> np.ndarray:
    """Boolean per kind code: is the kind named in ``kinds``."""
    return np.array([k in kinds for k in KIND_NAMES])


class AddOn:
    """Base class. Subclasses set ``type``, ``combine``, ``params`` (the schema) and implement
    :meth:`compute` (vectorised) and :meth:`reference` (plain loops, the definition)."""

    type: ClassVar[str] = ""
    combine: ClassVar[str] = "add"
    params: ClassVar[dict[str, Param]] = {}
    per_unit: ClassVar[tuple[str, ...]] = ()  # parameters resolved per risk unit

    def __init__(self, name: str, table: Mapping[str, Any] | None = None, *, where: str | None = None):
        self.name = name
        self.where = where or f"addons.{name}"
        self.config = parse(self.params, {k: v for k, v in (table or {}).items() if k != "type"}, self.where)
        self.check()

    def check(self) -> None:
        """Cross-parameter checks (raise ValueError naming the key)."""

    def resolve(self, unit_names: Sequence[str], unit_underlying: Sequence[str]) -> dict[str, Any]:
        """Parameters with the per-unit ones as arrays over the engine's risk units."""
        out = dict(self.config)
        for key in self.per_unit:
            out[key] = resolve_per_unit(self.config[key], unit_names, unit_underlying, f"{self.where}.{key}")
        return out

    def compute(self, ctx: Context, p: dict[str, Any]) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def reference(self, ctx: Context, p: dict[str, Any]) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def __call__(self, ctx: Context) -> np.ndarray:
        return self.compute(ctx, self.resolve(ctx.unit_names, ctx.unit_underlying))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, {self.config})"


def per_contract(ctx: Context, p: Mapping[str, Any], i: np.ndarray) -> np.ndarray:
    """Settlement-currency units per unit of a per-contract amount given in ``p["currency"]``."""
    if p["currency"] == "USD":
        return np.asarray(1.0 / ctx.unit_fx[ctx.unit_of_row[i]])
    return np.ones(len(i))


__all__ = ["COMBINE", "AddOn", "Context", "kind_mask", "per_contract", "resolve_per_unit", "tiered", "tiered_scalar"]
