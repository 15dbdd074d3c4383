"""Market snapshot: index prices, forwards (or carry), discounting, implied vols, marks, FX.

A snapshot as a mapping (the layout of the TOML/JSON files the CLI reads)::

    time     = "2026-11-21T08:00:00Z"          # valuation time
    [spot]   BTC = 100000.0                     # index price per underlying
    [carry]  BTC = 0.05                         # optional: F = S * exp(carry * T) where no forward is given
    [rates]  BTC = 0.0                          # optional: discount factor exp(-r * T) per underlying
    [forwards.BTC]  "2026-12-25T08:00:00Z" = 100500.0   # optional, per expiry (or per date: "2026-12-25")
    [discounts.BTC] "2026-12-25T08:00:00Z" = 0.995      # optional, per expiry (overrides rates)
    [vols]   "BTC-25DEC26-100000-C" = 0.55      # implied vol per option id
    [marks]  "BTC-PERPETUAL" = 100020.0         # optional: perpetual / spot marks (default: spot)
    [fx]     USDC = 1.0                         # optional: USD price of a settlement currency
    [settlement_prices] BTC = 99500.0           # optional: settlement price of expired instruments
                                                # (by instrument id, then underlying)

Keys of ``forwards`` / ``discounts`` tables: a time (ISO-8601 or epoch seconds) applies to the expiry
at that instant; a date (``"2026-12-25"``, or a TOML date) to the one expiry of that underlying on
that (UTC) date -- two expiries on the date, or none, is an error naming the key. Ids under ``vols``
and ``marks`` must be instruments (an unknown id is an error). FX defaults: USD, USDC and USDT are
worth 1; a coin is worth its own index price. ``carry`` and ``rates`` are bounded by
``|value| <= 10`` (1,000 % a year): beyond, exp(rate x years) overflows for long expiries.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from . import validation as v
from .codes import CALL, FUTURE, PERPETUAL, PUT, SPOT
from .instruments import Instruments, risk_unit_name, to_epoch_seconds
from .tables import as_frame

SECONDS_PER_YEAR = 365.0 * 86400.0
STABLE = {"USD": 1.0, "USDC": 1.0, "USDT": 1.0}
RATE_BOUND = 10.0
_KEYS = {"time", "spot", "carry", "rates", "forwards", "discounts", "vols", "marks", "fx", "settlement_prices"}
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

#: an expiry-table key: epoch seconds (an instant) or a date (the one expiry on that UTC date)
ExpiryKey = float | dt.date


def num(value: Any, where: str, **bounds: Any) -> float:
    """:func:`marginkernel.validation.number`, with the type error worded "must be a number"."""
    try:
        return v.number(value, where, **bounds)
    except v.NotANumber:
        raise v.NotANumber(f"{where}: must be a number, got {value!r}") from None


@dataclass(frozen=True)
class Market:
    time: float  # epoch seconds
    spot: Mapping[str, float]
    vols: Mapping[str, float] = field(default_factory=dict)
    forwards: Mapping[str, Mapping[ExpiryKey, float]] = field(default_factory=dict)  # underlying -> expiry -> F
    discounts: Mapping[str, Mapping[ExpiryKey, float]] = field(default_factory=dict)  # underlying -> expiry -> df
    carry: Mapping[str, float] = field(default_factory=dict)
    rates: Mapping[str, float] = field(default_factory=dict)
    marks: Mapping[str, float] = field(default_factory=dict)
    fx: Mapping[str, float] = field(default_factory=dict)
    settlement_prices: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Market:
        if not isinstance(data, Mapping):
            raise TypeError(f"market: expected a mapping, got {type(data).__name__}")
        unknown = set(data) - _KEYS
        if unknown:
            raise ValueError(f"market: unknown key(s) {sorted(unknown)}; known: {sorted(_KEYS)}")
        if "time" not in data:
            raise ValueError("market.time: missing valuation time")
        if "spot" not in data:
            raise ValueError("market.spot: missing index prices")

        def numbers(key: str, **bounds: Any) -> dict[str, float]:
            return {str(k): num(x, f"market.{key}.{k}", **bounds) for k, x in _table(data, key).items()}

        return cls(
            time=to_epoch_seconds(data["time"], "market.time"),
            spot=numbers("spot", positive=True),
            vols=numbers("vols", lo=0.0),
            forwards=_expiry_tables(data, "forwards"),
            discounts=_expiry_tables(data, "discounts"),
            carry=numbers("carry", lo=-RATE_BOUND, hi=RATE_BOUND),
            rates=numbers("rates", lo=-RATE_BOUND, hi=RATE_BOUND),
            marks=numbers("marks", positive=True),
            fx=numbers("fx", positive=True),
            settlement_prices=numbers("settlement_prices", positive=True),
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
        """Per-instrument forward, discount factor, vol and time to expiry; per-risk-unit index and FX.

        Vectorised: no Python loop over instruments (only over underlyings and table keys)."""
        u_code, u_names = pd.factorize(instruments.underlying)
        u_names = [str(u) for u in u_names]
        for name in u_names:
            if name not in self.spot:
                raise ValueError(f"market.spot: no index price for underlying {name!r}")

        def per_underlying(table: Mapping[str, float], default: float) -> np.ndarray:
            return np.asarray(np.array([table.get(u, default) for u in u_names], dtype=float)[u_code])

        spot_row = per_underlying(self.spot, np.nan)
        units, unit_of_row, first = _units(instruments, u_code)
        kind = instruments.kind
        dated = (kind == FUTURE) | (kind == CALL) | (kind == PUT)
        years = np.where(np.isnan(instruments.expiry), 0.0, (instruments.expiry - self.time) / SECONDS_PER_YEAR)
        t = np.maximum(years, 0.0)
        with np.errstate(over="ignore"):
            forward = spot_row * np.exp(per_underlying(self.carry, 0.0) * t)
            discount = np.exp(-per_underlying(self.rates, 0.0) * t)
        for table, values, key in ((self.forwards, forward, "forwards"), (self.discounts, discount, "discounts")):
            for underlying, quotes in table.items():
                if underlying in u_names:
                    rows = np.flatnonzero(dated & (u_code == u_names.index(underlying)))
                    _quoted(values, rows, instruments.expiry[rows], quotes, f"market.{key}.{underlying}")
        _check_finite(forward, discount, instruments)
        index = instruments.index
        linear = (kind == PERPETUAL) | (kind == SPOT)
        marks = _by_id(self.marks, "marks", index)
        forward = np.where(linear, np.where(np.isnan(marks), spot_row, marks), forward)
        discount = np.where(linear, 1.0, discount)
        option = (kind == CALL) | (kind == PUT)
        vol = _by_id(self.vols, "vols", index)
        no_vol = option & np.isnan(vol)
        if no_vol.any():
            k = int(np.flatnonzero(no_vol)[0])
            raise ValueError(f"market.vols: no implied vol for option {instruments.ids[k]!r} (row {k})")
        unit_underlying = [str(instruments.underlying[k]) for k in first]
        unit_currency = [str(instruments.currency[k]) for k in first]
        return ResolvedMarket(
            units=units,
            unit_of_row=unit_of_row,
            unit_spot=np.array([self.spot[u] for u in unit_underlying], dtype=float),
            unit_underlying=unit_underlying,
            unit_currency=unit_currency,
            unit_fx=np.array([self.fx_rate(c) for c in unit_currency], dtype=float),
            forward=forward,
            discount=discount,
            vol=np.where(option, vol, 0.0),
            expiry_years=years,
        )


def _units(instruments: Instruments, u_code: np.ndarray) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Risk units in order of first appearance, the unit of each row, and each unit's first row."""
    c_code, c_names = pd.factorize(instruments.currency)
    key = u_code.astype(np.int64) * max(len(c_names), 1) + c_code
    _, first_row, inverse = np.unique(key, return_index=True, return_inverse=True)
    order = np.argsort(first_row, kind="stable")
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    first = first_row[order]
    names = [risk_unit_name(str(instruments.underlying[k]), str(instruments.currency[k])) for k in first]
    return names, rank[inverse.reshape(-1)].astype(np.int32), first


