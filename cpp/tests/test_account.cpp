// Unit tests of the account engine (account.hpp) and its fused what-if kernel, on every SIMD target
// this build and CPU support. Tolerances: the incremental state is compared with a from-scratch
// recomputation (net + worst_loss) to 1e-12 of the rounding scale sum |q| |R| (see testing.hpp);
// everything that goes through the same arithmetic is compared exactly.
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <string>

#include "kernels.hpp"  // internal: the per-target kernel table
#include "marginkernel/revalue.hpp"
#include "marginkernel/simd.hpp"
#include "testing.hpp"

using namespace marginkernel;
using mktest::Market;

// Every heap allocation of this program is counted, so that the what-if path can be shown to make
// none.
static std::atomic<long> g_allocations{0};
void* operator new(std::size_t n) {
    ++g_allocations;
    if (void* p = std::malloc(n ? n : 1)) return p;
    throw std::bad_alloc();
}
void* operator new(std::size_t n, std::align_val_t a) {
    ++g_allocations;
    const std::size_t al = static_cast<std::size_t>(a);
    if (void* p = std::aligned_alloc(al, (n + al - 1) / al * al)) return p;
    throw std::bad_alloc();
}
void* operator new[](std::size_t n) { return operator new(n); }
void* operator new[](std::size_t n, std::align_val_t a) { return operator new(n, a); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }

