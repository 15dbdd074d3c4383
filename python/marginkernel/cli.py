"""Command line: ``marginkernel demo``, ``marginkernel margin``, ``marginkernel presets``."""

from __future__ import annotations

import argparse
import json
import sys
import time
import tomllib
from pathlib import Path

import pandas as pd

from . import __version__, kernels
from .engine import Engine, MarginResult
from .instruments import Instruments
from .market import Market
from .model import load_model, presets


def _table(result: MarginResult) -> str:
    frame = result.accounts.copy()
    frame["worst_unit"] = frame["worst_unit"].fillna("-")
    frame["worst_scenario"] = frame["worst_scenario"].fillna("-")
    return frame[["im", "mm", "worst_unit", "worst_scenario"]].to_string(
        float_format=lambda v: f"{v:,.2f}", justify="left")


def _json(result: MarginResult) -> str:
    accounts = [
        {"account": str(acc), **{k: (None if pd.isna(v) else v) for k, v in row.items()}}
        for acc, row in result.accounts.iterrows()
    ]
    by_unit = result.by_unit.assign(account=result.by_unit["account"].astype(str)).to_dict("records") \
        if len(result.by_unit) else []
    return json.dumps({"currency": "USD", "accounts": accounts, "by_unit": by_unit}, indent=2, default=float)


def _read_table(path: str) -> pd.DataFrame:
    p = Path(path)
    if not p.exists():
        raise ValueError(f"{path}: file not found")
    if p.suffix.lower() in (".parquet", ".pq"):
        return pd.read_parquet(p)
    if p.suffix.lower() in (".csv", ".txt"):
        return pd.read_csv(p)
    raise ValueError(f"{path}: expected a .csv or .parquet file")


def _read_market(path: str) -> Market:
    p = Path(path)
    if not p.exists():
        raise ValueError(f"{path}: file not found")
    text = p.read_bytes()
    try:
        data = json.loads(text) if p.suffix.lower() == ".json" else tomllib.loads(text.decode())
    except (json.JSONDecodeError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: cannot parse market snapshot: {exc}") from None
    return Market.from_dict(data)


def cmd_demo(args) -> int:
    from .demo import PRESET, run_demo

    start = time.perf_counter()
    engine, result = run_demo(threads=args.threads)
    elapsed = time.perf_counter() - start
    if args.json:
        print(_json(result))
        return 0
    print(f"marginkernel {__version__} demo: {len(engine.instruments)} instruments x "
          f"{engine.scenario_set.n_scenarios} scenarios, model '{PRESET}', SIMD {kernels.simd_target()}")
    print("IM / MM in USD; worst scenario of the risk unit that costs most\n")
    print(_table(result))
    print(f"\n{len(result.accounts)} accounts margined in {elapsed * 1e3:.1f} ms")
    return 0


def cmd_margin(args) -> int:
    model = load_model(args.model)
    instruments = Instruments.from_frame(_read_table(args.instruments))
    market = _read_market(args.market)
    positions = _read_table(args.positions)
    result = Engine(instruments, market, model, threads=args.threads).margin(positions)
    print(_json(result) if args.json else _table(result))
    return 0


def cmd_presets(args) -> int:
    for name in presets():
        m = load_model(name)
        print(f"{name:12s} {getattr(m, 'description', '')}\n{'':12s} source: {m.source}; as of {m.as_of}")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="marginkernel", description="Portfolio margin, fast and exact.")
    parser.add_argument("--version", action="version", version=f"marginkernel {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("demo", help="margin the embedded demo book on the deribit-pm preset")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--threads", type=int, default=1)
    p.set_defaults(func=cmd_demo)
    p = sub.add_parser("margin", help="margin a positions file")
    p.add_argument("positions", help="CSV or Parquet with columns account, instrument, quantity")
    p.add_argument("--model", required=True, help=f"a preset ({', '.join(presets())}) or a model TOML file")
    p.add_argument("--instruments", required=True, help="CSV or Parquet of instrument definitions")
    p.add_argument("--market", required=True, help="market snapshot, TOML or JSON")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--threads", type=int, default=1)
    p.set_defaults(func=cmd_margin)
    p = sub.add_parser("presets", help="list the shipped margin models")
    p.set_defaults(func=cmd_presets)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, TypeError) as exc:
        print(f"marginkernel: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
