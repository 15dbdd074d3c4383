"""`import marginkernel` (and margining with the generic engine) loads neither SPAN, Derive PM2 nor
SciPy: checked in a fresh interpreter, since this test process has imported them already."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import marginkernel

# The folder holding the marginkernel this test imported (the source tree or site-packages), so that
# the fresh interpreter imports the same package.
PYTHON_DIR = str(Path(marginkernel.__file__).resolve().parent.parent)
HEAVY = ("scipy", "marginkernel.span", "marginkernel.derive_pm2", "marginkernel.reference")


def _loaded_after(code: str) -> list[str]:
    probe = code + "\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))\n"
    env = {**os.environ, "PYTHONPATH": PYTHON_DIR + os.pathsep + os.environ.get("PYTHONPATH", "")}
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    modules = json.loads(out.stdout.strip().splitlines()[-1])
    return [m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY)]


def test_import_loads_no_methodology_and_no_scipy():
    assert _loaded_after("import marginkernel") == []


def test_generic_engine_on_the_demo_loads_no_methodology_and_no_scipy():
    code = (
        "import marginkernel as mk\nfrom marginkernel.demo import run_demo\nengine, res = run_demo()\n"
        "assert res.accounts['im'].sum() > 0\nmk.presets(); [mk.load_model(p) for p in ('tims', 'okx-pm')]"
    )
    assert _loaded_after(code) == []


def test_methodologies_still_load_on_first_use():
    loaded = _loaded_after("import marginkernel as mk\nmk.load_model('derive-pm2')")
    assert any(m.startswith("marginkernel.derive_pm2") for m in loaded)
