// Pre-trade what-if latency of marginkernel::AccountBook, in C++ (no Python).
//
//   cmake -S . -B /tmp/mk-build -DCMAKE_BUILD_TYPE=Release
//   cmake --build /tmp/mk-build -j2 --target whatif_bench
//   /tmp/mk-build/whatif_bench [--samples N] [--json]
//
// For 27, 35, 100 and 1,000 scenarios: one cached account holding positions in every risk unit,
// what-ifs cycling over 64 (instrument, quantity) orders. Each call is timed alone with
// steady_clock (the timer's own median cost is subtracted) -> median and p99; "mean" is the
// batch figure (10,000 calls / 10,000), free of timer overhead. Next to it, in the same run, a
// plain scalar loop doing the same what-if maths over the same data (the non-SIMD baseline).
// MARGINKERNEL_SIMD=baseline|avx2|avx512 picks the kernel; bench/bench_whatif.py runs this binary
// next to the Python and NumPy figures.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "marginkernel/account.hpp"
#include "marginkernel/book.hpp"
#include "marginkernel/model_file.hpp"
#include "marginkernel/simd.hpp"

#ifndef MK_SOURCE_DIR
#define MK_SOURCE_DIR "."
#endif

using namespace marginkernel;
using Clock = std::chrono::steady_clock;

