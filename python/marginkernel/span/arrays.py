"""Risk arrays regenerated from the file's own inputs with the revaluation kernel, and compared
with the published ones (docs/span.md, "Regenerating the arrays")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .. import kernels
from ..codes import CALL, FUTURE, PUT, SPOT
from ..validation import number
from .model import SpanFile

#: one trading day of a 250-trading-day year: the look-ahead used when the file states none (it
#: reproduces the Takasbank arrays; 1/365 and 1/252 reproduce them markedly worse, see docs/span.md)
DEFAULT_LOOK_AHEAD = 1.0 / 250.0
_FD_STEP = 1e-5  # relative bump of the central differences for the composite delta
_KIND_CODE = {"PHY": SPOT, "FUT": FUTURE, "C": CALL, "P": PUT}


@dataclass(frozen=True)
class RegeneratedArrays:
    """Risk arrays recomputed from the file's inputs, aligned with ``SpanFile.contracts``.

    ``arrays`` is in the published convention (loss per contract, scan-point weights applied);
    rows that could not be regenerated are NaN and ``reason`` says why ('' when regenerated).
    ``theoretical`` is the model value of one contract now (options; 0 for linear contracts).
    ``deltas`` are composite deltas in underlying contracts per contract: for options the
    ``delta_points``-weighted mean of the delta at each delta point (with the look-ahead), by
    central differences of kernel values; 1 for futures; the file's own delta for physicals
    (which the file uses to say whether a physical position takes part in delta spreading).
    ``look_ahead`` is the look-ahead used, in years."""

    arrays: np.ndarray
    reason: np.ndarray
    theoretical: np.ndarray
    look_ahead: float
    deltas: np.ndarray


def _inputs(span: SpanFile, underlying_price: str) -> dict[str, np.ndarray]:
    """Per-contract model inputs: underlying price, carry of options and of futures, exercise."""
    c = span.contracts
    price = c["price"].to_numpy(dtype=float)
    cvf = c["cvf"].to_numpy(dtype=float)
    und_row = c["und_row"].to_numpy()
    kind = c["kind"].to_numpy()
    is_opt = np.isin(kind, ("C", "P"))
    per_unit = price
    if underlying_price == "value":
        value = c["value"].to_numpy(dtype=float)
        with np.errstate(invalid="ignore", divide="ignore"):
            per_unit = np.where(np.isfinite(value) & (cvf > 0), value / cvf, price)
    und_kind = np.where(und_row >= 0, kind[np.maximum(und_row, 0)], "")
    rate = c["rate"].to_numpy(dtype=float)
    div = c["div_rate"].to_numpy(dtype=float)
    return {
        "is_opt": is_opt,
        "under": np.where(is_opt, per_unit[np.maximum(und_row, 0)], price),
        "opt_carry": np.where(und_kind == "FUT", 0.0, rate - div),
        # futures: the file's own <intrRate> (minus a dividend rate if any) rolls F over the look-ahead
        "fut_carry": np.where(kind == "FUT", np.nan_to_num(rate) - np.nan_to_num(div), 0.0),
        "exercise": c["pf_id"].map(span.products.set_index("pf_id")["exercise"]).fillna("").to_numpy(),
        "cvf": cvf,
        "und_row": und_row,
    }


def _eligible(span: SpanFile, x: dict[str, np.ndarray], reason: np.ndarray) -> np.ndarray:
    """Mask of contracts the kernel can regenerate; ``reason`` filled for the others."""
    c = span.contracts
    is_opt = x["is_opt"]
    ok = np.ones(len(c), dtype=bool)
    checks = [
        (is_opt & (x["und_row"] < 0), "option without an underlying contract"),
        (is_opt & np.isin(x["exercise"], ("AMER", "AMERICAN")), "American exercise: the kernel prices European only"),
        (~(x["under"] > 0), "underlying price <= 0"),
        (~(x["cvf"] > 0), "contract value factor <= 0"),
        (is_opt & ~(c["strike"].to_numpy(dtype=float) > 0), "strike <= 0"),
        (is_opt & ~(c["vol"].to_numpy(dtype=float) >= 0), "volatility < 0"),
        (is_opt & ~(c["t"].to_numpy(dtype=float) >= 0), "time to expiry < 0"),
    ]
    for bad, why in checks:
        reason[bad & ok] = why
        ok &= ~bad
    return ok


def _scenarios(
    span: SpanFile, x: dict[str, Any], *, rows: np.ndarray, look_ahead: float, threads: int
) -> tuple[np.ndarray, np.ndarray]:
    """Values after the look-ahead at every scan point, and composite deltas, for ``rows``."""
    c, sp, dp = span.contracts, span.scan_points, span.delta_points
    n_pts = len(sp)
    s0, cvf, opt = x["s0"], x["cvf"][rows], x["is_opt"][rows]
    move = c["price_scan"].to_numpy(dtype=float)[rows] / cvf
    t = np.where(opt, c["t"].to_numpy(dtype=float)[rows], 0.0)
    t_later = np.maximum(t - look_ahead, 0.0)
    r = np.where(opt, np.nan_to_num(c["rate"].to_numpy(dtype=float)[rows]), 0.0)
    fwd = np.where(
        opt, s0 * np.exp(np.nan_to_num(x["opt_carry"][rows]) * t_later), s0 * np.exp(-x["fut_carry"][rows] * look_ahead)
    )
    strike = np.where(opt, c["strike"].to_numpy(dtype=float)[rows], 0.0)
    vol = np.where(opt, c["vol"].to_numpy(dtype=float)[rows], 0.0)
    kinds = c["kind"].map(_KIND_CODE).to_numpy()[rows].astype(np.int8)
    vol_scan = c["vol_scan"].to_numpy(dtype=float)[rows]
    vol_kind = c["vol_scan_kind"].to_numpy()[rows]
    later = np.zeros((rows.size, n_pts))
    comp = np.ones(rows.size)
    if len(dp):
        dm = 1.0 + np.outer(move / s0, dp["price_mult"].to_numpy())
        dm_fd = np.concatenate([dm * (1.0 + _FD_STEP), dm * (1.0 - _FD_STEP)], axis=1)
        dv_fd = np.tile(dp["vol_mult"].to_numpy(), 2)
        dw = dp["weight"].to_numpy()
        und = x["und_row"][rows]
        und_cvf = np.where(und >= 0, x["cvf"][np.maximum(und, 0)], cvf)
    for vk, shock in (("relative", "relative"), ("absolute", "additive")):
        sel = np.flatnonzero(vol_kind == vk)
        if sel.size == 0:
            continue
        args = (
            kinds[sel],
            np.zeros(sel.size, np.int8),
            np.arange(sel.size, dtype=np.int32),
            strike[sel],
            t[sel],
            cvf[sel],
            fwd[sel],
            np.exp(-r[sel] * t_later[sel]),
            vol[sel],
            s0[sel],
        )
        m = np.ascontiguousarray(x["m"][sel])
        risk, now_rolled = kernels.revalue(
            *args,
            m,
            np.ascontiguousarray(np.outer(vol_scan[sel], sp["vol_mult"].to_numpy())),
            np.full(n_pts, float(look_ahead)),
            vol_shock=shock,
            threads=threads,
        )
        later[sel] = risk + now_rolled[:, None]
        if len(dp) and opt[sel].any():
            fd, _ = kernels.revalue(
                *args,
                np.ascontiguousarray(dm_fd[sel]),
                np.ascontiguousarray(np.outer(vol_scan[sel], dv_fd)),
                np.full(2 * len(dp), float(look_ahead)),
                vol_shock=shock,
                threads=threads,
            )
            up, down = fd[:, : len(dp)], fd[:, len(dp) :]
            point_delta = (up - down) / (2.0 * _FD_STEP * s0[sel, None] * dm[sel] * und_cvf[sel, None])
            comp[sel] = np.where(opt[sel], point_delta @ dw / dw.sum(), 1.0)
    # linear contracts: the kernel's P&L of the rolled price, plus the roll itself (the carry term)
    later += np.where(opt, 0.0, cvf * (fwd - s0))[:, None]
    return later, comp


def _price_mult(span: SpanFile, price_moves: str) -> np.ndarray:
    sp = span.scan_points
    mult = (sp["price_num"] / sp["price_den"]).to_numpy() if price_moves == "fraction" else sp["price_mult"].to_numpy()
    if not np.isfinite(mult).all():
        raise ValueError("scan_points: numerator/denominator missing; use price_moves='mult'")
    return np.asarray(mult, dtype=np.float64)


def _theoretical(span: SpanFile, x: dict[str, Any], rows: np.ndarray, threads: int) -> np.ndarray:
    """Today's model value of one contract of ``rows`` (options; 0 for linear contracts)."""
    c = span.contracts
    opt = x["is_opt"][rows]
    t = np.where(opt, c["t"].to_numpy(dtype=float)[rows], 0.0)
    r = np.where(opt, np.nan_to_num(c["rate"].to_numpy(dtype=float)[rows]), 0.0)
    carry = np.where(opt, np.nan_to_num(x["opt_carry"][rows]), 0.0)
    strike = np.where(opt, c["strike"].to_numpy(dtype=float)[rows], 0.0)
    vol = np.where(opt, c["vol"].to_numpy(dtype=float)[rows], 0.0)
    kinds = c["kind"].map(_KIND_CODE).to_numpy()[rows].astype(np.int8)
    # today's theoretical value (options): one neutral scenario, no time shift
    _, now = kernels.revalue(
        kinds,
        np.zeros(rows.size, np.int8),
        np.arange(rows.size, dtype=np.int32),
        strike,
        t,
        x["cvf"][rows],
        x["s0"] * np.exp(carry * t),
        np.exp(-r * t),
        vol,
        x["s0"],
        np.ones((rows.size, 1)),
        None,
        None,
        threads=threads,
    )
    return np.asarray(now, dtype=np.float64)


