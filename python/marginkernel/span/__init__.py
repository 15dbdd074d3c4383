"""SPAN risk-parameter files (CME SPAN XML, ``fileFormat`` 4.x): read, regenerate, margin.

* :func:`read_span` / :func:`parse_span` stream a ``.spn`` file into a :class:`SpanFile`: pandas
  DataFrames of products, expiries, contracts with their published risk arrays, scan- and
  delta-point definitions, combined commodities, and the intra- and inter-commodity spread
  definitions (tier legs ``<tLeg>`` and period legs ``<pLeg>``) as :class:`Spread` dataclasses.
  Elements of the schema that would change a margin figure and are not implemented are refused
  by name; informational ones are skipped (:mod:`marginkernel.span.schema`, docs/span.md).
* :func:`regenerate_arrays` recomputes every risk array from the file's own inputs with the C++
  revaluation kernel; :func:`compare_arrays` measures it against the published arrays.
* :func:`margin` margins a positions table: scan risk, intra-commodity spread charges,
  inter-commodity credits, short-option minimum and the net-option-value rule, finished by the
  clearing house's :class:`SpanRules` (presets: :func:`rule_presets`, :func:`rules`).
* :func:`sample_file` writes a small SPAN file generated from the schema (docs and tests use it).

Sign conventions. Published SPAN arrays are *losses* per contract (positive = the holder of one long
contract loses), already multiplied by each scan point's weight (cover fraction). That is the
convention of :attr:`SpanFile.risk_arrays` and of :func:`regenerate_arrays`; the library's pipeline
convention (P&L > 0 is a gain) is used inside :func:`margin`, which hands ``-arrays`` to
:func:`marginkernel.kernels.net` and :func:`marginkernel.kernels.worst_loss`.
"""

from __future__ import annotations

from ..spreads import Spread, SpreadLeg, Tier
from .arrays import DEFAULT_LOOK_AHEAD, RegeneratedArrays, compare_arrays, error_summary, regenerate_arrays
from .margin import SpanMargin, contract_rows, margin
from .model import OPTION_PORTFOLIOS, FileParams, SpanFile
from .reader import parse_span, read_span
from .rules import SpanRules, rules
from .rules import presets as rule_presets
from .sample import sample_file, sample_xml

__all__ = [
    "DEFAULT_LOOK_AHEAD",
    "OPTION_PORTFOLIOS",
    "FileParams",
    "RegeneratedArrays",
    "SpanFile",
    "SpanMargin",
    "SpanRules",
    "Spread",
    "SpreadLeg",
    "Tier",
    "compare_arrays",
    "contract_rows",
    "error_summary",
    "margin",
    "parse_span",
    "read_span",
    "regenerate_arrays",
    "rule_presets",
    "rules",
    "sample_file",
    "sample_xml",
]
