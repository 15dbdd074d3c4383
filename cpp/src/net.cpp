#include "marginkernel/net.hpp"

#include <cmath>
#include <string>

#include "checks.hpp"
#include "kernels.hpp"
#include "parallel.hpp"

namespace marginkernel {

using namespace detail;

void validate(const RiskArraysView& r, const PositionsView& p) {
    if (r.n_scenarios == 0) throw InvalidInput("risk", -1, "no scenarios");
    require_pointer("risk", r.risk);
    require_pointer("risk_unit", r.risk_unit);
    require_pointer("account_start", p.account_start);
    for (std::size_t i = 0; i < r.n_instruments; ++i)
        if (r.risk_unit[i] < 0 || static_cast<std::size_t>(r.risk_unit[i]) >= r.n_units)
            throw InvalidInput("risk_unit", static_cast<long long>(i),
                               "must be in [0, " + std::to_string(r.n_units) + "), got " +
                                   std::to_string(r.risk_unit[i]));
    // A NaN or inf in R would flow silently into every account holding that instrument.
    for (std::size_t k = 0; k < r.n_instruments * r.n_scenarios; ++k)
        if (!std::isfinite(r.risk[k]))
            throw InvalidInput("risk", static_cast<long long>(k / r.n_scenarios),
                               "scenario " + std::to_string(k % r.n_scenarios) + " is not finite, got " +
                                   show(r.risk[k]));
    if (p.account_start[0] != 0)
        throw InvalidInput("account_start", 0, "must start at 0, got " + std::to_string(p.account_start[0]));
    for (std::size_t a = 0; a < p.n_accounts; ++a)
        if (p.account_start[a + 1] < p.account_start[a])
            throw InvalidInput("account_start", static_cast<long long>(a + 1), "must be non-decreasing");
    const auto nnz = p.account_start[p.n_accounts];
    if (nnz > 0) {
        require_pointer("instrument", p.instrument);
        require_pointer("quantity", p.quantity);
    }
    for (std::int64_t k = 0; k < nnz; ++k) {
        const auto i = p.instrument[k];
        if (i < 0 || static_cast<std::size_t>(i) >= r.n_instruments)
            throw InvalidInput("instrument", k,
                               "unknown instrument index " + std::to_string(i) + " (have " +
                                   std::to_string(r.n_instruments) + ")");
        require_finite("quantity", k, p.quantity[k]);
    }
}

void net(const RiskArraysView& r, const PositionsView& p, double* pnl, int threads) {
    validate(r, p);
    require_pointer("pnl", pnl);
    const Kernels& kernels = active_kernels();
    parallel_for(p.n_accounts, threads, [&](std::size_t begin, std::size_t end) {
        kernels.net_accounts(r, p, begin, end, pnl);
    });
}

void add_position(double* pnl, const double* risk_row, double quantity, std::size_t n) noexcept {
    active_kernels().axpy(pnl, risk_row, quantity, n);
}

}  // namespace marginkernel
