"""Invariant checker for any margin function, and differential testing against the Engine.

A *margin function* is any callable ``margin(positions)`` or ``margin(positions, collateral=...)``
that takes a positions DataFrame (``account``, ``instrument``, ``quantity``) and returns the IM per
account: a Series or mapping indexed by account, a DataFrame with an ``im`` column (and optionally
``mm``, ``equity``), or a :class:`marginkernel.MarginResult`. Since instruments, market and model
change from book to book, the checker takes a *factory* ``factory(book) -> margin`` (see
:func:`engine_factory` for the Engine's own).

:func:`check_book` asserts, on one :class:`~marginkernel.testing.books.Book`, every invariant its
:class:`Claims` hold; :func:`find_counterexample` runs it over hypothesis-drawn books and returns
the shrunk failing book. Comparisons allow ``rtol`` relative to the margins compared plus
``1e-12`` of the book's gross notional (summation order), nothing more.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..engine import Engine, MarginResult
from ..model import MarginModel
from .books import Book, books, resolve_model

__all__ = [
    "RANGE_KEYS",
    "Claims",
    "Counterexample",
    "InvariantViolation",
    "MarginChecker",
    "ResultError",
    "check_book",
    "engine_factory",
    "find_counterexample",
    "margins",
]

MarginFn = Callable[..., Any]
Factory = Callable[[Book], MarginFn]
#: scenario builder -> its range parameters (per underlying) and their upper bound
RANGE_KEYS: dict[str, tuple[tuple[str, float], ...]] = {
    "deribit_grid": (("price_range", 0.99),),
    "span16": (("price_scan", math.inf),),
    "range_points": (("up", math.inf), ("down", 0.99)),
}
NOTIONAL_ATOL = 1e-12


class ResultError(TypeError):
    """A margin function's result is not IM per account (wrong type, missing account)."""


class InvariantViolation(AssertionError):
    """An invariant does not hold on ``book``; the message shows the book."""

    def __init__(self, invariant: str, detail: str, book: Book):
        self.invariant, self.detail, self.book = invariant, detail, book
        super().__init__(f"invariant '{invariant}' violated: {detail}\n{book.describe()}")


@dataclass(frozen=True)
class Claims:
    """Which invariants a model class holds (``for_model`` derives them from a MarginModel)."""

    determinism: bool = True  # the same call twice gives bitwise the same margins
    nonnegative: bool = True  # IM >= 0, and IM >= MM >= 0 when MM is returned
    im_ge_mm: bool = True
    row_order: bool = True  # permuting position rows changes nothing
    splitting: bool = True  # splitting a position into parts changes nothing
    offsetting: bool = True  # +q and -q of one instrument net to nothing; such an account needs 0
    homogeneous: bool = False  # IM(2 q) = 2 IM(q), IM(q / 2) = IM(q) / 2 (scan risk, no thresholds)
    scan_homogeneous: bool = True  # the same for a returned ``scan_risk`` column, add-ons or not
    subadditive: bool = False  # IM(A + B) <= IM(A) + IM(B)
    cash_translation: bool = True  # cash collateral moves equity 1:1 and leaves IM unchanged
    monotone_range: bool = False  # a wider scenario range never lowers IM (books without options)
    monotone_confidence: bool = False  # a higher VaR / ES confidence never lowers IM

    @classmethod
    def for_model(cls, model: MarginModel) -> Claims:
        """The claims of a generic scenario-grid model: scan risk (worst loss, VaR, ES over the
        netted scenario P&L) is positively homogeneous; worst loss and ES are subadditive (gain
        factors <= 1 and gain caps keep it so); add-ons (thresholds, minimums, credits) void both,
        and the range / confidence monotonicity claims are only made without them."""
        plain = not model.addons
        return cls(
            im_ge_mm=model.im_factor >= model.mm_factor,
            homogeneous=plain,
            subadditive=plain and model.measure != "var",
            monotone_range=plain and model.builder in RANGE_KEYS,
            monotone_confidence=plain and model.measure in ("var", "es"),
        )


def engine_factory(book: Book) -> MarginFn:
    """The Engine's margin function for ``book`` (its instruments, market and model)."""
    engine = Engine(book.instruments, book.market, book.model)

    def margin(positions: pd.DataFrame, collateral: Mapping[str, Any] | None = None) -> MarginResult:
        return engine.margin(positions, collateral=collateral)

    return margin


