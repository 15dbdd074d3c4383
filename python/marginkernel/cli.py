"""Command line: ``marginkernel demo``, ``marginkernel margin``, ``marginkernel presets``."""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd

from . import __version__, kernels
from .engine import Engine, MarginResult
from .instruments import Instruments
from .market import Market
from .model import MarginModel, load_model, presets


def _table(result: MarginResult) -> str:
    frame = result.accounts.copy()
    frame["worst_unit"] = frame["worst_unit"].fillna("-")
    frame["worst_scenario"] = frame["worst_scenario"].fillna("-")
    cols = ["im", "mm", "scan_risk", *result.components]
    if frame["equity"].notna().any():
        cols += ["equity", "margin_ratio", "liquidation"]
    cols += ["worst_unit", "worst_scenario"]
    frame = frame[cols].astype({"liquidation": object} if "liquidation" in cols else {})
    return frame.to_string(float_format=lambda v: f"{v:,.2f}", justify="left")


def _plain(value):
    """A JSON-safe Python value: NaN / NA -> None, numpy scalars -> Python numbers."""
    if value is None or value is pd.NA:
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if math.isnan(v):
            return None
        return v if math.isfinite(v) else ("inf" if v > 0 else "-inf")
    return value


def _json(result: MarginResult) -> str:
    accounts = [
        {"account": str(acc), **{k: _plain(v) for k, v in row.items()}}
        for acc, row in result.accounts.iterrows()
    ]
    by_unit = [{k: (str(v) if k == "account" else _plain(v)) for k, v in row.items()}
               for row in result.by_unit.to_dict("records")]
    return json.dumps({"currency": result.currency, "components": list(result.components), "accounts": accounts,
                       "by_unit": by_unit}, indent=2)


def _read_table(path: str, what: str = "table") -> pd.DataFrame:
    p = Path(path)
    if not p.exists():
        raise ValueError(f"{path}: file not found")
    if not p.is_file():
        raise ValueError(f"{path}: not a file")
    suffix = p.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(p)
        if suffix in (".csv", ".txt"):
            return pd.read_csv(p)
    except ImportError as exc:
        raise ValueError(f"{path}: cannot read Parquet ({exc}); install pyarrow or use CSV") from None
    except (ValueError, OSError) as exc:
        raise ValueError(f"{path}: cannot read the {what}: {exc}") from None
    raise ValueError(f"{path}: expected a .csv or .parquet file")


def _read_mapping(path: str, what: str) -> dict:
    p = Path(path)
    if not p.exists():
        raise ValueError(f"{path}: file not found")
    try:
        text = p.read_bytes()
        return json.loads(text) if p.suffix.lower() == ".json" else tomllib.loads(text.decode())
    except (json.JSONDecodeError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: cannot parse {what}: {exc}") from None
    except OSError as exc:
        raise ValueError(f"{path}: cannot read {what}: {exc}") from None


def _read_market(path: str) -> Market:
    return Market.from_dict(_read_mapping(path, "market snapshot"))


def _read_collateral(path: str):
    """Collateral: CSV / Parquet with account, currency, amount; or TOML / JSON {account: {currency: amount}}."""
    if Path(path).suffix.lower() in (".toml", ".json"):
        return _read_mapping(path, "collateral")
    return _read_table(path, "collateral")


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
    print("IM / MM in USD, with the scan risk and each add-on; worst scenario of the netting node "
          "(settlement currency) that costs most\n")
    print(_table(result))
    print(f"\n{len(result.accounts)} accounts margined in {elapsed * 1e3:.1f} ms")
    return 0


def cmd_margin(args) -> int:
    model = load_model(args.model)
    if not isinstance(model, MarginModel):
        raise ValueError(f"--model {args.model}: methodology {type(model).__name__} is not a scenario-grid model "
                         "the margin command computes (see marginkernel.derive_pm2 for derive-pm2)")
    instruments = Instruments.from_frame(_read_table(args.instruments, "instruments"))
    market = _read_market(args.market)
    positions = _read_table(args.positions, "positions")
    collateral = _read_collateral(args.collateral) if args.collateral else None
    engine = Engine(instruments, market, model, threads=args.threads)
    result = engine.margin(positions, collateral=collateral, mode=args.mode)
    if args.json:
        print(_json(result))
    else:
        print(f"model '{model.name}' ({model.netting} netting, {args.mode or model.mode} margin); amounts in {result.currency}\n")
        print(_table(result))
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
    p.add_argument("--collateral", help="collateral balances: CSV / Parquet (account, currency, amount) or "
                                        "TOML / JSON {account: {currency: amount}}; adds equity, margin ratio, liquidation")
    p.add_argument("--mode", choices=["cross", "isolated"], help="override the model's margin mode")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--threads", type=int, default=1)
    p.set_defaults(func=cmd_margin)
    p = sub.add_parser("presets", help="list the shipped margin models")
    p.set_defaults(func=cmd_presets)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, TypeError, kernels.InputError) as exc:
        print(f"marginkernel: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into e.g. `head`
        sys.stderr.close()
        return 0
    except OSError as exc:
        print(f"marginkernel: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
