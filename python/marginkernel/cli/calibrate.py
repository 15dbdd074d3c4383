"""``marginkernel calibrate``: fit a grid model's price range per underlying to a coverage target."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..model import presets


def register(sub: Any) -> None:
    p = sub.add_parser(
        "calibrate",
        help="fit a grid model's price range per underlying to a coverage of historical moves (docs/historical.md)",
    )
    p.add_argument(
        "--model",
        required=True,
        help=f"a preset ({', '.join(presets())}) or a model TOML file "
        "with builder deribit_grid, span16 or range_points",
    )
    p.add_argument("--history", help="daily price history CSV (default: the shipped BTC/ETH closes)")
    p.add_argument("--target", type=float, default=0.99, help="coverage target of the moves (default 0.99)")
    p.add_argument("--horizon", type=int, default=1, help="days per move (default 1)")
    p.add_argument("--start", help="first day of the window (ISO)")
    p.add_argument("--end", help="last day of the window (ISO)")
    p.add_argument("--split", help="first out-of-sample day (ISO; default 70%% through the window)")
    p.add_argument("--underlying", action="append", help="calibrate this underlying (repeatable; default: all)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..historical import load_history
    from ..historical.calibrate import calibrate
    from ..model import MarginModel, load_model
    from ._output import records

    model = load_model(args.model)
    if not isinstance(model, MarginModel):
        raise ValueError(f"--model {args.model}: {type(model).__name__} is not a grid model")
    history = load_history(args.history) if args.history else None
    res = calibrate(
        model,
        history=history,
        underlyings=args.underlying,
        target=args.target,
        horizon=args.horizon,
        start=args.start,
        end=args.end,
        split=args.split,
    )
    if args.json:
        rows = records(res.table.reset_index())
        print(
            json.dumps(
                {
                    "model": model.name,
                    "target": res.target,
                    "horizon_days": res.horizon,
                    "split": res.split,
                    "parameters": list(res.parameters),
                    "underlyings": rows,
                },
                indent=2,
                allow_nan=False,
            )
        )
        return 0
    print(
        f"calibration of '{model.name}' ({model.builder}): {', '.join(res.parameters)} per underlying to cover "
        f"{res.target:g} of {res.horizon}-day moves; in sample before {res.split}, out of sample from it\n"
    )
    print(res.table.to_string(float_format=lambda v: f"{v:.4f}"))
    print("\n[scenarios]\n" + res.toml())
    return 0
