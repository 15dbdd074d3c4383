"""Reusable invariant checks for margin kernels.

Every check takes ``k``, any object with the four kernel functions of :mod:`marginkernel.kernels`
(``revalue``, ``net``, ``worst_loss``, ``value_at_risk``) -- the C++ kernels, the NumPy reference
:mod:`marginkernel.reference`, or your own implementation -- plus the inputs (see
:mod:`marginkernel.testing.strategies` for generators), and raises ``AssertionError`` with a
description when the invariant does not hold. They return nothing useful on success except where
documented.

Tolerances are arguments. Where an invariant holds exactly in floating point (e.g. reordering
instruments changes no arithmetic), the check is exact; where it only holds up to rounding (e.g.
reordering positions changes the summation order), the bound is relative to the natural scale
``sum_k |q_k| * |R[i_k, s]|`` of the netted P&L, or to the price scale of the instrument.

The "margin" used here is the plain worst-loss margin of architecture §3 per netting level: for each
account, the sum over risk units of ``max(0, -min_s w_s * P'[a, u, s])``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..codes import CALL, INVERSE, LINEAR, PUT
from .strategies import Instruments, Positions, RevalueCase, Scenarios

__all__ = [
    "book_pnl",
    "check_empty_book",
    "check_homogeneity",
    "check_instrument_permutation",
    "check_inverse_linear_identity",
    "check_long_option_loss_within_premium",
    "check_offsetting_position",
    "check_position_permutation",
    "check_put_call_parity",
    "check_scenario_permutation",
    "check_subadditivity",
    "check_wider_range_monotone",
    "check_zero_scenario",
    "concat_accounts",
    "pnl_scale",
    "risk_arrays",
    "worst_loss_margin",
]


# ---------------------------------------------------------------------------------------------
# helpers


def risk_arrays(k: Any, case: RevalueCase, threads: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """``(R, value_now)`` of ``case`` through ``k.revalue``."""
    risk, value_now = k.revalue(**case.kwargs(), threads=threads)
    return risk, value_now


def book_pnl(  # noqa: PLR0917 - positional API kept for existing callers
    k: Any, risk: np.ndarray, risk_unit: np.ndarray, n_units: int, positions: Positions, threads: int = 1
) -> np.ndarray:
    """``P[a, u, s]`` through ``k.net``."""
    out: np.ndarray = k.net(risk, risk_unit, n_units, **positions.arrays(), threads=threads)
    return out


def pnl_scale(risk: np.ndarray, risk_unit: np.ndarray, n_units: int, positions: Positions) -> np.ndarray:
    """``sum_k |q_k| * |R[i_k, s]|`` per (account, unit, scenario): the scale of netting rounding."""
    abs_pos = Positions(positions.account_start, positions.instrument, np.abs(positions.quantity))
    from .. import reference

    arrays = abs_pos.arrays()
    out: np.ndarray = reference.net(
        np.abs(risk), risk_unit, n_units, arrays["account_start"], arrays["instrument"], arrays["quantity"]
    )
    return out


def worst_loss_margin(
    k: Any, pnl: np.ndarray, weight: np.ndarray | None = None, gain_factor: float = 1.0
) -> np.ndarray:
    """Per account: sum over risk units of the worst (weighted, haircut) loss. ``pnl`` is (A, U, S)."""
    a, u, s = pnl.shape
    loss, _ = k.worst_loss(pnl.reshape(a * u, s), weight, gain_factor)
    out: np.ndarray = loss.reshape(a, u).sum(axis=1)
    return out


def concat_accounts(*books: Positions) -> Positions:
    """Positions whose accounts are those of ``books`` in order."""
    starts, inst, qty, offset = [np.zeros(1, np.int64)], [], [], 0
    for b in books:
        starts.append(b.account_start[1:] + offset)
        offset += b.account_start[-1]
        inst.append(b.instrument)
        qty.append(b.quantity)
    return Positions(
        np.concatenate(starts).astype(np.int64),
        np.concatenate(inst).astype(np.int32) if inst else np.zeros(0, np.int32),
        np.concatenate(qty).astype(float) if qty else np.zeros(0),
    )


def _merge_accounts(positions: Positions) -> Positions:
    """One account holding every position of ``positions``."""
    return Positions(np.array([0, len(positions.instrument)], np.int64), positions.instrument, positions.quantity)


def _assert_close(actual: Any, expected: Any, atol: Any, what: str) -> None:
    actual, expected = np.asarray(actual), np.asarray(expected)
    err = np.abs(actual - expected)
    bad = ~(err <= atol)
    if bad.any():
        idx = tuple(np.argwhere(bad)[0])
        tol = np.broadcast_to(atol, err.shape)[idx]
        raise AssertionError(
            f"{what}: at {idx} got {actual[idx]!r}, expected {expected[idx]!r} "
            f"(error {err[idx]:.3g} > tolerance {tol:.3g}); {int(bad.sum())} element(s) off"
        )


def _assert_equal(actual: Any, expected: Any, what: str) -> None:
    actual, expected = np.asarray(actual), np.asarray(expected)
    if actual.shape != expected.shape:
        raise AssertionError(f"{what}: shape {actual.shape} != {expected.shape}")
    bad = ~((actual == expected) | (np.isnan(actual) & np.isnan(expected)))
    if bad.any():
        idx = tuple(np.argwhere(bad)[0])
        raise AssertionError(
            f"{what}: not bit-identical at {idx}: {actual[idx]!r} != {expected[idx]!r} ({int(bad.sum())} element(s))"
        )


# ---------------------------------------------------------------------------------------------
# permutation invariance


def check_instrument_permutation(k: Any, case: RevalueCase, positions: Positions, perm: Any) -> None:
    """Reordering the instruments (and renumbering the positions to match) permutes the rows of R
    and leaves every account's P&L unchanged -- exactly: no arithmetic changes."""
    perm = np.asarray(perm)
    risk, now = risk_arrays(k, case)
    shuffled = RevalueCase(case.market, case.instruments.take(perm), case.scenarios, case.shock)
    risk_p, now_p = risk_arrays(k, shuffled)
    _assert_equal(risk_p, risk[perm], "R of permuted instruments")
    _assert_equal(now_p, now[perm], "value_now of permuted instruments")
    inverse = np.empty_like(perm)
    inverse[perm] = np.arange(len(perm))
    renumbered = Positions(positions.account_start, inverse[positions.instrument].astype(np.int32), positions.quantity)
    n_units = case.market.n_units
    _assert_equal(
        book_pnl(k, risk_p, shuffled.instruments.risk_unit, n_units, renumbered),
        book_pnl(k, risk, case.instruments.risk_unit, n_units, positions),
        "P&L after permuting instruments",
    )


