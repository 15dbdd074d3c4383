#include "marginkernel/revalue.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <vector>

#include "checks.hpp"
#include "kernels.hpp"
#include "parallel.hpp"

namespace marginkernel {

using namespace detail;

namespace {

constexpr double kDaysPerYear = 365.0;

bool is_option(std::int8_t kind) {
    return kind == static_cast<std::int8_t>(Kind::call) || kind == static_cast<std::int8_t>(Kind::put);
}

void validate_scenarios(const ScenariosView& sc) {
    const auto ns = sc.n_scenarios;
    for (std::size_t u = 0; u < sc.n_units; ++u) {
        const auto row = static_cast<long long>(u);
        require_positive("spot", row, sc.spot[u]);
        for (std::size_t s = 0; s < ns; ++s) {
            const double m = sc.price_multiplier[u * ns + s];
            if (!(std::isfinite(m) && m > 0.0))
                throw InvalidInput("price_multiplier", row,
                                   "scenario " + std::to_string(s) + " must be finite and > 0, got " + show(m));
        }
        if (sc.vol_shift) require_finite_row("vol_shift", row, sc.vol_shift + u * ns, ns);
    }
    if (sc.time_shift)
        for (std::size_t s = 0; s < ns; ++s) require_non_negative("time_shift", static_cast<long long>(s), sc.time_shift[s]);
    const int shock = static_cast<int>(sc.vol_shock);
    if (shock < 0 || shock > 3) throw InvalidInput("vol_shock", -1, "unknown kind " + std::to_string(shock));
    require_positive("tau_floor_days", -1, sc.tau_floor_days);
    require_finite("short_power", -1, sc.short_power);
    require_finite("long_power", -1, sc.long_power);
    require_non_negative("vol_up_floor", -1, sc.vol_up_floor);
}

// The vol shift of a scenario is scaled by tau^p (types.hpp VolShockKind); that scale must be finite.
void require_finite_vol_scale(const ScenariosView& sc, long long row, double expiry) {
    if (sc.vol_shock != VolShockKind::multiplicative && sc.vol_shock != VolShockKind::additive) return;
    const double dte = expiry * kDaysPerYear;
    const bool short_dated = dte <= 30.0;
    const double scale = std::pow(30.0 / std::max(dte, sc.tau_floor_days), short_dated ? sc.short_power : sc.long_power);
    if (!std::isfinite(scale))
        throw InvalidInput(short_dated ? "short_power" : "long_power", row,
                           "vol scale (30 days / max(DTE, tau_floor_days))^power overflows for this instrument (" +
                               show(short_dated ? sc.short_power : sc.long_power) + ")");
}

// Row i revalued to a non-finite value from finite inputs: an overflow. Names the input of largest
// magnitude (furthest from 1 in either direction) as the one to bring into range.
[[noreturn]] void overflow(const InstrumentsView& in, const ScenariosView& sc, std::size_t i) {
    const auto u = static_cast<std::size_t>(in.risk_unit[i]);
    const char* field = "multiplier";
    long long row = static_cast<long long>(i);
    double value = in.multiplier[i], size = -1.0;
    const auto consider = [&](const char* f, long long r, const double* p, std::size_t n) {
        for (std::size_t k = 0; p && k < n; ++k) {
            const double x = std::abs(p[k]);
            const double magnitude = x > 0.0 ? std::abs(std::log(x)) : 0.0;
            if (magnitude > size) field = f, row = r, value = p[k], size = magnitude;
        }
    };
    const auto ii = static_cast<long long>(i), uu = static_cast<long long>(u);
    consider("multiplier", ii, in.multiplier + i, 1);
    consider("forward", ii, in.forward + i, 1);
    if (is_option(in.kind[i])) {
        consider("strike", ii, in.strike + i, 1);
        consider("discount", ii, in.discount + i, 1);
        consider("vol", ii, in.vol + i, 1);
    }
    if (in.settlement[i] == static_cast<std::int8_t>(Settlement::inverse)) consider("spot", uu, sc.spot + u, 1);
    consider("price_multiplier", uu, sc.price_multiplier + u * sc.n_scenarios, sc.n_scenarios);
    if (is_option(in.kind[i]) && sc.vol_shift)
        consider("vol_shift", uu, sc.vol_shift + u * sc.n_scenarios, sc.n_scenarios);
    throw InvalidInput(field, row,
                       show(value) + " is out of range: instrument " + std::to_string(i) +
                           " revalues to a non-finite P&L (overflow) with it");
}

}  // namespace

void validate(const InstrumentsView& in, const ScenariosView& sc) {
    if (in.n == 0) throw InvalidInput("instruments", -1, "no instruments");
    if (sc.n_units == 0) throw InvalidInput("spot", -1, "no risk units");
    if (sc.n_scenarios == 0) throw InvalidInput("price_multiplier", -1, "no scenarios");
    for (const auto& [field, p] : {std::pair<const char*, const void*>{"kind", in.kind},
                                   {"settlement", in.settlement}, {"risk_unit", in.risk_unit},
                                   {"multiplier", in.multiplier}, {"forward", in.forward},
                                   {"spot", sc.spot}, {"price_multiplier", sc.price_multiplier}})
        require_pointer(field, p);
    validate_scenarios(sc);

    for (std::size_t i = 0; i < in.n; ++i) {
        const auto row = static_cast<long long>(i);
        const int kind = in.kind[i];
        if (kind < 0 || kind > 4)
            throw InvalidInput("kind", row, "must be 0..4 (future, perpetual, call, put, spot), got " +
                                                std::to_string(kind));
        if (in.settlement[i] != 0 && in.settlement[i] != 1)
            throw InvalidInput("settlement", row,
                               "must be 0 (linear) or 1 (inverse), got " + std::to_string(in.settlement[i]));
        require_index("risk_unit", row, in.risk_unit[i], sc.n_units);
        require_positive("multiplier", row, in.multiplier[i]);
        require_positive("forward", row, in.forward[i]);
        if (is_option(in.kind[i])) {
            for (const auto& [field, p] : {std::pair<const char*, const void*>{"strike", in.strike},
                                           {"expiry", in.expiry}, {"discount", in.discount},
                                           {"vol", in.vol}})
                require_pointer(field, p);
            require_positive("strike", row, in.strike[i]);
            require_finite("expiry", row, in.expiry[i]);
            require_positive("discount", row, in.discount[i]);
            require_non_negative("vol", row, in.vol[i]);
            require_finite_vol_scale(sc, row, in.expiry[i]);
        }
    }
}

void revalue(const InstrumentsView& in, const ScenariosView& sc, double* risk, double* base_value,
             int threads) {
    require_threads(threads);
    validate(in, sc);
    require_pointer("risk", risk);
    // Per-scenario terms shared by every instrument of a risk unit, computed once.
    std::vector<double> log_multiplier(sc.n_units * sc.n_scenarios), inv_multiplier(log_multiplier.size());
    for (std::size_t k = 0; k < log_multiplier.size(); ++k) {
        log_multiplier[k] = std::log(sc.price_multiplier[k]);
        inv_multiplier[k] = 1.0 / sc.price_multiplier[k];
    }
    const Kernels& kernels = active_kernels();
    std::atomic<std::size_t> first_bad{kNone};  // the first row that overflowed, over all chunks
    parallel_for(in.n, threads, [&](std::size_t begin, std::size_t end) {
        const std::size_t row = kernels.revalue_rows(in, sc, log_multiplier.data(), inv_multiplier.data(),
                                                     begin, end, risk, base_value);
        std::size_t seen = first_bad.load();
        while (row < seen && !first_bad.compare_exchange_weak(seen, row)) {
        }
    });
    const std::size_t bad = first_bad.load();
    if (bad != kNone) overflow(in, sc, bad);
}

void normal_cdf(const double* x, double* out, std::size_t n) noexcept {
    active_kernels().normal_cdf(x, out, n);
}

}  // namespace marginkernel
