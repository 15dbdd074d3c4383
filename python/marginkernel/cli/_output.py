"""Writing a margin result: the text table, JSON and result files (see docs/cli.md, "Output").

* Rows: every account, or with ``--sort`` / ``--top`` the accounts ranked by a column (numbers
  largest first, names A to Z; ``--reverse`` flips) and cut to the first N. The totals are always
  over every account of the book, not only the rows shown.
* Text: amounts with thousands separators and 2 decimals, the margin ratio as a percentage, a
  ``TOTAL`` row.
* JSON: numbers are JSON numbers (never strings), written with Python's shortest round-trip repr;
  a missing value (NaN: e.g. equity without collateral) is ``null``; an infinite value is ``null``
  too, and the row's ``infinite`` object names the field with its sign (+1 or -1), e.g. a margin
  ratio with zero equity: ``"margin_ratio": null, "infinite": {"margin_ratio": 1}``.
* Files: ``.csv`` (amounts at full precision, ``inf`` written as ``inf``, missing as an empty
  cell) or ``.parquet`` (float64 columns; infinities stay IEEE infinities), one row per account.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..engine import MarginResult

OUTPUT_SUFFIXES = (".csv", ".parquet", ".pq")
_TEXT_COLUMNS = ("account", "worst_unit", "worst_scenario")


def amount_columns(result: MarginResult) -> list[str]:
    cols = ["im", "mm", "risk", "scan_risk", *result.components, "equity", "available"]
    return [c for c in cols if c in result.accounts.columns]


def sort_columns(result: MarginResult) -> list[str]:
    return ["account", *result.accounts.columns]


def select(
    result: MarginResult, sort: str | None = None, top: int | None = None, reverse: bool = False
) -> pd.DataFrame:
    """The accounts frame ranked by ``sort`` (``top`` without ``sort`` ranks by ``im``) and cut to ``top`` rows."""
    frame = result.accounts
    if top is not None and top < 0:
        raise ValueError(f"--top: must be >= 0, got {top}")
    if sort is None and top is not None:
        sort = "im"
    if sort is not None:
        known = sort_columns(result)
        if sort not in known:
            raise ValueError(f"--sort: unknown column {sort!r}; one of {', '.join(known)}")
        key = frame.index.to_series().astype(str) if sort == "account" else frame[sort]
        text = sort in _TEXT_COLUMNS
        if text:
            key = key.astype(object).where(key.notna(), None).map(lambda v: None if v is None else str(v))
        else:
            key = key.astype("float64")
        ascending = text != reverse
        order = np.argsort(_rank(key, ascending), kind="stable")
        frame = frame.iloc[order]
    return frame if top is None else frame.iloc[:top]


def _rank(key: pd.Series, ascending: bool) -> np.ndarray:
    """Integer ranks for a stable sort with missing values last in either direction."""
    missing = key.isna().to_numpy()
    codes = pd.Series(key[~missing].to_numpy()).rank(method="min", ascending=ascending).to_numpy()
    out = np.full(len(key), len(key) + 1, dtype=np.int64)
    out[~missing] = codes.astype(np.int64)
    return out


def totals(result: MarginResult) -> dict[str, float | int | None]:
    """Sums of the amount columns over every account; the ratio of the summed MM to the summed equity."""
    frame = result.accounts
    out: dict[str, float | int | None] = {}
    for col in amount_columns(result):
        values = frame[col].to_numpy(dtype=np.float64)
        out[col] = float(values[~np.isnan(values)].sum()) if (~np.isnan(values)).any() else float("nan")
    if "margin_ratio" in frame.columns:
        equity, mm = float(out.get("equity") or np.nan), float(out.get("mm") or 0.0)
        if np.isnan(equity):
            out["margin_ratio"] = float("nan")
        elif mm == 0:
            out["margin_ratio"] = 0.0
        else:
            out["margin_ratio"] = mm / equity if equity > 0 else float("inf")
    if "liquidation" in frame.columns:
        out["liquidation"] = int(frame["liquidation"].fillna(False).astype(bool).sum())
    return out


# -- text ---------------------------------------------------------------------------------------


def _amount_text(values: np.ndarray) -> list[str]:
    return ["-" if np.isnan(v) else ("inf" if v > 0 else "-inf") if np.isinf(v) else f"{v:,.2f}" for v in values]


def _ratio_text(values: np.ndarray) -> list[str]:
    return ["-" if np.isnan(v) else "inf" if np.isinf(v) else f"{v:.2%}" for v in values]


def table_text(result: MarginResult, rows: pd.DataFrame | None = None, *, total: bool = True) -> str:
    """The text table of ``rows`` (default: every account) with a TOTAL row over every account."""
    rows = result.accounts if rows is None else rows
    with_equity = bool(result.accounts["equity"].notna().any())
    cols = ["im", "mm", "scan_risk", *result.components] + (
        ["equity", "margin_ratio", "liquidation"] if with_equity else []
    )
    cols += ["worst_unit", "worst_scenario"]
    out: dict[str, list[str]] = {}
    tot = totals(result) if total else {}
    for c in cols:
        if c == "margin_ratio":
            out[c] = _ratio_text(rows[c].to_numpy(dtype=np.float64)) + _ratio_text(np.array([tot.get(c, np.nan)]))
        elif c == "liquidation":
            flags = rows[c].astype(object).to_numpy()
            out[c] = ["-" if v is None or v is pd.NA else "yes" if v else "no" for v in flags] + [
                f"{tot.get(c, 0)} accounts"
            ]
        elif c in ("worst_unit", "worst_scenario"):
            out[c] = [("-" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)) for v in rows[c]] + [""]
        else:
            out[c] = _amount_text(rows[c].to_numpy(dtype=np.float64)) + _amount_text(np.array([tot.get(c, np.nan)]))
    names = [str(a) for a in rows.index] + ["TOTAL"]
    if not total:
        out = {c: v[:-1] for c, v in out.items()}
        names = names[:-1]
    return _align(names, out, left={"worst_unit", "worst_scenario"}, total=total)


def _align(names: list[str], columns: dict[str, list[str]], *, left: set[str], total: bool) -> str:
    """Fixed-width text: the account column and ``left`` columns left-aligned, numbers right-aligned."""
    width0 = max(len("account"), *(len(n) for n in names)) if names else len("account")
    cells = [["account".ljust(width0)] + [n.ljust(width0) for n in names]]
    for name, values in columns.items():
        width = max(len(name), *(len(v) for v in values)) if values else len(name)
        pad = str.ljust if name in left else str.rjust
        cells.append([pad(name, width)] + [pad(v, width) for v in values])
    lines = ["  ".join(col[k] for col in cells).rstrip() for k in range(len(cells[0]))]
    if total and len(lines) > 2:
        lines.insert(len(lines) - 1, "-" * max(len(line) for line in lines))
    return "\n".join(lines)


# -- JSON ---------------------------------------------------------------------------------------


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as JSON-ready dicts, built column by column: floats as floats (NaN and infinities as
    None, infinities named with their sign in the row's ``infinite`` object), booleans as bools,
    integers as ints, everything else as its text or None."""
    names = list(frame.columns)
    columns: list[list[Any]] = []
    infinite: dict[int, dict[str, int]] = {}
    for name in names:
        col = frame[name]
        dtype = col.dtype
        if pd.api.types.is_bool_dtype(dtype):
            columns.append([None if v is None or v is pd.NA else bool(v) for v in col.astype(object).to_numpy()])
        elif pd.api.types.is_integer_dtype(dtype) and not isinstance(dtype, pd.api.extensions.ExtensionDtype):
            columns.append(col.to_numpy().tolist())
        elif pd.api.types.is_numeric_dtype(dtype):
            arr = col.to_numpy(dtype=np.float64, na_value=np.nan)
            values = arr.tolist()
            for k in np.flatnonzero(~np.isfinite(arr)).tolist():
                values[k] = None
                if np.isinf(arr[k]):
                    infinite.setdefault(k, {})[name] = 1 if arr[k] > 0 else -1
            columns.append(values)
        else:
            columns.append(_text_values(col))
    rows = [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)]
    for k, flags in infinite.items():
        rows[k]["infinite"] = flags
    return rows


