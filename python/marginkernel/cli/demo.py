"""``marginkernel demo``: margin the embedded demo book on the deribit-pm preset."""

from __future__ import annotations

import argparse
import time
from importlib import resources
from pathlib import Path
from typing import Any

#: the demo book's files, as ``--write-inputs`` names them
DEMO_FILES = {
    "instruments.csv": "demo_instruments.csv",
    "market.toml": "demo_market.toml",
    "positions.csv": "demo_positions.csv",
}


def register(sub: Any) -> None:
    p = sub.add_parser("demo", help="margin the embedded demo book on the deribit-pm preset")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument(
        "--write-inputs",
        metavar="DIR",
        help="write the demo book's instruments.csv, market.toml and positions.csv to DIR (to try the "
        "other commands on), and do nothing else",
    )
    p.set_defaults(func=run)


def write_inputs(folder: str) -> list[Path]:
    """Copy the demo book's input files into ``folder`` (which must exist); existing files are refused."""
    target = Path(folder)
    if not target.is_dir():
        raise ValueError(f"--write-inputs {folder}: not a folder")
    written = []
    for name, packaged in DEMO_FILES.items():
        path = target / name
        if path.exists():
            raise ValueError(f"--write-inputs {folder}: {name} exists already; not overwritten")
        path.write_bytes((resources.files("marginkernel") / "data" / packaged).read_bytes())
        written.append(path)
    return written


def run(args: argparse.Namespace) -> int:
    from .. import __version__, kernels
    from ..demo import PRESET, run_demo
    from ._output import result_json, table_text

    if args.write_inputs is not None:
        for path in write_inputs(args.write_inputs):
            print(path)
        return 0
    if args.threads < 1:
        raise ValueError(f"--threads: must be >= 1, got {args.threads}")
    start = time.perf_counter()
    engine, result = run_demo(threads=args.threads)
    elapsed = time.perf_counter() - start
    if args.json:
        print(result_json(result))
        return 0
    print(
        f"marginkernel {__version__} demo: {len(engine.instruments)} instruments x "
        f"{engine.scenario_set.n_scenarios} scenarios, model '{PRESET}', SIMD {kernels.simd_target()}"
    )
    print(
        "IM / MM in USD, with the scan risk and each add-on; worst scenario of the netting node "
        "(settlement currency) that costs most\n"
    )
    print(table_text(result))
    print(f"\n{len(result.accounts)} accounts margined in {elapsed * 1e3:.1f} ms")
    return 0
