"""Netting: positions -> scenario P&L per account, the (account, risk unit) pairs and the nodes of
the model's netting level with their scan risk.

Memory. The one array of the size accounts x units x scenarios is the accounts' P&L
(:meth:`Pairs.account_pnl`, returned in the result). Pairs do not copy it: each pair names its row
of that array (``pair_row``); weighted P&L, the netting level's joint P&L and the measures are
computed block by block over whole accounts, with blocks of about ``BLOCK_BYTES``, so the peak stays
close to the P&L array itself. Isolated positions add one row each (their own P&L): the rows hold
the cross positions' P&L until :meth:`Pairs.account_pnl` adds the isolated rows into them, last.

Netting levels (``[model] netting``), per node and scenario s, with w the scenario weights:

* ``risk_unit``: a node per pair; joint = w P.
* ``currency``: a node per (account, settlement currency); with children u (the account's units of
  that currency) joint = sum_u min(w P_u, 0) + min(sum_u g_u max(w P_u, 0), cap / fx_c); a node
  with one child keeps w P_u as it is.
* ``account``: a node per account; the currencies net fully, C_c = fx_c sum_u w P_u (USD), then
  joint = sum_c min(C_c, 0) + min(sum_c g_c max(C_c, 0), cap); one currency: C_c as it is.

The node's scan risk is the model's measure of ``joint`` (worst loss, VaR or ES).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .. import kernels
from ..keyed import keyed_array
from .keys import unique_inverse
from .positions import Positions

if TYPE_CHECKING:
    from .core import Engine

#: target size of one block of scenario rows (bytes) in the blocked computations
BLOCK_BYTES = 16 << 20


@dataclass(eq=False)
class Pairs:
    """(pseudo-account, risk unit) pairs of a book. Pseudo-accounts are the accounts (cross
    positions) followed by one per isolated position; ``owner`` maps them to their account."""

    owner: np.ndarray  # (n_pseudo,) account of each pseudo-account
    shape: tuple[int, int, int]  # (A, U, S) of the accounts' P&L
    rows: np.ndarray  # (A * U + isolated positions, S): the (account, unit) rows, then one per isolated position
    pos_pair: np.ndarray  # (k,) pair of each position
    pair_account: np.ndarray  # (P,) pseudo-account, sorted
    pair_unit: np.ndarray  # (P,)
    pair_row: np.ndarray  # (P,) row of ``rows``
    pair_scan: np.ndarray  # (P,) weighted worst loss of the pair alone
    pair_worst: np.ndarray  # (P,) its scenario

    iso_target: np.ndarray | None = None  # (account, unit) row each isolated row adds into

    def account_pnl(self, names: np.ndarray | None = None) -> np.ndarray:
        """(A, U, S) scenario P&L of each account over all its positions. With isolated positions
        this adds their rows into the (account, unit) rows in place -- afterwards those rows are the
        accounts' totals, no longer the cross positions' P&L -- so call it last. A total that
        overflows is an error naming the account (``names``: the account names)."""
        n_rows = self.shape[0] * self.shape[1]
        if self.iso_target is not None:
            target, self.iso_target = self.iso_target, None
            with np.errstate(over="ignore", invalid="ignore"):
                np.add.at(self.rows, target, self.rows[n_rows:])
            touched = np.unique(target)
            bad = ~np.isfinite(self.rows[touched]).all(axis=1)
            if bad.any():
                account = int(touched[np.flatnonzero(bad)[0]]) // self.shape[1]
                label = repr(names[account]) if names is not None else f"#{account}"
                raise ValueError(
                    f"positions: the scenario P&L of account {label} overflows float64 (quantities too large)"
                )
        return self.rows[:n_rows].reshape(self.shape)

    @property
    def n_pseudo(self) -> int:
        return len(self.owner)

    @property
    def n_pairs(self) -> int:
        return len(self.pair_unit)


@dataclass(frozen=True, eq=False)
class Nodes:
    """Nodes of the netting level: scan risk and worst scenario, FX of the node's currency to USD,
    name (risk unit, currency or None), pseudo-account, and the node of each pair."""

    scan: np.ndarray
    worst: np.ndarray
    fx: np.ndarray
    name: np.ndarray
    pseudo: np.ndarray
    to_node: np.ndarray

    def __len__(self) -> int:
        return len(self.scan)


def _net_rows(engine: Engine, pos: Positions) -> np.ndarray:
    """The cross positions' (account, unit) P&L rows (A * U, S), then one row per isolated position."""
    n_acc, n_units, n_s = pos.n_accounts, len(engine.units), engine.scenario_set.n_scenarios
    iso = pos.isolated
    n_iso = int(iso.sum())
    rows = np.empty((n_acc * n_units + n_iso, n_s))
    cross = None if n_iso == 0 else ~iso
    _net_accounts(engine, pos, cross, rows[: n_acc * n_units].reshape(n_acc, n_units, n_s))
    if n_iso:
        rows[n_acc * n_units :] = pos.quantity[iso, None] * engine.counted_risk[pos.instrument[iso]]
    return rows