def regenerate_arrays(
    span: SpanFile,
    *,
    look_ahead: float | None = None,
    price_moves: str = "mult",
    underlying_price: str = "value",
    threads: int = 1,
) -> RegeneratedArrays:
    """Recompute every contract's risk array with :func:`marginkernel.kernels.revalue`.

    Per scan point s with price multiplier p_s, vol multiplier v_s and weight w_s (``scan_points``,
    always the file's own: extreme moves and their cover fractions included; ``price_moves='mult'``
    uses the file's rounded ``<mult>`` as the published arrays do, ``'fraction'``
    numerator/denominator), for a contract of value factor cvf and look-ahead dt (``look_ahead``;
    None: the file's ``<lookAheadYears>`` / ``<lookAheadDays>``, else :data:`DEFAULT_LOOK_AHEAD`):

    * the underlying price S is the underlying contract's ``<val>`` / cvf (``underlying_price=
      'value'``, what the published arrays were computed from) or its price ``<p>`` (``'price'``);
    * the underlying moves by dS_s = p_s * priceScan / cvf in price units;
    * options: Black-Scholes with dividends (physical underlying: carry r - q; futures underlying:
      carry 0) at the relative vol scan sigma * (1 + v_s * volScanPct) (``volScan``: additive) and
      time T - dt: array_s = w_s * cvf * (V(S, sigma, T) - V(S + dS_s, sigma_s, T - dt));
    * futures: the price after the look-ahead is F_s = (F + dS_s) e^{-b dt} with b the future's own
      ``<intrRate>`` (0 when the file gives none): array_s = w_s * cvf * (F - F_s), which has the
      carry term w_s * cvf * F (1 - e^{-b dt}) at the points without a price move;
    * physicals: array_s = -w_s * cvf * dS_s.

    Every value is the kernel's; options take two kernel calls (today's inputs for the theoretical
    value, forward and discount rolled to T - dt with ``time_shift = dt`` for the scan points), a
    third gives the composite deltas by central differences.
    """
    if price_moves not in ("mult", "fraction"):
        raise ValueError(f"price_moves: must be 'mult' or 'fraction', got {price_moves!r}")
    if underlying_price not in ("value", "price"):
        raise ValueError(f"underlying_price: must be 'value' or 'price', got {underlying_price!r}")
    if look_ahead is None:
        look_ahead = span.look_ahead if span.look_ahead is not None else DEFAULT_LOOK_AHEAD
    look_ahead = number(look_ahead, "look_ahead", lo=0.0, hi=0.999)
    c = span.contracts
    n, n_pts = len(c), span.n_points
    price_mult = _price_mult(span, price_moves)
    out = np.full((n, n_pts), np.nan)
    theoretical, deltas = np.zeros(n), np.full(n, np.nan)
    reason = np.full(n, "", dtype=object)
    x: dict[str, Any] = _inputs(span, underlying_price)
    rows = np.flatnonzero(_eligible(span, x, reason))
    if rows.size:
        move = c["price_scan"].to_numpy(dtype=float)[rows] / x["cvf"][rows]
        m = 1.0 + np.outer(move / x["under"][rows], price_mult)
        bad = (m <= 0).any(axis=1)
        reason[rows[bad]] = "scan moves the underlying price to <= 0"
        rows, m = rows[~bad], m[~bad]
    if rows.size == 0:
        return RegeneratedArrays(out, reason, theoretical, look_ahead, deltas)
    x["s0"], x["m"] = x["under"][rows], m
    later, comp = _scenarios(span, x, rows=rows, look_ahead=look_ahead, threads=threads)
    opt = x["is_opt"][rows]
    now = _theoretical(span, x, rows, threads)
    pnl = np.where(opt[:, None], later - now[:, None], later)
    out[rows] = -(pnl * span.scan_points["weight"].to_numpy()[None, :])
    theoretical[rows] = now
    deltas[rows] = comp if len(span.delta_points) else np.where(opt, np.nan, 1.0)
    phy = c["kind"].to_numpy() == "PHY"
    deltas[phy] = c["delta"].to_numpy(dtype=float)[phy]  # the file's say on whether a physical spreads
    return RegeneratedArrays(out, reason, theoretical, look_ahead, deltas)


