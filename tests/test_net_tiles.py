"""Netting at sizes that reach every path of its tiling, bitwise against a position-by-position sum.

The kernel cuts scenarios into tiles sized from the CPU's L2, register blocks inside a tile, leftover
SIMD packets and leftover scalar scenarios, copies each tile into a packed buffer when it stays in
L2 and the positions outnumber the instruments, and streams the output past the caches when it
exceeds L2. Whatever the path, each (account, unit, scenario) must be the sum taken position by position in
position order, each product rounded before it is added -- on every target and thread count.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from marginkernel import _core, kernels

TARGETS = kernels.available_simd_targets()


@pytest.fixture
def each_target() -> Iterator[None]:
    yield
    kernels.select_simd_target(TARGETS[0])


def position_by_position(risk, unit, n_units, start, instrument, quantity) -> np.ndarray:
    pnl = np.zeros((len(start) - 1, n_units, risk.shape[1]))
    for a in range(len(start) - 1):
        for k in range(start[a], start[a + 1]):
            i = instrument[k]
            pnl[a, unit[i]] += quantity[k] * risk[i]  # product rounded, then added
    return pnl


def check_every_target(args: tuple, expected: np.ndarray) -> None:
    for target in TARGETS:
        kernels.select_simd_target(target)
        for threads in (1, 2):
            pnl = kernels.net(*args, threads=threads)
            np.testing.assert_array_equal(pnl, expected, err_msg=f"{target}, {threads} threads")
            out = np.full_like(expected, np.nan)  # every element must be written
            kernels.net(*args, threads=threads, out=out)
            np.testing.assert_array_equal(out, expected, err_msg=f"{target}, {threads} threads, out=")


# 16 MB of output (over any L2, so it is streamed); 3,000 instruments give one register block per
# tile, 20 instruments a tile of many blocks; 1,003 scenarios leave packets and scalars over and make
# rows that do not start on a packet boundary.
# One risk unit takes the kernel's loop without unit changes.
@pytest.mark.parametrize("n_units", [3, 1])
@pytest.mark.parametrize(("n_instruments", "n_scenarios"), [(3000, 1003), (20, 1003), (20, 1024), (3000, 64)])
def test_net_matches_position_by_position_on_every_path(
    each_target: None, n_instruments: int, n_scenarios: int, n_units: int
) -> None:
    rng = np.random.default_rng(n_instruments + n_scenarios)
    n_accounts = 16_800_000 // (n_units * 8 * n_scenarios)
    risk = rng.standard_normal((n_instruments, n_scenarios)) * 10.0 ** rng.integers(-3, 12, (n_instruments, 1))
    unit = rng.integers(0, n_units, n_instruments).astype(np.int32)
    counts = rng.integers(0, 12, n_accounts)
    counts[n_accounts // 2] = 0  # an empty account: all its rows zero
    start = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    instrument = rng.integers(0, n_instruments, start[-1]).astype(np.int32)  # units come back
    quantity = rng.uniform(-100, 100, start[-1])
    expected = position_by_position(risk, unit, n_units, start, instrument, quantity)
    check_every_target((risk, unit, n_units, start, instrument, quantity), expected)


# The packed path: as many instruments as make a tile's slices fill half the L2 at `tile` scenarios
# (the most that is packed), and three positions per instrument. A tile of 128 scenarios is whole
# register blocks on every target; one of 40 is narrower than an AVX-512 block (5 packets) and leaves
# packets over on the others; one of 16 (many instruments or a small L2) is narrower than a block on
# AVX-512 and AVX2. With one risk unit, a tile narrower than a block is swept (net_sweep). 1,024
# scenarios put every row of R 4 KiB apart (what packing is for), 1,003 leave a narrower last tile
# with packets and scalars over.
@pytest.mark.parametrize("n_units", [2, 1])
@pytest.mark.parametrize("tile", [128, 40, 16])
@pytest.mark.parametrize("n_scenarios", [1024, 1003])
def test_net_matches_position_by_position_through_packed_tiles(
    each_target: None, n_scenarios: int, tile: int, n_units: int
) -> None:
    n_instruments = _core._cache_sizes()["L2"] // 2 // (8 * tile)
    rng = np.random.default_rng(n_scenarios + tile)
    n_accounts, n_positions = 600, 3 * n_instruments
    risk = rng.standard_normal((n_instruments, n_scenarios)) * 10.0 ** rng.integers(-3, 12, (n_instruments, 1))
    unit = rng.integers(0, n_units, n_instruments).astype(np.int32)
    account = np.sort(rng.integers(0, n_accounts, n_positions))
    start = np.zeros(n_accounts + 1, dtype=np.int64)
    np.cumsum(np.bincount(account, minlength=n_accounts), out=start[1:])
    instrument = rng.integers(0, n_instruments, n_positions).astype(np.int32)
    quantity = rng.uniform(-100, 100, n_positions)
    expected = position_by_position(risk, unit, n_units, start, instrument, quantity)
    check_every_target((risk, unit, n_units, start, instrument, quantity), expected)


# A sum that overflows in one lane of one register block is found on every target and path, with
# one risk unit or several: the kernel's finiteness check adds x - x over the block's packets.
@pytest.mark.parametrize("n_units", [1, 2])
@pytest.mark.parametrize("scenario", [0, 13, 70, 1002])
def test_net_overflow_in_one_lane_is_an_error_on_every_target(each_target: None, n_units: int, scenario: int) -> None:
    rng = np.random.default_rng(scenario)
    n_instruments, n_scenarios, n_accounts = 40, 1003, 50
    risk = rng.standard_normal((n_instruments, n_scenarios))
    risk[7, scenario] = 1e300
    unit = (np.arange(n_instruments) % n_units).astype(np.int32)
    start = np.arange(0, 4 * n_accounts + 1, 4, dtype=np.int64)
    instrument = rng.integers(0, n_instruments, 4 * n_accounts).astype(np.int32)
    instrument[4 * 31 + 2] = 7  # account 31, position 126
    quantity = rng.uniform(-1, 1, 4 * n_accounts)
    quantity[4 * 31 + 2] = 1e10
    for target in TARGETS:
        kernels.select_simd_target(target)
        with pytest.raises(ValueError, match=r"quantity\[126\]") as err:
            kernels.net(risk, unit, n_units, start, instrument, quantity)
        assert (err.value.field, err.value.row) == ("quantity", 126), target


# The same through a swept narrow tile (one risk unit, a packed tile of 16 scenarios): the account
# whose sum overflows is named, not an earlier or later one, whichever tile holds the scenario.
@pytest.mark.parametrize("scenario", [0, 21, 1002])
def test_net_overflow_in_a_swept_tile_is_an_error_on_every_target(each_target: None, scenario: int) -> None:
    rng = np.random.default_rng(scenario)
    n_instruments = _core._cache_sizes()["L2"] // 2 // (8 * 16)
    n_scenarios, n_accounts = 1003, 400
    risk = rng.standard_normal((n_instruments, n_scenarios))
    risk[7, scenario] = 1e300
    unit = np.zeros(n_instruments, dtype=np.int32)
    per = -(-n_instruments // n_accounts) + 1  # positions per account: more positions than instruments
    start = np.arange(0, per * n_accounts + 1, per, dtype=np.int64)
    instrument = rng.integers(8, n_instruments, per * n_accounts).astype(np.int32)
    instrument[per * 31 + 2] = 7
    quantity = rng.uniform(-1, 1, per * n_accounts)
    quantity[per * 31 + 2] = 1e10
    for target in TARGETS:
        kernels.select_simd_target(target)
        with pytest.raises(ValueError, match=rf"quantity\[{per * 31 + 2}\]") as err:
            kernels.net(risk, unit, 1, start, instrument, quantity)
        assert (err.value.field, err.value.row) == ("quantity", per * 31 + 2), target


# MARGINKERNEL_L2_BYTES replaces the L2 the tiles are sized to (cpp/src/cache_info.cpp): 512 KiB
# makes 2,000 instruments a swept tile of 16 scenarios on any machine, with the same bits; a value
# that is not whole bytes in [64 KiB, 64 MiB] is ignored.
@pytest.mark.parametrize(
    ("value", "taken"), [("524288", True), ("1k", False), ("-1", False), ("4096", False), ("134217728", False)]
)
def test_l2_override_changes_the_tile_not_the_result(value: str, taken: bool) -> None:
    code = """
