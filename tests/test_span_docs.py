"""docs/span.md: the schema-coverage lists match the reader's (its Python blocks run in tests/test_docs.py)."""

from __future__ import annotations

import re
from pathlib import Path

from marginkernel.span import schema

DOC = Path(__file__).resolve().parents[1] / "docs" / "span.md"
TEXT = DOC.read_text(encoding="utf-8")


def test_every_informational_and_refused_element_is_listed():
    section = TEXT[TEXT.index("### Refused") : TEXT.index("## Per-file parameters")]
    names = {name for tags in schema.INFORMATIONAL.values() for name in tags} | set(schema.REFUSED)
    missing = sorted(n for n in names if not re.search(rf"\b{re.escape(n)}\b", section))
    assert not missing, f"docs/span.md does not list: {missing}"
