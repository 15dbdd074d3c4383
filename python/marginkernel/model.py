"""Margin models as validated configuration (TOML), and the presets shipped with the package.

Layout of a model file (docs/models.md documents every key, its type, default and meaning)::

    [model]
    name = "deribit-pm"
    description = "..."
    source = "where the parameters come from"
    as_of = "2026-11-21"
    measure = "worst_loss"     # worst_loss | var | es
    confidence = 0.99          # var / es only
    netting = "currency"       # risk_unit | currency | account: the level scenario P&L nets up to
    gain_factor = 1.0          # gains of the level below scaled by this when netting (pnl_offset);
                               # a number or a table per child (unit or currency) with "default"
    gain_cap = 1e6             # at most this much (reporting currency) of gains offsets losses
    mode = "cross"             # cross | isolated: positions netted per account, or each alone
    currency = "USD"           # reporting currency of margins and equity
    im_factor = 1.0            # IM = im_factor * requirement (scan risk and add-ons)
    mm_factor = 0.8            # MM = mm_factor * requirement

    [scenarios]
    builder = "deribit_grid"   # a builder of marginkernel.scenarios (deribit_grid, span16, range_points)
    price_range = { default = 0.16, ETH = 0.18 }   # the builder's keyword arguments

    [collateral]
    haircut = { default = 0.0, ETH = 0.05 }        # per collateral currency, in [0, 1]

    [addons.roll_shock]        # one table per add-on (marginkernel.addons); type defaults to the name
    min_annualised_move = 0.01

Every key is checked; an unknown key, a value of the wrong type or out of range raises
``ValueError`` naming it (``model.mesure: unknown key``, ``addons.roll_shock.min_annualised_move:
must be >= 0.0``).
"""

from __future__ import annotations

import datetime as _dt
import importlib
import inspect
import math
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from . import addons as _addons
from . import scenarios as _scenarios
from . import validation as v

MEASURES = ("worst_loss", "var", "es")
GENERIC = "scenario-grid"  # [model] methodology of models the generic Engine computes
NETTING = ("risk_unit", "currency", "account")
MODES = ("cross", "isolated")
SECTIONS = ("model", "scenarios", "collateral", "addons")
FILE_BUILDER = "file"  # [scenarios] builder reading joint moves from a file (marginkernel.scenario_file)
FILE_PARAMS = ("path", "moves")
MAX_MODEL_BYTES = 1 << 20  # a model file larger than this is refused (docs/models.md)
_MODEL_KEYS: dict[str, Any] = {
    "name": str,
    "methodology": str,
    "description": str,
    "source": str,
    "as_of": str,
    "measure": str,
    "netting": str,
    "confidence": float,
    "gain_factor": (float, Mapping),
    "gain_cap": float,
    "im_factor": float,
    "mm_factor": float,
    "mode": str,
    "currency": str,
}
#: column names of MarginResult.accounts an add-on may not take
RESERVED = (
    "im",
    "mm",
    "risk",
    "worst_unit",
    "worst_scenario",
    "scan_risk",
    "equity",
    "available",
    "margin_ratio",
    "liquidation",
    "account",
    "risk_unit",
    "currency",
    "loss",
    "loss_usd",
)

#: methodology name -> its loader, a callable ``loader(path) -> model`` or ``"module:function"``
#: imported on first use (so that ``import marginkernel`` loads no methodology's code). Another
#: model type registers with one line: ``register_methodology("name", "marginkernel.pkg:load")``.
METHODOLOGIES: dict[str, Callable[[Path], Any] | str] = {
    "derive-pm2": "marginkernel.derive_pm2:load_preset",
}


def register_methodology(name: str, loader: Callable[[Path], Any] | str) -> None:
    """Make ``[model] methodology = name`` files load through ``loader`` (see :data:`METHODOLOGIES`)."""
    if not isinstance(name, str) or not name or name == GENERIC:
        raise ValueError(f"methodology: a name other than {GENERIC!r} is needed, got {name!r}")
    METHODOLOGIES[name] = loader


def _loader(name: str) -> Callable[[Path], Any]:
    entry = METHODOLOGIES[name]
    if isinstance(entry, str):
        module, _, attr = entry.partition(":")
        try:
            loader: Callable[[Path], Any] = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            raise ValueError(
                f"model.methodology: {name!r} is registered as {entry!r}, which cannot be loaded: {exc}"
            ) from None
        return loader
    return entry


