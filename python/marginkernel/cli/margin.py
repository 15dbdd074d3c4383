"""``marginkernel margin``: margin a positions file on a model."""

from __future__ import annotations

import argparse
from typing import Any

from ..model import presets


def register(sub: Any) -> None:
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
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..engine import Engine
    from ..instruments import Instruments
    from ..model import MarginModel, load_model
    from ._io import read_collateral, read_market, read_table, result_json, table_text

    model = load_model(args.model)
    if not isinstance(model, MarginModel):
        raise ValueError(f"--model {args.model}: methodology {type(model).__name__} is not a scenario-grid model "
                         "the margin command computes (see marginkernel.derive_pm2 for derive-pm2)")
    instruments = Instruments.from_frame(read_table(args.instruments, "instruments"))
    market = read_market(args.market)
    positions = read_table(args.positions, "positions")
    collateral = read_collateral(args.collateral) if args.collateral else None
    engine = Engine(instruments, market, model, threads=args.threads)
    result = engine.margin(positions, collateral=collateral, mode=args.mode)
    if args.json:
        print(result_json(result))
    else:
        print(f"model '{model.name}' ({model.netting} netting, {args.mode or model.mode} margin); "
              f"amounts in {result.currency}\n")
        print(table_text(result))
    return 0