def _text_values(col: pd.Series) -> list[Any]:
    """A column as a list of str / None (missing values None, other objects their text)."""
    values = col.to_numpy(dtype=object)
    missing = pd.isna(values)
    if missing.any():
        values = values.copy()
        values[missing] = None
    if pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty"):
        return list(values.tolist())
    return [v if v is None or isinstance(v, str) else str(v) for v in values.tolist()]


def json_value(value: Any) -> Any:
    """One value made JSON-ready: NumPy scalars as Python numbers, NaN / NA / infinities as None
    (a mapping names its infinite fields in ``infinite``, see :func:`json_mapping`)."""
    if isinstance(value, dict):
        return json_mapping(value)
    if isinstance(value, (list, tuple)):
        return [json_value(v) for v in value]
    if value is None or value is pd.NA:
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return v if np.isfinite(v) else None
    if isinstance(value, str):
        return value
    return str(value)


def json_mapping(mapping: dict[str, Any]) -> dict[str, Any]:
    """A mapping made JSON-ready by :func:`json_value`; infinite numbers become None and are named
    with their sign in the mapping's ``infinite`` object (the rule of docs/cli.md)."""
    out: dict[str, Any] = {}
    flags: dict[str, int] = {}
    for k, v in mapping.items():
        if isinstance(v, (float, np.floating)) and np.isinf(v):
            flags[str(k)] = 1 if v > 0 else -1
        out[str(k)] = json_value(v)
    if flags:
        out["infinite"] = flags
    return out