def _builders() -> list[str]:
    return sorted([*_scenarios.BUILDERS, FILE_BUILDER])


def _check_scenario_params(builder: str, params: Mapping[str, Any]) -> None:
    types = _scenarios.PARAM_TYPES.get(builder, {})
    for key, value in params.items():
        kind = types.get(key)
        where = f"scenarios.{key}"
        if kind == "int":
            v.integer(value, where)
        elif kind == "number":
            v.number(value, where)
        elif kind == "per_underlying":
            v.per_key(value, where)
        elif kind == "bool" and not isinstance(value, bool):
            raise ValueError(f"{where}: expected true or false, got {value!r}")
        elif kind == "str" and not isinstance(value, str):
            raise ValueError(f"{where}: expected a string, got {value!r}")
        elif kind == "numbers":
            if isinstance(value, (str, Mapping)) or not isinstance(value, Sequence):
                raise ValueError(f"{where}: expected an array of numbers, got {value!r}")
            if len(value) > _scenarios.MAX_LIST:
                raise ValueError(f"{where}: at most {_scenarios.MAX_LIST} entries, got {len(value)}")
            for k, x in enumerate(value):
                v.number(x, f"{where}[{k}]")


@dataclass(frozen=True)
class MarginModel:
    """A generic scenario-grid margin model (see the module docstring and docs/models.md).

    ``addons`` may be given as a sequence of :class:`marginkernel.addons.AddOn` or as a mapping of
    name -> TOML-style table; ``collateral_haircut`` as a number or a mapping per currency (with an
    optional ``"default"``)."""

    name: str
    builder: str
    scenario_params: Mapping[str, Any] = field(default_factory=dict)
    measure: str = "worst_loss"
    netting: str = "risk_unit"
    confidence: float = 0.99
    gain_factor: float | Mapping[str, float] = 1.0
    im_factor: float = 1.0
    mm_factor: float = 1.0
    description: str = ""
    source: str = ""
    as_of: str = ""
    mode: str = "cross"
    currency: str = "USD"
    gain_cap: float = math.inf
    addons: Any = ()  # a tuple of AddOn once built (see the class docstring)
    collateral_haircut: float | Mapping[str, float] = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"model.name: must be a non-empty string, got {self.name!r}")
        for key, allowed in (("measure", MEASURES), ("netting", NETTING), ("mode", MODES)):
            if getattr(self, key) not in allowed:
                raise ValueError(f"model.{key}: must be one of {allowed}, got {getattr(self, key)!r}")
        if not isinstance(self.currency, str) or not self.currency:
            raise ValueError(f"model.currency: must be a currency name, got {self.currency!r}")
        if not v.is_number(self.confidence) or not 0 < self.confidence < 1:
            raise ValueError(f"model.confidence: must be in (0, 1), got {self.confidence!r}")
        for key in ("im_factor", "mm_factor"):
            value = getattr(self, key)
            if not v.is_number(value) or not (math.isfinite(value) and value >= 0):
                raise ValueError(f"model.{key}: must be finite and >= 0, got {value!r}")
        object.__setattr__(self, "gain_factor", v.per_key(self.gain_factor, "model.gain_factor", lo=0.0, hi=1.0))
        object.__setattr__(self, "gain_cap", v.number(self.gain_cap, "model.gain_cap", lo=0.0, allow_inf=True))
        object.__setattr__(
            self, "collateral_haircut", v.per_key(self.collateral_haircut, "collateral.haircut", lo=0.0, hi=1.0)
        )
        if self.builder not in _builders():
            raise ValueError(f"scenarios.builder: must be one of {_builders()}, got {self.builder!r}")
        if self.builder == FILE_BUILDER:
            self._read_scenario_file()
        else:
            params = inspect.signature(_scenarios.BUILDERS[self.builder]).parameters
            for key in self.scenario_params:
                if key not in params or key == "underlyings":
                    known = sorted(k for k in params if k != "underlyings")
                    raise ValueError(f"scenarios.{key}: not a parameter of {self.builder}; known: {known}")
            _check_scenario_params(self.builder, self.scenario_params)
            self._probe_scenarios()
        object.__setattr__(self, "addons", self._build_addons(self.addons))

    def _read_scenario_file(self) -> None:
        from .scenario_file import MOVES, read_moves

        for key in self.scenario_params:
            if key not in FILE_PARAMS:
                raise ValueError(f"scenarios.{key}: not a parameter of {FILE_BUILDER}; known: {list(FILE_PARAMS)}")
        path = self.scenario_params.get("path")
        if not isinstance(path, (str, Path)):
            raise ValueError(f"scenarios.path: the scenario file (a string), got {path!r}")
        moves = self.scenario_params.get("moves", "return")
        if moves not in MOVES:
            raise ValueError(f"scenarios.moves: must be one of {list(MOVES)}, got {moves!r}")
        object.__setattr__(self, "_moves", read_moves(path))

    def _probe_scenarios(self) -> None:
        """Build the scenario set once for the underlyings the parameters name, so that an
        out-of-range value fails when the model is loaded, naming its key."""
        names = set()
        for value in self.scenario_params.values():
            if isinstance(value, Mapping):
                names |= {str(k) for k in value if k != "default"}
        try:
            _scenarios.BUILDERS[self.builder](sorted(names) or ["X"], **self.scenario_params)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"scenarios.{exc}") from None

    @staticmethod
    def _build_addons(value: Any) -> tuple[_addons.AddOn, ...]:
        if isinstance(value, Mapping):
            items = [_addons.build(str(name), table) for name, table in value.items()]
        else:
            items = list(value)
            for k, a in enumerate(items):
                if not isinstance(a, _addons.AddOn):
                    raise ValueError(f"addons[{k}]: expected an AddOn (or a table of add-on tables), got {a!r}")
        names = [a.name for a in items]
        for a in items:
            if a.name in RESERVED:
                raise ValueError(f"addons.{a.name}: the name {a.name!r} is reserved for a result column")
            if names.count(a.name) > 1:
                raise ValueError(f"addons.{a.name}: two add-ons share this name")
        for a in items:
            after = a.config.get("after") if a.type == "inter_spread" else ""
            if after:
                before = names[: names.index(a.name)]
                target = next((b for b in items if b.name == after), None)
                if after not in before or target is None or target.type != "intra_spread":
                    raise ValueError(f"addons.{a.name}.after: {after!r} is not an intra_spread add-on listed before it")
        return tuple(items)

    @property
    def components(self) -> tuple[str, ...]:
        """Names of the add-on components, in file order."""
        return tuple(a.name for a in self.addons)

    def scenarios(self, underlyings: Sequence[str]) -> _scenarios.ScenarioSet:
        """The scenario set for risk units with these underlyings (one per unit, in order)."""
        if self.builder == FILE_BUILDER:
            from .scenario_file import moves_to_scenarios

            moves = self.scenario_params.get("moves", "return")
            where = f"scenarios ({FILE_BUILDER} {str(self.scenario_params['path'])!r})"
            table: Any = self.__dict__["_moves"]
            return moves_to_scenarios(list(underlyings), table, moves=moves, where=where)
        try:
            return _scenarios.BUILDERS[self.builder](list(underlyings), **self.scenario_params)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"scenarios ({self.builder}): {exc}") from None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], base_dir: str | Path | None = None) -> MarginModel:
        """A model from its sections (a parsed model file); ``base_dir``: the folder relative paths
        (a scenario file) are read from (default: the working directory)."""
        if not isinstance(data, Mapping):
            raise ValueError(f"model: expected a table of sections, got {type(data).__name__}")
        unknown = set(data) - set(SECTIONS)
        if unknown:
            raise ValueError(f"unknown section(s) {sorted(unknown)}; a model file has {list(SECTIONS)}")
        model = data.get("model")
        if not isinstance(model, Mapping):
            raise ValueError("model: missing [model] section")
        kwargs: dict[str, Any] = {}
        for key, raw in model.items():
            value = raw
            if key not in _MODEL_KEYS:
                raise ValueError(f"model.{key}: unknown key; known: {sorted(_MODEL_KEYS)}")
            want = _MODEL_KEYS[key]
            if key == "as_of" and isinstance(value, (_dt.date, _dt.datetime)):
                value = value.isoformat()
            if want is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            if not isinstance(value, want) or isinstance(value, bool):
                names = " or a table" if isinstance(want, tuple) else ""
                label = "float" if want is float or isinstance(want, tuple) else want.__name__
                raise ValueError(f"model.{key}: expected {label}{names}, got {value!r}")
            kwargs[key] = value
        if "name" not in kwargs:
            raise ValueError("model.name: missing")
        methodology = kwargs.pop("methodology", GENERIC)
        if methodology != GENERIC:
            raise ValueError(f"model.methodology: {methodology!r} is not the generic {GENERIC!r}; use load_model()")
        scen = data.get("scenarios")
        if not isinstance(scen, Mapping) or "builder" not in scen:
            raise ValueError("scenarios.builder: missing [scenarios] section or its builder")
        if not isinstance(scen["builder"], str):
            raise ValueError(f"scenarios.builder: expected a string, got {scen['builder']!r}")
        params = {k: x for k, x in scen.items() if k != "builder"}
        if scen["builder"] == FILE_BUILDER and isinstance(params.get("path"), str) and base_dir is not None:
            params["path"] = str(Path(base_dir) / params["path"])
        collateral = data.get("collateral", {})
        if not isinstance(collateral, Mapping):
            raise ValueError(f"collateral: expected a table, got {collateral!r}")
        for key in collateral:
            if key != "haircut":
                raise ValueError(f"collateral.{key}: unknown key; known: ['haircut']")
        if "haircut" in collateral:
            kwargs["collateral_haircut"] = collateral["haircut"]
        addon_tables = data.get("addons", {})
        if not isinstance(addon_tables, Mapping):
            raise ValueError(f"addons: expected tables [addons.<name>], got {addon_tables!r}")
        for name, table in addon_tables.items():
            if not isinstance(table, Mapping):
                raise ValueError(f"addons.{name}: expected a table [addons.{name}], got {table!r}")
        return cls(builder=scen["builder"], scenario_params=params, addons=dict(addon_tables), **kwargs)

    @classmethod
    def from_toml(cls, path: str | Path) -> MarginModel:
        path = Path(path)
        data = read_toml(path)
        try:
            return cls.from_dict(data, base_dir=path.parent)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"model file {str(path)!r}: {exc}") from None


