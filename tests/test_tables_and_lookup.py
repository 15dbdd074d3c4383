"""Column-by-column instrument parsing against the per-value rule, and the one keyed lookup."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

import marginkernel as mk
from marginkernel.instruments import to_epoch_seconds
from marginkernel.keyed import keyed_array, keyed_value


def test_from_frame_parses_every_expiry_form_like_to_epoch_seconds():
    forms = [
        "2026-12-27T08:00:00Z",
        "2026-12-27 08:00:00+02:00",
        "2026-12-27",
        1_798_358_400.0,
        dt.datetime(2026, 12, 27, 8, tzinfo=dt.UTC),
        pd.Timestamp("2026-12-27T08:00:00"),
        dt.datetime(2026, 12, 27, 8),
    ]
    frame = pd.DataFrame(
        {
            "id": [f"F{k}" for k in range(len(forms))],
            "kind": "future",
            "underlying": "BTC",
            "expiry": pd.Series(forms, dtype=object),
        }
    )
    inst = mk.Instruments.from_frame(frame)
    np.testing.assert_array_equal(inst.expiry, [to_epoch_seconds(f) for f in forms])
    assert inst.expiry[0] == 1_798_358_400.0 and inst.expiry[1] == 1_798_358_400.0 - 7_200.0


def test_from_frame_fills_defaults_and_checks_columns():
    frame = pd.DataFrame(
        {
            "id": ["C", "IF", "S"],
            "kind": ["call", "future", "spot"],
            "underlying": "ETH",
            "settlement": [None, "inverse", None],
            "strike": [3_000, None, None],
            "expiry": ["2027-01-01", "2027-01-01", None],
        }
    )
    inst = mk.Instruments.from_frame(frame)
    assert list(inst.currency) == ["USD", "ETH", "USD"] and list(inst.settlement) == [0, 1, 0]
    np.testing.assert_array_equal(inst.multiplier, [1.0, 1.0, 1.0])
    assert np.isnan(inst.strike[1:]).all() and np.isnan(inst.expiry[2])
    assert list(inst.risk_units) == ["ETH/USD", "ETH", "ETH/USD"]
    with pytest.raises(ValueError, match=r"instruments: unknown field\(s\) \['colour'\]"):
        mk.Instruments.from_frame(frame.assign(colour="red"))
    with pytest.raises(ValueError, match=r"instrument 'IF' \(row 2\): duplicate id"):
        mk.Instruments.from_frame(frame.assign(id=["C", "IF", "IF"]))
    with pytest.raises(TypeError, match=r"instrument 'C' \(row 0\): field 'strike' must be a number, got 'x'"):
        mk.Instruments.from_frame(frame.assign(strike=pd.Series(["x", None, None], dtype=object)))


def test_keyed_lookup_order_default_and_fallback():
    spec = {"BTC/USDC": 1.0, "BTC": 2.0, "default": 3.0}
    assert keyed_value(spec, ("BTC/USDC", "BTC"), "k") == 1.0
    assert keyed_value(spec, ("BTC/USD", "BTC"), "k") == 2.0
    assert keyed_value(spec, ("ETH/USD", "ETH"), "k") == 3.0
    assert keyed_value(0.5, ("anything",), "k") == 0.5
    assert keyed_value({"X": 1.0}, ("Y",), "k", fallback=0.0) == 0.0
    with pytest.raises(ValueError, match=r"k: no value for risk unit 'Y' and no 'default'"):
        keyed_array({"X": 1.0}, [("Y",)], "k", labels=["risk unit 'Y'"])
    np.testing.assert_array_equal(keyed_array(spec, [("BTC/USDC", "BTC"), ("E", "ETH")], "k"), [1.0, 3.0])
