"""A synthetic but realistic crypto book for the end-to-end and Dask benchmarks.

Instruments: BTC and ETH inverse options (12 expiries; 15 / 10 strikes from 60 % to 140 % of spot,
calls and puts), 12 inverse futures each, two inverse perpetuals and one linear USDC perpetual:
627 instruments in 3 risk units. Market: the demo snapshot's spot and carry, a smile
``vol = 0.5 + 0.4 ln(K/F)^2`` (BTC; ETH +0.15). Positions: ``accounts`` accounts with about
``positions / accounts`` positions each, rows grouped by account as an export would be, account
names ``A0000000``-style strings, option quantities in contracts (+-1..50), futures in USD notional.
Everything is drawn from a seeded generator, so a size always gives the same book.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

TIME = pd.Timestamp("2026-11-21T08:00:00Z")
SPOT = {"BTC": 98_000.0, "ETH": 3_400.0}
CARRY = {"BTC": 0.06, "ETH": 0.05}
STRIKES = {"BTC": 15, "ETH": 10}
N_EXPIRIES = 12


def instruments() -> pd.DataFrame:
    rows = [
        {"id": "BTC-PERPETUAL", "kind": "perpetual", "underlying": "BTC", "settlement": "inverse", "multiplier": 10.0},
        {"id": "ETH-PERPETUAL", "kind": "perpetual", "underlying": "ETH", "settlement": "inverse", "multiplier": 1.0},
        {
            "id": "BTC_USDC-PERPETUAL",
            "kind": "perpetual",
            "underlying": "BTC",
            "settlement": "linear",
            "currency": "USDC",
            "multiplier": 1.0,
        },
    ]
    expiries = [TIME.normalize() + pd.Timedelta(days=int(d), hours=8) for d in np.geomspace(3, 400, N_EXPIRIES).round()]
    for und, spot in SPOT.items():
        for exp in expiries:
            tag = exp.strftime("%d%b%y").upper()
            iso = exp.strftime("%Y-%m-%dT%H:%M:%SZ")
            rows.append(
                {
                    "id": f"{und}-{tag}",
                    "kind": "future",
                    "underlying": und,
                    "settlement": "inverse",
                    "expiry": iso,
                    "multiplier": 10.0 if und == "BTC" else 1.0,
                }
            )
            for k in np.linspace(0.6, 1.4, STRIKES[und]):
                strike = float(round(spot * k, -2 if und == "BTC" else 0))
                for kind in ("call", "put"):
                    rows.append(
                        {
                            "id": f"{und}-{tag}-{int(strike)}-{kind[0].upper()}",
                            "kind": kind,
                            "underlying": und,
                            "settlement": "inverse",
                            "strike": strike,
                            "expiry": iso,
                            "multiplier": 1.0,
                        }
                    )
    frame = pd.DataFrame(
        rows, columns=["id", "kind", "underlying", "settlement", "currency", "strike", "expiry", "multiplier"]
    )
    return frame.astype({"currency": object, "expiry": object})


def market_toml(inst: pd.DataFrame) -> str:
    lines = [f'time = "{TIME.strftime("%Y-%m-%dT%H:%M:%SZ")}"', "", "[spot]"]
    lines += [f"{u} = {s}" for u, s in SPOT.items()]
    lines += ["", "[carry]"] + [f"{u} = {c}" for u, c in CARRY.items()]
    lines += ["", "[marks]", "BTC-PERPETUAL = 98020.0", "ETH-PERPETUAL = 3401.0", "BTC_USDC-PERPETUAL = 98015.0"]
    lines += ["", "[vols]"]
    options = inst[inst["kind"].isin(["call", "put"])]
    for iid, und, strike in zip(options["id"], options["underlying"], options["strike"], strict=True):
        vol = 0.5 + 0.4 * np.log(strike / SPOT[und]) ** 2 + (0.15 if und == "ETH" else 0.0)
        lines.append(f'"{iid}" = {vol:.4f}')
    return "\n".join(lines) + "\n"


def positions(inst: pd.DataFrame, n_accounts: int, n_positions: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    per = rng.multinomial(n_positions - n_accounts, np.full(n_accounts, 1.0 / n_accounts)) + 1
    account = np.repeat(np.arange(n_accounts), per)
    pick = rng.integers(0, len(inst), n_positions)
    kind = inst["kind"].to_numpy()[pick]
    size = rng.integers(1, 51, n_positions) * rng.choice([-1.0, 1.0], n_positions)
    linear = np.isin(kind, ["future", "perpetual"])
    size = np.where(linear, size * 1_000.0, size)
    names = np.char.add("A", np.char.zfill(account.astype(str), 7)).astype(object)
    return pd.DataFrame({"account": names, "instrument": inst["id"].to_numpy()[pick], "quantity": size})


def write_inputs(directory: Path, n_accounts: int, n_positions: int) -> dict[str, Path]:
    """Writes instruments.parquet, market.toml and positions.parquet (pyarrow) and returns their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    inst = instruments()
    paths = {
        "instruments": directory / "instruments.parquet",
        "market": directory / "market.toml",
        "positions": directory / "positions.parquet",
    }
    inst.to_parquet(paths["instruments"], index=False)
    paths["market"].write_text(market_toml(inst))
    positions(inst, n_accounts, n_positions).to_parquet(paths["positions"], index=False)
    return paths
