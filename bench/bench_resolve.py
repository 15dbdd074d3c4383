"""Instruments.from_frame and Market.resolve on 100,000 instruments: ours (column by column) beside
the previous implementation's row loops (kept here, verbatim in substance, as the baseline), in the
same run, with the ratio and a check that both give the same arrays.

    PYTHONPATH=python python bench/bench_resolve.py [--n 100000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import marginkernel as mk
from benchutil import median_seconds, record
from marginkernel.instruments import risk_unit_name, to_epoch_seconds

KINDS = {"future": 0, "perpetual": 1, "call": 2, "put": 3, "spot": 4}


def legacy_from_frame(frame: pd.DataFrame) -> dict:
    """The previous Instruments.from_frame: frame.to_dict("records") then one Python step per row."""
    cols: dict[str, list] = {
        k: [] for k in ("ids", "kind", "settlement", "underlying", "currency", "strike", "expiry", "multiplier")
    }
    for rec in frame.to_dict("records"):
        kind = rec["kind"]
        settlement = rec.get("settlement") or "linear"
        if isinstance(settlement, float):
            settlement = "linear"
        currency = rec.get("currency")
        if currency is None or (isinstance(currency, float) and math.isnan(currency)):
            currency = rec["underlying"] if settlement == "inverse" else "USD"
        mult = rec.get("multiplier", 1.0)
        strike = float(rec["strike"]) if kind in ("call", "put") else math.nan
        expiry = to_epoch_seconds(rec["expiry"]) if kind in ("future", "call", "put") else math.nan
        cols["ids"].append(rec["id"])
        cols["kind"].append(KINDS[kind])
        cols["settlement"].append(0 if settlement == "linear" else 1)
        cols["underlying"].append(rec["underlying"])
        cols["currency"].append(currency)
        cols["strike"].append(strike)
        cols["expiry"].append(expiry)
        cols["multiplier"].append(float(mult))
    return {k: np.array(v) for k, v in cols.items()}


def legacy_resolve(market: mk.Market, inst: mk.Instruments) -> dict:
    """The previous Market.resolve: a Python loop over instruments."""
    n = len(inst)
    units_per_row = [risk_unit_name(u, c) for u, c in zip(inst.underlying, inst.currency, strict=True)]
    units = list(dict.fromkeys(units_per_row))
    unit_index = {u: k for k, u in enumerate(units)}
    years = np.where(np.isnan(inst.expiry), 0.0, (inst.expiry - market.time) / (365.0 * 86400.0))
    forward, discount, vol = np.empty(n), np.ones(n), np.zeros(n)
    for k in range(n):
        iid, kind, under = inst.ids[k], int(inst.kind[k]), inst.underlying[k]
        spot, t = market.spot[under], years[k]
        if kind in (1, 4):
            forward[k] = market.marks.get(iid, spot)
            continue
        table = market.forwards.get(under, {})
        exp = inst.expiry[k]
        forward[k] = table[exp] if exp in table else spot * math.exp(market.carry.get(under, 0.0) * max(t, 0.0))
        dfs = market.discounts.get(under, {})
        discount[k] = dfs[exp] if exp in dfs else math.exp(-market.rates.get(under, 0.0) * max(t, 0.0))
        if kind in (2, 3):
            vol[k] = market.vols[iid]
    return {
        "unit_of_row": np.array([unit_index[u] for u in units_per_row]),
        "forward": forward,
        "discount": discount,
        "vol": vol,
    }


def book(n: int) -> tuple[pd.DataFrame, mk.Market]:
    rng = np.random.default_rng(11)
    unders = np.array(["BTC", "ETH", "SOL", "XRP"])
    spots = {"BTC": 100_000.0, "ETH": 4_000.0, "SOL": 200.0, "XRP": 2.0}
    under = unders[rng.integers(0, 4, n)]
    kind = np.array(["call", "put", "future", "perpetual"])[rng.choice(4, n, p=[0.45, 0.45, 0.08, 0.02])]
    expiries = pd.date_range("2026-12-01T08:00:00Z", periods=30, freq="7D").strftime("%Y-%m-%dT%H:%M:%SZ")
    expiry = np.where(kind == "perpetual", None, np.asarray(expiries)[rng.integers(0, 30, n)])
    strike = np.array([spots[u] for u in under]) * rng.uniform(0.5, 1.5, n)
    ids = np.array([f"I{k}" for k in range(n)], dtype=object)
    frame = pd.DataFrame(
        {
            "id": ids,
            "kind": kind,
            "underlying": under,
            "settlement": np.where(rng.random(n) < 0.5, "linear", "inverse"),
            "strike": np.where(np.isin(kind, ["call", "put"]), strike, np.nan),
            "expiry": expiry,
            "multiplier": 1.0,
        }
    )
    option = np.isin(kind, ["call", "put"])
    market = mk.Market.from_dict(
        {
            "time": "2026-11-21T08:00:00Z",
            "spot": spots,
            "carry": {"BTC": 0.05, "ETH": 0.04},
            "rates": {"BTC": 0.01},
            "vols": dict(zip(ids[option], rng.uniform(0.3, 1.0, option.sum()), strict=True)),
            "forwards": {"BTC": {expiries[3]: 101_000.0}},
        }
    )
    return frame, market


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    frame, market = book(args.n)
    inst = mk.Instruments.from_frame(frame)
    old = legacy_from_frame(frame)
    for key, ours in (("expiry", inst.expiry), ("strike", inst.strike), ("kind", inst.kind)):
        np.testing.assert_array_equal(ours, old[key], err_msg=key)
    res, old_res = market.resolve(inst), legacy_resolve(market, inst)
    for key in ("unit_of_row", "forward", "discount", "vol"):
        np.testing.assert_allclose(getattr(res, key), old_res[key], rtol=1e-15, atol=0, err_msg=key)
    out = {"instruments": args.n, "results": {}}
    for name, ours_fn, base_fn in (
        ("from_frame", lambda: mk.Instruments.from_frame(frame), lambda: legacy_from_frame(frame)),
        ("resolve", lambda: market.resolve(inst), lambda: legacy_resolve(market, inst)),
    ):
        t_ours, _ = median_seconds(ours_fn, repeat=args.repeat)
        t_base, _ = median_seconds(base_fn, repeat=max(1, args.repeat // 2))
        out["results"][name] = {"ours_median_s": t_ours, "row_loop_median_s": t_base, "ratio": t_base / t_ours}
        print(
            f"{name:>10}: ours {t_ours * 1e3:8.1f} ms   previous row loop {t_base * 1e3:8.1f} ms   "
            f"ratio {t_base / t_ours:5.1f}x   ({args.n:,} instruments)"
        )
    print("recorded", record("resolve", out))


if __name__ == "__main__":
    main()
