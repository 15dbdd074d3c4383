#include "marginkernel/net.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <string>

#include "checks.hpp"
#include "kernels.hpp"
#include "parallel.hpp"

namespace marginkernel {

using namespace detail;

namespace {

// Account a's P&L overflowed from finite inputs: names its position of largest |q| * max_s |R[i, s]|.
[[noreturn]] void overflow(const RiskArraysView& r, const PositionsView& p, std::size_t a) {
    std::int64_t worst = p.account_start[a];
    double largest = -1.0;
    for (auto k = p.account_start[a]; k < p.account_start[a + 1]; ++k) {
        const double* row = r.risk + static_cast<std::size_t>(p.instrument[k]) * r.n_scenarios;
        double m = 0.0;
        for (std::size_t s = 0; s < r.n_scenarios; ++s) m = std::max(m, std::abs(row[s]));
        const double size = std::abs(p.quantity[k]) * m;  // may be inf: then it is the one
        if (size > largest) largest = size, worst = k;
    }
    throw InvalidInput("quantity", worst,
                       show(p.quantity[worst]) + " is out of range: account " + std::to_string(a) +
                           "'s scenario P&L overflows (is not finite) with it");
}

}  // namespace

void validate(const RiskArraysView& r, const PositionsView& p) {
    if (r.n_scenarios == 0) throw InvalidInput("risk", -1, "no scenarios");
    require_pointer("risk", r.risk);
    require_pointer("risk_unit", r.risk_unit);
    require_pointer("account_start", p.account_start);
    for (std::size_t i = 0; i < r.n_instruments; ++i) {
        require_index("risk_unit", static_cast<long long>(i), r.risk_unit[i], r.n_units);
        // A NaN or inf in R would flow silently into every account holding that instrument.
        require_finite_row("risk", static_cast<long long>(i), r.risk + i * r.n_scenarios, r.n_scenarios);
    }
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
    require_threads(threads);
    validate(r, p);
    if (p.n_accounts == 0) return;  // an empty book: nothing to write, nothing to allocate
    require_pointer("pnl", pnl);
    const Kernels& kernels = active_kernels();
    std::atomic<std::size_t> first_bad{kNone};  // the first account whose P&L overflowed
    // One contiguous range of accounts per thread, cut so that each holds about the same work: its
    // positions plus one per account (an account's output row costs about a position's risk row).
    // Accounts of very different sizes (a few big books) then still share the cores evenly; the cut
    // never changes a result, every account being netted by the same code on any thread.
    const std::size_t chunks = thread_count(p.n_accounts, threads);
    const auto work = [&](std::size_t a) { return static_cast<std::size_t>(p.account_start[a]) + a; };
    const auto cut = [&](std::size_t c) {
        if (c == chunks) return p.n_accounts;
        const std::size_t target = work(p.n_accounts) / chunks * c + work(p.n_accounts) % chunks * c / chunks;
        std::size_t lo = 0, hi = p.n_accounts;  // the first account whose work before it reaches target
        while (lo < hi) {
            const std::size_t mid = lo + (hi - lo) / 2;
            if (work(mid) < target)
                lo = mid + 1;
            else
                hi = mid;
        }
        return lo;
    };
    parallel_for(chunks, threads, [&](std::size_t c0, std::size_t c1) {
        for (std::size_t c = c0; c < c1; ++c) {
            const std::size_t a = kernels.net_accounts(r, p, cut(c), cut(c + 1), pnl);
            std::size_t seen = first_bad.load();
            while (a < seen && !first_bad.compare_exchange_weak(seen, a)) {
            }
        }
    });
    if (first_bad.load() != kNone) overflow(r, p, first_bad.load());
}

}  // namespace marginkernel
