"""A small sparse LP / MILP builder solved by HiGHS (through SciPy's ``milp``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

Expr = tuple[float, dict[int, float]]  # constant, {column: coefficient}


@dataclass(eq=False)
class LP:
    lb: list[float] = field(default_factory=list)
    ub: list[float] = field(default_factory=list)
    cost: list[float] = field(default_factory=list)
    integer: list[int] = field(default_factory=list)
    rows: list[np.ndarray] = field(default_factory=list)
    cols: list[np.ndarray] = field(default_factory=list)
    vals: list[np.ndarray] = field(default_factory=list)
    row_lo: list[np.ndarray] = field(default_factory=list)
    row_hi: list[np.ndarray] = field(default_factory=list)
    n_rows: int = 0

    @property
    def n(self) -> int:
        return len(self.lb)

    def var(
        self, count: int = 1, lb: float = 0.0, ub: float = np.inf, cost: float = 0.0, integer: bool = False
    ) -> np.ndarray:
        start = self.n
        self.lb += [lb] * count
        self.ub += [ub] * count
        self.cost += [cost] * count
        self.integer += [int(integer)] * count
        return np.arange(start, start + count)

    def block(self, r: np.ndarray, c: np.ndarray, v: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> None:
        """Rows lo <= sum v x[c] <= hi given as triplets with local row numbers r (0 .. len(lo)-1)."""
        self.rows.append(np.asarray(r, np.int64) + self.n_rows)
        self.cols.append(np.asarray(c, np.int64))
        self.vals.append(np.asarray(v, float))
        self.row_lo.append(np.asarray(lo, float))
        self.row_hi.append(np.asarray(hi, float))
        self.n_rows += len(lo)

    def le(self, expr: Expr) -> None:
        """The row expr <= 0 (constant + sum of coefficient * column)."""
        const, coefs = expr
        cols = np.array(list(coefs), dtype=np.int64)
        vals = np.array([coefs[k] for k in coefs], dtype=float)
        self.block(np.zeros(len(cols), np.int64), cols, vals, np.array([-np.inf]), np.array([-const]))

    def solve(self, mip_rel_gap: float = 1e-7, time_limit: float | None = None) -> Any:
        from scipy import sparse
        from scipy.optimize import Bounds, LinearConstraint, milp

        a = sparse.csr_matrix(
            (np.concatenate(self.vals), (np.concatenate(self.rows), np.concatenate(self.cols))),
            shape=(self.n_rows, self.n),
        )
        options = {"mip_rel_gap": mip_rel_gap}
        if time_limit is not None:
            options["time_limit"] = time_limit
        return milp(
            np.array(self.cost),
            integrality=np.array(self.integer),
            bounds=Bounds(self.lb, self.ub),
            constraints=LinearConstraint(a, np.concatenate(self.row_lo), np.concatenate(self.row_hi)),
            options=options,
        )


def add(*exprs: Expr, scale: tuple[float, ...] | None = None) -> Expr:
    """Sum of expressions (each times its scale)."""
    const = 0.0
    coefs: dict[int, float] = {}
    for k, (c, d) in enumerate(exprs):
        f = 1.0 if scale is None else scale[k]
        const += f * c
        for col, v in d.items():
            coefs[col] = coefs.get(col, 0.0) + f * v
    return const, coefs


def times(expr: Expr, f: float) -> Expr:
    return expr[0] * f, {k: v * f for k, v in expr[1].items()}


def var_expr(col: int, coef: float = 1.0) -> Expr:
    return 0.0, {int(col): coef}
