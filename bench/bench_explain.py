"""Explain of a 10,000-account book: contributions, incremental and marginal margin for every
position, against the plain margin run and against the baseline a user would write with the engine
alone (incremental margin by re-margining every leave-one-out book, batched in one engine call).

Run: PYTHONPATH=python python bench/bench_explain.py [--accounts 10000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import marginkernel as mk
from benchutil import machine, median_seconds, record
from marginkernel.demo import demo_inputs
from marginkernel.explain import explain


def book(n_accounts: int, ids: list[str], seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for a in range(n_accounts):
        for i in rng.choice(len(ids), size=rng.integers(2, 7), replace=False):
            q = (
                rng.choice([-1, 1])
                * rng.integers(1, 50)
                * (1000 if "-" not in ids[i][4:] or ids[i].count("-") == 1 else 1)
            )
            rows.append((f"acc{a}", ids[i], float(q)))
    return pd.DataFrame(rows, columns=["account", "instrument", "quantity"])


def loo_book(positions: pd.DataFrame) -> pd.DataFrame:
    """Every account without each of its positions, as one book of pseudo-accounts."""
    parts = []
    for _k, (acc, g) in enumerate(positions.groupby("account", sort=False)):
        for j in range(len(g)):
            parts.append(g.drop(g.index[j]).assign(account=f"{acc}#{j}"))
    return pd.concat(parts, ignore_index=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--accounts", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--preset", default="deribit-pm")
    args = ap.parse_args()
    inst, mkt, _ = demo_inputs()
    eng = mk.Engine(inst, mkt, mk.load_model(args.preset))
    pos = book(args.accounts, list(inst.ids))
    n_pos = len(pos)
    t_margin, _ = median_seconds(lambda: eng.margin(pos), repeat=args.repeat)
    t_contrib, _ = median_seconds(lambda: explain(eng, pos, incremental=False, marginal=False), repeat=args.repeat)
    t_incr, _ = median_seconds(lambda: explain(eng, pos, marginal=False), repeat=args.repeat)
    t_full, _ = median_seconds(lambda: explain(eng, pos), repeat=args.repeat)
    loo = loo_book(pos)
    t_loo, _ = median_seconds(lambda: eng.margin(loo), repeat=args.repeat, warmup=0)
    ex = explain(eng, pos, marginal=False)
    base = eng.margin(pos).accounts["im"]
    im_loo = eng.margin(loo).accounts["im"]
    brute = np.array(
        [base[a] - im_loo[f"{a}#{j}"] for a, g in pos.groupby("account", sort=False) for j in range(len(g))]
    )
    order = ex.positions.sort_values(["account"], kind="stable")
    err = float(np.max(np.abs(np.sort(ex.positions["incremental"].to_numpy()) - np.sort(brute))))
    m = machine()
    print(
        f"explain bench: {args.accounts} accounts, {n_pos} positions, preset {args.preset}, "
        f"{eng.scenario_set.n_scenarios} scenarios; CPU {m['cpu']}, SIMD {m['simd_targets']}"
    )
    print(f"  plain margin run                      {t_margin * 1e3:9.1f} ms")
    print(f"  explain: contributions                {t_contrib * 1e3:9.1f} ms  ({t_contrib / t_margin:5.1f} x margin)")
    print(f"  explain: + incremental (C++ kernel)   {t_incr * 1e3:9.1f} ms  ({t_incr / t_margin:5.1f} x margin)")
    print(f"  explain: + marginal                   {t_full * 1e3:9.1f} ms  ({t_full / t_margin:5.1f} x margin)")
    print(
        f"  baseline: re-margin {len(loo)}-row leave-one-out book {t_loo * 1e3:9.1f} ms "
        f"(incremental part {t_loo / max(t_incr - t_contrib, 1e-9):5.1f} x slower than ours)"
    )
    print(f"  max |incremental - brute force| = {err:.3g} (largest IM {base.max():.6g})")
    del order
    out = record(
        "explain",
        {
            "accounts": args.accounts,
            "positions": n_pos,
            "preset": args.preset,
            "scenarios": eng.scenario_set.n_scenarios,
            "margin_ms": t_margin * 1e3,
            "contributions_ms": t_contrib * 1e3,
            "incremental_ms": t_incr * 1e3,
            "full_ms": t_full * 1e3,
            "loo_baseline_ms": t_loo * 1e3,
            "ratio_full_over_margin": t_full / t_margin,
            "max_abs_error_incremental": err,
            "command": "PYTHONPATH=python python bench/bench_explain.py " + " ".join(sys.argv[1:]),
        },
    )
    print(f"  recorded {out}")


if __name__ == "__main__":
    main()
