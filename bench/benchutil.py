"""Shared helpers for the benchmarks: repeated timing with medians, machine description, JSON record."""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

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
        "caches": cache_sizes(),
    }


def record(name: str, payload: dict) -> Path:
    """Writes bench/results/<name>.json with the machine description and returns its path."""
    out = Path(__file__).resolve().parent / "results" / f"{name}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"benchmark": name, "machine": machine(), **payload}, indent=2) + "\n")
    return out


def interleaved_medians(fns: dict, repeat: int = 7, warmup: int = 1, before=None) -> dict:
    """Median wall time of each of `fns` (name -> callable), timed in rounds that run each once in
    turn, after `warmup` untimed rounds: on a shared machine a slow spell then slows every
    contender alike, so their ratios stay fair (one contender timed after another would carry the
    spell into one side only). `before`, if given, runs untimed before every timed call (for
    example :func:`evict_caches`, so that every contender starts from the same memory state)."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            if before is not None:
                before()
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(ts) for name, ts in times.items()}


#: Bytes read by :func:`evict_caches` and by the memory probe beside it: more than the last-level
#: cache a working set can keep (on the Xeon VM of bench/README.md, whose OS reports a 480 MB L3, an
#: 80 MB array re-read is served at 30 GB/s but 400 MB and more only at the memory's 16 GB/s).
EVICT_BYTES = 512 << 20
_evict_buffer: list = []


def evict_caches() -> None:
    """Reads :data:`EVICT_BYTES` of other memory, so that the next call finds its inputs in memory,
    not in a cache: the state netting leaves its P&L in (streamed past the caches) for the
    reduction that reads it next."""
    from marginkernel import _core

    if not _evict_buffer:
        buffer = aligned_empty(EVICT_BYTES // 8)
        buffer[...] = 1.0
        _evict_buffer.append(buffer)
    _core._stream_seconds(_evict_buffer[0], 1, False)


# --- The machine's ceilings, measured in the same run as a kernel ---------------------------------


def cache_sizes() -> dict[str, int]:
    """Data cache sizes in bytes per level ("L1", "L2", "L3"): the ones the kernels size their tiles
    from (``_core._cache_sizes``, read from the OS once, with fallbacks)."""
    from marginkernel import _core

    return {level: size for level, size in _core._cache_sizes().items() if size}


def aligned_empty(shape) -> np.ndarray:
    """An uninitialised float64 array whose data starts on a 64-byte boundary (a cache line), as the
    kernels' own arrays do: an unaligned one makes every wide load straddle two lines."""
    import numpy as np

    count = int(np.prod(shape))
    storage = np.empty(count + 7)
    skip = (-storage.ctypes.data % 64) // 8
    return storage[skip : skip + count].reshape(shape)


def _stream(working_set_bytes: int, write: bool, min_seconds: float) -> float:

    from marginkernel import _core

    x = aligned_empty(max(working_set_bytes // 8, 1024))
    x[...] = 1.0
    once = _core._stream_seconds(x, 2, write)  # also faults the pages in
    passes = int(min(max(3, min_seconds / max(once, 1e-9)), 20000))
    return x.nbytes / _core._stream_seconds(x, passes, write)


def read_bandwidth(working_set_bytes: int, min_seconds: float = 0.2) -> float:
    """Streaming read bandwidth (bytes/s) over a working set of this size, with the active SIMD
    target's loads (the C++ probe ``_core._stream_seconds``), best pass: a working set that fits a
    cache level measures that level, a large one measures memory."""
    return _stream(working_set_bytes, False, min_seconds)


def write_bandwidth(working_set_bytes: int, min_seconds: float = 0.2) -> float:
    """Streaming write bandwidth (bytes/s) over an already faulted-in working set of this size."""
    return _stream(working_set_bytes, True, min_seconds)


def fresh_write_bandwidth(working_set_bytes: int, repeat: int = 5) -> float:
    """Bandwidth (bytes/s) of writing a new array once: allocation, the OS faulting in and clearing
    its pages, and one streaming write pass -- what any kernel returning a new array of this size
    pays at least. Best of `repeat`, each the faster of plain first touch and of faulting the pages
    in first (Linux MADV_POPULATE_WRITE, as the netting binding does)."""
    import ctypes

    import numpy as np

    from marginkernel import _core

    n = max(working_set_bytes // 8, 1024)
    libc = ctypes.CDLL(None, use_errno=True)
    page = 4096

    def populate(x: np.ndarray) -> None:
        begin = -(-x.ctypes.data // page) * page
        end = (x.ctypes.data + x.nbytes) // page * page
        if end > begin:
            libc.madvise(ctypes.c_void_p(begin), ctypes.c_size_t(end - begin), 23)  # MADV_POPULATE_WRITE

    best = float("inf")
    for _ in range(repeat):
        for first in (None, populate) if sys.platform == "linux" else (None,):
            t0 = time.perf_counter()
            x = np.empty(n)
            if first is not None:
                first(x)
            _core._stream_seconds(x, 1, True)
            best = min(best, time.perf_counter() - t0)
            del x
    return n * 8 / best


def mul_add_throughput(values: int = 2048, min_seconds: float = 0.1) -> float:
    """Multiply-adds per second of the active SIMD target, each product rounded before it is added
    (netting's exact arithmetic; the C++ probe ``_core._mul_add_seconds``) with the operands in L1:
    the arithmetic ceiling of netting, beside the bandwidth ones."""
    import numpy as np

    from marginkernel import _core

    x = np.linspace(-1.0, 1.0, values)
    once = _core._mul_add_seconds(x, 1)
    passes = int(min(max(10, min_seconds / max(once, 1e-9)), 1_000_000))
    return values * passes / _core._mul_add_seconds(x, passes)


def exp_throughput(n: int = 1 << 14, min_seconds: float = 0.2) -> float:
    """exp evaluations per second of NumPy's vectorised exp on an L1/L2-resident float64 array: the
    throughput probe of the transcendental a Black-76 valuation needs at least once."""
    import numpy as np

    x = np.linspace(-20.0, 0.0, n)
    out = np.empty_like(x)
    np.exp(x, out=out)
    passes = max(1, int(min_seconds * 5e8 / n))
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(passes):
            np.exp(x, out=out)
        best = min(best, (time.perf_counter() - t0) / passes)
    return n / best
