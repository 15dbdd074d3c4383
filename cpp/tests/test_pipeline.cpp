// The public pipeline from C++ on every SIMD target: revalue -> net -> reduce, checked against
// closed forms (futures, Black-76 put-call parity, inverse identities, VaR/ES by hand), plus bad
// input. Run under the sanitizer build in CI, so every stage's memory use is checked too.
#include <cmath>
#include <cstdint>
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

}  // namespace

int main() {
    for (const auto& target : available_simd_targets()) pipeline_on(target);
    if (mktest::failures) std::fprintf(stderr, "%d check(s) failed\n", mktest::failures);
    return mktest::failures ? 1 : 0;
}
