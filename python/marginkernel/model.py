"""Margin models as validated configuration (TOML), and the presets shipped with the package.

Layout of a model file::

    [model]
    name = "deribit-pm"
    description = "..."
    source = "where the parameters come from"
    as_of = "2026-11-21"
    measure = "worst_loss"     # worst_loss | var | es
    netting = "risk_unit"      # risk_unit: margin per risk unit, summed in USD
                               # account: joint scenarios, P&L summed across units in USD first
    confidence = 0.99          # var / es only
    gain_factor = 1.0          # gains scaled by this before the worst case (0: gains never offset)
    im_factor = 1.0            # IM = im_factor * measure
    mm_factor = 0.8            # MM = mm_factor * IM

    [scenarios]
    builder = "deribit_grid"   # a builder of marginkernel.scenarios (deribit_grid, span16, range_points)
    price_range = { default = 0.16, ETH = 0.18 }   # the builder's keyword arguments
    ...

Every key is checked; an unknown key or a value of the wrong type raises ``ValueError`` naming it.
"""

from __future__ import annotations

import inspect
import math
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from . import scenarios as _scenarios

MEASURES = ("worst_loss", "var", "es")
GENERIC = "scenario-grid"  # [model] methodology of models the generic Engine computes
NETTING = ("risk_unit", "account")
_MODEL_KEYS = {
    "name": str, "methodology": str, "description": str, "source": str, "as_of": str, "measure": str, "netting": str,
    "confidence": float, "gain_factor": float, "im_factor": float, "mm_factor": float,
}


@dataclass(frozen=True)
class MarginModel:
    name: str
    builder: str
    scenario_params: Mapping = field(default_factory=dict)
    measure: str = "worst_loss"
    netting: str = "risk_unit"
    confidence: float = 0.99
    gain_factor: float = 1.0
    im_factor: float = 1.0
    mm_factor: float = 1.0
    description: str = ""
    source: str = ""
    as_of: str = ""

    def __post_init__(self):
        if self.measure not in MEASURES:
            raise ValueError(f"model.measure: must be one of {MEASURES}, got {self.measure!r}")
        if self.netting not in NETTING:
            raise ValueError(f"model.netting: must be one of {NETTING}, got {self.netting!r}")
        if not 0 < self.confidence < 1:
            raise ValueError(f"model.confidence: must be in (0, 1), got {self.confidence!r}")
        for key in ("gain_factor", "im_factor", "mm_factor"):
            value = getattr(self, key)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"model.{key}: must be finite and >= 0, got {value!r}")
        if self.builder not in _scenarios.BUILDERS:
            raise ValueError(f"scenarios.builder: must be one of {sorted(_scenarios.BUILDERS)}, got {self.builder!r}")
        params = inspect.signature(_scenarios.BUILDERS[self.builder]).parameters
        for key in self.scenario_params:
            if key not in params or key == "underlyings":
                known = sorted(k for k in params if k != "underlyings")
                raise ValueError(f"scenarios.{key}: not a parameter of {self.builder}; known: {known}")

    def scenarios(self, underlyings: Sequence[str]) -> _scenarios.ScenarioSet:
        """The scenario set for risk units with these underlyings (one per unit, in order)."""
        try:
            return _scenarios.BUILDERS[self.builder](list(underlyings), **self.scenario_params)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"scenarios ({self.builder}): {exc}") from None

    @classmethod
    def from_dict(cls, data: Mapping) -> MarginModel:
        unknown = set(data) - {"model", "scenarios"}
        if unknown:
            raise ValueError(f"unknown section(s) {sorted(unknown)}; a model file has [model] and [scenarios]")
        model = data.get("model")
        if not isinstance(model, Mapping):
            raise ValueError("model: missing [model] section")
        kwargs = {}
        for key, value in model.items():
            if key not in _MODEL_KEYS:
                raise ValueError(f"model.{key}: unknown key; known: {sorted(_MODEL_KEYS)}")
            want = _MODEL_KEYS[key]
            if want is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            if not isinstance(value, want) or isinstance(value, bool):
                raise ValueError(f"model.{key}: expected {want.__name__}, got {value!r}")
            kwargs[key] = value
        if "name" not in kwargs:
            raise ValueError("model.name: missing")
        methodology = kwargs.pop("methodology", GENERIC)
        if methodology != GENERIC:
            raise ValueError(f"model.methodology: {methodology!r} is not the generic {GENERIC!r}; use load_model()")
        scen = data.get("scenarios")
        if not isinstance(scen, Mapping) or "builder" not in scen:
            raise ValueError("scenarios.builder: missing [scenarios] section or its builder")
        params = {k: v for k, v in scen.items() if k != "builder"}
        return cls(builder=scen["builder"], scenario_params=params, **kwargs)

    @classmethod
    def from_toml(cls, path: str | Path) -> MarginModel:
        path = Path(path)
        try:
            with path.open("rb") as fh:
                data = tomllib.load(fh)
        except FileNotFoundError:
            raise ValueError(f"model file {str(path)!r}: not found") from None
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"model file {str(path)!r}: not valid TOML: {exc}") from None
        try:
            return cls.from_dict(data)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"model file {str(path)!r}: {exc}") from None


def presets() -> list[str]:
    """Names of the presets shipped with the package."""
    folder = resources.files("marginkernel") / "presets"
    return sorted(p.name[: -len(".toml")] for p in folder.iterdir() if p.name.endswith(".toml"))


def load_model(name_or_path: str | Path):
    """A preset by name (see :func:`presets`) or a model file by path.

    Models of the generic methodology give a :class:`MarginModel` (for :class:`Engine`); a file whose
    ``[model] methodology`` names a methodology with its own module gives that module's parameters
    (``"derive-pm2"``: :class:`marginkernel.derive_pm2.PM2Params`).
    """
    if isinstance(name_or_path, str) and name_or_path in presets():
        with resources.as_file(resources.files("marginkernel") / "presets" / f"{name_or_path}.toml") as path:
            return _load_file(path)
    path = Path(name_or_path)
    if not path.exists():
        raise ValueError(f"model: {str(name_or_path)!r} is neither a preset ({', '.join(presets())}) nor a file")
    return _load_file(path)


def _load_file(path: Path):
    try:
        with path.open("rb") as fh:
            methodology = tomllib.load(fh).get("model", {}).get("methodology", GENERIC)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"model file {str(path)!r}: not valid TOML: {exc}") from None
    if methodology == "derive-pm2":
        from .derive_pm2 import load_preset

        return load_preset(path)
    return MarginModel.from_toml(path)
