"""Scenario files: joint moves per underlying, one scenario per row (CSV or Parquet).

A model names one with ``[scenarios] builder = "file"`` and ``path = "moves.csv"`` (relative to the
model file); ``Engine(..., scenarios=read_scenario_set(...))`` takes one directly. Columns:

* ``scenario`` (optional): a label per scenario (unique); default ``"row <k>"``;
* ``probability`` (optional): the scenario's probability for VaR / ES (finite, >= 0, sum > 0);
  default: equally likely;
* one column per underlying (named as the instruments' ``underlying``, e.g. ``BTC``): the move of
  that underlying in the scenario, read as ``moves`` says -- ``"return"`` (simple return r, the
  price multiplier is 1 + r), ``"log_return"`` (m = exp(r)) or ``"multiplier"`` (m itself);
* ``vol:<underlying>`` (optional): an additive implied-vol shift for that underlying's options
  (sigma + shift, floored at 0 by the kernel); without any, implied vols are unchanged.

Every value must be finite and every multiplier > 0; the file must be a regular file of at most
``MAX_FILE_BYTES`` with at most ``scenarios.MAX_SCENARIOS`` rows. Weights are 1 (no cover fraction).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .scenarios import MAX_SCENARIOS, ScenarioSet

MOVES = ("return", "log_return", "multiplier")
MAX_FILE_BYTES = 1 << 30
RESERVED = ("scenario", "probability")


def read_moves(path: str | Path) -> pd.DataFrame:
    """The table of a scenario file, checked (see the module docstring); errors name the file."""
    p = Path(path)
    where = f"scenario file {str(p)!r}"
    if not p.is_file():
        raise ValueError(f"{where}: not found or not a regular file")
    if p.stat().st_size > MAX_FILE_BYTES:
        raise ValueError(f"{where}: larger than {MAX_FILE_BYTES} bytes")
    suffix = p.suffix.lower()
    try:
        if suffix == ".csv":
            table = pd.read_csv(p, dtype={"scenario": str})
        elif suffix in (".parquet", ".pq"):
            table = pd.read_parquet(p)
        else:
            raise ValueError(f"{where}: expected a .csv or .parquet file")
    except (OSError, ValueError, ImportError) as exc:
        if str(exc).startswith(where):
            raise
        raise ValueError(f"{where}: cannot read: {exc}") from None
    return check_moves(table, where)


def check_moves(table: pd.DataFrame, where: str = "scenarios") -> pd.DataFrame:
    """Column types and values of a moves table (a copy; the input is not modified)."""
    if len(table) == 0:
        raise ValueError(f"{where}: no scenarios")
    if len(table) > MAX_SCENARIOS:
        raise ValueError(f"{where}: {len(table)} scenarios, more than the limit {MAX_SCENARIOS}")
    columns = [str(c) for c in table.columns]
    if len(set(columns)) != len(columns):
        raise ValueError(f"{where}: duplicate column names")
    out = table.copy()
    out.columns = columns
    if "scenario" in out.columns:
        labels = out["scenario"].astype(str)
        if labels.duplicated().any():
            raise ValueError(f"{where}: scenario {labels[labels.duplicated()].iloc[0]!r} appears twice")
        out["scenario"] = labels
    for col in (c for c in out.columns if c != "scenario"):
        values = pd.to_numeric(out[col], errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(values)
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            raise ValueError(f"{where}: row {k}, column {col!r}: expected a finite number, got {out[col].iloc[k]!r}")
        out[col] = values
    if "probability" in out.columns:
        prob = out["probability"].to_numpy()
        if (prob < 0).any() or not prob.sum() > 0:
            raise ValueError(f"{where}: column 'probability' must be >= 0 with a positive sum")
    if not [c for c in out.columns if c not in RESERVED and not c.startswith("vol:")]:
        raise ValueError(f"{where}: no column of moves (one per underlying)")
    return out


def moves_to_scenarios(
    underlyings: Sequence[str] | None, table: pd.DataFrame, *, moves: str = "return", where: str = "scenarios"
) -> ScenarioSet:
    """The scenario set of a checked moves table for these underlyings (None: every column of moves)."""
    if underlyings is None:
        underlyings = [c for c in table.columns if c not in RESERVED and not str(c).startswith("vol:")]
    if moves not in MOVES:
        raise ValueError(f"{where}.moves: must be one of {list(MOVES)}, got {moves!r}")
    missing = [u for u in dict.fromkeys(underlyings) if u not in table.columns]
    if missing:
        raise ValueError(f"{where}: no column of moves for underlying(s) {missing}")
    raw = np.array([table[u].to_numpy(dtype=float) for u in underlyings]).reshape(len(underlyings), len(table))
    with np.errstate(over="ignore"):
        mult = 1.0 + raw if moves == "return" else (np.exp(raw) if moves == "log_return" else raw)
    if not np.all(np.isfinite(mult) & (mult > 0)):
        raise ValueError(f"{where}: a move leaves a non-positive or non-finite price (moves = {moves!r})")
    vols = [f"vol:{u}" for u in underlyings]
    has_vol = any(c in table.columns for c in vols)
    shift = np.array(
        [table[c].to_numpy(dtype=float) if c in table.columns else np.zeros(len(table)) for c in vols]
    ).reshape(mult.shape)
    labels = tuple(table["scenario"]) if "scenario" in table.columns else tuple(f"row {k}" for k in range(len(table)))
    prob = table["probability"].to_numpy(dtype=float) if "probability" in table.columns else None
    kw: dict[str, Any] = {"vol_shock": "additive"} if has_vol else {}
    return ScenarioSet(
        labels=labels,
        price_multiplier=np.ascontiguousarray(mult),
        vol_shift=shift,
        weight=np.ones_like(mult),
        probability=prob,
        underlyings=tuple(underlyings),
        **kw,
    )


def read_scenario_set(
    path: str | Path, underlyings: Sequence[str] | None = None, *, moves: str = "return"
) -> ScenarioSet:
    """:func:`read_moves` then :func:`moves_to_scenarios` (for ``Engine(..., scenarios=...)``)."""
    return moves_to_scenarios(underlyings, read_moves(path), moves=moves, where=f"scenario file {str(path)!r}")


__all__ = ["MAX_FILE_BYTES", "MOVES", "check_moves", "moves_to_scenarios", "read_moves", "read_scenario_set"]
