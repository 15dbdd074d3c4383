// Internal: the order statistic behind every VaR / ES of the library (kernels.value_at_risk through
// the dispatched tail_rows, and the model book's tail measure), one definition of how it is found.
//
// Included by the per-target kernel sources too, so nothing here may be a function with external
// linkage compiled from this header: the linker would keep one copy, perhaps the AVX-512 one, for
// every caller. The helpers live in an unnamed namespace and use no std:: algorithm; the partition
// fallback is compiled once, in reduce.cpp.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>

namespace marginkernel::detail {

// The k-th smallest (from 0) of p[0, n) by std::nth_element on a copy in `work` (n values).
double kth_by_partition(const double* p, std::size_t n, std::size_t k, double* work);

// NumPy's weighted inverted_cdf quantile of x[0, n) (np.quantile(x, level, method="inverted_cdf",
// weights=probability)): in the order of (x, index), the first value whose cumulative probability
// divided by the total -- both summed in that order -- reaches `level`; the last if none does.
// `total` is the probabilities' sum in any order (> 0); `order` is scratch of n indices, `work` of
// 2n values. Defined in reduce.cpp (see there for how it avoids sorting every value).
double weighted_quantile(const double* x, std::size_t n, const double* probability, double total, double level,
                         std::int32_t* order, double* work);

// The weighted ES of x[0, n) at the quantile q: -(sum of probability * x) / (sum of probability) over
// the values at or below q, both summed in scenario order (as marginkernel.reference sums them).
// `order` is scratch of n indices. Defined in reduce.cpp.
double weighted_shortfall(const double* x, std::size_t n, const double* probability, double q, std::int32_t* order);

namespace {

// The quantile level of VaR / ES at `confidence`: 1 - confidence, lowered by a relative 1e-12.
// 1 - confidence is not exact in binary (1 - 0.99 = 0.010000000000000009), so without it a 99% VaR
// over 1000 equally likely scenarios would be the 11th worst instead of the 10th (the same rule as
// marginkernel.reference.LEVEL_RTOL).
inline double tail_level(double confidence) {
    constexpr double level_rtol = 1e-12;
    return (1.0 - confidence) * (1.0 - level_rtol);
}

// NumPy's inverted_cdf over n equally likely values: the order statistic n * level - 1 (from 0),
// rounded up unless it is whole, within [0, n - 1].
inline std::size_t equal_weight_index(std::size_t n, double level) {
    const double index = static_cast<double>(n) * level - 1.0;
    const double below = std::floor(index);
    const double k = index - below == 0.0 ? below : below + 1.0;
    const double last = static_cast<double>(n - 1);
    return static_cast<std::size_t>(k < 0.0 ? 0.0 : k > last ? last : k);
}

// A tail quantile -- the k-th smallest of n values, k + 1 at most kTailMaxK -- in two passes that
// sort nothing but a few candidates:
//  1. deal the values to C >= k + 1 chunks in turn (value s to chunk s mod C) and take each chunk's
//     minimum. The largest of these minima, T, has at least C values at or below it (one per
//     chunk), so the k-th smallest of the row is at most T.
//  2. collect, in scenario order, every value <= T. The row's k-th smallest is the k-th smallest of
//     these candidates: a few times k + 1 of them in P&L of no particular order, exactly C in a row
//     that rises or falls scenario by scenario (any number, in the worst case, when many values tie:
//     more than kSortCandidates go to kth_by_partition).
// The candidates are also the row's tail in scenario order, so its ES sum is taken over them. The
// SIMD kernels (kernels_reduce-inl.hpp: tail_rows for value_at_risk, tail_indices for the weighted
// quantile and the model book) take C = the lanes of whole packets: the same element of p on every
// target.
constexpr std::size_t kTailMaxK = 64;
constexpr std::size_t kSortCandidates = 96;

// The packets of `lanes` chunk minima pass 1 keeps: the fewest whose lanes number k + 1 or more.
inline std::size_t tail_packets(std::size_t k, std::size_t lanes) { return (k + lanes) / lanes; }

// Whether the two passes apply: a tail quantile, and every chunk holding at least two values.
inline bool use_tail_chunks(std::size_t n, std::size_t k, std::size_t lanes) {
    return k < kTailMaxK && n >= 2 * tail_packets(k, lanes) * lanes;
}

// The k-th smallest of the c candidates (k < c), with `work` for c values: the k + 1 smallest kept
// sorted, a candidate entering only when it is below the largest of them.
inline double kth_of_candidates(const double* candidate, std::size_t c, std::size_t k, double* work) {
    if (c > kSortCandidates) return kth_by_partition(candidate, c, k, work);
    const auto insert = [work](double x, std::size_t last) {
        std::size_t j = last;
        for (; j > 0 && work[j - 1] > x; --j) work[j] = work[j - 1];
        work[j] = x;
    };
    for (std::size_t i = 0; i <= k; ++i) insert(candidate[i], i);
    for (std::size_t i = k + 1; i < c; ++i)
        if (candidate[i] < work[k]) insert(candidate[i], k);
    return work[k];
}

}  // namespace
}  // namespace marginkernel::detail
