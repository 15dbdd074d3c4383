"""The invariant toolkit for users (marginkernel.testing.books / checker / pytest_plugin).

* the Engine satisfies every invariant its model class claims (each preset, and add-on-free
  variants that claim homogeneity, subadditivity and monotonicity);
* each invariant catches a margin function broken in exactly its way, and reports a shrunk book;
* docs/testing.md's planted netting bug is found (its code is executed here as written);
* the pytest plugin loads, takes its option, and fails a test with the shrunk book.
"""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import marginkernel as mk
from marginkernel.testing import books, checker
from marginkernel.testing.pytest_plugin import margin_checker  # noqa: F401  (the fixture, used below)

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = 25

TOY = mk.MarginModel.from_dict(
    {
        "model": {"name": "toy", "netting": "risk_unit"},
        "scenarios": {"builder": "range_points", "up": 0.1, "down": 0.1, "points": 4},
    }
)


def _plain(name: str) -> mk.MarginModel:
    return dataclasses.replace(mk.load_model(name), addons=())


MODELS = {
    "deribit-pm": lambda: mk.load_model("deribit-pm"),
    "okx-pm": lambda: mk.load_model("okx-pm"),
    "tims": lambda: mk.load_model("tims"),
    "span": lambda: mk.load_model("span"),
    "deribit-pm-plain": lambda: _plain("deribit-pm"),
    "span-plain": lambda: _plain("span"),
    "var": lambda: dataclasses.replace(
        TOY, name="var", measure="var", confidence=0.9, scenario_params={"up": 0.1, "down": 0.12, "points": 20}
    ),
    "es": lambda: dataclasses.replace(
        TOY, name="es", measure="es", confidence=0.9, scenario_params={"up": 0.1, "down": 0.12, "points": 20}
    ),
}


@pytest.mark.parametrize("name", list(MODELS))
def test_engine_satisfies_its_claims(name):
    model = MODELS[name]()
    assert checker.find_counterexample(checker.engine_factory, model, max_examples=EXAMPLES) is None


def test_claims_follow_the_model_class():
    assert checker.Claims.for_model(mk.load_model("deribit-pm")) == checker.Claims()
    plain = checker.Claims.for_model(_plain("deribit-pm"))
    assert plain.homogeneous and plain.subadditive and plain.monotone_range and not plain.monotone_confidence
    var = checker.Claims.for_model(MODELS["var"]())
    assert var.homogeneous and not var.subadditive and var.monotone_confidence
    assert checker.Claims.for_model(MODELS["es"]()).subadditive


# ------------------------------------------------------------------------------------------------
# Each invariant catches its own bug
# ------------------------------------------------------------------------------------------------


def _engine_im(book, positions, collateral=None):
    res = checker.engine_factory(book)(positions, collateral)
    return res.accounts["im"]


def _wrap(transform):
    """A factory whose margin is the Engine's, transformed (the planted bug)."""

    def factory(book):
        def margin(positions):
            return transform(book, positions, _engine_im(book, positions))

        return margin

    return factory


rng = np.random.default_rng(0)

BUGS = {
    "determinism": (_wrap(lambda b, p, im: im + rng.uniform(0, 1e-3, len(im)) * (im > 0)), "determinism"),
    "negative": (_wrap(lambda b, p, im: -im - 1.0), "IM >= 0"),
    "mm-above-im": (_wrap(lambda b, p, im: pd.DataFrame({"im": im, "mm": 1.25 * im + 1.0})), "IM >= MM"),
    "last-row-wins": (
        _wrap(lambda b, p, im: _engine_im(b, p.drop_duplicates(["account", "instrument"], keep="last"))),
        "splitting",
    ),
    "first-row-only": (
        _wrap(
            lambda b, p, im: (
                _engine_im(b, p).mul(0.0).add(_engine_im(b, p.groupby("account", sort=False).head(1)), fill_value=0.0)
            )
        ),
        "row order",
    ),
    "gross-not-net": (_wrap(lambda b, p, im: _engine_im(b, p.assign(quantity=p["quantity"].abs()))), "offsetting"),
    "fixed-fee": (_wrap(lambda b, p, im: im + 5.0 * (im > 0)), "positive homogeneity"),
    "squared": (_wrap(lambda b, p, im: im * im / 1000.0), "positive homogeneity"),
    "off-by-1e-6": (_wrap(lambda b, p, im: im * (1 + 1e-6)), "differential"),
}


