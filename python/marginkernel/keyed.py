"""Values keyed by name: the one lookup rule for per-unit, per-underlying and per-currency settings.

A setting is either one number (it applies everywhere) or a table keyed by name with an optional
``"default"``. For a row with candidate keys ``(k1, k2, ...)`` (for example a risk unit's name, then
its underlying) the value is the first key the table has, else ``"default"``, else the caller's
``fallback``; without a fallback a missing value is an error naming the setting and the row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

_NONE: Any = object()


def keyed_value(
    spec: float | Mapping[str, float],
    keys: Sequence[str],
    where: str,
    *,
    fallback: float = _NONE,
    label: str | None = None,
) -> float:
    """The value of ``spec`` for one row with candidate ``keys`` (see the module docstring).

    ``label`` describes the row in the error (default: the first key, quoted)."""
    if not isinstance(spec, Mapping):
        return float(spec)
    for key in keys:
        if key in spec:
            return float(spec[key])
    if "default" in spec:
        return float(spec["default"])
    if fallback is not _NONE:
        return float(fallback)
    what = label if label is not None else repr(keys[0] if keys else "")
    raise ValueError(f"{where}: no value for {what} and no 'default'")


def keyed_array(
    spec: float | Mapping[str, float],
    rows: Sequence[Sequence[str]],
    where: str,
    *,
    fallback: float = _NONE,
    labels: Sequence[str] | None = None,
) -> np.ndarray:
    """:func:`keyed_value` for every row (float64 array, one entry per row)."""
    if not isinstance(spec, Mapping):
        return np.full(len(rows), float(spec))
    return np.array(
        [
            keyed_value(spec, keys, where, fallback=fallback, label=None if labels is None else labels[k])
            for k, keys in enumerate(rows)
        ],
        dtype=np.float64,
    )


__all__ = ["keyed_array", "keyed_value"]
