// Shared by the C++ tests: a tiny CHECK framework, random books and a from-scratch recomputation of
// an account's margin through the public pipeline (net + worst_loss), the oracle of the account
// engine's incremental state.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "marginkernel/account.hpp"
#include "marginkernel/net.hpp"
#include "marginkernel/reduce.hpp"
#include "marginkernel/simd.hpp"

namespace mktest {

inline int failures = 0;

#define CHECK(cond)                                                                      \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
            ++mktest::failures;                                                          \
        }                                                                                \
    } while (0)

#define CHECK_CLOSE(a, b, tol)                                                                    \
    do {                                                                                          \
        const double mk_a_ = (a), mk_b_ = (b), mk_t_ = (tol);                                     \
        if (!(std::abs(mk_a_ - mk_b_) <= mk_t_)) {                                                \
            std::fprintf(stderr, "%s:%d: CHECK_CLOSE failed: %s = %.17g vs %s = %.17g (tol %.3g)\n", \
                         __FILE__, __LINE__, #a, mk_a_, #b, mk_b_, mk_t_);                        \
            ++mktest::failures;                                                                   \
        }                                                                                         \
    } while (0)

// The SIMD targets a test loops over: every available one, or only the best one when
// MK_TEST_ONE_TARGET is set. The ThreadSanitizer run sets it: the locks and shared state it checks
// do not depend on the target, and the plain and ASan builds run every target.
inline std::vector<std::string> test_targets() {
    auto targets = marginkernel::available_simd_targets();
    if (std::getenv("MK_TEST_ONE_TARGET") && !targets.empty()) targets.resize(1);
    return targets;
}

// Runs `body`, expecting it to throw E.
template <class E, class F>
bool throws(F&& body) {
    try {
        body();
    } catch (const E&) {
        return true;
    } catch (...) {
        return false;
    }
    return false;
}

// A random market: risk arrays, units, weights, fx.
struct Market {
    std::size_t ni = 0, ns = 0, nu = 0;
    std::vector<double> risk, weight, fx;
    std::vector<std::int32_t> unit;

    marginkernel::RiskArraysView view() const { return {ni, ns, nu, risk.data(), unit.data()}; }
};

inline Market random_market(std::mt19937_64& rng, std::size_t ni, std::size_t ns, std::size_t nu) {
    Market m;
    m.ni = ni;
    m.ns = ns;
    m.nu = nu;
    std::normal_distribution<double> pnl(0.0, 100.0);
    std::uniform_real_distribution<double> w(0.2, 1.0), fx(0.5, 3.0);
    m.risk.resize(ni * ns);
    for (auto& v : m.risk) v = pnl(rng);
    m.unit.resize(ni);
    for (std::size_t i = 0; i < ni; ++i) m.unit[i] = static_cast<std::int32_t>(i % nu);
    m.weight.resize(nu * ns);
    for (auto& v : m.weight) v = w(rng);
    m.fx.resize(nu);
    for (auto& v : m.fx) v = fx(rng);
    return m;
}

struct Scratch {
    double im = 0.0;
    double scale = 0.0;  // sum_u fx[u] * max_s w[u, s] * sum_i |q_i| |R[i, s]|: rounding scale of im
    std::vector<double> pnl, loss;
    std::vector<std::int32_t> worst;
};

// The account's margin recomputed from its positions with net() and worst_loss() on `risk`.
inline Scratch from_scratch(const Market& m, const std::vector<marginkernel::Position>& positions,
                            double gain_factor) {
    std::vector<std::int64_t> start{0, static_cast<std::int64_t>(positions.size())};
    std::vector<std::int32_t> ins;
    std::vector<double> qty;
    for (const auto& p : positions) {
        ins.push_back(p.instrument);
        qty.push_back(p.quantity);
    }
    const marginkernel::PositionsView pv{1, start.data(), ins.data(), qty.data()};
    Scratch s;
    s.pnl.resize(m.nu * m.ns);
    marginkernel::net(m.view(), pv, s.pnl.data());
    s.loss.resize(m.nu);
    s.worst.resize(m.nu);
    marginkernel::worst_loss(s.pnl.data(), m.nu, m.ns, m.weight.data(), m.nu, gain_factor, s.loss.data(),
                             s.worst.data());
    for (std::size_t u = 0; u < m.nu; ++u) s.im += m.fx[u] * s.loss[u];
    for (std::size_t u = 0; u < m.nu; ++u) {
        double worst = 0.0;
        for (std::size_t t = 0; t < m.ns; ++t) {
            double a = 0.0;
            for (const auto& p : positions)
                if (static_cast<std::size_t>(m.unit[static_cast<std::size_t>(p.instrument)]) == u)
                    a += std::abs(p.quantity * m.risk[static_cast<std::size_t>(p.instrument) * m.ns + t]);
            worst = std::max(worst, m.weight[u * m.ns + t] * std::max(1.0, gain_factor) * a);
        }
        s.scale += m.fx[u] * worst;
    }
    return s;
}

}  // namespace mktest
