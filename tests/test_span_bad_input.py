"""Bad SPAN files are refused at read time with the element path and field in the message."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from marginkernel import span

XML = span.sample_xml("nse", n_underlyings=1, n_strikes=1)
FIRST_CALL = "<o>C</o><k>980.00</k>"


def _first(tag_open: str, value: str) -> str:
    """XML with the first ``tag_open`` value after the first option replaced."""
    at = XML.index(FIRST_CALL)
    head, tail = XML[:at], XML[at:]
    start = tail.index(tag_open) + len(tag_open)
    end = tail.index("<", start)
    return head + tail[:start] + value + tail[end:]


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-inf", "1e999"])
def test_non_finite_array_values(value):
    with pytest.raises(
        ValueError, match=r"oopPf\[pfId=3\]/series\[pe=20240104\]/opt\[cId=\d+\]/ra/<a>\[0\]: must be finite"
    ):
        span.parse_span(_first("<a>", value))


@pytest.mark.parametrize(
    "old, new, match",
    [
        (FIRST_CALL, "<o>C</o><k>0</k>", r"opt\[cId=\d+\]/<k>: strike must be > 0, got 0.0"),
        (FIRST_CALL, "<o>C</o><k>-5</k>", r"opt\[cId=\d+\]/<k>: strike must be > 0"),
        (FIRST_CALL, "<o>C</o><k>nan</k>", r"opt\[cId=\d+\]/<k>: must be finite"),
        ("<t>0.008219</t><cvf>1</cvf>", "<t>0.008219</t><cvf>0</cvf>", r"series\[pe=20240104\]/<cvf>: must be > 0"),
        ("<t>0.008219</t><cvf>1</cvf>", "<t>0.008219</t><cvf>-1</cvf>", r"series\[pe=20240104\]/<cvf>: must be > 0"),
        (
            "<v>0</v><cvf>1</cvf><val>1000.58</val>",
            "<v>0</v><cvf>0</cvf><val>1000.58</val>",
            r"futPf\[pfId=2\]/fut\[cId=100\]/<cvf>: must be > 0",
        ),
        ("<t>0.008219</t><cvf>1</cvf>", "<t>-0.1</t><cvf>1</cvf>", r"series\[pe=20240104\]/<t>: must be >= 0"),
        (
            "<priceScan>90.00</priceScan><volScanPct>0.25",
            "<priceScan>-90</priceScan><volScanPct>0.25",
            r"series\[pe=20240104\]/scanRate/<priceScan>: must be >= 0",
        ),
        ("<weight>0.350000</weight>", "<weight>-0.35</weight>", r"scanPointDef\[14\]/<weight>: must be >= 0"),
        (
            "<lookAheadYears>0.002739726</lookAheadYears>",
            "<lookAheadYears>nan</lookAheadYears>",
            r"clearingOrg/<lookAheadYears>: must be finite",
        ),
        (
            "<lookAheadYears>0.002739726</lookAheadYears>",
            "<lookAheadYears>2</lookAheadYears>",
            r"clearingOrg/<lookAheadYears>: must be <= 1.0",
        ),
        ("<factor>80</factor>", "<factor>0</factor>", r"curConv/<factor>: must be > 0"),
        ("<pe>20240111</pe><rs>B</rs>", "<rs>B</rs>", r"dSpread\[0\]/pLeg\[1\]: missing <pe>"),
        (
            "<pLeg><cc>IDX</cc><pe>20240111</pe>",
            "<pLeg><cc>NOPE</cc><pe>20240111</pe>",
            r"ccDef\[cc=IDX\]/dSpread\[spread=1\]/pLeg: unknown cc 'NOPE'",
        ),
    ],
)
def test_bad_values_name_the_element(old, new, match):
    assert old in XML, old
    with pytest.raises(ValueError, match=match):
        span.parse_span(XML.replace(old, new, 1))


def test_leg_naming_an_undefined_tier():
    xml = span.sample_xml("takasbank", n_underlyings=1, n_strikes=0)
    old = "<tLeg><cc>IDX</cc><tn>0</tn><rs>B</rs>"
    assert old in xml
    with pytest.raises(
        ValueError, match=r"ccDef\[cc=IDX\]/dSpread\[spread=1\]/tLeg: tier 5 is not defined for commodity 'IDX'"
    ):
        span.parse_span(xml.replace(old, "<tLeg><cc>IDX</cc><tn>5</tn><rs>B</rs>"))


def test_negative_vol():
    with pytest.raises(ValueError, match=r"opt\[cId=\d+\]/<v>: volatility must be >= 0"):
        span.parse_span(_first("<v>", "-0.2"))


@pytest.mark.parametrize("fraction", [0.05, 0.2, 0.35, 0.5, 0.65, 0.8, 0.95, 0.999])
def test_truncated_file(tmp_path, fraction):
    path = tmp_path / "cut.spn"
    path.write_bytes(XML.encode()[: int(len(XML) * fraction)])
    with pytest.raises(ValueError, match=r"cut.spn: malformed SPAN XML \(truncated or not well-formed\) in spanFile"):
        span.read_span(path)


@pytest.mark.parametrize(
    "text, match",
    [
        ("", r"malformed SPAN XML"),
        ("<spanFile><fileFormat>4.00</fileFormat>", r"malformed SPAN XML .* in spanFile"),
        ("<spanFile><pointInTime></spanFile>", r"malformed SPAN XML .* in spanFile/pointInTime"),
        ("not xml at all", r"malformed SPAN XML"),
        ("<spanFile><fileFormat>4.00</fileFormat></spanFile>", r"expected one <clearingOrg>, got 0"),
    ],
)
def test_malformed(text, match):
    with pytest.raises(ValueError, match=match):
        span.parse_span(text)


def test_not_a_regular_file(tmp_path):
    with pytest.raises(ValueError, match=r"not a regular file"):
        span.read_span(tmp_path)


def test_complex_and_non_numeric_quantities():
    f = span.parse_span(XML)
    for q in (1j, "1+2j", None, "x", float("nan")):
        with pytest.raises(ValueError, match=r"positions\['quantity'\] row 0: not a finite number"):
            span.margin(f, pd.DataFrame({"contract": ["FUT:IDX:20240104"], "quantity": [q]}))
    # a position in a physical without a published array: named, not silently zero
    with pytest.raises(ValueError, match=r"arrays: no risk array for position row 0 \(PHY:IDX:000000\)"):
        span.margin(f, pd.DataFrame({"contract": ["PHY:IDX:000000"], "quantity": [1]}))
    assert np.isnan(f.risk_arrays[0]).all()


def test_inputs_not_mutated():
    f = span.parse_span(XML)
    pos = pd.DataFrame({"contract": ["FUT:IDX:20240104", "FUT:IDX:20240111"], "quantity": [1, -1]})
    before_pos, before_arr = pos.copy(), f.risk_arrays.copy()
    span.margin(f, pos)
    pd.testing.assert_frame_equal(pos, before_pos)
    np.testing.assert_array_equal(f.risk_arrays, before_arr)
