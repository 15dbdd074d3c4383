"""High-level engine: instruments + market + model -> margin per account, as DataFrames.

The engine revalues every instrument once on construction (the risk arrays R[i, s], shared by all
accounts, DESIGN §2) and then nets and reduces any number of books against that cache.

Netting hierarchy (``[model] netting``): instrument -> risk unit -> settlement currency -> account.

* ``risk_unit``: the worst weighted loss of each risk unit's scenario P&L, summed in USD;
* ``currency``: per settlement currency, the units' weighted P&L summed scenario by scenario (gains of
  each unit scaled by its ``gain_factor`` and the summed gain credit capped at ``gain_cap``), then
  the worst loss per currency, summed in USD (Deribit's segregated portfolio margin);
* ``account``: per currency as above with full netting, then the currencies' P&L in USD summed
  scenario by scenario with each currency's gains scaled by its ``gain_factor`` (Deribit
  ``pnl_offset``) and capped at ``gain_cap``; one worst loss per account (cross portfolio margin).

Margin modes: ``cross`` nets all of an account's positions as above; ``isolated`` margins each
position alone (its own P&L vector, its own add-ons) and sums. The mode is the model's ``mode``, or
per position with a ``margin_mode`` column of the positions.

Per node of the netting level, add-ons (:mod:`marginkernel.addons`) combine with the scan risk:
``requirement = max(max(0, scan + adds - credits), max(floors))``; IM = ``im_factor`` x requirement,
MM = ``mm_factor`` x requirement. Collateral (per account and currency, with the model's haircuts)
gives equity, margin ratio (MM / equity) and a liquidation flag (equity < MM).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import addons as _addons
from . import kernels
from .instruments import Instruments
from .market import Market, ResolvedMarket, collateral_frame
from .model import MarginModel
from .scenarios import ScenarioSet

_INSTRUMENT_FIELDS = {"kind", "settlement", "risk_unit", "strike", "expiry", "multiplier", "forward", "discount", "vol"}
MODE_COLUMN = "margin_mode"
UPNL_COLUMN = "unrealised_pnl"


@dataclass(frozen=True, eq=False)
class Book:
    """Positions in compressed rows by account (see :func:`marginkernel.kernels.net`)."""

    accounts: np.ndarray  # account names, in order of first appearance
    account_start: np.ndarray  # int64 (A + 1,)
    instrument: np.ndarray  # int32 row into the engine's instruments
    quantity: np.ndarray  # float64


@dataclass(frozen=True, eq=False)
class MarginResult:
    """Margin of every account of a book.

    ``accounts``: one row per account (index ``account``), amounts in ``currency`` (default USD):
    ``im``, ``mm``, ``risk`` (the requirement IM and MM scale: scan risk and add-ons),
    ``worst_unit`` (the netting node -- risk unit, settlement currency or None for account netting --
    whose scan costs most) and ``worst_scenario`` (its worst scenario), ``scan_risk``, one column per
    add-on component (its contribution: charges > 0, credits < 0, a floor its uplift over the rest;
    ``scan_risk`` + components = ``risk``), ``equity`` (haircut collateral + unrealised P&L; NaN when
    neither is given), ``available`` (equity - IM), ``margin_ratio`` (MM / equity; inf when equity
    <= 0 < MM) and ``liquidation`` (equity < MM; <NA> without equity).
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

    def scenario_pnl(self, account) -> pd.DataFrame:
        """The P&L vector of one account: a row per scenario, a column per risk unit."""
        row = self.accounts.index.get_loc(account)
        return pd.DataFrame(self.pnl[row].T, index=pd.Index(self.scenarios, name="scenario"), columns=self.units)


@dataclass(eq=False)
class _Positions:
    """Validated, aggregated positions (one row per account, instrument and isolation flag)."""

    names: np.ndarray  # account names
    account: np.ndarray  # int64 per row
    instrument: np.ndarray  # int64 per row
    quantity: np.ndarray  # float64 per row, != 0
    isolated: np.ndarray  # bool per row
    upnl_usd: np.ndarray | None  # per account, USD
    collateral_usd: np.ndarray | None  # per account, USD, haircut applied


