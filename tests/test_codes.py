"""marginkernel.codes (the Python side's one definition of the integer codes) held to the enums the
compiled core exports from cpp/include/marginkernel/types.hpp."""

from __future__ import annotations

import enum

import pytest

from marginkernel import _core, codes, kernels

PAIRS = [(codes.Kind, _core.Kind), (codes.Settlement, _core.Settlement), (codes.VolShock, _core.VolShockKind)]


@pytest.mark.parametrize(("python", "native"), PAIRS, ids=lambda c: c.__name__)
def test_same_names_and_values(python: type[enum.IntEnum], native: type[enum.IntEnum]) -> None:
    assert {m.name: int(m) for m in python} == {m.name: int(m) for m in native}
    assert issubclass(native, enum.IntEnum)


def test_name_tables_follow_the_enums() -> None:
    assert codes.KINDS == {"future": 0, "perpetual": 1, "call": 2, "put": 3, "spot": 4}
    assert {m.name.lower(): int(m) for m in _core.Settlement} == codes.SETTLEMENTS
    assert {m.name.lower(): int(m) for m in _core.VolShockKind} == codes.VOL_SHOCKS
    assert kernels.VOL_SHOCKS is codes.VOL_SHOCKS


def test_constants() -> None:
    assert tuple(int(k) for k in _core.Kind) == (codes.FUTURE, codes.PERPETUAL, codes.CALL, codes.PUT, codes.SPOT)
    assert (int(_core.Settlement.LINEAR), int(_core.Settlement.INVERSE)) == (codes.LINEAR, codes.INVERSE)
