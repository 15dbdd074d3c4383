"""Low-level array kernels: NumPy in, NumPy out, one call per pipeline stage.

A drop-in for hand-written NumPy margin code. Inputs are checked for dtype, shape and contiguity
here (one place) and for values (finite, positive, in range) in C++; either way a bad input raises
a ``TypeError`` or ``ValueError`` naming the field and row. Inputs are never modified and never
copied when they already have the right dtype and layout. The pure-NumPy twin of every function
here is in :mod:`marginkernel.reference`.
"""

from __future__ import annotations

import numpy as np

from . import _core

__all__ = [
    "VOL_SHOCKS",
    "InputError",
    "revalue",
    "net",
    "worst_loss",
    "value_at_risk",
    "normal_cdf",
    "simd_target",
    "available_simd_targets",
    "select_simd_target",
]

InputError = _core.InputError
simd_target = _core.simd_target
available_simd_targets = _core.available_simd_targets
select_simd_target = _core.select_simd_target

#: vol shock kinds by name, as the C++ enum VolShockKind numbers them
VOL_SHOCKS = {"none": 0, "multiplicative": 1, "additive": 2, "relative": 3}


def as_array(name: str, value, dtype, ndim: int | None = None) -> np.ndarray:
    """`value` as a C-contiguous array of `dtype` without copying it when it already is one.

    Integer input is accepted for an integer dtype when every value fits; float32 is accepted for
    float64 (exact). Anything else (floats for ints, strings, objects) is a TypeError naming `name`.
    """
    arr = np.asarray(value)
    want = np.dtype(dtype)
    if arr.dtype != want:
        if arr.dtype.kind in "iu" and want.kind == "i":
            info = np.iinfo(want)
            if arr.size and (arr.min() < info.min or arr.max() > info.max):
                raise ValueError(f"{name}: values out of range for {want}")
            arr = arr.astype(want)
        elif arr.dtype.kind == "f" and want.kind == "f" and arr.dtype.itemsize <= want.itemsize:
            arr = arr.astype(want)
        elif arr.dtype.kind in "iu" and want.kind == "f" and arr.size == 0:
            arr = arr.astype(want)
        else:
            raise TypeError(f"{name}: expected dtype {want}, got {arr.dtype}")
    elif not arr.flags.c_contiguous:
        raise ValueError(
            f"{name}: array is not C-contiguous (strides {arr.strides}); pass np.ascontiguousarray({name})"
        )
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name}: expected a {ndim}-d array, got shape {arr.shape}")
    return arr


def _output(name: str, value, *inputs: np.ndarray) -> np.ndarray:
    """An array the kernel writes into: float64, C-contiguous, writeable, never converted, and not
    overlapping any of the `inputs` (the kernel reads them while it writes)."""
    if not isinstance(value, np.ndarray) or value.dtype != np.float64:
        raise TypeError(f"{name}: expected a float64 numpy array, got {getattr(value, 'dtype', type(value).__name__)}")
    if not value.flags.c_contiguous or not value.flags.writeable:
        raise ValueError(f"{name}: must be C-contiguous and writeable")
    if any(a is not None and np.may_share_memory(value, a) for a in inputs):
        raise ValueError(f"{name}: overlaps an input array")
    return value


def _f64(name, value, ndim=None):
    return as_array(name, value, np.float64, ndim)


