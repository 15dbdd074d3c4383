"""The book is the model: an :class:`~marginkernel.engine.Engine`'s full generic margin model held per
account in C++ (:class:`ModelBook`, built by :func:`account_book`), for pre-trade checks on the same
margin the end-of-day run computes. docs/book.md describes the design; :mod:`marginkernel.account`
re-exports these names.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from . import _core

__all__ = ["BOOK_ADDONS", "ModelBook", "ModelCheck", "ModelWhatIf", "account_book"]

UnknownIdError = _core.UnknownIdError

ModelWhatIf = _core.ModelWhatIf
ModelCheck = _core.ModelCheck

#: node measures the book holds, by the C++ Measure code
_MEASURES = {"worst_loss": 0, "var": 1, "es": 2}

#: add-on types the book holds per (account, risk unit) pair, by the C++ AddOnType code
BOOK_ADDONS = {
    "roll_shock": 0,
    "delta_shock": 1,
    "short_option_minimum": 2,
    "per_contract_minimum": 3,
    "concentration": 4,
    "contingency": 5,
    "intra_spread": 6,
    "inter_spread": 7,
}
_SPREAD_ADDONS = ("intra_spread", "inter_spread")
_NETTING = {"risk_unit": 0, "currency": 1, "account": 2}
_KIND_NAMES = ("future", "perpetual", "call", "put", "spot")
_PER_UNIT_KEYS = (
    "annualised_move_risk",
    "min_annualised_move",
    "threshold",
    "shock",
    "rate",
    "option_rate",
    "future_rate",
)


class ModelBook(_core.ModelBook):
    """The margin model of an :class:`~marginkernel.engine.Engine` held per account (C++ state),
    built by :func:`account_book`. ``margin(a)``, ``what_if(a, i, q)``, ``check(a, i, q[, equity])``,
    ``add_fill``, ``nodes(a)``, ``pair(a, u)``, ``set_collateral`` and ``update_unit`` take integer
    ids: accounts in :attr:`accounts` order, instruments in the engine's instrument order, units in
    ``engine.units`` order. :meth:`result` gives one account's figures with names (as the columns of
    ``Engine.margin(...).accounts``). See docs/book.md."""

    accounts: list[Any]
    units: list[str]
    currencies: list[str]
    collateral_currencies: list[str]
    components: tuple[str, ...]
    labels: tuple[str, ...]
    netting: str
    isolated: bool
    _account_index: dict[Any, int]
    _instrument_ids: list[str]
    _engine: Any

    def result(self, account: int) -> dict[str, Any]:
        """The account's margin as a dict named like ``MarginResult.accounts`` columns."""
        m = self.margin(account)
        out = {k: m[k] for k in ("im", "mm", "risk", "scan_risk")}
        out.update(zip(self.components, m["components"], strict=True))
        for k in ("equity", "available", "margin_ratio", "liquidation"):
            out[k] = m[k]
        node, worst = m["worst_node"], m["worst_scenario"]
        if worst < 0:
            out["worst_unit"] = out["worst_scenario"] = None
        else:
            netting = self.netting
            out["worst_unit"] = (
                self.units[node] if netting == "risk_unit" else self.currencies[node] if netting == "currency" else None
            )
            out["worst_scenario"] = self.labels[worst]
        return out

    def account_id(self, name: object) -> int:
        """The integer id of an account name."""
        try:
            return int(self._account_index[name])
        except KeyError:
            raise UnknownIdError(f"account: unknown account {name!r}") from None

    def refresh(self, engine: Any, *, threads: int = 1) -> None:
        """Market refresh from `engine` (same instruments and model, new market): every risk unit's
        risk rows, forwards, vols, discounts, expiries, spot and FX; holders are recomputed from their
        positions (as :meth:`rebuild`). All or nothing: if a unit's update is refused (e.g. a margin
        would not be finite), the units already refreshed get their previous market back."""
        if [str(i) for i in engine.instruments.ids] != self._instrument_ids or list(engine.units) != self.units:
            raise ValueError("engine: refresh needs the same instruments and risk units as the book")
        if any(a.type == "inter_spread" for a in engine.model.addons):
            old, new = self._engine.scenario_set, engine.scenario_set
            same = all(
                np.array_equal(getattr(old, k), getattr(new, k)) for k in ("price_multiplier", "vol_shift", "weight")
            )
            if not same:
                raise ValueError(
                    "engine.scenario_set: addons inter_spread prices SPAN price risk on the book's scenario "
                    "moves; refresh needs the same price multipliers, vol shifts and weights (build a new book)"
                )
        previous = self._engine
        done = 0
        try:
            for u in range(len(self.units)):
                self._apply_unit(engine, u, threads)
                done = u + 1
        except ValueError:
            for u in range(done):
                self._apply_unit(previous, u, threads)
            raise
        self._engine = engine

    def _apply_unit(self, engine: Any, u: int, threads: int) -> None:
        m = engine.market
        ids = self.instruments_of(u)
        self.update_unit(
            u,
            np.ascontiguousarray(engine.counted_risk, dtype=np.float64)[ids],
            forward=np.asarray(m.forward, float)[ids],
            discount=np.asarray(m.discount, float)[ids],
            vol=np.nan_to_num(np.asarray(m.vol, float))[ids],
            expiry=_book_expiry(engine)[ids],
            spot=float(m.unit_spot[u]),
            fx=float(m.unit_fx[u]),
            threads=threads,
        )