namespace {

constexpr double kRtol = 1e-12;

// whatif_min against a plain scalar loop with the same rounding: the same bits.
void test_kernel(std::mt19937_64& rng) {
    const auto& k = detail::active_kernels();
    std::normal_distribution<double> nd(0.0, 10.0);
    std::uniform_int_distribution<int> small(-3, 3);
    for (std::size_t n : {1, 2, 3, 7, 8, 9, 15, 16, 17, 27, 31, 32, 33, 35, 63, 64, 65, 100, 127, 128, 129,
                          1000, 1001}) {
        for (int ties = 0; ties < 2; ++ties)
            for (double gain : {0.0, 0.5, 1.0}) {
                std::vector<double> p(n), r(n);
                for (std::size_t s = 0; s < n; ++s) {
                    p[s] = ties ? small(rng) : nd(rng);
                    r[s] = ties ? small(rng) : nd(rng);
                }
                const double q = ties ? 1.0 : nd(rng);
                // The kernel fuses p + q * r on targets with FMA and not on the others; either way
                // its result must equal the scalar loop with that same rounding, bit for bit, and
                // the index must be the first attaining the minimum.
                bool matched = false;
                std::int32_t at = -1;
                const double got = k.whatif_min(p.data(), r.data(), q, gain, n, &at);
                for (bool fused : {false, true}) {
                    double want = std::numeric_limits<double>::infinity();
                    std::int32_t want_at = 0;
                    for (std::size_t s = 0; s < n; ++s) {
                        const double v = fused ? std::fma(q, r[s], p[s]) : p[s] + q * r[s];
                        const double x = v > 0.0 ? gain * v : v;
                        if (x < want) want = x, want_at = static_cast<std::int32_t>(s);
                    }
                    if (got == want && at == want_at) matched = true;
                    if (fused != (std::string(k.name) != "baseline") || matched) continue;
                    std::fprintf(stderr, "  n %zu ties %d gain %g: got %.17g at %d, want %.17g at %d\n", n,
                                 ties, gain, got, at, want, want_at);
                }
                CHECK(matched);
                // whatif_fill rounds p + q * r the same way: min over the filled p with q = 0.
                std::vector<double> filled = p, zero(n, 0.0);
                k.whatif_fill(filled.data(), r.data(), q, n);
                std::int32_t at2 = -1;
                CHECK(k.whatif_min(filled.data(), zero.data(), 0.0, gain, n, &at2) == got);
                CHECK(at2 == at);
            }
    }
}

// Random fills on a few accounts; margins equal a from-scratch recomputation and every what-if
// equals the state after the same fill.
void test_fills_and_what_if(std::mt19937_64& rng) {
    const Market m = mktest::random_market(rng, 13, 37, 3);
    MarginRule rule;
    rule.gain_factor = 0.3;
    rule.mm_factor = 0.8;
    AccountBook book(m.view(), m.weight.data(), m.fx.data(), rule, 4);
    CHECK(book.n_accounts() == 4 && book.n_instruments() == 13 && book.n_units() == 3 && book.n_scenarios() == 37);
    std::uniform_int_distribution<std::int64_t> acc(0, 3);
    std::uniform_int_distribution<std::int32_t> ins(0, 12);
    std::normal_distribution<double> qty(0.0, 5.0);
    for (int t = 0; t < 400; ++t) {
        const auto a = acc(rng);
        const auto i = ins(rng);
        const double q = t % 7 == 0 ? -book.position(a, i) : qty(rng);  // sometimes close a position
        const WhatIf w = book.what_if(a, i, q);
        const Margin before = book.margin(a);
        CHECK(w.im_before == before.im);
        CHECK(w.unit == m.unit[static_cast<std::size_t>(i)]);
        book.add_fill(a, i, q);
        const UnitMargin um = book.unit_margin(a, w.unit);
        CHECK(um.loss == w.unit_loss);  // same arithmetic as the fill: exact
        CHECK(um.worst_scenario == w.worst_scenario);
        const Margin after = book.margin(a);
        const auto s = mktest::from_scratch(m, book.positions(a), rule.gain_factor);
        CHECK_CLOSE(w.im, after.im, kRtol * s.scale + 1e-300);
        CHECK_CLOSE(after.im, s.im, kRtol * s.scale + 1e-300);
        CHECK(after.mm == rule.mm_factor * after.im);
        CHECK_CLOSE(w.mm, rule.mm_factor * s.im, kRtol * s.scale + 1e-300);
        std::vector<double> p(m.nu * m.ns), wp(m.nu * m.ns);
        book.pnl(a, p.data());
        book.weighted_pnl(a, wp.data());
        for (std::size_t k = 0; k < p.size(); ++k) {
            CHECK_CLOSE(p[k], s.pnl[k], kRtol * s.scale + 1e-300);
            CHECK_CLOSE(wp[k], m.weight[k] * s.pnl[k], kRtol * s.scale + 1e-300);
        }
    }
    // Closing every position gives exactly zero margin and P.
    for (std::int64_t a = 0; a < 4; ++a) {
        for (const auto& p : book.positions(a)) {
            const WhatIf w = book.what_if(a, p.instrument, -p.quantity);
            book.add_fill(a, p.instrument, -p.quantity);
            CHECK(book.unit_margin(a, w.unit).loss == w.unit_loss);
        }
        CHECK(book.positions(a).empty());
        CHECK(book.margin(a).im == 0.0);
        std::vector<double> p(m.nu * m.ns, 1.0);
        book.weighted_pnl(a, p.data());
        CHECK(std::all_of(p.begin(), p.end(), [](double v) { return v == 0.0; }));
    }
}

void test_market_update(std::mt19937_64& rng) {
    Market m = mktest::random_market(rng, 9, 70, 3);
    MarginRule rule;
    rule.gain_factor = 1.0;
    AccountBook book(m.view(), m.weight.data(), m.fx.data(), rule, 6);
    std::normal_distribution<double> qty(0.0, 5.0), pnl(0.0, 100.0);
    for (std::int64_t a = 0; a < 6; ++a)
        for (std::int32_t i = 0; i < 9; ++i)
            if ((a + i) % 3 != 0) book.add_fill(a, i, qty(rng));
    std::vector<Margin> untouched;
    for (int round = 0; round < 5; ++round) {
        const std::int32_t u = round % 3;
        const auto ids = book.instruments_of(u);
        CHECK(ids.size() == 3);
        std::vector<double> rows(ids.size() * m.ns);
        for (auto& v : rows) v = pnl(rng);
        // Accounts' IM in the other units must not move.
        std::vector<UnitMargin> other;
        for (std::int64_t a = 0; a < 6; ++a)
            for (std::int32_t v = 0; v < 3; ++v)
                if (v != u) other.push_back(book.unit_margin(a, v));
        const double new_fx = 1.0 + round;
        book.update_unit(u, rows.data(), ids.size(), new_fx, round % 2 ? 2 : 1);
        for (std::size_t k = 0; k < ids.size(); ++k)
            std::copy(rows.begin() + static_cast<std::ptrdiff_t>(k * m.ns),
                      rows.begin() + static_cast<std::ptrdiff_t>((k + 1) * m.ns),
                      m.risk.begin() + static_cast<std::ptrdiff_t>(static_cast<std::size_t>(ids[k]) * m.ns));
        m.fx[static_cast<std::size_t>(u)] = new_fx;
        std::size_t o = 0;
        for (std::int64_t a = 0; a < 6; ++a) {
            for (std::int32_t v = 0; v < 3; ++v)
                if (v != u) {
                    const UnitMargin now = book.unit_margin(a, v);
                    CHECK(now.loss == other[o].loss && now.im == other[o].im);
                    ++o;
                }
            const auto s = mktest::from_scratch(m, book.positions(a), rule.gain_factor);
            CHECK_CLOSE(book.margin(a).im, s.im, kRtol * s.scale);
            std::vector<double> p(m.nu * m.ns), wp(m.nu * m.ns);
            book.pnl(a, p.data());
            book.weighted_pnl(a, wp.data());
            for (std::size_t k = 0; k < p.size(); ++k) {
                CHECK_CLOSE(p[k], s.pnl[k], kRtol * s.scale);
                CHECK_CLOSE(wp[k], m.weight[k] * s.pnl[k], kRtol * s.scale);  // the incremental cache
            }
            for (std::size_t k = 0; k < m.ns; ++k) {
                std::vector<double> row(m.ns);
                book.risk_row(ids[0], row.data());
                CHECK(row[k] == m.risk[static_cast<std::size_t>(ids[0]) * m.ns + k]);
            }
        }
    }
    // rebuild() recomputes from scratch: same figures within rounding.
    std::vector<Margin> incremental;
    for (std::int64_t a = 0; a < 6; ++a) incremental.push_back(book.margin(a));
    book.rebuild(2);
    for (std::int64_t a = 0; a < 6; ++a) {
        const auto s = mktest::from_scratch(m, book.positions(a), rule.gain_factor);
        CHECK_CLOSE(book.margin(a).im, incremental[static_cast<std::size_t>(a)].im, kRtol * s.scale);
        CHECK_CLOSE(book.margin(a).im, s.im, kRtol * s.scale);
    }
    // set_fx scales one unit's share.
    const UnitMargin before = book.unit_margin(1, 2);
    book.set_fx(2, 7.0);
    CHECK(book.unit_margin(1, 2).im == 7.0 * before.loss);
}

// update_unit(unit, instruments, scenarios) re-revalues only that unit, equal to a full revalue.
void test_revalue_update() {
    const std::size_t n = 6, ns = 19, nu = 2;
    std::vector<std::int8_t> kind{0, 2, 3, 0, 2, 1}, settlement{0, 0, 0, 1, 1, 1};
    std::vector<std::int32_t> unit{0, 0, 0, 1, 1, 1};
    std::vector<double> strike{0, 100, 95, 0, 2000, 0}, expiry{0.5, 0.25, 0.25, 0.5, 0.1, 0};
    std::vector<double> mult{1, 1, 1, 10, 1, 10}, fwd{100, 100, 100, 2000, 2000, 2000};
    std::vector<double> disc{1, 0.99, 0.99, 1, 1, 1}, vol{0, 0.6, 0.7, 0, 0.8, 0};
    std::vector<double> spot{100, 2000}, pm(nu * ns), vs(nu * ns, 0.0);
    for (std::size_t u = 0; u < nu; ++u)
        for (std::size_t s = 0; s < ns; ++s) pm[u * ns + s] = 0.8 + 0.4 * static_cast<double>(s) / (ns - 1);
    InstrumentsView in{n, kind.data(), settlement.data(), unit.data(), strike.data(), expiry.data(),
                       mult.data(), fwd.data(), disc.data(), vol.data()};
    ScenariosView sc;
    sc.n_units = nu;
    sc.n_scenarios = ns;
    sc.spot = spot.data();
    sc.price_multiplier = pm.data();
    sc.vol_shift = vs.data();
    std::vector<double> risk(n * ns);
    revalue(in, sc, risk.data());
    Market m;
    m.ni = n, m.ns = ns, m.nu = nu, m.risk = risk, m.unit = unit;
    m.weight.assign(nu * ns, 1.0);
    m.fx = {1.0, 2000.0};
    AccountBook book(m.view(), nullptr, m.fx.data(), MarginRule{}, 2);
    book.add_fill(0, 1, -3.0);
    book.add_fill(0, 4, 2.0);
    book.add_fill(1, 3, 1.0);
    book.add_fill(1, 0, 5.0);
    // The market of unit 1 moves: new forwards, vols and spot; unit 0's inputs change too but must
    // be ignored (only unit 1 is re-revalued).
    for (std::size_t i = 3; i < 6; ++i) fwd[i] = 2100.0, vol[i] *= 1.1;
    fwd[0] = 120.0;
    spot[1] = 2100.0;
    book.update_unit(1, in, sc, 2100.0);
    std::vector<double> fresh(n * ns);
    revalue(in, sc, fresh.data());
    for (std::size_t i = 0; i < n; ++i) {
        std::vector<double> row(ns);
        book.risk_row(static_cast<std::int32_t>(i), row.data());
        for (std::size_t s = 0; s < ns; ++s)
            CHECK(row[s] == (unit[i] == 1 ? fresh[i * ns + s] : risk[i * ns + s]));
    }
    for (std::size_t i = 3; i < 6; ++i)
        std::copy(fresh.begin() + static_cast<std::ptrdiff_t>(i * ns), fresh.begin() + static_cast<std::ptrdiff_t>((i + 1) * ns),
                  m.risk.begin() + static_cast<std::ptrdiff_t>(i * ns));
    m.fx[1] = 2100.0;
    for (std::int64_t a = 0; a < 2; ++a) {
        const auto s = mktest::from_scratch(m, book.positions(a), 1.0);
        CHECK_CLOSE(book.margin(a).im, s.im, kRtol * s.scale);
    }
    // Mismatched tables are refused.
    std::vector<std::int32_t> other_unit = unit;
    other_unit[0] = 1;
    InstrumentsView bad = in;
    bad.risk_unit = other_unit.data();
    CHECK(mktest::throws<InvalidInput>([&] { book.update_unit(1, bad, sc); }));
}

// Bad input: clear errors, nothing changes.
void test_bad_input(std::mt19937_64& rng) {
    const Market m = mktest::random_market(rng, 5, 33, 2);
    std::vector<double> expiry{1.0, 0.5, 0.0, -1.0, std::numeric_limits<double>::infinity()};
    AccountBook book(m.view(), m.weight.data(), m.fx.data(), MarginRule{}, 2, expiry.data());
    book.add_fill(0, 0, 2.0);
    book.add_fill(0, 1, -1.5);
    book.add_fill(1, 4, 3.0);
    const auto snapshot = [&] {
        std::vector<double> s;
        for (std::int64_t a = 0; a < 2; ++a) {
            std::vector<double> p(m.nu * m.ns);
            book.weighted_pnl(a, p.data());
            s.insert(s.end(), p.begin(), p.end());
            s.push_back(book.margin(a).im);
            for (const auto& pos : book.positions(a)) s.push_back(pos.instrument), s.push_back(pos.quantity);
        }
        return s;
    };
    const auto before = snapshot();
    const double nan = std::numeric_limits<double>::quiet_NaN();
    const double inf = std::numeric_limits<double>::infinity();
    // Unknown ids: UnknownId (an InvalidInput) naming the field and the id.
    for (std::int64_t a : {std::int64_t{-1}, std::int64_t{2}, std::int64_t{1} << 40}) {
        CHECK(mktest::throws<UnknownId>([&] { book.what_if(a, 0, 1.0); }));
        CHECK(mktest::throws<UnknownId>([&] { book.add_fill(a, 0, 1.0); }));
        CHECK(mktest::throws<InvalidInput>([&] { book.margin(a); }));
    }
    for (std::int32_t i : {-1, 5, 1 << 30}) {
        CHECK(mktest::throws<UnknownId>([&] { book.what_if(0, i, 1.0); }));
        CHECK(mktest::throws<UnknownId>([&] { book.add_fill(0, i, 1.0); }));
        CHECK(mktest::throws<UnknownId>([&] { book.check(0, i, 1.0, 1e9); }));
    }
    try {
        book.what_if(7, 0, 1.0);
        CHECK(false);
    } catch (const UnknownId& e) {
        CHECK(e.field() == "account" && e.row() == 7);
        CHECK(std::string(e.what()).find("unknown account id") != std::string::npos);
    }
    // Non-finite quantities, expired instruments, absurd sizes, non-finite equity.
    for (double q : {nan, inf, -inf}) {
        CHECK(mktest::throws<InvalidInput>([&] { book.what_if(0, 0, q); }));
        CHECK(mktest::throws<InvalidInput>([&] { book.add_fill(0, 0, q); }));
    }
    for (std::int32_t i : {2, 3}) {
        try {
            book.add_fill(0, i, 1.0);
            CHECK(false);
        } catch (const InvalidInput& e) {
            CHECK(e.field() == "instrument" && e.row() == i);
            CHECK(std::string(e.what()).find("expired") != std::string::npos);
        }
        CHECK(mktest::throws<InvalidInput>([&] { book.what_if(0, i, 1.0); }));
        CHECK(mktest::throws<InvalidInput>([&] { book.check(0, i, 1.0, 1e9); }));
    }
    CHECK(mktest::throws<InvalidInput>([&] { book.add_fill(0, 0, 1e300); }));
    CHECK(mktest::throws<InvalidInput>([&] { book.check(0, 0, 1.0, nan); }));
    // Bulk fills: one bad fill and none is applied.
    std::vector<std::int64_t> accounts{0, 1, 0};
    std::vector<std::int32_t> instruments{0, 4, 1};
    std::vector<double> quantities{1.0, 2.0, nan};
    CHECK(mktest::throws<InvalidInput>([&] { book.add_fills(accounts.data(), instruments.data(), quantities.data(), 3); }));
    instruments[1] = 9;
    quantities[2] = 1.0;
    CHECK(mktest::throws<UnknownId>([&] { book.add_fills(accounts.data(), instruments.data(), quantities.data(), 3); }));
    // Market updates with bad rows.
    const auto ids = book.instruments_of(0);
    std::vector<double> rows(ids.size() * m.ns, 1.0);
    CHECK(mktest::throws<InvalidInput>([&] { book.update_unit(0, rows.data(), ids.size() - 1); }));
    rows[5] = nan;
    CHECK(mktest::throws<InvalidInput>([&] { book.update_unit(0, rows.data(), ids.size()); }));
    rows[5] = 1.0;
    CHECK(mktest::throws<InvalidInput>([&] { book.update_unit(0, rows.data(), ids.size(), -1.0); }));
    CHECK(mktest::throws<UnknownId>([&] { book.update_unit(2, rows.data(), ids.size()); }));
    CHECK(mktest::throws<InvalidInput>([&] { book.set_expiry(0, nan); }));
    CHECK(mktest::throws<InvalidInput>([&] { book.set_fx(1, 0.0); }));
    CHECK(snapshot() == before);
    // Bad construction.
    std::vector<double> bad_risk = m.risk;
    bad_risk[3] = nan;
    Market bm = m;
    bm.risk = bad_risk;
    CHECK(mktest::throws<InvalidInput>([&] { AccountBook b(bm.view(), nullptr, nullptr, MarginRule{}, 1); }));
    std::vector<double> bad_w = m.weight;
    bad_w[0] = -1.0;
    CHECK(mktest::throws<InvalidInput>([&] { AccountBook b(m.view(), bad_w.data(), nullptr, MarginRule{}, 1); }));
    MarginRule bad_rule;
    bad_rule.gain_factor = nan;
    CHECK(mktest::throws<InvalidInput>([&] { AccountBook b(m.view(), nullptr, nullptr, bad_rule, 1); }));
    // An expired instrument can be settled: its positions go, P follows.
    book.set_expiry(1, 0.0);
    CHECK(mktest::throws<InvalidInput>([&] { book.what_if(0, 1, 1.0); }));
    book.settle(1);
    CHECK(book.position(0, 1) == 0.0);
    const auto s = mktest::from_scratch(m, book.positions(0), 1.0);
    CHECK_CLOSE(book.margin(0).im, s.im, kRtol * s.scale);
}

// what_if and check allocate nothing (margin too); add_fill only when an account first trades a unit.
void test_no_allocation(std::mt19937_64& rng) {
    const Market m = mktest::random_market(rng, 12, 1000, 3);
    MarginRule rule;
    rule.gain_factor = 0.5;
    AccountBook book(m.view(), m.weight.data(), m.fx.data(), rule, 3);
    for (std::int32_t i = 0; i < 12; i += 2) book.add_fill(0, i, 1.5);
    std::vector<Order> orders;
    for (std::int32_t i = 0; i < 12; ++i) orders.push_back(Order{i % 2, i, 0.5 * i - 2.0});
    double sink = 0.0;
    const long before = g_allocations.load();
    for (int rep = 0; rep < 1000; ++rep)
        for (const Order& o : orders) {
            sink += book.what_if(o).im;
            sink += book.check(o, 1e6).excess;
            sink += book.margin(o.account).im;
        }
    CHECK(g_allocations.load() == before);
    book.add_fill(0, 0, 1.0);  // a unit the account already holds: no allocation either
    CHECK(g_allocations.load() == before);
    book.add_fill(2, 1, 1.0);  // a first trade in a unit allocates its P (and shows the count works)
    CHECK(g_allocations.load() > before);
    CHECK(std::isfinite(sink));
}

void test_check(std::mt19937_64& rng) {
    const Market m = mktest::random_market(rng, 4, 27, 2);
    MarginRule rule;
    AccountBook book(m.view(), m.weight.data(), m.fx.data(), rule, 1);
    book.add_fill(0, 0, 10.0);
    const double im = book.margin(0).im;
    CHECK(im > 0.0);
    const WhatIf more = book.what_if(0, 0, 5.0);
    CHECK(more.im > im);
    const Check yes = book.check(0, 0, 5.0, more.im);
    CHECK(yes.accepted && yes.excess == 0.0 && yes.after.im == more.im);
    const Check no = book.check(0, 0, 5.0, more.im * 0.999);
    CHECK(!no.accepted && no.excess < 0.0);
    // Reducing risk is allowed even when under-margined, unless the rule says otherwise.
    const Check reduce = book.check(Order{0, 0, -5.0}, 0.0);
    CHECK(reduce.after.im <= im && reduce.accepted);
    rule.allow_risk_reducing = false;
    AccountBook strict(m.view(), m.weight.data(), m.fx.data(), rule, 1);
    strict.add_fill(0, 0, 10.0);
    CHECK(!strict.check(Order{0, 0, -5.0}, 0.0).accepted);
    // A new account appears empty.
    const auto id = book.add_accounts(3);
    CHECK(id == 1 && book.n_accounts() == 4);
    CHECK(book.margin(3).im == 0.0);
    CHECK(book.what_if(3, 1, 0.0).im == 0.0);
}

}  // namespace

int main() {
    const auto targets = available_simd_targets();
    for (const auto& target : targets) {
        select_simd_target(target);
        std::printf("simd target %s\n", simd_target().c_str());
        std::mt19937_64 rng(20240601);
        test_kernel(rng);
        test_fills_and_what_if(rng);
        test_market_update(rng);
        test_revalue_update();
        test_bad_input(rng);
        test_check(rng);
        test_no_allocation(rng);
    }
    if (mktest::failures) {
        std::printf("%d check(s) failed\n", mktest::failures);
        return 1;
    }
    std::printf("all account tests passed on %zu SIMD target(s)\n", targets.size());
    return 0;
}
