"""The expiry rule: futures and options whose expiry is at or before the valuation time.

``expired="refuse"`` (the default): such instruments are an error naming them (they cannot be
margined as if live). ``expired="settle"``: each is settled at intrinsic value against its settlement
price P (the market snapshot's ``settlement_prices``, keyed by instrument id, then underlying):
per unit, a call is worth ``multiplier * max(P - K, 0)``, a put ``multiplier * max(K - P, 0)``
(inverse options: divided by P, in coin); a future is worth 0 (its P&L up to settlement is variation
margin, already in the account's cash or ``unrealised_pnl``). A settled position carries no risk:
its risk arrays are 0, it is left out of netting and add-ons, and its value (quantity x value per
unit, converted to USD) is added to the account's equity. Perpetuals and spot never expire.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from ..codes import CALL, INVERSE, PUT
from ..instruments import Instruments
from ..keyed import keyed_value
from ..market import Market, ResolvedMarket
from .positions import Positions

EXPIRED = ("refuse", "settle")


class Expiry:
    """Which instruments have expired for one engine, and their settlement value per unit."""

    def __init__(self, instruments: Instruments, market: Market, resolved: ResolvedMarket, mode: str):
        if mode not in EXPIRED:
            raise ValueError(f"expired: must be one of {list(EXPIRED)}, got {mode!r}")
        self.mode = mode
        exp = instruments.expiry
        self.mask = np.isfinite(exp) & (exp <= market.time)
        self.value = np.zeros(len(instruments))
        if not self.mask.any():
            return
        rows = np.flatnonzero(self.mask)
        if mode == "refuse":
            when = datetime.fromtimestamp(market.time, tz=UTC).isoformat()
            ids = ", ".join(repr(instruments.ids[k]) for k in rows[:5]) + (", ..." if len(rows) > 5 else "")
            raise ValueError(
                f"instruments: {len(rows)} expired at or before the valuation time {when}: {ids} "
                '(remove them, or pass expired="settle" to settle them at intrinsic value)'
            )
        for k in rows:
            iid, under = str(instruments.ids[k]), str(instruments.underlying[k])
            price = keyed_value(
                market.settlement_prices,
                (iid, under),
                "market.settlement_prices",
                label=f"expired instrument {iid!r} (underlying {under!r})",
            )
            kind = int(instruments.kind[k])
            if kind not in (CALL, PUT):
                continue
            phi = 1.0 if kind == CALL else -1.0
            intrinsic = instruments.multiplier[k] * max(phi * (price - instruments.strike[k]), 0.0)
            self.value[k] = intrinsic / price if instruments.settlement[k] == INVERSE else intrinsic

    def clear_rows(self, risk: np.ndarray, value_now: np.ndarray) -> None:
        """Expired rows carry no risk; their value now is the settlement value."""
        if self.mask.any():
            risk[self.mask] = 0.0
            value_now[self.mask] = self.value[self.mask]

    def settle(self, pos: Positions, market: ResolvedMarket) -> tuple[Positions, np.ndarray | None]:
        """Positions without the expired rows, and the settled value per account (USD; None when no
        position is in an expired instrument)."""
        if not self.mask.any():
            return pos, None
        gone = self.mask[pos.instrument]
        if not gone.any():
            return pos, None
        fx = market.unit_fx[market.unit_of_row[pos.instrument[gone]]]
        settled = np.bincount(
            pos.account[gone], pos.quantity[gone] * self.value[pos.instrument[gone]] * fx, minlength=pos.n_accounts
        )
        keep = ~gone
        kept = Positions(
            pos.names,
            pos.account[keep],
            pos.instrument[keep],
            pos.quantity[keep],
            pos.isolated[keep],
            pos.upnl_usd,
            pos.collateral_usd,
        )
        return kept, settled


__all__ = ["EXPIRED", "Expiry"]
