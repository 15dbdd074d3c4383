"""The Takasbank (Borsa Istanbul, 2016-05-17) oracle read by the streaming reader: its measured
regeneration errors and the takasbank rules (skipped when the file is absent, see test_span.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from marginkernel import span
from test_span import _oracle_file


@pytest.fixture(scope="module")
def takas():
    path = _oracle_file()
    if not path.is_file():
        pytest.skip(f"SPAN oracle not found at {path}")
    return span.read_span(path)


@pytest.fixture(scope="module")
def regenerated(takas):
    return span.regenerate_arrays(takas)


def test_oracle_keeps_its_figures_with_the_streaming_reader(takas, regenerated):
    """The streaming reader and the file-driven look-ahead keep the measured errors: options median
    1.02e-6, max 3.09e-5 of each array's largest value (the file states no look-ahead: 1/250)."""
    assert takas.look_ahead is None and regenerated.look_ahead == span.DEFAULT_LOOK_AHEAD
    opt = span.error_summary(span.compare_arrays(takas, regenerated)).loc["option"]
    assert opt["median_rel_err"] <= 1.1e-6 and opt["max_rel_err"] <= 3.2e-5
    # the file's extreme points: 3 x the scan range covering 32 %
    assert takas.scan_points["price_mult"].iloc[14:].tolist() == [3.0, -3.0]
    assert takas.scan_points["weight"].iloc[14:].tolist() == [0.32, 0.32]


def test_oracle_takasbank_rules(takas):
    c = takas.contracts
    pos = pd.DataFrame(
        {"contract": c.loc[c["kind"].isin(["C", "P"]), "contract"].iloc[:6], "quantity": [-3, 2, -1, 4, -2, 1]}
    )
    res = span.margin(takas, pos, rules="takasbank").by_commodity
    assert (res["requirement"] == res["risk"]).all()  # NOV reported, not subtracted
    np.testing.assert_allclose(res["maintenance"], 0.75 * res["requirement"], rtol=1e-15)
    nse_rule = span.margin(takas, pos, rules=span.SpanRules(net_option_value="subtract")).by_commodity
    np.testing.assert_allclose(
        nse_rule["requirement"], np.maximum(res["risk"] - res["net_option_value"], 0), rtol=1e-15
    )
