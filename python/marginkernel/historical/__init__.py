"""Historical and filtered historical VaR / ES margin, backtesting and calibration (docs/historical.md).

* :mod:`.history`: daily price histories, read and checked (gaps, duplicates, bad prices);
* :mod:`.simulate`: joint (filtered) historical scenario moves with age weights and EMIR
  anti-procyclicality options; :mod:`.builder`: the ``historical_simulation`` model builder;
* :mod:`.stats`: backtest statistics (Kupiec, Christoffersen, Basel traffic light, procyclicality);
* :mod:`.backtest`: margin each day from data up to that day against the realised P&L;
* :mod:`.calibrate`: fit a grid model's price range per underlying to a coverage target.

The backtest and calibration modules import the engine; they load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from .builder import historical_simulation
from .history import PriceHistory, history_from_frame, load_history, read_history
from .simulate import HistoricalSpec, Simulator

_SUBMODULES = ("backtest", "calibrate", "plot", "stats")


def __getattr__(name: str) -> Any:
    # backtest and calibrate import the engine, which imports this package through the scenarios
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'marginkernel.historical' has no attribute {name!r}")


__all__ = [
    "HistoricalSpec",
    "PriceHistory",
    "Simulator",
    "historical_simulation",
    "history_from_frame",
    "load_history",
    "read_history",
]
