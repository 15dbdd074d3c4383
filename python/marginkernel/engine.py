"""High-level engine: instruments + market + model -> margin per account, as DataFrames.

The engine revalues every instrument once on construction (the risk arrays R[i, s], shared by all
accounts, DESIGN §2) and then nets and reduces any number of books against that cache.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import kernels
from .instruments import Instruments
from .market import Market, ResolvedMarket
from .model import MarginModel
from .scenarios import ScenarioSet

_INSTRUMENT_FIELDS = {"kind", "settlement", "risk_unit", "strike", "expiry", "multiplier", "forward", "discount", "vol"}


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

    ``accounts``: one row per account (index ``account``): ``im``, ``mm`` (USD), ``risk`` (the model's
    measure before the IM factor, USD), ``worst_unit`` and ``worst_scenario``.
    ``by_unit``: one row per (account, risk unit): loss in the unit's settlement currency and in USD,
    and that unit's worst scenario (``risk_unit`` netting); empty for ``account`` netting.
    ``pnl``: scenario P&L, shape (accounts, risk units, scenarios), in settlement currency.
    """

    accounts: pd.DataFrame
    by_unit: pd.DataFrame
    pnl: np.ndarray
    units: list[str]
    scenarios: tuple[str, ...]

    def scenario_pnl(self, account) -> pd.DataFrame:
        """The P&L vector of one account: a row per scenario, a column per risk unit."""
        row = self.accounts.index.get_loc(account)
        return pd.DataFrame(self.pnl[row].T, index=pd.Index(self.scenarios, name="scenario"), columns=self.units)


