"""Backtest statistics: coverage tests, the Basel traffic light and procyclicality figures.

Formulas (docs/historical.md), with p = 1 - confidence the expected exception rate, n days, x
exceptions and 0 ln 0 = 0:

* Kupiec proportion of failures: LR_pof = -2 [(n-x) ln(1-p) + x ln p - (n-x) ln(1-x/n) - x ln(x/n)],
  chi-squared with 1 degree of freedom;
* Christoffersen independence: with n_ij the number of days in state j after a day in state i
  (1 = exception), pi_0 = n01/(n00+n01), pi_1 = n11/(n10+n11), pi = (n01+n11)/(n00+n01+n10+n11),
  LR_ind = -2 [ln L(pi) - ln L(pi_0, pi_1)], L(a) = (1-a)^(n00+n10) a^(n01+n11),
  L(a0, a1) = (1-a0)^n00 a0^n01 (1-a1)^n10 a1^n11; chi-squared(1);
* conditional coverage: LR_cc = LR_pof + LR_ind, chi-squared(2);
* Basel traffic light: green while P(X <= x) < 95 % under Binomial(n, p), yellow while < 99.99 %,
  red beyond (250 days at 99 %: green 0-4, yellow 5-9, red 10+).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..validation import integer, number


def _xlogy(x: float, y: float) -> float:
    return 0.0 if x == 0 else x * math.log(y)


def chi2_sf(stat: float, dof: int) -> float:
    """Survival function of the chi-squared distribution for 1 or 2 degrees of freedom."""
    if dof == 1:
        return math.erfc(math.sqrt(max(stat, 0.0) / 2.0))
    if dof == 2:
        return math.exp(-max(stat, 0.0) / 2.0)
    raise ValueError(f"dof: only 1 or 2 degrees of freedom, got {dof}")


def _rate(confidence: float) -> float:
    number(confidence, "confidence", lo=0.0, hi=1.0)
    if not 0 < confidence < 1:
        raise ValueError(f"confidence: must be in (0, 1), got {confidence!r}")
    return 1.0 - confidence


def kupiec(n: int, x: int, confidence: float) -> tuple[float, float]:
    """(LR_pof, p-value) for x exceptions in n days at this confidence."""
    integer(n, "n", lo=1)
    integer(x, "exceptions", lo=0, hi=n)
    p = _rate(confidence)
    phat = x / n
    ll0 = _xlogy(n - x, 1 - p) + _xlogy(x, p)
    ll1 = _xlogy(n - x, 1 - phat) + _xlogy(x, phat)
    stat = max(0.0, -2.0 * (ll0 - ll1))
    return stat, chi2_sf(stat, 1)


def transitions(exceptions: Sequence[bool] | np.ndarray) -> tuple[int, int, int, int]:
    """(n00, n01, n10, n11): consecutive-day pairs by state (1 = exception)."""
    e = np.asarray(exceptions, dtype=bool)
    a, b = e[:-1], e[1:]
    return (int(np.sum(~a & ~b)), int(np.sum(~a & b)), int(np.sum(a & ~b)), int(np.sum(a & b)))


def christoffersen(exceptions: Sequence[bool] | np.ndarray) -> tuple[float, float]:
    """(LR_ind, p-value) of independence of the exception sequence."""
    n00, n01, n10, n11 = transitions(exceptions)
    pi0 = n01 / (n00 + n01) if n00 + n01 else 0.0
    pi1 = n11 / (n10 + n11) if n10 + n11 else 0.0
    total = n00 + n01 + n10 + n11
    pi = (n01 + n11) / total if total else 0.0
    ll0 = _xlogy(n00 + n10, 1 - pi) + _xlogy(n01 + n11, pi)
    ll1 = _xlogy(n00, 1 - pi0) + _xlogy(n01, pi0) + _xlogy(n10, 1 - pi1) + _xlogy(n11, pi1)
    stat = max(0.0, -2.0 * (ll0 - ll1))
    return stat, chi2_sf(stat, 1)


def binomial_cdf(x: int, n: int, p: float) -> float:
    """P(X <= x) for X ~ Binomial(n, p), summed exactly in log space."""
    if x < 0:
        return 0.0
    if x >= n:
        return 1.0
    terms = [
        math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) + _xlogy(k, p) + _xlogy(n - k, 1 - p)
        for k in range(x + 1)
    ]
    top = max(terms)
    return min(1.0, math.exp(top) * math.fsum(math.exp(t - top) for t in terms))


def traffic_light(n: int, x: int, confidence: float) -> str:
    """The Basel traffic-light zone of x exceptions in n days."""
    integer(n, "n", lo=1)
    integer(x, "exceptions", lo=0, hi=n)
    c = binomial_cdf(x, n, _rate(confidence))
    return "green" if c < 0.95 else ("yellow" if c < 0.9999 else "red")


def coverage_tests(exceptions: Sequence[bool] | np.ndarray, confidence: float) -> dict[str, Any]:
    """All coverage statistics of an exception sequence, as a JSON-ready dict."""
    e = np.asarray(exceptions, dtype=bool)
    n, x = len(e), int(e.sum())
    pof, p_pof = kupiec(n, x, confidence)
    ind, p_ind = christoffersen(e)
    cc = pof + ind
    return {
        "days": n,
        "exceptions": x,
        "expected": n * (1 - confidence),
        "exception_rate": x / n,
        "kupiec_lr": pof,
        "kupiec_p": p_pof,
        "christoffersen_lr": ind,
        "christoffersen_p": p_ind,
        "conditional_coverage_lr": cc,
        "conditional_coverage_p": chi2_sf(cc, 2),
        "traffic_light": traffic_light(n, x, confidence),
    }


def procyclicality(margin: Sequence[float] | np.ndarray, n_days: int = 30) -> dict[str, Any]:
    """Peak-to-trough ratio max(M) / min(M) over days with M > 0, and the largest n-day increase
    max_t M[t+n] / M[t] - 1 (over t with M[t] > 0), also in absolute terms."""
    m = np.asarray(margin, dtype=float)
    integer(n_days, "n_days", lo=1)
    pos = m[m > 0]
    out: dict[str, Any] = {
        "n_days": n_days,
        "peak": float(m.max()) if m.size else 0.0,
        "trough": float(pos.min()) if pos.size else 0.0,
    }
    out["peak_to_trough"] = float(pos.max() / pos.min()) if pos.size else float("nan")
    if m.size > n_days:
        a, b = m[:-n_days], m[n_days:]
        rel = np.where(a > 0, b / np.where(a > 0, a, 1.0) - 1.0, -np.inf)
        k = int(np.argmax(rel))
        out["largest_increase"] = float(rel[k]) if np.isfinite(rel[k]) else float("nan")
        out["largest_increase_start"] = k
        out["largest_abs_increase"] = float(np.max(b - a))
    else:
        out.update(largest_increase=float("nan"), largest_increase_start=None, largest_abs_increase=float("nan"))
    return out


__all__ = [
    "binomial_cdf",
    "chi2_sf",
    "christoffersen",
    "coverage_tests",
    "kupiec",
    "procyclicality",
    "traffic_light",
    "transitions",
]
