"""Historical and filtered historical scenarios from a daily price history (docs/historical.md).

On day t (``as_of``) with lookback N and horizon h, scenario k (t - N < k <= t) is the joint
h-day move of every underlying ending on day k: the price multiplier is m[u, k] = exp(r[u, k]),
r[u, k] = sum of the 1-day log returns x[u, j], k - h < j <= k (overlapping windows). One date
moves all underlyings together, so their joint distribution (correlation) is kept.

* filtered (FHS): x[u, j] is replaced by x[u, j] * sigma[u, t] / sigma[u, j - 1] with the EWMA
  volatility sigma^2[j] = lam sigma^2[j - 1] + (1 - lam) x[j]^2 (known after day j);
* age weights: equal 1/N, or exponential p_k proportional to decay^(t - k);
* anti-procyclicality (EMIR RTS 153/2013 Art. 28): a stressed period's h-day moves (unfiltered)
  get total probability ``stress_weight`` (>= 25 %), the window the rest; with ``floor_lookback``
  the volatility the returns are scaled to is at least the volatility over that many days;
* implied vols: ``vol_rule = "constant"`` keeps them; ``"spot_beta"`` shifts them additively by
  ``vol_beta * r`` (vol points per unit log return, negative: vols rise when prices fall).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ..scenarios import ScenarioSet, per_underlying
from ..validation import integer, number
from .history import PriceHistory, ewma_variance, load_history

WEIGHTINGS = ("equal", "exponential")
VOL_RULES = ("constant", "spot_beta")
#: EMIR RTS 153/2013 Art. 28(1)(b): stressed observations weigh at least 25 %
MIN_STRESS_WEIGHT = 0.25


@dataclass(frozen=True)
class HistoricalSpec:
    """The parameters of a historical scenario set; each is checked and named on error."""

    columns: Mapping[str, str]
    history: str = "crypto-daily-usdt"
    as_of: str | None = None
    lookback: int = 750
    horizon: int = 2
    weighting: str = "equal"
    age_decay: float = 0.995
    filtered: bool = False
    ewma_lambda: float = 0.94
    ewma_seed_days: int = 30
    vol_rule: str = "constant"
    vol_beta: float | Mapping[str, float] = 0.0
    stress_weight: float = 0.0
    stress_start: str | None = None
    stress_end: str | None = None
    stress_days: int = 250
    floor_lookback: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.columns, Mapping) or not self.columns:
            raise ValueError('columns: required, a table underlying -> history column, e.g. {BTC = "btc_usdt"}')
        for k, v in self.columns.items():
            if not isinstance(v, str):
                raise ValueError(f"columns.{k}: expected a column name, got {v!r}")
        integer(self.lookback, "lookback", lo=2)
        integer(self.horizon, "horizon", lo=1)
        if self.horizon >= self.lookback:
            raise ValueError(f"horizon: {self.horizon} days must be shorter than the lookback ({self.lookback} days)")
        if self.weighting not in WEIGHTINGS:
            raise ValueError(f"weighting: must be one of {WEIGHTINGS}, got {self.weighting!r}")
        number(self.age_decay, "age_decay", lo=0.0, hi=1.0, positive=True)
        if not isinstance(self.filtered, bool):
            raise ValueError(f"filtered: expected true or false, got {self.filtered!r}")
        number(self.ewma_lambda, "ewma_lambda", lo=0.0, hi=1.0)
        if not self.ewma_lambda < 1.0:
            raise ValueError(f"ewma_lambda: must be < 1, got {self.ewma_lambda!r}")
        integer(self.ewma_seed_days, "ewma_seed_days", lo=1)
        if self.vol_rule not in VOL_RULES:
            raise ValueError(f"vol_rule: must be one of {VOL_RULES}, got {self.vol_rule!r}")
        w = number(self.stress_weight, "stress_weight", lo=0.0, hi=1.0)
        if 0 < w < MIN_STRESS_WEIGHT:
            raise ValueError(f"stress_weight: must be 0 (off) or >= {MIN_STRESS_WEIGHT} (EMIR RTS Art. 28), got {w!r}")
        if (self.stress_start is None) != (self.stress_end is None):
            raise ValueError("stress_start / stress_end: give both or neither (neither: found automatically)")
        integer(self.stress_days, "stress_days", lo=1)
        integer(self.floor_lookback, "floor_lookback", lo=0)

    @property
    def label(self) -> str:
        kind = "filtered historical" if self.filtered else "historical"
        return f"{kind}, {self.lookback} days of {self.horizon}-day moves"


@dataclass(frozen=True, eq=False)
class Moves:
    """Joint scenario moves on one day: log returns (U, S), probabilities (S,), first/last day per scenario."""

    log_return: np.ndarray
    probability: np.ndarray
    start: np.ndarray  # datetime64[D]: day the move starts (close)
    end: np.ndarray  # datetime64[D]: day the move ends (close)
    stressed: np.ndarray  # bool


class Simulator:
    """Scenario moves for any day of a history (the backtest asks for every day; inputs are read once)."""

    def __init__(self, spec: HistoricalSpec, underlyings: Sequence[str], history: PriceHistory | None = None):
        self.spec = spec
        self.underlyings = list(underlyings)
        for u in self.underlyings:
            if u not in spec.columns:
                raise ValueError(f"columns: no history column for underlying {u!r}; have {sorted(spec.columns)}")
        self.history = history if history is not None else load_history(spec.history, dict(spec.columns))
        prices = self.history.select(self.underlyings)
        self.x = np.full(prices.shape, np.nan)
        self.x[1:] = np.log(prices[1:] / prices[:-1])  # 1-day log returns, row 0 NaN
        self.cum = np.zeros(prices.shape)
        self.cum[1:] = np.cumsum(self.x[1:], axis=0)  # cum[k] = ln(P[k] / P[0])
        self.var = ewma_variance(self.x, spec.ewma_lambda, spec.ewma_seed_days) if spec.filtered else None
        self.beta = per_underlying("vol_beta", spec.vol_beta, self.underlyings)
        self._stress_fixed = None
        if spec.stress_start is not None:
            a = self.history.index_of(spec.stress_start, "stress_start")
            b = self.history.index_of(str(spec.stress_end), "stress_end")
            if b < a + spec.horizon:
                raise ValueError(f"stress_end: {spec.stress_end} must be at least horizon days after stress_start")
            self._stress_fixed = (a, b)

    def first_day(self) -> int:
        """The first row that has a full lookback of moves behind it."""
        s = self.spec
        return s.lookback + s.horizon - 1 + (1 if s.filtered else 0)

    def _check_day(self, t: int) -> None:
        s, first = self.spec, self.first_day()
        if t < first:
            raise ValueError(
                f"lookback: {s.lookback} days of {s.horizon}-day moves need {first + 1} rows of {self.history.source} "
                f"up to as_of {self.history.dates[t]}, it has {t + 1} (from {self.history.dates[0]})"
            )

    def _scaled_window(self, t: int) -> np.ndarray:
        """The 1-day returns of the window's days (rows t-N-h+2..t), filtered and floored as configured."""
        s = self.spec
        lo = t - s.lookback - s.horizon + 2
        x = self.x[lo : t + 1]
        if s.filtered:
            assert self.var is not None
            now = np.sqrt(self.var[t])
            if s.floor_lookback:
                now = np.maximum(now, self._long_vol(t))
            return np.asarray(x * (now / np.sqrt(self.var[lo - 1 : t])))
        if s.floor_lookback:
            own = np.sqrt(np.mean(x**2, axis=0))
            return np.asarray(x * np.maximum(1.0, self._long_vol(t) / np.where(own > 0, own, np.inf)))
        return x

    def _long_vol(self, t: int) -> np.ndarray:
        lo = max(1, t - self.spec.floor_lookback + 1)
        return np.asarray(np.sqrt(np.mean(self.x[lo : t + 1] ** 2, axis=0)))

    def _stress_rows(self, t: int) -> np.ndarray:
        """End rows of the stressed period's h-day moves known on day t (end row <= t)."""
        h = self.spec.horizon
        if self._stress_fixed is not None:
            a, b = self._stress_fixed
            return np.arange(a + h, min(b, t) + 1)
        n = min(self.spec.stress_days, t - h)  # automatic: the n-day period of highest mean squared return
        sq = np.nansum(self.x[1 : t + 1] ** 2, axis=1)
        c = np.concatenate([[0.0], np.cumsum(sq)])
        sums = c[n:] - c[:-n]  # window ending at row e (1-based days) = sums[e - n]
        best_end = int(np.argmax(sums[max(0, h - 1) :]) + max(0, h - 1)) + n  # row of the last day
        return np.arange(max(best_end - n + 1, h), best_end + 1)

    def moves(self, t: int) -> Moves:
        """The scenario moves for day row ``t``."""
        self._check_day(t)
        s = self.spec
        n, h = s.lookback, s.horizon
        xw = self._scaled_window(t)
        c = np.concatenate([np.zeros((1, xw.shape[1])), np.cumsum(xw, axis=0)])
        r = np.ascontiguousarray((c[h:] - c[:-h]).T)  # (U, N): h-day sums ending at rows t-N+1..t
        ends = np.arange(t - n + 1, t + 1)
        if s.weighting == "equal":
            p = np.full(n, 1.0 / n)
        else:
            p = s.age_decay ** (t - ends).astype(float)
            p /= p.sum()
        stressed = np.zeros(n, dtype=bool)
        if s.stress_weight > 0:
            rows = self._stress_rows(t)
            if rows.size:
                rs = (self.cum[rows] - self.cum[rows - h]).T
                r = np.concatenate([r, rs], axis=1)
                p = np.concatenate([p * (1 - s.stress_weight), np.full(rows.size, s.stress_weight / rows.size)])
                ends = np.concatenate([ends, rows])
                stressed = np.concatenate([stressed, np.ones(rows.size, dtype=bool)])
        dates = self.history.dates
        return Moves(np.ascontiguousarray(r), p, dates[ends - h], dates[ends], stressed)

    def arrays(self, t: int) -> tuple[Moves, np.ndarray, np.ndarray, np.ndarray | None]:
        """(moves, price multipliers, vol shifts, probabilities or None when equally likely) of day row t."""
        mv = self.moves(t)
        equal = self.spec.weighting == "equal" and not mv.stressed.any()
        shift = (
            self.beta[:, None] * mv.log_return if self.spec.vol_rule == "spot_beta" else np.zeros_like(mv.log_return)
        )
        return mv, np.exp(mv.log_return), shift, None if equal else mv.probability

    @property
    def vol_shock(self) -> str:
        """How the kernel applies the vol shifts: additive vol points for "spot_beta", none otherwise."""
        return "additive" if self.spec.vol_rule == "spot_beta" else "none"

    def scenario_set(self, t: int) -> ScenarioSet:
        """The moves of day row ``t`` as a :class:`marginkernel.ScenarioSet`."""
        mv, mult, shift, prob = self.arrays(t)
        labels = tuple(
            f"{'stress ' if st else ''}{a}..{b}" for a, b, st in zip(mv.start, mv.end, mv.stressed, strict=True)
        )
        return ScenarioSet(
            labels=labels,
            price_multiplier=mult,
            vol_shift=shift,
            weight=np.ones_like(mult),
            probability=prob,
            vol_shock=self.vol_shock,
        )

    def row(self, as_of: str | None) -> int:
        """The row of ``as_of`` (None: the last day of the history)."""
        return self.history.n_days - 1 if as_of is None else self.history.index_of(as_of, "as_of")


__all__ = ["MIN_STRESS_WEIGHT", "VOL_RULES", "WEIGHTINGS", "HistoricalSpec", "Moves", "Simulator"]
