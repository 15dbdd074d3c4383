"""``marginkernel demo``: margin the embedded demo book on the deribit-pm preset."""

from __future__ import annotations

import argparse
import time
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("demo", help="margin the embedded demo book on the deribit-pm preset")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--threads", type=int, default=1)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from .. import __version__, kernels
    from ..demo import PRESET, run_demo
    from ._output import result_json, table_text

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