def _by_id(table: Mapping[str, float], key: str, index: pd.Index) -> np.ndarray:
    """Values of a table keyed by instrument id, per row (NaN where absent); unknown ids are errors."""
    out = np.full(len(index), np.nan)
    if not table:
        return out
    keys = np.array(list(table), dtype=object)
    rows = index.get_indexer(keys)
    unknown = np.flatnonzero(rows < 0)
    if unknown.size:
        raise ValueError(f"market.{key}: unknown instrument id(s) {keys[unknown[:5]].tolist()}")
    out[rows] = np.fromiter(table.values(), float, len(keys))
    return out


def _quoted(
    values: np.ndarray, rows: np.ndarray, expiry: np.ndarray, table: Mapping[ExpiryKey, float], where: str
) -> None:
    """Overwrite ``values[rows]`` (in place) where the expiry table quotes the row's expiry: a time
    key exactly, a date key the one expiry on that date (see the module docstring)."""
    instants = {k: x for k, x in table.items() if not isinstance(k, dt.date)}
    if instants:
        hit = pd.Index(np.array(list(instants), dtype=float)).get_indexer(expiry)
        ok = hit >= 0
        values[rows[ok]] = np.fromiter(instants.values(), float, len(instants))[hit[ok]]
    days = np.floor(expiry / 86400.0)
    for day, value in ((k, x) for k, x in table.items() if isinstance(k, dt.date)):
        match = days == (day - dt.date(1970, 1, 1)).days
        distinct = np.unique(expiry[match])
        at = f"{where}[{day.isoformat()!r}]"
        if len(distinct) == 0:
            raise ValueError(f"{at}: no future or option of {where.rsplit('.', 1)[-1]!r} expires on that date")
        if len(distinct) > 1:
            times = ", ".join(dt.datetime.fromtimestamp(e, tz=dt.UTC).strftime("%H:%M") for e in distinct)
            raise ValueError(f"{at}: ambiguous, {len(distinct)} expiries on that date ({times} UTC); key it by time")
        values[rows[match & ~np.isin(expiry, list(instants))]] = value


