"""Pure-NumPy reference of the C++ explain kernels (the same semantics, one position at a time)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import reference as _ref


def _measure(joint: np.ndarray, measure: int, confidence: float, probability: Any) -> float:
    if measure == 0:
        return max(0.0, -float(joint.min()))
    var, es = _ref.value_at_risk(joint[None, :], confidence, probability)
    return max(0.0, float(var[0] if measure == 1 else es[0]))


def node_joint(child_pnl: Any, child_gain: Any, node_cap: Any, children: list[tuple[int, Any]]) -> np.ndarray:
    """Joint P&L of one node from its live children's P&L rows (the engine's haircut rule)."""
    if not children:
        return np.zeros(child_pnl.shape[1])
    if len(children) == 1:
        return np.array(children[0][1], dtype=float)
    losses = sum(np.minimum(x, 0.0) for _, x in children)
    gains = sum(child_gain[c] * np.maximum(x, 0.0) for c, x in children)
    return np.asarray(losses + np.minimum(node_cap, gains), dtype=float)


def node_scan(  # noqa: PLR0917 - the kernel binding's positional signature
    child_pnl: Any,
    child_gain: Any,
    child_count: Any,
    child_scale: Any,
    node_start: Any,
    node_cap: Any,
    measure: Any,
    confidence: Any,
    probability: Any,
) -> np.ndarray:
    out = np.zeros(len(node_start) - 1)
    for n in range(len(out)):
        kids = [(c, child_pnl[c]) for c in range(node_start[n], node_start[n + 1])]
        out[n] = _measure(node_joint(child_pnl, child_gain, node_cap[n], kids), measure, confidence, probability)
    return out


def incremental_scan(  # noqa: PLR0917 - the kernel binding's positional signature
    child_pnl: Any,
    child_gain: Any,
    child_count: Any,
    child_scale: Any,
    node_start: Any,
    node_cap: Any,
    measure: Any,
    confidence: Any,
    probability: Any,
    risk: Any,
    weight: Any,
    instrument: Any,
    unit: Any,
    child: Any,
    quantity: Any,
) -> np.ndarray:
    """Reference of ``_core.incremental_scan``: each position's node scan with the position removed."""
    node_of = np.repeat(np.arange(len(node_start) - 1), np.diff(node_start))
    out = np.zeros(len(instrument))
    for k in range(len(instrument)):
        c = child[k]
        n = node_of[c]
        kids = []
        for d in range(node_start[n], node_start[n + 1]):
            if d != c:
                kids.append((d, child_pnl[d]))
            elif child_count[c] > 1:
                kids.append(
                    (d, child_pnl[c] - ((quantity[k] * risk[instrument[k]]) * weight[unit[k]]) * child_scale[c])
                )
        out[k] = _measure(node_joint(child_pnl, child_gain, node_cap[n], kids), measure, confidence, probability)
    return out
