#include "marginkernel/reduce.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "checks.hpp"
#include "kernels.hpp"
#include "select.hpp"

namespace marginkernel {

using namespace detail;

namespace {

void require_pnl(const double* pnl, std::size_t rows, std::size_t ns) {
    if (ns == 0) throw InvalidInput("pnl", -1, "no scenarios");
    if (rows > 0) require_pointer("pnl", pnl);
}

void validate_weight(const double* weight, std::size_t weight_rows, std::size_t ns, double gain_factor) {
    require_non_negative("gain_factor", -1, gain_factor);
    if (!weight) return;
    if (weight_rows == 0) throw InvalidInput("weight", -1, "has no rows");
    for (std::size_t k = 0; k < weight_rows * ns; ++k)
        require_non_negative("weight", static_cast<long long>(k / ns), weight[k]);
}

// Row r of worst_loss had a non-finite weighted value: a non-finite P&L, or an overflow.
[[noreturn]] void worst_loss_error(const double* pnl, std::size_t r, std::size_t ns,
                                   std::size_t weight_rows, double gain_factor) {
    const double* p = pnl + r * ns;
    require_finite_row("pnl", static_cast<long long>(r), p, ns);
    for (std::size_t s = 0; s < ns; ++s)
        if (!std::isfinite(gain_factor * p[s]) && p[s] > 0.0)
            throw InvalidInput("gain_factor", -1,
                               show(gain_factor) + " is out of range: it makes pnl[" + std::to_string(r) +
                                   "] scenario " + std::to_string(s) + " overflow");
    const std::size_t w = weight_rows ? r % weight_rows : 0;
    throw InvalidInput("weight", static_cast<long long>(w),
                       "is out of range: it makes the weighted pnl[" + std::to_string(r) + "] overflow");
}

}  // namespace

double detail::kth_by_partition(const double* p, std::size_t n, std::size_t k, double* scratch) {
    std::copy(p, p + n, scratch);
    std::nth_element(scratch, scratch + k, scratch + n);
    return scratch[k];
}

// The sorted-order total NumPy divides by is not known without sorting every value, but any two
// orders' sums of n non-negative numbers differ by at most (n - 1) eps of either (Higham, Accuracy
// and Stability of Numerical Algorithms, 4.2), so it lies in [lo, hi] = total (1 -/+ delta). A
// larger total can only move the crossing later (each cumulative / total falls), so when the
// crossings at lo and at hi are the same position it is NumPy's. Only the lowest values are ordered:
// those at or below the m-th smallest (Kernels::tail_indices, O(n) over SIMD packets), m doubled
// until hi's crossing is among them: O(n + m log m). When the crossings differ (a cumulative within
// delta of the level: equal probabilities at a level of k / n over more than about 1,100 scenarios)
// every value is sorted and the total summed in sorted order.
double detail::weighted_quantile(const double* x, std::size_t n, const double* probability, double total,
                                 double level, std::int32_t* order, double* work) {
    const auto before = [x](std::int32_t a, std::int32_t b) {
        return x[a] < x[b] || (x[a] == x[b] && a < b);
    };
    const double nd = static_cast<double>(n), eps = std::numeric_limits<double>::epsilon();
    const double delta = nd * eps * (1.0 + nd * eps) + 4.0 * eps;  // + the rounding of lo and hi
    const double lo = total * (1.0 - delta), hi = total * (1.0 + delta);
    const std::size_t first_m = std::min(n, static_cast<std::size_t>(2.0 * level * nd) + 16);
    for (std::size_t m = first_m;; m = std::min(n, 2 * m)) {
        // the values at or below the m-th smallest: the first c of the sorted order
        std::size_t c = n;
        if (m < n)
            c = active_kernels().tail_indices(x, n, m - 1, order, work);
        else
            for (std::size_t s = 0; s < n; ++s) order[s] = static_cast<std::int32_t>(s);
        std::sort(order, order + c, before);
        double run = 0.0;
        std::size_t at_lo = kNone, k = 0;
        for (; k < c; ++k) {
            run += probability[order[k]];
            if (at_lo == kNone && run / lo >= level) at_lo = k;
            if (run / hi >= level) break;
        }
        if (k < c) {  // hi crosses at k: decided if lo does too, else the sorted-order total decides
            if (at_lo == k) return x[order[k]];
            break;
        }
        if (c == n) {  // hi never crosses: the last, as NumPy, unless lo crossed earlier
            if (at_lo == kNone) return x[order[n - 1]];
            break;
        }
    }
    for (std::size_t s = 0; s < n; ++s) order[s] = static_cast<std::int32_t>(s);
    std::sort(order, order + n, before);
    double sorted_total = 0.0;
    for (std::size_t k = 0; k < n; ++k) sorted_total += probability[order[k]];
    double run = 0.0;
    for (std::size_t k = 0; k + 1 < n; ++k)
        if ((run += probability[order[k]]) / sorted_total >= level) return x[order[k]];
    return x[order[n - 1]];
}

double detail::weighted_shortfall(const double* x, std::size_t n, const double* probability, double q,
                                  std::int32_t* order) {
    // The terms' indices in one pass over SIMD packets, then the sums over them only: the same
    // terms in the same order as a pass over every scenario.
    const std::size_t tail = active_kernels().indices_at_most(x, n, q, order);
    double sum = 0.0, mass = 0.0;
    for (std::size_t i = 0; i < tail; ++i) {
        const auto s = static_cast<std::size_t>(order[i]);
        sum += probability[s] * x[s];
        mass += probability[s];
    }
    return -sum / mass;
}

void validate_worst_loss(const double* pnl, std::size_t rows, std::size_t ns, const double* weight,
                         std::size_t weight_rows, double gain_factor) {
    require_pnl(pnl, rows, ns);
    validate_weight(weight, weight_rows, ns, gain_factor);
    for (std::size_t r = 0; r < rows; ++r) require_finite_row("pnl", static_cast<long long>(r), pnl + r * ns, ns);
}

void worst_loss(const double* pnl, std::size_t rows, std::size_t ns, const double* weight,
                std::size_t weight_rows, double gain_factor, double* loss, std::int32_t* worst) {
    require_pnl(pnl, rows, ns);
    validate_weight(weight, weight_rows, ns, gain_factor);
    if (rows == 0) return;
    require_pointer("loss", loss);
    // The P&L itself is checked in the same pass as the minimum (the kernel reports the first row
    // with a non-finite weighted value), so P is read once.
    const std::size_t bad =
        active_kernels().worst_loss_rows(pnl, 0, rows, ns, weight, weight_rows, gain_factor, loss, worst);
    if (bad != kNone) worst_loss_error(pnl, bad, ns, weight_rows, gain_factor);
}

namespace {

// The arguments of value_at_risk() other than the P&L rows.
// Returns the probabilities' total, summed in scenario order (0 without probabilities).
double validate_tail_arguments(const double* pnl, std::size_t rows, std::size_t ns, const double* probability,
                               double confidence) {
    require_pnl(pnl, rows, ns);
    if (!(confidence > 0.0 && confidence < 1.0))
        throw InvalidInput("confidence", -1, "must be in (0, 1), got " + show(confidence));
    if (!probability) return 0.0;
    if (ns > static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max()))
        throw InvalidInput("probability", -1, "more than 2**31 - 1 scenarios");
    double total = 0.0;
    for (std::size_t s = 0; s < ns; ++s) {
        require_non_negative("probability", static_cast<long long>(s), probability[s]);
        total += probability[s];
    }
    if (!std::isfinite(total)) throw InvalidInput("probability", -1, "sum overflows (is not finite)");
    if (!(total > 0.0)) throw InvalidInput("probability", -1, "must not all be zero");
    return total;
}

[[noreturn]] void es_overflow(std::size_t r, bool weighted) {
    throw InvalidInput("pnl", static_cast<long long>(r),
                       "expected shortfall overflows (is not finite): the P&L" +
                           std::string(weighted ? " times its probability" : "") + " is out of range");
}

// VaR and ES of one row with scenario probabilities (weighted_quantile); the ES sums run in scenario
// order.
void weighted_tail(const double* p, std::size_t ns, const double* probability, double total, double level,
                   std::int32_t* order, double* work, double* var, double* es) {
    const double q = weighted_quantile(p, ns, probability, total, level, order, work);
    *var = -q;
    *es = weighted_shortfall(p, ns, probability, q, order);
}

}  // namespace

