"""The pure-NumPy reference: the definition every C++ kernel is held to.

Each function has the same signature and semantics as its twin in :mod:`marginkernel.kernels`
and is written for clarity, not speed (whole (n, S) arrays, SciPy's ``ndtr`` for the normal CDF).
The conventions are those of architecture §3: P&L > 0 is a gain, loss = -P&L, margin >= 0.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy.special import ndtr

from .codes import CALL, FUTURE, INVERSE, LINEAR, PERPETUAL, PUT, SPOT, VOL_SHOCKS

__all__ = [
    "CALL",
    "DAYS_PER_YEAR",
    "FUTURE",
    "INVERSE",
    "LEVEL_RTOL",
    "LINEAR",
    "PERPETUAL",
    "PUT",
    "SPOT",
    "black76",
    "net",
    "normal_cdf",
    "revalue",
    "shocked_vol",
    "value_at_risk",
    "vol_scale",
    "worst_loss",
]

F64 = npt.NDArray[np.float64]
DAYS_PER_YEAR = 365.0


def black76(  # noqa: PLR0917
    forward: npt.ArrayLike,
    strike: npt.ArrayLike,
    vol: npt.ArrayLike,
    expiry: npt.ArrayLike,
    discount: npt.ArrayLike,
    is_call: npt.ArrayLike,
) -> F64:
    """Black-76 value of one unit; sigma*sqrt(T) == 0 gives the discounted intrinsic value."""
    forward, strike, vol, expiry, discount, is_call = np.broadcast_arrays(
        *(np.asarray(a, dtype=float) for a in (forward, strike, vol, expiry, discount)),
        np.asarray(is_call, dtype=bool),
    )
    sign = np.where(is_call, 1.0, -1.0)
    sd = vol * np.sqrt(np.maximum(expiry, 0.0))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        d1 = (np.log(forward / strike) + 0.5 * sd * sd) / sd
        d2 = d1 - sd
        value = sign * (forward * ndtr(sign * d1) - strike * ndtr(sign * d2))
    intrinsic = np.maximum(sign * (forward - strike), 0.0)
    result: F64 = discount * np.where(sd > 0.0, value, intrinsic)
    return result


def vol_scale(expiry: npt.ArrayLike, tau_floor_days: float, short_power: float, long_power: float) -> F64:
    """tau^p of architecture §3 per instrument: tau = 30 days / max(DTE, floor)."""
    dte = np.asarray(expiry, dtype=float) * DAYS_PER_YEAR
    tau = 30.0 / np.maximum(dte, tau_floor_days)
    return tau ** np.where(dte <= 30.0, short_power, long_power)


def shocked_vol(vol: F64, shift: F64, scale: F64, vol_shock: str, vol_up_floor: float) -> F64:
    """Implied vol after a scenario's vol shift (broadcasting vol/scale (n,1) against shift (n,S))."""
    if vol_shock == "none":
        out = vol + 0.0 * shift
    elif vol_shock == "multiplicative":
        out = vol * np.maximum(1.0 + shift * scale, 0.0)
    elif vol_shock == "additive":
        out = np.maximum(vol + shift * scale, 0.0)
    elif vol_shock == "relative":
        out = vol * np.maximum(1.0 + shift, 0.0)
    else:
        raise ValueError(f"vol_shock: must be one of {sorted(VOL_SHOCKS)}, got {vol_shock!r}")
    if vol_up_floor > 0.0:
        out = np.where(shift > 0.0, np.maximum(out, vol_up_floor), out)
    return out


def revalue(  # noqa: PLR0917 (the NumPy-style positional API of the reference)
    kind: npt.ArrayLike,
    settlement: npt.ArrayLike,
    risk_unit: npt.ArrayLike,
    strike: npt.ArrayLike,
    expiry: npt.ArrayLike,
    multiplier: npt.ArrayLike,
    forward: npt.ArrayLike,
    discount: npt.ArrayLike,
    vol: npt.ArrayLike,
    spot: npt.ArrayLike,
    price_multiplier: npt.ArrayLike,
    vol_shift: npt.ArrayLike | None = None,
    time_shift: npt.ArrayLike | None = None,
    *,
    vol_shock: str = "none",
    tau_floor_days: float = 1.0,
    short_power: float = 0.0,
    long_power: float = 0.0,
    vol_up_floor: float = 0.0,
    threads: int = 1,
    out: F64 | None = None,
) -> tuple[F64, F64]:
    """Reference of :func:`marginkernel.kernels.revalue` (``threads`` is accepted and ignored)."""
    kind = np.asarray(kind)
    inverse = np.asarray(settlement) == INVERSE
    unit = np.asarray(risk_unit)
    mult = np.asarray(multiplier, dtype=float)[:, None]
    fwd = np.asarray(forward, dtype=float)[:, None]
    spot = np.asarray(spot, dtype=float)
    m = np.asarray(price_multiplier, dtype=float)[unit]  # (n, S)
    ns = m.shape[1]
    shift = np.zeros_like(m) if vol_shift is None else np.asarray(vol_shift, dtype=float)[unit]
    dt = np.zeros(ns) if time_shift is None else np.asarray(time_shift, dtype=float)

    # Futures, perpetuals, spot: linear mult*(F_s - F); inverse mult*(1/F - 1/F_s); inverse spot 0.
    risk = np.where(inverse[:, None], mult * (1.0 / fwd - 1.0 / (fwd * m)), mult * (fwd * m - fwd))
    risk = np.where((inverse & (kind == SPOT))[:, None], 0.0, risk)
    value_now = np.zeros(len(kind))

    opt = (kind == CALL) | (kind == PUT)
    if opt.any():
        k = np.asarray(strike, dtype=float)[opt][:, None]
        t = np.asarray(expiry, dtype=float)[opt][:, None]
        df = np.asarray(discount, dtype=float)[opt][:, None]
        sigma = np.asarray(vol, dtype=float)[opt][:, None]
        is_call = (kind[opt] == CALL)[:, None]
        scale = vol_scale(t, tau_floor_days, short_power, long_power)
        s_opt = spot[unit[opt]][:, None]
        now = mult[opt] * black76(fwd[opt], k, sigma, t, df, is_call)
        sigma_s = shocked_vol(sigma, shift[opt], scale, vol_shock, vol_up_floor)
        t_s = np.maximum(t - dt[None, :], 0.0)
        later = mult[opt] * black76(fwd[opt] * m[opt], k, sigma_s, t_s, df, is_call)
        inv = inverse[opt][:, None]
        # Inverse options: coin value = quote value / index, now and in the scenario (architecture §3).
        base = np.where(inv, now / s_opt, now)
        risk[opt] = np.where(inv, later / (s_opt * m[opt]), later) - base
        value_now[opt] = base[:, 0]
    if out is not None:
        out[...] = risk
        risk = out
    return risk, value_now


