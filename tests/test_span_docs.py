"""docs/span.md: every Python block runs as written, and the schema-coverage lists match the reader's."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from marginkernel.span import schema

DOC = Path(__file__).resolve().parents[1] / "docs" / "span.md"
TEXT = DOC.read_text(encoding="utf-8")
BLOCKS = re.findall(r"```python\n(.*?)```", TEXT, flags=re.S)


def test_doc_has_python_blocks():
    assert len(BLOCKS) >= 3


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_python_block_runs(index, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    exec(compile(BLOCKS[index], f"{DOC.name}[block {index}]", "exec"), {"__name__": "__doc__"})


def test_every_informational_and_refused_element_is_listed():
    section = TEXT[TEXT.index("### Refused") : TEXT.index("## Per-file parameters")]
    names = {name for tags in schema.INFORMATIONAL.values() for name in tags} | set(schema.REFUSED)
    missing = sorted(n for n in names if not re.search(rf"\b{re.escape(n)}\b", section))
    assert not missing, f"docs/span.md does not list: {missing}"