class Engine:
    """Margin engine for one set of instruments, one market snapshot and one model."""

    def __init__(self, instruments: Instruments, market: Market, model: MarginModel, *, threads: int = 1):
        self.instruments = instruments
        self.model = model
        self.threads = threads
        self.market: ResolvedMarket = market.resolve(instruments)
        self.scenario_set: ScenarioSet = model.scenarios(self.market.unit_underlying)
        self._index = instruments.index_of()
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

    @property
    def units(self) -> list[str]:
        return self.market.units

    def risk_arrays(self) -> pd.DataFrame:
        """R[i, s] as a DataFrame: a row per instrument, a column per scenario."""
        return pd.DataFrame(self.risk, index=pd.Index(self.instruments.ids, name="instrument"),
                            columns=list(self.scenario_set.labels))

    def book(self, positions, accounts: Iterable | None = None) -> Book:
        """Positions -> :class:`Book`. `positions` is a DataFrame or records with columns ``account``,
        ``instrument`` (id) and ``quantity``; repeated (account, instrument) rows add up. Accounts named
        in `accounts` but without positions get an empty (zero-margin) book."""
        frame = positions if isinstance(positions, pd.DataFrame) else pd.DataFrame(list(positions))
        extra = list(accounts) if accounts is not None else []
        if len(frame) == 0 and not extra:
            raise ValueError("positions: empty book (no positions and no accounts given)")
        if len(frame):
            missing = {"account", "instrument", "quantity"} - set(frame.columns)
            if missing:
                raise ValueError(f"positions: missing column(s) {sorted(missing)}")
        else:
            frame = pd.DataFrame({"account": [], "instrument": [], "quantity": []})
        rows = np.empty(len(frame), dtype=np.int32)
        for k, iid in enumerate(frame["instrument"]):
            row = self._index.get(iid)
            if row is None:
                raise ValueError(f"positions row {k}: unknown instrument {iid!r}")
            rows[k] = row
        qty = frame["quantity"].to_numpy()
        if qty.dtype.kind not in "iuf":
            raise TypeError(f"positions.quantity: must be numeric, got dtype {qty.dtype}")
        qty = qty.astype(np.float64)
        bad = np.flatnonzero(~np.isfinite(qty))
        if bad.size:
            raise ValueError(f"positions row {bad[0]}: quantity must be finite, got {qty[bad[0]]}")
        if frame["account"].isna().any():
            raise ValueError(f"positions row {int(np.flatnonzero(frame['account'].isna())[0])}: missing account")
        codes, names = pd.factorize(pd.concat([frame["account"], pd.Series(extra, dtype=object)], ignore_index=True))
        codes = codes[: len(frame)]
        order = np.argsort(codes, kind="stable")
        start = np.zeros(len(names) + 1, dtype=np.int64)
        np.cumsum(np.bincount(codes, minlength=len(names)), out=start[1:])
        return Book(np.asarray(names, dtype=object), start, rows[order], qty[order])

    def pnl(self, book: Book) -> np.ndarray:
        """Scenario P&L per account and risk unit, (accounts, units, scenarios)."""
        return kernels.net(self.risk, self.market.unit_of_row, len(self.units), book.account_start,
                           book.instrument, book.quantity, threads=self.threads)

    def margin(self, positions, accounts: Iterable | None = None) -> MarginResult:
        """IM, MM and the worst scenario of every account of `positions` (see :meth:`book`)."""
        book = positions if isinstance(positions, Book) else self.book(positions, accounts)
        pnl = self.pnl(book)
        model, sc = self.model, self.scenario_set
        n_acc, n_units, n_scen = pnl.shape
        fx = self.market.unit_fx
        labels = sc.labels
        by_unit = pd.DataFrame()
        if model.netting == "risk_unit":
            flat = pnl.reshape(n_acc * n_units, n_scen)
            if model.measure == "worst_loss":
                loss, worst = kernels.worst_loss(flat, sc.weight, model.gain_factor)
            else:
                var, es = kernels.value_at_risk(flat, model.confidence, sc.probability)
                loss = np.maximum(0.0, var if model.measure == "var" else es)
                worst = np.argmin(flat, axis=1)
            loss = loss.reshape(n_acc, n_units)
            worst = worst.reshape(n_acc, n_units)
            loss_usd = loss * fx
            risk = loss_usd.sum(axis=1)
            top = np.argmax(loss_usd, axis=1)
            worst_unit = [self.units[u] if risk[a] > 0 else None for a, u in enumerate(top)]
            worst_scenario = [labels[worst[a, u]] if risk[a] > 0 else None for a, u in enumerate(top)]
            held = np.zeros((n_acc, n_units), dtype=bool)
            acc_of_pos = np.repeat(np.arange(n_acc), np.diff(book.account_start))
            held[acc_of_pos, self.market.unit_of_row[book.instrument]] = True
            a_idx, u_idx = np.nonzero(held)
            by_unit = pd.DataFrame({
                "account": book.accounts[a_idx],
                "risk_unit": [self.units[u] for u in u_idx],
                "currency": [self.market.unit_currency[u] for u in u_idx],
                "loss": loss[a_idx, u_idx],
                "loss_usd": loss_usd[a_idx, u_idx],
                "worst_scenario": [labels[worst[a, u]] for a, u in zip(a_idx, u_idx)],
            })
        else:
            joint = np.einsum("aus,us->as", pnl, fx[:, None] * sc.weight)
            if model.measure == "worst_loss":
                risk, worst = kernels.worst_loss(joint, None, model.gain_factor)
            else:
                var, es = kernels.value_at_risk(joint, model.confidence, sc.probability)
                risk = np.maximum(0.0, var if model.measure == "var" else es)
                worst = np.argmin(joint, axis=1)
            worst_unit = [None] * n_acc
            worst_scenario = [labels[w] if r > 0 else None for w, r in zip(worst, risk)]
        im = model.im_factor * risk
        accounts_frame = pd.DataFrame(
            {"im": im, "mm": model.mm_factor * im, "risk": risk,
             "worst_unit": worst_unit, "worst_scenario": worst_scenario},
            index=pd.Index(book.accounts, name="account"),
        )
        return MarginResult(accounts_frame, by_unit, pnl, list(self.units), labels)


def engine_from_frames(instruments, market: Mapping | Market, model: MarginModel, **kwargs) -> Engine:
    """Convenience: instruments as a DataFrame or records, market as a mapping or :class:`Market`."""
    inst = instruments if isinstance(instruments, Instruments) else (
        Instruments.from_frame(instruments) if isinstance(instruments, pd.DataFrame) else Instruments.from_records(instruments))
    mkt = market if isinstance(market, Market) else Market.from_dict(market)
    return Engine(inst, mkt, model, **kwargs)
