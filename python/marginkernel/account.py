"""Pre-trade risk: account state kept in C++, what-if and checks in well under a microsecond.

:class:`AccountBook` holds, for every account, its positions and its scenario P&L per risk unit,
cached and updated incrementally (DESIGN §2 "What-if is incremental"):

* ``add_fill(account, instrument, quantity)`` applies a trade: ``P[a, u] += q * R[i]``;
* ``what_if(account, instrument, quantity)`` gives the account's IM / MM after an order without
  changing anything: one fused pass over the order's risk unit (O(scenarios), no allocation);
* ``check(account, instrument, quantity, equity)`` accepts or rejects the order against equity;
* ``update_unit(unit, rows)`` applies a market update of one risk unit: ``P += Q * dR`` for the
  accounts holding it, nothing else is touched.

The margin rule is the simple one of the existing reductions (:func:`marginkernel.kernels.worst_loss`):
per risk unit u the worst weighted loss ``L_u = max(0, -min_s w[u, s] * h(P[a, u, s]))`` where ``h``
scales gains by ``gain_factor``; ``IM = sum_u fx[u] * L_u`` in the reporting currency (``fx[u]`` is
e.g. the unit's spot for a coin-settled unit, 1 for a USD-linear one) and ``MM = mm_factor * IM``.

Example::

    import numpy as np
    from marginkernel import kernels
    from marginkernel.account import AccountBook

    risk, _ = kernels.revalue(...)                     # R[i, s], once per market update
    book = AccountBook(risk, risk_unit, n_accounts=1000, weight=w, fx=spot_or_one,
                       gain_factor=0.0, mm_factor=0.8)
    book.add_fill(7, instrument=12, quantity=-5.0)
    w = book.what_if(7, 12, -1.0)                      # WhatIf(im=..., mm=..., worst_scenario=...)
    if book.check(7, 12, -1.0, equity=25_000.0).accepted:
        ...

Ids are plain integers: accounts ``0..n_accounts-1`` (more with :meth:`AccountBook.add_accounts`),
instruments are the rows of ``risk``, risk units the values of ``risk_unit``.

Errors: an unknown account, instrument or unit id raises :class:`UnknownIdError` (both a
``KeyError`` and a ``ValueError``); a NaN or infinite quantity, an order on an expired instrument or
any other bad value raises :class:`InputError` (a ``ValueError``) naming the field; in every case the
book is left unchanged.

Thread safety: every method may be called from any thread. Readers (``what_if``, ``check``,
``margin``, ...) share a per-account lock that ``add_fill`` takes exclusively, and market-wide
changes (``update_unit``, ``set_fx``, ``settle``, ``rebuild``, ``add_accounts``) take a book-wide
lock exclusively; the locks prefer writers. Bulk operations release the GIL. The per-order methods
keep it: releasing it costs 40-50 ns, more than another Python thread could use in the time.

Under this rule the gain factor never changes a loss: the haircut h is non-decreasing with
h(v) = v for v <= 0, so min h(P) = h(min P). It only picks the reported scenario of a unit with no
loss; it matters once haircut P&L of several netting levels is summed (a later, general rule).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from . import _core, kernels
from .kernels import as_array

__all__ = ["AccountBook", "WhatIf", "Check", "Margin", "UnitMargin", "UnknownIdError", "InputError"]

WhatIf = _core.WhatIf
Check = _core.Check
Margin = _core.Margin
UnitMargin = _core.UnitMargin
UnknownIdError = _core.UnknownIdError
InputError = _core.InputError

def _f64(name, value, ndim):
    return as_array(name, value, np.float64, ndim)


class AccountBook(_core.AccountBook):
    """Accounts with positions and cached scenario P&L per risk unit; see the module docstring.

    Parameters
    ----------
    risk : (n_instruments, n_scenarios) float array
        Risk arrays ``R[i, s]`` (P&L of one unit of instrument i in scenario s, in its risk unit's
        settlement currency), e.g. from :func:`marginkernel.kernels.revalue`. Copied once.
    risk_unit : (n_instruments,) int array
        Risk unit of each instrument, in ``[0, n_units)``.
    n_units : int, optional
        Number of risk units (default ``risk_unit.max() + 1``).
    n_accounts : int
        Empty accounts to start with, ids ``0..n_accounts-1``.
    weight : (n_units, n_scenarios) float array, optional
        Scenario weights (cover fractions) >= 0; default all 1.
    fx : (n_units,) float array, optional
        Reporting currency per unit of each risk unit's settlement currency, > 0; default all 1.
    gain_factor : float
        Gains are scaled by this before the worst case (Deribit ``pnl_offset``), >= 0.
    mm_factor : float
        ``MM = mm_factor * IM``.
    allow_risk_reducing : bool
        :meth:`check` also accepts orders that do not increase IM when equity falls short.
    expiry : (n_instruments,) float array, optional
        Years to expiry; orders on instruments with ``expiry <= 0`` are rejected. Default: none
        expire (``inf``).

    Per-order methods (C++; ids and scalars in, small records out):

    * ``what_if(account, instrument, quantity) -> WhatIf(im, mm, im_before, unit_loss, unit,
      worst_scenario)``
    * ``check(account, instrument, quantity, equity) -> Check(accepted, excess, im, mm, im_before,
      unit_loss, unit, worst_scenario)``
    * ``add_fill(account, instrument, quantity)``
    * ``margin(account) -> Margin(im, mm)``, ``unit_margin(account, unit) -> UnitMargin(loss, im,
      worst_scenario)``, ``position(account, instrument)``, ``positions(account) -> dict``

    Arrays: ``pnl(account)`` (P from the positions), ``weighted_pnl(account)`` (the cache,
    ``w * P``), ``risk_row(instrument)``, ``instruments_of(unit)``.

    Book-wide: ``update_unit``, ``update_unit_from_market``, ``set_fx(unit, fx)``,
    ``set_expiry(instrument, years)``, ``expiry(instrument)``, ``settle(instrument)``,
    ``rebuild(threads=1)``, ``add_accounts(count=1) -> first new id``.
    """

    def __init__(
        self,
        risk,
        risk_unit,
        n_units: int | None = None,
        *,
        n_accounts: int = 0,
        weight=None,
        fx=None,
        gain_factor: float = 1.0,
        mm_factor: float = 1.0,
        allow_risk_reducing: bool = True,
        expiry=None,
    ):
        risk = _f64("risk", risk, 2)
        risk_unit = as_array("risk_unit", risk_unit, np.int32, 1)
        if n_units is None:
            n_units = int(risk_unit.max()) + 1 if risk_unit.size else 1
        if int(n_accounts) < 0:
            raise ValueError(f"n_accounts: must be >= 0, got {n_accounts}")
        super().__init__(
            risk,
            risk_unit,
            int(n_units),
            None if weight is None else _f64("weight", weight, 2),
            None if fx is None else _f64("fx", fx, 1),
            float(gain_factor),
            float(mm_factor),
            bool(allow_risk_reducing),
            int(n_accounts),
            None if expiry is None else _f64("expiry", expiry, 1),
        )

    def add_fills(self, accounts, instruments, quantities) -> None:
        """Applies many fills in order. All are checked first: if one is bad, none is applied."""
        super().add_fills(
            as_array("accounts", accounts, np.int64, 1),
            as_array("instruments", instruments, np.int32, 1),
            _f64("quantities", quantities, 1),
        )

    def update_unit(self, unit: int, rows, fx: float | None = None, *, threads: int = 1) -> None:
        """Market update of one risk unit.

        ``rows[k]`` is the new risk row of instrument ``instruments_of(unit)[k]`` (shape
        ``(len(instruments_of(unit)), n_scenarios)``); ``fx`` the unit's new reporting rate. Every
        account holding the unit gets ``P += sum_i q_i * (R'[i] - R[i])``, then its unit loss and IM
        are refreshed; other units are not touched. Rounding drifts by about ``eps * sum |q| |R|``
        per update; :meth:`rebuild` recomputes everything from the positions.
        """
        super().update_unit(int(unit), _f64("rows", rows, 2), None if fx is None else float(fx), int(threads))

    def update_unit_from_market(
        self, unit: int, instruments: Mapping, scenarios: Mapping, fx: float | None = None, *, threads: int = 1
    ) -> None:
        """Re-revalues only the instruments of ``unit`` and applies them with :meth:`update_unit`.

        ``instruments`` maps the per-instrument arguments of :func:`marginkernel.kernels.revalue`
        (``kind``, ``settlement``, ``risk_unit``, ``strike``, ``expiry``, ``multiplier``, ``forward``,
        ``discount``, ``vol``) to arrays over all the book's instruments; ``scenarios`` holds the
        rest of its arguments (``spot``, ``price_multiplier``, ``vol_shift``, ``time_shift``,
        ``vol_shock``, ...) for the new market.
        """
        names = ("kind", "settlement", "risk_unit", "strike", "expiry", "multiplier", "forward", "discount", "vol")
        missing = [k for k in names if k not in instruments]
        if missing:
            raise ValueError(f"instruments: missing {missing}")
        dtypes = {"kind": np.int8, "settlement": np.int8, "risk_unit": np.int32}
        cols = [as_array(k, instruments[k], dtypes.get(k, np.float64), 1) for k in names]
        sc = dict(scenarios)
        unknown = set(sc) - {"spot", "price_multiplier", "vol_shift", "time_shift", "vol_shock", "tau_floor_days",
                             "short_power", "long_power", "vol_up_floor"}
        if unknown:
            raise ValueError(f"scenarios: unknown argument(s) {sorted(unknown)}")
        shock = sc.get("vol_shock", "none")
        if shock not in kernels.VOL_SHOCKS:
            raise ValueError(f"vol_shock: must be one of {sorted(kernels.VOL_SHOCKS)}, got {shock!r}")
        vol_shift, time_shift = sc.get("vol_shift"), sc.get("time_shift")
        # The C++ AccountBook::update_unit revalues the unit's rows itself (no Python copy of it).
        self._update_unit_from_market(
            int(unit), *cols, _f64("spot", sc["spot"], 1), _f64("price_multiplier", sc["price_multiplier"], 2),
            None if vol_shift is None else _f64("vol_shift", vol_shift, 2),
            None if time_shift is None else _f64("time_shift", time_shift, 1), kernels.VOL_SHOCKS[shock],
            float(sc.get("tau_floor_days", 1.0)), float(sc.get("short_power", 0.0)), float(sc.get("long_power", 0.0)),
            float(sc.get("vol_up_floor", 0.0)), None if fx is None else float(fx), int(threads))


# ------------------------------------------------------------------------------------------------
# The book is the model: the full generic model of an Engine, held per account in C++
# ------------------------------------------------------------------------------------------------

ModelWhatIf = _core.ModelWhatIf
ModelCheck = _core.ModelCheck

#: add-on types the book holds per (account, risk unit) pair, by the C++ AddOnType code
BOOK_ADDONS = {
    "roll_shock": 0, "delta_shock": 1, "short_option_minimum": 2, "per_contract_minimum": 3,
    "concentration": 4, "contingency": 5,
}
_NETTING = {"risk_unit": 0, "currency": 1, "account": 2}
_KIND_NAMES = ("future", "perpetual", "call", "put", "spot")
_PER_UNIT_KEYS = ("annualised_move_risk", "min_annualised_move", "threshold", "shock", "rate",
                  "option_rate", "future_rate")


class ModelBook(_core.ModelBook):
    """The margin model of an :class:`~marginkernel.engine.Engine` held per account (C++ state),
    built by :func:`account_book`. ``margin(a)``, ``what_if(a, i, q)``, ``check(a, i, q[, equity])``,
    ``add_fill``, ``nodes(a)``, ``pair(a, u)``, ``set_collateral`` and ``update_unit`` take integer
    ids: accounts in :attr:`accounts` order, instruments in the engine's instrument order, units in
    ``engine.units`` order. :meth:`result` gives one account's figures with names (as the columns of
    ``Engine.margin(...).accounts``). See docs/book.md."""

    accounts: list
    units: list
    currencies: list
    collateral_currencies: list
    components: tuple
    labels: tuple

    def result(self, account: int) -> dict:
        """The account's margin as a dict named like ``MarginResult.accounts`` columns."""
        m = self.margin(account)
        out = {k: m[k] for k in ("im", "mm", "risk", "scan_risk")}
        for name, value in zip(self.components, m["components"]):
            out[name] = value
        for k in ("equity", "available", "margin_ratio", "liquidation"):
            out[k] = m[k]
        node, worst = m["worst_node"], m["worst_scenario"]
        if worst < 0:
            out["worst_unit"] = out["worst_scenario"] = None
        else:
            netting = self.netting
            out["worst_unit"] = (self.units[node] if netting == "risk_unit"
                                 else self.currencies[node] if netting == "currency" else None)
            out["worst_scenario"] = self.labels[worst]
        return out

    def account_id(self, name) -> int:
        """The integer id of an account name."""
        try:
            return self._account_index[name]
        except KeyError:
            raise UnknownIdError(f"account: unknown account {name!r}") from None

    def refresh(self, engine, *, threads: int = 1) -> None:
        """Market refresh from `engine` (same instruments and model, new market): every risk unit's
        risk rows, forwards, vols, discounts, expiries, spot and FX; holders are recomputed from their
        positions (as :meth:`rebuild`)."""
        m = engine.market
        risk = np.ascontiguousarray(engine.counted_risk, dtype=np.float64)
        expiry = _book_expiry(engine)
        for u in range(len(self.units)):
            ids = self.instruments_of(u)
            fx = float(m.unit_fx[u])
            self.update_unit(u, risk[ids], forward=np.asarray(m.forward, float)[ids],
                             discount=np.asarray(m.discount, float)[ids], vol=np.asarray(m.vol, float)[ids],
                             expiry=expiry[ids], spot=float(m.unit_spot[u]), fx=fx, threads=threads)