def check_position_permutation(  # noqa: PLR0917 - positional API kept for existing callers
    k: Any, risk: np.ndarray, risk_unit: np.ndarray, n_units: int, positions: Positions, seed: int, rtol: float = 1e-12
) -> None:
    """Reordering positions within each account changes P only by summation rounding (within
    ``rtol * sum |q||R|``); reordering whole accounts permutes P's rows exactly."""
    rng = np.random.default_rng(seed)
    order = np.concatenate(
        [
            s + rng.permutation(e - s)
            for s, e in zip(positions.account_start[:-1], positions.account_start[1:], strict=True)
        ]
        + [np.zeros(0, np.int64)]
    ).astype(np.int64)
    within = Positions(positions.account_start, positions.instrument[order], positions.quantity[order])
    base = book_pnl(k, risk, risk_unit, n_units, positions)
    scale = pnl_scale(risk, risk_unit, n_units, positions)
    _assert_close(book_pnl(k, risk, risk_unit, n_units, within), base, rtol * scale, "P&L after reordering positions")

    acc = rng.permutation(positions.n_accounts)
    sizes = np.diff(positions.account_start)
    books = [
        Positions(
            np.array([0, sizes[a]], np.int64),
            positions.instrument[positions.account_start[a] : positions.account_start[a + 1]],
            positions.quantity[positions.account_start[a] : positions.account_start[a + 1]],
        )
        for a in acc
    ]
    _assert_equal(
        book_pnl(k, risk, risk_unit, n_units, concat_accounts(*books)), base[acc], "P&L after reordering accounts"
    )


