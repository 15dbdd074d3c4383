"""``marginkernel optimise {hedge,liquidate,allocate}``: margin optimisation with HiGHS."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from .explain import add_engine_args


def register(sub: Any) -> None:
    p = sub.add_parser("optimise", help="lower margin: hedge, liquidation plan, allocation (LP / MILP)")
    kinds = p.add_subparsers(dest="kind", required=True)
    h = kinds.add_parser("hedge", help="hedge quantities minimising IM + cost")
    add_engine_args(h)
    h.add_argument("--hedges", required=True, help="CSV / Parquet: instrument, min, max, lot, cost")
    liq = kinds.add_parser("liquidate", help="least-cost partial closes restoring the margin ratio")
    add_engine_args(liq)
    liq.add_argument(
        "--costs",
        required=True,
        help="CSV (instrument, half_spread) or TOML / JSON [[costs]] with impact = [[size, rate], ...]",
    )
    liq.add_argument("--target-ratio", required=True, type=float, help="target MM / equity, below the current one")
    alloc = kinds.add_parser("allocate", help="split positions between sub-accounts or cross / isolated")
    add_engine_args(alloc)
    alloc.add_argument("--sub-accounts", type=int, default=2)
    alloc.add_argument("--isolated", action="store_true", help="choose cross or isolated per position instead")
    for q in (h, liq, alloc):
        q.add_argument("--account", help="the account (required when the file holds several)")
        q.add_argument("--json", action="store_true", help="machine-readable output")
        q.set_defaults(func=run)


def _costs(path: str) -> Any:
    from ._io import read_mapping, read_table

    if Path(path).suffix.lower() in (".toml", ".json"):
        data = read_mapping(path, "costs")
        if not isinstance(data.get("costs"), list):
            raise ValueError(f"{path}: expected a list [[costs]] of tables")
        return data["costs"]
    return read_table(path, "costs")


def run(args: argparse.Namespace) -> int:
    from ..optimise import allocate, hedge, liquidation_plan
    from ._io import read_collateral, read_table
    from ._output import json_mapping, json_value
    from .explain import frame_records, load_engine

    engine = load_engine(args)
    positions = read_table(args.positions, "positions")
    collateral = read_collateral(args.collateral) if args.collateral else None
    if args.kind == "hedge":
        result: Any = hedge(engine, positions, read_table(args.hedges, "hedges"), account=args.account)
        table = result.trades
    elif args.kind == "liquidate":
        result = liquidation_plan(
            engine,
            positions,
            _costs(args.costs),
            collateral=collateral,
            target_ratio=args.target_ratio,
            account=args.account,
        )
        table = result.closes
    else:
        result = allocate(
            engine, positions, account=args.account, sub_accounts=args.sub_accounts, isolated=args.isolated
        )
        table = result.assignment
    summary = json_mapping(result.summary())
    if args.json:
        print(
            json.dumps(
                json_value({"kind": args.kind, "summary": summary, "table": frame_records(table)}),
                indent=2,
                allow_nan=False,
            )
        )
        return 0
    for k, v in summary.items():
        print(f"{k:24s} {v:,.6g}" if isinstance(v, float) else f"{k:24s} {v}")
    print()
    print(table.to_string(index=False, float_format=lambda v: f"{v:,.6g}"))
    return 0
