// The public pipeline from C++ on every SIMD target: revalue -> net -> reduce, checked against
// closed forms (futures, Black-76 put-call parity, inverse identities, VaR/ES by hand), plus bad
// input. Run under the sanitizer build in CI, so every stage's memory use is checked too.
#include <cmath>
#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "marginkernel/marginkernel.hpp"
#include "testing.hpp"

using namespace marginkernel;

namespace {

void pipeline_on(const std::string& target) {
    select_simd_target(target);
    // A linear future, a call, a put (same strike), an inverse future and an inverse call.
    const std::vector<std::int8_t> kind{0, 2, 3, 0, 2}, settle{0, 0, 0, 1, 1};
    const std::vector<std::int32_t> unit{0, 0, 0, 1, 1};
    const std::vector<double> strike{0, 100, 100, 0, 50000}, expiry{0.5, 0.5, 0.5, 0.5, 0.25},
        mult{1, 1, 1, 10, 1}, fwd{100, 100, 100, 50000, 50000}, df{1, 1, 1, 1, 1}, vol{0, 0.3, 0.3, 0, 0.6},
        spot{100, 50000};
    const std::size_t ns = 67;  // one full 64-block and a tail
    std::vector<double> m(2 * ns), shift(2 * ns, 0.0);
    for (std::size_t s = 0; s < ns; ++s) m[s] = m[ns + s] = 0.7 + 0.6 * static_cast<double>(s) / (ns - 1);
    InstrumentsView in{5, kind.data(), settle.data(), unit.data(), strike.data(), expiry.data(),
                       mult.data(), fwd.data(), df.data(), vol.data()};
    ScenariosView sc;
    sc.n_units = 2;
    sc.n_scenarios = ns;
    sc.spot = spot.data();
    sc.price_multiplier = m.data();
    sc.vol_shift = shift.data();
    std::vector<double> risk(5 * ns), base(5);
    revalue(in, sc, risk.data(), base.data(), 2);
    for (std::size_t s = 0; s < ns; ++s) {
        CHECK_CLOSE(risk[s], 100 * m[s] - 100, 1e-12);
        // call - put = forward (zero rates): the synthetic forward in every scenario.
        CHECK_CLOSE(risk[ns + s] - risk[2 * ns + s], risk[s], 1e-12);
        CHECK_CLOSE(risk[3 * ns + s], 10 * (1 / 50000.0 - 1 / (50000.0 * m[ns + s])), 1e-18);
    }
    // The no-move scenario (m = 1 exactly is not on this grid): base values are premiums.
    CHECK(base[0] == 0.0 && base[1] > 0.0 && std::abs(base[1] - base[2]) < 1e-12);

    // Two accounts: long call + short put (= long forward), and nothing.
    const std::vector<std::int64_t> start{0, 2, 2};
    const std::vector<std::int32_t> inst{1, 2};
    const std::vector<double> qty{1.0, -1.0};
    RiskArraysView rv{5, ns, 2, risk.data(), unit.data()};
    PositionsView pv{2, start.data(), inst.data(), qty.data()};
    std::vector<double> pnl(2 * 2 * ns);
    net(rv, pv, pnl.data(), 2);
    for (std::size_t s = 0; s < ns; ++s) {
        CHECK(pnl[s] == risk[ns + s] - risk[2 * ns + s]);
        CHECK(pnl[ns + s] == 0.0 && pnl[2 * ns + s] == 0.0);
    }
    std::vector<double> loss(4), var(4), es(4);
    std::vector<std::int32_t> worst(4);
    worst_loss(pnl.data(), 4, ns, nullptr, 0, 1.0, loss.data(), worst.data());
    CHECK_CLOSE(loss[0], 30.0, 1e-9);  // the -30% move of a long forward of 100
    CHECK(worst[0] == 0 && loss[1] == 0.0 && loss[3] == 0.0);
    // VaR at 95% of 67 scenarios: index ceil(67 * 0.05) - 1 = 3 -> the 4th worst P&L.
    value_at_risk(pnl.data(), 4, ns, nullptr, 0.95, var.data(), es.data());
    CHECK_CLOSE(var[0], -pnl[3], 1e-12);
    CHECK_CLOSE(es[0], -(pnl[0] + pnl[1] + pnl[2] + pnl[3]) / 4, 1e-12);

    // Bad input: named field and row, outputs untouched.
    std::vector<double> bad_vol = vol;
    bad_vol[4] = std::nan("");
    InstrumentsView bad = in;
    bad.vol = bad_vol.data();
    std::vector<double> untouched(5 * ns, -7.0);
    bool named = false;
    try {
        revalue(bad, sc, untouched.data());
    } catch (const InvalidInput& e) {
        named = e.field() == "vol" && e.row() == 4;
    }
    CHECK(named);
    CHECK(untouched[0] == -7.0);
    const std::vector<std::int32_t> unknown{1, 9};
    PositionsView bad_pos{2, start.data(), unknown.data(), qty.data()};
    CHECK(mktest::throws<InvalidInput>([&] { net(rv, bad_pos, pnl.data()); }));
    CHECK(mktest::throws<InvalidInput>([&] { value_at_risk(pnl.data(), 1, ns, nullptr, 1.0, var.data(), es.data()); }));
}

// A random book: n instruments (futures and options) on `units` risk units, ns scenarios.
struct Book {
    std::vector<std::int8_t> kind, settle;
    std::vector<std::int32_t> unit;
    std::vector<double> strike, expiry, mult, fwd, df, vol, spot, m, shift;
    std::size_t n = 0, units = 0, ns = 0;
    InstrumentsView instruments() const {
        return {n, kind.data(), settle.data(), unit.data(), strike.data(), expiry.data(),
                mult.data(), fwd.data(), df.data(), vol.data()};
    }
    ScenariosView scenarios() const {
        ScenariosView sc;
        sc.n_units = units;
        sc.n_scenarios = ns;
        sc.spot = spot.data();
        sc.price_multiplier = m.data();
        sc.vol_shift = shift.data();
        sc.vol_shock = VolShockKind::multiplicative;
        sc.short_power = 0.5;
        return sc;
    }
};

Book random_book(std::size_t n, std::size_t units, std::size_t ns, unsigned seed) {
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<double> u01(0.0, 1.0);
    Book b;
    b.n = n, b.units = units, b.ns = ns;
    for (std::size_t i = 0; i < n; ++i) {
        b.kind.push_back(static_cast<std::int8_t>(rng() % 5));
        b.settle.push_back(static_cast<std::int8_t>(rng() % 2));
        b.unit.push_back(static_cast<std::int32_t>(rng() % units));
        b.strike.push_back(50 + 100 * u01(rng));
        b.expiry.push_back(u01(rng));
        b.mult.push_back(1 + 9 * u01(rng));
        b.fwd.push_back(80 + 40 * u01(rng));
        b.df.push_back(0.95 + 0.05 * u01(rng));
        b.vol.push_back(0.1 + u01(rng));
    }
    for (std::size_t u = 0; u < units; ++u) b.spot.push_back(100.0);
    for (std::size_t k = 0; k < units * ns; ++k) {
        b.m.push_back(0.6 + 0.8 * u01(rng));
        b.shift.push_back(u01(rng) - 0.5);
    }
    return b;
}

// threads: refused below 1, capped above the hardware, and never change a bit of the result.
// Run under ThreadSanitizer in CI (cpp/tests/run_tsan.sh).
void threads_are_deterministic() {
    const Book b = random_book(301, 3, 37, 11);
    std::vector<double> one(b.n * b.ns), many(one.size()), base1(b.n), base2(b.n);
    revalue(b.instruments(), b.scenarios(), one.data(), base1.data(), 1);
    for (int t : {2, 3, 7, 64, 40000}) {
        revalue(b.instruments(), b.scenarios(), many.data(), base2.data(), t);
        CHECK(many == one && base2 == base1);
    }
    CHECK(mktest::throws<InvalidInput>([&] { revalue(b.instruments(), b.scenarios(), many.data(), nullptr, 0); }));
    CHECK(mktest::throws<InvalidInput>([&] { revalue(b.instruments(), b.scenarios(), many.data(), nullptr, -3); }));

    std::vector<std::int64_t> start{0};
    std::vector<std::int32_t> inst;
    std::vector<double> qty;
    std::mt19937_64 rng(5);
    for (std::size_t a = 0; a < 97; ++a) {
        for (std::size_t k = 0; k < rng() % 9; ++k) {
            inst.push_back(static_cast<std::int32_t>(rng() % b.n));
            qty.push_back(static_cast<double>(static_cast<int>(rng() % 21) - 10) * 0.5);
        }
        start.push_back(static_cast<std::int64_t>(inst.size()));
    }
    const RiskArraysView rv{b.n, b.ns, b.units, one.data(), b.unit.data()};
    const PositionsView pv{97, start.data(), inst.data(), qty.data()};
    std::vector<double> p1(97 * b.units * b.ns), p2(p1.size());
    net(rv, pv, p1.data(), 1);
    for (int t : {2, 5, 40000}) {
        std::fill(p2.begin(), p2.end(), -1.0);
        net(rv, pv, p2.data(), t);
        CHECK(p2 == p1);
    }
    CHECK(mktest::throws<InvalidInput>([&] { net(rv, pv, p2.data(), 0); }));
}

// worst_loss is exact (a minimum of products), so every SIMD target returns the same bits, and it
// validates like the other stages.
void reduce_across_targets() {
    const std::size_t rows = 13, ns = 45;
    std::mt19937_64 rng(3);
    std::normal_distribution<double> normal;
    std::vector<double> pnl(rows * ns), weight(3 * ns);
    for (auto& v : pnl) v = normal(rng);
    for (auto& v : weight) v = 0.5 + 0.5 * std::abs(normal(rng));
    pnl[7 * ns + 44] = -100.0;  // in the scalar tail on every target
    pnl[8 * ns + 3] = pnl[8 * ns + 40] = -50.0;  // a tie: the first one is reported
    std::vector<double> loss_ref, loss(rows);
    std::vector<std::int32_t> worst_ref, worst(rows);
    for (const auto& target : available_simd_targets()) {
        select_simd_target(target);
        worst_loss(pnl.data(), rows, ns, nullptr, 0, 0.5, loss.data(), worst.data());
        CHECK(worst[7] == 44 && loss[7] == 100.0 && worst[8] == 3);
        worst_loss(pnl.data(), rows, ns, weight.data(), 3, 0.5, loss.data(), worst.data());
        if (loss_ref.empty()) loss_ref = loss, worst_ref = worst;
        CHECK(loss == loss_ref && worst == worst_ref);
        // The scalar definition, row by row.
        for (std::size_t r = 0; r < rows; ++r) {
            double best = 0.0;
            std::int32_t at = 0;
            for (std::size_t s = 0; s < ns; ++s) {
                const double p = pnl[r * ns + s], v = weight[(r % 3) * ns + s] * (p > 0.0 ? 0.5 * p : p);
                if (s == 0 || v < best) best = v, at = static_cast<std::int32_t>(s);
            }
            CHECK(loss[r] == std::max(0.0, -best) && worst[r] == at);
        }
    }
    std::vector<double> bad = pnl;
    bad[2 * ns + 5] = std::nan("");
    bool named = false;
    try {
        validate_worst_loss(bad.data(), rows, ns, nullptr, 0, 1.0);
    } catch (const InvalidInput& e) {
        named = e.field() == "pnl" && e.row() == 2;
    }
    CHECK(named);
    CHECK(mktest::throws<InvalidInput>([&] { worst_loss(bad.data(), rows, ns, nullptr, 0, 1.0, loss.data(), nullptr); }));
    std::vector<double> huge(3 * ns, 1e308);  // times the -100 of row 7: overflow
    CHECK(mktest::throws<InvalidInput>([&] { worst_loss(pnl.data(), rows, ns, huge.data(), 3, 1.0, loss.data(), nullptr); }));
    const std::vector<double> probability(ns, 1e307);
    CHECK(mktest::throws<InvalidInput>([&] { validate_value_at_risk(pnl.data(), rows, ns, probability.data(), 0.9); }));
    select_simd_target(available_simd_targets().front());
}

}  // namespace

int main() {
    for (const auto& target : available_simd_targets()) pipeline_on(target);
    threads_are_deterministic();
    reduce_across_targets();
    if (mktest::failures) std::fprintf(stderr, "%d check(s) failed\n", mktest::failures);
    return mktest::failures ? 1 : 0;
}
