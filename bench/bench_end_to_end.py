"""End to end: a book from Parquet files to a results file, as a user runs it (issue 12.2 / 12.4).

10,000 accounts / 200,000 positions / 627 instruments (bench/synthetic_book.py) on deribit-pm:

1. the command line, timed from outside (a fresh interpreter each run, imports included):
   ``marginkernel margin positions.parquet --instruments instruments.parquet --market market.toml
   --model deribit-pm --output result.parquet --quiet --timings --threads T`` -- median wall time of
   ``--repeat`` runs; the target is < 1 s on 2 cores;
2. the breakdown, in one process with the public API: interpreter start, import, read, resolve
   (``Instruments.from_frame`` + ``Market.resolve``), revalue (the ``kernels.revalue`` call ``Engine`` makes),
   net (``engine.book`` + ``engine.pnl``), reduce (``engine.margin`` minus net), write;
3. beside it, the baseline a user would write by hand on the same inputs: NumPy reference revaluation
   (``marginkernel.reference.revalue``), Deribit's scenario weights, ``scipy.sparse`` Q @ R, worst
   loss of the summed P&L per account; ours on that same model (the bench checks that both give the
   same margins) and on the full deribit-pm model (add-ons, currency netting), with the ratios.

    python bench/bench_end_to_end.py [--accounts 10000] [--positions 200000] [--threads 2] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchutil import interleaved_medians, median_seconds, record  # first: pins BLAS to one thread

ROOT = Path(__file__).resolve().parent.parent
IMPORTS = (
    "import marginkernel, marginkernel.cli.margin, marginkernel.cli._io, marginkernel.cli._output, pyarrow.parquet"
)


def cli_runs(
    paths: dict[str, Path], out: Path, threads: int, repeat: int
) -> tuple[list[float], list[dict[str, float]]]:
    cmd = [
        sys.executable,
        "-m",
        "marginkernel.cli",
        "margin",
        str(paths["positions"]),
        "--instruments",
        str(paths["instruments"]),
        "--market",
        str(paths["market"]),
        "--model",
        "deribit-pm",
        "--output",
        str(out),
        "--quiet",
        "--timings",
        "--threads",
        str(threads),
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "python")}
    walls, stages = [], []
    for _ in range(repeat + 1):  # the first run warms the page cache and is not counted
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
        walls.append(time.perf_counter() - t0)
        stages.append({m[0]: float(m[1]) / 1e3 for m in re.findall(r"([a-z+]+) ([0-9.]+) ms", proc.stderr)})
    print("  command:", " ".join(["marginkernel", *cmd[3:]]))
    return walls[1:], stages[1:]


def interpreter_and_import(repeat: int) -> tuple[float, float]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "python")}
    start = median_seconds(lambda: subprocess.run([sys.executable, "-c", "pass"], env=env, check=True), repeat=repeat)[
        0
    ]
    code = f"import time; t = time.perf_counter(); {IMPORTS}; print(time.perf_counter() - t)"
    runs = [
        float(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout)
        for _ in range(repeat)
    ]
    return start, float(statistics.median(runs))


def breakdown(paths: dict[str, Path], out: Path, threads: int, repeat: int) -> dict[str, float]:
    import marginkernel as mk
    from marginkernel.cli import _io, _output

    def read():
        return (
            _io.read_table(str(paths["instruments"]), "instruments"),
            _io.read_market(str(paths["market"])),
            _io.read_table(str(paths["positions"]), "positions"),
        )

    t_read, _ = median_seconds(read, repeat=repeat)
    inst_frame, market, positions = read()
    model = mk.load_model("deribit-pm")

    def resolve():
        return market.resolve(mk.Instruments.from_frame(inst_frame))

    t_resolve, _ = median_seconds(resolve, repeat=repeat)
    instruments = mk.Instruments.from_frame(inst_frame)
    engine = mk.Engine(instruments, market, model, threads=threads)
    m, sc = engine.market, engine.scenario_set

    def revalue():  # the call Engine makes, on the resolved market
        return mk.kernels.revalue(
            instruments.kind,
            instruments.settlement,
            m.unit_of_row,
            instruments.strike,
            m.expiry_years,
            instruments.multiplier,
            m.forward,
            m.discount,
            m.vol,
            m.unit_spot,
            threads=threads,
            **sc.kernel_arguments(),
        )

    t_revalue, _ = median_seconds(revalue, repeat=repeat)
    t_net, _ = median_seconds(lambda: engine.pnl(engine.book(positions)), repeat=repeat)
    t_margin, _ = median_seconds(lambda: engine.margin(positions), repeat=repeat)
    result = engine.margin(positions)
    t_write, _ = median_seconds(lambda: _output.write_output(result, str(out)), repeat=repeat)
    t_json, _ = median_seconds(lambda: _output.result_json(result), repeat=repeat)
    return {
        "read": t_read,
        "resolve": t_resolve,
        "revalue": t_revalue,
        "net": t_net,
        "reduce": max(0.0, t_margin - t_net),
        "write": t_write,
        "json (not in the pipeline)": t_json,
    }


def baseline(paths: dict[str, Path], threads: int, repeat: int) -> dict[str, float]:
    """The by-hand NumPy / scipy.sparse pipeline (revalue, net, worst loss) beside ours on the same
    book: ours on the same model (deribit-pm's scenarios, worst loss of each account's summed P&L,
    no add-ons; the two must agree) and on the full deribit-pm model."""
    import dataclasses

    import numpy as np
    import pandas as pd
    import scipy.sparse as sp

    import marginkernel as mk
    from marginkernel import reference
    from marginkernel.cli import _io

    inst_frame = _io.read_table(str(paths["instruments"]), "instruments")
    market = _io.read_market(str(paths["market"]))
    positions = pd.read_parquet(paths["positions"])
    full = mk.load_model("deribit-pm")
    same = dataclasses.replace(full, name="deribit-pm-worst-loss", netting="account", gain_factor=1.0, addons=())
    engine = mk.Engine(mk.Instruments.from_frame(inst_frame), market, same, threads=threads)
    inst, m, sc = engine.instruments, engine.market, engine.scenario_set
    unit = np.asarray(m.unit_of_row)
    # Deribit's counting rules by hand: linear contracts count 0 in the extended (options-only)
    # scenarios, each unit's scenarios are weighted, each unit's P&L converted to USD.
    linear = (inst.kind != mk.codes.Kind.CALL) & (inst.kind != mk.codes.Kind.PUT)
    scale = np.asarray(sc.weight)[unit] * np.asarray(m.unit_fx)[unit][:, None]

    def by_hand():
        risk, _ = reference.revalue(
            inst.kind,
            inst.settlement,
            m.unit_of_row,
            inst.strike,
            m.expiry_years,
            inst.multiplier,
            m.forward,
            m.discount,
            m.vol,
            m.unit_spot,
            **sc.kernel_arguments(),
        )
        risk[np.ix_(linear, np.asarray(sc.options_only, dtype=bool))] = 0.0
        acc, names = pd.factorize(positions["account"])
        col = pd.Index(inst.ids).get_indexer(positions["instrument"])
        q = sp.csr_matrix((positions["quantity"].to_numpy(), (acc, col)), shape=(len(names), len(inst.ids)))
        return names, np.maximum(0.0, -(q @ (risk * scale)).min(axis=1))

    names, im_hand = by_hand()
    im_ours = engine.margin(positions).accounts["im"].loc[names].to_numpy()
    disagreement = float(np.max(np.abs(im_hand - im_ours) / np.maximum(1.0, np.abs(im_ours))))
    if disagreement > 1e-9:
        raise SystemExit(f"by hand and ours disagree on the same model: relative difference {disagreement:.1e}")

    def ours(model):
        return lambda: mk.Engine(engine.instruments, market, model, threads=threads).margin(positions)

    fns = {"by_hand_s": by_hand, "ours_same_model_s": ours(same), "ours_full_model_s": ours(full)}
    return {**interleaved_medians(fns, repeat=repeat), "same_model_max_rel_diff": disagreement}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accounts", type=int, default=10_000)
    ap.add_argument("--positions", type=int, default=200_000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    import synthetic_book  # after benchutil has pinned the BLAS threads

    with tempfile.TemporaryDirectory(prefix="mk-e2e-") as tmp:
        paths = synthetic_book.write_inputs(Path(tmp), args.accounts, args.positions)
        out = Path(tmp) / "result.parquet"
        print(
            f"end to end: {args.accounts:,} accounts / {args.positions:,} positions / "
            f"{len(synthetic_book.instruments())} instruments, deribit-pm, threads={args.threads}"
        )
        walls, stages = cli_runs(paths, out, args.threads, args.repeat)
        wall = float(statistics.median(walls))
        print(f"  CLI wall time (median of {len(walls)}): {wall:.3f} s  (runs: {', '.join(f'{w:.2f}' for w in walls)})")
        cli_stage = {k: float(statistics.median([s.get(k, float("nan")) for s in stages])) for k in stages[0]}
        print("  CLI --timings (median): " + ", ".join(f"{k} {v * 1e3:.0f} ms" for k, v in cli_stage.items()))
        start, imports = interpreter_and_import(args.repeat)
        parts = {"interpreter": start, "import": imports, **breakdown(paths, out, args.threads, args.repeat)}
        print("  breakdown (in-process medians):")
        for k, v in parts.items():
            print(f"    {k:28s} {v * 1e3:8.1f} ms")
        base = baseline(paths, args.threads, args.repeat)
        t_hand, t_same, t_full = base["by_hand_s"], base["ours_same_model_s"], base["ours_full_model_s"]
        print(
            f"  revalue + net + reduce, by hand (NumPy reference + scipy.sparse + worst loss): {t_hand * 1e3:.1f} ms\n"
            f"    ours, the same model (worst loss only; agrees to {base['same_model_max_rel_diff']:.0e}): "
            f"{t_same * 1e3:.1f} ms, x{t_hand / t_same:.2f}\n"
            f"    ours, full deribit-pm (add-ons, currency netting): {t_full * 1e3:.1f} ms, x{t_hand / t_full:.2f}"
        )
    path = record(
        "end_to_end",
        {
            "accounts": args.accounts,
            "positions": args.positions,
            "threads": args.threads,
            "cli_wall_median_s": wall,
            "cli_walls_s": walls,
            "cli_stages_s": cli_stage,
            "breakdown_s": parts,
            **base,
            "ratio_same_model_vs_by_hand": t_hand / t_same,
            "ratio_full_model_vs_by_hand": t_hand / t_full,
            "target_s": 1.0,
            "load_average_1_5_15_min": list(os.getloadavg()),
        },
    )
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"  load average (1, 5, 15 min) at the end: {load} on {os.cpu_count()} cores")
    print(f"  recorded in {path}")


if __name__ == "__main__":
    main()