import numpy as np
from marginkernel import _core, kernels
rng = np.random.default_rng(5)
risk = rng.standard_normal((2000, 1003))
start = np.arange(0, 4001, 4, dtype=np.int64)
instrument = rng.integers(0, 2000, 4000).astype(np.int32)
quantity = rng.uniform(-100, 100, 4000)
pnl = kernels.net(risk, np.zeros(2000, np.int32), 1, start, instrument, quantity)
np.save("pnl.npy", pnl)
print(_core._cache_sizes()["L2"])
"""
    runs = {}
    for env in ("default", "override"):
        environ = {k: v for k, v in os.environ.items() if k != "MARGINKERNEL_L2_BYTES"}
        package_root = str(Path(kernels.__file__).resolve().parents[1])  # the marginkernel under test
        environ["PYTHONPATH"] = os.pathsep.join([package_root, environ.get("PYTHONPATH", "")])
        if env == "override":
            environ["MARGINKERNEL_L2_BYTES"] = value
        with tempfile.TemporaryDirectory() as tmp:
            out = subprocess.run(
                [sys.executable, "-c", code], check=False, env=environ, cwd=tmp, capture_output=True, text=True
            )
            assert out.returncode == 0, out.stderr
            runs[env] = (int(out.stdout), np.load(Path(tmp) / "pnl.npy"))
    assert runs["override"][0] == (int(value) if taken else runs["default"][0])
    np.testing.assert_array_equal(runs["override"][1], runs["default"][1])
