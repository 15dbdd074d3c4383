"""Margin of many accounts in blocks, so that the (accounts, units, scenarios) P&L never exists whole.

For a VaR / ES (or worst-loss) model with account netting, full gain offset and no add-ons -- the
shape of a CCP's historical model -- the margin of account a is
``im_factor * max(0, measure_s(sum_u fx_u w[u, s] P[a, u, s]))``, which needs only one account's
scenario P&L at a time. :func:`margin_by_blocks` nets ``block`` accounts at once with the engine's
risk arrays and kernels: peak memory ~ block x units x scenarios x 8 bytes (plus the risk arrays),
independent of the number of accounts. The result equals ``Engine.margin(...).accounts["im"]``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from .. import kernels
from ..engine import Book, Engine


def _check(engine: Engine) -> None:
    m = engine.model
    if m.netting != "account" or m.addons or m.mode != "cross":
        raise ValueError(
            "model: margin_by_blocks computes account netting in cross mode without add-ons; "
            f"got netting {m.netting!r}, mode {m.mode!r}, add-ons {list(m.components)}"
        )
    g = m.gain_factor
    if (isinstance(g, Mapping) and any(v != 1.0 for v in g.values())) or (not isinstance(g, Mapping) and g != 1.0):
        raise ValueError("model.gain_factor: margin_by_blocks needs full gain offset (1.0)")
    if not math.isinf(m.gain_cap):
        raise ValueError("model.gain_cap: margin_by_blocks needs no gain cap")


def margin_by_blocks(engine: Engine, book: Book, *, block: int = 256) -> pd.Series:
    """IM per account of ``book`` (see the module docstring), ``block`` accounts at a time."""
    _check(engine)
    if isinstance(block, bool) or not isinstance(block, int) or block < 1:
        raise ValueError(f"block: must be an integer >= 1, got {block!r}")
    model, sc, m = engine.model, engine.scenario_set, engine.market
    n_units = len(engine.units)
    fx_w = np.ascontiguousarray(m.unit_fx[:, None] * sc.weight)  # (U, S) USD per settlement unit x weight
    risk = engine.counted_risk
    n_acc = len(book.accounts)
    im = np.zeros(n_acc)
    for lo in range(0, n_acc, block):
        hi = min(lo + block, n_acc)
        a, b = int(book.account_start[lo]), int(book.account_start[hi])
        start = np.ascontiguousarray(book.account_start[lo : hi + 1] - a)
        pnl = kernels.net(risk, m.unit_of_row, n_units, start, book.instrument[a:b], book.quantity[a:b])
        joint = np.einsum("aus,us->as", pnl, fx_w)
        if model.measure == "worst_loss":
            scan, _ = kernels.worst_loss(joint)
        else:
            var, es = kernels.value_at_risk(joint, model.confidence, sc.probability)
            scan = var if model.measure == "var" else es
        im[lo:hi] = model.im_factor * np.maximum(0.0, scan)
    return pd.Series(im, index=pd.Index(book.accounts, name="account"), name="im")


__all__ = ["margin_by_blocks"]