def _book_expiry(engine) -> np.ndarray:
    """Years to expiry per instrument; perpetuals and spot never expire (inf), whatever the market's
    placeholder (0) says."""
    kind = np.asarray(engine.instruments.kind)
    years = np.asarray(engine.market.expiry_years, dtype=np.float64).copy()
    years[(kind == 1) | (kind == 4)] = np.inf
    return years


def _per_key(spec, names, fallbacks, default: float) -> np.ndarray:
    if not isinstance(spec, Mapping):
        return np.full(len(names), float(spec))
    return np.array([spec.get(n, spec.get(f, spec.get("default", default))) for n, f in zip(names, fallbacks)],
                    dtype=np.float64)


def _addon_spec(addon, params: dict) -> dict:
    spec: dict = {"name": addon.name, "type": BOOK_ADDONS[addon.type]}
    for key in _PER_UNIT_KEYS:
        if key in params and key in getattr(addon, "per_unit", ()):
            spec[key] = np.ascontiguousarray(params[key], dtype=np.float64)
    kinds = params.get("kinds")
    if kinds:
        spec["kinds"] = sum(1 << _KIND_NAMES.index(k) for k in kinds)
    spec["usd"] = params.get("currency") == "USD"
    spec["notional_basis"] = params.get("basis") == "notional"
    spec["max_method"] = params.get("method") == "max"
    spec["gross_delta"] = params.get("measure") == "gross_delta"
    spec["short_only"] = params.get("option_side") == "short"
    tiers = params.get("tiers")
    spec["tiers"] = None if tiers is None else [(float(a), float(b)) for a, b in tiers]
    return spec


