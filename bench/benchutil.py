"""Shared helpers for the benchmarks: repeated timing with medians, machine description, JSON record."""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from pathlib import Path

# One core, as the targets are stated: keep OpenBLAS's idle threads from spinning on the other core.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")


def median_seconds(fn, repeat: int = 7, warmup: int = 1) -> tuple[float, list[float]]:
    """Median wall time of fn() over `repeat` runs after `warmup` untimed runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times


def machine() -> dict:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import numpy

    from marginkernel import kernels

    return {
        "cpu": cpu or platform.processor(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "simd_targets": kernels.available_simd_targets(),
    }


def record(name: str, payload: dict) -> Path:
    """Writes bench/results/<name>.json with the machine description and returns its path."""
    out = Path(__file__).resolve().parent / "results" / f"{name}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"benchmark": name, "machine": machine(), **payload}, indent=2) + "\n")
    return out
