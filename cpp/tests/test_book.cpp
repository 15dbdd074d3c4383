// The model book (book.hpp, model_file.hpp): what-if equals the state after the fill bit for bit on
// every netting level and mode, no allocation on the what-if path, bad input leaves the book
// unchanged, concurrent readers and writers (run under ThreadSanitizer in CI), and model files
// loaded from TOML (presets from the source tree, parts the book cannot hold refused by name).
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "marginkernel/book.hpp"
#include "marginkernel/model_file.hpp"
#include "marginkernel/reduce.hpp"
#include "marginkernel/simd.hpp"
#include "testing.hpp"

#ifndef MK_SOURCE_DIR
#define MK_SOURCE_DIR "."
#endif

static std::atomic<long> g_allocations{0};
void* operator new(std::size_t n) {
    ++g_allocations;
    if (void* p = std::malloc(n ? n : 1)) return p;
    throw std::bad_alloc();
}
void* operator new(std::size_t n, std::align_val_t a) {
    ++g_allocations;
    const auto al = static_cast<std::size_t>(a);
    if (void* p = std::aligned_alloc(al, (n + al - 1) / al * al)) return p;
    throw std::bad_alloc();
}
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
    ++g_allocations;
    return std::malloc(n ? n : 1);
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }

using namespace marginkernel;

namespace {

struct Tail {
    Measure measure;
    bool weighted;
};
const Tail kTails[] = {{Measure::worst_loss, false}, {Measure::var, false}, {Measure::es, false},
                       {Measure::var, true},         {Measure::es, true}};

// 4 units (2 per settlement currency), 5 instruments per unit: futures, perpetuals and options.
struct Fixture {
    std::size_t ni = 20, nu = 4, ns = 0;
    std::vector<std::int8_t> kind, settlement;
    std::vector<std::int32_t> unit, unit_currency{0, 0, 1, 1};
    std::vector<double> strike, expiry, multiplier, forward, discount, vol, risk, weight;
    std::vector<double> spot{60000.0, 3000.0, 60000.0, 3000.0}, ufx{1.0, 1.0, 60000.0, 60000.0};
    std::vector<double> cfx{1.0, 60000.0}, kfx{1.0, 60000.0, 3000.0}, khair{0.0, 0.05, 0.1};
    // SPAN spreads: a contract month per instrument (4 months) and per unit the scenarios' moves
    std::vector<std::int32_t> month;
    std::vector<double> price_multiplier, vol_shift;

