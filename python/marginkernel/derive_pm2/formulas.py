"""PM2 building blocks (NumPy, per expiry or per option), each one formula of ``PMRMLib_2``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .parameters import MarginParams, SkewShockParams, VolShockParams

SECONDS_PER_YEAR = 365 * 86400
DAY = 86400
#: expiries closer than this have a fixed (unshockable) forward portion (PM2 forward feed, see
#: forward_portions)
FORWARD_SPLIT_SECONDS = 30 * 60


def forward_portions(forward: Any, seconds: Any, fixed: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """(fixed, variable) forward portions: F_s = variable * spot_shock + fixed.

    ``fixed`` given (per expiry; NaN = not given): variable = forward - fixed, as the contract takes
    both from ``IForwardFeed.getForwardPricePortions``. Otherwise the Derive feed's rule, which the
    portfolio cases' harness also applies: within the last 30 minutes the variable part is
    F * T / 30 min (the part of the settlement average not yet fixed); before that all of F.
    """
    forward = np.asarray(forward, dtype=float)
    seconds = np.asarray(seconds, dtype=float)
    near = seconds < FORWARD_SPLIT_SECONDS
    variable = np.where(near, forward * seconds / FORWARD_SPLIT_SECONDS, forward)
    fixed_rule = np.where(near, forward * (FORWARD_SPLIT_SECONDS - seconds) / FORWARD_SPLIT_SECONDS, 0.0)
    if fixed is None:
        return fixed_rule, variable
    fixed = np.asarray(fixed, dtype=float)
    given = ~np.isnan(fixed)
    return np.where(given, fixed, fixed_rule), np.where(given, forward - np.where(given, fixed, 0.0), variable)


def vol_shock_multipliers(seconds: Any, p: VolShockParams) -> tuple[np.ndarray, np.ndarray]:
    """(up, down) vol multipliers per expiry: 1 + up * tau^p and max(0, 1 - down * tau^p),
    tau = 30 days / max(T, DTE floor), p = short power if T <= 30 days else long power."""
    seconds = np.asarray(seconds, dtype=float)
    with np.errstate(divide="ignore"):
        tau = 30.0 * DAY / np.maximum(seconds, p.dte_floor_days * DAY)
    scale = tau ** np.where(seconds <= 30 * DAY, p.short_term_power, p.long_term_power)
    return 1.0 + p.vol_range_up * scale, np.maximum(0.0, 1.0 - p.vol_range_down * scale)


def static_discounts(seconds: Any, rate: Any, discount: Any, p: MarginParams) -> tuple[np.ndarray, np.ndarray]:
    """(positive, negative) static discount per expiry, applied to a shocked expiry value by its sign."""
    tau = np.asarray(seconds, dtype=float) / SECONDS_PER_YEAR
    rate = np.maximum(np.asarray(rate, dtype=float), 0.0)
    with np.errstate(over="ignore", divide="ignore"):
        pos = p.long_base_static_discount * np.exp(-tau * (rate * p.long_rate_mult_scale + p.long_rate_add_scale))
        neg = p.short_base_static_discount / np.exp(-tau * (rate * p.short_rate_mult_scale + p.short_rate_add_scale))
        return pos, np.minimum(1.0 / np.asarray(discount, dtype=float), neg)


def skew_multipliers(strike: Any, forward: Any, seconds: Any, p: SkewShockParams, kind: str) -> np.ndarray:
    """Per-option vol multiplier of a skew scenario (``kind`` "linear" or "abs"), before max(0, .)."""
    strike = np.asarray(strike, dtype=float)
    sqrt_tau = np.sqrt(np.asarray(seconds, dtype=float) / SECONDS_PER_YEAR)
    base_cap, c_base = (p.linear_base_cap, p.linear_c_base) if kind == "linear" else (p.abs_base_cap, p.abs_c_base)
    cap = c_base * sqrt_tau + base_cap
    vol_param = p.vol_param_static + sqrt_tau * p.vol_param_scale
    k_star = np.maximum(p.min_k_star, sqrt_tau * p.width_scale * vol_param)
    k = np.log(strike / np.asarray(forward, dtype=float))
    if kind == "abs":
        k = np.abs(k)
    with np.errstate(divide="ignore", invalid="ignore"):
        ramp = k * cap / k_star
    ramp = np.where(k == 0.0, 0.0, ramp)  # k_star == 0 with k == 0: no skew
    return np.asarray(1.0 + np.where(k >= 0.0, np.minimum(cap, ramp), np.maximum(-cap, ramp)))


def naked_shorts(strikes: Sequence[float], amounts: Sequence[float]) -> float:
    """PMRMLib_2._addOptionContingency's count of short contracts not covered by a long at the same
    strike (calls and puts alike), in the contract's own pairwise loop."""
    n = len(strikes)
    seen = [False] * n
    total = 0.0
    for i in range(n):
        if seen[i]:
            continue
        a = amounts[i]
        found = False
        for j in range(i + 1, n):
            if strikes[j] != strikes[i]:
                continue
            seen[j] = True
            b = amounts[j]
            if a * b < 0:
                total += -a - min(-a, b) if a < 0 else -b - min(a, -b)
            elif a < 0:
                total += -a - b
            found = True
        if not found and a < 0:
            total += -a
    return total


__all__ = [
    "DAY",
    "FORWARD_SPLIT_SECONDS",
    "SECONDS_PER_YEAR",
    "forward_portions",
    "naked_shorts",
    "skew_multipliers",
    "static_discounts",
    "vol_shock_multipliers",
]