def _refuse_unheld(model) -> None:
    if model.measure != "worst_loss":
        raise ValueError(f"model.measure: {model.measure!r} is not held incrementally by the book (worst_loss only)")
    for a in model.addons:
        if a.type not in BOOK_ADDONS:
            raise ValueError(f"addons.{a.name}: add-on type {a.type!r} is not held incrementally by the book "
                             f"(held: {sorted(BOOK_ADDONS)})")
    if len(model.addons) > 8:
        raise ValueError(f"addons: the book holds at most 8 add-ons, the model has {len(model.addons)}")


def _report_fx(engine, currencies: list, fx: np.ndarray) -> float:
    cur = engine.model.currency
    snapshot = getattr(engine, "market_snapshot", None)  # read defensively: not a public name
    if snapshot is not None and hasattr(snapshot, "fx_rate"):
        return float(snapshot.fx_rate(cur))
    if cur in currencies:
        return float(fx[currencies.index(cur)])
    if cur == "USD":
        return 1.0
    raise ValueError(f"model.currency: no USD rate for the reporting currency {cur!r}")


def _collateral_table(engine, collateral) -> tuple[list, np.ndarray, np.ndarray, list]:
    """(currencies, USD rates, haircuts, rows (account, currency, amount)) of the collateral."""
    if collateral is None:
        return [], np.zeros(0), np.zeros(0), []
    from .market import collateral_frame

    frame = collateral_frame(collateral)
    rows = list(zip(frame["account"], frame["currency"], frame["amount"].astype(float)))
    currencies = list(dict.fromkeys(frame["currency"]))
    snapshot = getattr(engine, "market_snapshot", None)
    fx = []
    for c in currencies:
        if snapshot is None:
            raise ValueError("collateral: the engine has no market snapshot to price collateral with")
        fx.append(float(snapshot.fx_rate(c)))
    h = engine.model.collateral_haircut
    haircut = [float(h.get(c, h.get("default", 0.0))) if isinstance(h, Mapping) else float(h) for c in currencies]
    return currencies, np.array(fx), np.array(haircut), rows