def result_json(result: MarginResult, rows: pd.DataFrame | None = None) -> str:
    """The result as standard JSON (``allow_nan=False``): currency, components, totals over every
    account, the accounts shown (``rows``, default all) and their per-risk-unit rows."""
    rows = result.accounts if rows is None else rows
    accounts = rows.reset_index()
    accounts["account"] = accounts["account"].map(str)
    by_unit = result.by_unit
    if len(rows) != len(result.accounts):
        by_unit = by_unit[by_unit["account"].isin(rows.index)]
    by_unit = by_unit.assign(account=by_unit["account"].map(str)) if len(by_unit) else by_unit
    payload = {
        "currency": result.currency,
        "components": list(result.components),
        "n_accounts": len(result.accounts),
        "totals": json_mapping(totals(result)),
        "accounts": records(accounts),
        "by_unit": records(by_unit),
    }
    return json.dumps(payload, allow_nan=False, separators=(",", ":"))


# -- files --------------------------------------------------------------------------------------


def check_output_path(path: str) -> str:
    """The suffix (``.csv`` / ``.parquet``) of an output path that can be written; ValueError otherwise."""
    suffix = Path(path).suffix.lower()
    if suffix not in OUTPUT_SUFFIXES:
        raise ValueError(f"--output {path}: expected a .csv or .parquet file name")
    if os.path.lexists(path) and not os.path.isfile(path):
        raise ValueError(f"--output {path}: exists and is not a regular file")
    parent = Path(path).resolve().parent
    if not parent.is_dir():
        raise ValueError(f"--output {path}: directory {str(parent)!r} does not exist")
    if suffix != ".csv":
        try:
            import pyarrow.parquet  # noqa: F401
        except ImportError:
            raise ValueError(
                f"--output {path}: writing Parquet needs pyarrow (pip install pyarrow); or write .csv"
            ) from None
    return suffix


def write_output(result: MarginResult, path: str, rows: pd.DataFrame | None = None) -> int:
    """Writes ``rows`` (default every account) to ``path``: CSV or Parquet by suffix, atomically
    (a temporary file in the same directory, then renamed). Returns the number of rows."""
    suffix = check_output_path(path)
    rows = result.accounts if rows is None else rows
    frame = rows.reset_index()
    frame["account"] = frame["account"].map(str)
    directory = str(Path(path).resolve().parent)
    fd, tmp = tempfile.mkstemp(prefix=".marginkernel-", suffix=suffix, dir=directory)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # as a plain open() would create it (mkstemp makes it 0600)
    try:
        if suffix == ".csv":
            frame.to_csv(tmp, index=False)
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return len(frame)


__all__ = [
    "amount_columns",
    "check_output_path",
    "records",
    "result_json",
    "select",
    "table_text",
    "totals",
    "write_output",
]
