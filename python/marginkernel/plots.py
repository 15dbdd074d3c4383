"""Pictures (matplotlib, an optional extra: ``pip install marginkernel[plot]``).

Every function draws on its own :class:`matplotlib.figure.Figure` (no pyplot global state), writes
a PNG of exactly ``size`` inches x ``dpi`` pixels when given a file, and returns the figure.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

SIZE = (9.0, 5.5)
DPI = 100


def _figure(size: tuple[float, float], dpi: int) -> Any:
    try:
        from matplotlib.figure import Figure
    except ImportError:  # pragma: no cover - the extra is installed for the tests
        raise ValueError("plots need matplotlib: pip install 'marginkernel[plot]'") from None
    return Figure(figsize=size, dpi=dpi, layout="constrained")


def _save(fig: Any, path: str | Path | None) -> Any:
    if path is not None:
        p = Path(path)
        if p.suffix.lower() != ".png":
            raise ValueError(f"--plot {path}: expected a .png file name")
        fig.savefig(p, format="png")
    return fig


def heatmap(
    engine: Any,
    result: Any,
    account: Any,
    path: str | Path | None = None,
    *,
    unit: str | None = None,
    size: tuple[float, float] = SIZE,
    dpi: int = DPI,
) -> Any:
    """Scenario P&L (weighted, settlement currency) of one account's risk unit on a price x vol grid,
    the binding (worst) scenario marked. `unit` defaults to the unit with the largest loss."""
    units = list(result.units)
    a = result.accounts.index.get_loc(account)
    sc = engine.scenario_set
    pnl = result.pnl[a] * sc.weight
    u = int(np.argmin(pnl.min(axis=1))) if unit is None else units.index(unit)
    price = np.round(sc.price_multiplier[u] - 1.0, 10)
    vol = np.round(sc.vol_shift[u], 10)
    xs, ys = np.unique(price), np.unique(vol)
    grid = np.full((len(ys), len(xs)), np.nan)
    for s in range(len(price)):
        i, j = np.searchsorted(ys, vol[s]), np.searchsorted(xs, price[s])
        cell = grid[i, j]
        grid[i, j] = pnl[u, s] if np.isnan(cell) else min(cell, pnl[u, s])
    fig = _figure(size, dpi)
    ax = fig.subplots()
    lim = np.nanmax(np.abs(grid)) or 1.0
    im = ax.imshow(grid, origin="lower", aspect="auto", cmap="RdYlGn", vmin=-lim, vmax=lim)
    ax.set_xticks(range(len(xs)), [f"{x:+.0%}" for x in xs], rotation=60, fontsize=7)
    ax.set_yticks(range(len(ys)), [f"{y:+.2f}" for y in ys])
    ax.set_xlabel("price move")
    ax.set_ylabel("vol shift")
    worst = int(np.argmin(pnl[u]))
    ax.plot(
        np.searchsorted(xs, price[worst]),
        np.searchsorted(ys, vol[worst]),
        marker="X",
        markersize=16,
        color="black",
        label=f"binding: {sc.labels[worst]}",
    )
    ax.legend(loc="upper right", fontsize=8)
    ax.set_title(f"{account}: weighted scenario P&L of {units[u]}")
    fig.colorbar(im, ax=ax, label="P&L (settlement currency)")
    return _save(fig, path)


def breakdown(result: Any, path: str | Path | None = None, *, size: tuple[float, float] = SIZE, dpi: int = DPI) -> Any:
    """Margin breakdown per account: scan risk and each add-on (credits below zero), IM marked."""
    acc = result.accounts
    parts = ["scan_risk", *result.components]
    fig = _figure(size, dpi)
    ax = fig.subplots()
    x = np.arange(len(acc))
    pos_base, neg_base = np.zeros(len(acc)), np.zeros(len(acc))
    for name in parts:
        v = acc[name].to_numpy(float)
        base = np.where(v >= 0, pos_base, neg_base)
        ax.bar(x, v, bottom=base, label=name)
        pos_base += np.maximum(v, 0)
        neg_base += np.minimum(v, 0)
    ax.scatter(x, acc["risk"], marker="_", s=400, color="black", label="requirement", zorder=3)
    ax.set_xticks(x, [str(a) for a in acc.index], rotation=30, ha="right")
    ax.set_ylabel(f"{result.currency}")
    ax.set_title("margin breakdown (requirement = scan + add-ons - credits; IM = im_factor x requirement)")
    ax.legend(fontsize=8)
    return _save(fig, path)


def contributions(
    explanation: Any, path: str | Path | None = None, *, size: tuple[float, float] = SIZE, dpi: int = DPI
) -> Any:
    """Contributions to IM by position (scan and add-ons stacked), one bar per position."""
    frame = explanation.positions
    fig = _figure(size, dpi)
    ax = fig.subplots()
    if len(frame) == 0:
        ax.text(0.5, 0.5, "no positions", ha="center", va="center", transform=ax.transAxes)
        return _save(fig, path)
    labels = [f"{a} {i}" for a, i in zip(frame["account"], frame["instrument"], strict=False)]
    y = np.arange(len(frame))
    pos_base, neg_base = np.zeros(len(frame)), np.zeros(len(frame))
    for name in ("scan", *explanation.components):
        v = frame[name].to_numpy(float)
        ax.barh(y, v, left=np.where(v >= 0, pos_base, neg_base), label=name)
        pos_base += np.maximum(v, 0)
        neg_base += np.minimum(v, 0)
    ax.scatter(frame["contribution"], y, marker="|", s=200, color="black", label="contribution", zorder=3)
    ax.set_yticks(y, labels, fontsize=7)
    ax.invert_yaxis()
    ax.axvline(0.0, color="grey", linewidth=0.8)
    ax.set_xlabel(f"contribution to IM ({explanation.currency})")
    ax.set_title("contributions by position (they add up to IM per account)")
    ax.legend(fontsize=8)
    return _save(fig, path)


def stress_results(
    sections: dict[str, pd.DataFrame],
    path: str | Path | None = None,
    *,
    size: tuple[float, float] = SIZE,
    dpi: int = DPI,
) -> Any:
    """Stress P&L per account (user stresses and the worst historical replay per horizon)."""
    fig = _figure(size, dpi)
    ax = fig.subplots()
    bars: list[tuple[str, pd.Series]] = []
    if "stress" in sections:
        for name, g in sections["stress"].groupby("stress", sort=False):
            bars.append((str(name), g.set_index("account")["pnl"]))
    if "historical" in sections:
        h = sections["historical"]
        for d, g in h[h["rank"] == 1].groupby("days", sort=False):
            bars.append((f"worst {d}-day replay", g.set_index("account")["pnl"]))
    if not bars:
        ax.text(0.5, 0.5, "no stress results", ha="center", va="center", transform=ax.transAxes)
        return _save(fig, path)
    accounts = list(dict.fromkeys(a for _, s in bars for a in s.index))
    x = np.arange(len(accounts))
    width = 0.8 / len(bars)
    for k, (name, s) in enumerate(bars):
        ax.bar(x + k * width - 0.4 + width / 2, s.reindex(accounts).to_numpy(float), width, label=name)
    ax.axhline(0.0, color="grey", linewidth=0.8)
    ax.set_xticks(x, [str(a) for a in accounts], rotation=30, ha="right")
    ax.set_ylabel("P&L")
    ax.set_title("stress results")
    ax.legend(fontsize=8)
    return _save(fig, path)
