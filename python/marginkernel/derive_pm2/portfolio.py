"""A PM2 subaccount and its market: the dataclasses, their documented bounds and their checks.

Bounds (``BOUNDS``) are the one statement of what a portfolio value may be; the JSON reader
(:mod:`.cases`) and :func:`validate_portfolio` (hand-built portfolios) both apply them, so an error
names the JSON key in one case and the dataclass field in the other. Where the contract is looser
than a bound, docs/derive-pm2.md ("Assumptions") says why the bound exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..validation import number

#: largest magnitude of an amount, price, cash or P&L figure. The contract holds them as 18-decimal
#: fixed point in int256 and reverts (checked arithmetic) once a product of two exceeds ~5.8e40;
#: 1e20 keeps every product of two below that, and every double far from overflow.
MAX_MAGNITUDE = 1e20
#: largest mark vol (1e6 = 100,000,000 %): Black-76 has long reached its sigma -> infinity limit
MAX_VOL = 1e6
#: largest time to expiry, in seconds (about 3,170 years)
MAX_SECONDS = 1e11

_AMOUNT: dict[str, Any] = {"lo": -MAX_MAGNITUDE, "hi": MAX_MAGNITUDE}
_PRICE: dict[str, Any] = {"positive": True, "hi": MAX_MAGNITUDE}
_NONNEG: dict[str, Any] = {"lo": 0.0, "hi": MAX_MAGNITUDE}
_CONF: dict[str, Any] = {"lo": 0.0}

#: "<object>.<field>" -> keyword bounds for marginkernel.validation.number
BOUNDS: dict[str, dict[str, Any]] = {
    "option.strike": _PRICE,
    "option.amount": _AMOUNT,
    "option.vol": {"lo": 0.0, "hi": MAX_VOL},
    "feed.forward": _PRICE,
    "feed.forward_fixed": _NONNEG,
    "feed.forward_confidence": _CONF,
    "feed.rate": _AMOUNT,
    "feed.rate_confidence": _CONF,
    "feed.vol_confidence": _CONF,
    "collateral.amount": _NONNEG,
    "collateral.price": _NONNEG,
    "collateral.confidence": _CONF,
    "collateral.im_haircut": _NONNEG,
    "collateral.mm_haircut": _NONNEG,
    "portfolio.spot": _PRICE,
    "portfolio.spot_confidence": _CONF,
    "portfolio.cash": _AMOUNT,
    "portfolio.perp_amount": _AMOUNT,
    "portfolio.perp_price": _NONNEG,
    "portfolio.perp_confidence": _CONF,
    "portfolio.unrealised_perp_pnl": _AMOUNT,
    "portfolio.unrealised_funding": _AMOUNT,
    "portfolio.stable_price": _PRICE,
}


@dataclass(frozen=True)
class Option:
    """One option position (``Scenario.Options[i]``)."""

    expiry_seconds: int  # Expiry: seconds from now to expiry (0 = expired)
    strike: float  # Strike
    is_call: bool  # IsCall
    amount: float  # Amount: contracts, < 0 short
    vol: float  # MarkVol: the feed's (SVI) implied vol at this strike


@dataclass(frozen=True)
class ExpiryFeed:
    """Forward, rate and confidences of one expiry (``Scenario.OptionFeeds[i]``)."""

    expiry_seconds: int  # FeedExpiry
    forward: float  # Forward
    forward_confidence: float  # ForwardConfidence
    rate: float  # Rate (annual, continuously compounded; PM2 floors it at 0)
    rate_confidence: float  # RateConfidence
    vol_confidence: float  # OptionVolConfidences
    #: the part of the forward already fixed (IForwardFeed.getForwardPricePortions); None: the
    #: Derive feed's rule (see forward_portions). 0 <= forward_fixed <= forward.
    forward_fixed: float | None = None


@dataclass(frozen=True)
class Collateral:
    """One collateral holding (``Scenario.Collaterals[i]``)."""

    name: str  # Name
    amount: float  # Amount
    price: float  # Price (USD)
    confidence: float  # Confidence of its price feed
    risk_cancelling: bool  # IsRiskCancelling: moves with the underlying's spot in scenarios
    im_haircut: float  # IMHaircut
    mm_haircut: float  # MMHaircut


@dataclass(frozen=True)
class Portfolio:
    """A PM2 subaccount and its market (the JSON's ``Scenario`` object)."""

    spot: float  # SpotPrice
    spot_confidence: float = 1.0  # SpotConfidence
    cash: float = 0.0  # Cash (USDC)
    perp_amount: float = 0.0  # NumPerps
    perp_price: float = 0.0  # PerpPrice
    perp_confidence: float = 1.0  # PerpConfidence
    unrealised_perp_pnl: float = 0.0  # UnrealisedPerpPNL
    unrealised_funding: float = 0.0  # UnrealisedFunding
    stable_price: float = 1.0  # StablePrice (USDC in USD)
    options: tuple[Option, ...] = ()
    feeds: tuple[ExpiryFeed, ...] = ()
    collaterals: tuple[Collateral, ...] = ()

    def expiries(self) -> list[int]:
        """Distinct option expiries (seconds) in order of first appearance among the options."""
        seen: dict[int, None] = {}
        for o in self.options:
            seen.setdefault(o.expiry_seconds, None)
        return list(seen)


def _check_fields(obj: object, prefix: str, where: str) -> None:
    for key, bounds in BOUNDS.items():
        group, name = key.split(".")
        if group == prefix and hasattr(obj, name):
            value = getattr(obj, name)
            if value is not None:
                number(value, f"{where}.{name}", **bounds)


def _check_expiry(value: Any, where: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SECONDS:
        raise ValueError(f"{where}: expected whole seconds in [0, {MAX_SECONDS:.0e}], got {value!r}")


def check_consistency(pf: Portfolio, where: str, names: dict[str, str]) -> None:
    """Cross-field rules (shared by the JSON reader and :func:`validate_portfolio`); ``names`` maps
    the dataclass names ``perp_price``, ``feeds``, ``options``, ``expiry``, ``forward_fixed`` to the
    caller's spelling."""
    if pf.perp_amount != 0.0 and not pf.perp_price > 0.0:
        raise ValueError(
            f"{where}.{names['perp_price']}: must be > 0 when the perp position is not 0, got {pf.perp_price}"
        )
    seen: set[int] = set()
    for i, f in enumerate(pf.feeds):
        if f.expiry_seconds in seen:
            raise ValueError(f"{where}.{names['feeds']}[{i}]: duplicate expiry {f.expiry_seconds}")
        seen.add(f.expiry_seconds)
        if f.forward_fixed is not None and not f.forward_fixed <= f.forward:
            raise ValueError(f"{where}.{names['feeds']}[{i}].{names['forward_fixed']}: must be <= the forward")
    for i, o in enumerate(pf.options):
        if o.expiry_seconds not in seen:
            raise ValueError(
                f"{where}.{names['options']}[{i}].{names['expiry']}: no feed for expiry {o.expiry_seconds}"
            )


_DATACLASS_NAMES = {
    "perp_price": "perp_price",
    "feeds": "feeds",
    "options": "options",
    "expiry": "expiry_seconds",
    "forward_fixed": "forward_fixed",
}


def validate_portfolio(pf: Portfolio, where: str = "portfolio") -> None:
    """Every bound of ``BOUNDS`` and the cross-field rules, naming the dataclass field."""
    if not isinstance(pf, Portfolio):
        raise TypeError(f"{where}: expected a Portfolio, got {type(pf).__name__}")
    _check_fields(pf, "portfolio", where)
    for i, o in enumerate(pf.options):
        _check_fields(o, "option", f"{where}.options[{i}]")
        _check_expiry(o.expiry_seconds, f"{where}.options[{i}].expiry_seconds")
    for i, f in enumerate(pf.feeds):
        _check_fields(f, "feed", f"{where}.feeds[{i}]")
        _check_expiry(f.expiry_seconds, f"{where}.feeds[{i}].expiry_seconds")
    for i, c in enumerate(pf.collaterals):
        _check_fields(c, "collateral", f"{where}.collaterals[{i}]")
    check_consistency(pf, where, _DATACLASS_NAMES)


__all__ = [
    "BOUNDS",
    "MAX_MAGNITUDE",
    "MAX_SECONDS",
    "MAX_VOL",
    "Collateral",
    "ExpiryFeed",
    "Option",
    "Portfolio",
    "check_consistency",
    "validate_portfolio",
]