def _accepts_collateral(fn: MarginFn) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):  # pragma: no cover - builtins
        return False
    return "collateral" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def margins(fn: MarginFn, positions: pd.DataFrame, accounts: list[str], collateral: Any = None) -> pd.DataFrame:
    """``fn``'s result as a DataFrame indexed by ``accounts`` with ``im`` (and ``mm``, ``equity``
    when given). An account missing from the result is an error."""
    out = fn(positions.copy(), collateral=collateral) if collateral is not None else fn(positions.copy())
    if isinstance(out, MarginResult):
        out = out.accounts
    if isinstance(out, pd.DataFrame):
        frame = out.set_index("account") if "account" in out.columns else out
        if "im" not in frame.columns:
            raise ResultError(f"a DataFrame result needs an 'im' column, got {list(frame.columns)}")
        frame = frame[[c for c in ("im", "mm", "equity", "scan_risk") if c in frame.columns]]
    elif isinstance(out, (pd.Series, Mapping)):
        frame = pd.DataFrame({"im": pd.Series(out, dtype=float)})
    else:
        raise ResultError(f"expected IM per account (Series, mapping, DataFrame), got {type(out).__name__}")
    if frame.index.has_duplicates:
        raise ResultError(f"accounts {sorted(set(frame.index[frame.index.duplicated()]))} appear more than once")
    missing = [a for a in accounts if a not in frame.index]
    if missing:
        raise ResultError(f"accounts {missing} missing from the result")
    return frame.loc[accounts].astype(float)


def _notional(book: Book) -> float:
    spot = book.market_data["spot"]
    recs = {r["id"]: r for r in book.instrument_records}
    total = 0.0
    for ins, q in zip(book.positions["instrument"], book.positions["quantity"], strict=True):
        r = recs[ins]
        usd_notional = r["settlement"] == "inverse" and r["kind"] in ("future", "perpetual")
        total += abs(q) * r.get("multiplier", 1.0) * (1.0 if usd_notional else spot[r["underlying"]])
    return total


class _Check:
    """One book, one margin function: the helpers every invariant uses."""

    def __init__(self, factory: Factory, book: Book, rtol: float):
        self.factory, self.book, self.rtol = factory, book, rtol
        self.fn = factory(book)
        self.atol = NOTIONAL_ATOL * max(_notional(book), 1.0)
        self.accounts = book.accounts
        self.base = self.run(book.positions)

    def run(
        self,
        positions: pd.DataFrame,
        accounts: list[str] | None = None,
        collateral: Any = None,
        fn: MarginFn | None = None,
    ) -> pd.DataFrame:
        coll = self.book.collateral if collateral is None else collateral
        fn = self.fn if fn is None else fn
        if coll is not None and not _accepts_collateral(fn):
            coll = None
        try:
            return margins(fn, positions, accounts or self.accounts, coll)
        except ResultError as exc:
            raise InvariantViolation("result", str(exc), self.book) from None

    def fail(self, invariant: str, detail: str) -> None:
        raise InvariantViolation(invariant, detail, self.book)

    def close(self, invariant: str, got: pd.Series, want: pd.Series, what: str, gross: float = 1.0) -> None:
        """``got`` equals ``want`` to rtol plus 1e-12 of the notional (``gross`` x the book's)."""
        err = np.abs(got.to_numpy() - want.to_numpy())
        tol = self.rtol * np.maximum(np.abs(got.to_numpy()), np.abs(want.to_numpy())) + gross * self.atol
        bad = ~(err <= tol)
        if bad.any():
            k = int(np.argmax(np.where(bad, err, -1.0)))
            self.fail(
                invariant,
                f"{what}: account {got.index[k]!r} gives {float(got.iloc[k])!r}, expected {float(want.iloc[k])!r}",
            )


# ------------------------------------------------------------------------------------------------
# The invariants: each takes a _Check and raises InvariantViolation
# ------------------------------------------------------------------------------------------------


def _determinism(c: _Check) -> None:
    positions = c.book.positions.copy()
    fn_input = positions.copy()
    c.fn(fn_input)
    if not fn_input.equals(positions):
        c.fail("determinism", "the margin function modified its positions argument")
    again = c.run(c.book.positions)
    for col in c.base.columns:
        if not np.array_equal(again[col].to_numpy(), c.base[col].to_numpy(), equal_nan=True):
            c.fail(
                "determinism", f"two identical calls differ in {col!r}: {c.base[col].tolist()} vs {again[col].tolist()}"
            )


def _nonnegative(c: _Check, im_ge_mm: bool) -> None:
    im = c.base["im"]
    if not (np.isfinite(im.to_numpy()).all() and (im.to_numpy() >= 0).all()):
        c.fail("IM >= 0", f"IM {im.to_dict()}")
    if "mm" in c.base:
        mm = c.base["mm"]
        if not (mm.to_numpy() >= 0).all():
            c.fail("MM >= 0", f"MM {mm.to_dict()}")
        if im_ge_mm and not (im.to_numpy() >= mm.to_numpy() - c.atol).all():
            c.fail("IM >= MM", f"IM {im.to_dict()} < MM {mm.to_dict()}")