def read_toml(path: Path) -> dict[str, Any]:
    """A model file parsed; every failure (missing, not a regular file, too large, not TOML, nested
    too deeply) is a ValueError naming the file."""
    where = f"model file {str(path)!r}"
    if not path.exists():
        raise ValueError(f"{where}: not found")
    if path.is_dir():
        raise ValueError(f"{where}: is a directory")
    if not path.is_file():
        raise ValueError(f"{where}: not a regular file")
    if path.stat().st_size > MAX_MODEL_BYTES:
        raise ValueError(f"{where}: larger than {MAX_MODEL_BYTES} bytes")
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{where}: not valid TOML: {exc}") from None
    except RecursionError:
        raise ValueError(f"{where}: not valid TOML: nested too deeply") from None


def presets() -> list[str]:
    """Names of the presets shipped with the package."""
    folder = resources.files("marginkernel") / "presets"
    return sorted(p.name[: -len(".toml")] for p in folder.iterdir() if p.name.endswith(".toml"))


def load_model(name_or_path: str | Path) -> Any:
    """A preset by name (see :func:`presets`) or a model file by path.

    Models of the generic methodology give a :class:`MarginModel` (for :class:`Engine`); a file whose
    ``[model] methodology`` names another methodology is read by that methodology's loader
    (:data:`METHODOLOGIES`; ``"derive-pm2"``: :class:`marginkernel.derive_pm2.PM2Params`).
    """
    if isinstance(name_or_path, str) and name_or_path in presets():
        with resources.as_file(resources.files("marginkernel") / "presets" / f"{name_or_path}.toml") as path:
            return _load_file(path)
    if not isinstance(name_or_path, (str, Path)):
        raise TypeError(f"model: expected a preset name or a path, got {type(name_or_path).__name__}")
    path = Path(name_or_path)
    if not path.is_file():
        raise ValueError(f"model: {str(name_or_path)!r} is neither a preset ({', '.join(presets())}) nor a file")
    return _load_file(path)


def _load_file(path: Path) -> Any:
    data = read_toml(path)
    section = data.get("model", {})
    methodology = section.get("methodology", GENERIC) if isinstance(section, Mapping) else GENERIC
    if methodology == GENERIC or not isinstance(methodology, str):
        return MarginModel.from_toml(path)
    if methodology not in METHODOLOGIES:
        known = sorted([GENERIC, *METHODOLOGIES])
        raise ValueError(f"model file {str(path)!r}: model.methodology: unknown {methodology!r}; known: {known}")
    return _loader(methodology)(path)


__all__ = ["GENERIC", "METHODOLOGIES", "MarginModel", "load_model", "presets", "read_toml", "register_methodology"]