def check_scenario_permutation(k: Any, case: RevalueCase, perm: Any) -> None:
    """Reordering scenarios permutes the columns of R exactly (each scenario is valued alone)."""
    perm = np.asarray(perm)
    risk, now = risk_arrays(k, case)
    risk_p, now_p = risk_arrays(k, RevalueCase(case.market, case.instruments, case.scenarios.take(perm), case.shock))
    _assert_equal(risk_p, risk[:, perm], "R of permuted scenarios")
    _assert_equal(now_p, now, "value_now with permuted scenarios")


# ---------------------------------------------------------------------------------------------
# margin algebra


def check_homogeneity(  # noqa: PLR0917 - positional API kept for existing callers
    k: Any,
    risk: np.ndarray,
    risk_unit: np.ndarray,
    n_units: int,
    positions: Positions,
    lam: float,
    gain_factor: float = 1.0,
    rtol: float = 1e-12,
) -> None:
    """margin(lam * book) == lam * margin(book) for lam >= 0: exactly when lam is a power of two
    (scaling is then exact), else within ``rtol * lam * sum |q||R|``."""
    assert lam >= 0.0
    scaled = Positions(positions.account_start, positions.instrument, lam * positions.quantity)
    got = worst_loss_margin(k, book_pnl(k, risk, risk_unit, n_units, scaled), gain_factor=gain_factor)
    want = lam * worst_loss_margin(k, book_pnl(k, risk, risk_unit, n_units, positions), gain_factor=gain_factor)
    mantissa, _ = np.frexp(lam)
    if lam == 0.0 or mantissa == 0.5:
        _assert_equal(got, want, f"margin({lam} * book)")
    else:
        scale = pnl_scale(risk, risk_unit, n_units, positions).max(axis=2).sum(axis=1) if len(got) else 0.0
        _assert_close(got, want, rtol * lam * scale, f"margin({lam} * book)")


def check_subadditivity(  # noqa: PLR0917 - positional API kept for existing callers
    k: Any,
    risk: np.ndarray,
    risk_unit: np.ndarray,
    n_units: int,
    a: Positions,
    b: Positions,
    weight: np.ndarray | None = None,
    gain_factor: float = 1.0,
    rtol: float = 1e-12,
) -> None:
    """Worst-loss margin of the merged book A+B <= margin(A) + margin(B) (a diversification can only
    help), up to netting rounding ``rtol * sum |q||R|``. Holds for any weights >= 0 and any gain
    factor in [0, 1] (the haircut min(x, g x) is superadditive)."""
    ma = worst_loss_margin(k, book_pnl(k, risk, risk_unit, n_units, _merge_accounts(a)), weight, gain_factor)
    mb = worst_loss_margin(k, book_pnl(k, risk, risk_unit, n_units, _merge_accounts(b)), weight, gain_factor)
    both = _merge_accounts(concat_accounts(a, b))
    mab = worst_loss_margin(k, book_pnl(k, risk, risk_unit, n_units, both), weight, gain_factor)
    wmax = 1.0 if weight is None else float(np.max(weight, initial=0.0))
    tol = rtol * wmax * pnl_scale(risk, risk_unit, n_units, both).max(axis=2).sum()
    if not mab[0] <= ma[0] + mb[0] + tol:
        raise AssertionError(
            f"margin(A+B) = {mab[0]!r} > margin(A) + margin(B) = {ma[0]!r} + {mb[0]!r} (tol {tol:.3g})"
        )


def check_empty_book(k: Any, risk: np.ndarray, risk_unit: np.ndarray, n_units: int, n_accounts: int = 3) -> None:
    """Accounts with no positions have zero P&L, zero worst-loss margin and zero VaR / ES."""
    empty = Positions(np.zeros(n_accounts + 1, np.int64), np.zeros(0, np.int32), np.zeros(0))
    pnl = book_pnl(k, risk, risk_unit, n_units, empty)
    if pnl.shape != (n_accounts, n_units, np.shape(risk)[1]):
        raise AssertionError(f"empty book P&L has shape {pnl.shape}")
    _assert_equal(pnl, np.zeros_like(pnl), "P&L of an empty book")
    _assert_equal(worst_loss_margin(k, pnl), np.zeros(n_accounts), "margin of an empty book")
    var, es = k.value_at_risk(pnl.reshape(n_accounts * n_units, np.shape(risk)[1]), 0.99)
    _assert_equal(np.abs(var), np.zeros_like(var), "VaR of an empty book")
    _assert_equal(np.abs(es), np.zeros_like(es), "ES of an empty book")


