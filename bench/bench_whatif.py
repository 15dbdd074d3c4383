"""Pre-trade what-if latency: C++ (bench/whatif_bench.cpp), Python (AccountBook.what_if) and the
NumPy baseline ``(p + q*r).max()``, in the same run on the same kind of book.

    python bench/bench_whatif.py [--cpp /tmp/mk-build/whatif_bench] [--samples 200000] [--json out.json]

The book: 40 instruments on 4 risk units with scenario weights, gain factor 0.5, MM factor 0.8;
account 0 holds 12 positions across all units; the orders cycle over 64 (instrument, quantity)
pairs. Per call, time is taken with ``time.perf_counter_ns`` around that call alone and the timer's
own median cost is subtracted -> median and p99; "mean" is a batch of 10,000 calls / 10,000 (no
timer in the loop). Rows:

* ``python``: ``book.what_if(account, instrument, quantity)`` (C++ state, ids and scalars in, a
  WhatIf record out);
* ``python, GIL released``: the same call releasing the GIL around the kernel (kept for the record:
  the shipped what_if keeps the GIL because releasing it costs more than it can give);
* ``numpy (p + q*r).max()``: the issue's baseline, on the order's unit P and risk row;
* ``numpy what-if``: what a NumPy user would actually write for the same figure (haircut, weights,
  argmin, other units from a cache);
* ``c++``: the C++ benchmark's figures (run as a subprocess when ``--cpp`` names it).

Then the full ``deribit-pm`` model (:func:`marginkernel.account.account_book`: scan with the extended
moves, roll and delta shocks, settlement-currency netting nodes, collateral) at 35 scenarios (the
published grid) and 1,001 (``steps = 165``): ``model what_if`` / ``model check`` from Python and C++
(``c++ model ...``, from the same binary), one account holding the demo book's 12 positions, orders
cycling over 64 (instrument, quantity) pairs; "x simple" = the simple rule's median at the nearest
scenario count (35 / 1,000) over the row's median.

Machines are shared and noisy: quote medians and ratios, and rerun.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np

import marginkernel
from marginkernel import kernels
from marginkernel.account import AccountBook

N_UNITS, N_INSTRUMENTS, GAIN, MM = 4, 40, 0.5, 0.8


def make_book(ns: int, seed: int):
    rng = np.random.default_rng(seed)
    risk = rng.normal(0.0, 100.0, size=(N_INSTRUMENTS, ns))
    unit = np.arange(N_INSTRUMENTS) % N_UNITS
    weight = rng.uniform(0.5, 1.0, size=(N_UNITS, ns))
    fx = np.array([1.0, 1.0, 60000.0, 3000.0])
    book = AccountBook(risk, unit, n_accounts=1000, weight=weight, fx=fx, gain_factor=GAIN, mm_factor=MM)
    for i in range(12):
        book.add_fill(0, 3 * i, float(rng.normal(0.0, 3.0)))
    orders = [(int(rng.integers(N_INSTRUMENTS)), float(rng.normal(0.0, 3.0))) for _ in range(64)]
    return book, risk, unit, weight, fx, orders


def timer_cost(n: int = 200_000) -> float:
    clock = time.perf_counter_ns
    t = np.empty(n)
    for k in range(n):
        a = clock()
        t[k] = clock() - a
    return float(np.median(t))


def measure(call, args_list, samples: int, overhead: float) -> dict:
    """Per-call median / p99 (timer cost subtracted) and the batch mean, in ns."""
    clock = time.perf_counter_ns
    m = len(args_list)
    for k in range(min(samples, 20_000)):  # warm up
        call(*args_list[k % m])
    t = np.empty(samples)
    gc.disable()
    try:
        for k in range(samples):
            a = args_list[k % m]
            t0 = clock()
            call(*a)
            t[k] = clock() - t0
        means = []
        batch = 10_000
        for _ in range(7):
            t0 = clock()
            for k in range(batch):
                call(*args_list[k % m])
            means.append((clock() - t0) / batch)
    finally:
        gc.enable()
    t -= overhead
    return {"median_ns": float(np.median(t)), "p99_ns": float(np.percentile(t, 99)), "mean_ns": float(np.median(means))}


def run_python(ns: int, samples: int, overhead: float) -> dict:
    book, risk, unit, weight, fx, orders = make_book(ns, ns)
    rows = {}
    args = [(0, i, q) for i, q in orders]
    rows["python"] = measure(book.what_if, args, samples, overhead)
    rows["python, GIL released"] = measure(book._what_if_release_gil, args, samples, overhead)

    # NumPy: the baseline of the issue, on the same data (the order's unit P and risk row).
    pnl = book.pnl(0)
    p_of = [pnl[unit[i]].copy() for i, _ in orders]
    r_of = [risk[i].copy() for i, _ in orders]
    np_args = [(p_of[k], q, r_of[k]) for k, (_, q) in enumerate(orders)]
    rows["numpy (p + q*r).max()"] = measure(lambda p, q, r: (p + q * r).max(), np_args, samples // 4, overhead)

    # NumPy: the same figure as what_if, written the way a NumPy user would.
    unit_im = np.array([book.unit_margin(0, u).im for u in range(N_UNITS)])
    total = unit_im.sum()
    w_of = [weight[unit[i]] for i, _ in orders]

    def numpy_what_if(p, q, r, w, u):
        v = p + q * r
        x = w * np.where(v > 0.0, GAIN * v, v)
        s = int(x.argmin())
        im = total - unit_im[u] + fx[u] * max(0.0, -x[s])
        return im, MM * im, s

    full_args = [(p_of[k], q, r_of[k], w_of[k], int(unit[i])) for k, (i, q) in enumerate(orders)]
    rows["numpy what-if"] = measure(numpy_what_if, full_args, samples // 4, overhead)
    # Same answer as the book (to rounding: the book keeps w * P pre-weighted).
    for k, (i, q) in enumerate(orders[:8]):
        ours = book.what_if(0, i, q).im
        theirs = numpy_what_if(*full_args[k])[0]
        assert abs(ours - theirs) <= 1e-9 * max(1.0, abs(theirs)), (ours, theirs)
    return rows


def run_cpp(path: str, samples: int):
    out = subprocess.run([path, "--json", "--samples", str(samples)], check=True, capture_output=True, text=True)
    data = json.loads(out.stdout)
    model = {row["scenarios"]: row for row in data.get("model_rows", [])}
    return {row["scenarios"]: row for row in data["rows"]}, data["simd_target"], model


def run_model(steps: int, samples: int, overhead: float) -> tuple[int, dict]:
    """what_if / check on the full deribit-pm model, from Python."""
    from marginkernel.account import account_book
    from marginkernel.demo import demo_inputs
    from marginkernel.engine import Engine
    from marginkernel.model import MarginModel, load_model

    base = load_model("deribit-pm")
    params = dict(base.scenario_params, steps=steps)
    model = MarginModel(
        name=base.name,
        builder=base.builder,
        scenario_params=params,
        measure=base.measure,
        netting=base.netting,
        gain_factor=base.gain_factor,
        im_factor=base.im_factor,
        mm_factor=base.mm_factor,
        mode=base.mode,
        currency=base.currency,
        gain_cap=base.gain_cap,
        addons=base.addons,
        collateral_haircut=base.collateral_haircut,
    )
    instruments, market, positions = demo_inputs()
    engine = Engine(instruments, market, model)
    mine = positions.assign(account="x")
    book = account_book(
        engine,
        mine,
        collateral=[
            {"account": "x", "currency": "BTC", "amount": 1.0},
            {"account": "x", "currency": "USDC", "amount": 2000.0},
        ],
    )
    rng = np.random.default_rng(steps)
    kinds = np.asarray(instruments.kind)
    orders = []
    for _ in range(64):
        i = int(rng.integers(len(kinds)))
        orders.append((0, i, float(rng.normal(0.0, 3.0)) * (1000.0 if kinds[i] <= 1 else 1.0)))
    rows = {
        "model what_if": measure(book.what_if, orders, samples, overhead),
        "model check": measure(book.check, orders, samples, overhead),
    }
    return book.n_scenarios, rows


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenarios", type=int, nargs="+", default=[27, 35, 100, 1000])
    ap.add_argument("--samples", type=int, default=200_000, help="timed calls per row (NumPy rows: a quarter)")
    ap.add_argument("--cpp", help="path of the whatif_bench binary (C++ figures in the same run)")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args(argv)

    overhead = timer_cost()
    cpp, cpp_target, cpp_model = ({}, None, {})
    if args.cpp:
        cpp, cpp_target, cpp_model = run_cpp(args.cpp, args.samples)
    results = {
        "machine": {
            "cpu": cpu_model(),
            "cores": os.cpu_count(),
            "platform": platform.platform(),
            "python": sys.version.split()[0],
            "numpy": np.__version__,
            "marginkernel": marginkernel.__version__,
            "simd_target": kernels.simd_target(),
            "cpp_simd_target": cpp_target,
            "python_timer_cost_ns": overhead,
        },
        "rows": [],
    }
    print(
        f"what-if latency in ns: median and p99 of single timed calls (timer cost {overhead:.0f} ns subtracted),\n"
        f"mean of batches of 10,000 (Python: includes the ~25 ns for-loop). SIMD {kernels.simd_target()}.\n"
        f"x base = numpy (p + q*r).max() median / row median; x numpy = numpy what-if median / row median."
    )
    print(f"{'scenarios':>9}  {'row':<24}{'median':>9}{'p99':>9}{'mean':>9}{'x base':>9}{'x numpy':>9}")
    for ns in args.scenarios:
        rows = run_python(ns, args.samples, overhead)
        if ns in cpp:
            c = cpp[ns]
            rows = {"c++": {"median_ns": c["median_ns"], "p99_ns": c["p99_ns"], "mean_ns": c["mean_ns"]}, **rows}
        base = rows["numpy (p + q*r).max()"]["median_ns"]
        full = rows["numpy what-if"]["median_ns"]
        for name, r in rows.items():
            med = max(r["median_ns"], 1e-9)
            print(
                f"{ns:>9}  {name:<24}{r['median_ns']:>9.0f}{r['p99_ns']:>9.0f}{r['mean_ns']:>9.0f}"
                f"{base / med:>8.1f}x{full / med:>8.1f}x"
            )
            results["rows"].append(
                {
                    "scenarios": ns,
                    "row": name,
                    **r,
                    "baseline_over_row": base / med,
                    "numpy_whatif_over_row": full / med,
                }
            )
        print()
    simple = {r["scenarios"]: r["median_ns"] for r in results["rows"] if r["row"] == "python"}
    simple_cpp = {r["scenarios"]: r["median_ns"] for r in results["rows"] if r["row"] == "c++"}
    print("full deribit-pm model (x simple: the simple rule's median at 35 / 1,000 scenarios over the row's)")
    for steps in (4, 165):
        ns, rows = run_model(steps, args.samples, overhead)
        near = 35 if ns < 100 else 1000
        if ns in cpp_model:
            c = cpp_model[ns]
            rows = {
                "c++ model what_if": {
                    "median_ns": c["what_if_median_ns"],
                    "p99_ns": c["what_if_p99_ns"],
                    "mean_ns": c["what_if_mean_ns"],
                },
                "c++ model check": {
                    "median_ns": c["check_median_ns"],
                    "p99_ns": c["check_p99_ns"],
                    "mean_ns": c["check_mean_ns"],
                },
                **rows,
            }
        for name, r in rows.items():
            ref = (simple_cpp if name.startswith("c++") else simple).get(near)
            ratio = r["median_ns"] / ref if ref else float("nan")
            print(
                f"{ns:>9}  {name:<24}{r['median_ns']:>9.0f}{r['p99_ns']:>9.0f}{r['mean_ns']:>9.0f}{ratio:>8.2f}x simple"
            )
            results["rows"].append({"scenarios": ns, "row": name, **r, "over_simple_rule": ratio})
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
