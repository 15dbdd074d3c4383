# Type stub of the compiled extension marginkernel._core (cpp/bindings/). Kept by hand: every name
# the module exports is here, with the same parameter names (tests/test_core_stub.py holds the two
# together). Arrays are float64 / int8 / int32 / int64 NumPy arrays as each docstring says; the
# Python wrappers in marginkernel.kernels and marginkernel.account check and convert user input.
import enum
from collections.abc import Iterator
from typing import Any, ClassVar, SupportsFloat, SupportsIndex, SupportsInt

import numpy as np
import numpy.typing as npt

_F64 = npt.NDArray[np.float64]
_I32 = npt.NDArray[np.int32]
_I64 = npt.NDArray[np.int64]
_Int = SupportsInt | SupportsIndex
_Float = SupportsFloat | SupportsIndex

class InputError(ValueError):
    """Bad input: names the field and, when there is one, the row."""

    field: str
    row: int | None

class UnknownIdError(InputError, KeyError):
    """An account, instrument or risk unit id that is not in the book."""

class Kind(enum.IntEnum):
    FUTURE = 0
    PERPETUAL = 1
    CALL = 2
    PUT = 3
    SPOT = 4

class Settlement(enum.IntEnum):
    LINEAR = 0
    INVERSE = 1

class VolShockKind(enum.IntEnum):
    NONE = 0
    MULTIPLICATIVE = 1
    ADDITIVE = 2
    RELATIVE = 3

def available_simd_targets() -> list[str]: ...
def simd_target() -> str: ...
def select_simd_target(name: str) -> None: ...
def _stream_seconds(x: _F64, passes: _Int, write: bool) -> float: ...
def revalue(
    kind: npt.NDArray[np.int8],
    settlement: npt.NDArray[np.int8],
    risk_unit: _I32,
    strike: _F64,
    expiry: _F64,
    multiplier: _F64,
    forward: _F64,
    discount: _F64,
    vol: _F64,
    spot: _F64,
    price_multiplier: _F64,
    vol_shift: _F64 | None,
    time_shift: _F64 | None,
    vol_shock: _Int,
    tau_floor_days: _Float,
    short_power: _Float,
    long_power: _Float,
    vol_up_floor: _Float,
    threads: _Int = 1,
    out: _F64 | None = None,
) -> tuple[_F64, _F64]: ...
def normal_cdf(x: _F64) -> _F64: ...
def net(
    risk: _F64,
    risk_unit: _I32,
    n_units: _Int,
    account_start: npt.NDArray[np.int64],
    instrument: _I32,
    quantity: _F64,
    threads: _Int = 1,
    out: _F64 | None = None,
) -> _F64: ...
def worst_loss(pnl: _F64, weight: _F64 | None, gain_factor: _Float = 1.0) -> tuple[_F64, _I32]: ...
def value_at_risk(pnl: _F64, probability: _F64 | None, confidence: _Float) -> tuple[_F64, _F64]: ...

# Explain: the scan of every node of a netting tree, and of each node with one position removed.
def node_scan(
    child_pnl: _F64,
    child_gain: _F64,
    child_count: _I64,
    child_scale: _F64,
    node_start: _I64,
    node_cap: _F64,
    measure: _Int,
    confidence: _Float,
    probability: _F64 | None,
) -> _F64: ...
def incremental_scan(
    child_pnl: _F64,
    child_gain: _F64,
    child_count: _I64,
    child_scale: _F64,
    node_start: _I64,
    node_cap: _F64,
    measure: _Int,
    confidence: _Float,
    probability: _F64 | None,
    risk: _F64,
    weight: _F64,
    instrument: _I32,
    unit: _I32,
    child: _I64,
    quantity: _F64,
) -> _F64: ...

class _Record:
    """A read-only record (a C struct sequence): fields by name or index, ``_asdict()``."""

    _fields: ClassVar[tuple[str, ...]]
    def _asdict(self) -> dict[str, Any]: ...
    def __getitem__(self, index: int) -> Any: ...
    def __len__(self) -> int: ...
    def __iter__(self) -> Iterator[Any]: ...

class Margin(_Record):
    @property
    def im(self) -> float: ...
    @property
    def mm(self) -> float: ...

class UnitMargin(_Record):
    @property
    def loss(self) -> float: ...
    @property
    def im(self) -> float: ...
    @property
    def worst_scenario(self) -> int: ...

class WhatIf(_Record):
    @property
    def im(self) -> float: ...
    @property
    def mm(self) -> float: ...
    @property
    def im_before(self) -> float: ...
    @property
    def unit_loss(self) -> float: ...
    @property
    def unit(self) -> int: ...
    @property
    def worst_scenario(self) -> int: ...

class Check(_Record):
    @property
    def accepted(self) -> bool: ...
    @property
    def excess(self) -> float: ...
    @property
    def im(self) -> float: ...
    @property
    def mm(self) -> float: ...
    @property
    def im_before(self) -> float: ...
    @property
    def unit_loss(self) -> float: ...
    @property
    def unit(self) -> int: ...
    @property
    def worst_scenario(self) -> int: ...

class AccountBook:
    def __init__(
        self,
        risk: _F64,
        risk_unit: _I32,
        n_units: _Int,
        weight: _F64 | None,
        fx: _F64 | None,
        gain_factor: _Float,
        mm_factor: _Float,
        allow_risk_reducing: bool,
        n_accounts: _Int,
        expiry: _F64 | None,
    ) -> None: ...
    @property
    def n_accounts(self) -> int: ...
    @property
    def n_instruments(self) -> int: ...
    @property
    def n_units(self) -> int: ...
    @property
    def n_scenarios(self) -> int: ...
    @property
    def gain_factor(self) -> float: ...
    @property
    def mm_factor(self) -> float: ...
    @property
    def allow_risk_reducing(self) -> bool: ...
    def add_accounts(self, count: _Int = 1) -> int: ...
    def add_fill(self, account: _Int, instrument: _Int, quantity: _Float) -> None: ...
    def add_fills(self, accounts: npt.NDArray[np.int64], instruments: _I32, quantities: _F64) -> None: ...
    def what_if(self, account: _Int, instrument: _Int, quantity: _Float) -> WhatIf: ...
    def _what_if_release_gil(self, account: _Int, instrument: _Int, quantity: _Float) -> WhatIf: ...
    def check(self, account: _Int, instrument: _Int, quantity: _Float, equity: _Float) -> Check: ...
    def margin(self, account: _Int) -> Margin: ...
    def unit_margin(self, account: _Int, unit: _Int) -> UnitMargin: ...
    def position(self, account: _Int, instrument: _Int) -> float: ...
    def positions(self, account: _Int) -> dict[int, float]: ...
    def pnl(self, account: _Int) -> _F64: ...
    def weighted_pnl(self, account: _Int) -> _F64: ...
    def instruments_of(self, unit: _Int) -> _I32: ...
    def risk_row(self, instrument: _Int) -> _F64: ...
    def expiry(self, instrument: _Int) -> float: ...
    def set_expiry(self, instrument: _Int, years: _Float) -> None: ...
    def set_fx(self, unit: _Int, fx: _Float) -> None: ...
    def settle(self, instrument: _Int) -> None: ...
    def update_unit(self, unit: int, rows: _F64, fx: float | None = None, threads: int = 1) -> None: ...
    def rebuild(self, threads: _Int = 1) -> None: ...
