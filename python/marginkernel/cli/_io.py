"""Reading the command line's input files (the rules are in docs/cli.md, "Input files").

* Every input must be a regular file (a FIFO, a device such as ``/dev/zero`` or a directory is
  refused before it is read) no larger than a documented limit: :data:`MAX_TABLE_BYTES` for
  CSV / Parquet tables, :data:`MAX_DOCUMENT_BYTES` for TOML / JSON documents. The file is opened
  non-blocking and checked on the open descriptor, so a file swapped for a FIFO between the check
  and the read cannot hang the command either.
* Text columns (ids: ``account``, ``instrument``, ``id``, ``currency``, ...) are read as strings,
  verbatim: ``001`` and ``1`` are two accounts, ``1.0`` and ``1`` too, ``NA`` and ``null`` are
  names like any other. Only an empty cell is missing. Other columns keep pandas' number parsing.
* A CSV file with a repeated header name or a row whose field count differs from the header's is
  refused (one error line naming the line), never silently shifted or truncated.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import stat
import tomllib
from pathlib import Path
from typing import Any

import pandas as pd

from ..market import Market

#: largest CSV or Parquet input, in bytes (2 GiB)
MAX_TABLE_BYTES = 2 << 30
#: largest TOML or JSON input (market snapshot, collateral, model file), in bytes (64 MiB)
MAX_DOCUMENT_BYTES = 64 << 20

#: per kind of table, the columns read verbatim as strings (an empty cell is missing)
TEXT_COLUMNS = {
    "positions": ("account", "instrument", "margin_mode"),
    "instruments": ("id", "kind", "underlying", "settlement", "currency"),
    "collateral": ("account", "currency"),
}
#: the columns holding names (ids): Parquet integer columns are accepted there and become strings
ID_COLUMNS = {"positions": ("account", "instrument"), "instruments": ("id",), "collateral": ("account",)}
#: the cells other (numeric) columns read as missing: pandas' defaults
NA_STRINGS = [
    "",
    "#N/A",
    "#N/A N/A",
    "#NA",
    "-1.#IND",
    "-1.#QNAN",
    "-NaN",
    "-nan",
    "1.#IND",
    "1.#QNAN",
    "<NA>",
    "N/A",
    "NA",
    "NULL",
    "NaN",
    "None",
    "n/a",
    "nan",
    "null",
]
TABLE_SUFFIXES = (".csv", ".txt", ".parquet", ".pq")


def read_file(path: str | os.PathLike[str], what: str, limit: int) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes; ValueError otherwise (never blocks)."""
    p = str(path)
    try:
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise ValueError(f"{p}: file not found") from None
    except IsADirectoryError:
        raise ValueError(f"{p}: not a regular file (a directory)") from None
    except OSError as exc:
        raise ValueError(f"{p}: cannot open the {what}: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ValueError(f"{p}: not a regular file ({_file_type(info.st_mode)}); the {what} must be a file")
        if info.st_size > limit:
            raise ValueError(f"{p}: the {what} is {info.st_size:,} bytes, more than the limit of {limit:,}")
        with os.fdopen(fd, "rb", closefd=True) as fh:
            fd = -1
            data = fh.read(limit + 1)
    except OSError as exc:
        raise ValueError(f"{p}: cannot read the {what}: {exc.strerror or exc}") from None
    finally:
        if fd >= 0:
            os.close(fd)
    if len(data) > limit:  # grew while being read
        raise ValueError(f"{p}: the {what} is more than the limit of {limit:,} bytes")
    return data


def check_file(path: str, what: str, limit: int = MAX_DOCUMENT_BYTES) -> None:
    """The checks of :func:`read_file` without keeping the bytes (for files another module reads)."""
    read_file(path, what, limit)


def _file_type(mode: int) -> str:
    for test, name in (
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISDIR, "a directory"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def read_table(path: str, what: str = "table") -> pd.DataFrame:
    """A CSV or Parquet table as a DataFrame, text columns as strings (see the module's notes)."""
    suffix = Path(path).suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise ValueError(f"{path}: expected a .csv or .parquet file")
    if suffix in (".parquet", ".pq"):
        return arrow_to_frame(read_arrow(path, what), what, path)
    return read_csv_bytes(read_file(path, what, MAX_TABLE_BYTES), what, path)


def read_arrow(path: str, what: str = "table") -> Any:
    """A Parquet file as a ``pyarrow.Table``; one clean error line when pyarrow is not installed."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ValueError(
            f"{path}: reading Parquet needs pyarrow (pip install pyarrow); or give the {what} as CSV"
        ) from None
    data = read_file(path, what, MAX_TABLE_BYTES)
    try:
        _no_duplicates(list(pq.ParquetFile(pa.BufferReader(data)).schema_arrow.names), path)
        return pq.read_table(pa.BufferReader(data))
    except (pa.ArrowException, ValueError, OSError) as exc:
        raise ValueError(f"{path}: cannot read the {what}: {_one_line(exc)}") from None


def arrow_to_frame(table: Any, what: str, where: str = "") -> pd.DataFrame:
    """A ``pyarrow.Table`` (or any object with the Arrow PyCapsule stream interface) as a DataFrame:
    id columns as strings (integer ids become their decimal text), a repeated column name refused."""
    import pyarrow as pa

    if not isinstance(table, pa.Table):
        table = pa.table(table)
    name = where or what
    _no_duplicates(list(table.column_names), name)
    text = set(TEXT_COLUMNS.get(what, ()))
    ids = set(ID_COLUMNS.get(what, ()))
    for k, field in enumerate(table.schema):
        if field.name not in text:
            continue
        typ = field.type
        if pa.types.is_dictionary(typ):
            typ = typ.value_type
            table = table.set_column(k, field.name, table.column(k).cast(typ))
        if pa.types.is_string(typ) or pa.types.is_large_string(typ) or pa.types.is_null(typ):
            continue
        if field.name in ids and pa.types.is_integer(typ):
            table = table.set_column(k, field.name, table.column(k).cast(pa.string()))
            continue
        allowed = "strings or integers" if field.name in ids else "strings"
        raise ValueError(f"{name}: column {field.name!r} must hold {allowed}, got Arrow type {field.type}")
    frame = table.to_pandas()
    return frame


def read_csv_bytes(data: bytes, what: str, where: str) -> pd.DataFrame:
    """Parses CSV bytes strictly: no repeated header, every row as many fields as the header."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"{where}: cannot read the {what}: not UTF-8 text ({exc.reason} at byte {exc.start})"
        ) from None
    if not text.strip():
        raise ValueError(f"{where}: cannot read the {what}: the file is empty")
    try:
        header = _check_shape(text, where)
    except csv.Error as exc:
        raise ValueError(f"{where}: cannot read the {what}: {exc}") from None
    text_cols = [c for c in TEXT_COLUMNS.get(what, ()) if c in header]
    na_values: dict[str, list[str]] = {c: ([""] if c in text_cols else NA_STRINGS) for c in header}
    try:
        return pd.read_csv(
            io.BytesIO(data),
            encoding="utf-8-sig",
            dtype=dict.fromkeys(text_cols, str),
            keep_default_na=False,
            na_values=na_values,
            index_col=False,
            skip_blank_lines=True,
        )
    except (ValueError, pd.errors.ParserError) as exc:
        raise ValueError(f"{where}: cannot read the {what}: {_one_line(exc)}") from None


def _check_shape(text: str, where: str) -> list[str]:
    """The header of a CSV text; ValueError for a repeated name or a row of another width."""
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    for row in reader:
        if row:
            header = row
            break
    if header is None:
        raise ValueError(f"{where}: no header line")
    _no_duplicates(header, where)
    width = len(header)
    if '"' not in text:  # no quoting: fields = commas + 1 on every non-blank line, counted vectorised
        widths = _widths_unquoted(text)
    else:
        widths = {len(row) for row in reader}
        widths.discard(0)  # blank lines
    if widths - {width}:
        reader = csv.reader(io.StringIO(text, newline=""))
        for row in reader:
            if row and len(row) != width:
                raise ValueError(
                    f"{where} line {reader.line_num}: expected {width} fields as in the header, got {len(row)}"
                )
    return header


def _widths_unquoted(text: str) -> set[int]:
    """The field counts of the non-blank lines of a CSV text without quote characters."""
    import numpy as np

    data = np.frombuffer(text.encode(), dtype=np.uint8)
    ends = np.flatnonzero(data == 10)
    if len(ends) == 0 or ends[-1] != len(data) - 1:
        ends = np.append(ends, len(data))
    starts = np.concatenate([[0], ends[:-1] + 1])
    line_of_comma = np.searchsorted(ends, np.flatnonzero(data == 44))
    per_line = np.bincount(line_of_comma, minlength=len(ends))
    length = ends - starts
    carriage = (length == 1) & (data[np.minimum(starts, len(data) - 1)] == 13)
    blank = (length == 0) | carriage
    return {int(w) + 1 for w in np.unique(per_line[~blank])}


def _no_duplicates(names: list[str], where: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"{where}: column {name!r} appears more than once in the header")
        seen.add(name)


def _one_line(exc: BaseException) -> str:
    text = re.sub(r"\s+", " ", str(exc)).strip()
    return text[:300] or type(exc).__name__


def read_mapping(path: str, what: str) -> dict[str, Any]:
    """A TOML (or, by suffix, JSON) document as a dict."""
    data = read_file(path, what, MAX_DOCUMENT_BYTES)
    try:
        value = json.loads(data) if Path(path).suffix.lower() == ".json" else tomllib.loads(data.decode())
    except (json.JSONDecodeError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: cannot parse {what}: {_one_line(exc)}") from None
    except RecursionError:
        raise ValueError(f"{path}: cannot parse {what}: nested too deeply") from None
    if not isinstance(value, dict):
        raise ValueError(f"{path}: the {what} must be a table (a JSON object), got {type(value).__name__}")
    return value


def read_market(path: str) -> Market:
    return Market.from_dict(read_mapping(path, "market snapshot"))


def read_collateral(path: str) -> Any:
    """Collateral: CSV / Parquet with account, currency, amount; or TOML / JSON {account: {currency: amount}}."""
    if Path(path).suffix.lower() in (".toml", ".json"):
        return read_mapping(path, "collateral")
    return read_table(path, "collateral")


__all__ = [
    "MAX_DOCUMENT_BYTES",
    "MAX_TABLE_BYTES",
    "arrow_to_frame",
    "check_file",
    "read_arrow",
    "read_collateral",
    "read_csv_bytes",
    "read_file",
    "read_mapping",
    "read_market",
    "read_table",
]
