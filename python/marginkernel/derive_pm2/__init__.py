"""Derive PM2 (portfolio margin 2): the ``derive-pm2`` margin model and its oracle-case loader.

Algorithm: derivexyz/v2-core ``src/risk-managers/PMRMLib_2.sol`` and ``PMRM_2.sol`` (BUSL-1.1; read
for conformance, not copied). ``docs/derive-pm2.md`` states it step by step, maps every JSON field,
lists every assumption we make that the contract does not, and the conformance results.

Modules, by job:

* :mod:`.parameters` -- :class:`PM2Params` and its groups; :func:`parse_params` (a case's
  ``Parameters``), :func:`load_preset` (TOML), :func:`params_to_json`.
* :mod:`.portfolio` -- :class:`Portfolio` and its parts, their documented bounds.
* :mod:`.cases` -- :func:`load_case` / :func:`parse_case`: one portfolio-case JSON -> :class:`Case`.
* :mod:`.formulas` -- per-expiry building blocks (forward portions, vol shocks, static discounts,
  skew multipliers, naked shorts).
* :mod:`.evaluation` -- :func:`evaluate`: scenario revaluation through the C++ kernels
  (``engine="kernel"``) or their NumPy twins (``"reference"``), contingencies, IM / MM.

Signs follow Derive: scenario values are P&L (> 0 is a gain) and ``im`` / ``mm`` are margin
*balances*; the requirements (>= 0) are ``im_requirement`` / ``mm_requirement``.
"""

from __future__ import annotations

from .cases import Case, Expected, load_case, parse_case, parse_expected, parse_portfolio
from .evaluation import PM2Result, evaluate
from .formulas import (
    DAY,
    FORWARD_SPLIT_SECONDS,
    SECONDS_PER_YEAR,
    forward_portions,
    naked_shorts,
    skew_multipliers,
    static_discounts,
    vol_shock_multipliers,
)
from .parameters import (
    MAX_PARAMETER,
    VOL_DIRECTIONS,
    BasisContingencyParams,
    MarginParams,
    OtherContingencyParams,
    PM2Params,
    Scenario,
    SkewShockParams,
    VolShockParams,
    load_preset,
    params_to_json,
    parse_params,
    preset_path,
    validate_params,
)
from .portfolio import (
    BOUNDS,
    MAX_MAGNITUDE,
    MAX_SECONDS,
    MAX_VOL,
    Collateral,
    ExpiryFeed,
    Option,
    Portfolio,
    validate_portfolio,
)

__all__ = [
    "BOUNDS",
    "DAY",
    "FORWARD_SPLIT_SECONDS",
    "MAX_MAGNITUDE",
    "MAX_PARAMETER",
    "MAX_SECONDS",
    "MAX_VOL",
    "SECONDS_PER_YEAR",
    "VOL_DIRECTIONS",
    "BasisContingencyParams",
    "Case",
    "Collateral",
    "Expected",
    "ExpiryFeed",
    "MarginParams",
    "Option",
    "OtherContingencyParams",
    "PM2Params",
    "PM2Result",
    "Portfolio",
    "Scenario",
    "SkewShockParams",
    "VolShockParams",
    "evaluate",
    "forward_portions",
    "load_case",
    "load_preset",
    "naked_shorts",
    "params_to_json",
    "parse_case",
    "parse_expected",
    "parse_params",
    "parse_portfolio",
    "preset_path",
    "skew_multipliers",
    "static_discounts",
    "validate_params",
    "validate_portfolio",
    "vol_shock_multipliers",
]