namespace {

volatile double sink = 0.0;

double ns_between(Clock::time_point a, Clock::time_point b) {
    return std::chrono::duration<double, std::nano>(b - a).count();
}

struct Stats {
    double median, p99, mean;
};

template <class F>
Stats measure(F&& call, std::size_t samples, double timer_cost) {
    for (std::size_t k = 0; k < 20000; ++k) call(k);  // warm up
    std::vector<double> t(samples);
    for (std::size_t k = 0; k < samples; ++k) {
        const auto a = Clock::now();
        call(k);
        const auto b = Clock::now();
        t[k] = ns_between(a, b) - timer_cost;
    }
    std::sort(t.begin(), t.end());
    const std::size_t batch = 10000;
    std::vector<double> means;
    for (int rep = 0; rep < 9; ++rep) {
        const auto a = Clock::now();
        for (std::size_t k = 0; k < batch; ++k) call(k);
        means.push_back(ns_between(a, Clock::now()) / static_cast<double>(batch));
    }
    std::sort(means.begin(), means.end());
    return {t[samples / 2], t[samples * 99 / 100], means[means.size() / 2]};
}

double timer_cost() {
    std::vector<double> t(100000);
    for (auto& v : t) {
        const auto a = Clock::now();
        const auto b = Clock::now();
        v = ns_between(a, b);
    }
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
    std::size_t samples = 200000;
    bool json = false;
    for (int k = 1; k < argc; ++k) {
        if (!std::strcmp(argv[k], "--json")) json = true;
        else if (!std::strcmp(argv[k], "--samples") && k + 1 < argc) samples = std::stoul(argv[++k]);
        else {
            std::fprintf(stderr, "usage: %s [--samples N] [--json]\n", argv[0]);
            return 2;
        }
    }
    const double tc = timer_cost();
    if (!json)
        std::printf("marginkernel what-if latency, C++, simd target %s, timer cost %.1f ns subtracted\n"
                    "%10s %14s %12s %12s %14s %14s %8s\n",
                    simd_target().c_str(), tc, "scenarios", "median ns", "p99 ns", "mean ns",
                    "scalar med ns", "scalar mean ns", "speedup");
    else
        std::printf("{\"simd_target\": \"%s\", \"timer_cost_ns\": %.2f, \"rows\": [", simd_target().c_str(), tc);

    const std::size_t n_units = 4, n_instruments = 40;
    bool first = true;
    for (std::size_t ns : {27, 35, 100, 1000}) {
        std::mt19937_64 rng(ns);
        std::normal_distribution<double> pnl(0.0, 100.0), qty(0.0, 3.0);
        std::uniform_real_distribution<double> wd(0.5, 1.0);
        std::vector<double> risk(n_instruments * ns), weight(n_units * ns), fx{1.0, 1.0, 60000.0, 3000.0};
        std::vector<std::int32_t> unit(n_instruments);
        for (auto& v : risk) v = pnl(rng);
        for (auto& v : weight) v = wd(rng);
        for (std::size_t i = 0; i < n_instruments; ++i) unit[i] = static_cast<std::int32_t>(i % n_units);
        MarginRule rule;
        rule.gain_factor = 0.5;
        rule.mm_factor = 0.8;
        AccountBook book({n_instruments, ns, n_units, risk.data(), unit.data()}, weight.data(), fx.data(), rule, 1000);
        for (std::int32_t i = 0; i < 12; ++i) book.add_fill(0, i * 3, qty(rng));
        struct O {
            std::int32_t i;
            double q;
        };
        std::vector<O> orders(64);
        for (auto& o : orders) o = {static_cast<std::int32_t>(rng() % n_instruments), qty(rng)};

        const Stats fast = measure(
            [&](std::size_t k) {
                const O& o = orders[k & 63];
                sink = sink + book.what_if(0, o.i, o.q).im;
            },
            samples, tc);

        // Scalar baseline: the same maths as a plain loop over a copy of P, R and w.
        std::vector<double> p(n_units * ns);
        book.pnl(0, p.data());
        std::vector<double> unit_im(n_units);
        double im_total = 0.0;
        for (std::size_t u = 0; u < n_units; ++u) {
            unit_im[u] = book.unit_margin(0, static_cast<std::int32_t>(u)).im;
            im_total += unit_im[u];
        }
        const Stats scalar = measure(
            [&](std::size_t k) {
                const O& o = orders[k & 63];
                const auto u = static_cast<std::size_t>(unit[static_cast<std::size_t>(o.i)]);
                const double* pu = p.data() + u * ns;
                const double* r = risk.data() + static_cast<std::size_t>(o.i) * ns;
                const double* w = weight.data() + u * ns;
                double best = 0.0;
                for (std::size_t s = 0; s < ns; ++s) {
                    const double v = pu[s] + o.q * r[s];
                    const double x = w[s] * (v > 0.0 ? rule.gain_factor * v : v);
                    if (s == 0 || x < best) best = x;
                }
                sink = sink + im_total - unit_im[u] + fx[u] * std::max(0.0, -best);
            },
            samples, tc);
        if (json)
            std::printf("%s{\"scenarios\": %zu, \"median_ns\": %.2f, \"p99_ns\": %.2f, \"mean_ns\": %.2f, "
                        "\"scalar_median_ns\": %.2f, \"scalar_mean_ns\": %.2f}",
                        first ? "" : ", ", ns, fast.median, fast.p99, fast.mean, scalar.median, scalar.mean);
        else
            std::printf("%10zu %14.1f %12.1f %12.1f %14.1f %14.1f %7.1fx\n", ns, fast.median, fast.p99, fast.mean,
                        scalar.median, scalar.mean, scalar.mean / fast.mean);
        first = false;
    }
    if (json) std::printf("], \"model_rows\": [");
    // The full deribit-pm model (ModelBook): loaded from the preset TOML, market compiled by Python
    // (cpp/tests/consumer/data), one account holding the demo book's 12 positions on 3 risk units
    // in 3 settlement-currency nodes with collateral; scan (27 points + extended), roll and delta
    // shocks. 35 scenarios as published, and 1,001 (steps = 165).
    {
        const std::string root = MK_SOURCE_DIR;
        ModelFile model = load_model_file(root + "/python/marginkernel/presets/deribit-pm.toml");
        const BookInputs inputs = load_market_file(root + "/cpp/tests/consumer/data/deribit_market.toml");
        const std::int32_t pos_i[] = {4, 1, 3, 11, 2, 1, 6, 7, 12, 0, 10, 9};
        const double pos_q[] = {10, -44000, -20, -50, 30000, -30000, 3, 3, 2, -19600, 100, -200000};
        bool first_model = true;
        for (double steps : {4.0, 165.0}) {
            model.scenario_params["steps"].per.value = steps;
            auto book = make_book(model, inputs, 10);
            for (int k = 0; k < 12; ++k) book->add_fill(0, pos_i[k], pos_q[k]);
            for (std::int32_t c = 0; c < static_cast<std::int32_t>(inputs.collateral_currencies.size()); ++c)
                book->set_collateral(0, c, 1000.0 * (c + 1));
            std::mt19937_64 rng(static_cast<std::uint64_t>(steps));
            struct O {
                std::int32_t i;
                double q;
            };
            std::vector<O> orders(64);
            std::normal_distribution<double> qty(0.0, 3.0);
            for (auto& o : orders) {
                o.i = static_cast<std::int32_t>(rng() % inputs.kind.size());
                o.q = qty(rng) * (inputs.kind[static_cast<std::size_t>(o.i)] <= 1 ? 1000.0 : 1.0);
            }
            const Stats wi = measure(
                [&](std::size_t k) {
                    const O& o = orders[k & 63];
                    sink = sink + book->what_if(0, o.i, o.q).im;
                },
                samples, tc);
            const Stats ck = measure(
                [&](std::size_t k) {
                    const O& o = orders[k & 63];
                    sink = sink + book->check(0, o.i, o.q).excess;
                },
                samples, tc);
            const std::size_t ns = book->n_scenarios();
            if (json)
                std::printf("%s{\"scenarios\": %zu, \"what_if_median_ns\": %.2f, \"what_if_p99_ns\": %.2f, "
                            "\"what_if_mean_ns\": %.2f, \"check_median_ns\": %.2f, \"check_p99_ns\": %.2f, "
                            "\"check_mean_ns\": %.2f}",
                            first_model ? "" : ", ", ns, wi.median, wi.p99, wi.mean, ck.median, ck.p99, ck.mean);
            else
                std::printf("full deribit-pm model, %zu scenarios: what_if median %.1f ns (p99 %.1f, mean %.1f); "
                            "check median %.1f ns (p99 %.1f, mean %.1f)\n",
                            ns, wi.median, wi.p99, wi.mean, ck.median, ck.p99, ck.mean);
            first_model = false;
        }
    }
    if (json) std::printf("]}\n");
    return 0;
}
