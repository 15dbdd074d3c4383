"""Low-level array kernels: NumPy in, NumPy out, one call per pipeline stage.

A drop-in for hand-written NumPy margin code. Inputs are checked for dtype, shape and contiguity
here (one place) and for values (finite, positive, in range) in C++; either way a bad input raises
a ``TypeError`` or ``ValueError`` naming the field and row. Inputs are never modified and never
copied when they already have the right dtype and layout. The pure-NumPy twin of every function
here is in :mod:`marginkernel.reference`, with the same signature (``tests/test_signatures.py``).

Results are finite: finite inputs whose result would overflow (a multiplier of 1e308, a vol scale
``tau ** 1000``, probability weights whose sum overflows) raise :class:`InputError` naming the
field. ``threads`` must be an integer >= 1; more than the machine's hardware threads are capped.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from . import _core
from .codes import VOL_SHOCKS
from .validation import integer

__all__ = [
    "VOL_SHOCKS",
    "InputError",
    "available_simd_targets",
    "check_threads",
    "net",
    "normal_cdf",
    "revalue",
    "select_simd_target",
    "simd_target",
    "value_at_risk",
    "worst_loss",
]

InputError = _core.InputError
simd_target = _core.simd_target
available_simd_targets = _core.available_simd_targets
select_simd_target = _core.select_simd_target

#: the largest thread count handed to C++ (its ``int``); anything above is capped there anyway
_MAX_THREADS = 2**31 - 1

F64 = npt.NDArray[np.float64]


def check_threads(threads: object) -> int:
    """``threads`` as an int >= 1 for the C++ core: an integer (not a float, not a bool), else
    ``TypeError``; below 1, ``ValueError``. Values above the hardware's thread count are allowed
    (the core caps them)."""
    return min(integer(threads, "threads", lo=1), _MAX_THREADS)


def as_array(name: str, value: npt.ArrayLike, dtype: npt.DTypeLike, ndim: int | None = None) -> np.ndarray:
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
        elif (arr.dtype.kind == "f" and want.kind == "f" and arr.dtype.itemsize <= want.itemsize) or (
            arr.dtype.kind in "iu" and want.kind == "f" and arr.size == 0
        ):
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


def _output(name: str, value: object, *inputs: np.ndarray | None) -> F64:
    """An array the kernel writes into: float64, C-contiguous, writeable, never converted, and not
    overlapping any of the `inputs` (the kernel reads them while it writes)."""
    if not isinstance(value, np.ndarray) or value.dtype != np.float64:
        got = getattr(value, "dtype", type(value).__name__)
        raise TypeError(f"{name}: expected a float64 numpy array, got {got}")
    if not value.flags.c_contiguous or not value.flags.writeable:
        raise ValueError(f"{name}: must be C-contiguous and writeable")
    if any(a is not None and np.may_share_memory(value, a) for a in inputs):
        raise ValueError(f"{name}: overlaps an input array")
    return value


def _f64(name: str, value: npt.ArrayLike, ndim: int | None = None) -> F64:
    return as_array(name, value, np.float64, ndim)


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
    workers = check_threads(threads)
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
    risk, value_now = _core.revalue(
        *arrays,
        VOL_SHOCKS[vol_shock],
        float(tau_floor_days),
        float(short_power),
        float(long_power),
        float(vol_up_floor),
        workers,
        None if out is None else _output("out", out, *arrays),
    )
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
    """Scenario P&L per account and risk unit, shape (accounts, n_units, S).

    Positions are sparse, in compressed rows by account: account a holds ``quantity[k]`` of
    instrument ``instrument[k]`` for ``account_start[a] <= k < account_start[a + 1]``. ``out``, a
    writeable C-contiguous float64 array of that shape that shares no memory with any input,
    receives the result in place.
    """
    units = integer(n_units, "n_units", lo=1, hi=2**31 - 1)
    workers = check_threads(threads)
    arrays = (
        _f64("risk", risk, 2),
        as_array("risk_unit", risk_unit, np.int32, 1),
        as_array("account_start", account_start, np.int64, 1),
        as_array("instrument", instrument, np.int32, 1),
        _f64("quantity", quantity, 1),
    )
    dst = None if out is None else _output("out", out, *arrays)
    pnl: F64 = _core.net(arrays[0], arrays[1], units, *arrays[2:], workers, dst)
    return pnl


def worst_loss(
    pnl: npt.ArrayLike, weight: npt.ArrayLike | None = None, gain_factor: float = 1.0
) -> tuple[F64, npt.NDArray[np.int32]]:
    """``(loss, worst)`` per row of ``pnl`` (rows, S): loss = max(0, -min_s w_s * P'_s) where P' scales
    gains by ``gain_factor``; ``weight`` (W, S) applies row ``r % W`` to row r."""
    loss, worst = _core.worst_loss(
        _f64("pnl", pnl, 2), None if weight is None else _f64("weight", weight, 2), float(gain_factor)
    )
    return loss, worst


def value_at_risk(pnl: npt.ArrayLike, confidence: float, probability: npt.ArrayLike | None = None) -> tuple[F64, F64]:
    """``(var, es)`` per row of ``pnl`` (rows, S), as losses, at ``confidence`` (e.g. 0.99)."""
    var, es = _core.value_at_risk(
        _f64("pnl", pnl, 2),
        None if probability is None else _f64("probability", probability, 1),
        float(confidence),
    )
    return var, es


def normal_cdf(x: npt.ArrayLike) -> F64:
    """The vectorised standard normal CDF the option kernel uses."""
    result: F64 = _core.normal_cdf(_f64("x", x))
    return result