    Fixture(std::mt19937_64& rng, std::size_t n_scenarios) : ns(n_scenarios) {
        std::normal_distribution<double> n01(0.0, 1.0);
        for (std::size_t i = 0; i < ni; ++i) {
            const auto u = static_cast<std::int32_t>(i / 5);
            const int k = static_cast<int>(i % 5);
            kind.push_back(static_cast<std::int8_t>(k == 0 ? 0 : k == 1 ? 1 : k % 2 ? 3 : 2));
            settlement.push_back(static_cast<std::int8_t>(u >= 2 ? 1 : 0));
            unit.push_back(u);
            strike.push_back(spot[static_cast<std::size_t>(u)] * (0.9 + 0.05 * k));
            expiry.push_back(k == 1 ? 0.0 : 0.1 + 0.1 * k);
            multiplier.push_back(1.0);
            forward.push_back(spot[static_cast<std::size_t>(u)]);
            discount.push_back(1.0);
            vol.push_back(0.6);
            month.push_back(k == 1 ? 0 : k % 3 + 1);
            for (std::size_t s = 0; s < ns; ++s) risk.push_back(n01(rng) * (u >= 2 ? 0.01 : 100.0));
        }
        for (std::size_t x = 0; x < nu * ns; ++x) weight.push_back(0.5 + 0.25 * static_cast<double>((x * 7) % 3));
        for (std::size_t x = 0; x < nu * ns; ++x) {  // no move every third scenario; vol up / down pairs
            const std::size_t s = x % ns;
            price_multiplier.push_back(s % 3 == 0 ? 1.0 : 1.0 + 0.05 * static_cast<double>(s % 7) - 0.15);
            vol_shift.push_back(s % 2 ? 0.25 : -0.25);
        }
    }
    InstrumentsView instruments() const {
        return {ni, kind.data(), settlement.data(), unit.data(), strike.data(), expiry.data(), multiplier.data(),
                forward.data(), discount.data(), vol.data()};
    }
    BookMarketView market() const {
        BookMarketView m;
        m.n_units = nu;
        m.unit_spot = spot.data();
        m.unit_fx = ufx.data();
        m.unit_currency = unit_currency.data();
        m.n_currencies = 2;
        m.currency_fx = cfx.data();
        m.n_collateral = 3;
        m.collateral_fx = kfx.data();
        m.collateral_haircut = khair.data();
        m.month = month.data();
        m.n_months = 4;
        m.price_multiplier = price_multiplier.data();
        m.vol_shift = vol_shift.data();
        return m;
    }
    BookModel model(Netting netting, MarginMode mode) const {
        BookModel b;
        b.netting = netting;
        b.mode = mode;
        b.mm_factor = 0.8;
        b.im_factor = 1.1;
        b.gain_cap = 5e4;
        b.gain_factor.assign(netting == Netting::account ? 2 : nu, 0.5);
        AddOnSpec roll;
        roll.name = "roll";
        roll.type = AddOnType::roll_shock;
        roll.annualised_move_risk.assign(nu, 0.1);
        roll.min_annualised_move.assign(nu, 0.01);
        roll.kinds = 0x3;
        AddOnSpec delta;
        delta.name = "delta";
        delta.type = AddOnType::delta_shock;
        delta.threshold.assign(nu, 1000.0);
        delta.shock.assign(nu, 0.1);
        AddOnSpec som;
        som.name = "som";
        som.type = AddOnType::short_option_minimum;
        som.rate.assign(nu, 50.0);
        som.usd = true;
        b.addons = {roll, delta, som};
        return b;
    }
    // The model with SPAN spreads added: calendar spreads (one tier, across tiers) and
    // inter-commodity spreads on what they leave (two and three legs, SPAN price risk).
    BookModel spread_model(Netting netting, MarginMode mode) const {
        BookModel b = model(netting, mode);
        AddOnSpec intra;
        intra.name = "intra";
        intra.type = AddOnType::intra_spread;
        intra.scope.assign(nu, 1);
        intra.usd = true;
        DeltaSpreadSpec one{5.0, true, {{-1, true, 1.0, {0, 1, 2, 3}}, {-1, false, 1.0, {0, 1, 2, 3}}}};
        DeltaSpreadSpec across{3.0, false, {{-1, true, 1.0, {1}}, {-1, false, 2.0, {2, 3}}}};
        intra.spreads = {one, across};
        AddOnSpec inter;
        inter.name = "inter";
        inter.type = AddOnType::inter_spread;
        inter.after = 3;
        DeltaSpreadSpec two{0.5, false, {{0, true, 1.0, {0, 1, 2, 3}}, {1, false, 2.0, {0, 1, 2, 3}}}};
        DeltaSpreadSpec three{0.3, false, {{2, true, 1.0, {1, 2}}, {3, false, 1.0, {0, 1, 2, 3}}, {0, true, 0.5, {3}}}};
        inter.spreads = {two, three};
        b.addons.push_back(intra);
        b.addons.push_back(inter);
        return b;
    }
    // The same model with the node measure `t`: worst loss, or VaR / ES at 95 % over equally likely
    // (weighted = false) or unequally likely scenarios (some of probability 0).
    BookModel model(Netting netting, MarginMode mode, const Tail& t) const {
        BookModel b = model(netting, mode);
        b.measure = t.measure;
        b.confidence = 0.95;
        if (t.weighted)
            for (std::size_t s = 0; s < ns; ++s) b.probability.push_back(s % 7 == 3 ? 0.0 : 0.5 + static_cast<double>(s % 5));
        return b;
    }
};

void test_what_if_is_the_fill(std::mt19937_64& rng) {
    for (const Tail& tail : kTails)
    for (const std::size_t ns : {35, 1001})
        for (const Netting netting : {Netting::risk_unit, Netting::currency, Netting::account})
            for (const MarginMode mode : {MarginMode::cross, MarginMode::isolated}) {
                const Fixture f(rng, ns);
                ModelBook book(f.model(netting, mode, tail), f.instruments(), f.market(), f.risk.data(), f.weight.data(),
                               ns, 4);
                book.set_collateral(1, 1, 2.0);
                std::uniform_int_distribution<int> acc(0, 3), inst(0, 19), size(-6, 6);
                for (int k = 0; k < 400; ++k) {
                    const std::int64_t a = acc(rng);
                    const std::int32_t i = inst(rng);
                    const double q = 0.5 * size(rng);
                    const ModelWhatIf w = book.what_if(a, i, q);
                    const ModelCheck c = book.check(a, i, q, w.im);
                    CHECK(c.accepted && c.after.im == w.im);
                    book.add_fill(a, i, q);
                    const AccountMargin m = book.margin(a);
                    CHECK(m.im == w.im && m.mm == w.mm);
                    CHECK(std::isfinite(m.im) && m.im >= 0.0);
                }
                // a rebuild from the positions agrees to rounding
                std::vector<double> before;
                for (std::int64_t a = 0; a < 4; ++a) before.push_back(book.margin(a).im);
                book.rebuild();
                for (std::int64_t a = 0; a < 4; ++a)
                    CHECK_CLOSE(book.margin(a).im, before[static_cast<std::size_t>(a)], 1e-9 * (1.0 + before[static_cast<std::size_t>(a)]));
            }
}

// SPAN spreads: an order changes the inter-commodity credits of the account's other units (other
// nodes); the what-if re-finishes them exactly as the fill does.
void test_spreads_what_if_is_the_fill(std::mt19937_64& rng) {
    for (const std::size_t ns : {35, 1001})
        for (const Netting netting : {Netting::risk_unit, Netting::currency, Netting::account})
            for (const MarginMode mode : {MarginMode::cross, MarginMode::isolated}) {
                const Fixture f(rng, ns);
                ModelBook book(f.spread_model(netting, mode), f.instruments(), f.market(), f.risk.data(),
                               f.weight.data(), ns, 3);
                std::uniform_int_distribution<int> acc(0, 2), inst(0, 19), size(-6, 6);
                double credit = 0.0;
                for (int k = 0; k < (ns > 100 ? 150 : 400); ++k) {
                    const std::int64_t a = acc(rng);
                    const std::int32_t i = inst(rng);
                    const double q = 0.5 * size(rng);
                    const ModelWhatIf w = book.what_if(a, i, q);
                    book.add_fill(a, i, q);
                    const AccountMargin m = book.margin(a);
                    CHECK(m.im == w.im && m.mm == w.mm);
                    CHECK(std::isfinite(m.im) && m.im >= 0.0);
                    credit = std::min(credit, m.components[4]);
                }
                if (mode == MarginMode::cross) CHECK(credit < 0.0);  // credits did form
                std::vector<double> before;
                for (std::int64_t a = 0; a < 3; ++a) before.push_back(book.margin(a).im);
                book.rebuild();
                for (std::int64_t a = 0; a < 3; ++a)
                    CHECK_CLOSE(book.margin(a).im, before[static_cast<std::size_t>(a)], 1e-9 * (1.0 + before[static_cast<std::size_t>(a)]));
            }
}

void test_no_allocation(std::mt19937_64& rng) {
    for (const bool spreads : {false, true})
    for (const Tail& tail : kTails)
    for (const Netting netting : {Netting::risk_unit, Netting::currency, Netting::account})
        for (const MarginMode mode : {MarginMode::cross, MarginMode::isolated}) {
            // spreads: under worst loss and the weighted ES (the other measures share their paths)
            if (spreads && !(tail.measure == Measure::worst_loss || (tail.measure == Measure::es && tail.weighted)))
                continue;
            const Fixture f(rng, 1001);
            BookModel model = f.model(netting, mode, tail);
            if (spreads) {  // the same measure with SPAN's intra and inter spreads
                const BookModel s = f.spread_model(netting, mode);
                model.addons = s.addons;
            }
            ModelBook book(model, f.instruments(), f.market(), f.risk.data(), f.weight.data(), f.ns, 2);
            for (std::int32_t i = 0; i < 20; i += 3) book.add_fill(0, i, 1.5);
            double sink = book.what_if(0, 1, 1.0).im;  // warms the thread's scratch
            const long before = g_allocations.load();
            for (int rep = 0; rep < 200; ++rep)
                for (std::int32_t i = 0; i < 20; ++i) {
                    sink += book.what_if(0, i, 0.5 * i - 4.0).im;
                    sink += book.check(0, i, -1.0, 1e9).excess;
                    sink += book.margin(0).im;
                    sink += book.what_if(1, i, 2.0).im;  // an empty account
                }
            CHECK(g_allocations.load() == before);
            CHECK(std::isfinite(sink));
        }
}

// A node of one position (unit weights, q = 1: its P&L is the risk row exactly) has the scan the
// value_at_risk kernel gives, clamped at 0; the worst scenario is the first minimum.
void test_tail_measure_is_the_kernel(std::mt19937_64& rng) {
    for (const Tail& tail : kTails) {
        if (tail.measure == Measure::worst_loss) continue;
        for (const std::size_t ns : {1, 2, 35, 1001}) {
            const Fixture f(rng, ns);
            const BookModel bm = f.model(Netting::risk_unit, MarginMode::cross, tail);
            ModelBook book(bm, f.instruments(), f.market(), f.risk.data(), nullptr, ns, 1);
            for (std::int32_t i = 0; i < 20; ++i) {
                const double q = i % 2 ? 1.0 : -1.0;
                book.add_fill(0, i, q);
                std::vector<double> p(f.risk.begin() + i * static_cast<std::ptrdiff_t>(ns),
                                      f.risk.begin() + (i + 1) * static_cast<std::ptrdiff_t>(ns));
                for (double& x : p) x *= q;
                double var = 0.0, es = 0.0;
                value_at_risk(p.data(), 1, ns, tail.weighted ? bm.probability.data() : nullptr, bm.confidence, &var, &es);
                const std::vector<NodeMargin> nodes = book.nodes(0);
                CHECK(nodes.size() == 1);
                CHECK(nodes[0].scan == std::max(0.0, tail.measure == Measure::var ? var : es));
                CHECK(p[static_cast<std::size_t>(nodes[0].worst_scenario)] == *std::min_element(p.begin(), p.end()));
                book.add_fill(0, i, -q);  // flat again
            }
        }
    }
    // ties: all scenarios equal -> VaR = ES = the common loss
    const Fixture f(rng, 10);
    std::vector<double> flat(f.risk.size(), -2.0);
    ModelBook book(f.model(Netting::account, MarginMode::cross, kTails[2]), f.instruments(), f.market(), flat.data(),
                   nullptr, 10, 1);
    book.add_fill(0, 0, 1.0);
    CHECK(book.margin(0).scan_risk == 2.0);
    // bad measure parameters are refused by name
    BookModel bad = f.model(Netting::risk_unit, MarginMode::cross, kTails[4]);
    bad.probability.pop_back();
    CHECK(mktest::throws<InvalidInput>([&] { ModelBook(bad, f.instruments(), f.market(), f.risk.data(), nullptr, 10, 1); }));
    bad = f.model(Netting::risk_unit, MarginMode::cross, kTails[4]);
    bad.probability.assign(10, 0.0);
    CHECK(mktest::throws<InvalidInput>([&] { ModelBook(bad, f.instruments(), f.market(), f.risk.data(), nullptr, 10, 1); }));
    bad.probability.assign(10, 1.0);
    bad.probability[3] = std::nan("");
    CHECK(mktest::throws<InvalidInput>([&] { ModelBook(bad, f.instruments(), f.market(), f.risk.data(), nullptr, 10, 1); }));
    bad = f.model(Netting::risk_unit, MarginMode::cross, kTails[1]);
    bad.confidence = 1.0;
    CHECK(mktest::throws<InvalidInput>([&] { ModelBook(bad, f.instruments(), f.market(), f.risk.data(), nullptr, 10, 1); }));
}

void test_bad_input_changes_nothing(std::mt19937_64& rng) {
    const Fixture f(rng, 35);
    ModelBook book(f.model(Netting::currency, MarginMode::cross), f.instruments(), f.market(), f.risk.data(),
                   f.weight.data(), f.ns, 2);
    book.add_fill(0, 2, 3.0);
    const double im = book.margin(0).im;
    CHECK(mktest::throws<UnknownId>([&] { book.add_fill(0, 20, 1.0); }));
    CHECK(mktest::throws<UnknownId>([&] { book.what_if(5, 1, 1.0); }));
    CHECK(mktest::throws<InvalidInput>([&] { book.add_fill(0, 1, std::nan("")); }));
    CHECK(mktest::throws<InvalidInput>([&] { book.add_fill(0, 1, 1e306); }));
    const std::int64_t accounts[] = {0, 0};
    const std::int32_t instruments[] = {1, 1};
    const double quantities[] = {1.0, std::nan("")};
    CHECK(mktest::throws<InvalidInput>([&] { book.add_fills(accounts, instruments, quantities, 2); }));
    CHECK(book.margin(0).im == im && book.positions(0).size() == 1);
    // an expired future is refused; perpetuals (expiry 0 in the row) never expire
    Fixture g = f;
    g.expiry[0] = 0.0;
    ModelBook b2(g.model(Netting::currency, MarginMode::cross), g.instruments(), g.market(), g.risk.data(),
                 g.weight.data(), g.ns, 1);
    CHECK(mktest::throws<InvalidInput>([&] { b2.what_if(0, 0, 1.0); }));
    CHECK(std::isfinite(b2.what_if(0, 1, 1.0).im));
}

void test_threads(std::mt19937_64& rng) {
    for (const bool spreads : {false, true}) {  // SPAN spreads: per-thread scratch, per-pair spread state
    const Fixture f(rng, 100);
    ModelBook book(spreads ? f.spread_model(Netting::currency, MarginMode::cross) : f.model(Netting::currency, MarginMode::cross),
                   f.instruments(), f.market(), f.risk.data(), f.weight.data(), f.ns, 4);
    std::atomic<bool> bad{false};
    std::vector<std::thread> pool;
    for (int t = 0; t < 4; ++t)
        pool.emplace_back([&, t] {
            for (int k = 0; k < 300; ++k) {
                const auto i = static_cast<std::int32_t>((k * 7 + t) % 20);
                if (t < 2) book.add_fill(t, i, 0.5);
                const ModelWhatIf w = book.what_if(k % 4, i, 1.0);
                if (!std::isfinite(w.im)) bad = true;
            }
        });
    std::vector<double> rows(5 * f.ns, 1.0);
    book.update_unit(1, rows.data(), 5, nullptr, nullptr, nullptr, nullptr, std::nan(""), std::nan(""), 2);
    for (auto& th : pool) th.join();
    CHECK(!bad);
    }
}

void test_model_files() {
    const std::string root = MK_SOURCE_DIR;
    const ModelFile m = load_model_file(root + "/python/marginkernel/presets/deribit-pm.toml");
    CHECK(m.name == "deribit-pm" && m.netting == Netting::currency && m.addons.size() == 2);
    CHECK(m.addons[0].name == "roll_shock" && m.addons[1].name == "delta_shock");  // file order
    const BookInputs in = load_market_file(root + "/cpp/tests/consumer/data/deribit_market.toml");
    const auto book = make_book(m, in, 1);
    CHECK(book->n_scenarios() == 35 && book->n_units() == 3);
    bool named = false;
    try {
        load_model_file(root + "/python/marginkernel/presets/span.toml");
    } catch (const InvalidInput& e) {
        named = std::string(e.what()).find("intra_spread") != std::string::npos;
    }
    CHECK(named);
    CHECK(mktest::throws<InvalidInput>([&] { load_model_file(root + "/no/such/model.toml"); }));
}

}  // namespace

int main() {
    for (const auto& target : mktest::test_targets()) {
        select_simd_target(target);
        std::printf("simd target %s\n", simd_target().c_str());
        std::mt19937_64 rng(8);
        test_what_if_is_the_fill(rng);
        test_no_allocation(rng);
        test_spreads_what_if_is_the_fill(rng);
        test_tail_measure_is_the_kernel(rng);
        test_bad_input_changes_nothing(rng);
        test_threads(rng);
    }
    test_model_files();
    if (mktest::failures) {
        std::printf("%d check(s) failed\n", mktest::failures);
        return 1;
    }
    std::printf("all model book tests passed\n");
    return 0;
}