def _check_finite(forward: np.ndarray, discount: np.ndarray, instruments: Instruments) -> None:
    for name, arr in (("forward (carry)", forward), ("discount factor (rates)", discount)):
        bad = ~np.isfinite(arr) | (arr <= 0)
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"market: the {name} of instrument {instruments.ids[k]!r} (row {k}) is {arr[k]!r}: "
                "the rate is too large for its expiry"
            )


def collateral_frame(collateral: Any) -> pd.DataFrame:
    """Collateral balances as a DataFrame with columns ``account``, ``currency``, ``amount``.

    Accepts such a table (DataFrame, Arrow table or records), or a mapping ``{account: {currency:
    amount}}``. Amounts are balances in units of the currency (negative: a debt). A missing column, a
    missing account or currency, or an amount that is not a finite number raises naming the row. The
    input is not modified (a new frame is returned)."""
    if isinstance(collateral, Mapping):
        rows: list[dict[str, Any]] = []
        for account, balances in collateral.items():
            if not isinstance(balances, Mapping):
                raise TypeError(
                    f"collateral[{account!r}]: expected a table of currency = amount, got {type(balances).__name__}"
                )
            rows.extend({"account": account, "currency": c, "amount": a} for c, a in balances.items())
        frame = pd.DataFrame(rows, columns=["account", "currency", "amount"])
    else:
        frame = as_frame(collateral, "collateral", records_only=True)
        if len(frame.columns) == 0:
            frame = pd.DataFrame(columns=["account", "currency", "amount"])
    missing = {"account", "currency", "amount"} - set(frame.columns)
    if missing:
        raise ValueError(f"collateral: missing column(s) {sorted(missing)}")
    out = frame[["account", "currency", "amount"]].reset_index(drop=True).copy()
    no_account = out["account"].isna().to_numpy()
    if no_account.any():
        raise ValueError(f"collateral row {int(np.flatnonzero(no_account)[0])}: missing account")
    bad_cur = ~out["currency"].map(lambda c: isinstance(c, str) and bool(c)).to_numpy(dtype=bool)
    if bad_cur.any():
        k = int(np.flatnonzero(bad_cur)[0])
        raise ValueError(f"collateral row {k}: currency must be a non-empty string, got {out['currency'].iloc[k]!r}")
    amount = out["amount"]
    if amount.dtype.kind in "iuf":
        values = amount.to_numpy(dtype=float)
        bad = ~np.isfinite(values)
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            num(values[k], f"collateral row {k}: amount")
    else:
        values = np.array([num(a, f"collateral row {k}: amount") for k, a in enumerate(amount)], dtype=float)
    out["amount"] = values
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

    def kernel_arguments(self, instruments: Instruments) -> dict[str, np.ndarray]:
        """The instrument and risk-unit arguments of :func:`marginkernel.kernels.revalue` (the scenario
        arguments are :meth:`marginkernel.scenarios.ScenarioSet.kernel_arguments`)."""
        return {
            "kind": instruments.kind,
            "settlement": instruments.settlement,
            "risk_unit": self.unit_of_row,
            "strike": instruments.strike,
            "expiry": self.expiry_years,
            "multiplier": instruments.multiplier,
            "forward": self.forward,
            "discount": self.discount,
            "vol": self.vol,
            "spot": self.unit_spot,
        }


def _expiry_key(key: Any, where: str) -> ExpiryKey:
    if isinstance(key, dt.date) and not isinstance(key, dt.datetime):
        return key
    if isinstance(key, str) and _DATE.match(key.strip()):
        try:
            return dt.date.fromisoformat(key.strip())
        except ValueError as exc:
            raise ValueError(f"{where}: cannot parse {key!r} as a date") from exc
    return to_epoch_seconds(key, where)


def _expiry_tables(data: Mapping[str, Any], key: str) -> dict[str, dict[ExpiryKey, float]]:
    """``[key.<underlying>]`` tables of expiry (time or date) = positive number."""
    out: dict[str, dict[ExpiryKey, float]] = {}
    for under, table in _table(data, key).items():
        if not isinstance(table, Mapping):
            raise TypeError(f"market.{key}.{under}: expected a table of expiry = value")
        out[str(under)] = {
            _expiry_key(k, f"market.{key}.{under}"): num(x, f"market.{key}.{under}[{k}]", positive=True)
            for k, x in table.items()
        }
    return out


def _table(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, Mapping):
        raise TypeError(f"market.{key}: expected a table, got {type(value).__name__}")
    return value


__all__ = ["SECONDS_PER_YEAR", "Market", "ResolvedMarket", "collateral_frame", "risk_unit_name"]
