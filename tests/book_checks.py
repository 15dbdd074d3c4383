"""What the book tests share: the tolerance and the check that a model book equals Engine.margin."""

from __future__ import annotations

import math

from marginkernel.account import ModelBook
from marginkernel.engine import Engine

RTOL = 1e-9
FIELDS = ("im", "mm", "risk", "scan_risk", "equity", "available", "margin_ratio")


def close(a: float, b: float) -> bool:
    if isinstance(b, float) and math.isnan(b):
        return isinstance(a, float) and math.isnan(a)
    return math.isclose(a, b, rel_tol=RTOL, abs_tol=1e-9 * max(1.0, abs(b)))


def assert_book_matches(book: ModelBook, engine: Engine, positions, collateral=None) -> None:
    """Every account figure, each add-on, each node's loss and each pair equals Engine.margin."""
    res = engine.margin(positions, accounts=book.accounts, collateral=collateral)
    assert set(res.accounts.index) == set(book.accounts)
    for name in book.accounts:
        a = book.account_id(name)
        got, row = book.result(a), res.accounts.loc[name]
        for key in (*FIELDS, *engine.model.components):
            assert close(got[key], float(row[key])), (name, key, got[key], row[key])
        if got["scan_risk"] > 0:
            assert got["worst_unit"] == row["worst_unit"] and got["worst_scenario"] == row["worst_scenario"]
        if not math.isnan(row["equity"]):
            assert got["liquidation"] == bool(row["liquidation"])
        # the loss of each netting node: the engine's reduction of its unit P&L, reproduced here
        nodes = book.nodes(a)
        assert close(sum(n["scan"] * n["fx"] for n in nodes) / report_fx(engine), got["scan_risk"])
        # each (account, unit) pair: its own loss and every add-on's charge
        units = res.by_unit[res.by_unit["account"] == name]
        for _, pair in units.iterrows():
            p = book.pair(a, book.units.index(pair["risk_unit"]))
            assert close(p["loss"], float(pair["loss"])), (name, pair["risk_unit"])
            for k, comp in enumerate(engine.model.components):
                assert close(p["charges"][k], float(pair[comp])), (name, comp)


def report_fx(engine: Engine) -> float:
    return engine.market_snapshot.fx_rate(engine.model.currency)