def check_offsetting_position(  # noqa: PLR0917 - positional API kept for existing callers
    k: Any,
    risk: np.ndarray,
    risk_unit: np.ndarray,
    n_units: int,
    positions: Positions,
    instrument: int,
    quantity: float,
    rtol: float = 1e-12,
) -> None:
    """Adding +q and -q of one instrument to every account leaves its P&L unchanged: exactly when
    the pair comes first (0 + qR - qR == 0 in IEEE arithmetic without fused multiply-add), within
    ``rtol * sum |q||R|`` when it comes last (the running sum is rounded in between)."""
    base = book_pnl(k, risk, risk_unit, n_units, positions)
    sizes = np.diff(positions.account_start)
    A = positions.n_accounts
    pair_i = np.array([instrument, instrument], np.int32)
    pair_q = np.array([quantity, -quantity])
    first_i, first_q, last_i, last_q = [], [], [], []
    for a in range(A):
        s, e = positions.account_start[a], positions.account_start[a + 1]
        first_i += [pair_i, positions.instrument[s:e]]
        first_q += [pair_q, positions.quantity[s:e]]
        last_i += [positions.instrument[s:e], pair_i]
        last_q += [positions.quantity[s:e], pair_q]
    starts = np.concatenate([[0], np.cumsum(sizes + 2)]).astype(np.int64)

    def cat(parts: list[np.ndarray], dt: Any) -> np.ndarray:
        return np.concatenate(parts).astype(dt) if parts else np.zeros(0, dt)

    first = Positions(starts, cat(first_i, np.int32), cat(first_q, float))
    last = Positions(starts, cat(last_i, np.int32), cat(last_q, float))
    _assert_equal(book_pnl(k, risk, risk_unit, n_units, first), base, "P&L with an offsetting pair first")
    scale = pnl_scale(risk, risk_unit, n_units, last)
    _assert_close(book_pnl(k, risk, risk_unit, n_units, last), base, rtol * scale, "P&L with an offsetting pair last")


def check_zero_scenario(k: Any, case: RevalueCase) -> None:
    """A scenario with m = 1, no vol shift and no look-ahead revalues every instrument to exactly
    zero P&L (the value now and in the scenario go through the same arithmetic)."""
    sc = case.scenarios
    zero = Scenarios(
        np.ones_like(sc.price_multiplier),
        None if sc.vol_shift is None else np.zeros_like(sc.vol_shift),
        None if sc.time_shift is None else np.zeros_like(sc.time_shift),
    )
    risk, _ = risk_arrays(k, RevalueCase(case.market, case.instruments, zero, case.shock))
    _assert_equal(risk, np.zeros_like(risk), "R in the unchanged-market scenario")


# ---------------------------------------------------------------------------------------------
# pricing identities


def check_long_option_loss_within_premium(
    k: Any, case: RevalueCase, quantity: float = 1.0, rtol: float = 1e-13
) -> None:
    """A long option can lose at most its premium: worst loss of +q options <= q * value_now
    (+ ``rtol`` x q x price scale for the rounding of a value near zero)."""
    assert quantity > 0
    risk, now = risk_arrays(k, case)
    opt = np.flatnonzero(np.isin(case.instruments.kind, (CALL, PUT)))
    if not len(opt):
        return
    loss, _ = k.worst_loss(np.ascontiguousarray(quantity * risk[opt]))
    premium = quantity * now[opt]
    tol = rtol * quantity * case.price_scale()[opt]
    bad = ~(loss <= premium + tol)
    if bad.any():
        j = np.flatnonzero(bad)[0]
        raise AssertionError(f"long option {opt[j]}: worst loss {loss[j]!r} > premium {premium[j]!r}")
    if (now[opt] < 0).any():
        raise AssertionError(f"negative option value now: {now[opt].min()!r}")


def _with(ins: Instruments, **changes: Any) -> Instruments:
    arrays = ins.arrays()
    for f, v in changes.items():
        arrays[f] = np.ascontiguousarray(np.broadcast_to(np.asarray(v, dtype=arrays[f].dtype), arrays[f].shape))
    return Instruments(**arrays)