@dataclass(eq=False)
class _Pairs:
    owner: np.ndarray  # account of each pseudo-account
    account_pnl: np.ndarray  # (accounts, units, scenarios)
    pos_pair: np.ndarray
    pair_account: np.ndarray  # pseudo-account of each pair
    pair_unit: np.ndarray
    pair_pnl: np.ndarray
    weighted: np.ndarray
    pair_scan: np.ndarray
    pair_worst: np.ndarray
    n_pseudo: int


def _first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


class Engine:
    """Margin engine for one set of instruments, one market snapshot and one model."""

    def __init__(self, instruments: Instruments, market: Market, model: MarginModel, *, threads: int = 1):
        if not isinstance(instruments, Instruments):
            raise TypeError(f"instruments: expected Instruments, got {type(instruments).__name__}")
        if not isinstance(market, Market):
            raise TypeError(f"market: expected Market, got {type(market).__name__}")
        if not isinstance(model, MarginModel):
            raise TypeError(f"model: expected a MarginModel (generic scenario-grid model), got {type(model).__name__}")
        self.instruments = instruments
        self.model = model
        self.threads = threads
        self.market_snapshot = market
        self.market: ResolvedMarket = market.resolve(instruments)
        self.scenario_set: ScenarioSet = model.scenarios(self.market.unit_underlying)
        self._index = pd.Index(instruments.ids)
        self._delta = None
        self._month = None
        m = self.market
        try:
            self.risk, self.value_now = kernels.revalue(
                instruments.kind, instruments.settlement, m.unit_of_row, instruments.strike, m.expiry_years,
                instruments.multiplier, m.forward, m.discount, m.vol, m.unit_spot,
                threads=threads, **self.scenario_set.kernel_arguments(),
            )
        except kernels.InputError as exc:
            if exc.row is not None and exc.field in _INSTRUMENT_FIELDS:
                raise ValueError(f"instrument {instruments.ids[exc.row]!r} (row {exc.row}): {exc}") from None
            raise
        self._counted = (None, None, None)
        # per-unit add-on parameters: resolved now so that a missing value fails here, naming its key
        self._addon_params = [a.resolve(self.units, m.unit_underlying) for a in model.addons]
        self._report_fx = market.fx_rate(model.currency)
        self._currencies = list(dict.fromkeys(m.unit_currency))
        self._unit_cur = np.array([self._currencies.index(c) for c in m.unit_currency], dtype=np.int64)
        self._cur_fx = np.array([market.fx_rate(c) for c in self._currencies])

    @property
    def units(self) -> list[str]:
        return self.market.units

    @property
    def deltas(self) -> np.ndarray:
        """Delta per unit of each instrument in units of its underlying (see marginkernel.addons)."""
        if self._delta is None:
            inst, m = self.instruments, self.market
            self._delta = _addons.instrument_deltas(inst.kind, inst.settlement, inst.multiplier, m.forward,
                                                    inst.strike, m.vol, m.expiry_years, m.discount)
        return self._delta

    @property
    def counted_risk(self) -> np.ndarray:
        """The risk arrays as the model counts them: ``risk``, with futures, perpetuals and spot set to
        0 in scenarios that count options only (``ScenarioSet.options_only``, e.g. Deribit's extended
        table). Netting uses these; ``risk`` stays the plain revaluation."""
        only = self.scenario_set.options_only
        if only is None or not np.any(only):
            return self.risk
        risk_was, scen_was, counted = self._counted
        if risk_was is not self.risk or scen_was is not self.scenario_set:
            counted = self.risk.copy()
            linear = (self.instruments.kind != 2) & (self.instruments.kind != 3)
            counted[np.ix_(linear, np.asarray(only, dtype=bool))] = 0.0
            self._counted = (self.risk, self.scenario_set, counted)
        return counted

    def risk_arrays(self) -> pd.DataFrame:
        """R[i, s] as a DataFrame: a row per instrument, a column per scenario."""
        return pd.DataFrame(self.risk, index=pd.Index(self.instruments.ids, name="instrument"),
                            columns=list(self.scenario_set.labels))

    # -- positions ---------------------------------------------------------------------------

    def _positions(self, positions, accounts: Iterable | None, collateral, mode: str | None) -> _Positions:
        mode = self.model.mode if mode is None else mode
        if mode not in ("cross", "isolated"):
            raise ValueError(f"mode: must be 'cross' or 'isolated', got {mode!r}")
        if isinstance(positions, Book):
            acc = np.repeat(np.arange(len(positions.accounts)), np.diff(positions.account_start))
            frame = None
            names_in = list(positions.accounts)
            inst = np.asarray(positions.instrument, dtype=np.int64)
            qty = np.asarray(positions.quantity, dtype=np.float64)
            iso = np.full(len(qty), mode == "isolated")
            upnl = None
        else:
            frame = _as_frame(positions, "positions")
            names_in = None
        extra = [] if accounts is None else list(accounts)
        coll = collateral_frame(collateral) if collateral is not None else None
        if frame is not None:
            if len(frame) == 0 and not extra and (coll is None or len(coll) == 0):
                raise ValueError("positions: empty book (no positions and no accounts given)")
            if len(frame):
                missing = {"account", "instrument", "quantity"} - set(frame.columns)
                if missing:
                    raise ValueError(f"positions: missing column(s) {sorted(missing)}")
            else:
                frame = pd.DataFrame({"account": pd.Series([], dtype=object), "instrument": pd.Series([], dtype=object),
                                      "quantity": pd.Series([], dtype=float)})
            inst = self._index.get_indexer(pd.Index(frame["instrument"]))  # -1: unknown
            if (inst < 0).any():
                k = _first(inst < 0)
                raise ValueError(f"positions row {k}: unknown instrument {frame['instrument'].iloc[k]!r}")
            qty = _numeric_column(frame, "quantity")
            bad = ~np.isfinite(qty)
            if bad.any():
                k = _first(bad)
                raise ValueError(f"positions row {k}: quantity must be finite, got {qty[k]}")
            missing_acc = frame["account"].isna().to_numpy()
            if missing_acc.any():
                raise ValueError(f"positions row {_first(missing_acc)}: missing account")
            if MODE_COLUMN in frame.columns:
                col = frame[MODE_COLUMN]
                values = col.where(col.notna(), mode).astype(object).to_numpy()
                ok = np.isin(values, ["cross", "isolated"])
                if not ok.all():
                    k = _first(~ok)
                    raise ValueError(f"positions row {k}: {MODE_COLUMN} must be 'cross' or 'isolated', got {col.iloc[k]!r}")
                iso = values == "isolated"
            else:
                iso = np.full(len(frame), mode == "isolated")
            upnl = None
            if UPNL_COLUMN in frame.columns:
                upnl = _numeric_column(frame, UPNL_COLUMN, allow_missing=True)
                if np.isinf(upnl).any():
                    k = _first(np.isinf(upnl))
                    raise ValueError(f"positions row {k}: {UPNL_COLUMN} must be finite, got {upnl[k]}")
                upnl = np.nan_to_num(upnl)
        if names_in is None:
            codes, uniques = pd.factorize(frame["account"])
            names = list(uniques)
        else:
            names = list(names_in)
            codes = acc
        index = {name: k for k, name in enumerate(names)}
        more = list(extra) + ([] if coll is None else list(coll["account"]))
        for name in more:
            if name is None or (isinstance(name, float) and np.isnan(name)):
                raise ValueError("accounts: an account name is missing (None/NaN)")
            if name not in index:
                index[name] = len(names)
                names.append(name)
        acc = np.asarray(codes, dtype=np.int64)
        n_acc = len(names)
        names = pd.Index(names, dtype=object)
        coll_codes = None if coll is None else np.array([index[a] for a in coll["account"]], dtype=np.int64)

        upnl_usd = None
        if upnl is not None:
            fx_row = self.market.unit_fx[self.market.unit_of_row[inst]]
            upnl_usd = np.bincount(acc, upnl * fx_row, minlength=n_acc)
        coll_usd = None
        if coll is not None:
            fx = np.array([self._fx_or_raise(c, k) for k, c in enumerate(coll["currency"])])
            haircut = np.array([self._haircut(c) for c in coll["currency"]])
            amount = coll["amount"].to_numpy(dtype=float)
            value = np.where(amount > 0, amount * (1.0 - haircut), amount) * fx
            coll_usd = np.bincount(coll_codes, value, minlength=n_acc)

        # aggregate repeated (account, instrument, isolation) rows; drop what nets to zero
        n_inst = len(self.instruments)
        key = (acc * n_inst + inst) * 2 + iso.astype(np.int64)
        uniq, inverse = np.unique(key, return_inverse=True)
        total = np.bincount(inverse, qty, minlength=len(uniq))
        keep = total != 0.0
        uniq, total = uniq[keep], total[keep]
        return _Positions(
            names=np.asarray(names, dtype=object),
            account=uniq // 2 // n_inst,
            instrument=(uniq // 2) % n_inst,
            quantity=total,
            isolated=(uniq % 2).astype(bool),
            upnl_usd=upnl_usd,
            collateral_usd=coll_usd,
        )

    def _fx_or_raise(self, currency, row: int) -> float:
        try:
            return self.market_snapshot.fx_rate(currency)
        except ValueError as exc:
            raise ValueError(f"collateral row {row}: {exc}") from None

    def _haircut(self, currency: str) -> float:
        h = self.model.collateral_haircut
        if isinstance(h, Mapping):
            return float(h.get(currency, h.get("default", 0.0)))
        return float(h)

    def book(self, positions, accounts: Iterable | None = None) -> Book:
        """Positions -> :class:`Book`. `positions` is a DataFrame or records with columns ``account``,
        ``instrument`` (id) and ``quantity``; repeated (account, instrument) rows add up (and rows that
        net to zero drop out). Accounts named in `accounts` but without positions get an empty
        (zero-margin) book."""
        pos = self._positions(positions, accounts, None, "cross")
        order = np.argsort(pos.account, kind="stable")
        start = np.zeros(len(pos.names) + 1, dtype=np.int64)
        np.cumsum(np.bincount(pos.account, minlength=len(pos.names)), out=start[1:])
        return Book(pos.names, start, pos.instrument[order].astype(np.int32), pos.quantity[order])

    def pnl(self, book: Book) -> np.ndarray:
        """Scenario P&L per account and risk unit, (accounts, units, scenarios)."""
        return kernels.net(self.counted_risk, self.market.unit_of_row, len(self.units), book.account_start,
                           book.instrument, book.quantity, threads=self.threads)

    # -- margin ------------------------------------------------------------------------------

    def margin(self, positions, accounts: Iterable | None = None, *, collateral=None,
               mode: str | None = None) -> MarginResult:
        """IM, MM, the worst scenario and the component breakdown of every account of `positions`.

        `positions`: a :class:`Book`, a DataFrame or records with ``account``, ``instrument``,
        ``quantity`` and optionally ``margin_mode`` ("cross" / "isolated" per position; default the
        model's ``mode`` or `mode`) and ``unrealised_pnl`` (settlement currency, counted in equity).
        `collateral`: balances per account and currency -- a DataFrame or records with ``account``,
        ``currency``, ``amount``, or a mapping ``{account: {currency: amount}}``; positive balances
        count at (1 - haircut) of their USD value, debts in full. Inputs are never modified.
        """
        pos = self._positions(positions, accounts, collateral, mode)
        model, sc = self.model, self.scenario_set
        m = self.market
        n_acc = len(pos.names)
        labels = sc.labels
        pr = self._pairs(pos)
        owner, account_pnl = pr.owner, pr.account_pnl
        pos_pair, pair_account, pair_unit = pr.pos_pair, pr.pair_account, pr.pair_unit
        pair_pnl, weighted, pair_scan, pair_worst = pr.pair_pnl, pr.weighted, pr.pair_scan, pr.pair_worst
        n_pairs = len(pair_unit)
        n_iso = pr.n_pseudo - n_acc

        # --- nodes of the netting level -------------------------------------------------------
        node_scan, node_worst, node_fx, node_name, node_pseudo, to_node = self._scan_nodes(
            weighted, pair_account, pair_unit, pair_scan, pair_worst)
        n_nodes = len(node_scan)
        unit_fx = m.unit_fx

        # --- add-ons, per pair in settlement currency, into the nodes in node currency -------------
        comps = model.components
        combine = [a.combine for a in model.addons]
        pair_charge = np.zeros((len(comps), n_pairs))
        if comps and n_pairs:
            ctx = self._context(pos, pos_pair, pair_account, pair_unit, pair_pnl, pair_scan, pair_worst, n_acc + n_iso)
            for k, (addon, params) in enumerate(zip(model.addons, self._addon_params)):
                charge = np.asarray(addon.compute(ctx, params), dtype=float)
                if charge.shape != (n_pairs,) or not np.all(np.isfinite(charge)) or (charge < 0).any():
                    raise RuntimeError(f"add-on {addon.name!r} returned an invalid charge")  # pragma: no cover
                pair_charge[k] = charge
        node_charge = np.zeros((len(comps), n_nodes))
        for k in range(len(comps)):  # per component: pairs' charges in USD, summed into their node
            node_charge[k] = np.bincount(to_node, pair_charge[k] * unit_fx[pair_unit], minlength=n_nodes) / node_fx
        is_add = np.array([c == "add" for c in combine], dtype=bool)
        is_credit = np.array([c == "credit" for c in combine], dtype=bool)
        is_floor = np.array([c == "floor" for c in combine], dtype=bool)
        base = node_scan + node_charge[is_add].sum(axis=0)
        credits = node_charge[is_credit].sum(axis=0)
        applied = np.minimum(credits, base)
        net = base - applied
        floors = node_charge[is_floor] if is_floor.any() else np.zeros((0, n_nodes))
        top_floor = floors.max(axis=0) if len(floors) else np.zeros(n_nodes)
        uplift = np.maximum(top_floor - net, 0.0)
        requirement = net + uplift
        # contribution of each component to the node requirement (they add up to it)
        contrib = np.zeros((len(comps), n_nodes))
        contrib[is_add] = node_charge[is_add]
        with np.errstate(divide="ignore", invalid="ignore"):
            share = np.where(credits > 0, applied / credits, 0.0)
        contrib[is_credit] = -node_charge[is_credit] * share
        if len(floors):
            binding = np.argmax(floors, axis=0)
            floor_rows = np.flatnonzero(is_floor)
            contrib[floor_rows[binding], np.arange(n_nodes)] += uplift

        # --- accounts ---------------------------------------------------------------------------
        node_owner = owner[node_pseudo]
        scale = node_fx / self._report_fx

        def per_account(values):
            return np.bincount(node_owner, values * scale, minlength=n_acc)

        risk = per_account(requirement)
        scan_total = per_account(node_scan)
        scan_usd = node_scan * node_fx
        worst_unit = np.full(n_acc, None, dtype=object)
        worst_scenario = np.full(n_acc, None, dtype=object)
        if n_nodes:
            order = np.lexsort((-scan_usd, node_owner))
            owners_sorted = node_owner[order]
            first = order[np.r_[True, owners_sorted[1:] != owners_sorted[:-1]]]
            costly = first[scan_usd[first] > 0]
            worst_unit[node_owner[costly]] = node_name[costly]
            worst_scenario[node_owner[costly]] = np.asarray(labels, dtype=object)[node_worst[costly]]
        columns = {
            "im": model.im_factor * risk,
            "mm": model.mm_factor * risk,
            "risk": risk,
            "worst_unit": worst_unit,
            "worst_scenario": worst_scenario,
            "scan_risk": scan_total,
        }
        for k, name in enumerate(comps):
            columns[name] = per_account(contrib[k])
        equity = np.full(n_acc, np.nan)
        if pos.collateral_usd is not None or pos.upnl_usd is not None:
            equity = np.zeros(n_acc)
            if pos.collateral_usd is not None:
                equity += pos.collateral_usd
            if pos.upnl_usd is not None:
                equity += pos.upnl_usd
            equity /= self._report_fx
        mm = columns["mm"]
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(mm == 0, 0.0, np.where(equity > 0, mm / equity, np.inf))
        ratio = np.where(np.isnan(equity), np.nan, ratio)
        columns["equity"] = equity
        columns["available"] = equity - columns["im"]
        columns["margin_ratio"] = ratio
        columns["liquidation"] = pd.array(np.where(np.isnan(equity), None, equity < mm), dtype="boolean")
        accounts_frame = pd.DataFrame(columns, index=pd.Index(pos.names, name="account"))

        by_unit = self._by_unit(pos.names, owner, pair_account, pair_unit, pair_scan, pair_worst, pair_charge, comps)
        return MarginResult(accounts_frame, by_unit, account_pnl, list(self.units), labels, comps, model.currency)

    def _pairs(self, pos: _Positions) -> _Pairs:
        """Pseudo-accounts (accounts for cross positions, one per isolated position) and their
        (pseudo-account, risk unit) pairs with scenario P&L and standalone worst loss."""
        sc, m = self.scenario_set, self.market
        n_acc = len(pos.names)
        n_units = len(self.units)
        unit_of_row = m.unit_of_row
        n_iso = int(pos.isolated.sum())
        pseudo = pos.account.copy()
        pseudo[pos.isolated] = n_acc + np.arange(n_iso)
        owner = np.concatenate([np.arange(n_acc), pos.account[pos.isolated]])
        pos_unit = unit_of_row[pos.instrument]
        # cross: dense P&L per account (the kernels' sparse product); isolated: q * R[i]
        cross = ~pos.isolated
        order = np.argsort(pos.account[cross], kind="stable")
        start = np.zeros(n_acc + 1, dtype=np.int64)
        np.cumsum(np.bincount(pos.account[cross], minlength=n_acc), out=start[1:])
        risk = self.counted_risk
        dense = kernels.net(risk, unit_of_row, n_units, start,
                            pos.instrument[cross][order].astype(np.int32),
                            np.ascontiguousarray(pos.quantity[cross][order]), threads=self.threads)
        iso_pnl = pos.quantity[pos.isolated, None] * risk[pos.instrument[pos.isolated]]
        if n_iso:  # the accounts' netted P&L over all their positions
            order_all = np.argsort(pos.account, kind="stable")
            start_all = np.zeros(n_acc + 1, dtype=np.int64)
            np.cumsum(np.bincount(pos.account, minlength=n_acc), out=start_all[1:])
            account_pnl = kernels.net(risk, unit_of_row, n_units, start_all, pos.instrument[order_all].astype(np.int32),
                                      np.ascontiguousarray(pos.quantity[order_all]), threads=self.threads)
        else:
            account_pnl = dense
        pair_key, pos_pair = np.unique(pseudo * n_units + pos_unit, return_inverse=True)
        pair_account = pair_key // n_units
        pair_unit = pair_key % n_units
        pair_pnl = np.empty((len(pair_key), sc.n_scenarios))
        is_cross = pair_account < n_acc
        pair_pnl[is_cross] = dense[pair_account[is_cross], pair_unit[is_cross]]
        if n_iso:
            pair_pnl[pos_pair[pos.isolated]] = iso_pnl
        weighted = pair_pnl * sc.weight[pair_unit]
        if len(pair_key):
            pair_scan, pair_worst = kernels.worst_loss(np.ascontiguousarray(weighted))
        else:
            pair_scan, pair_worst = np.zeros(0), np.zeros(0, dtype=np.int32)
        return _Pairs(owner, account_pnl, pos_pair, pair_account, pair_unit, pair_pnl, weighted, pair_scan,
                      pair_worst, n_acc + n_iso)

    def context(self, positions, accounts: Iterable | None = None, *, mode: str | None = None) -> _addons.Context:
        """The :class:`marginkernel.addons.Context` add-ons compute from for these positions (to
        evaluate or test an add-on on its own: ``addon(engine.context(positions))``)."""
        pos = self._positions(positions, accounts, None, mode)
        pr = self._pairs(pos)
        return self._context(pos, pr.pos_pair, pr.pair_account, pr.pair_unit, pr.pair_pnl, pr.pair_scan,
                             pr.pair_worst, pr.n_pseudo)

    def _scan_nodes(self, weighted, pair_account, pair_unit, pair_scan, pair_worst):
        """Scan risk per node of the netting level: (scan, worst, fx, name, pseudo-account, node of each pair)."""
        model, m = self.model, self.market
        n_pairs = len(pair_unit)
        unit_fx = m.unit_fx
        if model.netting == "risk_unit":
            node_fx = unit_fx[pair_unit]
            names = np.array(self.units, dtype=object)[pair_unit] if n_pairs else np.zeros(0, dtype=object)
            to_node = np.arange(n_pairs)  # a node per pair
            if model.measure == "worst_loss":
                return pair_scan, pair_worst, node_fx, names, pair_account, to_node
            scan, worst = self._measure(weighted)
            return scan, worst, node_fx, names, pair_account, to_node
        # currency level nodes first
        cur = self._unit_cur[pair_unit]
        n_cur = len(self._currencies)
        cur_key, pair_cur = np.unique(pair_account * n_cur + cur, return_inverse=True)
        cur_fx = self._cur_fx[cur_key % n_cur]
        if model.netting == "currency":
            g = self._gain_factors(self.units, m.unit_underlying)[pair_unit]
            cap = model.gain_cap / cur_fx
            joint = _haircut_sum(weighted, g, pair_cur, len(cur_key), cap)
            scan, worst = self._measure(joint)
            names = np.array(self._currencies, dtype=object)[cur_key % n_cur]
            return scan, worst, cur_fx, names, cur_key // n_cur, pair_cur
        # account level: currencies net fully, then haircut across currencies in USD
        cur_pnl = _group_sum(weighted, pair_cur, len(cur_key)) * cur_fx[:, None]
        g = self._gain_factors(self._currencies, self._currencies)[cur_key % n_cur]
        acc_key, cur_acc = np.unique(cur_key // n_cur, return_inverse=True)
        joint = _haircut_sum(cur_pnl, g, cur_acc, len(acc_key), np.full(len(acc_key), model.gain_cap))
        scan, worst = self._measure(joint)
        names = np.full(len(acc_key), None, dtype=object)
        return scan, worst, np.ones(len(acc_key)), names, acc_key, cur_acc[pair_cur]

    def _measure(self, joint: np.ndarray):
        model, sc = self.model, self.scenario_set
        if joint.shape[0] == 0:
            return np.zeros(0), np.zeros(0, dtype=np.int64)
        joint = np.ascontiguousarray(joint)
        if model.measure == "worst_loss":
            return kernels.worst_loss(joint)
        var, es = kernels.value_at_risk(joint, model.confidence, sc.probability)
        return np.maximum(0.0, var if model.measure == "var" else es), np.argmin(joint, axis=1)

    def _gain_factors(self, names, fallbacks) -> np.ndarray:
        g = self.model.gain_factor
        if not isinstance(g, Mapping):
            return np.full(len(names), float(g))
        return np.array([g.get(n, g.get(f, g.get("default", 1.0))) for n, f in zip(names, fallbacks)], dtype=float)

    def _context(self, pos, pos_pair, pair_account, pair_unit, pair_pnl, pair_scan, pair_worst, n_pseudo):
        inst, m, sc = self.instruments, self.market, self.scenario_set
        if self._month is None:
            self._month = _addons.instrument_months(inst.expiry)
        units = _addons.instrument_units(inst.kind, inst.settlement, inst.multiplier, m.forward)
        notional = np.where(inst.settlement == 0, units * m.forward, units)
        return _addons.Context(
            kind=inst.kind, settlement=inst.settlement, multiplier=inst.multiplier, forward=m.forward,
            expiry_years=m.expiry_years, unit_of_row=m.unit_of_row, delta=self.deltas, units=units,
            notional=notional, month=self._month, unit_names=list(self.units),
            unit_underlying=list(m.unit_underlying), unit_currency=list(m.unit_currency), unit_spot=m.unit_spot,
            unit_fx=m.unit_fx, price_multiplier=sc.price_multiplier, vol_shift=sc.vol_shift, weight=sc.weight,
            pos_pair=pos_pair, pos_instrument=pos.instrument, pos_quantity=pos.quantity,
            pair_account=pair_account, pair_unit=pair_unit, pair_pnl=pair_pnl, pair_scan=pair_scan,
            pair_worst=pair_worst, n_accounts=n_pseudo,
        )

    def _by_unit(self, names, owner, pair_account, pair_unit, pair_scan, pair_worst, pair_charge, comps):
        n_units = len(self.units)
        labels = np.asarray(self.scenario_set.labels, dtype=object)
        if len(pair_unit) == 0:
            cols = ["account", "risk_unit", "currency", "loss", "loss_usd", "worst_scenario", *comps]
            return pd.DataFrame({c: [] for c in cols})
        key_all = owner[pair_account] * n_units + pair_unit
        key, grp = np.unique(key_all, return_inverse=True)
        loss = np.bincount(grp, pair_scan, minlength=len(key))
        order = np.lexsort((-pair_scan, grp))
        first = order[np.r_[True, grp[order][1:] != grp[order][:-1]]]
        worst = np.empty(len(key), dtype=object)
        worst[grp[first]] = labels[pair_worst[first]]
        u = key % n_units
        frame = {
            "account": names[key // n_units],
            "risk_unit": np.array(self.units, dtype=object)[u],
            "currency": np.array(self.market.unit_currency, dtype=object)[u],
            "loss": loss,
            "loss_usd": loss * self.market.unit_fx[u],
            "worst_scenario": worst,
        }
        for k, name in enumerate(comps):
            frame[name] = np.bincount(grp, pair_charge[k], minlength=len(key))
        return pd.DataFrame(frame)


def _grouping(group: np.ndarray, n_groups: int):
    """The (groups x items) 0/1 sparse matrix that sums items into their group."""
    from scipy import sparse  # imported when first needed: keeps `import marginkernel` light

    n = len(group)
    return sparse.csr_matrix((np.ones(n), (group, np.arange(n))), shape=(n_groups, n))


def _group_sum(values: np.ndarray, group: np.ndarray, n_groups: int) -> np.ndarray:
    """Rows of `values` summed per group (rows alone in their group are copied)."""
    return _haircut_sum(values, np.ones(len(group)), group, n_groups, np.full(n_groups, np.inf))


def _haircut_sum(pnl: np.ndarray, gain_factor: np.ndarray, group: np.ndarray, n_groups: int,
                 cap: np.ndarray) -> np.ndarray:
    """Per group and scenario: sum of the children's losses + min(sum of gain_factor * gains, cap).

    A group with one child keeps that child's P&L as it is: scaling or capping its gains changes
    neither its worst loss nor, when it has a loss, its worst scenario."""
    counts = np.bincount(group, minlength=n_groups)
    out = np.empty((n_groups, pnl.shape[1]))
    single = counts[group] == 1
    out[group[single]] = pnl[single]
    multi = ~single
    if multi.any():
        rows = np.flatnonzero(multi)
        keys, local = np.unique(group[rows], return_inverse=True)
        to_group = _grouping(local, len(keys))
        sub = pnl[rows]
        losses = to_group @ np.minimum(sub, 0.0)
        if np.all(gain_factor[rows] == 1.0) and np.all(np.isinf(cap[keys])):
            out[keys] = losses + to_group @ np.maximum(sub, 0.0)
        else:
            gains = to_group @ (np.maximum(sub, 0.0) * gain_factor[rows, None])
            out[keys] = losses + np.minimum(gains, cap[keys, None])
    return out


def _as_frame(value, name: str) -> pd.DataFrame:
    if isinstance(value, pd.DataFrame):
        return value
    if isinstance(value, Mapping):
        try:
            return pd.DataFrame(value)
        except ValueError as exc:
            raise ValueError(f"{name}: cannot read as a table: {exc}") from None
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise TypeError(f"{name}: expected a DataFrame, records or a Book, got {type(value).__name__}")
    rows = list(value)
    for k, r in enumerate(rows):
        if not isinstance(r, Mapping):
            raise TypeError(f"{name} row {k}: expected a mapping, got {type(r).__name__}")
    return pd.DataFrame(rows)


def _numeric_column(frame: pd.DataFrame, column: str, allow_missing: bool = False) -> np.ndarray:
    """A column as float64; TypeError naming the column and the first row that is not a number."""
    values = frame[column]
    if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype):
        return values.to_numpy(dtype=np.float64, na_value=np.nan)
    obj = values.astype(object).to_numpy()
    missing = np.array([v is None or (isinstance(v, float) and np.isnan(v)) for v in obj], dtype=bool)
    coerced = pd.to_numeric(pd.Series(obj, dtype=object).where(~missing, np.nan), errors="coerce").to_numpy(dtype=float)
    is_bool = np.array([isinstance(v, (bool, np.bool_)) for v in obj], dtype=bool)
    bad = is_bool | (np.isnan(coerced) & ~missing)
    if not allow_missing:
        bad |= missing & ~np.array([isinstance(v, float) for v in obj], dtype=bool)
    if bad.any():
        k = _first(bad)
        raise TypeError(f"positions.{column}: must be numeric; row {k} has {obj[k]!r}")
    return coerced


def engine_from_frames(instruments, market: Mapping | Market, model: MarginModel, **kwargs) -> Engine:
    """Convenience: instruments as a DataFrame or records, market as a mapping or :class:`Market`."""
    inst = instruments if isinstance(instruments, Instruments) else (
        Instruments.from_frame(instruments) if isinstance(instruments, pd.DataFrame) else Instruments.from_records(instruments))
    mkt = market if isinstance(market, Market) else Market.from_dict(market)
    return Engine(inst, mkt, model, **kwargs)