def _net_accounts(engine: Engine, pos: Positions, rows: np.ndarray | None, out: np.ndarray) -> None:
    """P = Q . R of the positions ``rows`` (all when None) into ``out``; an account whose P&L
    overflows is named (the kernel names only the position row)."""
    starts = pos.starts(rows)
    instrument = pos.instrument if rows is None else pos.instrument[rows]
    quantity = pos.quantity if rows is None else np.ascontiguousarray(pos.quantity[rows])
    try:
        kernels.net(
            engine.counted_risk,
            engine.market.unit_of_row,
            len(engine.units),
            starts,
            instrument.astype(np.int32),
            quantity,
            threads=engine.threads,
            out=out,
        )
    except kernels.InputError as exc:
        if exc.field != "quantity" or exc.row is None:
            raise
        account = int(np.searchsorted(starts, exc.row, side="right")) - 1
        raise ValueError(
            f"positions: the scenario P&L of account {pos.names[account]!r} overflows float64 (quantities too large)"
        ) from None


def pair_blocks(pair_account: np.ndarray, n_scenarios: int) -> Iterator[slice]:
    """Consecutive slices of pairs of about ``BLOCK_BYTES`` of scenario rows, each covering whole
    pseudo-accounts (pairs are sorted by pseudo-account)."""
    n = len(pair_account)
    step = max(1, BLOCK_BYTES // (8 * max(n_scenarios, 1)))
    p0 = 0
    while p0 < n:
        p1 = min(n, p0 + step)
        p1 = int(np.searchsorted(pair_account, pair_account[p1 - 1], side="right"))
        yield slice(p0, p1)
        p0 = p1


def build_pairs(engine: Engine, pos: Positions) -> Pairs:
    """Net the positions and lay out their pairs, with each pair's own weighted worst loss."""
    n_acc, n_units = pos.n_accounts, len(engine.units)
    sc = engine.scenario_set
    iso = pos.isolated
    n_iso = int(iso.sum())
    rows = _net_rows(engine, pos)
    shape = (n_acc, n_units, sc.n_scenarios)
    pos_unit = engine.market.unit_of_row[pos.instrument].astype(np.int64)
    pseudo = pos.account.copy()
    pseudo[iso] = n_acc + np.arange(n_iso)
    pair_key, pos_pair = unique_inverse(pseudo * n_units + pos_unit, (n_acc + n_iso) * n_units)
    pair_account, pair_unit = pair_key // n_units, pair_key % n_units
    pair_row = np.where(pair_account < n_acc, pair_key, n_acc * n_units + (pair_account - n_acc))
    scan = np.zeros(len(pair_key))
    worst = np.zeros(len(pair_key), dtype=np.int32)
    owner = np.concatenate([np.arange(n_acc), pos.account[iso]]).astype(np.int64)
    if n_iso == 0:  # the kernel weights the (account, unit) rows itself (row r takes weight row r % U)
        try:
            scan_all, worst_all = kernels.worst_loss(rows, sc.weight)
        except kernels.InputError as exc:
            if exc.row is None:
                raise
            account = pos.names[int(exc.row) // n_units]
            raise ValueError(
                f"positions: the scenario P&L of account {account!r} overflows float64 (quantities too large)"
            ) from None
        scan, worst = np.asarray(scan_all)[pair_row], np.asarray(worst_all)[pair_row]
        return Pairs(owner, shape, rows, pos_pair, pair_account, pair_unit, pair_row, scan, worst)
    for blk in pair_blocks(pair_account, sc.n_scenarios):
        weighted = rows[pair_row[blk]]
        with np.errstate(over="ignore", invalid="ignore"):
            weighted *= sc.weight[pair_unit[blk]]
        finite = np.isfinite(weighted).all(axis=1)
        if not finite.all():
            account = pos.names[owner[pair_account[blk][np.flatnonzero(~finite)[0]]]]
            raise ValueError(
                f"positions: the scenario P&L of account {account!r} overflows float64 (quantities too large)"
            )
        scan[blk], worst[blk] = kernels.worst_loss(weighted)
    iso_target = pos.account[iso] * n_units + pos_unit[iso]
    return Pairs(owner, shape, rows, pos_pair, pair_account, pair_unit, pair_row, scan, worst, iso_target)


class _Groups:
    """Rows grouped for summing: each group's rows are added in their order, starting from 0.0.

    That is netting with quantity 1: group g is an "account" whose "positions" are its rows, so the
    netting kernel sums them exactly as :meth:`sum_numpy` does (1.0 * x is x; 0.0 + x as in the
    loop), bit for bit, 5x faster at 10k accounts. A sum the kernel refuses (a non-finite row, or one
    that overflows) is taken by :meth:`sum_numpy`, whose infinities the margin's own overflow check
    then names."""

    def __init__(self, group: np.ndarray, n_groups: int):
        self.order = np.argsort(group, kind="stable")
        self.counts = np.bincount(group, minlength=n_groups)
        self.start = np.zeros(n_groups + 1, dtype=np.int64)
        np.cumsum(self.counts, out=self.start[1:])
        self.first = self.order[np.minimum(self.start[:-1], max(len(group) - 1, 0))] if len(group) else self.start[:-1]
        self.n_groups = n_groups
        # The netting kernel's view, built once for the several sums of one reduction.
        self._rows = self.order.astype(np.int32)
        self._unit = np.zeros(len(group), dtype=np.int32)
        self._ones = np.ones(len(group))

    def sum(self, rows: np.ndarray) -> np.ndarray:
        try:
            summed = kernels.net(rows, self._unit, 1, self.start, self._rows, self._ones)
        except kernels.InputError:
            return self.sum_numpy(rows)
        return np.asarray(summed)[:, 0, :]

    def sum_numpy(self, rows: np.ndarray) -> np.ndarray:
        """Pass r adds each group's r-th row (no group appears twice in a pass, so a fancy-indexed
        ``+=`` is exact)."""
        g_sorted = np.repeat(np.arange(self.n_groups), self.counts)
        rank = np.arange(len(self.order)) - self.start[g_sorted]
        out = np.zeros((self.n_groups, rows.shape[1]))
        with np.errstate(over="ignore", invalid="ignore"):
            for r in range(int(self.counts.max(initial=0))):
                out[g_sorted[rank == r]] += rows[self.order[rank == r]]
        return out


def _reduce(
    values: np.ndarray, group: np.ndarray, n_groups: int, factor: np.ndarray | None, cap: np.ndarray | None
) -> np.ndarray:
    """Per group (0..n_groups-1) and scenario: sum of the rows' losses + min(sum of factor * gains,
    cap); a plain sum without ``factor``; a group with one row keeps that row as it is."""
    groups = _Groups(group, n_groups)
    if factor is None:
        return groups.sum(values)
    losses = groups.sum(np.minimum(values, 0.0))
    if not factor.any() and np.isfinite(values).all():  # no gain offsets (deribit-pm): its sums are +0.0
        out = losses + 0.0  # what adding min(+0.0, cap >= 0) gives, bit for bit (-0.0 becomes +0.0)
    else:
        gains = groups.sum(np.maximum(values, 0.0) * factor[:, None])
        out = losses + np.minimum(gains, cap[:, None] if cap is not None else np.inf)
    single = groups.counts == 1
    out[single] = values[groups.first[single]]
    return np.asarray(out)


class Netting:
    """The netting level of one engine: names, FX and gain factors of its nodes (see the module
    docstring), and :meth:`nodes` for a book's pairs."""

    def __init__(self, engine: Engine):
        self.engine = engine
        model, m = engine.model, engine.market
        self.level = model.netting
        self.currencies = list(dict.fromkeys(m.unit_currency))
        self.unit_cur = np.array([self.currencies.index(c) for c in m.unit_currency], dtype=np.int64)
        self.cur_fx = np.array([engine.market_snapshot.fx_rate(c) for c in self.currencies])
        g = model.gain_factor
        self.unit_gain = keyed_array(
            g, list(zip(m.units, m.unit_underlying, strict=True)), "model.gain_factor", fallback=1.0
        )
        self.cur_gain = keyed_array(g, [(c,) for c in self.currencies], "model.gain_factor", fallback=1.0)

    def _node_keys(self, pairs: Pairs) -> tuple[np.ndarray, np.ndarray]:
        if self.level == "risk_unit":
            return np.arange(pairs.n_pairs), np.arange(pairs.n_pairs)
        key, n_keys = pairs.pair_account, int(pairs.pair_account.max(initial=-1)) + 1
        if self.level == "currency":
            key = key * len(self.currencies) + self.unit_cur[pairs.pair_unit]
            n_keys *= len(self.currencies)
        return unique_inverse(key, n_keys)

    def _joint(self, weighted: np.ndarray, pairs: Pairs, blk: slice, local: np.ndarray, n: int) -> np.ndarray:
        """Joint P&L of the ``n`` nodes of one block (see the module docstring)."""
        model = self.engine.model
        unit = pairs.pair_unit[blk]
        cur = self.unit_cur[unit]
        if self.level == "risk_unit":
            return weighted
        if self.level == "currency":
            first = np.zeros(n, dtype=np.int64)
            first[local[::-1]] = np.arange(len(local))[::-1]
            cap = model.gain_cap / self.cur_fx[cur[first]]
            return _reduce(weighted, local, n, self.unit_gain[unit], cap)
        # account level: currencies net fully (in USD), then the haircut across currencies
        n_cur = len(self.currencies)
        acc_cur = local * n_cur + cur
        keys, group = unique_inverse(acc_cur, n * n_cur)
        by_cur = _reduce(weighted, group, len(keys), None, None)
        by_cur *= self.cur_fx[keys % n_cur, None]
        return _reduce(by_cur, keys // n_cur, n, self.cur_gain[keys % n_cur], np.full(n, model.gain_cap))

    def _measure(self, joint: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        model, sc = self.engine.model, self.engine.scenario_set
        joint = np.ascontiguousarray(joint)
        if model.measure == "worst_loss":
            scan, worst = kernels.worst_loss(joint)
            return np.asarray(scan), np.asarray(worst)
        var, es = kernels.value_at_risk(joint, model.confidence, sc.probability)
        return np.maximum(0.0, var if model.measure == "var" else es), np.argmin(joint, axis=1)

    def nodes(self, pairs: Pairs) -> Nodes:
        """Scan risk of every node of the netting level for these pairs."""
        engine, sc = self.engine, self.engine.scenario_set
        keys, to_node = self._node_keys(pairs)
        n_nodes = len(keys)
        if self.level == "risk_unit" and engine.model.measure == "worst_loss":
            scan, worst = pairs.pair_scan, pairs.pair_worst.astype(np.int64)
        else:
            scan, worst = np.zeros(n_nodes), np.zeros(n_nodes, dtype=np.int64)
            for blk in pair_blocks(pairs.pair_account, sc.n_scenarios):
                weighted = pairs.rows[pairs.pair_row[blk]]
                weighted *= sc.weight[pairs.pair_unit[blk]]
                # A block holds whole accounts, so its nodes are one contiguous range of the sorted
                # keys; within an account, unit order need not follow currency order (take min/max).
                n0 = int(to_node[blk].min())
                n1 = int(to_node[blk].max()) + 1
                joint = self._joint(weighted, pairs, blk, to_node[blk] - n0, n1 - n0)
                scan[n0:n1], worst[n0:n1] = self._measure(joint)
        return Nodes(scan, worst, *self._describe(pairs, keys), to_node)

    def _describe(self, pairs: Pairs, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(fx, name, pseudo-account) of each node."""
        m = self.engine.market
        if self.level == "risk_unit":
            names = np.array(m.units, dtype=object)[pairs.pair_unit] if len(keys) else np.zeros(0, dtype=object)
            return m.unit_fx[pairs.pair_unit], names, pairs.pair_account
        if self.level == "currency":
            n_cur = len(self.currencies)
            return self.cur_fx[keys % n_cur], np.array(self.currencies, dtype=object)[keys % n_cur], keys // n_cur
        return np.ones(len(keys)), np.full(len(keys), None, dtype=object), keys


__all__ = ["BLOCK_BYTES", "Netting", "Nodes", "Pairs", "build_pairs", "pair_blocks"]