def net(  # noqa: PLR0917
    risk: npt.ArrayLike,
    risk_unit: npt.ArrayLike,
    n_units: int,
    account_start: npt.ArrayLike,
    instrument: npt.ArrayLike,
    quantity: npt.ArrayLike,
    *,
    threads: int = 1,
    out: F64 | None = None,
) -> F64:
    """Reference of :func:`marginkernel.kernels.net`: P[a, u, s] = sum of q * R[i, s]."""
    risk = np.asarray(risk, dtype=float)
    starts = np.asarray(account_start)
    instrument = np.asarray(instrument)
    quantity = np.asarray(quantity, dtype=float)
    n_accounts = len(starts) - 1
    account = np.repeat(np.arange(n_accounts), np.diff(starts))
    unit = np.asarray(risk_unit)[instrument]
    pnl = np.zeros((n_accounts, int(n_units), risk.shape[1]))
    np.add.at(pnl, (account, unit), quantity[:, None] * risk[instrument])
    if out is not None:
        out[...] = pnl
        return out
    return pnl


def worst_loss(
    pnl: npt.ArrayLike, weight: npt.ArrayLike | None = None, gain_factor: float = 1.0
) -> tuple[F64, npt.NDArray[np.int32]]:
    """Reference of :func:`marginkernel.kernels.worst_loss`."""
    pnl = np.asarray(pnl, dtype=float)
    haircut = np.where(pnl > 0.0, gain_factor * pnl, pnl)
    if weight is not None:
        weight = np.asarray(weight, dtype=float)
        rows = np.arange(pnl.shape[0]) % weight.shape[0]
        haircut = weight[rows] * haircut
    return np.maximum(0.0, -haircut.min(axis=1)), haircut.argmin(axis=1).astype(np.int32)


#: The quantile level 1 - confidence is not exact in binary (1 - 0.99 = 0.010000000000000009), so
#: n x level and cumulative probabilities that fall short of it by no more than this relative amount
#: count as reaching it. Without it a 99% VaR over 1000 equally weighted scenarios would be the 11th
#: worst P&L instead of the 10th (over 100 scenarios, the 2nd worst instead of the worst).
LEVEL_RTOL = 1e-12


def value_at_risk(pnl: npt.ArrayLike, confidence: float, probability: npt.ArrayLike | None = None) -> tuple[F64, F64]:
    """Reference of :func:`marginkernel.kernels.value_at_risk`: NumPy's inverted-CDF quantile at
    level 1 - confidence (lowered by :data:`LEVEL_RTOL` relative, see there)."""
    pnl = np.asarray(pnl, dtype=float)
    level = (1.0 - confidence) * (1.0 - LEVEL_RTOL)
    if probability is None:
        q = np.quantile(pnl, level, axis=1, method="inverted_cdf")
        below = pnl <= q[:, None]
        es = -(np.where(below, pnl, 0.0).sum(axis=1) / below.sum(axis=1))
    else:
        p = np.broadcast_to(np.asarray(probability, dtype=float), pnl.shape)
        q = np.array([np.quantile(row, level, method="inverted_cdf", weights=w) for row, w in zip(pnl, p, strict=True)])
        below = pnl <= q[:, None]
        es = -((np.where(below, pnl * p, 0.0)).sum(axis=1) / np.where(below, p, 0.0).sum(axis=1))
    return -q, es


def normal_cdf(x: npt.ArrayLike) -> F64:
    """Reference of :func:`marginkernel.kernels.normal_cdf`."""
    result: F64 = ndtr(np.asarray(x, dtype=float))
    return result
