"""Every Python block of docs/explain.md, docs/stress.md and docs/optimise.md runs as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
BLOCKS = [
    (name, k, block)
    for name in ("explain.md", "stress.md", "optimise.md")
    for k, block in enumerate(re.findall(r"```python\n(.*?)```", (DOCS / name).read_text(), re.S))
]


@pytest.mark.parametrize("name, k, code", BLOCKS, ids=[f"{n}-{k}" for n, k, _ in BLOCKS])
def test_doc_block_runs(name, k, code, capsys):
    exec(compile(code, f"{name}[{k}]", "exec"), {})
