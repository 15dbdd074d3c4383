"""The embedded demo: a small BTC/ETH book on the deribit-pm preset (``marginkernel demo``)."""

from __future__ import annotations

import tomllib
from importlib import resources
from importlib.resources.abc import Traversable

import pandas as pd

from .engine import Engine, MarginResult
from .instruments import Instruments
from .market import Market
from .model import load_model

PRESET = "deribit-pm"


def _data(name: str) -> Traversable:
    return resources.files("marginkernel") / "data" / name


def demo_inputs() -> tuple[Instruments, Market, pd.DataFrame]:
    """Instruments, market snapshot and positions of the embedded demo book."""
    with _data("demo_instruments.csv").open("r") as fh:
        instruments = Instruments.from_frame(pd.read_csv(fh))
    with _data("demo_market.toml").open("rb") as fh:
        market = Market.from_dict(tomllib.load(fh))
    with _data("demo_positions.csv").open("r") as fh:
        positions = pd.read_csv(fh)
    return instruments, market, positions


def run_demo(threads: int = 1) -> tuple[Engine, MarginResult]:
    instruments, market, positions = demo_inputs()
    engine = Engine(instruments, market, load_model(PRESET), threads=threads)
    return engine, engine.margin(positions)
