"""marginkernel: portfolio margin, fast and exact.

Pipeline: instruments + market + scenarios -> revalue -> risk arrays R[i, s] -> net (positions)
-> scenario P&L per account -> reduce -> margin. Two layers: the high-level :class:`Engine`
(DataFrames in and out) and the low-level array kernels in :mod:`marginkernel.kernels`, each with
its pure-NumPy twin in :mod:`marginkernel.reference`.
"""

from typing import Any

from . import kernels, scenarios
from ._core import InputError
from ._version import __version__
from .account import AccountBook, UnknownIdError
from .engine import Book, Engine, MarginResult
from .instruments import Instruments
from .market import Market
from .model import MarginModel, load_model, presets
from .scenarios import ScenarioSet

#: subpackages loaded on first attribute access (``mk.explain``); ``import marginkernel`` stays light
_LAZY = (
    "reference",
    "span",
    "derive_pm2",
    "scenario_file",
    "historical",
    "explain",
    "stress",
    "optimise",
    "distributed",
    "testing",
    "book",
    "codes",
    "validation",
    "progress",
)


def __getattr__(name: str) -> Any:
    # The reference (and the methodology modules) import SciPy; load them on first use so that the
    # engine and the CLI start fast.
    if name in _LAZY:
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'marginkernel' has no attribute {name!r}")


__all__ = [
    "AccountBook",
    "Book",
    "Engine",
    "InputError",
    "Instruments",
    "MarginModel",
    "MarginResult",
    "Market",
    "ScenarioSet",
    "UnknownIdError",
    "__version__",
    "kernels",
    "load_model",
    "presets",
    "reference",
    "scenarios",
]