def revalue(
    kind,
    settlement,
    risk_unit,
    strike,
    expiry,
    multiplier,
    forward,
    discount,
    vol,
    spot,
    price_multiplier,
    vol_shift=None,
    time_shift=None,
    *,
    vol_shock: str = "none",
    tau_floor_days: float = 1.0,
    short_power: float = 0.0,
    long_power: float = 0.0,
    vol_up_floor: float = 0.0,
    threads: int = 1,
    out=None,
):
    """Risk arrays: ``R[i, s]``, the P&L of one unit of instrument i in scenario s.

    Per instrument (length n): ``kind`` (0 future, 1 perpetual, 2 call, 3 put, 4 spot), ``settlement``
    (0 linear, 1 inverse), ``risk_unit`` (index into ``spot``), ``strike``, ``expiry`` (years),
    ``multiplier``, ``forward`` (forward of the expiry, or mark of a perpetual / spot), ``discount``
    (factor) and ``vol``. Per risk unit: ``spot`` (U,), ``price_multiplier`` and ``vol_shift`` (U, S);
    per scenario ``time_shift`` (S,) in years. Returns ``(R, value_now)`` with R of shape (n, S) and
    ``value_now`` the value of one unit now (option premium; 0 for the rest). ``out``, a writeable
    C-contiguous float64 (n, S) array, receives R in place (and is returned as R): revaluing into
    the same buffer on every market update avoids allocating and first-touching a new one.
    """
    if vol_shock not in VOL_SHOCKS:
        raise ValueError(f"vol_shock: must be one of {sorted(VOL_SHOCKS)}, got {vol_shock!r}")
    arrays = (
        as_array("kind", kind, np.int8, 1),
        as_array("settlement", settlement, np.int8, 1),
        as_array("risk_unit", risk_unit, np.int32, 1),
        _f64("strike", strike, 1),
        _f64("expiry", expiry, 1),
        _f64("multiplier", multiplier, 1),
        _f64("forward", forward, 1),
        _f64("discount", discount, 1),
        _f64("vol", vol, 1),
        _f64("spot", spot, 1),
        _f64("price_multiplier", price_multiplier, 2),
        None if vol_shift is None else _f64("vol_shift", vol_shift, 2),
        None if time_shift is None else _f64("time_shift", time_shift, 1),
    )
    return _core.revalue(
        *arrays,
        VOL_SHOCKS[vol_shock],
        float(tau_floor_days),
        float(short_power),
        float(long_power),
        float(vol_up_floor),
        int(threads),
        None if out is None else _output("out", out, *arrays),
    )


def net(risk, risk_unit, n_units: int, account_start, instrument, quantity, *, threads: int = 1, out=None):
    """Scenario P&L per account and risk unit, shape (accounts, n_units, S).

    Positions are sparse, in compressed rows by account: account a holds ``quantity[k]`` of
    instrument ``instrument[k]`` for ``account_start[a] <= k < account_start[a + 1]``. ``out``, a
    writeable C-contiguous float64 array of that shape, receives the result in place.
    """
    if int(n_units) < 1:
        raise ValueError(f"n_units: must be >= 1, got {n_units}")
    risk = _f64("risk", risk, 2)
    return _core.net(
        risk,
        as_array("risk_unit", risk_unit, np.int32, 1),
        int(n_units),
        as_array("account_start", account_start, np.int64, 1),
        as_array("instrument", instrument, np.int32, 1),
        _f64("quantity", quantity, 1),
        int(threads),
        None if out is None else _output("out", out, risk),
    )


def worst_loss(pnl, weight=None, gain_factor: float = 1.0):
    """``(loss, worst)`` per row of ``pnl`` (rows, S): loss = max(0, -min_s w_s * P'_s) where P' scales
    gains by ``gain_factor``; ``weight`` (W, S) applies row ``r % W`` to row r."""
    return _core.worst_loss(
        _f64("pnl", pnl, 2), None if weight is None else _f64("weight", weight, 2), float(gain_factor)
    )


def value_at_risk(pnl, confidence: float, probability=None):
    """``(var, es)`` per row of ``pnl`` (rows, S), as losses, at ``confidence`` (e.g. 0.99)."""
    return _core.value_at_risk(
        _f64("pnl", pnl, 2),
        None if probability is None else _f64("probability", probability, 1),
        float(confidence),
    )


def normal_cdf(x):
    """The vectorised standard normal CDF the option kernel uses."""
    return _core.normal_cdf(_f64("x", x))
