"""Determinism, as docs/determinism.md states it:

* on one SIMD target, every kernel returns the same bits on every run and for every thread count;
* netting and the worst-loss reduction are exact-order computations: the same bits on every target;
  linear instruments (futures, perpetuals, spot) revalue to the same bits on every target;
* option values may differ between targets (fused multiply-add in exp and the CDF polynomials on
  AVX2 / AVX-512, not on baseline), within |dR| <= 16 eps * S with S = multiplier * (F m + F + 2 K),
  divided by spot * min(m, 1) for inverse options (measured: 2.2 eps * S).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from marginkernel import kernels

TARGETS = kernels.available_simd_targets()
EPS = np.finfo(np.float64).eps


@pytest.fixture
def each_target() -> Iterator[None]:
    yield
    kernels.select_simd_target(TARGETS[0])


def book(seed: int, n: int = 700, units: int = 3, ns: int = 131) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    return {
        "kind": rng.integers(0, 5, n).astype(np.int8),
        "settlement": rng.integers(0, 2, n).astype(np.int8),
        "risk_unit": rng.integers(0, units, n).astype(np.int32),
        "strike": rng.uniform(20, 300, n),
        "expiry": rng.uniform(-0.01, 2, n),
        "multiplier": rng.uniform(0.1, 10, n),
        "forward": rng.uniform(50, 150, n),
        "discount": rng.uniform(0.9, 1, n),
        "vol": rng.uniform(0, 2, n),
        "spot": np.full(units, 100.0),
        "price_multiplier": rng.uniform(0.3, 2.5, (units, ns)),
        "vol_shift": rng.uniform(-0.9, 0.9, (units, ns)),
        "time_shift": rng.uniform(0, 0.05, ns),
        "vol_shock": "multiplicative",
        "short_power": 0.3,
        "long_power": 0.5,
    }


def positions(seed: int, n_instruments: int, accounts: int = 150) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    counts = rng.integers(0, 12, accounts)
    return {
        "account_start": np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        "instrument": rng.integers(0, n_instruments, counts.sum()).astype(np.int32),
        "quantity": rng.integers(-20, 21, counts.sum()) * 0.25,
    }


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("seed", [1, 2])
def test_bitwise_across_runs_and_threads(target: str, seed: int, each_target: None) -> None:
    kernels.select_simd_target(target)
    args = book(seed)
    risk, now = kernels.revalue(**args)
    pos = positions(seed, len(args["kind"]))
    pnl = kernels.net(risk, args["risk_unit"], 3, **pos)
    loss, worst = kernels.worst_loss(pnl.reshape(-1, risk.shape[1]), args["price_multiplier"] * 0 + 0.5, 0.3)
    for threads in (1, 2, 3, 8, 1000):
        again, now_again = kernels.revalue(**args, threads=threads)
        assert np.array_equal(again, risk) and np.array_equal(now_again, now)
        assert np.array_equal(kernels.net(again, args["risk_unit"], 3, **pos, threads=threads), pnl)
    loss2, worst2 = kernels.worst_loss(pnl.reshape(-1, risk.shape[1]), args["price_multiplier"] * 0 + 0.5, 0.3)
    assert np.array_equal(loss2, loss) and np.array_equal(worst2, worst)


@pytest.mark.parametrize("seed", [3, 4, 5])
def test_across_targets(seed: int, each_target: None) -> None:
    args = book(seed)
    pos = positions(seed, len(args["kind"]))
    results = {}
    for target in TARGETS:
        kernels.select_simd_target(target)
        risk, now = kernels.revalue(**args)
        results[target] = risk, now
    base_risk, base_now = results[TARGETS[-1]]  # baseline is always last (best first)
    assert TARGETS[-1] == "baseline"
    kind, unit, m = args["kind"], args["risk_unit"], args["price_multiplier"][args["risk_unit"]]
    fwd, strike, mult = args["forward"][:, None], args["strike"][:, None], args["multiplier"][:, None]
    scale = mult * (fwd * m + fwd + 2 * strike)
    inverse = (args["settlement"] == 1)[:, None]
    scale = np.where(inverse, scale / (args["spot"][unit][:, None] * np.minimum(m, 1.0)), scale)
    linear = kind < 2
    for target, (risk, now) in results.items():
        # Linear instruments: the same bits everywhere; options: within the documented bound.
        assert np.array_equal(risk[linear], base_risk[linear]), target
        assert np.all(np.abs(risk - base_risk) <= 16 * EPS * scale), target
        assert np.all(np.abs(now - base_now) <= 16 * EPS * scale[:, 0]), target
        # Netting and the reduction are exact-order: the same bits on every target for the same R.
        kernels.select_simd_target(target)
        pnl = kernels.net(base_risk, unit, 3, **pos)
        kernels.select_simd_target("baseline")
        assert np.array_equal(pnl, kernels.net(base_risk, unit, 3, **pos)), target
        flat = pnl.reshape(-1, pnl.shape[2])
        kernels.select_simd_target(target)
        got = kernels.worst_loss(flat, args["price_multiplier"], 0.25)
        kernels.select_simd_target("baseline")
        want = kernels.worst_loss(flat, args["price_multiplier"], 0.25)
        assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1]), target


@pytest.mark.parametrize("n_scenarios", [15, 16, 64, 65])
def test_net_sums_position_by_position_when_a_unit_comes_back(each_target: None, n_scenarios: int) -> None:
    # Positions sorted by instrument can visit a risk unit in several runs (u0, u1, u0 u0). The sum
    # must be taken in position order, ((1 + 1e16) - 1e16) = 0, as the reference does -- not
    # 1 + (1e16 - 1e16) = 1, which a run-wise partial sum gives (it once did, for blocks of scenarios).
    risk = np.repeat(np.array([[1.0], [5.0], [1e16], [-1e16]]), n_scenarios, axis=1)
    unit = np.array([0, 1, 0, 0], dtype=np.int32)
    args = (risk, unit, 2, np.array([0, 4]), np.arange(4, dtype=np.int32), np.ones(4))
    for target in TARGETS:
        kernels.select_simd_target(target)
        pnl = kernels.net(*args)
        np.testing.assert_array_equal(pnl[0, 0], np.zeros(n_scenarios), err_msg=target)
        np.testing.assert_array_equal(pnl[0, 1], np.full(n_scenarios, 5.0), err_msg=target)
