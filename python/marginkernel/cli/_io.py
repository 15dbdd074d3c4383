"""Reading input files and writing results, shared by the commands."""

from __future__ import annotations

import json
import math
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..engine import MarginResult
from ..market import Market


def table_text(result: MarginResult) -> str:
    frame = result.accounts.copy()
    frame["worst_unit"] = frame["worst_unit"].fillna("-")
    frame["worst_scenario"] = frame["worst_scenario"].fillna("-")
    cols = ["im", "mm", "scan_risk", *result.components]
    if frame["equity"].notna().any():
        cols += ["equity", "margin_ratio", "liquidation"]
    cols += ["worst_unit", "worst_scenario"]
    frame = frame[cols].astype({"liquidation": object} if "liquidation" in cols else {})
    return frame.to_string(float_format=lambda v: f"{v:,.2f}", justify="left")


def plain(value: Any) -> Any:
    """A JSON-safe Python value: NaN / NA -> None, numpy scalars -> Python numbers."""
    if value is None or value is pd.NA:
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if math.isnan(v):
            return None
        return v if math.isfinite(v) else ("inf" if v > 0 else "-inf")
    return value


def result_json(result: MarginResult) -> str:
    accounts = [
        {"account": str(acc), **{k: plain(v) for k, v in row.items()}}
        for acc, row in result.accounts.iterrows()
    ]
    by_unit = [{k: (str(v) if k == "account" else plain(v)) for k, v in row.items()}
               for row in result.by_unit.to_dict("records")]
    return json.dumps({"currency": result.currency, "components": list(result.components), "accounts": accounts,
                       "by_unit": by_unit}, indent=2)


def read_table(path: str, what: str = "table") -> pd.DataFrame:
    p = Path(path)
    if not p.exists():
        raise ValueError(f"{path}: file not found")
    if not p.is_file():
        raise ValueError(f"{path}: not a file")
    suffix = p.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(p)
        if suffix in (".csv", ".txt"):
            return pd.read_csv(p)
    except ImportError as exc:
        raise ValueError(f"{path}: cannot read Parquet ({exc}); install pyarrow or use CSV") from None
    except (ValueError, OSError) as exc:
        raise ValueError(f"{path}: cannot read the {what}: {exc}") from None
    raise ValueError(f"{path}: expected a .csv or .parquet file")


def read_mapping(path: str, what: str) -> dict[str, Any]:
    p = Path(path)
    if not p.exists():
        raise ValueError(f"{path}: file not found")
    try:
        text = p.read_bytes()
        return json.loads(text) if p.suffix.lower() == ".json" else tomllib.loads(text.decode())
    except (json.JSONDecodeError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: cannot parse {what}: {exc}") from None
    except OSError as exc:
        raise ValueError(f"{path}: cannot read {what}: {exc}") from None


def read_market(path: str) -> Market:
    return Market.from_dict(read_mapping(path, "market snapshot"))


def read_collateral(path: str) -> Any:
    """Collateral: CSV / Parquet with account, currency, amount; or TOML / JSON {account: {currency: amount}}."""
    if Path(path).suffix.lower() in (".toml", ".json"):
        return read_mapping(path, "collateral")
    return read_table(path, "collateral")
