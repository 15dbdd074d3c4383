// Stage 2: net. P[a, u, s] = sum over account a's positions in risk unit u of quantity * R[i, s].
// Positions are sparse (compressed rows by account); nothing of size accounts x instruments exists.
#pragma once

#include "marginkernel/types.hpp"

namespace marginkernel {

// Risk arrays as produced by revalue(): [n_instruments x n_scenarios], with each row's risk unit.
struct RiskArraysView {
    std::size_t n_instruments = 0;
    std::size_t n_scenarios = 0;
    std::size_t n_units = 0;
    const double* risk = nullptr;
    const std::int32_t* risk_unit = nullptr;  // [n_instruments]
};

// Checks positions against the risk arrays (instrument ids in range, finite quantities, account
// rows non-decreasing) and throws InvalidInput naming the field and row.
void validate(const RiskArraysView& risk, const PositionsView& positions);

// Overwrites pnl[n_accounts x n_units x n_scenarios]. Validates first.
void net(const RiskArraysView& risk, const PositionsView& positions, double* pnl, int threads = 1);

// pnl[s] += quantity * risk_row[s] for s < n: one position added to a cached P&L vector.
void add_position(double* pnl, const double* risk_row, double quantity, std::size_t n) noexcept;

}  // namespace marginkernel
