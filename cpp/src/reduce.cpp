#include "marginkernel/reduce.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
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
void validate_tail_arguments(const double* pnl, std::size_t rows, std::size_t ns, const double* probability,
                             double confidence) {
    require_pnl(pnl, rows, ns);
    if (!(confidence > 0.0 && confidence < 1.0))
        throw InvalidInput("confidence", -1, "must be in (0, 1), got " + show(confidence));
    if (!probability) return;
    double total = 0.0;
    for (std::size_t s = 0; s < ns; ++s) {
        require_non_negative("probability", static_cast<long long>(s), probability[s]);
        total += probability[s];
    }
    if (!std::isfinite(total)) throw InvalidInput("probability", -1, "sum overflows (is not finite)");
    if (!(total > 0.0)) throw InvalidInput("probability", -1, "must not all be zero");
}

[[noreturn]] void es_overflow(std::size_t r, bool weighted) {
    throw InvalidInput("pnl", static_cast<long long>(r),
                       "expected shortfall overflows (is not finite): the P&L" +
                           std::string(weighted ? " times its probability" : "") + " is out of range");
}

// NumPy's weighted inverted_cdf for one row: the first sorted index whose normalised cumulative
// probability reaches the level; the ES sums run in scenario order.
void weighted_tail(const double* p, std::size_t ns, const double* probability, double level,
                   std::vector<std::size_t>& order, std::vector<double>& cdf, double* var, double* es) {
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::stable_sort(order.begin(), order.end(), [p](std::size_t a, std::size_t b) { return p[a] < p[b]; });
    double run = 0.0;
    for (std::size_t k = 0; k < ns; ++k) cdf[k] = run += probability[order[k]];
    for (auto& c : cdf) c /= run;
    std::size_t k = 0;
    while (k + 1 < ns && cdf[k] < level) ++k;
    const double q = p[order[k]];
    double sum = 0.0, mass = 0.0;
    for (std::size_t s = 0; s < ns; ++s)
        if (p[s] <= q) sum += probability[s] * p[s], mass += probability[s];
    *var = -q;
    *es = -sum / mass;
}

}  // namespace

void validate_value_at_risk(const double* pnl, std::size_t rows, std::size_t ns, const double* probability,
                            double confidence) {
    validate_tail_arguments(pnl, rows, ns, probability, confidence);
    for (std::size_t r = 0; r < rows; ++r) require_finite_row("pnl", static_cast<long long>(r), pnl + r * ns, ns);
}

void value_at_risk(const double* pnl, std::size_t rows, std::size_t ns, const double* probability,
                   double confidence, double* var, double* es) {
    validate_tail_arguments(pnl, rows, ns, probability, confidence);
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
    std::vector<std::size_t> order(ns);
    std::vector<double> cdf(ns);
    for (std::size_t r = 0; r < rows; ++r) {
        weighted_tail(pnl + r * ns, ns, probability, level, order, cdf, var + r, es + r);
        if (!std::isfinite(es[r])) es_overflow(r, true);
    }
}

}  // namespace marginkernel
