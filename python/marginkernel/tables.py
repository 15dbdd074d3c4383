"""Tables in: the one place that turns what a user passes for a table into a pandas DataFrame.

Accepted wherever the API takes a table (positions, instruments, collateral): a pandas DataFrame
(used as is, never modified), a pyarrow ``Table`` or ``RecordBatch``, any object with the Arrow
PyCapsule stream interface ``__arrow_c_stream__`` (for example a polars DataFrame), a mapping of
columns, or an iterable of records (mappings).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd


def is_arrow(value: Any) -> bool:
    """True for objects that speak the Arrow PyCapsule stream interface (pyarrow, polars, ...)."""
    return hasattr(value, "__arrow_c_stream__") or type(value).__module__.startswith("pyarrow")


def arrow_to_frame(value: Any, where: str) -> pd.DataFrame:
    """An Arrow table-like object as a DataFrame (pyarrow reads the stream; strings stay strings)."""
    try:
        import pyarrow as pa
    except ImportError:  # pragma: no cover - pyarrow is a dependency of the table path
        raise TypeError(f"{where}: reading an Arrow table needs pyarrow (pip install pyarrow)") from None
    if isinstance(value, pa.RecordBatch):
        value = pa.Table.from_batches([value])
    elif not isinstance(value, pa.Table):
        try:
            value = pa.table(value)
        except (TypeError, ValueError, pa.ArrowException) as exc:
            raise TypeError(f"{where}: cannot read {type(value).__name__} as an Arrow table: {exc}") from None
    return value.to_pandas()


def as_frame(value: Any, where: str, *, records_only: bool = False) -> pd.DataFrame:
    """``value`` as a DataFrame (see the module docstring); a TypeError naming ``where`` otherwise.

    ``records_only``: a mapping is not accepted as columns (the caller gives mappings another meaning)."""
    if isinstance(value, pd.DataFrame):
        return value
    if is_arrow(value):
        return arrow_to_frame(value, where)
    if isinstance(value, Mapping) and not records_only:
        try:
            return pd.DataFrame(value)
        except ValueError as exc:
            raise ValueError(f"{where}: cannot read as a table: {exc}") from None
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
        raise TypeError(f"{where}: expected a DataFrame, an Arrow table or records, got {type(value).__name__}")
    rows = list(value)
    for k, r in enumerate(rows):
        if not isinstance(r, Mapping):
            raise TypeError(f"{where} row {k}: expected a mapping, got {type(r).__name__}")
    return pd.DataFrame(rows)


__all__ = ["arrow_to_frame", "as_frame", "is_arrow"]
