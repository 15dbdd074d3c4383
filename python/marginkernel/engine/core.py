"""The :class:`Engine`: instruments + market + model (+ a scenario set) -> margin per account.

The engine revalues every instrument once on construction (the risk arrays R[i, s], shared by all
accounts) and then nets and reduces any number of books against that cache. The pipeline of one
:meth:`Engine.margin` call, each step handing whole objects to the next:

``read_positions`` (:class:`Positions`) -> ``build_pairs`` (:class:`Pairs`: the accounts' P&L and
their (account, unit) pairs) -> ``Netting.nodes`` (:class:`Nodes`: scan risk per node of the
netting level) -> add-on charges (from one :class:`marginkernel.addons.Context`) -> ``combine``
(:class:`Requirement`) -> the result frames (:class:`MarginResult`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .. import addons as _addons
from .. import kernels
from .. import validation as v
from ..instruments import Instruments
from ..market import Market, ResolvedMarket
from ..model import MarginModel
from ..scenarios import ScenarioSet
from .expiry import Expiry
from .netting import Netting, Nodes, Pairs, build_pairs
from .positions import Book, Positions, read_positions
from .results import MarginResult, accounts_frame, addon_charges, by_unit_frame, combine

if TYPE_CHECKING:
    from ..book import ModelBook


@dataclass(frozen=True, eq=False)
class Evaluation:
    """One book through the pipeline up to the add-ons (what margin and context share)."""

    positions: Positions
    pairs: Pairs
    context: _addons.Context


class Engine:
    """Margin engine for one set of instruments, one market snapshot, one model and one scenario set.

    ``scenarios``: a :class:`ScenarioSet` (user, stress or historical, e.g. from
    :func:`marginkernel.scenario_file.read_scenario_set`) used instead of the one the model builds;
    a set that names its underlyings (every builder's does) is laid out over the risk units by
    underlying; one that does not must have one row per risk unit (``engine.units``).

    ``expired``: what to do with futures and options whose expiry is at or before the valuation
    time -- ``"refuse"`` (default: an error naming them) or ``"settle"`` (settled at intrinsic value
    against the snapshot's ``settlement_prices``; see docs/models.md). Perpetuals and spot never expire.
    """

    def __init__(
        self,
        instruments: Instruments,
        market: Market,
        model: MarginModel,
        *,
        threads: int = 1,
        scenarios: ScenarioSet | None = None,
        expired: str = "refuse",
    ):
        if not isinstance(instruments, Instruments):
            raise TypeError(f"instruments: expected Instruments, got {type(instruments).__name__}")
        if not isinstance(market, Market):
            raise TypeError(f"market: expected Market, got {type(market).__name__}")
        if not isinstance(model, MarginModel):
            raise TypeError(f"model: expected a MarginModel (generic scenario-grid model), got {type(model).__name__}")
        if scenarios is not None and not isinstance(scenarios, ScenarioSet):
            raise TypeError(f"scenarios: expected a ScenarioSet, got {type(scenarios).__name__}")
        self.instruments = instruments
        self.model = model
        self.threads = v.integer(threads, "threads", lo=1)
        self.market_snapshot = market
        self.market: ResolvedMarket = market.resolve(instruments)
        self.expiry = Expiry(instruments, market, self.market, expired)
        if scenarios is None:
            scenarios = model.scenarios(self.market.unit_underlying)
        elif scenarios.underlyings is not None:
            scenarios = scenarios.for_underlyings(self.market.unit_underlying)
        self.scenario_set: ScenarioSet = scenarios
        if self.scenario_set.price_multiplier.shape[0] != len(self.units):
            raise ValueError(
                f"scenarios: {self.scenario_set.price_multiplier.shape[0]} rows of moves for "
                f"{len(self.units)} risk units {self.units}"
            )
        self.instrument_index = instruments.index
        self._delta: np.ndarray | None = None
        self._month: np.ndarray | None = None
        self._counted: tuple[Any, Any, np.ndarray | None] = (None, None, None)
        self.risk, self.value_now = self._revalue()
        # per-unit add-on parameters: resolved now so that a missing value fails here, naming its key
        self.addon_params = [a.resolve(self.units, self.market.unit_underlying) for a in model.addons]
        self.report_fx = market.fx_rate(model.currency)
        self.netting = Netting(self)

    def _revalue(self) -> tuple[np.ndarray, np.ndarray]:
        inst, m = self.instruments, self.market
        per_instrument = m.kernel_arguments(inst)
        arguments: dict[str, Any] = {**per_instrument, **self.scenario_set.kernel_arguments()}
        try:
            risk, value_now = kernels.revalue(**arguments, threads=self.threads)
        except kernels.InputError as exc:
            if exc.row is not None and exc.field in per_instrument and exc.field != "spot":
                raise ValueError(
                    f"instrument {inst.ids[exc.row]!r} (row {exc.row}): its revaluation overflows or is invalid: {exc}"
                ) from None
            raise
        bad = ~np.isfinite(risk).all(axis=1) | ~np.isfinite(value_now)
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"instrument {inst.ids[k]!r} (row {k}): its revaluation overflows float64; check "
                f"multiplier ({inst.multiplier[k]!r}), forward ({m.forward[k]!r}) and discount "
                f"({m.discount[k]!r})"
            )
        self.expiry.clear_rows(risk, value_now)
        return risk, value_now

    @property
    def units(self) -> list[str]:
        return self.market.units

    @property
    def deltas(self) -> np.ndarray:
        """Delta per unit of each instrument in units of its underlying (see marginkernel.addons)."""
        if self._delta is None:
            inst, m = self.instruments, self.market
            self._delta = _addons.instrument_deltas(
                inst.kind, inst.settlement, inst.multiplier, m.forward, inst.strike, m.vol, m.expiry_years, m.discount
            )
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
        if counted is None or risk_was is not self.risk or scen_was is not self.scenario_set:
            counted = self.risk.copy()
            linear = (self.instruments.kind != 2) & (self.instruments.kind != 3)
            counted[np.ix_(linear, np.asarray(only, dtype=bool))] = 0.0
            self._counted = (self.risk, self.scenario_set, counted)
        return counted

    def risk_arrays(self) -> pd.DataFrame:
        """R[i, s] as a DataFrame: a row per instrument, a column per scenario."""
        return pd.DataFrame(
            self.risk, index=pd.Index(self.instruments.ids, name="instrument"), columns=list(self.scenario_set.labels)
        )

    # -- books -------------------------------------------------------------------------------

    def book(self, positions: Any, accounts: Iterable[Any] | None = None) -> Book:
        """Positions -> :class:`Book`. `positions` is a DataFrame, an Arrow table or records with columns
        ``account``, ``instrument`` (id) and ``quantity``; repeated (account, instrument) rows add up
        (and rows that net to zero drop out). Accounts named in `accounts` but without positions get
        an empty (zero-margin) book."""
        return read_positions(self, positions, accounts, None, "cross").book()

    def pnl(self, book: Book) -> np.ndarray:
        """Scenario P&L per account and risk unit, (accounts, units, scenarios)."""
        return np.asarray(
            kernels.net(
                self.counted_risk,
                self.market.unit_of_row,
                len(self.units),
                book.account_start,
                book.instrument,
                book.quantity,
                threads=self.threads,
            )
        )

    # -- margin ------------------------------------------------------------------------------

    def _evaluate(
        self, positions: Any, accounts: Iterable[Any] | None, collateral: Any, mode: str | None
    ) -> tuple[Evaluation, np.ndarray | None]:
        pos = read_positions(self, positions, accounts, collateral, mode)
        pos, settled_usd = self.expiry.settle(pos, self.market)
        pairs = build_pairs(self, pos)
        return Evaluation(pos, pairs, self._context(pos, pairs)), settled_usd

    def evaluate(self, positions: Any, accounts: Iterable[Any] | None = None, *, mode: str | None = None) -> Evaluation:
        """The book through the pipeline up to the add-ons: its aggregated :class:`Positions` (expired
        ones settled out), their :class:`Pairs` and the add-on :class:`~marginkernel.addons.Context`
        (what explanations of a margin build on). Positions as for :meth:`margin`."""
        return self._evaluate(positions, accounts, None, mode)[0]

    def context(
        self, positions: Any, accounts: Iterable[Any] | None = None, *, mode: str | None = None
    ) -> _addons.Context:
        """The :class:`marginkernel.addons.Context` add-ons compute from for these positions (to
        evaluate or test an add-on on its own: ``addon(engine.context(positions))``)."""
        return self._evaluate(positions, accounts, None, mode)[0].context

    def account_book(
        self,
        positions: Any = None,
        accounts: Iterable[Any] | None = None,
        *,
        collateral: Any = None,
        allow_risk_reducing: bool = True,
        threads: int = 1,
    ) -> ModelBook:
        """The C++ account book of this engine's model, instruments, market and scenario set, loaded
        with `positions` and `collateral` (as :meth:`margin` takes them): its margin equals
        :meth:`margin` for each account, and its what-if predicts the margin after a fill exactly
        (:func:`marginkernel.book.account_book`, docs/book.md)."""
        from ..book import account_book

        return account_book(
            self, positions, accounts, collateral=collateral, allow_risk_reducing=allow_risk_reducing, threads=threads
        )

    def margin(
        self, positions: Any, accounts: Iterable[Any] | None = None, *, collateral: Any = None, mode: str | None = None
    ) -> MarginResult:
        """IM, MM, the worst scenario and the component breakdown of every account of `positions`.

        `positions`: a :class:`Book`, a DataFrame, an Arrow table or records with ``account``,
        ``instrument``, ``quantity`` and optionally ``margin_mode`` ("cross" / "isolated" per
        position; default the model's ``mode`` or `mode`) and ``unrealised_pnl`` (settlement currency,
        counted in equity). `collateral`: balances per account and currency -- a table or records with
        ``account``, ``currency``, ``amount``, or a mapping ``{account: {currency: amount}}``; positive
        balances count at (1 - haircut) of their USD value, debts in full. Inputs are never modified.
        """
        ev, settled_usd = self._evaluate(positions, accounts, collateral, mode)
        nodes: Nodes = self.netting.nodes(ev.pairs)
        charges = addon_charges(self, ev.context, ev.pairs.n_pairs)
        req = combine(self, ev.pairs, nodes, charges)
        with np.errstate(over="ignore", invalid="ignore"):
            accounts_out = accounts_frame(self, ev.positions, ev.pairs, nodes, req, settled_usd=settled_usd)
        amounts = accounts_out[["risk", "scan_risk", *self.model.components]].to_numpy(dtype=float)
        bad = ~np.isfinite(amounts).all(axis=1)
        if bad.any():
            account = ev.positions.names[int(np.flatnonzero(bad)[0])]
            raise ValueError(f"positions: the margin of account {account!r} overflows float64 (quantities too large)")
        by_unit = by_unit_frame(self, ev.positions.names, ev.pairs, charges)
        return MarginResult(
            accounts_out,
            by_unit,
            ev.pairs.account_pnl(ev.positions.names),
            list(self.units),
            self.scenario_set.labels,
            self.model.components,
            self.model.currency,
        )

    def _context(self, pos: Positions, pairs: Pairs) -> _addons.Context:
        inst, m, sc = self.instruments, self.market, self.scenario_set
        if self._month is None:
            self._month = _addons.instrument_months(inst.expiry)
        units = _addons.instrument_units(inst.kind, inst.settlement, inst.multiplier, m.forward)
        notional = np.where(inst.settlement == 0, units * m.forward, units)
        return _addons.Context(
            kind=inst.kind,
            settlement=inst.settlement,
            multiplier=inst.multiplier,
            forward=m.forward,
            expiry_years=m.expiry_years,
            unit_of_row=m.unit_of_row,
            delta=self.deltas,
            units=units,
            notional=notional,
            month=self._month,
            unit_names=list(self.units),
            unit_underlying=list(m.unit_underlying),
            unit_currency=list(m.unit_currency),
            unit_spot=m.unit_spot,
            unit_fx=m.unit_fx,
            price_multiplier=sc.price_multiplier,
            vol_shift=sc.vol_shift,
            weight=sc.weight,
            pos_pair=pairs.pos_pair,
            pos_instrument=pos.instrument,
            pos_quantity=pos.quantity,
            pair_account=pairs.pair_account,
            pair_unit=pairs.pair_unit,
            pnl_rows=pairs.rows,
            pair_row=pairs.pair_row,
            pair_scan=pairs.pair_scan,
            pair_worst=pairs.pair_worst,
            n_accounts=pairs.n_pseudo,
        )


def engine_from_frames(instruments: Any, market: Any, model: MarginModel, **kwargs: Any) -> Engine:
    """Convenience: instruments as a table or records, market as a mapping or :class:`Market`."""
    inst = instruments if isinstance(instruments, Instruments) else Instruments.from_frame(instruments)
    mkt = market if isinstance(market, Market) else Market.from_dict(market)
    return Engine(inst, mkt, model, **kwargs)


__all__ = ["Engine", "Evaluation", "engine_from_frames"]
