// Internal: the hot loops, compiled once per SIMD target (kernels_isa.cpp with MK_TARGET set).
// Only plain pointers cross this boundary, never an Eigen type: each target's translation unit has
// its own Eigen namespace (see kernels_isa.cpp), so their layouts and ABIs never meet.
#pragma once

#include <cstddef>
#include <cstdint>

#include "marginkernel/net.hpp"
#include "marginkernel/types.hpp"

namespace marginkernel::detail {

struct Kernels {
    const char* name;
    // Rows [begin, end) of revalue(); log_multiplier = ln(price_multiplier), same shape.
    void (*revalue_rows)(const InstrumentsView&, const ScenariosView&, const double* log_multiplier,
                         std::size_t begin, std::size_t end, double* risk, double* base_value);
    // Accounts [begin, end) of net().
    void (*net_accounts)(const RiskArraysView&, const PositionsView&, std::size_t begin,
                         std::size_t end, double* pnl);
    void (*axpy)(double* y, const double* x, double a, std::size_t n);
    // The normal CDF the Black-76 kernel uses, exposed so its accuracy can be measured.
    void (*normal_cdf)(const double* x, double* out, std::size_t n);
};

extern const Kernels kernels_baseline;
#if defined(MK_HAVE_AVX2)
extern const Kernels kernels_avx2;
#endif
#if defined(MK_HAVE_AVX512)
extern const Kernels kernels_avx512;
#endif

const Kernels& active_kernels() noexcept;

}  // namespace marginkernel::detail
