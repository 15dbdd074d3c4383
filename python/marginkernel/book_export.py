"""Compiled inputs for C++ programs that margin a book without Python (docs/book.md).

A C++ program loads the margin model itself from its TOML file (``marginkernel::load_model_file``);
what it reads from Python is the *market*, compiled: every instrument with its market inputs
resolved per row exactly as :attr:`Engine.market` holds them, and per risk unit its underlying,
settlement currency, spot and USD rate (``marginkernel::load_market_file``)::

    report_fx = 1.0
    [units]        # one entry per risk unit, in engine.units order
    name = [...]; underlying = [...]; currency = [...]; spot = [...]; fx = [...]
    [instruments]  # one entry per instrument, in engine.instruments order
    id = [...]; kind = [...]; settlement = [...]; unit = [...]; strike = [...]; expiry_years = [...]
    multiplier = [...]; forward = [...]; discount = [...]; vol = [...]
    [collateral]   # currencies collateral may be posted in, with their USD rates
    currency = [...]; fx = [...]

Numbers are written with ``repr`` (shortest round trip), so C++ reads the same doubles.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np


def _num(x: float) -> str:
    x = float(x)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return repr(x)


def _array(values: Iterable[Any], kind: str = "float") -> str:
    if kind == "str":
        return "[" + ", ".join(json.dumps(str(v)) for v in values) + "]"
    if kind == "int":
        return "[" + ", ".join(str(int(v)) for v in values) + "]"
    return "[" + ", ".join(_num(v) for v in values) + "]"


def market_toml(engine: Any, collateral_currencies: Sequence[str] = ()) -> str:
    """The compiled market of `engine` as TOML text (see the module docstring)."""
    inst, m = engine.instruments, engine.market
    snapshot = engine.market_snapshot
    lines = [
        "# Compiled market written by marginkernel.book_export (docs/book.md); read by marginkernel::load_market_file.",
        f"report_fx = {_num(snapshot.fx_rate(engine.model.currency))}",
        "",
        "[units]",
        f"name = {_array(engine.units, 'str')}",
        f"underlying = {_array(m.unit_underlying, 'str')}",
        f"currency = {_array(m.unit_currency, 'str')}",
        f"spot = {_array(m.unit_spot)}",
        f"fx = {_array(m.unit_fx)}",
        "",
        "[instruments]",
        f"id = {_array(inst.ids, 'str')}",
        f"kind = {_array(inst.kind, 'int')}",
        f"settlement = {_array(inst.settlement, 'int')}",
        f"unit = {_array(m.unit_of_row, 'int')}",
        f"strike = {_array(np.nan_to_num(np.asarray(inst.strike, float)))}",
        f"expiry_years = {_array(m.expiry_years)}",
        f"multiplier = {_array(inst.multiplier)}",
        f"forward = {_array(m.forward)}",
        f"discount = {_array(m.discount)}",
        f"vol = {_array(np.nan_to_num(np.asarray(m.vol, float)))}",
    ]
    if collateral_currencies:
        lines += [
            "",
            "[collateral]",
            f"currency = {_array(collateral_currencies, 'str')}",
            f"fx = {_array([snapshot.fx_rate(c) for c in collateral_currencies])}",
        ]
    return "\n".join(lines) + "\n"


def write_market_file(engine: Any, path: str | Path, collateral_currencies: Sequence[str] = ()) -> Path:
    """Writes :func:`market_toml` to `path`."""
    path = Path(path)
    path.write_text(market_toml(engine, collateral_currencies))
    return path


def case_toml(engine: Any, positions: Any, collateral: Sequence[dict[str, Any]]) -> str:
    """Positions, collateral and the Engine's figures per account, for a C++ test to compare with
    (cpp/tests/consumer). Instruments and collateral currencies by index."""
    result = engine.margin(positions, collateral=collateral)
    ids = list(engine.instruments.ids)
    currencies = list(dict.fromkeys(r["currency"] for r in collateral))
    out = [
        "# Written by marginkernel.book_export.case_toml: the Python engine's figures for this book.",
        f"model = {json.dumps(engine.model.name)}",
        f"components = {_array(engine.model.components, 'str')}",
        "",
    ]
    for name, row in result.accounts.iterrows():
        mine = positions[positions["account"] == name]
        coll = [r for r in collateral if r["account"] == name]
        out += [
            "[[account]]",
            f"name = {json.dumps(str(name))}",
            f"instrument = {_array([ids.index(i) for i in mine['instrument']], 'int')}",
            f"quantity = {_array(mine['quantity'])}",
            f"collateral_currency = {_array([currencies.index(r['currency']) for r in coll], 'int')}",
            f"collateral_amount = {_array([r['amount'] for r in coll])}",
        ]
        for key in ("im", "mm", "scan_risk", "equity", "margin_ratio"):
            out.append(f"{key} = {_num(row[key])}")
        out.append(f"component = {_array([row[c] for c in engine.model.components])}")
        out.append("")
    return "\n".join(out)


def consumer_case() -> tuple[str, str]:
    """The consumer test's inputs: the demo book on deribit-pm with collateral -> (market, case)."""
    from .demo import demo_inputs
    from .engine import Engine
    from .model import load_model

    instruments, market, positions = demo_inputs()
    engine = Engine(instruments, market, load_model("deribit-pm"))
    collateral = [
        {"account": "delta-hedged", "currency": "BTC", "amount": 2.0},
        {"account": "naked-short", "currency": "USDC", "amount": 500000.0},
        {"account": "perp-basis", "currency": "ETH", "amount": 30.0},
        {"account": "perp-basis", "currency": "USDC", "amount": -1000.0},
    ]
    currencies = [str(c) for c in dict.fromkeys(r["currency"] for r in collateral)]
    return market_toml(engine, currencies), case_toml(engine, positions, collateral)


if __name__ == "__main__":  # regenerate cpp/tests/consumer/data/
    import sys

    folder = Path(sys.argv[1])
    market_text, case_text = consumer_case()
    (folder / "deribit_market.toml").write_text(market_text)
    (folder / "deribit_case.toml").write_text(case_text)