void validate_value_at_risk(const double* pnl, std::size_t rows, std::size_t ns, const double* probability,
                            double confidence) {
    validate_tail_arguments(pnl, rows, ns, probability, confidence);
    for (std::size_t r = 0; r < rows; ++r) require_finite_row("pnl", static_cast<long long>(r), pnl + r * ns, ns);
}

void value_at_risk(const double* pnl, std::size_t rows, std::size_t ns, const double* probability,
                   double confidence, double* var, double* es) {
    const double total = validate_tail_arguments(pnl, rows, ns, probability, confidence);
    if (rows == 0) return;
    const double level = tail_level(confidence);
    if (!probability) {
        // Each row is checked finite by the kernel just before it is measured, so P is read once.
        std::vector<double> scratch(2 * ns);
        const std::size_t bad = active_kernels().tail_rows(pnl, 0, rows, ns, equal_weight_index(ns, level),
                                                           scratch.data(), var, es);
        if (bad == kNone) return;
        require_finite_row("pnl", static_cast<long long>(bad), pnl + bad * ns, ns);
        es_overflow(bad, false);
    }
    for (std::size_t r = 0; r < rows; ++r) require_finite_row("pnl", static_cast<long long>(r), pnl + r * ns, ns);
    std::vector<std::int32_t> order(ns);
    std::vector<double> work(2 * ns);
    for (std::size_t r = 0; r < rows; ++r) {
        weighted_tail(pnl + r * ns, ns, probability, total, level, order.data(), work.data(), var + r,
                      es + r);
        if (!std::isfinite(es[r])) es_overflow(r, true);
    }
}

}  // namespace marginkernel
