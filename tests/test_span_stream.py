"""The streaming reader's event source: chunking, the public-API fallback, the series fast path."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from marginkernel import span
from marginkernel.span import reader, records

XML = span.sample_xml("nse", n_underlyings=3, n_strikes=4)
FIRST_CALL = "<o>C</o><k>980.00</k>"


def _same(a: span.SpanFile, b: span.SpanFile) -> None:
    for name in ("products", "expiries", "contracts", "scan_points", "delta_points", "commodities"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name), check_exact=True)
    assert np.array_equal(a.risk_arrays, b.risk_arrays, equal_nan=True)
    assert (a.intra_spreads, a.inter_spreads, a.params) == (b.intra_spreads, b.inter_spreads, b.params)


@pytest.mark.parametrize("chunk", [1, 7, 1000, 1 << 16])
def test_chunk_size_does_not_change_the_result(monkeypatch, chunk):
    whole = span.parse_span(XML)
    monkeypatch.setattr(reader, "_CHUNK", chunk)
    got = span.parse_span(XML)
    _same(whole, got)
    assert len(got.contracts) == sum(XML.count(t) for t in ("<phy>", "<fut>", "<opt>")) == 174
    assert (got.contracts["kind"].isin(["C", "P"])).sum() == XML.count("<opt>")
    assert got.risk_arrays.shape == (len(got.contracts), 16)


def _events_only(monkeypatch) -> None:
    """Read on per-element events (the path that also reports malformed files)."""
    monkeypatch.setattr(reader, "_read_tree", lambda source, products: None)


@pytest.mark.parametrize("chunk", [1, 1000, 1 << 16])
def test_event_reader_gives_the_same_file(monkeypatch, chunk):
    tree, subset = span.parse_span(XML), span.parse_span(XML, products=["STK1"])
    assert sorted(set(subset.contracts["pf_code"])) == ["STK1"]
    _events_only(monkeypatch)
    monkeypatch.setattr(reader, "_CHUNK", chunk)
    _same(tree, span.parse_span(XML))
    _same(subset, span.parse_span(XML, products=["STK1"]))


def test_pull_parser_fallback_gives_the_same_file(monkeypatch):
    tree = span.parse_span(XML)

    def fallback():
        events: list = []
        return reader._PullFallback(events), events

    _events_only(monkeypatch)
    monkeypatch.setattr(reader, "_event_parser", fallback)
    _same(tree, span.parse_span(XML))
    with pytest.raises(ValueError, match=r"malformed SPAN XML \(truncated or not well-formed\) in spanFile"):
        span.parse_span(XML[: len(XML) // 2])


@pytest.mark.parametrize("value", ["-nan", "+nan", "NaN", "inf"])
def test_non_finite_option_value_names_the_option(value):
    at = XML.index(FIRST_CALL)
    start = XML.index("<val>", at) + len("<val>")
    bad = XML[:start] + value + XML[XML.index("</val>", start) :]
    with pytest.raises(ValueError, match=r"series\[pe=20240104\]/opt\[cId=\d+\]/<val>: must be finite"):
        span.parse_span(bad)


def test_bad_value_before_a_truncation_is_reported_first(monkeypatch):
    at = XML.index(FIRST_CALL)
    bad = XML[:at] + XML[at:].replace("<k>980.00</k>", "<k>-1</k>", 1)
    cut = bad[: bad.index("</series>", at) + 40]  # the series is complete, the file is not
    monkeypatch.setattr(reader, "_CHUNK", len(cut.encode()) + 10)  # one chunk: the error comes with it
    with pytest.raises(ValueError, match=r"opt\[cId=\d+\]/<k>: strike must be > 0"):
        span.parse_span(cut)


def test_series_fast_path_matches_the_checked_path(monkeypatch):
    fast = span.parse_span(XML)
    monkeypatch.setattr(records, "options_fast", lambda opts, head, n_points: None)
    _same(fast, span.parse_span(XML))


def test_duplicate_option_across_series_names_the_second():
    first = XML.index("<opt><cId>")
    c_id = XML[first + len("<opt><cId>") : XML.index("</cId>", first)]
    second_series = XML.index("<series>", XML.index("</series>", first))
    at = XML.index("<opt><cId>", second_series) + len("<opt><cId>")
    bad = XML[:at] + c_id + XML[XML.index("</cId>", at) :]
    with pytest.raises(ValueError, match=rf"/opt\[cId={c_id}\]: duplicate contract \(pfId \d+, cId {c_id}\)"):
        span.parse_span(bad)


@pytest.mark.parametrize("tag", ["exchange", "oopPf", "series"])
def test_deep_nesting_is_an_error_not_a_crash(tag):
    at = XML.index("<exch>")
    deep = XML[:at] + f"<{tag}>" * 5000 + f"</{tag}>" * 5000 + XML[at:]
    with pytest.raises(ValueError, match=rf"exchange/<{tag}>: unknown element|exchange\[\w*\]/{tag}: missing <pfId>"):
        span.parse_span(deep)