def compare_arrays(span: SpanFile, regenerated: RegeneratedArrays | np.ndarray) -> pd.DataFrame:
    """Per contract: scale (= max |published|), max_abs_err and rel_err (= max_abs_err / scale, NaN
    when the published array is all zero), with the contract's key, kind and regeneration reason."""
    arrays = regenerated.arrays if isinstance(regenerated, RegeneratedArrays) else np.asarray(regenerated, float)
    pub = span.risk_arrays
    if arrays.shape != pub.shape:
        raise ValueError(f"regenerated: shape {arrays.shape} does not match the published arrays {pub.shape}")
    scale = np.abs(pub).max(axis=1) if pub.size else np.zeros(len(pub))
    err = np.abs(arrays - pub).max(axis=1) if pub.size else np.zeros(len(pub))
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = np.where(scale > 0, err / scale, np.nan)
    df = span.contracts[["contract", "cc", "pf_type", "kind"]].copy()
    df["scale"] = scale
    df["max_abs_err"] = err
    df["rel_err"] = rel
    if isinstance(regenerated, RegeneratedArrays):
        df["reason"] = regenerated.reason
    return df


def error_summary(errors: pd.DataFrame) -> pd.DataFrame:
    """Median and max relative error and counts by contract kind (options C+P together), from
    :func:`compare_arrays`. ``matched`` counts rows regenerated with a finite error."""
    kind = errors["kind"].replace({"C": "option", "P": "option"})
    out = []
    for k, g in errors.groupby(kind, sort=True):
        finite = g["max_abs_err"].notna()
        rel = g.loc[finite, "rel_err"].dropna()
        out.append(
            {
                "kind": k,
                "total": len(g),
                "matched": int(finite.sum()),
                "all_zero": int((g.loc[finite, "scale"] == 0).sum()),
                "median_rel_err": float(rel.median()) if len(rel) else np.nan,
                "max_rel_err": float(rel.max()) if len(rel) else np.nan,
                "max_abs_err": float(g.loc[finite, "max_abs_err"].max()) if finite.any() else np.nan,
            }
        )
    return pd.DataFrame(out).set_index("kind")


__all__ = ["DEFAULT_LOOK_AHEAD", "RegeneratedArrays", "compare_arrays", "error_summary", "regenerate_arrays"]
