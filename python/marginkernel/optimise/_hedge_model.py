"""The exact LP / MILP of "IM + cost" of one account over hedge quantities (docs/optimise.md).

Variables y_h (hedge h trades lot_h * y_h; integer when a lot size is given). Every piece of the
engine's IM is convex and piecewise linear in the quantities for the supported models, and is
written with epigraph variables, so the LP optimum is the engine's IM of the optimal book:

* scenario P&L of a netting child: x_{c,s} = const + sum_h A[s, h] y_h (weights, FX applied);
* a node with several children and gain factor g: psi_{c,s} >= -x_{c,s}, psi_{c,s} >= -g_c x_{c,s}
  (losses count fully, gains at g: the engine's joint P&L with an unlimited gain cap);
* worst loss: s_n >= sum_c psi_{c,s} for every s, s_n >= 0; ES (Rockafellar-Uryasev, equally likely
  scenarios): s_n >= zeta + (1/k) sum_s e_s, e_s >= L_s - zeta, e_s >= 0 (k = the tail count);
* |q_i| through a_i >= +-q_i; delta-based charges through their convex piecewise-linear pieces;
* requirement r_n >= s_n + adds_n, r_n >= each floor_n, r_n >= 0; objective im_factor * sum r_n +
  sum cost_h |lot_h y_h|.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..addons import instrument_units
from ..addons.conventions import KIND_NAMES
from ..codes import CALL, PUT
from ._lp import LP, Expr, add, times, var_expr

LINEAR_ADDONS = (
    "roll_shock",
    "delta_shock",
    "short_option_minimum",
    "per_contract_minimum",
    "concentration",
    "contingency",
)


@dataclass(eq=False)
class Problem:
    lp: LP
    y: np.ndarray  # columns of the hedge variables
    hedge_instrument: np.ndarray
    lot: np.ndarray
    r_cols: np.ndarray  # requirement variable of each netting node
    r_usd: np.ndarray  # its reporting-currency value per unit (node FX / report FX)


def check_model(engine: Any) -> None:
    """ValueError naming the model setting that makes IM non-convex (no exact LP)."""
    model = engine.model
    if model.measure == "var":
        raise ValueError("model.measure: VaR is not convex in the quantities; the hedge LP supports worst_loss and es")
    if (
        model.measure == "es"
        and engine.scenario_set.probability is not None
        and np.ptp(engine.scenario_set.probability) > 0
    ):
        raise ValueError("model.measure: ES over unequally likely scenarios is not supported by the hedge LP")
    if model.netting != "risk_unit" and math.isfinite(model.gain_cap):
        raise ValueError("model.gain_cap: a finite cap on the gain credit makes IM non-convex; the hedge LP needs none")
    for a, p in zip(model.addons, engine.addon_params, strict=True):
        if a.type not in LINEAR_ADDONS or a.combine == "credit":
            raise ValueError(
                f"addons.{a.name}: a {a.type} add-on is not convex piecewise linear; the hedge LP "
                f"supports {', '.join(LINEAR_ADDONS)}"
            )
        if a.type == "contingency" and np.any(p["future_rate"]):
            raise ValueError(f"addons.{a.name}.future_rate: rate * min(long, short) is concave; the hedge LP needs 0")
        tiers = a.config.get("tiers")
        if tiers:
            rates = [0.0 if tiers[0][0] > 0 else tiers[0][1]] + [t[1] for t in tiers]
            if any(b < r for r, b in itertools.pairwise(rates)):
                raise ValueError(
                    f"addons.{a.name}.tiers: decreasing tier rates are not convex; the hedge LP needs "
                    "non-decreasing ones"
                )


def _tier_lines(tiers: Any) -> list[tuple[float, float]]:
    """(slope, intercept) lines whose maximum (with 0) is the tiered function (convex tiers)."""
    lines, value = [], 0.0
    for k, (start, rate) in enumerate(tiers):
        lines.append((rate, value - rate * start))
        if k + 1 < len(tiers):
            value += rate * (tiers[k + 1][0] - start)
    return lines


class Builder:
    """Builds the problem for one account: book quantities q0 (instrument -> quantity) and hedges."""

    def __init__(  # noqa: PLR0917 - the hedge universe as parallel arrays
        self,
        engine: Any,
        q0: dict[int, float],
        inst: np.ndarray,
        lot: np.ndarray,
        lo: np.ndarray,
        hi: np.ndarray,
        cost: np.ndarray,
        integer: bool,
        lp: LP | None = None,
    ):
        self.e = engine
        self.lp = LP() if lp is None else lp
        self.inst, self.lot = inst, lot
        self.y = np.array([self.lp.var(1, lo[h], hi[h], 0.0, integer)[0] for h in range(len(inst))], dtype=np.int64)
        for h in range(len(inst)):  # cost_h |lot_h y_h| through z_h >= +-y_h
            if cost[h] > 0:
                z = int(self.lp.var(1, 0.0, np.inf, cost[h] * lot[h])[0])
                self.lp.le(add(var_expr(self.y[h]), var_expr(z, -1.0)))
                self.lp.le(add(var_expr(self.y[h], -1.0), var_expr(z, -1.0)))
        self.q0 = dict(q0)
        m = engine.market
        self.instruments = sorted(set(q0) | {int(i) for i in inst})
        self.unit_of = m.unit_of_row
        self.units = sorted({int(self.unit_of[i]) for i in self.instruments})
        self._abs: dict[int, Expr] = {}

    def q(self, i: int) -> Expr:
        coefs = {int(self.y[h]): float(self.lot[h]) for h in np.flatnonzero(self.inst == i)}
        return float(self.q0.get(i, 0.0)), coefs

    def abs_q(self, i: int) -> Expr:
        const, coefs = self.q(i)
        if not coefs:
            return abs(const), {}
        if i not in self._abs:
            a = int(self.lp.var(1)[0])
            self.lp.le(add((const, coefs), var_expr(a, -1.0)))
            self.lp.le(add(times((const, coefs), -1.0), var_expr(a, -1.0)))
            self._abs[i] = var_expr(a)
        return self._abs[i]

    def epigraph(self, *pieces: Expr) -> Expr:
        """A variable t >= 0 with t >= every piece."""
        t = int(self.lp.var(1)[0])
        for p in pieces:
            self.lp.le(add(p, var_expr(t, -1.0)))
        return var_expr(t)

    def scenario_pnl(self, u: int) -> tuple[np.ndarray, np.ndarray]:
        """Unit u's weighted scenario P&L: constant (S,) and coefficients (S, H)."""
        risk, w = self.e.counted_risk, self.e.scenario_set.weight[u]
        const = np.zeros(risk.shape[1])
        for i, q in self.q0.items():
            if self.unit_of[i] == u:
                const += q * risk[i]
        coef = np.zeros((risk.shape[1], len(self.inst)))
        for h, i in enumerate(self.inst):
            if self.unit_of[i] == u:
                coef[:, h] = self.lot[h] * risk[i]
        return const * w, coef * w[:, None]

    # -- the scan ---------------------------------------------------------------------------------

    def nodes(self) -> list[tuple[float, list[int], list[tuple[Any, Any, float]]]]:
        """(node fx to USD, its units, its children as (const, coef, gain factor)) per netting node."""
        model, m, net = self.e.model, self.e.market, self.e.netting
        cur_names = list(m.unit_currency)
        pnl = {u: self.scenario_pnl(u) for u in self.units}
        if model.netting == "risk_unit":
            return [(float(m.unit_fx[u]), [u], [(*pnl[u], 1.0)]) for u in self.units]
        currencies = list(dict.fromkeys(cur_names[u] for u in self.units))
        by_cur = {c: [u for u in self.units if cur_names[u] == c] for c in currencies}
        if model.netting == "currency":
            out = []
            for c in currencies:
                us = by_cur[c]
                out.append((float(m.unit_fx[us[0]]), us, [(*pnl[u], float(net.unit_gain[u])) for u in us]))
            return out
        kids = []
        for c in currencies:
            fx = float(m.unit_fx[by_cur[c][0]])
            const = sum(pnl[u][0] for u in by_cur[c]) * fx
            coef = sum(pnl[u][1] for u in by_cur[c]) * fx
            kids.append((const, coef, float(net.cur_gain[net.currencies.index(c)])))
        return [(1.0, list(self.units), kids)]

    def _rows(self, coef: np.ndarray, rhs: np.ndarray, extra: list[tuple[np.ndarray, float]]) -> None:
        """Rows s: coef[s] . y + sum(f * x[cols[s]]) <= rhs[s]."""
        s_count, h_count = coef.shape
        r = [np.repeat(np.arange(s_count), h_count)]
        c = [np.tile(self.y, s_count)]
        v = [coef.ravel()]
        for cols, f in extra:
            r.append(np.arange(s_count))
            c.append(np.broadcast_to(cols, (s_count,)))
            v.append(np.full(s_count, f))
        self.lp.block(np.concatenate(r), np.concatenate(c), np.concatenate(v), np.full(s_count, -np.inf), rhs)

    def scan(self, kids: list[tuple[Any, Any, float]]) -> int:
        """Column of the node's scan variable s >= 0."""
        n_s = len(kids[0][0])
        h = len(self.y)
        psis: list[tuple[np.ndarray, float]] = []
        if len(kids) == 1:  # L_s = -x_s
            const_l, coef_l = -np.asarray(kids[0][0], float), -np.asarray(kids[0][1], float)
        else:  # L_s = sum_c psi_c,s
            const_l, coef_l = np.zeros(n_s), np.zeros((n_s, h))
            for const, coef, g in kids:
                psi = self.lp.var(n_s, -np.inf)
                self._rows(-coef, const, [(psi, -1.0)])  # psi >= -x
                self._rows(-g * coef, g * const, [(psi, -1.0)])  # psi >= -g x
                psis.append((psi, 1.0))
        s = int(self.lp.var(1)[0])
        if self.e.model.measure == "worst_loss":  # L_s - s <= 0
            self._rows(coef_l, -const_l, [*psis, (np.full(n_s, s), -1.0)])
            return s
        level = (1.0 - self.e.model.confidence) * (1.0 - 1e-12)
        k = math.ceil(n_s * level)
        zeta = int(self.lp.var(1, -np.inf)[0])
        e = self.lp.var(n_s)
        self._rows(coef_l, -const_l, [*psis, (np.full(n_s, zeta), -1.0), (e, -1.0)])  # e_s >= L_s - zeta
        cols = np.concatenate([[zeta], e, [s]])
        vals = np.concatenate([[1.0], np.full(n_s, 1.0 / k), [-1.0]])
        self.lp.block(np.zeros(len(cols), np.int64), cols, vals, np.array([-np.inf]), np.array([0.0]))
        return s

    # -- add-ons ----------------------------------------------------------------------------------

    def _inst_data(self) -> tuple[np.ndarray, np.ndarray]:
        inst, m = self.e.instruments, self.e.market
        units = instrument_units(inst.kind, inst.settlement, inst.multiplier, m.forward)
        return np.where(inst.settlement == 0, units * m.forward, units), self.e.deltas

    def addon(self, a: Any, p: dict[str, Any], u: int) -> Expr:
        """The add-on's charge for risk unit u (settlement currency) as a convex expression."""
        inst, m = self.e.instruments, self.e.market
        notional, delta = self._inst_data()
        mine = [i for i in self.instruments if self.unit_of[i] == u]
        kind = inst.kind
        fx, spot = float(m.unit_fx[u]), float(m.unit_spot[u])
        t = a.type
        zero: Expr = (0.0, {})
        if t == "roll_shock":
            terms = [
                times(
                    self.abs_q(i),
                    notional[i]
                    * max(p["min_annualised_move"][u], p["annualised_move_risk"][u] * max(m.expiry_years[i], 0.0)),
                )
                for i in mine
                if KIND_NAMES[kind[i]] in p["kinds"]
            ]
            return add(zero, *terms)
        if t in ("delta_shock", "concentration"):
            d = add(zero, *[times(self.q(i), delta[i]) for i in mine])
            if t == "delta_shock":
                s = p["shock"][u]
                return self.epigraph(
                    add(times(d, s * spot / fx), (-s * p["threshold"][u] / fx, {})),
                    add(times(d, -s * spot / fx), (-s * p["threshold"][u] / fx, {})),
                )
            x = (
                self.epigraph(d, times(d, -1.0))
                if p["measure"] == "net_delta"
                else add(zero, *[times(self.abs_q(i), abs(delta[i])) for i in mine])
            )
            return self.epigraph(*[add(times(x, k * spot / fx), (c / fx, {})) for k, c in _tier_lines(p["tiers"])])
        if t == "short_option_minimum":
            per = {
                i: ((1.0 / fx if p["currency"] == "USD" else 1.0) if p["basis"] == "contract" else notional[i])
                for i in mine
            }
            side: dict[int, list[Expr]] = {CALL: [], PUT: []}
            for i in mine:
                if kind[i] in side:
                    side[kind[i]].append(times(self.epigraph(times(self.q(i), -1.0)), p["rate"][u] * per[i]))
            calls, puts = add(zero, *side[CALL]), add(zero, *side[PUT])
            return add(calls, puts) if p["method"] == "gross" else self.epigraph(calls, puts)
        if t == "per_contract_minimum":
            size = {
                i: (
                    inst.multiplier[i] / (fx if p["currency"] == "USD" else 1.0)
                    if p["basis"] == "multiplier"
                    else notional[i]
                )
                for i in mine
            }
            raw = add(
                zero, *[times(self.abs_q(i), p["rate"][u] * size[i]) for i in mine if KIND_NAMES[kind[i]] in p["kinds"]]
            )
            if p["tiers"] is None:
                return raw
            return self.epigraph(*[add(times(raw, k), (c / fx, {})) for k, c in _tier_lines(p["tiers"])])
        if t == "contingency":
            terms = []
            for i in mine:
                if kind[i] in (CALL, PUT):
                    held = self.abs_q(i) if p["option_side"] == "gross" else self.epigraph(times(self.q(i), -1.0))
                    terms.append(times(held, notional[i] * p["option_rate"][u]))
            return add(zero, *terms)
        raise ValueError(f"addons.{a.name}: not supported by the hedge LP")  # pragma: no cover - checked first

    def build(self, factor: float | None = None) -> Problem:
        """Requirement variables r_n of every node, with objective coefficient `factor` (default
        im_factor) times node FX / report FX: the objective then holds IM (+ the costs)."""
        e, model, m = self.e, self.e.model, self.e.market
        params = e.addon_params
        factor = model.im_factor if factor is None else factor
        r_cols, r_usd = [], []
        for node_fx, units, kids in self.nodes():
            s = self.scan(kids)
            adds: Expr = var_expr(s)
            floors = []
            for a, p in zip(model.addons, params, strict=True):
                total = add((0.0, {}), *[times(self.addon(a, p, u), float(m.unit_fx[u]) / node_fx) for u in units])
                if a.combine == "add":
                    adds = add(adds, total)
                else:
                    floors.append(total)
            r = int(self.lp.var(1, 0.0, np.inf, factor * node_fx / e.report_fx)[0])
            r_cols.append(r)
            r_usd.append(node_fx / e.report_fx)
            for piece in (adds, *floors):
                self.lp.le(add(piece, var_expr(r, -1.0)))
        return Problem(self.lp, self.y, self.inst, self.lot, np.array(r_cols, np.int64), np.array(r_usd))
