"""Hypothesis strategies for whole books: instruments, market, positions and collateral for a model.

A drawn :class:`Book` holds everything a margin engine needs, in the public formats: instrument
records (``Instruments.from_records``), a market mapping (``Market.from_dict``), a positions
DataFrame (``account``, ``instrument``, ``quantity``) and collateral ``{account: {currency:
amount}}``, plus the :class:`marginkernel.MarginModel` it is margined under::

    from hypothesis import given
    from marginkernel.testing import books

    @given(books.books(model="deribit-pm"))
    def test_my_engine(book):
        my_im = my_margin(book.instruments, book.market, book.positions)
        ...

Ranges (all bounded, so that every book is far inside double precision):

=====================  ==============================================================
spot                   BTC 10**[4, 5.3], ETH 10**[2.5, 4], SOL 10**[1, 2.7]
carry                  [-0.05, 0.15] per year; rates 0
expiry                 1 .. 400 days after the valuation time (whole days)
strike                 spot x 10**[-0.25, 0.25], rounded to 3 significant digits
vol                    [0.2, 1.5]
multiplier             linear: 0.01, 0.1, 1 or 10 units; inverse futures / perpetuals:
                       1, 10 or 100 USD; inverse options: 0.1 or 1 coin
quantity               +-k / 4, k in 1 .. 4000 (exact in binary: splitting and scaling
                       by powers of two are exact)
collateral             USDC k x 100, k in 0 .. 10**4 (0: none)
=====================  ==============================================================

Settlement is linear in USDC or inverse in the coin, so books mix risk units ``BTC`` and
``BTC/USDC``: the case a margin function that nets across settlement currencies gets wrong.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
from hypothesis import strategies as st

from ..instruments import Instruments
from ..market import Market
from ..model import MarginModel, load_model

__all__ = ["TIME", "UNDERLYINGS", "Book", "books", "resolve_model"]

#: valuation time of every drawn book
TIME = "2026-01-01T00:00:00Z"
#: underlyings and the log10 range of their spot
UNDERLYINGS: dict[str, tuple[float, float]] = {"BTC": (4.0, 5.3), "ETH": (2.5, 4.0), "SOL": (1.0, 2.7)}
ALL_KINDS = ("future", "perpetual", "call", "put")
LINEAR_KINDS = ("future", "perpetual")
_T0 = datetime(2026, 1, 1, tzinfo=UTC)


def resolve_model(model: str | Path | MarginModel) -> MarginModel:
    """A :class:`MarginModel` from itself, a preset name or a model file."""
    if isinstance(model, MarginModel):
        return model
    loaded = load_model(model)
    if not isinstance(loaded, MarginModel):
        raise TypeError(f"model {model!r}: not a generic scenario-grid model (books are for the Engine's models)")
    return loaded


@dataclass(frozen=True)
class Book:
    """One drawn book; ``positions`` and ``collateral`` are the public input formats."""

    model: MarginModel
    instrument_records: tuple[dict[str, Any], ...]
    market_data: dict[str, Any]
    positions: pd.DataFrame
    collateral: dict[str, dict[str, float]] | None = None

    @property
    def instruments(self) -> Instruments:
        return Instruments.from_records([dict(r) for r in self.instrument_records])

    @property
    def market(self) -> Market:
        return Market.from_dict(self.market_data)

    @property
    def accounts(self) -> list[str]:
        """Account names in order of first appearance."""
        return list(dict.fromkeys(self.positions["account"].tolist()))

    def has_options(self) -> bool:
        used = set(self.positions["instrument"])
        return any(r["kind"] in ("call", "put") for r in self.instrument_records if r["id"] in used)

    def with_positions(self, positions: pd.DataFrame) -> Book:
        return dataclasses.replace(self, positions=positions.reset_index(drop=True))

    def with_model(self, model: MarginModel) -> Book:
        return dataclasses.replace(self, model=model)

    def describe(self) -> str:
        """The book as text: the instruments its positions use, the spots, positions, collateral."""
        used = set(self.positions["instrument"])
        ins = pd.DataFrame([r for r in self.instrument_records if r["id"] in used])
        lines = [f"model: {self.model.name}", f"spot: {self.market_data['spot']}"]
        if self.market_data.get("vols"):
            vols = {k: v for k, v in self.market_data["vols"].items() if k in used}
            if vols:
                lines.append(f"vols: {vols}")
        lines += ["instruments:", ins.to_string(index=False), "positions:", self.positions.to_string(index=False)]
        if self.collateral:
            lines.append(f"collateral: {self.collateral}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"Book(\n{self.describe()}\n)"


def _sig3(x: float) -> float:
    return float(f"{x:.3g}")


@st.composite
def _instrument(draw: st.DrawFn, underlying: str, spot: float, kinds: Sequence[str], n: int) -> dict[str, Any]:
    kind = draw(st.sampled_from(list(kinds)))
    inverse = draw(st.booleans())
    rec: dict[str, Any] = {
        "id": f"{underlying}-{'I' if inverse else 'L'}-{kind[:3].upper()}-{n}",
        "kind": kind,
        "underlying": underlying,
        "settlement": "inverse" if inverse else "linear",
        "currency": underlying if inverse else "USDC",
    }
    if kind in ("future", "call", "put"):
        days = draw(st.integers(1, 400))
        rec["expiry"] = (_T0 + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")
    if kind in ("call", "put"):
        rec["strike"] = _sig3(spot * 10 ** draw(st.floats(-0.25, 0.25)))
        rec["multiplier"] = draw(st.sampled_from([0.1, 1.0])) if inverse else draw(st.sampled_from([0.01, 0.1, 1.0]))
    elif inverse:
        rec["multiplier"] = draw(st.sampled_from([1.0, 10.0, 100.0]))
    else:
        rec["multiplier"] = draw(st.sampled_from([0.01, 0.1, 1.0, 10.0]))
    return rec


def quantities() -> st.SearchStrategy[float]:
    """+-k / 4, k in 1 .. 4000."""
    return st.builds(lambda k, s: s * k / 4.0, st.integers(1, 4000), st.sampled_from([1.0, -1.0]))


@st.composite
def books(
    draw: st.DrawFn,
    model: str | Path | MarginModel = "deribit-pm",
    *,
    kinds: Sequence[str] = ALL_KINDS,
    underlyings: Sequence[str] = ("BTC", "ETH"),
    max_instruments: int = 6,
    max_accounts: int = 3,
    max_positions: int = 6,
    collateral: bool = True,
) -> Book:
    """A whole book for ``model`` (a preset name, a file or a MarginModel)."""
    margin_model = resolve_model(model)
    unders = draw(st.lists(st.sampled_from(list(underlyings)), min_size=1, max_size=len(underlyings), unique=True))
    spot = {u: _sig3(10 ** draw(st.floats(*UNDERLYINGS.get(u, (1.0, 4.0))))) for u in unders}
    carry = {u: round(draw(st.floats(-0.05, 0.15)), 4) for u in unders}
    n_ins = draw(st.integers(1, max_instruments))
    records = []
    for n in range(n_ins):
        u = draw(st.sampled_from(unders))
        records.append(draw(_instrument(u, spot[u], kinds, n)))
    vols = {r["id"]: round(draw(st.floats(0.2, 1.5)), 3) for r in records if r["kind"] in ("call", "put")}
    market: dict[str, Any] = {"time": TIME, "spot": spot, "carry": carry}
    if vols:
        market["vols"] = vols
    ids = [r["id"] for r in records]
    rows: list[dict[str, Any]] = []
    for a in range(draw(st.integers(1, max_accounts))):
        n_rows = draw(st.integers(1, max_positions))
        rows.extend(
            {"account": f"acct{a}", "instrument": draw(st.sampled_from(ids)), "quantity": draw(quantities())}
            for _ in range(n_rows)
        )
    cash = None
    if collateral and draw(st.booleans()):
        accounts = list(dict.fromkeys(r["account"] for r in rows))
        cash = {a: {"USDC": 100.0 * draw(st.integers(0, 10_000))} for a in accounts}
    return Book(
        model=margin_model,
        instrument_records=tuple(records),
        market_data=market,
        positions=pd.DataFrame(rows, columns=["account", "instrument", "quantity"]),
        collateral=cash,
    )
