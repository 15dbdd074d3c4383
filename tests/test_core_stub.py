"""The hand-kept type stub python/marginkernel/_core.pyi against the compiled module: every public
name in both, the same kinds of object, and the same parameter names for every function and method
whose compiled form states its signature."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

from marginkernel import _core

STUB = Path(_core.__file__).with_name("_core.pyi")
if not STUB.exists():  # an installed wheel carries the stub beside the module; a source tree too
    STUB = Path(__file__).resolve().parents[1] / "python" / "marginkernel" / "_core.pyi"


def _stub() -> ast.Module:
    return ast.parse(STUB.read_text())


def _public(names: list[str]) -> set[str]:
    return {n for n in names if not n.startswith("__")}


def _stub_names(body: list[ast.stmt]) -> dict[str, ast.stmt]:
    out: dict[str, ast.stmt] = {}
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            out[node.name] = node
    return out


def _stub_params(fn: ast.FunctionDef) -> list[str]:
    a = fn.args
    return [p.arg for p in (*a.posonlyargs, *a.args, *a.kwonlyargs)]


def _compiled_params(obj: object) -> list[str] | None:
    """Parameter names of a compiled function: from __text_signature__ or pybind11's docstring."""
    try:
        return list(inspect.signature(obj).parameters)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        pass
    doc = (getattr(obj, "__doc__", None) or "").splitlines()
    name = getattr(obj, "__name__", "")
    if not doc or not doc[0].startswith(f"{name}("):
        return None
    header = doc[0][len(name) :].rsplit(" -> ", 1)[0]
    fn = ast.parse(f"def f{header}: pass").body[0]
    assert isinstance(fn, ast.FunctionDef)
    return _stub_params(fn)


STUB_ITEMS = _stub_names(_stub().body)
MODULE_NAMES = _public(dir(_core)) - {"_pybind11_conduit_v1_"}


def test_every_exported_name_is_in_the_stub_and_back() -> None:
    stub_public = {n for n in STUB_ITEMS if not n.startswith("_")}
    assert MODULE_NAMES - set(STUB_ITEMS) == set(), "exported by _core but missing from _core.pyi"
    assert stub_public - MODULE_NAMES == set(), "in _core.pyi but not exported by _core"


@pytest.mark.parametrize("name", sorted(MODULE_NAMES))
def test_kind_and_parameters_match(name: str) -> None:
    obj = getattr(_core, name)
    node = STUB_ITEMS[name]
    if isinstance(obj, type):
        assert isinstance(node, ast.ClassDef), f"{name} is a class in _core"
    else:
        assert isinstance(node, ast.FunctionDef), f"{name} is a function in _core"
        assert _compiled_params(obj) == _stub_params(node)


def _class_members(cls: type) -> set[str]:
    return {n for n in vars(cls) if not n.startswith("__") and n != "_pybind11_conduit_v1_"}


@pytest.mark.parametrize("cls", ["AccountBook", "WhatIf", "Check", "Margin", "UnitMargin"])
def test_class_members_and_method_parameters(cls: str) -> None:
    node = STUB_ITEMS[cls]
    assert isinstance(node, ast.ClassDef)
    stub_members = _stub_names(node.body)
    compiled = getattr(_core, cls)
    own = _class_members(compiled) - {"_asdict", "_fields", "n_fields", "n_sequence_fields", "n_unnamed_fields"}
    assert own - set(stub_members) - {"__init__"} == set(), f"{cls}: members missing from the stub"
    assert {n for n in stub_members if n != "__init__"} - own == set(), f"{cls}: stub members not in _core"
    checked = 0
    for member, stub_node in stub_members.items():
        if not isinstance(stub_node, ast.FunctionDef) or any(
            isinstance(d, ast.Name) and d.id == "property" for d in stub_node.decorator_list
        ):
            continue
        params = _compiled_params(getattr(compiled, member))
        if params is None:  # a plain-docstring method (no signature to compare)
            continue
        assert params == _stub_params(stub_node), f"{cls}.{member}"
        checked += 1
    if cls == "AccountBook":
        assert checked >= 20  # the comparison really ran over the methods


def test_records_fields_match_the_stub_properties() -> None:
    for cls in ("WhatIf", "Check", "Margin", "UnitMargin"):
        node = STUB_ITEMS[cls]
        assert isinstance(node, ast.ClassDef)
        props = [n.name for n in node.body if isinstance(n, ast.FunctionDef)]
        assert list(getattr(_core, cls)._fields) == props, cls


def test_enums_match_the_stub() -> None:
    for cls in ("Kind", "Settlement", "VolShockKind"):
        node = STUB_ITEMS[cls]
        assert isinstance(node, ast.ClassDef)
        values = {
            t.targets[0].id: ast.literal_eval(t.value)  # type: ignore[attr-defined]
            for t in node.body
            if isinstance(t, ast.Assign)
        }
        assert values == {m.name: int(m) for m in getattr(_core, cls)}
