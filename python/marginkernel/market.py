"""Market snapshot: index prices, forwards (or carry), discounting, implied vols, marks, FX.

A snapshot as a mapping (the layout of the TOML/JSON files the CLI reads)::

    time     = "2026-11-21T08:00:00Z"          # valuation time
    [spot]   BTC = 100000.0                     # index price per underlying
    [carry]  BTC = 0.05                         # optional: F = S * exp(carry * T) where no forward is given
    [rates]  BTC = 0.0                          # optional: discount factor exp(-r * T) per underlying
    [forwards.BTC]  "2026-12-25T08:00:00Z" = 100500.0   # optional, per expiry
    [discounts.BTC] "2026-12-25T08:00:00Z" = 0.995      # optional, per expiry (overrides rates)
    [vols]   "BTC-25DEC26-100000-C" = 0.55      # implied vol per option id
    [marks]  "BTC-PERPETUAL" = 100020.0         # optional: perpetual / spot marks (default: spot)
    [fx]     USDC = 1.0                         # optional: USD price of a settlement currency

FX defaults: USD, USDC and USDT are worth 1; a coin is worth its own index price.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from .instruments import Instruments, risk_unit_name, to_epoch_seconds

SECONDS_PER_YEAR = 365.0 * 86400.0
STABLE = {"USD": 1.0, "USDC": 1.0, "USDT": 1.0}
_KEYS = {"time", "spot", "carry", "rates", "forwards", "discounts", "vols", "marks", "fx"}


@dataclass(frozen=True)
class Market:
    time: float  # epoch seconds
    spot: Mapping[str, float]
    vols: Mapping[str, float] = field(default_factory=dict)
    forwards: Mapping[str, Mapping[float, float]] = field(default_factory=dict)  # underlying -> expiry s -> F
    discounts: Mapping[str, Mapping[float, float]] = field(default_factory=dict)  # underlying -> expiry s -> df
    carry: Mapping[str, float] = field(default_factory=dict)
    rates: Mapping[str, float] = field(default_factory=dict)
    marks: Mapping[str, float] = field(default_factory=dict)
    fx: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping) -> Market:
        if not isinstance(data, Mapping):
            raise TypeError(f"market: expected a mapping, got {type(data).__name__}")
        unknown = set(data) - _KEYS
        if unknown:
            raise ValueError(f"market: unknown key(s) {sorted(unknown)}; known: {sorted(_KEYS)}")
        if "time" not in data:
            raise ValueError("market.time: missing valuation time")
        if "spot" not in data:
            raise ValueError("market.spot: missing index prices")
        time = to_epoch_seconds(data["time"], "market.time")
        forwards = _expiry_tables(data, "forwards")
        discounts = _expiry_tables(data, "discounts")
        return cls(
            time=time,
            spot={k: _positive(f"market.spot.{k}", v) for k, v in _table(data, "spot").items()},
            vols={k: _non_negative(f"market.vols.{k}", v) for k, v in _table(data, "vols").items()},
            forwards=forwards,
            discounts=discounts,
            carry={k: _finite(f"market.carry.{k}", v) for k, v in _table(data, "carry").items()},
            rates={k: _finite(f"market.rates.{k}", v) for k, v in _table(data, "rates").items()},
            marks={k: _positive(f"market.marks.{k}", v) for k, v in _table(data, "marks").items()},
            fx={k: _positive(f"market.fx.{k}", v) for k, v in _table(data, "fx").items()},
        )

    def fx_rate(self, currency: str) -> float:
        """USD value of one unit of a settlement currency."""
        if currency in self.fx:
            return self.fx[currency]
        if currency in STABLE:
            return STABLE[currency]
        if currency in self.spot:
            return self.spot[currency]
        raise ValueError(f"market.fx: no USD price for settlement currency {currency!r} (add it to fx or spot)")

    def resolve(self, instruments: Instruments) -> ResolvedMarket:
        """Per-instrument forward, discount factor, vol and time to expiry; per-risk-unit index and FX."""
        n = len(instruments)
        units_per_row = instruments.risk_units
        units = list(dict.fromkeys(units_per_row))
        unit_index = {u: k for k, u in enumerate(units)}
        unit_underlying = {}
        unit_currency = {}
        for u, under, cur in zip(units_per_row, instruments.underlying, instruments.currency):
            unit_underlying[u] = under
            unit_currency[u] = cur
        for under in set(instruments.underlying):
            if under not in self.spot:
                raise ValueError(f"market.spot: no index price for underlying {under!r}")

        expiry_years = np.where(np.isnan(instruments.expiry), 0.0, (instruments.expiry - self.time) / SECONDS_PER_YEAR)
        forward = np.empty(n)
        discount = np.ones(n)
        vol = np.zeros(n)
        for k in range(n):
            iid, kind, under = instruments.ids[k], int(instruments.kind[k]), instruments.underlying[k]
            spot = self.spot[under]
            t = expiry_years[k]
            if kind in (1, 4):  # perpetual, spot: the mark (default the index)
                forward[k] = self.marks.get(iid, spot)
                continue
            table = self.forwards.get(under, {})
            exp = instruments.expiry[k]
            if exp in table:
                forward[k] = table[exp]
            else:
                forward[k] = spot * math.exp(self.carry.get(under, 0.0) * max(t, 0.0))
            dfs = self.discounts.get(under, {})
            discount[k] = dfs[exp] if exp in dfs else math.exp(-self.rates.get(under, 0.0) * max(t, 0.0))
            if kind in (2, 3):
                if iid not in self.vols:
                    raise ValueError(f"market.vols: no implied vol for option {iid!r} (row {k})")
                vol[k] = self.vols[iid]
        return ResolvedMarket(
            units=units,
            unit_of_row=np.array([unit_index[u] for u in units_per_row], dtype=np.int32),
            unit_spot=np.array([self.spot[unit_underlying[u]] for u in units]),
            unit_underlying=[unit_underlying[u] for u in units],
            unit_currency=[unit_currency[u] for u in units],
            unit_fx=np.array([self.fx_rate(unit_currency[u]) for u in units]),
            forward=forward,
            discount=discount,
            vol=vol,
            expiry_years=expiry_years,
        )


def collateral_frame(collateral):
    """Collateral balances as a DataFrame with columns ``account``, ``currency``, ``amount``.

    Accepts such a DataFrame (or records), or a mapping ``{account: {currency: amount}}``. Amounts are
    balances in units of the currency (negative: a debt). A missing column, a missing account or
    currency, or an amount that is not a finite number raises naming the row. The input is not
    modified (a new frame is returned)."""
    import pandas as pd

    if isinstance(collateral, pd.DataFrame):
        frame = collateral
    elif isinstance(collateral, Mapping):
        rows = []
        for account, balances in collateral.items():
            if not isinstance(balances, Mapping):
                raise TypeError(f"collateral[{account!r}]: expected a table of currency = amount, "
                                f"got {type(balances).__name__}")
            rows.extend({"account": account, "currency": c, "amount": a} for c, a in balances.items())
        frame = pd.DataFrame(rows, columns=["account", "currency", "amount"])
    else:
        try:
            rows = list(collateral)
        except TypeError:
            raise TypeError(f"collateral: expected a DataFrame, records or a mapping, got "
                            f"{type(collateral).__name__}") from None
        for k, r in enumerate(rows):
            if not isinstance(r, Mapping):
                raise TypeError(f"collateral row {k}: expected a mapping, got {type(r).__name__}")
        frame = pd.DataFrame(rows, columns=None if rows else ["account", "currency", "amount"])
    missing = {"account", "currency", "amount"} - set(frame.columns)
    if missing:
        raise ValueError(f"collateral: missing column(s) {sorted(missing)}")
    out = frame[["account", "currency", "amount"]].reset_index(drop=True).copy()
    for k, (acc, cur, amount) in enumerate(zip(out["account"], out["currency"], out["amount"])):
        if acc is None or (isinstance(acc, float) and math.isnan(acc)):
            raise ValueError(f"collateral row {k}: missing account")
        if not isinstance(cur, str) or not cur:
            raise ValueError(f"collateral row {k}: currency must be a non-empty string, got {cur!r}")
        _finite(f"collateral row {k}: amount", amount)
    out["amount"] = out["amount"].astype(float)
    return out


@dataclass(frozen=True)
class ResolvedMarket:
    """The market laid out for the kernels: per risk unit and per instrument row."""

    units: list[str]
    unit_of_row: np.ndarray  # int32 per instrument
    unit_spot: np.ndarray  # index price per risk unit
    unit_underlying: list[str]
    unit_currency: list[str]
    unit_fx: np.ndarray  # USD per unit of each risk unit's settlement currency
    forward: np.ndarray
    discount: np.ndarray
    vol: np.ndarray
    expiry_years: np.ndarray


def _expiry_tables(data: Mapping, key: str) -> dict:
    """``[key.<underlying>]`` tables of expiry = positive number, keyed by epoch seconds."""
    out = {}
    for under, table in _table(data, key).items():
        if not isinstance(table, Mapping):
            raise TypeError(f"market.{key}.{under}: expected a table of expiry = value")
        out[under] = {
            to_epoch_seconds(k, f"market.{key}.{under}"): _positive(f"market.{key}.{under}[{k}]", v)
            for k, v in table.items()
        }
    return out


def _table(data: Mapping, key: str) -> Mapping:
    value = data.get(key, {})
    if not isinstance(value, Mapping):
        raise TypeError(f"market.{key}: expected a table, got {type(value).__name__}")
    return value


def _finite(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name}: must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name}: must be finite, got {value!r}")
    return float(value)


def _positive(name: str, value) -> float:
    out = _finite(name, value)
    if out <= 0:
        raise ValueError(f"{name}: must be > 0, got {value!r}")
    return out


def _non_negative(name: str, value) -> float:
    out = _finite(name, value)
    if out < 0:
        raise ValueError(f"{name}: must be >= 0, got {value!r}")
    return out


__all__ = ["Market", "ResolvedMarket", "SECONDS_PER_YEAR", "collateral_frame", "risk_unit_name"]
