"""Historical VaR at scale and the backtest's speed.

Part 1 -- 10,000 accounts x 2,500 and 5,000 historical scenarios (account netting, 99 % VaR), each
path in a fresh subprocess so that its peak memory is its own: ``Engine.margin`` (the present
path), ``margin_by_blocks`` (marginkernel.historical.stream: 256 accounts at a time) and the
NumPy/SciPy baseline a user would write (scipy.sparse Q @ R per risk unit, np.quantile). Peak memory
is the growth of the process's peak RSS over its RSS just before the call, and is quoted against the
size of the P&L array accounts x units x scenarios x 8 bytes. 5,000 daily scenarios need more days
than the shipped history has: the bench bootstraps a synthetic 5,200-day BTC/ETH history from the
shipped daily returns (size only; the numbers are not a model).

Part 2 -- a five-year daily backtest (2020-01-01 to 2024-12-29) of a 50-position BTC/ETH options and
perpetuals book on hist-var99 and fhs-es975-apc, beside the public per-day path (a Market and an
Engine per day, ``Engine.margin``), timed over its first 30 days and scaled to the same day count.

    python bench/bench_historical.py [--accounts 10000] [--scenarios 2500 5000] [--repeat 3] [--skip-engine]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# isort: off
import benchutil  # noqa: F401  (first: pins BLAS to one thread before NumPy loads)

# isort: on
import numpy as np
import pandas as pd

import marginkernel as mk
from benchutil import median_seconds, record
from marginkernel.demo import demo_inputs
from marginkernel.historical import backtest, load_history
from marginkernel.historical.stream import margin_by_blocks


def synthetic_history(days: int, path: Path) -> None:
    h = load_history()
    x = np.log(h.prices[1:] / h.prices[:-1])
    rng = np.random.default_rng(11)
    draw = x[rng.integers(0, len(x), days - 1)]
    prices = h.prices[-1] * np.exp(np.vstack([np.zeros((1, 2)), np.cumsum(draw, axis=0)]))
    dates = pd.date_range("2000-01-01", periods=days, freq="D").strftime("%Y-%m-%d")
    pd.DataFrame({"date": dates, "btc_usdt": prices[:, 0], "eth_usdt": prices[:, 1]}).to_csv(path, index=False)


def _book(accounts: int, per_account: int, ids: list[str]) -> pd.DataFrame:
    rng = np.random.default_rng(5)
    n = accounts * per_account
    return pd.DataFrame(
        {
            "account": np.repeat(np.arange(accounts), per_account).astype(str),
            "instrument": np.array(ids, dtype=object)[rng.integers(0, len(ids), n)],
            "quantity": np.round(rng.normal(0, 10, n), 2) + 0.01,
        }
    )


def _numpy_var(engine: mk.Engine, positions: pd.DataFrame) -> np.ndarray:
    import scipy.sparse as sp

    m, sc = engine.market, engine.scenario_set
    acc, inv = np.unique(positions["account"].to_numpy(), return_inverse=True)
    index = {iid: k for k, iid in enumerate(engine.instruments.ids)}
    inst = np.array([index[i] for i in positions["instrument"]])
    q = sp.csr_matrix((positions["quantity"].to_numpy(), (inv, inst)), shape=(len(acc), len(index)))
    joint = np.zeros((len(acc), sc.n_scenarios))
    for u in range(len(engine.units)):
        rows = m.unit_of_row == u
        joint += m.unit_fx[u] * (q[:, rows] @ engine.risk[rows])
    return -np.quantile(joint, 1 - engine.model.confidence, axis=1, method="inverted_cdf")


def child(args: argparse.Namespace) -> None:
    """One path, one scenario count, in this process: prints a JSON line."""
    import psutil

    inst, market, _ = demo_inputs()
    model = mk.MarginModel.from_dict(
        {
            "model": {"name": "bench", "measure": "var", "confidence": 0.99, "netting": "account"},
            "scenarios": {
                "builder": "historical_simulation",
                "history": args.history,
                "columns": {"BTC": "btc_usdt", "ETH": "eth_usdt"},
                "lookback": args.child_scenarios,
                "horizon": 2,
            },
        }
    )
    engine = mk.Engine(inst, market, model)
    positions = _book(args.accounts, 5, list(inst.ids))
    book = engine.book(positions)
    fn = {
        "engine": lambda: engine.margin(book),
        "blocks": lambda: margin_by_blocks(engine, book, block=256),
        "numpy": lambda: _numpy_var(engine, positions),
    }[args.child]
    before = psutil.Process().memory_info().rss
    seconds, times = median_seconds(fn, repeat=args.repeat, warmup=0)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    pnl_bytes = args.accounts * len(engine.units) * args.child_scenarios * 8
    print(
        json.dumps(
            {
                "path": args.child,
                "scenarios": args.child_scenarios,
                "seconds": seconds,
                "times": times,
                "peak_growth_bytes": peak - before,
                "pnl_bytes": pnl_bytes,
                "units": len(engine.units),
            }
        )
    )


def part1(args: argparse.Namespace, history: Path) -> list[dict]:
    rows = []
    paths = ["blocks", "numpy"] + ([] if args.skip_engine else ["engine"])
    for s in args.scenarios:
        for path in paths:
            cmd = [
                sys.executable,
                __file__,
                "--child",
                path,
                "--child-scenarios",
                str(s),
                "--history",
                str(history),
                "--accounts",
                str(args.accounts),
                "--repeat",
                str(args.repeat),
            ]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=os.environ.copy())
            row = json.loads(out.stdout.strip().splitlines()[-1])
            rows.append(row)
            print(
                f"  {s:>5} scenarios  {path:<7} {row['seconds']:8.2f} s   "
                f"peak +{row['peak_growth_bytes'] / 2**30:6.2f} GiB"
                f" = {row['peak_growth_bytes'] / row['pnl_bytes']:5.2f} x the P&L array "
                f"({row['pnl_bytes'] / 2**30:.2f} GiB)",
                flush=True,
            )
    return rows


def _options_book() -> tuple[mk.Instruments, mk.Market, pd.DataFrame]:
    recs, vols = [], {}
    rng = np.random.default_rng(3)
    for und, spot, mult in (("BTC", 93000.0, 1.0), ("ETH", 3300.0, 1.0)):
        recs.append(
            {
                "id": f"{und}-PERP",
                "kind": "perpetual",
                "underlying": und,
                "settlement": "linear",
                "currency": "USDC",
                "multiplier": mult,
            }
        )
        for k in range(24):
            kind = "call" if k % 2 else "put"
            strike = round(spot * (0.6 + 0.05 * (k // 2) * 1.5), 0)
            iid = f"{und}-{kind}-{k}"
            recs.append(
                {
                    "id": iid,
                    "kind": kind,
                    "underlying": und,
                    "settlement": "linear",
                    "currency": "USDC",
                    "strike": strike,
                    "expiry": ["2025-03-28T08:00:00Z", "2025-06-27T08:00:00Z"][k % 4 // 2],
                    "multiplier": mult,
                }
            )
            vols[iid] = 0.55
    inst = mk.Instruments.from_records(recs)
    market = mk.Market.from_dict(
        {"time": "2024-12-31T08:00:00Z", "spot": {"BTC": 93000.0, "ETH": 3300.0}, "vols": vols}
    )
    qty = np.round(rng.normal(0, 5, len(recs)), 1) + 0.1
    qty[0], qty[25] = -3.0, -40.0
    return inst, market, pd.DataFrame({"instrument": [r["id"] for r in recs], "quantity": qty})


def _per_day_engine(model_name: str, inst, market: mk.Market, book: pd.DataFrame, days: list[str]) -> float:
    h = load_history()
    model = mk.load_model(model_name)
    t0 = time.perf_counter()
    for day in days:
        s = h.prices[h.index_of(day)]
        m_day = mk.Market.from_dict(
            {"time": "2024-12-31T08:00:00Z", "spot": {"BTC": s[0], "ETH": s[1]}, "vols": dict(market.vols)}
        )
        params = {**model.scenario_params, "as_of": day}
        mdl = mk.MarginModel(**{**model.__dict__, "scenario_params": params})
        mk.Engine(inst, m_day, mdl).margin(book.assign(account="a"))
    return time.perf_counter() - t0


def part2(args: argparse.Namespace) -> list[dict]:
    inst, market, book = _options_book()
    assert len(book) == 50
    rows = []
    for name in ("hist-var99", "fhs-es975-apc"):
        model = mk.load_model(name)
        engine = mk.Engine(inst, market, model)
        res = backtest.run(model, engine, book, start="2020-01-01")
        days = len(res.frame)
        sec, _ = median_seconds(
            lambda m=model, e=engine: backtest.run(m, e, book, start="2020-01-01"), repeat=args.repeat, warmup=0
        )
        sample = [str(d)[:10] for d in res.frame.index[:30]]
        base = _per_day_engine(name, inst, market, book, sample) / len(sample) * days
        rows.append(
            {
                "model": name,
                "days": days,
                "backtest_seconds": sec,
                "per_day_engine_seconds_scaled": base,
                "ratio": base / sec,
                "exceptions": res.stats["coverage"]["exceptions"],
            }
        )
        print(
            f"  {name:<14} {days} days: backtest {sec:6.2f} s (plus a run without APC if the model has APC); "
            f"per-day Engine "
            f"path {base:7.1f} s (scaled from 30 days; one run) -> {base / sec:5.1f}x",
            flush=True,
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accounts", type=int, default=10_000)
    ap.add_argument("--scenarios", type=int, nargs="+", default=[2500, 5000])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-engine", action="store_true", help="leave out Engine.margin (it needs ~6x the P&L array)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--child-scenarios", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--history", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args)
        return
    print(f"part 1: {args.accounts} accounts x {args.scenarios} scenarios, 5 positions each, account-netted VaR 99%")
    with tempfile.TemporaryDirectory() as tmp:
        hist = Path(tmp) / "synthetic.csv"
        synthetic_history(max(args.scenarios) + 200, hist)
        big = part1(args, hist)
    print("part 2: five-year daily backtest of a 50-position book")
    bt = part2(args)
    out = record(
        "historical",
        {
            "accounts": args.accounts,
            "scale": big,
            "backtest": bt,
            "command": "python bench/bench_historical.py " + " ".join(sys.argv[1:]),
        },
    )
    print(f"recorded {out}")


if __name__ == "__main__":
    main()
