// Stage 1: revalue. R[i, s] = P&L of one unit of instrument i in scenario s, in the settlement
// currency of its risk unit (architecture §3). Depends only on market + scenarios, so it is computed once
// per market update and shared by every account.
#pragma once

#include "marginkernel/types.hpp"

namespace marginkernel {

// Checks every numeric input and throws InvalidInput naming the field and row of the first problem.
void validate(const InstrumentsView& instruments, const ScenariosView& scenarios);

// Fills risk[n x n_scenarios] (row-major) and, when base_value is not null, base_value[n] = value of
// one unit now (option premium in settlement currency; 0 for futures, perpetuals and spot).
// Validates first. `threads` (>= 1, else InvalidInput) > 1 splits the instruments across up to that
// many threads, at most the hardware's. Finite inputs whose result would overflow (e.g. a multiplier
// of 1e308) throw InvalidInput naming the input of largest magnitude: R is always finite.
void revalue(const InstrumentsView& instruments, const ScenariosView& scenarios, double* risk,
             double* base_value = nullptr, int threads = 1);

// The normal CDF the option kernel uses (vectorised, see cpp/src/kernels_isa.cpp for its method and accuracy).
void normal_cdf(const double* x, double* out, std::size_t n) noexcept;

}  // namespace marginkernel
