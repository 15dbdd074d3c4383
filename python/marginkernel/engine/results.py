"""Results: add-on charges combined with the scan risk per node, then the accounts and by-unit
frames of a :class:`MarginResult`.

Per node: ``requirement = max(max(0, scan + sum(add) - sum(credit)), max(floors))``; IM =
``im_factor`` x requirement, MM = ``mm_factor`` x requirement. Each component's contribution (charges
> 0, credits < 0 in proportion to the credit applied, the binding floor its uplift over the rest)
is reported so that ``scan_risk`` + components = ``risk``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .keys import first_max, unique_inverse
from .netting import Nodes, Pairs
from .positions import Positions

if TYPE_CHECKING:
    from ..addons import Context
    from .core import Engine

BY_UNIT_COLUMNS = ("account", "risk_unit", "currency", "loss", "loss_usd", "worst_scenario")


@dataclass(frozen=True, eq=False)
class MarginResult:
    """Margin of every account of a book.

    ``accounts``: one row per account (index ``account``), amounts in ``currency`` (default USD):
    ``im``, ``mm``, ``risk`` (the requirement IM and MM scale: scan risk and add-ons),
    ``worst_unit`` (the netting node -- risk unit, settlement currency or None for account netting --
    whose scan costs most) and ``worst_scenario`` (its worst scenario), ``scan_risk``, one column per
    add-on component (its contribution: charges > 0, credits < 0, a floor its uplift over the rest;
    ``scan_risk`` + components = ``risk``), ``equity`` (haircut collateral + unrealised P&L + the
    settlement value of expired options settled with ``expired="settle"``; NaN when there is none),
    ``available`` (equity - IM), ``margin_ratio`` (MM / equity; inf when equity <= 0 < MM) and
    ``liquidation`` (equity < MM; <NA> without equity).
    ``by_unit``: one row per (account, risk unit) held: the unit's own worst loss in its settlement
    currency (``loss``; isolated mode: the sum over its positions) and in USD, its worst scenario, and
    each add-on's raw charge for the unit (settlement currency).
    ``pnl``: scenario P&L, shape (accounts, risk units, scenarios), in settlement currency.
    """

    accounts: pd.DataFrame
    by_unit: pd.DataFrame
    pnl: np.ndarray
    units: list[str]
    scenarios: tuple[str, ...]
    components: tuple[str, ...] = ()
    currency: str = "USD"

    def scenario_pnl(self, account: Any) -> pd.DataFrame:
        """The P&L vector of one account: a row per scenario, a column per risk unit."""
        row = self.accounts.index.get_loc(account)
        return pd.DataFrame(self.pnl[row].T, index=pd.Index(self.scenarios, name="scenario"), columns=self.units)


@dataclass(frozen=True, eq=False)
class Requirement:
    """Per node: the requirement and each component's contribution to it."""

    requirement: np.ndarray
    contrib: np.ndarray  # (components, nodes)


def addon_charges(engine: Engine, ctx: Context | None, n_pairs: int) -> np.ndarray:
    """(components, pairs) raw charge of every add-on, settlement currency; a non-finite charge (an
    overflow from extreme parameters or positions) is an error naming the add-on."""
    model = engine.model
    charges = np.zeros((len(model.addons), n_pairs))
    if ctx is None or n_pairs == 0:
        return charges
    for k, (addon, params) in enumerate(zip(model.addons, engine.addon_params, strict=True)):
        with np.errstate(over="ignore", invalid="ignore"):  # an overflow is reported below, naming the add-on
            charge = np.asarray(addon.compute(ctx, params), dtype=float)
        if charge.shape != (n_pairs,):  # pragma: no cover - an add-on bug
            raise RuntimeError(f"add-on {addon.name!r} returned shape {charge.shape}, expected {(n_pairs,)}")
        if not np.all(np.isfinite(charge)):
            pair = int(np.flatnonzero(~np.isfinite(charge))[0])
            unit = ctx.unit_names[int(ctx.pair_unit[pair])]
            raise ValueError(
                f"{addon.where}: the charge overflows for risk unit {unit!r} (a value or a position "
                f"too large for float64)"
            )
        if (charge < 0).any():  # pragma: no cover - an add-on bug
            raise RuntimeError(f"add-on {addon.name!r} returned a negative charge")
        charges[k] = charge
    return charges


def combine(engine: Engine, pairs: Pairs, nodes: Nodes, pair_charge: np.ndarray) -> Requirement:
    """Add-on charges into their nodes (node currency) and the requirement per node."""
    combine_of = [a.combine for a in engine.model.addons]
    n_comp, n_nodes = len(combine_of), len(nodes)
    unit_fx = engine.market.unit_fx
    node_charge = np.zeros((n_comp, n_nodes))
    for k in range(n_comp):  # per component: pairs' charges in USD, summed into their node
        usd = pair_charge[k] * unit_fx[pairs.pair_unit]
        node_charge[k] = np.bincount(nodes.to_node, usd, minlength=n_nodes) / nodes.fx
    is_add = np.array([c == "add" for c in combine_of], dtype=bool)
    is_credit = np.array([c == "credit" for c in combine_of], dtype=bool)
    is_floor = np.array([c == "floor" for c in combine_of], dtype=bool)
    base = nodes.scan + node_charge[is_add].sum(axis=0)
    credits = node_charge[is_credit].sum(axis=0)
    applied = np.minimum(credits, base)
    net = base - applied
    floors = node_charge[is_floor]
    uplift = np.maximum((floors.max(axis=0) if len(floors) else np.zeros(n_nodes)) - net, 0.0)
    contrib = np.zeros((n_comp, n_nodes))
    contrib[is_add] = node_charge[is_add]
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(credits > 0, applied / credits, 0.0)
    contrib[is_credit] = -node_charge[is_credit] * share
    if len(floors):
        binding = np.argmax(floors, axis=0)
        contrib[np.flatnonzero(is_floor)[binding], np.arange(n_nodes)] += uplift
    return Requirement(net + uplift, contrib)


