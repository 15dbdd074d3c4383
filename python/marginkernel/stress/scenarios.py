"""User stress scenarios: named joint moves of price, implied vol and time per underlying."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..validation import number, table
from ._reval import YEAR_DAYS, account_pnl, equity, held, per_underlying


@dataclass(frozen=True)
class Stress:
    """One joint stress: ``price`` relative move per underlying (-0.3 = -30 %), ``vol`` relative change
    of every implied vol of that underlying (0.5 = +50 %), ``days`` of time passing (options decay;
    one number for the scenario), each mapping keyed by underlying or risk unit, "default" for the rest."""

    name: str
    price: Mapping[str, float] = field(default_factory=dict)
    vol: Mapping[str, float] = field(default_factory=dict)
    days: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"stress.name: must be a non-empty string, got {self.name!r}")
        where = f"stress[{self.name}]"
        for key, moves in (("price", self.price), ("vol", self.vol)):
            for k, v in table(moves, f"{where}.{key}").items():
                number(v, f"{where}.{key}.{k}", lo=-0.999999 if key == "price" else -1.0)
        number(self.days, f"{where}.days", lo=0.0)


def from_tables(tables: Sequence[Mapping[str, Any]]) -> list[Stress]:
    """Stresses from TOML / JSON tables (``[[stress]]`` entries with name, price, vol, days)."""
    out = []
    for k, raw in enumerate(tables):
        t = table(raw, f"stress[{k}]")
        unknown = set(t) - {"name", "price", "vol", "days"}
        if unknown:
            raise ValueError(f"stress[{k}].{sorted(unknown)[0]}: unknown key; known: days, name, price, vol")
        out.append(Stress(str(t.get("name", f"stress {k}")), t.get("price", {}), t.get("vol", {}), t.get("days", 0.0)))
    names = [s.name for s in out]
    for name in names:
        if names.count(name) > 1:
            raise ValueError(f"stress[{name}]: two stresses share this name")
    return out


def run(
    engine: Any, positions: Any, stresses: Sequence[Stress], *, collateral: Any = None, accounts: Any = None
) -> pd.DataFrame:
    """P&L of every account under every stress (full revaluation): one row per (account, stress) with
    ``pnl`` (reporting currency), ``equity`` and ``equity_after`` (NaN without collateral)."""
    if not stresses:
        raise ValueError("stresses: none given")
    stresses = [s if isinstance(s, Stress) else from_tables([s])[0] for s in stresses]
    h = held(engine, positions, accounts)
    mult = np.array([1.0 + per_underlying(engine, s.price, f"stress[{s.name}].price") for s in stresses]).T
    vol = np.array([per_underlying(engine, s.vol, f"stress[{s.name}].vol") for s in stresses]).T
    days = np.array([float(s.days) for s in stresses]) / YEAR_DAYS
    pnl = account_pnl(engine, h, mult, vol, days)
    eq = equity(engine, positions, collateral, accounts).reindex(h.book.accounts).to_numpy(float)
    names = np.asarray(h.book.accounts, dtype=object)
    return pd.DataFrame(
        {
            "account": np.repeat(names, len(stresses)),
            "stress": np.tile([s.name for s in stresses], len(names)),
            "pnl": pnl.ravel(),
            "equity": np.repeat(eq, len(stresses)),
            "equity_after": (eq[:, None] + pnl).ravel(),
        }
    )
