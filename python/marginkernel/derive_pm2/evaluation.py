"""PM2 evaluation: scenarios (through the C++ kernels or their NumPy twins), contingencies, IM / MM.

Signs follow Derive: scenario values are P&L (> 0 is a gain), and ``im`` / ``mm`` are Derive's
margin *balances* (mark-to-market + cash - requirement; < 0 means under-margined). The
requirements themselves, >= 0, are ``im_requirement`` / ``mm_requirement``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np

from .. import codes
from .formulas import (
    SECONDS_PER_YEAR,
    forward_portions,
    naked_shorts,
    skew_multipliers,
    static_discounts,
    vol_shock_multipliers,
)
from .parameters import OtherContingencyParams, PM2Params, Scenario, validate_params
from .portfolio import ExpiryFeed, Portfolio, validate_portfolio

#: smallest positive vol shift: makes the kernel apply its up-vol floor (keyed on shift > 0) in Up
#: scenarios when VOLRANGEUP == 0, while sigma * (1 + 1e-300 * tau^p) == sigma exactly in doubles
_TINY_SHIFT = 1e-300
#: stands in for DTE_FLOOR == 0 (the kernel requires a positive floor); only differs from 0 for
#: options less than 1e-9 s from expiry, whose vol does not matter (sigma * sqrt(T) ~ 0)
_TINY_FLOOR_DAYS = 1e-14


@dataclass
class PM2Result:
    """Every PM2 component of one portfolio (Derive's signs: P&L > 0 is a gain)."""

    scenarios: tuple[Scenario, ...]
    scenario_pnl: np.ndarray  # (S,) dampened, discounted P&L vs the undiscounted mark, per scenario
    expiry_pnl: np.ndarray  # (E, S) the options' share per expiry (after skew inversion)
    basis_contingency: float  # ForwardContingency (<= 0)
    min_span: float  # min(basis contingency, scenario P&L) (<= 0)
    worst_scenario: int  # index into scenarios, or len(scenarios) for the basis contingency
    expiries: np.ndarray  # (E,) seconds, in order of first appearance among the options
    option_mtm_per_expiry: np.ndarray  # (E,)
    discount_factors: np.ndarray  # (E, 2): static discount for positive / negative expiry value
    vol_shock_up: np.ndarray  # (E,) multipliers
    vol_shock_down: np.ndarray  # (E,)
    option_mtm: float
    collateral_mtm: float
    perp_mtm: float  # unrealised perp P&L
    funding: float  # unrealised funding
    cash: float
    portfolio_mtm: float
    mm_perp_cont: float  # contingencies as positive amounts (Derive's JSON shows them negated)
    im_perp_cont: float
    mm_base_cont: float
    im_base_cont: float
    mm_option_cont: float
    im_option_cont: float
    oracle_cont: float
    mm_loss_factor: float
    im_loss_factor: float  # IM factor after the USDC peg-loss increase
    mm_requirement: float  # >= 0
    im_requirement: float  # >= 0
    mm: float  # Derive's MM: portfolio MtM - MM requirement
    im: float  # Derive's IM: portfolio MtM - IM requirement
    extra: dict[str, Any] = field(default_factory=dict)

    def pnl_of(self, kind: str) -> np.ndarray:
        """Scenario P&L of the "regular", "tail" or "skew" scenarios, in scenario order."""
        return self.scenario_pnl[[i for i, s in enumerate(self.scenarios) if s.kind == kind]]

    @property
    def skew_pnl(self) -> dict[str, float]:
        return {
            s.vol_shock: float(v) for s, v in zip(self.scenarios, self.scenario_pnl, strict=True) if s.kind == "skew"
        }


@dataclass(frozen=True)
class _Expiries:
    """Per-expiry market and precomputes (PMRM_2._initialiseExpiries, PMRMLib_2.addPrecomputes)."""

    seconds: np.ndarray  # (E,) int64, first appearance among the options
    feeds: list[ExpiryFeed]
    years: np.ndarray
    fixed: np.ndarray
    variable: np.ndarray
    forward: np.ndarray  # fixed + variable
    discount: np.ndarray  # exp(-max(r, 0) T)
    up: np.ndarray
    down: np.ndarray
    pos_disc: np.ndarray
    neg_disc: np.ndarray


@dataclass(frozen=True)
class _Options:
    expiry: np.ndarray  # (n,) index into _Expiries
    strike: np.ndarray
    amount: np.ndarray
    vol: np.ndarray
    kind: np.ndarray  # codes.CALL / codes.PUT


def _expiries(pf: Portfolio, prm: PM2Params) -> _Expiries:
    seconds = np.array(pf.expiries(), dtype=np.int64)
    feed_of = {f.expiry_seconds: f for f in pf.feeds}
    feeds = [feed_of[int(t)] for t in seconds]
    secs = seconds.astype(float)
    fwd = np.array([f.forward for f in feeds])
    fixed_given = np.array([np.nan if f.forward_fixed is None else f.forward_fixed for f in feeds])
    rate = np.maximum(np.array([f.rate for f in feeds]), 0.0)
    with np.errstate(over="ignore"):
        disc = np.exp(-rate * secs / SECONDS_PER_YEAR)
    fixed, variable = forward_portions(fwd, secs, fixed_given)
    up, down = vol_shock_multipliers(secs, prm.vol_shock)
    pos, neg = static_discounts(secs, rate, disc, prm.margin)
    for e, f in enumerate(feeds):
        if not (disc[e] > 0.0 and math.isfinite(pos[e]) and math.isfinite(neg[e])):
            i = pf.feeds.index(f)
            raise ValueError(
                f"portfolio.feeds[{i}].rate: rate x time to expiry {f.rate} x {secs[e]:.0f} s overflows "
                "the discount factors (the contract's exp reverts there)"
            )
        if not (math.isfinite(up[e]) and math.isfinite(down[e])):
            raise ValueError(f"params.vol_shock: vol-shock multiplier overflows for expiry {int(seconds[e])} s")
    return _Expiries(
        seconds, feeds, secs / SECONDS_PER_YEAR, fixed, variable, variable + fixed, disc, up, down, pos, neg
    )


def _options(pf: Portfolio, ex: _Expiries) -> _Options:
    index = {int(t): e for e, t in enumerate(ex.seconds)}
    opts = pf.options
    return _Options(
        expiry=np.array([index[o.expiry_seconds] for o in opts], dtype=np.int32),
        strike=np.array([o.strike for o in opts], dtype=float),
        amount=np.array([o.amount for o in opts], dtype=float),
        vol=np.array([o.vol for o in opts], dtype=float),
        kind=np.array([codes.CALL if o.is_call else codes.PUT for o in opts], dtype=np.int8),
    )


def _linear(pf: Portfolio) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(value, quantity) of the instruments that move 1:1 with spot (perps, risk-cancelling
    collateral), and every collateral's value (amount x price / USDC price)."""
    value, qty = [], []
    if pf.perp_amount != 0.0:
        value.append(pf.perp_price)
        qty.append(pf.perp_amount)
    coll_value = np.array([c.amount * c.price / pf.stable_price for c in pf.collaterals], dtype=float)
    for c, v in zip(pf.collaterals, coll_value, strict=True):
        if c.risk_cancelling and v > 0.0:
            value.append(v)
            qty.append(1.0)
    return np.array(value, dtype=float), np.array(qty, dtype=float), coll_value


def _price_revaluation(
    mk: ModuleType, pf: Portfolio, prm: PM2Params, ex: _Expiries, op: _Options
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Undiscounted shocked value per (expiry, column), the mark per expiry and the linear P&L per
    column. Columns: every scenario in order, then basis up / down. Expiry unit e has multiplier
    (variable * m + fixed) / F; the linear unit (index E) moves by m. In skew columns the expiry
    units are left unshocked (their values come from _skew_revaluation)."""
    scen, n_exp = prm.scenarios, len(ex.seconds)
    lin_value, lin_qty, _ = _linear(pf)
    n_opt, n_lin = len(op.strike), len(lin_value)
    spot_mult = np.array([s.spot_shock for s in scen] + [prm.basis.scenario_spot_up, prm.basis.scenario_spot_down])
    skew_col = np.array([s.kind == "skew" for s in scen] + [False, False])
    direction = [s.vol_shock for s in scen] + ["none", "none"]
    n_col = len(spot_mult)
    if n_opt + n_lin == 0:
        return np.zeros((n_exp, n_col)), np.zeros(n_exp), np.zeros(n_col)
    opt_mult = np.where(skew_col, 1.0, spot_mult)
    m_eff = np.vstack(
        [(ex.variable[:, None] * opt_mult[None, :] + ex.fixed[:, None]) / ex.forward[:, None], spot_mult[None, :]]
    )
    vs = prm.vol_shock
    up_shift = vs.vol_range_up if vs.vol_range_up > 0.0 else _TINY_SHIFT
    shift_row = np.array([up_shift if d == "up" else -vs.vol_range_down if d == "down" else 0.0 for d in direction])
    shift = np.broadcast_to(shift_row, (n_exp + 1, n_col)).copy()
    unit = np.concatenate([op.expiry, np.full(n_lin, n_exp)]).astype(np.int32)
    risk, value_now = mk.revalue(
        np.concatenate([op.kind, np.full(n_lin, codes.PERPETUAL)]).astype(np.int8),
        np.full(n_opt + n_lin, codes.LINEAR, dtype=np.int8),
        unit,
        np.concatenate([op.strike, np.ones(n_lin)]),
        np.concatenate([ex.years[op.expiry], np.zeros(n_lin)]),
        np.ones(n_opt + n_lin),
        np.concatenate([ex.forward[op.expiry], lin_value]),
        np.concatenate([ex.discount[op.expiry], np.ones(n_lin)]),
        np.concatenate([op.vol, np.zeros(n_lin)]),
        np.concatenate([ex.forward, [pf.spot]]),
        m_eff,
        shift,
        vol_shock="multiplicative",
        tau_floor_days=max(vs.dte_floor_days, _TINY_FLOOR_DAYS),
        short_power=vs.short_term_power,
        long_power=vs.long_term_power,
        vol_up_floor=vs.min_vol_up,
    )
    qty = np.concatenate([op.amount, lin_qty])
    netted = mk.net(
        risk,
        unit,
        n_exp + 1,
        np.array([0, n_opt + n_lin], dtype=np.int64),
        np.arange(n_opt + n_lin, dtype=np.int32),
        qty,
    )[0]
    mtm = np.bincount(op.expiry, weights=op.amount * value_now[:n_opt], minlength=n_exp)
    return netted[:n_exp] + mtm[:, None], mtm, netted[n_exp]


def _skew_revaluation(mk: ModuleType, prm: PM2Params, ex: _Expiries, op: _Options) -> np.ndarray:
    """Undiscounted value per (expiry, skew scenario): each option at the unshocked forward with its
    vol times max(0, skew multiplier), whatever the scenario's spot shock (PMRMLib_2
    _getExpirySkewedShockedMTM). One risk unit per option carries its own vol shift."""
    skew_idx = [i for i, s in enumerate(prm.scenarios) if s.kind == "skew"]
    n_opt, n_exp = len(op.strike), len(ex.seconds)
    if not skew_idx or not n_opt:
        return np.zeros((n_exp, len(skew_idx)))
    fwd, secs = ex.forward[op.expiry], ex.seconds[op.expiry].astype(float)
    mults = np.column_stack(
        [skew_multipliers(op.strike, fwd, secs, prm.skew_shock, prm.scenarios[i].vol_shock) for i in skew_idx]
    )
    per_option = np.arange(n_opt, dtype=np.int32)
    risk, value_now = mk.revalue(
        op.kind,
        np.full(n_opt, codes.LINEAR, dtype=np.int8),
        per_option,
        op.strike,
        ex.years[op.expiry],
        np.ones(n_opt),
        fwd,
        ex.discount[op.expiry],
        op.vol,
        fwd,
        np.ones((n_opt, len(skew_idx))),
        mults - 1.0,
        vol_shock="relative",
    )
    netted = mk.net(risk, op.expiry, n_exp, np.array([0, n_opt], dtype=np.int64), per_option, op.amount)[0]
    out: np.ndarray = netted + np.bincount(op.expiry, weights=op.amount * value_now, minlength=n_exp)[:, None]
    return out


def _scenario_pnl(
    prm: PM2Params, ex: _Expiries, values: np.ndarray, mtm: np.ndarray, lin_pnl: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(scenario P&L (S,), expiry P&L (E, S)) from undiscounted values (E, S) (PMRMLib_2.getScenarioPnL)."""
    scen = prm.scenarios
    skew = [i for i, s in enumerate(scen) if s.kind == "skew"]
    damp = np.array([s.dampening for s in scen])
    discounted = values * np.where(values >= 0.0, ex.pos_disc[:, None], ex.neg_disc[:, None])
    expiry_pnl = (discounted - mtm[:, None]) * damp[None, :]
    expiry_pnl[:, skew] = -np.abs(expiry_pnl[:, skew])
    scenario_pnl = expiry_pnl.sum(axis=0) + lin_pnl * damp
    return scenario_pnl, expiry_pnl


def _confidence_contingency(confidence: float, notional: float, p: OtherContingencyParams) -> float:
    if confidence < p.conf_threshold:
        return (1.0 - confidence) * p.conf_margin * notional
    return 0.0


def _contingencies(
    pf: Portfolio, prm: PM2Params, ex: _Expiries, op: _Options, coll_value: np.ndarray
) -> dict[str, float]:
    """Perp, option, base (collateral) and oracle contingencies, as positive amounts."""
    other = prm.other
    min_conf = pf.spot_confidence
    if pf.perp_amount != 0.0:
        min_conf = min(min_conf, pf.perp_confidence)
    perp_notional = abs(pf.perp_amount) * pf.spot
    out = {
        "mm_perp_cont": perp_notional * other.mm_perp_percent,
        "im_perp_cont": perp_notional * other.im_perp_percent,
        "mm_option_cont": 0.0,
        "im_option_cont": 0.0,
        "mm_base_cont": 0.0,
        "im_base_cont": 0.0,
    }
    oracle = _confidence_contingency(min_conf, perp_notional, other)
    for e, feed in enumerate(ex.feeds):
        sel = np.flatnonzero(op.expiry == e)[::-1]  # PMRM_2 fills each expiry's options back to front
        conf = min(min_conf, feed.forward_confidence, feed.rate_confidence)
        if len(sel):
            conf = min(conf, feed.vol_confidence)
        shorts = naked_shorts(op.strike[sel].tolist(), op.amount[sel].tolist()) * pf.spot
        out["mm_option_cont"] += shorts * other.mm_option_percent
        out["im_option_cont"] += shorts * other.im_option_percent
        oracle += _confidence_contingency(conf, float(np.abs(op.amount[sel]).sum()) * pf.spot, other)
    for c, v in zip(pf.collaterals, coll_value, strict=True):
        out["mm_base_cont"] += v * c.mm_haircut
        out["im_base_cont"] += v * c.im_haircut
        oracle += _confidence_contingency(min(c.confidence, pf.spot_confidence), v, other)
    out["oracle_cont"] = oracle
    return out


def _check_finite(res: PM2Result) -> PM2Result:
    """Backstop: the documented bounds keep every figure finite; should one not be, refuse."""
    figures = {"im": res.im, "mm": res.mm, "portfolio_mtm": res.portfolio_mtm, "min_span": res.min_span}
    for name, value in figures.items():
        if not math.isfinite(value):
            raise ValueError(
                f"derive-pm2: {name} is not finite ({value}); an input is beyond the documented bounds "
                "(docs/derive-pm2.md, 'Bounds')"
            )
    return res


def evaluate(portfolio: Portfolio, params: PM2Params, *, engine: str = "kernel") -> PM2Result:
    """All PM2 components of ``portfolio`` under ``params`` (PMRMLib_2.getMarginAndMarkToMarket).

    ``engine="kernel"`` revalues through the C++ kernels, ``"reference"`` through their NumPy
    twins (same inputs, same post-processing), for cross-checking.
    """
    if engine == "kernel":
        from .. import kernels as mk
    elif engine == "reference":
        from .. import reference as mk  # type: ignore[no-redef]
    else:
        raise ValueError(f"engine: must be 'kernel' or 'reference', got {engine!r}")
    validate_portfolio(portfolio)
    validate_params(params)
    pf, prm, n_scen = portfolio, params, len(params.scenarios)
    ex = _expiries(pf, prm)
    op = _options(pf, ex)
    shocked, mtm, lin_pnl = _price_revaluation(mk, pf, prm, ex, op)
    values = shocked[:, :n_scen].copy()
    skew = [i for i, s in enumerate(prm.scenarios) if s.kind == "skew"]
    values[:, skew] = _skew_revaluation(mk, prm, ex, op)
    scenario_pnl, expiry_pnl = _scenario_pnl(prm, ex, values, mtm, lin_pnl[:n_scen])
    # basis (forward) contingency: undiscounted None-vol values at SCENARIO_SPOT_UP / DOWN
    worst_basis = np.minimum(np.minimum(shocked[:, -2] - mtm, shocked[:, -1] - mtm), 0.0)
    basis = float(np.sum(worst_basis * (prm.basis.add_factor + prm.basis.mult_factor * ex.years)))
    return _check_finite(
        _margin(pf, prm=prm, ex=ex, op=op, scenario_pnl=scenario_pnl, expiry_pnl=expiry_pnl, basis=basis, mtm=mtm)
    )


def _margin(
    pf: Portfolio,
    *,
    prm: PM2Params,
    ex: _Expiries,
    op: _Options,
    scenario_pnl: np.ndarray,
    expiry_pnl: np.ndarray,
    basis: float,
    mtm: np.ndarray,
) -> PM2Result:
    """minSPAN, loss factors and IM / MM (PMRMLib_2.getMarginAndMarkToMarket)."""
    n_scen, other = len(prm.scenarios), prm.other
    coll_value = _linear(pf)[2]
    cont = _contingencies(pf, prm, ex, op, coll_value)
    option_mtm, collateral_mtm = float(mtm.sum()), float(coll_value.sum())
    portfolio_mtm = option_mtm + collateral_mtm + pf.unrealised_perp_pnl + pf.unrealised_funding + pf.cash
    candidates = np.concatenate([scenario_pnl, [basis]])
    worst = int(np.argmin(candidates))
    if candidates[worst] >= basis:  # ties go to the basis contingency, as in PMRMLib_2
        worst = n_scen
    min_span = float(min(basis, scenario_pnl.min(initial=np.inf)))
    im_factor = prm.margin.im_factor
    if pf.stable_price < other.peg_loss_threshold:
        im_factor += (other.peg_loss_threshold - pf.stable_price) * other.peg_loss_factor
    mm_cont = cont["mm_perp_cont"] + cont["mm_option_cont"] + cont["mm_base_cont"]
    im_cont = cont["im_perp_cont"] + cont["im_option_cont"] + cont["im_base_cont"] + cont["oracle_cont"]
    mm_req = -min_span * prm.margin.mm_factor + mm_cont
    im_req = -min_span * im_factor + mm_cont + im_cont
    return PM2Result(
        scenarios=prm.scenarios,
        scenario_pnl=scenario_pnl,
        expiry_pnl=expiry_pnl,
        basis_contingency=basis,
        min_span=min_span,
        worst_scenario=worst,
        expiries=ex.seconds,
        option_mtm_per_expiry=mtm,
        discount_factors=np.column_stack([ex.pos_disc, ex.neg_disc]) if len(ex.seconds) else np.zeros((0, 2)),
        vol_shock_up=ex.up,
        vol_shock_down=ex.down,
        option_mtm=option_mtm,
        collateral_mtm=collateral_mtm,
        perp_mtm=pf.unrealised_perp_pnl,
        funding=pf.unrealised_funding,
        cash=pf.cash,
        portfolio_mtm=portfolio_mtm,
        mm_loss_factor=prm.margin.mm_factor,
        im_loss_factor=im_factor,
        mm_requirement=mm_req,
        im_requirement=im_req,
        mm=portfolio_mtm - mm_req,
        im=portfolio_mtm - im_req,
        mm_perp_cont=cont["mm_perp_cont"],
        im_perp_cont=cont["im_perp_cont"],
        mm_base_cont=cont["mm_base_cont"],
        im_base_cont=cont["im_base_cont"],
        mm_option_cont=cont["mm_option_cont"],
        im_option_cont=cont["im_option_cont"],
        oracle_cont=cont["oracle_cont"],
    )


__all__ = ["PM2Result", "evaluate"]