def _row_order(c: _Check) -> None:
    pos = c.book.positions
    for name, order in (("reversed", pos.index[::-1]), ("rotated", np.roll(pos.index, 1))):
        c.close("row order", c.run(pos.loc[order])["im"], c.base["im"], f"rows {name}")


def _splitting(c: _Check) -> None:
    pos = c.book.positions
    half = pos.assign(quantity=pos["quantity"] / 2)
    quarter = pos.assign(quantity=pos["quantity"] / 4)
    split = pd.concat([half, quarter, quarter], ignore_index=True)  # q/2 + q/4 + q/4 = q exactly
    c.close("splitting", c.run(split)["im"], c.base["im"], "each position split into 1/2, 1/4, 1/4", gross=2.0)


def _offsetting(c: _Check) -> None:
    pos = c.book.positions
    first = pos.groupby("account", sort=False).head(1)
    pair = pd.concat([first.assign(quantity=1.0), first.assign(quantity=-1.0)], ignore_index=True)
    c.close(
        "offsetting",
        c.run(pd.concat([pos, pair], ignore_index=True))["im"],
        c.base["im"],
        "adding +1 and -1 of an instrument the account holds",
        gross=2.0,
    )
    only = pd.concat(
        [
            pos.assign(account="offsetting-only", quantity=pos["quantity"]),
            pos.assign(account="offsetting-only", quantity=-pos["quantity"]),
        ],
        ignore_index=True,
    )
    got = c.run(only, ["offsetting-only"], collateral={})
    c.close(
        "offsetting", got["im"], pd.Series([0.0], index=got.index), "an account of offsetting positions only", gross=2.0
    )


def _homogeneous(c: _Check, columns: tuple[str, ...]) -> None:
    pos = c.book.positions
    for lam in (2.0, 0.5):
        got = c.run(pos.assign(quantity=pos["quantity"] * lam))
        for col in columns:
            c.close("positive homogeneity", got[col], c.base[col] * lam, f"{col}: every quantity x {lam}", gross=lam)


def _subadditive(c: _Check) -> None:
    pos = c.book.positions
    merged = c.run(pos.assign(account="merged"), ["merged"], collateral={})["im"].iloc[0]
    total = float(c.base["im"].sum())
    if not merged <= total + c.rtol * abs(total) + 2.0 * c.atol:
        c.fail("subadditivity", f"IM of all accounts merged {float(merged)!r} > sum of their IMs {total!r}")


def _cash_translation(c: _Check, cash: float = 1000.0) -> None:
    if not _accepts_collateral(c.fn):
        return
    coll = {a: {"USDC": cash} for a in c.accounts}
    if c.book.collateral:
        coll = {a: {"USDC": c.book.collateral.get(a, {}).get("USDC", 0.0) + cash} for a in c.accounts}
    got = c.run(c.book.positions, collateral=coll)
    c.close("cash translation", got["im"], c.base["im"], f"IM after adding {cash:g} USDC cash")
    if "equity" in got and "equity" in c.base and c.book.collateral:
        c.close("cash translation", got["equity"], c.base["equity"] + cash, f"equity after adding {cash:g} USDC cash")


def _widened(model: MarginModel, factor: float) -> MarginModel:
    params = dict(model.scenario_params)
    for key, cap in RANGE_KEYS[model.builder]:
        value = params.get(key, 0.1 if key != "price_range" else 0.16)
        if isinstance(value, Mapping):
            params[key] = {k: min(v * factor, cap) for k, v in value.items()}
        else:
            params[key] = min(value * factor, cap)
    return dataclasses.replace(model, scenario_params=params)


def _monotone(c: _Check, invariant: str, model: MarginModel, what: str) -> None:
    fn = c.factory(c.book.with_model(model))
    got = c.run(c.book.positions, fn=fn)["im"]
    low = c.base["im"]
    bad = ~(got.to_numpy() >= low.to_numpy() - c.rtol * np.abs(low.to_numpy()) - c.atol)
    if bad.any():
        k = int(np.argmax(bad))
        c.fail(invariant, f"{what}: account {got.index[k]!r} IM {float(got.iloc[k])!r} < {float(low.iloc[k])!r} before")


