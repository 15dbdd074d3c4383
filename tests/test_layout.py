"""The house rules that keep the package readable, checked rather than remembered.

* no Python module over 500 lines and no function over 80 (docs/development.md);
* no reference to documents outside the repository;
* no benchmark figures in code comments (they go stale; they live in bench/results/).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "python" / "marginkernel"
SOURCES = sorted(PACKAGE.rglob("*.py"))
CPP = sorted(p for p in (ROOT / "cpp").rglob("*") if p.suffix in (".hpp", ".cpp") and "corpus" not in p.parts)


def test_modules_stay_small():
    big = {p.relative_to(ROOT).as_posix(): n for p in SOURCES if (n := len(p.read_text().splitlines())) > 500}
    assert not big, f"split these modules by job: {big}"


def test_functions_stay_short():
    long = []
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno is not None:
                if (n := node.end_lineno - node.lineno + 1) > 80:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({n} lines)")
    assert not long, long


def test_no_reference_outside_the_repository():
    pattern = re.compile(r"\.\./shared/DESIGN|DESIGN\.md|DESIGN §")
    files = [*SOURCES, *CPP, *sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]
    hits = [
        f"{p.relative_to(ROOT)}:{i}"
        for p in files
        for i, line in enumerate(p.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert not hits, hits


def test_no_benchmark_figures_in_code_comments():
    # "123 M valuations/s", "45 ns median", "2.5x scipy" in a comment: figures belong in bench/results/
    figure = re.compile(r"(//|#).*\b\d+(\.\d+)?\s*(M valuations/s|ns median|us median|x (the )?(NumPy|scipy))", re.I)
    hits = [
        f"{p.relative_to(ROOT)}:{i}"
        for p in [*SOURCES, *CPP]
        for i, line in enumerate(p.read_text().splitlines(), 1)
        if figure.search(line)
    ]
    assert not hits, hits
