"""Regression: at currency netting, an account's risk units need not be in currency order.

The engine nets pairs in blocks of whole accounts. Units ``BTC/USDC``, ``ETH``, ``ETH/USDC`` put
currencies in the order USDC, ETH; an account holding ``ETH`` and ``ETH/USDC`` then has node numbers
that decrease along its pairs, and the block's node range must still be found (it once raised
IndexError).
"""

from __future__ import annotations

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
