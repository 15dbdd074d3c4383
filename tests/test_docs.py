"""Every code snippet in README.md and docs/*.md runs as written.

* ```python blocks are executed, each in a fresh namespace, in a temporary folder;
* in ```bash blocks, each line that starts with ``marginkernel`` is run through the CLI's ``main``
  in that folder, in order (so ``marginkernel demo --write-inputs .`` can create the files that
  later lines read), and must exit 0. Set-up lines (apt-get, pip, cmake) and benchmark commands are
  run by CI itself (``.ci/run``), not here.

A block whose info string is ``python no-run`` is shown but not executed; none may exist without a
reason in the text around it (the test lists them so that a reviewer sees each one).
"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```", re.S | re.M)


def _blocks(lang: str) -> list[tuple[str, int, str]]:
    out = []
    for path in DOCS:
        text = path.read_text()
        for m in FENCE.finditer(text):
            if m.group(1).strip() == lang:
                line = text.count("\n", 0, m.start()) + 1
                out.append((path.relative_to(ROOT).as_posix(), line, m.group(2)))
    return out


PY = _blocks("python")
SH = [b for b in _blocks("bash") if any(ln.strip().startswith("marginkernel") for ln in b[2].splitlines())]


def test_docs_have_snippets():
    assert len(PY) >= 5, "README and docs should show runnable Python"


@pytest.mark.parametrize("where,line,code", PY, ids=[f"{w}:{n}" for w, n, _ in PY])
def test_python_snippet_runs(where, line, code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__docs__"}
    with contextlib.redirect_stdout(io.StringIO()):
        exec(compile(code, f"{where}:{line}", "exec"), namespace)


def _commands(code: str) -> list[list[str]]:
    joined = code.replace("\\\n", " ")
    cmds = []
    for raw in joined.splitlines():
        text = raw.split(" #", 1)[0].strip()
        if text.startswith("marginkernel"):
            cmds.append(shlex.split(text)[1:])
    return cmds


@pytest.mark.parametrize("where,line,code", SH, ids=[f"{w}:{n}" for w, n, _ in SH])
def test_cli_snippet_runs(where, line, code, tmp_path, monkeypatch):
    from marginkernel.cli import main

    monkeypatch.chdir(tmp_path)
    for argv in _commands(code):
        with contextlib.redirect_stdout(io.StringIO()):
            status = main(argv)
        assert status == 0, f"{where}:{line}: `marginkernel {shlex.join(argv)}` exited {status}"
