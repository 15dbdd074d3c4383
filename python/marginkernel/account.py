"""Pre-trade risk: account state kept in C++, what-if and checks in well under a microsecond.

:class:`AccountBook` holds, for every account, its positions and its scenario P&L per risk unit,
cached and updated incrementally (architecture §2 "What-if is incremental"):

* ``add_fill(account, instrument, quantity)`` applies a trade: ``P[a, u] += q * R[i]``;
* ``what_if(account, instrument, quantity)`` gives the account's IM / MM after an order without
  changing anything: one fused pass over the order's risk unit (O(scenarios), no allocation);
* ``check(account, instrument, quantity, equity)`` accepts or rejects the order against equity;
* ``update_unit(unit, rows)`` applies a market update of one risk unit: ``P += Q * dR`` for the
  accounts holding it, nothing else is touched.

For the full margin model of an :class:`~marginkernel.engine.Engine` (netting nodes, add-ons,
collateral, the same figures as ``Engine.margin``) use :func:`account_book` (:mod:`marginkernel.book`,
docs/book.md); :class:`AccountBook` keeps the simple rule below.

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
from typing import Any

import numpy as np

from . import _core, kernels
from .kernels import as_array

__all__ = [
    "AccountBook",
    "Check",
    "InputError",
    "Margin",
    "ModelBook",
    "ModelCheck",
    "ModelWhatIf",
    "UnitMargin",
    "UnknownIdError",
    "WhatIf",
    "account_book",
]

WhatIf = _core.WhatIf
Check = _core.Check
Margin = _core.Margin
UnitMargin = _core.UnitMargin
UnknownIdError = _core.UnknownIdError
InputError = _core.InputError


def _f64(name: str, value: Any, ndim: int) -> np.ndarray:
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
        risk: Any,
        risk_unit: Any,
        n_units: int | None = None,
        *,
        n_accounts: int = 0,
        weight: Any = None,
        fx: Any = None,
        gain_factor: float = 1.0,
        mm_factor: float = 1.0,
        allow_risk_reducing: bool = True,
        expiry: Any = None,
    ) -> None:
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

    def add_fills(self, accounts: Any, instruments: Any, quantities: Any) -> None:
        """Applies many fills in order. All are checked first: if one is bad, none is applied."""
        super().add_fills(
            as_array("accounts", accounts, np.int64, 1),
            as_array("instruments", instruments, np.int32, 1),
            _f64("quantities", quantities, 1),
        )

    def update_unit(self, unit: int, rows: Any, fx: float | None = None, threads: int = 1) -> None:
        """Market update of one risk unit.

        ``rows[k]`` is the new risk row of instrument ``instruments_of(unit)[k]`` (shape
        ``(len(instruments_of(unit)), n_scenarios)``); ``fx`` the unit's new reporting rate. Every
        account holding the unit gets ``P += sum_i q_i * (R'[i] - R[i])``, then its unit loss and IM
        are refreshed; other units are not touched. Rounding drifts by about ``eps * sum |q| |R|``
        per update; :meth:`rebuild` recomputes everything from the positions.
        """
        super().update_unit(int(unit), _f64("rows", rows, 2), None if fx is None else float(fx), int(threads))

    def update_unit_from_market(
        self,
        unit: int,
        instruments: Mapping[str, Any],
        scenarios: Mapping[str, Any],
        fx: float | None = None,
        *,
        threads: int = 1,
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
        unknown = set(sc) - {
            "spot",
            "price_multiplier",
            "vol_shift",
            "time_shift",
            "vol_shock",
            "tau_floor_days",
            "short_power",
            "long_power",
            "vol_up_floor",
        }
        if unknown:
            raise ValueError(f"scenarios: unknown argument(s) {sorted(unknown)}")
        shock = sc.get("vol_shock", "none")
        if shock not in kernels.VOL_SHOCKS:
            raise ValueError(f"vol_shock: must be one of {sorted(kernels.VOL_SHOCKS)}, got {shock!r}")
        vol_shift, time_shift = sc.get("vol_shift"), sc.get("time_shift")
        # The C++ AccountBook::update_unit revalues the unit's rows itself (no Python copy of it).
        kind, settlement, risk_unit, strike, expiry, multiplier, forward, discount, vol = cols
        self._update_unit_from_market(
            int(unit),
            kind,
            settlement,
            risk_unit,
            strike,
            expiry,
            multiplier,
            forward,
            discount,
            vol,
            _f64("spot", sc["spot"], 1),
            _f64("price_multiplier", sc["price_multiplier"], 2),
            None if vol_shift is None else _f64("vol_shift", vol_shift, 2),
            None if time_shift is None else _f64("time_shift", time_shift, 1),
            kernels.VOL_SHOCKS[shock],
            float(sc.get("tau_floor_days", 1.0)),
            float(sc.get("short_power", 0.0)),
            float(sc.get("long_power", 0.0)),
            float(sc.get("vol_up_floor", 0.0)),
            None if fx is None else float(fx),
            int(threads),
        )


# The book is the model: the Engine's full model held per account (marginkernel.book).
from .book import ModelBook, ModelCheck, ModelWhatIf, account_book  # noqa: E402
