"""Hedge optimisation: the hedge quantities that minimise IM + trading cost, exactly (LP / MILP)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..codes import FUTURE, PERPETUAL, SPOT
from ..validation import is_missing, number
from ._hedge_model import Builder, check_model


@dataclass(frozen=True, eq=False)
class HedgeResult:
    """``trades``: instrument, quantity (lots x lot size), cost; ``positions``: the book after the
    trades; ``im_before`` / ``im_after`` (engine), ``cost``, ``objective`` (solver: IM + cost),
    ``delta_hedge`` (the plain delta hedge's trades) with ``im_delta_hedge`` and ``cost_delta_hedge``,
    ``saving_vs_delta_hedge`` = (IM + cost of the delta hedge) - (IM + cost of the optimum)."""

    account: Any
    trades: pd.DataFrame
    positions: pd.DataFrame
    im_before: float
    im_after: float
    cost: float
    objective: float
    delta_hedge: pd.DataFrame
    im_delta_hedge: float
    cost_delta_hedge: float
    saving_vs_delta_hedge: float
    solve_seconds: float
    integer: bool
    status: str = "optimal"  # or the solver's message when stopped early (time limit): a feasible, not proven optimum

    def summary(self) -> dict[str, Any]:
        keys = (
            "im_before",
            "im_after",
            "cost",
            "objective",
            "im_delta_hedge",
            "cost_delta_hedge",
            "saving_vs_delta_hedge",
            "solve_seconds",
        )
        return {"account": self.account, **{k: float(getattr(self, k)) for k in keys}}


@dataclass(frozen=True, eq=False)
class Universe:
    instrument: np.ndarray  # engine rows
    ids: list[Any]
    lo: np.ndarray  # bounds on the traded quantity
    hi: np.ndarray
    lot: np.ndarray  # 0 = continuous
    cost: np.ndarray  # per unit traded


def _column(frame: pd.DataFrame, name: str, default: float) -> list[Any]:
    return list(frame[name]) if name in frame.columns else [default] * len(frame)


def universe(engine: Any, hedges: Any) -> Universe:
    """Validate the hedge table: ``instrument`` (id), ``min`` / ``max`` (bounds on the traded quantity,
    default -inf / +inf), ``lot`` (lot size, empty or 0 = continuous) and ``cost`` (per unit, default 0)."""
    frame = hedges if isinstance(hedges, pd.DataFrame) else pd.DataFrame(list(hedges))
    if len(frame) == 0:
        raise ValueError("hedges: no hedge instruments given")
    if "instrument" not in frame.columns:
        raise ValueError("hedges: missing column 'instrument'")
    ids = list(frame["instrument"])
    index = pd.Index(engine.instruments.ids)
    rows = index.get_indexer(pd.Index(ids))
    seen = set()
    lo, hi, lot, cost = [], [], [], []
    for k, iid in enumerate(ids):
        if rows[k] < 0:
            raise ValueError(f"hedges row {k}: unknown instrument {iid!r}")
        if iid in seen:
            raise ValueError(f"hedges row {k}: instrument {iid!r} listed twice")
        seen.add(iid)
    for k, (a_raw, b_raw, size_raw, c_raw) in enumerate(
        zip(
            _column(frame, "min", -math.inf),
            _column(frame, "max", math.inf),
            _column(frame, "lot", 0.0),
            _column(frame, "cost", 0.0),
            strict=False,
        )
    ):
        where = f"hedges row {k} ({ids[k]})"
        a = -math.inf if is_missing(a_raw) or a_raw == -math.inf else number(a_raw, f"{where}.min")
        b = math.inf if is_missing(b_raw) else number(b_raw, f"{where}.max", allow_inf=True)
        size = 0.0 if is_missing(size_raw) else number(size_raw, f"{where}.lot", lo=0.0)
        if is_missing(c_raw):
            raise ValueError(f"{where}.cost: must be a finite number >= 0, got {c_raw!r}")
        c = number(c_raw, f"{where}.cost", lo=0.0)
        if a > b:
            raise ValueError(f"{where}: the bounds min {a} <= quantity <= max {b} cannot hold")
        if size > 0 and math.floor(b / size) < math.ceil(a / size):
            raise ValueError(f"{where}: no multiple of the lot {size} lies within [min {a}, max {b}]")
        lo.append(a)
        hi.append(b)
        lot.append(size)
        cost.append(c)
    return Universe(rows.astype(np.int64), ids, np.array(lo), np.array(hi), np.array(lot), np.array(cost))


def _book(positions: Any, account: Any) -> pd.DataFrame:
    frame = positions if isinstance(positions, pd.DataFrame) else pd.DataFrame(list(positions))
    if len(frame) and "account" not in frame.columns:
        raise ValueError("positions: missing column 'account'")
    if account is None:
        names = list(dict.fromkeys(frame["account"]))
        if len(names) != 1:
            raise ValueError(f"account: the positions hold {len(names)} accounts; name one")
        account = names[0]
    return frame.loc[frame["account"] == account, ["account", "instrument", "quantity"]].copy(), account


def _im(engine: Any, book: pd.DataFrame, account: Any) -> float:
    return float(engine.margin(book, accounts=[account], mode="cross").accounts.loc[account, "im"])


def with_trades(book: pd.DataFrame, account: Any, ids: Any, qty: Any) -> pd.DataFrame:
    trades = pd.DataFrame({"account": account, "instrument": list(ids), "quantity": np.asarray(qty, float)})
    out = pd.concat([book, trades[trades["quantity"] != 0]], ignore_index=True)
    return out.groupby(["account", "instrument"], as_index=False, sort=False)["quantity"].sum()


def delta_hedge(engine: Any, book: pd.DataFrame, uni: Universe) -> np.ndarray:
    """The plain delta hedge: per risk unit, the hedge instrument with the largest |delta| per unit
    (futures and perpetuals first) trades -net delta / delta, rounded to its lot and clipped to its bounds."""
    rows = pd.Index(engine.instruments.ids).get_indexer(pd.Index(book["instrument"]))
    delta = engine.deltas
    unit_of = engine.market.unit_of_row
    net = np.bincount(unit_of[rows], book["quantity"].to_numpy(float) * delta[rows], minlength=len(engine.units))
    qty = np.zeros(len(uni.ids))
    linear = np.isin(engine.instruments.kind[uni.instrument], [FUTURE, PERPETUAL, SPOT])
    for u in np.flatnonzero(net):
        cand = [h for h in range(len(uni.ids)) if unit_of[uni.instrument[h]] == u and delta[uni.instrument[h]] != 0]
        if not cand:
            continue
        h = max(cand, key=lambda k: (linear[k], abs(delta[uni.instrument[k]])))
        x = -net[u] / delta[uni.instrument[h]]
        if uni.lot[h] > 0:
            x = round(x / uni.lot[h]) * uni.lot[h]
        qty[h] = min(max(x, uni.lo[h]), uni.hi[h])
    return qty


def hedge(
    engine: Any,
    positions: Any,
    hedges: Any,
    *,
    account: Any = None,
    time_limit: float | None = None,
    mip_rel_gap: float = 1e-7,
) -> HedgeResult:
    """Minimise IM + cost of one account over the hedge instruments (docs/optimise.md). With lot sizes
    the MILP stops within `mip_rel_gap` of the proven optimum (or at `time_limit` seconds, ``status``
    then says so)."""
    check_model(engine)
    uni = universe(engine, hedges)
    book, account = _book(positions, account)
    im_before = _im(engine, book, account)
    rows = pd.Index(engine.instruments.ids).get_indexer(pd.Index(book["instrument"]))
    if (rows < 0).any():
        k = int(np.flatnonzero(rows < 0)[0])
        raise ValueError(f"positions row {k}: unknown instrument {book['instrument'].iloc[k]!r}")
    q0: dict[int, float] = {}
    for i, q in zip(rows, book["quantity"].to_numpy(float), strict=False):
        q0[int(i)] = q0.get(int(i), 0.0) + q
    integer = bool((uni.lot > 0).any())
    lot = np.where(uni.lot > 0, uni.lot, 1.0)
    lo = np.where(uni.lot > 0, np.ceil(uni.lo / lot), uni.lo)
    hi = np.where(uni.lot > 0, np.floor(uni.hi / lot), uni.hi)
    b = Builder(engine, {i: q for i, q in q0.items() if q != 0}, uni.instrument, lot, lo, hi, uni.cost, False)
    problem = b.build()
    if integer:
        for h in np.flatnonzero(uni.lot > 0):
            problem.lp.integer[int(problem.y[h])] = 1
    start = time.perf_counter()
    res = problem.lp.solve(mip_rel_gap=number(mip_rel_gap, "mip_rel_gap", lo=0.0), time_limit=time_limit)
    seconds = time.perf_counter() - start
    if res.x is None:
        raise ValueError(f"hedge: the solver found no solution ({res.message})")
    y = res.x[problem.y]
    if integer:
        y = np.where(uni.lot > 0, np.round(y), y)
    qty = y * lot
    cost_vec = uni.cost * np.abs(qty)
    after = with_trades(book, account, uni.ids, qty)
    im_after = _im(engine, after, account)
    dq = delta_hedge(engine, book, uni)
    dbook = with_trades(book, account, uni.ids, dq)
    im_d, cost_d = _im(engine, dbook, account), float(np.sum(uni.cost * np.abs(dq)))
    trades = pd.DataFrame({"instrument": uni.ids, "quantity": qty, "cost": cost_vec})
    return HedgeResult(
        account,
        trades,
        after,
        im_before,
        im_after,
        float(cost_vec.sum()),
        float(res.fun),
        pd.DataFrame({"instrument": uni.ids, "quantity": dq}),
        im_d,
        cost_d,
        im_d + cost_d - (im_after + float(cost_vec.sum())),
        seconds,
        integer,
        "optimal" if res.status == 0 else str(res.message),
    )
