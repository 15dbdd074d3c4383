"""Command line: ``marginkernel <command>``, one module of this package per command.

Each command module has ``register(subparsers)``, which adds its parser and sets ``func``; heavy
imports happen inside the command, so that ``--help`` and the fast commands start quickly.
Errors a user can fix (bad files, bad values) print one ``marginkernel: error:`` line and exit 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from .. import __version__
from .._core import InputError

#: the command modules, in the order ``--help`` lists them
COMMANDS = ("demo", "margin", "presets", "explain", "stress", "optimise", "backtest", "calibrate")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="marginkernel", description="Portfolio margin, fast and exact.")
    parser.add_argument("--version", action="version", version=f"marginkernel {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        importlib.import_module(f".{name}", __name__).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (ValueError, TypeError, InputError) as exc:
        print(f"marginkernel: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into e.g. `head`
        sys.stderr.close()
        return 0
    except OSError as exc:
        print(f"marginkernel: error: {exc}", file=sys.stderr)
        return 2
    except OverflowError as exc:  # safety net: a number of the input too large for the arithmetic
        print(f"marginkernel: error: a value of the input is out of range ({exc})", file=sys.stderr)
        return 2
    except RecursionError:
        print("marginkernel: error: an input is nested too deeply", file=sys.stderr)
        return 2
    except MemoryError:
        print("marginkernel: error: out of memory (a smaller book, or --workers / --scheduler)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("marginkernel: interrupted", file=sys.stderr)
        return 130


__all__ = ["COMMANDS", "build_parser", "main"]
