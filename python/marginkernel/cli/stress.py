"""``marginkernel stress``: user stress scenarios, historical replays and reverse stress."""

from __future__ import annotations

import argparse
import json
from typing import Any

from .explain import add_engine_args


def register(sub: Any) -> None:
    p = sub.add_parser("stress", help="what happens in a crash: stresses, historical replays, reverse stress")
    add_engine_args(p)
    p.add_argument(
        "--scenarios",
        help="TOML / JSON with [[stress]] entries (name, price, vol, days) and "
        "[directions.<name>] tables (price, vol) for reverse stress",
    )
    p.add_argument(
        "--historical",
        default=None,
        metavar="DAYS",
        help="comma-separated replay horizons in days (default 1,10 when no --scenarios)",
    )
    p.add_argument("--top", type=int, default=3, help="worst historical moves shown per account and horizon")
    p.add_argument("--account", help="this account only")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--plot", metavar="FILE", help="write a PNG of the stress results (needs matplotlib)")
    p.set_defaults(func=run)


def _days(text: str) -> list[int]:
    try:
        days = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ValueError(f"--historical: expected comma-separated whole days, got {text!r}") from None
    if not days or min(days) < 1:
        raise ValueError(f"--historical: every horizon must be >= 1 day, got {text!r}")
    return days


def run(args: argparse.Namespace) -> int:
    from .. import stress
    from ._io import read_collateral, read_mapping, read_table
    from ._output import json_value
    from .explain import frame_records, load_engine

    engine = load_engine(args)
    positions = read_table(args.positions, "positions")
    if args.account is not None:
        positions = positions[positions["account"] == args.account]
        if len(positions) == 0:
            raise ValueError(f"--account {args.account}: no positions")
    collateral = read_collateral(args.collateral) if args.collateral else None
    spec = read_mapping(args.scenarios, "stress scenarios") if args.scenarios else {}
    unknown = set(spec) - {"stress", "directions"}
    if unknown:
        raise ValueError(f"{args.scenarios}: unknown section {sorted(unknown)[0]!r}; known: stress, directions")
    sections: dict[str, Any] = {}
    if spec.get("stress"):
        sections["stress"] = stress.run(engine, positions, stress.from_tables(spec["stress"]), collateral=collateral)
    hist = args.historical if args.historical is not None else (None if spec else "1,10")
    if hist:
        sections["historical"] = stress.replay(engine, positions, _days(hist), top=args.top)
    if spec.get("directions"):
        sections["reverse"] = stress.reverse_stress(engine, positions, spec["directions"], collateral=collateral)
    if args.plot:
        from ..plots import stress_results

        stress_results(sections, args.plot)
    if args.json:
        out = {
            k: frame_records(v.astype({c: str for c in v.columns if c in ("start", "end")}))
            for k, v in sections.items()
        }
        print(json.dumps(json_value(out), indent=2, allow_nan=False))
        return 0
    for name, frame in sections.items():
        print(f"== {name} ==")
        print(frame.to_string(index=False, float_format=lambda v: f"{v:,.4f}"))
        print()
    return 0
