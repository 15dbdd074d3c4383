"""pytest plugin of the invariant toolkit: fixtures for testing your own margin code.

Enable it with ``pytest -p marginkernel.testing.pytest_plugin`` or, once marginkernel is installed
with its ``pytest11`` entry point, automatically. Fixtures:

* ``margin_checker`` -- a :class:`~marginkernel.testing.checker.MarginChecker`:
  ``margin_checker.check(factory, model)`` asserts every invariant of the model class over drawn
  books, ``margin_checker.against_engine(factory, model)`` also compares with the Engine; both fail
  with the shrunk book.
* ``engine_factory`` -- :func:`~marginkernel.testing.checker.engine_factory` (the Engine's own
  margin function for a book).
* ``book_strategy`` -- :func:`~marginkernel.testing.books.books` (hypothesis strategy of books).

Options: ``--mk-max-examples N`` (or the ini key ``marginkernel_max_examples``; default 100) books
per check.
"""

from __future__ import annotations

from typing import Any

import pytest

from .books import books
from .checker import MarginChecker
from .checker import engine_factory as _engine_factory

DEFAULT_MAX_EXAMPLES = 100


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("marginkernel", "marginkernel invariant toolkit")
    group.addoption(
        "--mk-max-examples",
        type=int,
        default=None,
        dest="mk_max_examples",
        help=f"books drawn per margin_checker check (default {DEFAULT_MAX_EXAMPLES})",
    )
    parser.addini(
        "marginkernel_max_examples",
        f"books drawn per margin_checker check (default {DEFAULT_MAX_EXAMPLES})",
        default=str(DEFAULT_MAX_EXAMPLES),
    )


def _max_examples(config: pytest.Config) -> int:
    option = config.getoption("mk_max_examples", default=None)
    if option is None:
        try:
            option = int(config.getini("marginkernel_max_examples"))
        except (ValueError, KeyError):
            option = DEFAULT_MAX_EXAMPLES
    if option < 1:
        raise pytest.UsageError(f"--mk-max-examples: must be >= 1, got {option}")
    return int(option)


@pytest.fixture
def margin_checker(request: pytest.FixtureRequest) -> MarginChecker:
    """A MarginChecker drawing ``--mk-max-examples`` books per check."""
    return MarginChecker(max_examples=_max_examples(request.config))


@pytest.fixture
def engine_factory() -> Any:
    """The Engine's margin function for a book: the reference of differential tests."""
    return _engine_factory


@pytest.fixture
def book_strategy() -> Any:
    """The hypothesis strategy of whole books (``book_strategy(model="okx-pm", kinds=(...))``)."""
    return books