def text_column(labels: Any, index: np.ndarray) -> Any:
    """``labels[index]`` (index -1: None) as a frame column, typed as pandas types that object array:
    when every label is text, pandas' text dtype (None as NaN), taken from the labels' own column
    rather than built from one Python object per row; else the object array itself."""
    index = np.asarray(index, dtype=np.int64)
    column = pd.Series(np.asarray(labels, dtype=object)).array
    if isinstance(column.dtype, pd.StringDtype) and (index >= 0).any():
        return column.take(index, allow_fill=True)
    values = np.asarray(labels, dtype=object)[np.maximum(index, 0)] if len(labels) else np.full(len(index), None)
    values[index < 0] = None
    return values


def _worst(engine: Engine, pairs: Pairs, nodes: Nodes, n_acc: int) -> tuple[np.ndarray, Any]:
    """Per account: the costliest node's name and worst scenario (None when no node costs)."""
    worst_unit = np.full(n_acc, None, dtype=object)
    worst_scenario = np.full(n_acc, -1, dtype=np.int64)
    if len(nodes):
        owner = pairs.owner[nodes.pseudo]
        scan_usd = nodes.scan * nodes.fx
        first = first_max(scan_usd, owner, n_acc)
        first = first[first >= 0]
        costly = first[scan_usd[first] > 0]
        worst_unit[owner[costly]] = nodes.name[costly]
        worst_scenario[owner[costly]] = nodes.worst[costly]
    return worst_unit, text_column(engine.scenario_set.labels, worst_scenario)


def _equity(engine: Engine, pos: Positions, settled_usd: np.ndarray | None) -> np.ndarray:
    parts = [p for p in (pos.collateral_usd, pos.upnl_usd, settled_usd) if p is not None]
    if not parts:
        return np.full(pos.n_accounts, np.nan)
    return np.asarray(sum(parts)) / engine.report_fx


def accounts_frame(
    engine: Engine,
    pos: Positions,
    pairs: Pairs,
    nodes: Nodes,
    req: Requirement,
    *,
    settled_usd: np.ndarray | None = None,
) -> pd.DataFrame:
    """The ``accounts`` frame of a :class:`MarginResult`."""
    model, n_acc = engine.model, pos.n_accounts
    node_owner = pairs.owner[nodes.pseudo]
    scale = nodes.fx / engine.report_fx

    def per_account(values: np.ndarray) -> np.ndarray:
        return np.bincount(node_owner, values * scale, minlength=n_acc)

    risk = per_account(req.requirement)
    worst_unit, worst_scenario = _worst(engine, pairs, nodes, n_acc)
    columns: dict[str, Any] = {
        "im": model.im_factor * risk,
        "mm": model.mm_factor * risk,
        "risk": risk,
        "worst_unit": worst_unit,
        "worst_scenario": worst_scenario,
        "scan_risk": per_account(nodes.scan),
    }
    for k, name in enumerate(model.components):
        columns[name] = per_account(req.contrib[k])
    equity = _equity(engine, pos, settled_usd)
    mm = columns["mm"]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(mm == 0, 0.0, np.where(equity > 0, mm / equity, np.inf))
    columns["equity"] = equity
    columns["available"] = equity - columns["im"]
    columns["margin_ratio"] = np.where(np.isnan(equity), np.nan, ratio)
    columns["liquidation"] = pd.array(np.where(np.isnan(equity), None, equity < mm), dtype="boolean")
    return pd.DataFrame(columns, index=pd.Index(pos.names, name="account"))


def by_unit_frame(engine: Engine, names: np.ndarray, pairs: Pairs, pair_charge: np.ndarray) -> pd.DataFrame:
    """The ``by_unit`` frame: per (account, risk unit) held, loss, USD loss, worst scenario, charges."""
    comps = engine.model.components
    n_units = len(engine.units)
    if pairs.n_pairs == 0:
        return pd.DataFrame({c: [] for c in (*BY_UNIT_COLUMNS, *comps)})
    key, grp = unique_inverse(pairs.owner[pairs.pair_account] * n_units + pairs.pair_unit, len(names) * n_units)
    loss = np.bincount(grp, pairs.pair_scan, minlength=len(key))
    worst = pairs.pair_worst[first_max(pairs.pair_scan, grp, len(key))]  # every group has a row
    u = key % n_units
    frame: dict[str, Any] = {
        "account": names[key // n_units],
        "risk_unit": text_column(engine.units, u),
        "currency": text_column(engine.market.unit_currency, u),
        "loss": loss,
        "loss_usd": loss * engine.market.unit_fx[u],
        "worst_scenario": text_column(engine.scenario_set.labels, worst),
    }
    for k, name in enumerate(comps):
        frame[name] = np.bincount(grp, pair_charge[k], minlength=len(key))
    return pd.DataFrame(frame)


__all__ = ["MarginResult", "Requirement", "accounts_frame", "addon_charges", "by_unit_frame", "combine", "text_column"]