def _differential(c: _Check, reference: Factory) -> None:
    ref = c.run(c.book.positions, fn=reference(c.book))
    for col in ("im", "mm"):
        if col in c.base and col in ref:
            c.close("differential", c.base[col], ref[col], f"{col} against the reference")


def check_book(
    factory: Factory, book: Book, claims: Claims | None = None, *, reference: Factory | None = None, rtol: float = 1e-9
) -> None:
    """Assert every invariant ``claims`` (default: ``Claims.for_model(book.model)``) holds for the
    margin function ``factory(book)`` on ``book``, and, with ``reference``, that it agrees with
    ``reference(book)`` (e.g. :func:`engine_factory`). Raises :class:`InvariantViolation`."""
    claims = Claims.for_model(book.model) if claims is None else claims
    c = _Check(factory, book, rtol)
    if claims.determinism:
        _determinism(c)
    if claims.nonnegative:
        _nonnegative(c, claims.im_ge_mm)
    if reference is not None:
        _differential(c, reference)
    if claims.row_order:
        _row_order(c)
    if claims.splitting:
        _splitting(c)
    if claims.offsetting:
        _offsetting(c)
    homogeneous = (("im",) if claims.homogeneous else ()) + (
        ("scan_risk",) if claims.scan_homogeneous and "scan_risk" in c.base else ()
    )
    if homogeneous:
        _homogeneous(c, homogeneous)
    if claims.subadditive:
        _subadditive(c)
    if claims.cash_translation:
        _cash_translation(c)
    if claims.monotone_range and book.model.builder in RANGE_KEYS and not book.has_options():
        _monotone(c, "monotone in range", _widened(book.model, 1.5), "scenario range x 1.5")
    if claims.monotone_confidence:
        higher = min(0.5 + book.model.confidence / 2, 0.9999)
        _monotone(
            c,
            "monotone in confidence",
            dataclasses.replace(book.model, confidence=higher),
            f"confidence {book.model.confidence} -> {higher}",
        )


@dataclass(frozen=True)
class Counterexample:
    """The shrunk failing book, the invariant and what differed."""

    invariant: str
    detail: str
    book: Book

    def __str__(self) -> str:
        return f"invariant '{self.invariant}' violated: {self.detail}\n{self.book.describe()}"


def find_counterexample(
    factory: Factory,
    model: str | Path | MarginModel = "deribit-pm",
    *,
    claims: Claims | None = None,
    reference: Factory | None = None,
    max_examples: int = 100,
    rtol: float = 1e-9,
    **book_options: Any,
) -> Counterexample | None:
    """Run :func:`check_book` over ``max_examples`` hypothesis-drawn books for ``model`` (options of
    :func:`~marginkernel.testing.books.books` pass through) and return the *shrunk* counterexample,
    or None when every book passes. Derandomized: the same call finds the same book."""
    from hypothesis import HealthCheck, Phase, Verbosity, given, settings

    margin_model = resolve_model(model)

    @settings(
        max_examples=max_examples,
        derandomize=True,
        database=None,
        deadline=None,
        verbosity=Verbosity.quiet,
        phases=(Phase.generate, Phase.shrink),
        report_multiple_bugs=False,
        suppress_health_check=list(HealthCheck),
    )
    @given(books(margin_model, **book_options))
    def run(book: Book) -> None:
        check_book(factory, book, claims, reference=reference, rtol=rtol)

    try:
        run()
    except InvariantViolation as exc:
        return Counterexample(exc.invariant, exc.detail, exc.book)
    return None


class MarginChecker:
    """:func:`find_counterexample` with fixed settings, failing with the shrunk book (what the
    pytest fixture ``margin_checker`` hands out)."""

    def __init__(self, max_examples: int = 100, rtol: float = 1e-9):
        self.max_examples, self.rtol = max_examples, rtol

    def check(
        self,
        factory: Factory,
        model: str | Path | MarginModel = "deribit-pm",
        *,
        claims: Claims | None = None,
        reference: Factory | None = None,
        **book_options: Any,
    ) -> None:
        """Raise AssertionError with the shrunk counterexample if any drawn book fails."""
        found = find_counterexample(
            factory,
            model,
            claims=claims,
            reference=reference,
            max_examples=self.max_examples,
            rtol=self.rtol,
            **book_options,
        )
        if found is not None:
            raise AssertionError(str(found))

    def against_engine(
        self,
        factory: Factory,
        model: str | Path | MarginModel = "deribit-pm",
        *,
        claims: Claims | None = None,
        **book_options: Any,
    ) -> None:
        """:meth:`check` with the Engine under ``model`` as the reference (differential testing)."""
        self.check(factory, model, claims=claims, reference=engine_factory, **book_options)
