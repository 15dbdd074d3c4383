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
    // Rows [begin, end) of revalue(); log_multiplier = ln(m) and inv_multiplier = 1/m, both
    // shaped like price_multiplier.
    void (*revalue_rows)(const InstrumentsView&, const ScenariosView&, const double* log_multiplier,
                         const double* inv_multiplier, std::size_t begin, std::size_t end,
                         double* risk, double* base_value);
    // Accounts [begin, end) of net().
    void (*net_accounts)(const RiskArraysView&, const PositionsView&, std::size_t begin,
                         std::size_t end, double* pnl);
    void (*axpy)(double* y, const double* x, double a, std::size_t n);
    // The normal CDF the Black-76 kernel uses, exposed so its accuracy can be measured.
    void (*normal_cdf)(const double* x, double* out, std::size_t n);
    // The pre-trade what-if of one order on one risk unit (account.cpp), in one pass: returns
    // min_s h(p[s] + q * r[s]) with h(v) = gain_factor * v if v > 0 else v (gain_factor >= 0), and
    // sets *worst to the first s attaining it. The caller passes scenario-weighted p and r (w >= 0
    // commutes with h). n >= 1; no allocation. p + q * r is one FMA on targets with FMA and a
    // multiply then add on the others, exactly as whatif_fill computes it, so a what-if equals the
    // state after the same fill bit for bit.
    double (*whatif_min)(const double* p, const double* r, double q, double gain_factor, std::size_t n,
                         std::int32_t* worst);
    // p[s] = p[s] + q * r[s] for s < n, rounded as whatif_min rounds it: the fill of account.cpp.
    void (*whatif_fill)(double* p, const double* r, double q, std::size_t n);
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
