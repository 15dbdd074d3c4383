"""``marginkernel backtest``: margin a book each day from history up to that day against the realised P&L."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..model import presets


def register(sub: Any) -> None:
    p = sub.add_parser("backtest", help="backtest a model's margin on a book against realised P&L (docs/historical.md)")
    p.add_argument(
        "positions",
        help="CSV or Parquet: instrument, quantity [, date: the book held from that day] [, account: with --account]",
    )
    p.add_argument("--model", required=True, help=f"a preset ({', '.join(presets())}) or a model TOML file")
    p.add_argument("--instruments", help="instrument definitions (default: the embedded demo's)")
    p.add_argument("--market", help="market snapshot giving basis, vols and expiries (default: the demo's)")
    p.add_argument("--history", help="daily price history CSV (default: the model's, or the shipped BTC/ETH closes)")
    p.add_argument("--account", help="backtest only this account of the positions file")
    p.add_argument("--start", help="first day (ISO)")
    p.add_argument("--end", help="last day of history to use (ISO)")
    p.add_argument("--horizon", type=int, help="days of realised P&L (default: the model's horizon, else 1)")
    p.add_argument(
        "--coverage", type=float, help="exception rate tested is 1 - coverage (default: the model's confidence)"
    )
    p.add_argument("--n-days", type=int, default=30, help="window of the largest n-day margin increase (default 30)")
    p.add_argument("--no-release", action="store_true", help="charge im_factor x margin every day (no buffer release)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--plot", metavar="FILE", help="save a picture of margin vs realised loss (PNG/SVG/PDF; matplotlib)")
    p.set_defaults(func=run)


def _inputs(args: argparse.Namespace) -> tuple[Any, Any, Any]:
    from ..demo import demo_inputs
    from ..instruments import Instruments
    from ._io import read_market, read_table

    inst, market, _ = demo_inputs()
    if args.instruments:
        inst = Instruments.from_frame(read_table(args.instruments, "instruments"))
    if args.market:
        market = read_market(args.market)
    positions = read_table(args.positions, "positions")
    if args.account is not None:
        if "account" not in positions.columns:
            raise ValueError(f"{args.positions}: --account given but the file has no 'account' column")
        positions = positions[positions["account"].astype(str) == args.account]
        if positions.empty:
            raise ValueError(f"{args.positions}: no positions of account {args.account!r}")
    return inst, market, positions


def run(args: argparse.Namespace) -> int:
    from ..engine import Engine
    from ..historical import backtest, load_history
    from ..model import MarginModel, load_model
    from ._output import json_mapping

    model = load_model(args.model)
    if not isinstance(model, MarginModel):
        raise ValueError(f"--model {args.model}: {type(model).__name__} is not a scenario model the backtest computes")
    inst, market, positions = _inputs(args)
    history = load_history(args.history) if args.history else None
    engine = Engine(inst, market, model)
    res = backtest.run(
        model,
        engine,
        positions,
        history=history,
        start=args.start,
        end=args.end,
        horizon=args.horizon,
        release=not args.no_release,
        n_days=args.n_days,
        coverage=args.coverage,
    )
    if args.plot:
        res.plot(args.plot)
    if args.json:
        print(json.dumps({"model": res.model, **json_mapping(res.stats)}, indent=2, allow_nan=False))
        return 0
    _print_text(res)
    return 0


def _print_text(res: Any) -> None:
    s = res.stats
    print(
        f"backtest of '{res.model}' from {s['start']} to {s['end']}: {res.horizon}-day realised P&L, "
        f"coverage {res.coverage:g}"
    )
    rows = [("", "model", "without APC")]
    a, b = s["coverage"], s["coverage_no_apc"]
    rows.append(
        ("days / exceptions (expected)", f"{a['days']} / {a['exceptions']} ({a['expected']:.1f})", f"{b['exceptions']}")
    )
    for key, label in (
        ("kupiec", "Kupiec POF LR (p)"),
        ("christoffersen", "Christoffersen ind. LR (p)"),
        ("conditional_coverage", "conditional coverage LR (p)"),
    ):
        rows.append(
            (label, f"{a[key + '_lr']:.3f} ({a[key + '_p']:.4f})", f"{b[key + '_lr']:.3f} ({b[key + '_p']:.4f})")
        )
    rows.append(("Basel traffic light", a["traffic_light"], b["traffic_light"]))
    p, q = s["procyclicality"], s["procyclicality_no_apc"]
    rows.append(("peak-to-trough margin", f"{p['peak_to_trough']:.3f}", f"{q['peak_to_trough']:.3f}"))
    rows.append((f"largest {p['n_days']}-day increase", f"{p['largest_increase']:.1%}", f"{q['largest_increase']:.1%}"))
    width = max(len(r[0]) for r in rows)
    for r in rows:
        print(f"{r[0]:<{width}}  {r[1]:<28}  {r[2]}")
