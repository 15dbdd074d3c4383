#include "marginkernel/revalue.hpp"

#include <cmath>
#include <thread>
#include <vector>

#include "checks.hpp"
#include "kernels.hpp"
#include "parallel.hpp"

namespace marginkernel {

using namespace detail;

void validate(const InstrumentsView& in, const ScenariosView& sc) {
    if (in.n == 0) throw InvalidInput("instruments", -1, "no instruments");
    if (sc.n_units == 0) throw InvalidInput("spot", -1, "no risk units");
    if (sc.n_scenarios == 0) throw InvalidInput("price_multiplier", -1, "no scenarios");
    for (const auto& [field, p] : {std::pair<const char*, const void*>{"kind", in.kind},
                                   {"settlement", in.settlement}, {"risk_unit", in.risk_unit},
                                   {"multiplier", in.multiplier}, {"forward", in.forward},
                                   {"spot", sc.spot}, {"price_multiplier", sc.price_multiplier}})
        require_pointer(field, p);

    const auto ns = static_cast<long long>(sc.n_scenarios);
    for (std::size_t u = 0; u < sc.n_units; ++u) {
        const auto row = static_cast<long long>(u);
        require_positive("spot", row, sc.spot[u]);
        for (long long s = 0; s < ns; ++s) {
            const double m = sc.price_multiplier[row * ns + s];
            if (!(std::isfinite(m) && m > 0.0))
                throw InvalidInput("price_multiplier", row,
                                   "scenario " + std::to_string(s) + " must be finite and > 0, got " + show(m));
            if (sc.vol_shift && !std::isfinite(sc.vol_shift[row * ns + s]))
                throw InvalidInput("vol_shift", row,
                                   "scenario " + std::to_string(s) + " must be finite, got " +
                                       show(sc.vol_shift[row * ns + s]));
        }
    }
    if (sc.time_shift)
        for (long long s = 0; s < ns; ++s) require_non_negative("time_shift", s, sc.time_shift[s]);
    const int shock = static_cast<int>(sc.vol_shock);
    if (shock < 0 || shock > 3) throw InvalidInput("vol_shock", -1, "unknown kind " + std::to_string(shock));
    require_positive("tau_floor_days", -1, sc.tau_floor_days);
    require_finite("short_power", -1, sc.short_power);
    require_finite("long_power", -1, sc.long_power);
    require_non_negative("vol_up_floor", -1, sc.vol_up_floor);

    for (std::size_t i = 0; i < in.n; ++i) {
        const auto row = static_cast<long long>(i);
        const int kind = in.kind[i];
        if (kind < 0 || kind > 4)
            throw InvalidInput("kind", row, "must be 0..4 (future, perpetual, call, put, spot), got " +
                                                std::to_string(kind));
        if (in.settlement[i] != 0 && in.settlement[i] != 1)
            throw InvalidInput("settlement", row,
                               "must be 0 (linear) or 1 (inverse), got " + std::to_string(in.settlement[i]));
        if (in.risk_unit[i] < 0 || static_cast<std::size_t>(in.risk_unit[i]) >= sc.n_units)
            throw InvalidInput("risk_unit", row,
                               "must be in [0, " + std::to_string(sc.n_units) + "), got " +
                                   std::to_string(in.risk_unit[i]));
        require_positive("multiplier", row, in.multiplier[i]);
        require_positive("forward", row, in.forward[i]);
        if (kind == static_cast<int>(Kind::call) || kind == static_cast<int>(Kind::put)) {
            for (const auto& [field, p] : {std::pair<const char*, const void*>{"strike", in.strike},
                                           {"expiry", in.expiry}, {"discount", in.discount},
                                           {"vol", in.vol}})
                require_pointer(field, p);
            require_positive("strike", row, in.strike[i]);
            require_finite("expiry", row, in.expiry[i]);
            require_positive("discount", row, in.discount[i]);
            require_non_negative("vol", row, in.vol[i]);
        }
    }
}

void revalue(const InstrumentsView& in, const ScenariosView& sc, double* risk, double* base_value,
             int threads) {
    validate(in, sc);
    require_pointer("risk", risk);
    // Per-scenario terms shared by every instrument of a risk unit, computed once.
    std::vector<double> log_multiplier(sc.n_units * sc.n_scenarios), inv_multiplier(log_multiplier.size());
    for (std::size_t k = 0; k < log_multiplier.size(); ++k) {
        log_multiplier[k] = std::log(sc.price_multiplier[k]);
        inv_multiplier[k] = 1.0 / sc.price_multiplier[k];
    }
    const Kernels& kernels = active_kernels();
    parallel_for(in.n, threads, [&](std::size_t begin, std::size_t end) {
        kernels.revalue_rows(in, sc, log_multiplier.data(), inv_multiplier.data(), begin, end, risk,
                             base_value);
    });
}

void normal_cdf(const double* x, double* out, std::size_t n) noexcept {
    active_kernels().normal_cdf(x, out, n);
}

}  // namespace marginkernel