def check_put_call_parity(k: Any, case: RevalueCase, rtol: float = 1e-13) -> None:
    """Long call - long put (same strike, expiry, vol; linear) is the synthetic forward: its value is
    discount x (F_s - K) x multiplier in every scenario, whatever the vol shock or look-ahead. So
    R_call - R_put == discount x multiplier x (F_s - F) and value_call - value_put == discount x
    multiplier x (F - K), within ``rtol`` x multiplier x max(F, F_s, K)."""
    ins = _with(case.instruments, settlement=LINEAR)
    calls = RevalueCase(case.market, _with(ins, kind=CALL), case.scenarios, case.shock)
    puts = RevalueCase(case.market, _with(ins, kind=PUT), case.scenarios, case.shock)
    rc, vc = risk_arrays(k, calls)
    rp, vp = risk_arrays(k, puts)
    m = case.scenarios.price_multiplier[ins.risk_unit]
    F, K, df, mult = (ins.forward[:, None], ins.strike[:, None], ins.discount[:, None], ins.multiplier[:, None])
    size = mult * np.maximum(np.maximum(F, F * m), K)
    _assert_close(rc - rp, df * mult * (F * m - F), rtol * size, "R(call) - R(put) vs synthetic forward")
    _assert_close(vc - vp, (df * mult * (F - K))[:, 0], rtol * size.max(axis=1), "value(call) - value(put)")


def check_inverse_linear_identity(k: Any, case: RevalueCase, rtol: float = 1e-13) -> None:
    """architecture §3: an inverse option's coin P&L is V(F_s)/S_s - V(F)/S with V the linear (quote)
    value, S_s = S x m; an inverse future / perpetual of notional N has coin P&L N (1/F - 1/F_s).
    Tolerance ``rtol`` x the coin price scale (multiplier x max(F, F_s, K) / min(S, S_s) for options,
    N / min(F, F_s) for futures)."""
    lin = RevalueCase(case.market, _with(case.instruments, settlement=LINEAR), case.scenarios, case.shock)
    inv = RevalueCase(case.market, _with(case.instruments, settlement=INVERSE), case.scenarios, case.shock)
    r_lin, v_lin = risk_arrays(k, lin)
    r_inv, v_inv = risk_arrays(k, inv)
    ins = inv.instruments
    m = case.scenarios.price_multiplier[ins.risk_unit]
    S = case.market.spot[ins.risk_unit][:, None]
    F, K, mult = ins.forward[:, None], ins.strike[:, None], ins.multiplier[:, None]
    option = np.isin(ins.kind, (CALL, PUT))
    value_later = r_lin + v_lin[:, None]  # V(F_s), quote currency
    want_opt = value_later / (S * m) - v_lin[:, None] / S
    want_fut = mult * (1.0 / F - 1.0 / (F * m))
    want = np.where(option[:, None], want_opt, np.where((ins.kind == 4)[:, None], 0.0, want_fut))
    size = np.where(
        option[:, None],
        mult * np.maximum(np.maximum(F, F * m), K) / np.minimum(S, S * m),
        mult / np.minimum(F, F * m),
    )
    _assert_close(r_inv, want, rtol * size, "inverse R vs linear identity")
    _assert_close(v_inv, np.where(option, v_lin / S[:, 0], 0.0), rtol * size.max(axis=1), "inverse value_now")


def check_wider_range_monotone(
    k: Any, case: RevalueCase, positions: Positions, wide: Scenarios, narrow_columns: Any
) -> None:
    """Widening the scenario set never lowers the worst-case margin: if the narrow grid is the
    columns ``narrow_columns`` of ``wide``, every account's margin on ``wide`` >= that on the narrow
    grid -- exactly (the shared scenarios revalue identically)."""
    narrow = wide.take(np.asarray(narrow_columns))
    units = case.instruments.risk_unit
    n_units = case.market.n_units
    out = []
    for sc in (narrow, wide):
        r, _ = risk_arrays(k, RevalueCase(case.market, case.instruments, sc, case.shock))
        out.append(worst_loss_margin(k, book_pnl(k, r, units, n_units, positions)))
    bad = ~(out[1] >= out[0])
    if bad.any():
        a = np.flatnonzero(bad)[0]
        raise AssertionError(f"account {a}: margin on the wider grid {out[1][a]!r} < on the narrower {out[0][a]!r}")
