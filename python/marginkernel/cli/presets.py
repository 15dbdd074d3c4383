"""``marginkernel presets``: list the shipped margin models."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("presets", help="list the shipped margin models")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..model import load_model, presets

    for name in presets():
        m = load_model(name)
        print(f"{name:12s} {getattr(m, 'description', '')}\n{'':12s} source: {m.source}; as of {m.as_of}")
    return 0
