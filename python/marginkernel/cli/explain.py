"""``marginkernel explain``: per-position contributions, incremental and marginal margin."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..model import presets


def add_engine_args(p: Any) -> None:
    """Positions, model, instruments, market and collateral arguments (explain, stress, optimise)."""
    p.add_argument("positions", help="CSV or Parquet with columns account, instrument, quantity")
    p.add_argument("--model", required=True, help=f"a preset ({', '.join(presets())}) or a model TOML file")
    p.add_argument("--instruments", required=True, help="CSV or Parquet of instrument definitions")
    p.add_argument("--market", required=True, help="market snapshot, TOML or JSON")
    p.add_argument("--collateral", help="collateral balances (as for `marginkernel margin`)")


def register(sub: Any) -> None:
    p = sub.add_parser("explain", help="why is my margin this number: contributions per position")
    add_engine_args(p)
    p.add_argument("--account", help="explain this account only (an account without positions gives no rows)")
    p.add_argument("--mode", choices=["cross", "isolated"], help="override the model's margin mode")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--plot", metavar="FILE", help="write a PNG of the contributions by position (needs matplotlib)")
    p.add_argument(
        "--heatmap",
        metavar="FILE",
        help="write a PNG of the scenario P&L heat map (price x vol) of "
        "--account (default: the first account), binding scenario marked",
    )
    p.add_argument("--breakdown", metavar="FILE", help="write a PNG of the margin breakdown per account")
    p.set_defaults(func=run)


def load_engine(args: argparse.Namespace) -> Any:
    """The engine of --model / --instruments / --market (shared by explain, stress and optimise)."""
    from ..engine import Engine
    from ..instruments import Instruments
    from ..model import MarginModel, load_model
    from ._io import read_market, read_table

    model = load_model(args.model)
    if not isinstance(model, MarginModel):
        raise ValueError(f"--model {args.model}: {type(model).__name__} is not a scenario-grid model")
    instruments = Instruments.from_frame(read_table(args.instruments, "instruments"))
    return Engine(instruments, read_market(args.market), model)


def frame_records(frame: Any) -> list[dict[str, Any]]:
    from ._output import records

    return records(frame)


def run(args: argparse.Namespace) -> int:
    from ..explain import explain
    from ._io import read_collateral, read_table
    from ._output import json_value

    engine = load_engine(args)
    positions = read_table(args.positions, "positions")
    collateral = read_collateral(args.collateral) if args.collateral else None
    ex = explain(engine, positions, account=args.account, collateral=collateral, mode=args.mode)
    if args.plot:
        from ..plots import contributions

        contributions(ex, args.plot)
    if args.heatmap or args.breakdown:
        from ..plots import breakdown, heatmap

        if args.heatmap and len(ex.positions):
            heatmap(engine, ex.result, args.account if args.account is not None else ex.accounts.index[0], args.heatmap)
        if args.breakdown:
            breakdown(ex.result, args.breakdown)
    accounts = ex.accounts.reset_index()
    accounts["account"] = accounts["account"].astype(str)
    cols = ["account", "im", "mm", "scan_risk", *ex.components, "contributions", "equity", "collateral_value"]
    if args.json:
        out = {
            "currency": ex.currency,
            "components": list(ex.components),
            "accounts": frame_records(accounts[cols]),
            "positions": frame_records(ex.positions),
            "collateral": frame_records(ex.collateral),
        }
        print(json.dumps(json_value(out), indent=2, allow_nan=False))
        return 0
    print(f"model '{engine.model.name}'; contributions to IM in {ex.currency} (they add up to IM per account)\n")
    fmt = {"float_format": lambda v: f"{v:,.2f}"}
    print(accounts[cols].to_string(index=False, **fmt))
    print()
    print(ex.positions.to_string(index=False, **fmt) if len(ex.positions) else "(no positions)")
    if len(ex.collateral):
        print("\ncollateral credits")
        print(ex.collateral.to_string(index=False, **fmt))
    return 0
