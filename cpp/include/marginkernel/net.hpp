// Stage 2: net. P[a, u, s] = sum over account a's positions in risk unit u of quantity * R[i, s].
// Positions are sparse (compressed rows by account); nothing of size accounts x instruments exists.
#pragma once

#include "marginkernel/types.hpp"

namespace marginkernel {

// Checks positions against the risk arrays (instrument ids in range, finite quantities, account
// rows non-decreasing) and throws InvalidInput naming the field and row.
void validate(const RiskArraysView& risk, const PositionsView& positions);

// Overwrites pnl[n_accounts x n_units x n_scenarios]. Validates first. `threads` (>= 1, else
// InvalidInput) > 1 splits the accounts across up to that many threads, at most the hardware's.
// Large R and pnl are best on huge pages (Linux: madvise MADV_HUGEPAGE, as NumPy does): the kernel
// touches every output row once per scenario tile (docs/netting-kernel.md).
void net(const RiskArraysView& risk, const PositionsView& positions, double* pnl, int threads = 1);

}  // namespace marginkernel
