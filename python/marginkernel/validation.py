"""Validation of user input: the one place that turns a raw value into a checked number.

Every message names the field (and row, when there is one) so that a user can find the value:
``instruments[3]: field 'strike' must be > 0, got -1.0``. A value of the wrong type raises
:class:`NotANumber`, which is both a ``TypeError`` and a ``ValueError``: callers that catch either
keep working, and the CLI turns both into one line and exit status 2.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

_NUMBER_TYPES = (int, float, np.integer, np.floating)


class NotANumber(TypeError, ValueError):
    """A value that should be a number is of another type."""


def is_number(value: Any) -> bool:
    """True for ints and floats (Python or NumPy), False for bools and everything else."""
    return isinstance(value, _NUMBER_TYPES) and not isinstance(value, (bool, np.bool_))


def is_missing(value: Any) -> bool:
    """None or a float NaN: an empty cell of a table."""
    return value is None or (isinstance(value, (float, np.floating)) and math.isnan(value))


def number(
    value: Any,
    where: str,
    *,
    lo: float | None = None,
    hi: float | None = None,
    positive: bool = False,
    allow_inf: bool = False,
    strings: bool = False,
) -> float:
    """``value`` as a finite float within [lo, hi] (> 0 with ``positive``), or an error naming ``where``.

    ``allow_inf`` admits +inf when there is no upper bound (an "unlimited" setting); ``strings``
    admits numeric strings (JSON files that quote their numbers).
    """
    raw = value
    if strings and isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise NotANumber(f"{where}: expected a number, got {raw!r}") from None
    if not is_number(value):
        raise NotANumber(f"{where}: expected a number, got {raw!r}")
    x = float(value)
    if math.isnan(x) or (math.isinf(x) and not (allow_inf and hi is None and x > 0)):
        raise ValueError(f"{where}: must be finite, got {raw!r}")
    if positive and not x > 0.0:
        raise ValueError(f"{where}: must be > 0, got {raw!r}")
    if lo is not None and x < lo:
        raise ValueError(f"{where}: must be >= {lo}, got {raw!r}")
    if hi is not None and x > hi:
        raise ValueError(f"{where}: must be <= {hi}, got {raw!r}")
    return x


def integer(value: Any, where: str, *, lo: int | None = None, hi: int | None = None) -> int:
    """``value`` as an int within [lo, hi]; floats (even integral ones) and bools are refused."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise NotANumber(f"{where}: expected an integer, got {value!r}")
    if lo is not None and value < lo:
        raise ValueError(f"{where}: must be >= {lo}, got {value!r}")
    if hi is not None and value > hi:
        raise ValueError(f"{where}: must be <= {hi}, got {value!r}")
    return int(value)


def table(value: Any, where: str) -> Mapping[str, Any]:
    """``value`` as a mapping (a TOML table / JSON object), or an error naming ``where``."""
    if not isinstance(value, Mapping):
        raise NotANumber(f"{where}: expected a table, got {type(value).__name__}")
    return value


def per_key(value: Any, where: str, **bounds: Any) -> float | dict[str, float]:
    """A number, or a non-empty table of numbers keyed by name (e.g. per underlying)."""
    if isinstance(value, Mapping):
        if not value:
            raise ValueError(f"{where}: empty table")
        return {str(k): number(v, f"{where}.{k}", **bounds) for k, v in value.items()}
    return number(value, where, **bounds)


def finite_array(values: Any, where: str) -> np.ndarray:
    """A float64 array with every element finite; the error names the first bad row."""
    arr = np.asarray(values, dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(arr.reshape(-1)))
    if bad.size:
        row = int(bad[0])
        raise ValueError(f"{where}[{row}]: must be finite, got {arr.reshape(-1)[row]!r}")
    return arr


__all__ = ["NotANumber", "finite_array", "integer", "is_missing", "is_number", "number", "per_key", "table"]