@pytest.mark.parametrize("bug", list(BUGS))
def test_each_invariant_catches_its_bug(bug):
    factory, invariant = BUGS[bug]
    reference = checker.engine_factory if invariant == "differential" else None
    # splitting and offsetting also see an order-dependent function (their rows are appended);
    # switch them off so that row order itself is shown to bite
    order_only = bug == "first-row-only"
    claims = dataclasses.replace(checker.Claims.for_model(TOY), splitting=not order_only, offsetting=not order_only)
    found = checker.find_counterexample(
        factory, TOY, claims=claims, reference=reference, max_examples=100, kinds=("future", "perpetual")
    )
    assert found is not None and found.invariant == invariant, found
    assert invariant in str(found) and "positions:" in str(found)


def test_subadditivity_and_cash_translation_and_monotonicity_bite():
    claims = checker.Claims(homogeneous=False, subadditive=True)
    squared = _wrap(lambda b, p, im: im * im / 1000.0)
    found = checker.find_counterexample(squared, TOY, claims=claims, max_examples=200, kinds=("future",))
    assert found is not None and found.invariant == "subadditivity"

    def cash_aware(book):
        engine = checker.engine_factory(book)

        def margin(positions, collateral=None):
            res = engine(positions, collateral).accounts
            cash = pd.Series({a: sum(v.values()) for a, v in (collateral or {}).items()}, dtype=float)
            return res["im"].sub(1e-3 * cash.reindex(res.index).fillna(0.0)).clip(lower=0.0)

        return margin

    found = checker.find_counterexample(cash_aware, TOY, max_examples=200, kinds=("future",))
    assert found is not None and found.invariant == "cash translation"

    def shrinks_with_range(book):
        engine = checker.engine_factory(book)
        scale = book.model.scenario_params["up"]

        def margin(positions):
            return engine(positions).accounts["im"] * (0.1 / scale) ** 2

        return margin

    found = checker.find_counterexample(shrinks_with_range, TOY, max_examples=50, kinds=("future",))
    assert found is not None and found.invariant == "monotone in range"


def test_scan_risk_homogeneity_is_checked_under_add_ons():
    """deribit-pm has add-ons (IM not homogeneous) but its scan risk is; a fixed fee in a returned
    scan_risk column is caught."""

    def factory(book):
        engine = checker.engine_factory(book)

        def margin(positions):
            acc = engine(positions).accounts
            return acc.assign(scan_risk=acc["scan_risk"] + 1.0)

        return margin

    assert not checker.Claims.for_model(mk.load_model("deribit-pm")).homogeneous
    found = checker.find_counterexample(factory, "deribit-pm", max_examples=50, kinds=("future",))
    assert found is not None and found.invariant == "positive homogeneity" and "scan_risk" in found.detail


def test_mutating_the_input_is_caught():
    def factory(book):
        engine = checker.engine_factory(book)

        def margin(positions):
            positions.insert(len(positions.columns), "seen", True)  # a column added to the caller's frame
            return engine(positions[["account", "instrument", "quantity"]]).accounts["im"]

        return margin

    found = checker.find_counterexample(factory, TOY, max_examples=5, kinds=("future",))
    assert found is not None and found.invariant == "determinism" and "modified" in found.detail


