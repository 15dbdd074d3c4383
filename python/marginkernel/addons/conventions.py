"""Instrument conventions the add-ons share: contract size, notional, delta and contract month.

Per unit of instrument i of risk unit u:

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
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .. import kernels
from ..codes import CALL, INVERSE, KINDS, LINEAR, PUT, SPOT

#: kind names in code order (index = code)
KIND_NAMES: tuple[str, ...] = tuple(sorted(KINDS, key=KINDS.__getitem__))
_normal_cdf: Callable[[np.ndarray], np.ndarray] = kernels.normal_cdf


def instrument_units(kind: Any, settlement: Any, multiplier: Any, forward: Any) -> np.ndarray:
    """Contract size in units of the underlying: the multiplier; inverse futures, perpetuals and spot
    ``multiplier / F`` (their multiplier is a USD notional)."""
    kind, settlement = np.asarray(kind), np.asarray(settlement)
    mult, fwd = np.asarray(multiplier, float), np.asarray(forward, float)
    linear_like = (kind == CALL) | (kind == PUT) | (settlement == LINEAR)
    return np.where(linear_like, mult, mult / fwd)


def instrument_notional(kind: Any, settlement: Any, multiplier: Any, forward: Any) -> np.ndarray:
    """Contract notional in settlement currency: ``units * F`` (linear) or ``units`` coins (inverse)."""
    units = instrument_units(kind, settlement, multiplier, forward)
    return np.where(np.asarray(settlement) == LINEAR, units * np.asarray(forward, float), units)


def instrument_deltas(  # noqa: PLR0917 - positional, as the instrument arrays are listed
    kind: Any, settlement: Any, multiplier: Any, forward: Any, strike: Any, vol: Any, expiry: Any, discount: Any
) -> np.ndarray:
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
        n1 = np.where(np.isnan(d1), 0.5, _normal_cdf(np.nan_to_num(d1, posinf=40.0, neginf=-40.0)))
        df = np.asarray(discount, float)[opt]
        call = kind[opt] == CALL
        delta[opt] = np.asarray(multiplier, float)[opt] * df * np.where(call, n1, n1 - 1.0)
    return delta


def instrument_months(expiry: Any) -> np.ndarray:
    """Contract month ``"YYYYMM"`` (UTC) of each expiry (epoch seconds); ``"000000"`` for none."""
    e = np.asarray(expiry, float)
    out = np.full(len(e), "000000", dtype=object)
    ok = np.isfinite(e)
    if ok.any():
        months = e[ok].astype("datetime64[s]").astype("datetime64[M]").astype(str)
        out[ok] = np.char.replace(months, "-", "").astype(object)
    return out


__all__ = ["KIND_NAMES", "instrument_deltas", "instrument_months", "instrument_notional", "instrument_units"]