def _book_expiry(engine: Any) -> np.ndarray:
    """Years to expiry per instrument; perpetuals and spot never expire (inf), whatever the market's
    placeholder (0) says."""
    kind = np.asarray(engine.instruments.kind)
    years = np.asarray(engine.market.expiry_years, dtype=np.float64).copy()
    years[(kind == 1) | (kind == 4)] = np.inf
    return years


def _per_key(spec: Any, names: Sequence[str], fallbacks: Sequence[str], default: float) -> np.ndarray:
    if not isinstance(spec, Mapping):
        return np.full(len(names), float(spec))
    pairs = zip(names, fallbacks, strict=True)
    return np.array([spec.get(n, spec.get(f, spec.get("default", default))) for n, f in pairs], dtype=np.float64)


def _addon_spec(engine: Any, addon: Any, params: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": addon.name, "type": BOOK_ADDONS[addon.type]}
    if addon.type in _SPREAD_ADDONS:
        from .book_spreads import spread_spec  # only for models with SPAN spreads

        return {**spec, **spread_spec(engine, addon, params)}
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


def _spread_market(engine: Any) -> dict[str, Any]:
    """Delta spreads: each instrument's contract month code and the scenario set's moves per unit."""
    if not any(a.type in _SPREAD_ADDONS for a in engine.model.addons):
        return {}
    from .book_spreads import spread_market

    return spread_market(engine)


def _refuse_unheld(model: Any) -> None:
    if model.measure not in _MEASURES:
        raise ValueError(f"model.measure: {model.measure!r} is not held by the book (held: {sorted(_MEASURES)})")
    for a in model.addons:
        if a.type not in BOOK_ADDONS:
            raise ValueError(
                f"addons.{a.name}: add-on type {a.type!r} is not held incrementally by the book "
                f"(held: {sorted(BOOK_ADDONS)})"
            )
    if len(model.addons) > 8:
        raise ValueError(f"addons: the book holds at most 8 add-ons, the model has {len(model.addons)}")


def _report_fx(engine: Any, currencies: list[str], fx: np.ndarray) -> float:
    cur = engine.model.currency
    snapshot = getattr(engine, "market_snapshot", None)  # read defensively: not a public name
    if snapshot is not None and hasattr(snapshot, "fx_rate"):
        return float(snapshot.fx_rate(cur))
    if cur in currencies:
        return float(fx[currencies.index(cur)])
    if cur == "USD":
        return 1.0
    raise ValueError(f"model.currency: no USD rate for the reporting currency {cur!r}")


def _collateral_table(engine: Any, collateral: Any) -> tuple[list[str], np.ndarray, np.ndarray, list[Any]]:
    """(currencies, USD rates, haircuts, rows (account, currency, amount)) of the collateral."""
    if collateral is None:
        return [], np.zeros(0), np.zeros(0), []
    from .market import collateral_frame

    frame = collateral_frame(collateral)
    rows = list(zip(frame["account"], frame["currency"], frame["amount"].astype(float), strict=True))
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


def account_book(
    engine: Any,
    positions: Any = None,
    accounts: Iterable[Any] | None = None,
    *,
    collateral: Any = None,
    allow_risk_reducing: bool = True,
    threads: int = 1,
) -> ModelBook:
    """The book of `engine`: C++ state holding the engine's model, instruments, market and scenario
    set, with `positions` (DataFrame or records with ``account``, ``instrument`` (id), ``quantity``)
    and `collateral` (as :meth:`Engine.margin` takes it) loaded. ``book.margin(a)`` equals
    ``engine.margin(...)`` for that account's positions; what-if and check run on the same state.

    Every measure (``worst_loss``, ``var``, ``es``) is held at every netting level, with every add-on
    type the engine offers, SPAN's intra- and inter-commodity spreads included (docs/book.md).
    Refused, with an error naming them: add-on types the book does not know, more than 8 add-ons,
    positions in expired instruments, and a ``margin_mode`` or ``unrealised_pnl`` column (the book
    uses the model's mode; equity comes from collateral)."""
    model = engine.model
    _refuse_unheld(model)
    m = engine.market
    currencies = list(dict.fromkeys(m.unit_currency))
    coll_cur, coll_fx, coll_haircut, coll_rows = _collateral_table(engine, collateral)
    expiry = _book_expiry(engine)
    market = _market_arrays(engine, currencies, coll_fx, coll_haircut)
    spec = _model_spec(engine, currencies, allow_risk_reducing)
    frame = _positions_frame(positions, model)
    names: list[Any] = []
    if frame is not None and len(frame):
        names = list(frame["account"].drop_duplicates())
    for name in list(accounts or []) + [r[0] for r in coll_rows]:
        if name not in names:
            names.append(name)
    risk = np.ascontiguousarray(engine.counted_risk, dtype=np.float64)
    weight = np.ascontiguousarray(engine.scenario_set.weight, dtype=np.float64)
    book = ModelBook(risk, weight, _instrument_arrays(engine, expiry), market, spec, len(names))
    book.accounts = names
    book._account_index = {n: k for k, n in enumerate(names)}
    book.units, book.currencies, book.collateral_currencies = list(engine.units), currencies, coll_cur
    book.components = tuple(model.components)
    book.labels = tuple(engine.scenario_set.labels)
    book.netting, book.isolated = model.netting, model.mode == "isolated"
    book._instrument_ids = [str(i) for i in engine.instruments.ids]
    book._engine = engine
    if frame is not None and len(frame):
        _load_positions(book, engine, frame, expiry)
    _load_collateral(book, coll_cur, coll_rows)
    return book


def _instrument_arrays(engine: Any, expiry: np.ndarray) -> dict[str, np.ndarray]:
    """The per-instrument columns the C++ book revalues from (the book's expiry rule applied)."""
    inst, m, f64 = engine.instruments, engine.market, np.float64
    return {
        "kind": np.ascontiguousarray(inst.kind, dtype=np.int8),
        "settlement": np.ascontiguousarray(inst.settlement, dtype=np.int8),
        "risk_unit": np.ascontiguousarray(m.unit_of_row, dtype=np.int32),
        "strike": np.nan_to_num(np.asarray(inst.strike, f64)),
        "expiry": expiry,
        "multiplier": np.ascontiguousarray(inst.multiplier, dtype=f64),
        "forward": np.ascontiguousarray(m.forward, dtype=f64),
        "discount": np.ascontiguousarray(m.discount, dtype=f64),
        "vol": np.nan_to_num(np.asarray(m.vol, f64)),
    }


def _market_arrays(engine: Any, currencies: list[str], coll_fx: np.ndarray, coll_haircut: np.ndarray) -> dict[str, Any]:
    """Per risk unit and currency: spot, FX to USD, settlement currency; collateral prices."""
    m, f64 = engine.market, np.float64
    unit_currency = np.array([currencies.index(c) for c in m.unit_currency], dtype=np.int32)
    unit_fx = np.ascontiguousarray(m.unit_fx, dtype=f64)
    currency_fx = np.array([unit_fx[list(unit_currency).index(k)] for k in range(len(currencies))])
    return {
        "unit_spot": np.ascontiguousarray(m.unit_spot, dtype=f64),
        "unit_fx": unit_fx,
        "unit_currency": unit_currency,
        "currency_fx": currency_fx,
        "report_fx": _report_fx(engine, currencies, currency_fx),
        "collateral_fx": np.ascontiguousarray(coll_fx, dtype=f64),
        "collateral_haircut": np.ascontiguousarray(coll_haircut, dtype=f64),
        **_spread_market(engine),
    }


def _model_spec(engine: Any, currencies: list[str], allow_risk_reducing: bool) -> dict[str, Any]:
    """The model's rules as the C++ book takes them: netting, mode, factors, gains, add-ons."""
    model, m, units = engine.model, engine.market, list(engine.units)
    gain = np.ones(0)
    if model.netting == "currency":
        gain = _per_key(model.gain_factor, units, list(m.unit_underlying), 1.0)
    elif model.netting == "account":
        gain = _per_key(model.gain_factor, currencies, currencies, 1.0)
    return {
        "netting": _NETTING[model.netting],
        "mode": 0 if model.mode == "cross" else 1,
        "im_factor": float(model.im_factor),
        "mm_factor": float(model.mm_factor),
        "gain_cap": float(model.gain_cap),
        "gain_factor": np.ascontiguousarray(gain, dtype=np.float64),
        "allow_risk_reducing": bool(allow_risk_reducing),
        "addons": [_addon_spec(engine, a, a.resolve(units, list(m.unit_underlying))) for a in model.addons],
        **_measure_spec(engine),
    }


def _measure_spec(engine: Any) -> dict[str, Any]:
    """The node measure: worst loss, or VaR / ES at the model's confidence over the scenario set's
    probabilities (None: equally likely), as marginkernel.engine.netting measures a node."""
    model, probability = engine.model, engine.scenario_set.probability
    if model.measure == "worst_loss":
        return {"measure": 0, "confidence": 0.99, "probability": None}
    prob = None if probability is None else np.ascontiguousarray(probability, dtype=np.float64)
    return {"measure": _MEASURES[model.measure], "confidence": float(model.confidence), "probability": prob}


def _positions_frame(positions: Any, model: Any) -> Any:
    """`positions` as a DataFrame (None when not given); columns the book cannot hold are refused."""
    import pandas as pd

    if positions is None:
        return None
    frame = positions if isinstance(positions, pd.DataFrame) else pd.DataFrame(list(positions))
    if "unrealised_pnl" in frame.columns:
        raise ValueError("positions.unrealised_pnl: not held by the book (equity comes from collateral)")
    if "margin_mode" in frame.columns and (frame["margin_mode"].dropna() != model.mode).any():
        raise ValueError(f"positions.margin_mode: the book uses the model's mode {model.mode!r} for every position")
    return frame


def _load_collateral(book: ModelBook, coll_cur: list[str], coll_rows: list[Any]) -> None:
    balances: dict[tuple[int, int], float] = {}
    for name, cur, amount in coll_rows:  # repeated (account, currency) rows add up
        key = (book._account_index[name], coll_cur.index(cur))
        balances[key] = balances.get(key, 0.0) + amount
    if coll_cur:  # with collateral given, an account without a row has equity 0
        for a in range(len(book.accounts)):
            book.set_collateral(a, 0, balances.get((a, 0), 0.0))
    for (a, k), amount in balances.items():
        book.set_collateral(a, k, amount)


def _load_positions(book: ModelBook, engine: Any, frame: Any, expiry: np.ndarray) -> None:
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
        raise ValueError(
            f"positions row {k}: instrument {frame['instrument'].iloc[k]!r} has expired "
            f"(expiry at or before the valuation time); the book refuses it"
        )
    acc = np.array([book._account_index[a] for a in frame["account"]], dtype=np.int64)
    book.add_fills(acc, inst.astype(np.int32), qty)