def account_book(engine, positions=None, accounts=None, *, collateral=None, allow_risk_reducing: bool = True,
                 threads: int = 1) -> ModelBook:
    """The book of `engine`: C++ state holding the engine's model, instruments, market and scenario
    set, with `positions` (DataFrame or records with ``account``, ``instrument`` (id), ``quantity``)
    and `collateral` (as :meth:`Engine.margin` takes it) loaded. ``book.margin(a)`` equals
    ``engine.margin(...)`` for that account's positions; what-if and check run on the same state.

    Refused, with an error naming them: a measure other than ``worst_loss``, add-ons that are not
    held per account (SPAN spreads, see docs/book.md), positions in expired instruments, and a
    ``margin_mode`` or ``unrealised_pnl`` column (the book uses the model's mode; equity comes from
    collateral)."""
    import pandas as pd

    model = engine.model
    _refuse_unheld(model)
    inst, m = engine.instruments, engine.market
    units = list(engine.units)
    currencies = list(dict.fromkeys(m.unit_currency))
    unit_currency = np.array([currencies.index(c) for c in m.unit_currency], dtype=np.int32)
    unit_fx = np.ascontiguousarray(m.unit_fx, dtype=np.float64)
    currency_fx = np.array([unit_fx[list(unit_currency).index(k)] for k in range(len(currencies))])
    coll_cur, coll_fx, coll_haircut, coll_rows = _collateral_table(engine, collateral)
    gain = np.ones(0)
    if model.netting == "currency":
        gain = _per_key(model.gain_factor, units, list(m.unit_underlying), 1.0)
    elif model.netting == "account":
        gain = _per_key(model.gain_factor, currencies, currencies, 1.0)
    addons = [_addon_spec(a, a.resolve(units, list(m.unit_underlying))) for a in model.addons]
    f64 = np.float64
    expiry = _book_expiry(engine)
    instruments = {
        "kind": np.ascontiguousarray(inst.kind, dtype=np.int8),
        "settlement": np.ascontiguousarray(inst.settlement, dtype=np.int8),
        "risk_unit": np.ascontiguousarray(m.unit_of_row, dtype=np.int32),
        "strike": np.nan_to_num(np.asarray(inst.strike, f64)), "expiry": expiry,
        "multiplier": np.ascontiguousarray(inst.multiplier, dtype=f64),
        "forward": np.ascontiguousarray(m.forward, dtype=f64),
        "discount": np.ascontiguousarray(m.discount, dtype=f64), "vol": np.nan_to_num(np.asarray(m.vol, f64)),
    }
    market = {"unit_spot": np.ascontiguousarray(m.unit_spot, dtype=f64), "unit_fx": unit_fx,
              "unit_currency": unit_currency, "currency_fx": currency_fx,
              "report_fx": _report_fx(engine, currencies, currency_fx),
              "collateral_fx": np.ascontiguousarray(coll_fx, dtype=f64),
              "collateral_haircut": np.ascontiguousarray(coll_haircut, dtype=f64)}
    spec = {"netting": _NETTING[model.netting], "mode": 0 if model.mode == "cross" else 1,
            "im_factor": float(model.im_factor), "mm_factor": float(model.mm_factor), "gain_cap": float(model.gain_cap),
            "gain_factor": np.ascontiguousarray(gain, dtype=f64), "allow_risk_reducing": bool(allow_risk_reducing),
            "addons": addons}
    frame = None
    if positions is not None:
        frame = positions if isinstance(positions, pd.DataFrame) else pd.DataFrame(list(positions))
        for col in ("margin_mode", "unrealised_pnl"):
            if col in frame.columns and col == "unrealised_pnl":
                raise ValueError("positions.unrealised_pnl: not held by the book (equity comes from collateral)")
            if col in frame.columns and (frame[col].dropna() != model.mode).any():
                raise ValueError(f"positions.margin_mode: the book uses the model's mode {model.mode!r} for every position")
    names: list = []
    if frame is not None and len(frame):
        names = list(pd.unique(frame["account"]))
    for name in list(accounts or []) + [r[0] for r in coll_rows]:
        if name not in names:
            names.append(name)
    risk = np.ascontiguousarray(engine.counted_risk, dtype=f64)
    weight = np.ascontiguousarray(engine.scenario_set.weight, dtype=f64)
    book = ModelBook(risk, weight, instruments, market, spec, len(names))
    book.accounts = names
    book._account_index = {n: k for k, n in enumerate(names)}
    book.units, book.currencies, book.collateral_currencies = units, currencies, coll_cur
    book.components = tuple(model.components)
    book.labels = tuple(engine.scenario_set.labels)
    book.netting, book.isolated = model.netting, model.mode == "isolated"
    if frame is not None and len(frame):
        _load_positions(book, engine, frame, expiry)
    balances: dict = {}
    for name, cur, amount in coll_rows:  # repeated (account, currency) rows add up
        key = (book._account_index[name], coll_cur.index(cur))
        balances[key] = balances.get(key, 0.0) + amount
    if coll_cur:  # with collateral given, an account without a row has equity 0
        for a in range(len(names)):
            book.set_collateral(a, 0, balances.get((a, 0), 0.0))
    for (a, k), amount in balances.items():
        book.set_collateral(a, k, amount)
    return book


def _load_positions(book: ModelBook, engine, frame, expiry: np.ndarray) -> None:
    import pandas as pd

    missing = {"account", "instrument", "quantity"} - set(frame.columns)
    if missing:
        raise ValueError(f"positions: missing column(s) {sorted(missing)}")
    inst = pd.Index(engine.instruments.ids).get_indexer(pd.Index(frame["instrument"]))
    if (inst < 0).any():
        k = int(np.flatnonzero(inst < 0)[0])
        raise ValueError(f"positions row {k}: unknown instrument {frame['instrument'].iloc[k]!r}")
    qty = pd.to_numeric(frame["quantity"], errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(qty)
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise ValueError(f"positions row {k}: quantity must be finite, got {frame['quantity'].iloc[k]!r}")
    dead = ~(expiry[inst] > 0)
    if dead.any():
        k = int(np.flatnonzero(dead)[0])
        raise ValueError(f"positions row {k}: instrument {frame['instrument'].iloc[k]!r} has expired "
                         f"(expiry at or before the valuation time); the book refuses it")
    acc = np.array([book._account_index[a] for a in frame["account"]], dtype=np.int64)
    book.add_fills(acc, inst.astype(np.int32), qty)
