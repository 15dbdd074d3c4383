// Internal: the hot loops, compiled once per SIMD target (kernels_isa.cpp with MK_TARGET set).
// Only plain pointers cross this boundary, never an Eigen type: each target's translation unit has
// its own Eigen namespace (see kernels_isa.cpp), so their layouts and ABIs never meet.
#pragma once

#include <cstddef>
#include <cstdint>

#include "marginkernel/types.hpp"

namespace marginkernel::detail {

// Returned by a kernel that found nothing to report.
constexpr std::size_t kNone = static_cast<std::size_t>(-1);

struct Kernels {
    const char* name;
    // Rows [begin, end) of revalue(); log_multiplier = ln(m) and inv_multiplier = 1/m, both
    // shaped like price_multiplier. Returns the first row whose risk or base value is not finite
    // (overflow from extreme finite inputs; the caller reports it), or kNone.
    std::size_t (*revalue_rows)(const InstrumentsView&, const ScenariosView&, const double* log_multiplier,
                         const double* inv_multiplier, std::size_t begin, std::size_t end,
                         double* risk, double* base_value);
    // Accounts [begin, end) of net(). Returns the first account with a non-finite P&L (an overflow
    // from huge finite quantities or risk values; the caller reports it), or kNone.
    std::size_t (*net_accounts)(const RiskArraysView&, const PositionsView&, std::size_t begin,
                         std::size_t end, double* pnl);
    // Rows [begin, end) of worst_loss() (reduce.hpp): loss[r] = max(0, -min_s w[s] * h(P[r, s])) and
    // worst[r] = the first s attaining the minimum (worst may be null); w is weight row r % weight_rows,
    // or all ones when weight is null. Returns the first row with a non-finite w * h(P) (a non-finite
    // P, or an overflow), or kNone; the caller reports it. The minimum is exact, so every target
    // returns the same bits.
    std::size_t (*worst_loss_rows)(const double* pnl, std::size_t begin, std::size_t end, std::size_t n_scenarios,
                                   const double* weight, std::size_t weight_rows, double gain_factor,
                                   double* loss, std::int32_t* worst);
    // Rows [begin, end) of value_at_risk() with equally likely scenarios (reduce.hpp): var[r] = -q,
    // q the k-th smallest (from 0) of row r, es[r] = -(the mean of the row's values <= q, summed in
    // scenario order); `scratch` holds 2 n_scenarios values. Returns the first row that is not finite
    // or whose ES overflows (the caller says which), or kNone. Every target returns the same bits.
    std::size_t (*tail_rows)(const double* pnl, std::size_t begin, std::size_t end, std::size_t n_scenarios,
                             std::size_t k, double* scratch, double* var, double* es);
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
    // Bandwidth probes of the benchmarks (bench/benchutil.py): a streaming read (the sum of x, with
    // independent accumulators so that loads, not additions, are the limit) and a streaming write.
    double (*stream_read)(const double* x, std::size_t n);
    void (*stream_write)(double* x, std::size_t n, double value);
    // p[s] = p[s] + q * r[s] for s < n, rounded as whatif_min rounds it: the fill of account.cpp.
    void (*whatif_fill)(double* p, const double* r, double q, std::size_t n);
    // The indices, in scenario order, of the values of p[0, ns) at or below its k-th smallest
    // (k < ns), into `order`; returns their count (k + 1 or more). `work`: scratch of 2 ns values.
    // The same set on every target (select.hpp's passes over packets, pass 2 collecting indices):
    // the part of weighted_quantile (reduce.cpp) and of the model book's VaR that reads the whole row.
    std::size_t (*tail_indices)(const double* p, std::size_t ns, std::size_t k, std::int32_t* order,
                                double* work);
    // The indices of the values of p[0, ns) at or below t, in scenario order, into `out`; returns
    // their count (the terms of a weighted ES, summed in scenario order by the caller).
    std::size_t (*indices_at_most)(const double* p, std::size_t ns, double t, std::int32_t* out);
    // Arithmetic probe of the benchmarks: `passes` sweeps of acc = acc + q * x over x[0..n) (whole
    // register blocks of 8 packets; the caller keeps x in L1), each product rounded before it is added
    // as netting adds it, in 8 independent chains. Returns the sum of the chains.
    double (*mul_add)(const double* x, std::size_t n, double q, int passes);
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
