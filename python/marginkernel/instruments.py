"""Instrument definitions: records or a DataFrame in, a struct of arrays out.

Fields of a record (DataFrame columns):

``id``          unique name, e.g. ``"BTC-27DEC26-100000-C"``
``kind``        ``future``, ``perpetual``, ``call``, ``put`` or ``spot``
``underlying``  e.g. ``"BTC"``; its index price comes from the market snapshot
``settlement``  ``linear`` (settles in ``currency``) or ``inverse`` (coin-settled); default linear
``currency``    settlement currency; default: the underlying for inverse, ``"USD"`` for linear
``strike``      options only
``expiry``      futures and options: a datetime, an ISO-8601 string or epoch seconds (UTC)
``multiplier``  contract size, default 1: units of the underlying for linear contracts and inverse
                options, quote-currency notional for inverse futures and perpetuals

The *risk unit* of an instrument is its (underlying, settlement currency) pair, named
``"BTC"`` when they coincide and ``"BTC/USDC"`` otherwise: scenario P&L nets within a risk unit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np
import pandas as pd

KINDS = {"future": 0, "perpetual": 1, "call": 2, "put": 3, "spot": 4}
SETTLEMENTS = {"linear": 0, "inverse": 1}
_FIELDS = {"id", "kind", "underlying", "settlement", "currency", "strike", "expiry", "multiplier"}


def to_epoch_seconds(value, field: str = "expiry") -> float:
    """A datetime, ISO-8601 string, pandas Timestamp or number of epoch seconds -> epoch seconds."""
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        out = float(value)
    elif isinstance(value, str):
        try:
            stamp = pd.Timestamp(value)
            out = (stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp).timestamp()
        except ValueError as exc:
            raise ValueError(f"{field}: cannot parse {value!r} as a date/time") from exc
    elif isinstance(value, datetime):
        out = (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).timestamp()
    else:
        raise TypeError(f"{field}: expected a datetime, ISO string or epoch seconds, got {type(value).__name__}")
    if not math.isfinite(out):
        raise ValueError(f"{field}: must be finite, got {value!r}")
    return out


def risk_unit_name(underlying: str, currency: str) -> str:
    return underlying if underlying == currency else f"{underlying}/{currency}"


@dataclass(frozen=True, eq=False)
class Instruments:
    """Instruments as a struct of arrays (one row per instrument). Build with :meth:`from_records`
    or :meth:`from_frame`; rows keep the input order."""

    ids: np.ndarray  # str objects
    kind: np.ndarray  # int8, see KINDS
    settlement: np.ndarray  # int8, see SETTLEMENTS
    underlying: np.ndarray  # str objects
    currency: np.ndarray  # str objects, settlement currency
    strike: np.ndarray  # float64, NaN for non-options
    expiry: np.ndarray  # float64 epoch seconds, NaN for perpetuals and spot
    multiplier: np.ndarray  # float64

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def risk_units(self) -> np.ndarray:
        """Risk unit name per row."""
        return np.array([risk_unit_name(u, c) for u, c in zip(self.underlying, self.currency)], dtype=object)

    def index_of(self) -> dict[str, int]:
        return {i: k for k, i in enumerate(self.ids)}

    def to_frame(self) -> pd.DataFrame:
        names = {v: k for k, v in KINDS.items()}
        settle = {v: k for k, v in SETTLEMENTS.items()}
        return pd.DataFrame(
            {
                "id": self.ids,
                "kind": [names[k] for k in self.kind],
                "underlying": self.underlying,
                "settlement": [settle[s] for s in self.settlement],
                "currency": self.currency,
                "strike": self.strike,
                "expiry": pd.to_datetime(self.expiry, unit="s", utc=True),
                "multiplier": self.multiplier,
            }
        )

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> Instruments:
        return cls.from_records(frame.to_dict("records"))

    @classmethod
    def from_records(cls, records) -> Instruments:
        rows = list(records)
        if not rows:
            raise ValueError("instruments: no instruments given")
        cols = {f: [] for f in ("ids", "kind", "settlement", "underlying", "currency", "strike", "expiry", "multiplier")}
        seen: set[str] = set()
        for n, rec in enumerate(rows):
            if not isinstance(rec, dict):
                raise TypeError(f"instruments row {n}: expected a mapping, got {type(rec).__name__}")
            unknown = set(rec) - _FIELDS
            if unknown:
                raise ValueError(f"instruments row {n}: unknown field(s) {sorted(unknown)}; known: {sorted(_FIELDS)}")
            iid = rec.get("id")
            if not isinstance(iid, str) or not iid:
                raise ValueError(f"instruments row {n}: field 'id' must be a non-empty string, got {iid!r}")
            where = f"instrument {iid!r} (row {n})"
            if iid in seen:
                raise ValueError(f"{where}: duplicate id")
            seen.add(iid)
            kind = rec.get("kind")
            if kind not in KINDS:
                raise ValueError(f"{where}: field 'kind' must be one of {list(KINDS)}, got {kind!r}")
            settlement = rec.get("settlement", "linear")
            if _missing(settlement):
                settlement = "linear"
            if settlement not in SETTLEMENTS:
                raise ValueError(f"{where}: field 'settlement' must be 'linear' or 'inverse', got {settlement!r}")
            underlying = rec.get("underlying")
            if not isinstance(underlying, str) or not underlying:
                raise ValueError(f"{where}: field 'underlying' must be a non-empty string, got {underlying!r}")
            currency = rec.get("currency")
            if _missing(currency):
                currency = underlying if settlement == "inverse" else "USD"
            if not isinstance(currency, str):
                raise ValueError(f"{where}: field 'currency' must be a string, got {currency!r}")
            multiplier = _number(rec.get("multiplier", 1.0), where, "multiplier", default=1.0)
            if not multiplier > 0:
                raise ValueError(f"{where}: field 'multiplier' must be finite and > 0, got {multiplier!r}")
            is_option = kind in ("call", "put")
            strike = math.nan
            if is_option:
                strike = _number(rec.get("strike"), where, "strike")
                if not strike > 0:
                    raise ValueError(f"{where}: field 'strike' must be finite and > 0, got {rec.get('strike')!r}")
            expiry = math.nan
            if kind in ("future", "call", "put"):
                value = rec.get("expiry")
                if _missing(value):
                    raise ValueError(f"{where}: field 'expiry' is required for a {kind}")
                try:
                    expiry = to_epoch_seconds(value)
                except (TypeError, ValueError) as exc:
                    raise type(exc)(f"{where}: {exc}") from None
            cols["ids"].append(iid)
            cols["kind"].append(KINDS[kind])
            cols["settlement"].append(SETTLEMENTS[settlement])
            cols["underlying"].append(underlying)
            cols["currency"].append(currency)
            cols["strike"].append(strike)
            cols["expiry"].append(expiry)
            cols["multiplier"].append(multiplier)
        return cls(
            ids=np.array(cols["ids"], dtype=object),
            kind=np.array(cols["kind"], dtype=np.int8),
            settlement=np.array(cols["settlement"], dtype=np.int8),
            underlying=np.array(cols["underlying"], dtype=object),
            currency=np.array(cols["currency"], dtype=object),
            strike=np.array(cols["strike"], dtype=np.float64),
            expiry=np.array(cols["expiry"], dtype=np.float64),
            multiplier=np.array(cols["multiplier"], dtype=np.float64),
        )


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _number(value, where: str, field: str, default: float | None = None) -> float:
    if _missing(value):
        if default is not None:
            return default
        raise ValueError(f"{where}: field {field!r} is required")
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{where}: field {field!r} must be a number, got {value!r}")
    out = float(value)
    if not math.isfinite(out):
        raise ValueError(f"{where}: field {field!r} must be finite, got {value!r}")
    return out
