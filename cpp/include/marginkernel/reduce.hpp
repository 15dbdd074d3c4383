// Stage 3: reduce. Scenario P&L vectors -> margin figures (loss = -P&L, margin >= 0; the project's
// conventions, docs/conventions.md).
#pragma once

#include "marginkernel/types.hpp"

namespace marginkernel {

// Checks the inputs of worst_loss() (at least one scenario, every P&L finite, weights finite and
// >= 0 with at least one row, gain_factor finite and >= 0) and throws InvalidInput naming the field
// and row of the first problem.
void validate_worst_loss(const double* pnl, std::size_t rows, std::size_t n_scenarios, const double* weight,
                         std::size_t weight_rows, double gain_factor);

// For each of `rows` P&L vectors of length n_scenarios: gains are first scaled by gain_factor
// (1 = gains count fully, 0 = gains never offset), then by weight (cover fraction), and
// loss[r] = max(0, -min_s w_s * P'_s); worst[r] = the first s attaining the minimum (worst may be
// null). `weight` is [weight_rows x n_scenarios] and row r uses weight row r % weight_rows (so P laid
// out [account][risk unit][scenario] pairs with weights [risk unit][scenario]); null = all ones.
// Validates as validate_worst_loss (the P&L check is fused into the SIMD pass); a weighted value that
// overflows throws InvalidInput naming "weight" or "gain_factor": loss is always finite.
void worst_loss(const double* pnl, std::size_t rows, std::size_t n_scenarios, const double* weight,
                std::size_t weight_rows, double gain_factor, double* loss, std::int32_t* worst);

// Checks the inputs of value_at_risk(): at least one scenario, confidence in (0, 1), every P&L
// finite, probabilities finite, >= 0, not all zero and with a finite sum.
void validate_value_at_risk(const double* pnl, std::size_t rows, std::size_t n_scenarios,
                            const double* probability, double confidence);

// Value at risk and expected shortfall at `confidence` (e.g. 0.99) of each row, as losses:
// q = inverse-CDF quantile of P at level 1 - confidence, lowered by 1e-12 relative so that binary
// rounding of the level never skips a scenario (NumPy method="inverted_cdf", with optional
// probability weights [n_scenarios], null = equal), var = -q, es = -mean(P | P <= q) (weighted).
// Not clamped at zero: a book that gains in every scenario has negative VaR. Validates first; an
// expected shortfall that overflows throws InvalidInput naming "pnl" and the row.
void value_at_risk(const double* pnl, std::size_t rows, std::size_t n_scenarios,
                   const double* probability, double confidence, double* var, double* es);

}  // namespace marginkernel
