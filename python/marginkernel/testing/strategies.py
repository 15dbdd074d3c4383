"""Hypothesis strategies for every input of the marginkernel kernels.

Each strategy draws arrays in exactly the layout :mod:`marginkernel.kernels` (and its twin
:mod:`marginkernel.reference`) takes, so a property test reads::

    from hypothesis import given
    from marginkernel import kernels, reference
    from marginkernel.testing import strategies as mks

    @given(mks.revalue_cases())
    def test_revalue(case):
        risk, value_now = kernels.revalue(**case.kwargs())
        ...

Ranges are bounded so that every case is well inside double precision and inside the documented
accuracy of the kernels (architecture §3: price error <= 1e-13 of the price scale). They are:

=====================  =================================================================
quantity               range (defaults)
=====================  =================================================================
spot (index price)     10**[-2, 5], i.e. 0.01 .. 100,000, log-uniform
forward                spot of its risk unit x basis, basis in [0.8, 1.25]
strike                 forward x 10**[-0.6, 0.6] (about 0.25 .. 4 x forward)
expiry                 [-0.1, 3] years; negative = expired; 0 and tiny values included
vol                    [0, 3]; 0 included (intrinsic value)
discount               [0.5, 1]
multiplier             linear contracts and inverse options: 10**[-3, 3] units of the
                       underlying; inverse futures / perpetuals: 10**[0, 4] quote notional
price multiplier m     [0.2, 5] (F_s = F * m); 1 included
vol shift              [-1, 1] (its meaning depends on the vol-shock kind)
time shift (dt)        [0, 0.1] years
quantity               +-[1e-3, 1e4]; zero included
P&L (pnl_matrices)     [-1e6, 1e6]; |x| < 1e-100 flushed to 0
=====================  =================================================================

Sizes are small by default (a few instruments, up to ~130 scenarios so that the 64-scenario
blocks of the C++ kernel are crossed) to keep property tests fast; every strategy takes its sizes
as arguments.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ..codes import CALL, FUTURE, INVERSE, LINEAR, PERPETUAL, PUT, SPOT

__all__ = [
    "KINDS",
    "OPTION_KINDS",
    "SETTLEMENTS",
    "Instruments",
    "Market",
    "Positions",
    "RevalueCase",
    "Scenarios",
    "instruments",
    "log_uniform",
    "markets",
    "pnl_matrices",
    "positions",
    "price_scale",
    "probabilities",
    "regular_grid",
    "revalue_cases",
    "scenario_grids",
    "vol_shock_params",
]

KINDS = (FUTURE, PERPETUAL, CALL, PUT, SPOT)
OPTION_KINDS = (CALL, PUT)
SETTLEMENTS = (LINEAR, INVERSE)

SPOT_EXP = (-2.0, 5.0)
BASIS = (0.8, 1.25)
MONEYNESS_EXP = (-0.6, 0.6)
EXPIRY = (-0.1, 3.0)
VOL = (0.0, 3.0)
DISCOUNT = (0.5, 1.0)
MULT_EXP = (-3.0, 3.0)
NOTIONAL_EXP = (0.0, 4.0)
PRICE_MULT = (0.2, 5.0)
VOL_SHIFT = (-1.0, 1.0)
TIME_SHIFT = (0.0, 0.1)
QUANTITY = 1e4
PNL = 1e6
TINY = 1e-100


def _floats(lo: float, hi: float) -> st.SearchStrategy[float]:
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False, allow_subnormal=False)


def log_uniform(lo_exp: float, hi_exp: float) -> st.SearchStrategy[float]:
    """Positive floats 10**e, e in [lo_exp, hi_exp] (shrinks towards 10**lo_exp ... 1)."""
    return _floats(lo_exp, hi_exp).map(lambda e: float(10.0**e))


@dataclass(frozen=True)
class Market:
    """One index (spot) price per risk unit."""

    spot: np.ndarray  # (U,) float64 > 0

    @property
    def n_units(self) -> int:
        return len(self.spot)


@dataclass(frozen=True)
class Instruments:
    """Struct of arrays, one row per instrument, as :func:`marginkernel.kernels.revalue` takes it."""

    kind: np.ndarray  # int8
    settlement: np.ndarray  # int8
    risk_unit: np.ndarray  # int32
    strike: np.ndarray
    expiry: np.ndarray
    multiplier: np.ndarray
    forward: np.ndarray
    discount: np.ndarray
    vol: np.ndarray

    FIELDS = ("kind", "settlement", "risk_unit", "strike", "expiry", "multiplier", "forward", "discount", "vol")

    def __len__(self) -> int:
        return len(self.kind)

    def arrays(self) -> dict[str, np.ndarray]:
        return {f: getattr(self, f) for f in self.FIELDS}

    def take(self, index: Any) -> Instruments:
        """The rows `index` (e.g. a permutation), as a new Instruments."""
        return Instruments(**{f: np.ascontiguousarray(getattr(self, f)[index]) for f in self.FIELDS})


@dataclass(frozen=True)
class Scenarios:
    """Per risk unit price multipliers and vol shifts (U, S), per scenario look-ahead (S,)."""

    price_multiplier: np.ndarray
    vol_shift: np.ndarray | None = None
    time_shift: np.ndarray | None = None

    @property
    def n_scenarios(self) -> int:
        return int(self.price_multiplier.shape[1])

    def arrays(self) -> dict[str, np.ndarray | None]:
        return {"price_multiplier": self.price_multiplier, "vol_shift": self.vol_shift, "time_shift": self.time_shift}

    def take(self, columns: Any) -> Scenarios:
        """The scenarios `columns` (e.g. a permutation or a subset), as a new Scenarios."""

        def cols(a: np.ndarray | None, axis: int) -> np.ndarray | None:
            return None if a is None else np.ascontiguousarray(np.take(a, columns, axis=axis))

        price = cols(self.price_multiplier, 1)
        assert price is not None
        return Scenarios(price, cols(self.vol_shift, 1), cols(self.time_shift, 0))


@dataclass(frozen=True)
class RevalueCase:
    """Everything :func:`marginkernel.kernels.revalue` needs: ``kernels.revalue(**case.kwargs())``."""

    market: Market
    instruments: Instruments
    scenarios: Scenarios
    shock: dict[str, Any] = field(default_factory=lambda: {"vol_shock": "none"})

    def kwargs(self) -> dict[str, Any]:
        return {**self.instruments.arrays(), "spot": self.market.spot, **self.scenarios.arrays(), **self.shock}

    def price_scale(self) -> np.ndarray:
        """Per instrument price scale, see :func:`price_scale`."""
        return price_scale(self.instruments, self.market.spot)


@dataclass(frozen=True)
class Positions:
    """Sparse accounts x instruments quantities in compressed rows (CSR) by account."""

    account_start: np.ndarray  # int64, (A + 1,), starts at 0, non-decreasing
    instrument: np.ndarray  # int32, (nnz,)
    quantity: np.ndarray  # float64, (nnz,)

    @property
    def n_accounts(self) -> int:
        return len(self.account_start) - 1

    def arrays(self) -> dict[str, np.ndarray]:
        return {"account_start": self.account_start, "instrument": self.instrument, "quantity": self.quantity}

    def dense(self, n_instruments: int) -> np.ndarray:
        """The (A, n) dense matrix (for small test cases only)."""
        out = np.zeros((self.n_accounts, n_instruments))
        rows = np.repeat(np.arange(self.n_accounts), np.diff(self.account_start))
        np.add.at(out, (rows, self.instrument), self.quantity)
        return out


def price_scale(instruments: Instruments, spot: np.ndarray) -> np.ndarray:
    """The scale a price or risk-array error is measured against, per instrument.

    Linear contracts: multiplier x forward. Inverse futures and perpetuals (coin-settled, multiplier
    = quote notional): multiplier / forward. Inverse options: multiplier x forward / spot (their coin
    value). Inverse spot has no coin P&L; its scale is that of an inverse future.
    """
    mult = np.asarray(instruments.multiplier, dtype=float)
    fwd = np.asarray(instruments.forward, dtype=float)
    s = np.asarray(spot, dtype=float)[np.asarray(instruments.risk_unit)]
    inverse = np.asarray(instruments.settlement) == INVERSE
    option = np.isin(instruments.kind, OPTION_KINDS)
    out: np.ndarray = np.where(~inverse, mult * fwd, np.where(option, mult * fwd / s, mult / fwd))
    return out


@st.composite
def markets(
    draw: st.DrawFn, min_units: int = 1, max_units: int = 3, spot_exp: tuple[float, float] = SPOT_EXP
) -> Market:
    """A market snapshot: spot of each of 1..3 risk units in 10**[-2, 5]."""
    n = draw(st.integers(min_units, max_units))
    spot = np.array([draw(log_uniform(*spot_exp)) for _ in range(n)])
    return Market(spot)


@st.composite
def instruments(  # noqa: PLR0917 - positional API kept for existing callers
    draw: st.DrawFn,
    spot: Any,
    min_size: int = 1,
    max_size: int = 8,
    kinds: Any = KINDS,
    settlements: Any = SETTLEMENTS,
    expiry: Any = EXPIRY,
    vol: Any = VOL,
    moneyness_exp: Any = MONEYNESS_EXP,
) -> Instruments:
    """Instruments on the risk units of ``spot`` (an array, e.g. ``Market.spot``).

    Every kind (future, perpetual, call, put, spot) and settlement (linear, inverse) in ``kinds`` /
    ``settlements`` can appear; the option fields are filled for every row (ignored by the kernels
    for non-options). Expiry draws favour the edges: exactly 0, tiny (1e-8 years) and expired.
    """
    spot = np.asarray(spot, dtype=float)
    n = draw(st.integers(min_size, max_size))
    expiries = st.one_of(_floats(*expiry), st.sampled_from([0.0, 1e-8, 1.0 / 365.0, -1e-3]))
    vols = st.one_of(_floats(*vol), st.sampled_from([0.0, 1e-6, 0.8]))
    rows = []
    for _ in range(n):
        kind = draw(st.sampled_from(kinds))
        settlement = draw(st.sampled_from(settlements))
        unit = draw(st.integers(0, len(spot) - 1))
        fwd = spot[unit] * draw(_floats(*BASIS))
        inverse_linear = settlement == INVERSE and kind not in OPTION_KINDS
        mult = draw(log_uniform(*(NOTIONAL_EXP if inverse_linear else MULT_EXP)))
        strike = fwd * 10.0 ** draw(_floats(*moneyness_exp))
        rows.append((kind, settlement, unit, strike, draw(expiries), mult, fwd, draw(_floats(*DISCOUNT)), draw(vols)))
    cols = list(zip(*rows, strict=True))
    return Instruments(
        kind=np.array(cols[0], dtype=np.int8),
        settlement=np.array(cols[1], dtype=np.int8),
        risk_unit=np.array(cols[2], dtype=np.int32),
        strike=np.array(cols[3], dtype=float),
        expiry=np.array(cols[4], dtype=float),
        multiplier=np.array(cols[5], dtype=float),
        forward=np.array(cols[6], dtype=float),
        discount=np.array(cols[7], dtype=float),
        vol=np.array(cols[8], dtype=float),
    )


def regular_grid(price_range: float, n_points: int, vol_states: Any = (0.0,), n_units: int = 1) -> Scenarios:
    """A SPAN / Deribit style grid: ``n_points`` price moves evenly over [1 - r, 1 + r] times each
    vol state (vol shift), the same for every risk unit. Columns are price-major."""
    moves = np.linspace(1.0 - price_range, 1.0 + price_range, n_points)
    m = np.repeat(moves, len(vol_states))
    v = np.tile(np.asarray(vol_states, dtype=float), n_points)
    return Scenarios(np.tile(m, (n_units, 1)), np.tile(v, (n_units, 1)), None)


@st.composite
def scenario_grids(  # noqa: PLR0917 - positional API kept for existing callers
    draw: st.DrawFn,
    n_units: int,
    min_scenarios: int = 1,
    max_scenarios: int = 130,
    vol_shift: bool | None = None,
    time_shift: bool | None = None,
    price_mult: Any = PRICE_MULT,
) -> Scenarios:
    """Scenarios for ``n_units`` risk units: either a regular grid (price range x vol states) or
    free joint draws (historical style). ``vol_shift`` / ``time_shift``: True, False or None (draw)."""
    with_vol = draw(st.booleans()) if vol_shift is None else vol_shift
    with_time = draw(st.booleans()) if time_shift is None else time_shift
    regular = draw(st.booleans())
    if regular:
        states = draw(st.lists(_floats(*VOL_SHIFT), min_size=1, max_size=3)) if with_vol else [0.0]
        lo = max(min_scenarios, len(states))
        n_points = draw(st.integers(max(1, -(-lo // len(states))), max(1, max_scenarios // len(states))))
        r = draw(_floats(0.0, min(1.0 - price_mult[0], price_mult[1] - 1.0)))
        grid = regular_grid(r, n_points, states, n_units)
        m, v = grid.price_multiplier, (grid.vol_shift if with_vol else None)
        ns = m.shape[1]
    else:
        ns = draw(st.integers(min_scenarios, max_scenarios))
        elems = st.one_of(_floats(*price_mult), st.just(1.0))
        m = draw(hnp.arrays(np.float64, (n_units, ns), elements=elems))
        v = draw(hnp.arrays(np.float64, (n_units, ns), elements=_floats(*VOL_SHIFT))) if with_vol else None
    dt = draw(hnp.arrays(np.float64, (ns,), elements=_floats(*TIME_SHIFT))) if with_time else None
    return Scenarios(np.ascontiguousarray(m), v if v is None else np.ascontiguousarray(v), dt)


@st.composite
def vol_shock_params(
    draw: st.DrawFn, kinds: Any = ("none", "multiplicative", "additive", "relative")
) -> dict[str, Any]:
    """Keyword arguments of the vol-shock model: kind, tau floor (days), short / long powers in
    [0, 1], optional floor on the up-shocked vol in [0, 1]."""
    return {
        "vol_shock": draw(st.sampled_from(kinds)),
        "tau_floor_days": draw(_floats(0.5, 10.0)),
        "short_power": draw(_floats(0.0, 1.0)),
        "long_power": draw(_floats(0.0, 1.0)),
        "vol_up_floor": draw(st.one_of(st.just(0.0), _floats(0.0, 1.0))),
    }


@st.composite
def revalue_cases(  # noqa: PLR0917 - positional API kept for existing callers
    draw: st.DrawFn,
    max_units: int = 3,
    min_instruments: int = 1,
    max_instruments: int = 8,
    min_scenarios: int = 1,
    max_scenarios: int = 130,
    kinds: Any = KINDS,
    settlements: Any = SETTLEMENTS,
    vol_shift: bool | None = None,
    time_shift: bool | None = None,
    shocks: Any = ("none", "multiplicative", "additive", "relative"),
) -> RevalueCase:
    """A complete revalue input: market, instruments on it, a scenario set, a vol-shock model."""
    market = draw(markets(max_units=max_units))
    ins = draw(instruments(market.spot, min_instruments, max_instruments, kinds, settlements))
    sc = draw(scenario_grids(market.n_units, min_scenarios, max_scenarios, vol_shift, time_shift))
    shock = draw(vol_shock_params(shocks)) if sc.vol_shift is not None else {"vol_shock": "none"}
    return RevalueCase(market, ins, sc, shock)


def quantities(allow_zero: bool = True) -> st.SearchStrategy[float]:
    """Position sizes: +-10**[-3, 4] (and 0 when allowed)."""
    size = log_uniform(-3.0, np.log10(QUANTITY))
    signed = st.tuples(st.sampled_from([-1.0, 1.0]), size).map(lambda t: t[0] * t[1])
    return st.one_of(signed, st.just(0.0)) if allow_zero else signed


@st.composite
def positions(
    draw: st.DrawFn, n_instruments: int, min_accounts: int = 1, max_accounts: int = 5, max_per_account: int = 8
) -> Positions:
    """Sparse positions in CSR form over ``n_instruments`` instruments. Accounts may be empty and may
    hold the same instrument twice (both rows count)."""
    n_accounts = draw(st.integers(min_accounts, max_accounts))
    starts, inst, qty = [0], [], []
    for _ in range(n_accounts):
        k = draw(st.integers(0, max_per_account))
        for _ in range(k):
            inst.append(draw(st.integers(0, n_instruments - 1)))
            qty.append(draw(quantities()))
        starts.append(len(inst))
    return Positions(np.array(starts, dtype=np.int64), np.array(inst, dtype=np.int32), np.array(qty, dtype=float))


def pnl_matrices(
    min_rows: int = 1, max_rows: int = 6, min_scenarios: int = 1, max_scenarios: int = 130, bound: float = PNL
) -> st.SearchStrategy[np.ndarray]:
    """Scenario P&L matrices (rows, S) with values in [-bound, bound] (repeated values included,
    which exercises ties); magnitudes below 1e-100 are flushed to 0, so that products with weights
    or probabilities stay normal numbers."""
    shape = st.tuples(st.integers(min_rows, max_rows), st.integers(min_scenarios, max_scenarios))
    elements = _floats(-bound, bound).map(lambda v: v if abs(v) >= TINY else 0.0)
    return hnp.arrays(np.float64, shape, elements=elements)


def probabilities(n: int, allow_zero: bool = True) -> st.SearchStrategy[np.ndarray]:
    """Non-negative scenario probabilities of length ``n`` with a positive sum (not normalised: the
    kernels normalise)."""
    elems = st.one_of(_floats(1e-3, 1.0), st.just(0.0)) if allow_zero else _floats(1e-3, 1.0)
    return hnp.arrays(np.float64, (n,), elements=elems).filter(lambda p: p.sum() > 0.0)
