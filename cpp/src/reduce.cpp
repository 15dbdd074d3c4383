#include "marginkernel/reduce.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "checks.hpp"

namespace marginkernel {

using namespace detail;

void worst_loss(const double* pnl, std::size_t rows, std::size_t ns, const double* weight,
                std::size_t weight_rows, double gain_factor, double* loss, std::int32_t* worst) {
    if (ns == 0) throw InvalidInput("pnl", -1, "no scenarios");
    require_non_negative("gain_factor", -1, gain_factor);
    if (weight) {
        if (weight_rows == 0) throw InvalidInput("weight", -1, "has no rows");
        for (std::size_t k = 0; k < weight_rows * ns; ++k)
            require_non_negative("weight", static_cast<long long>(k / ns), weight[k]);
    }
    for (std::size_t r = 0; r < rows; ++r) {
        const double* p = pnl + r * ns;
        const double* w = weight ? weight + (r % weight_rows) * ns : nullptr;
        double best = 0.0;
        std::int32_t arg = 0;
        for (std::size_t s = 0; s < ns; ++s) {
            if (!std::isfinite(p[s]))
                throw InvalidInput("pnl", static_cast<long long>(r),
                                   "scenario " + std::to_string(s) + " is not finite, got " + show(p[s]));
            const double g = p[s] > 0.0 ? gain_factor * p[s] : p[s];
            const double v = w ? w[s] * g : g;
            if (s == 0 || v < best) {
                best = v;
                arg = static_cast<std::int32_t>(s);
            }
        }
        loss[r] = std::max(0.0, -best);
        if (worst) worst[r] = arg;
    }
}

void value_at_risk(const double* pnl, std::size_t rows, std::size_t ns, const double* probability,
                   double confidence, double* var, double* es) {
    if (ns == 0) throw InvalidInput("pnl", -1, "no scenarios");
    if (!(confidence > 0.0 && confidence < 1.0))
        throw InvalidInput("confidence", -1, "must be in (0, 1), got " + show(confidence));
    // 1 - confidence is not exact in binary (1 - 0.99 = 0.010000000000000009): lowered by a relative
    // 1e-12 so that a 99% VaR over 1000 equally likely scenarios is the 10th worst, not the 11th
    // (the same rule as marginkernel.reference.LEVEL_RTOL).
    constexpr double level_rtol = 1e-12;
    const double level = (1.0 - confidence) * (1.0 - level_rtol);
    std::vector<double> sorted(ns);
    std::vector<std::size_t> order(ns);
    std::vector<double> cdf;
    if (probability) {
        double total = 0.0;
        for (std::size_t s = 0; s < ns; ++s) {
            require_non_negative("probability", static_cast<long long>(s), probability[s]);
            total += probability[s];
        }
        if (!(total > 0.0)) throw InvalidInput("probability", -1, "must not all be zero");
        cdf.resize(ns);
    }
    for (std::size_t r = 0; r < rows; ++r) {
        const double* p = pnl + r * ns;
        for (std::size_t s = 0; s < ns; ++s)
            if (!std::isfinite(p[s]))
                throw InvalidInput("pnl", static_cast<long long>(r), "scenario " + std::to_string(s) + " is not finite");
        double q;
        if (!probability) {
            // NumPy's inverted_cdf: index n*level - 1, rounded up unless it is whole.
            const double index = static_cast<double>(ns) * level - 1.0;
            const double below = std::floor(index);
            double k = index - below == 0.0 ? below : below + 1.0;
            k = std::clamp(k, 0.0, static_cast<double>(ns - 1));
            std::copy(p, p + ns, sorted.begin());
            auto nth = sorted.begin() + static_cast<std::ptrdiff_t>(k);
            std::nth_element(sorted.begin(), nth, sorted.end());
            q = *nth;
            double sum = 0.0;
            std::size_t count = 0;
            for (std::size_t s = 0; s < ns; ++s)
                if (p[s] <= q) sum += p[s], ++count;
            es[r] = -sum / static_cast<double>(count);
        } else {
            // NumPy's weighted inverted_cdf: first sorted index whose normalised cumulative
            // probability reaches the level.
            std::iota(order.begin(), order.end(), std::size_t{0});
            std::stable_sort(order.begin(), order.end(), [p](std::size_t a, std::size_t b) { return p[a] < p[b]; });
            double run = 0.0;
            for (std::size_t k = 0; k < ns; ++k) cdf[k] = run += probability[order[k]];
            for (auto& c : cdf) c /= run;
            std::size_t k = 0;
            while (k + 1 < ns && cdf[k] < level) ++k;
            q = p[order[k]];
            double sum = 0.0, mass = 0.0;
            for (std::size_t s = 0; s < ns; ++s)
                if (p[s] <= q) sum += probability[s] * p[s], mass += probability[s];
            es[r] = -sum / mass;
        }
        var[r] = -q;
    }
}

}  // namespace marginkernel
