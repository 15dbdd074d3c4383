"""Regression: at currency netting, an account's risk units need not be in currency order.

The engine nets pairs in blocks of whole accounts. Units ``BTC/USDC``, ``ETH``, ``ETH/USDC`` put
currencies in the order USDC, ETH; an account holding ``ETH`` and ``ETH/USDC`` then has node numbers
that decrease along its pairs, and the block's node range must still be found (it once raised
IndexError).
"""

from __future__ import annotations

import numpy as np
import pytest

import marginkernel as mk

INSTRUMENTS = [
    {
        "id": "BTC-USDC-FUT",
        "kind": "future",
        "underlying": "BTC",
        "settlement": "linear",
        "currency": "USDC",
        "expiry": "2026-12-27T08:00:00Z",
        "multiplier": 1,
    },
    {
        "id": "ETH-FUT",
        "kind": "future",
        "underlying": "ETH",
        "settlement": "inverse",
        "expiry": "2026-12-27T08:00:00Z",
        "multiplier": 10,
    },
    {
        "id": "ETH-USDC-FUT",
        "kind": "future",
        "underlying": "ETH",
        "settlement": "linear",
        "currency": "USDC",
        "expiry": "2026-12-27T08:00:00Z",
        "multiplier": 1,
    },
]
MARKET = {
    "time": "2026-11-21T08:00:00Z",
    "spot": {"BTC": 98_000.0, "ETH": 3_500.0},
    "carry": {"BTC": 0.05, "ETH": 0.05},
}


def test_nodes_of_one_account_out_of_currency_order():
    engine = mk.Engine(
        mk.Instruments.from_records(INSTRUMENTS), mk.Market.from_dict(MARKET), mk.load_model("deribit-pm")
    )
    assert engine.model.netting == "currency"
    assert list(engine.netting.unit_cur) == [0, 1, 0]  # the layout this test is about
    both = engine.margin(
        [
            {"account": "a", "instrument": "ETH-USDC-FUT", "quantity": 20.0},
            {"account": "a", "instrument": "ETH-FUT", "quantity": -300.0},
        ]
    ).accounts
    alone = engine.margin(
        [
            {"account": "b", "instrument": "ETH-USDC-FUT", "quantity": 20.0},
            {"account": "c", "instrument": "ETH-FUT", "quantity": -300.0},
        ]
    ).accounts
    # different settlement currencies are separate nodes: the account's IM is the sum of both alone
    assert both.loc["a", "im"] > 0
    assert abs(both.loc["a", "im"] - (alone.loc["b", "im"] + alone.loc["c", "im"])) <= 1e-9 * both.loc["a", "im"]


def _reduce_in_full(values, group, n_groups, factor, cap):
    """netting._reduce without its shortcut for a zero gain factor: losses + min(gains, cap)."""
    from marginkernel.engine.netting import _Groups

    groups = _Groups(group, n_groups)
    losses = groups.sum(np.minimum(values, 0.0))
    gains = groups.sum(np.maximum(values, 0.0) * factor[:, None])
    out = losses + np.minimum(gains, cap[:, None])
    single = groups.counts == 1
    out[single] = values[groups.first[single]]
    return out


@pytest.mark.parametrize("seed", range(5))
def test_a_zero_gain_factor_nets_the_losses_bit_for_bit(seed):
    """With no gain offsets (deribit-pm) the gains are not summed: the node P&L is the same bits,
    -0.0 and single-row nodes included; a non-finite P&L still takes the full path (NaN stays NaN)."""
    from marginkernel.engine.netting import _reduce

    rng = np.random.default_rng(seed)
    n_rows, n_groups = 400, 90
    values = rng.normal(0, 1e3, (n_rows, 12)) * rng.integers(0, 2, (n_rows, 12))
    values[rng.random(values.shape) < 0.1] = -0.0
    group = rng.integers(0, n_groups, n_rows)
    factor, cap = np.zeros(n_rows), rng.choice([0.0, 5.0, np.inf], n_groups)
    want = _reduce_in_full(values, group, n_groups, factor, cap)
    got = _reduce(values, group, n_groups, factor, cap)
    assert got.tobytes() == want.tobytes()
    values[7, 3], group[7] = np.inf, group[8]  # in a node of two rows or more
    with np.errstate(invalid="ignore"):  # inf * 0.0
        want = _reduce_in_full(values, group, n_groups, factor, cap)
        got = _reduce(values, group, n_groups, factor, cap)
    assert np.isnan(got[group[7], 3]) and np.array_equal(got, want, equal_nan=True)