def test_shrunk_counterexample_is_minimal():
    """The last-row-wins bug shrinks to one position (its split parts are what it mishandles)."""
    found = checker.find_counterexample(BUGS["last-row-wins"][0], TOY, max_examples=200, kinds=("future", "perpetual"))
    assert found is not None
    pos = found.book.positions
    assert found.invariant == "splitting" and len(pos) == 1 and len(found.book.instrument_records) == 1


@pytest.mark.filterwarnings("ignore::hypothesis.errors.NonInteractiveExampleWarning")
def test_result_formats_and_missing_accounts():
    book = books.books(TOY, kinds=("future",), collateral=False).example()
    accounts = book.accounts
    im = _engine_im(book, book.positions)
    as_dict = checker.margins(lambda p: im.to_dict(), book.positions, accounts)
    as_frame = checker.margins(lambda p: im.rename("im").reset_index(), book.positions, accounts)
    assert as_dict["im"].tolist() == as_frame["im"].tolist() == im.loc[accounts].tolist()
    with pytest.raises(checker.ResultError, match="missing"):
        checker.margins(lambda p: {}, book.positions, accounts)
    with pytest.raises(checker.ResultError, match="more than once"):
        checker.margins(lambda p: pd.concat([im, im]), book.positions, accounts)
    with pytest.raises(checker.ResultError, match="IM per account"):
        checker.margins(lambda p: 3.0, book.positions, accounts)


# ------------------------------------------------------------------------------------------------
# docs/testing.md and the pytest plugin
# ------------------------------------------------------------------------------------------------


def test_docs_example_finds_the_planted_bug(capsys):
    text = (ROOT / "docs" / "testing.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) == 1
    scope: dict = {}
    exec(compile(blocks[0], "docs/testing.md", "exec"), scope)
    found, alone = scope["found"], scope["alone"]
    assert found.invariant == "differential" and alone.invariant == "subadditivity"
    assert scope["fixed"] is None
    for ce in (found, alone):  # the shrunk books hold one inverse and one linear BTC position
        recs = {r["id"]: r for r in ce.book.instrument_records}
        held = [recs[i] for i in ce.book.positions["instrument"]]
        assert len(held) == 2 and {r["settlement"] for r in held} == {"inverse", "linear"}
        assert {r["underlying"] for r in held} == {"BTC"}
    printed = capsys.readouterr().out
    assert "invariant 'differential' violated" in printed and "BTC-I-" in printed and "BTC-L-" in printed


def test_fixture_fails_with_the_shrunk_book(margin_checker):  # noqa: F811
    assert margin_checker.max_examples == 100
    with pytest.raises(AssertionError, match="invariant 'differential' violated"):
        margin_checker.max_examples = 50
        margin_checker.against_engine(BUGS["off-by-1e-6"][0], TOY, kinds=("future",))
    margin_checker.check(checker.engine_factory, TOY, kinds=("future",))


def test_pytest_plugin_loads_with_its_option(tmp_path):
    test_file = tmp_path / "test_user.py"
    test_file.write_text(
        textwrap.dedent("""
        from marginkernel.testing import checker

        def bad(book):
            engine = checker.engine_factory(book)
            return lambda positions: engine(positions).accounts["im"] * 1.01

        def test_engine(margin_checker, engine_factory, book_strategy):
            assert margin_checker.max_examples == 7
            margin_checker.check(engine_factory, "okx-pm", kinds=("future", "perpetual"))

        def test_bad(margin_checker, engine_factory):
            margin_checker.against_engine(bad, "okx-pm", kinds=("future",))
    """)
    )
    # the folder of the marginkernel under test (source tree or site-packages)
    env = {"PYTHONPATH": str(Path(mk.__file__).resolve().parent.parent), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "marginkernel.testing.pytest_plugin",
            "--mk-max-examples",
            "7",
            "-p",
            "no:cacheprovider",
            str(test_file),
        ],
        check=False,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=600,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "1 failed, 1 passed" in out and "invariant 'differential' violated" in out and "positions:" in out
