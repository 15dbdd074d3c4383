"""Reading a large SPAN file: the streaming reader vs an ElementTree full parse, time and peak memory.

Generates an NSE-style file of about 60 MB (marginkernel.span.sample_file; weekly and monthly
expiries, 16-point arrays) unless --file names one, then runs each reader `--repeat` times, each
in a fresh process whose peak resident memory is reset after the imports (/proc/self/clear_refs),
and reports the median time and the peak memory above the interpreter's after imports. The
baseline is what a user would write first: ``xml.etree.ElementTree.parse`` of the whole tree (the
tree only, no tables). A third run keeps one product of the file (``products=["IDX"]``): memory
follows the contracts kept. ``--reference DIR`` runs the read_span of another source tree (its
``python/`` folder) in the same rounds: before/after comparisons under the same machine load.

    python bench/bench_span_read.py [--mb 60] [--file path.spn] [--repeat 3] [--reference DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import benchutil  # noqa: F401  (first: pins BLAS to one thread before NumPy loads)
from benchutil import record

_CHILD = r"""
import json, sys, time
import numpy, pandas, xml.etree.ElementTree as ET
from marginkernel import span

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) / 1024  # MB
    return float("nan")

with open("/proc/self/clear_refs", "w") as fh:  # reset the peak (VmHWM) to the current RSS
    fh.write("5")
base = status("VmRSS:")
t0 = time.perf_counter()
if sys.argv[1] == "stream":
    f = span.read_span(sys.argv[2])
    n = len(f.contracts)
elif sys.argv[1] == "subset":
    f = span.read_span(sys.argv[2], products=["IDX"])
    n = len(f.contracts)
else:
    root = ET.parse(sys.argv[2]).getroot()
    n = sum(1 for _ in root.iter("opt"))
dt = time.perf_counter() - t0
peak = status("VmHWM:")
print(json.dumps({"seconds": dt, "peak_mb": peak, "above_imports_mb": peak - base, "n": n}))
"""


def _generate(mb: float, folder: Path) -> Path:
    from marginkernel import span

    probe = len(span.sample_xml("nse", n_underlyings=4, n_strikes=20)) / 4  # bytes per underlying
    n = max(1, round(mb * 1e6 / probe))
    path = folder / f"nse-{n}.spn"
    t0 = time.perf_counter()
    span.sample_file(path, "nse", n_underlyings=n, n_strikes=20)
    print(f"generated {path.stat().st_size / 1e6:.1f} MB ({n} underlyings) in {time.perf_counter() - t0:.0f} s")
    return path


def _summary(runs: list[dict]) -> dict:
    return {
        "median_seconds": statistics.median(r["seconds"] for r in runs),
        "peak_mb": max(r["peak_mb"] for r in runs),
        "above_imports_mb": max(r["above_imports_mb"] for r in runs),
        "records": runs[0]["n"],
        "runs": runs,
    }


def _run(jobs: dict[str, tuple[str, str | None]], path: Path, repeat: int) -> dict[str, dict]:
    """Every job `repeat` times, round-robin (the machine's load drifts; each job sees the same
    drift), each run in a fresh process. A job is (mode, PYTHONPATH or None for the current one)."""
    runs: dict[str, list[dict]] = {name: [] for name in jobs}
    for _ in range(repeat):
        for name, (mode, pythonpath) in jobs.items():
            env = dict(os.environ)
            if pythonpath is not None:
                env["PYTHONPATH"] = pythonpath
            out = subprocess.run(
                [sys.executable, "-c", _CHILD, mode, str(path)], capture_output=True, text=True, check=True, env=env
            )
            runs[name].append(json.loads(out.stdout))
    return {name: _summary(r) for name, r in runs.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, default=60.0)
    ap.add_argument("--file", type=Path)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument(
        "--reference",
        help="the python/ folder of another checkout (e.g. the previous release): its read_span runs "
        "in the same rounds, as 'stream (reference)'",
    )
    args = ap.parse_args()
    jobs: dict[str, tuple[str, str | None]] = {"stream": ("stream", None)}
    if args.reference:
        jobs["reference"] = ("stream", str(Path(args.reference).resolve()))
    jobs |= {"subset": ("subset", None), "tree": ("tree", None)}
    with tempfile.TemporaryDirectory() as tmp:
        path = args.file or _generate(args.mb, Path(tmp))
        size = path.stat().st_size / 1e6
        res = _run(jobs, path, args.repeat)
    stream, subset, tree = res["stream"], res["subset"], res["tree"]
    print(f"file {size:.1f} MB, {stream['records']} contracts read")
    print(f"{'reader':38s} {'median s':>9s} {'peak MB':>9s} {'above imports MB':>17s}")
    rows = [("marginkernel.span.read_span (stream)", stream)]
    if "reference" in res:
        rows.append(("read_span of --reference", res["reference"]))
    rows += [("read_span(products=['IDX'])", subset), ("ElementTree.parse (tree only)", tree)]
    for name, r in rows:
        print(f"{name:38s} {r['median_seconds']:9.2f} {r['peak_mb']:9.0f} {r['above_imports_mb']:17.0f}")
    ratio_t = stream["median_seconds"] / tree["median_seconds"]
    ratio_m = stream["above_imports_mb"] / max(tree["above_imports_mb"], 1e-9)
    print(f"time ratio stream/tree {ratio_t:.2f}, memory ratio (above imports) {ratio_m:.2f}")
    payload = {
        "file_mb": size,
        "stream": stream,
        "subset": subset,
        "elementtree": tree,
        "time_ratio": ratio_t,
        "memory_ratio": ratio_m,
        "command": " ".join(sys.argv),
    }
    if "reference" in res:
        ref = res["reference"]
        payload["reference"] = ref | {"pythonpath": args.reference}
        print(f"time ratio stream/reference {stream['median_seconds'] / ref['median_seconds']:.2f}")
    out = record("span_read", payload)
    print(f"recorded {out}")


if __name__ == "__main__":
    main()
