// An exchange-side pre-trade loop written against the installed marginkernel package only
// (find_package(marginkernel CONFIG) -> marginkernel::core, public headers, no Eigen, no Python).
//
// Builds a small book of options and futures on two underlyings, revalues it, opens positions on
// 500 accounts, then runs a stream of orders: each is checked (what-if against equity) and filled if
// accepted, with a market move of one underlying every 1,000 orders. Along the way every what-if is
// compared with a from-scratch recomputation through the public pipeline (net + worst_loss) after
// the fill, and the run fails on any mismatch beyond 1e-12 of the rounding scale. Prints the
// what-if latency it saw.
#include <marginkernel/account.hpp>
#include <marginkernel/marginkernel.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

using namespace marginkernel;

namespace {

struct Market {
    std::vector<std::int8_t> kind, settlement;
    std::vector<std::int32_t> unit;
    std::vector<double> strike, expiry, multiplier, forward, discount, vol;
    std::vector<double> spot, price_multiplier, vol_shift;
    std::size_t n_scenarios = 0;

    InstrumentsView instruments() const {
        return {kind.size(), kind.data(), settlement.data(), unit.data(), strike.data(), expiry.data(),
                multiplier.data(), forward.data(), discount.data(), vol.data()};
    }
    ScenariosView scenarios() const {
        ScenariosView s;
        s.n_units = spot.size();
        s.n_scenarios = n_scenarios;
        s.spot = spot.data();
        s.price_multiplier = price_multiplier.data();
        s.vol_shift = vol_shift.data();
        s.vol_shock = VolShockKind::multiplicative;
        s.short_power = 0.3;
        s.long_power = 0.3;
        return s;
    }
};

// Two underlyings (BTC at 60,000, ETH at 3,000), each a future and 12 calls / puts, 27 scenarios
// (9 price points x 3 vol states, Deribit-like).
Market make_market() {
    Market m;
    const double spots[] = {60000.0, 3000.0};
    for (std::int32_t u = 0; u < 2; ++u) {
        const double s = spots[u];
        m.kind.push_back(static_cast<std::int8_t>(Kind::future));
        m.settlement.push_back(static_cast<std::int8_t>(Settlement::linear));
        m.unit.push_back(u);
        m.strike.push_back(0.0), m.expiry.push_back(0.25), m.multiplier.push_back(1.0);
        m.forward.push_back(s * 1.01), m.discount.push_back(1.0), m.vol.push_back(0.0);
        for (int k = 0; k < 12; ++k) {
            m.kind.push_back(static_cast<std::int8_t>(k % 2 ? Kind::put : Kind::call));
            m.settlement.push_back(static_cast<std::int8_t>(Settlement::linear));
            m.unit.push_back(u);
            m.strike.push_back(s * (0.8 + 0.035 * k)), m.expiry.push_back(0.02 + 0.04 * k);
            m.multiplier.push_back(1.0), m.forward.push_back(s), m.discount.push_back(0.999);
            m.vol.push_back(0.5 + 0.02 * k);
        }
    }
    m.spot = {spots[0], spots[1]};
    const double moves[] = {-0.15, -0.1, -0.066, -0.033, 0.0, 0.033, 0.066, 0.1, 0.15};
    const double vols[] = {-0.3, 0.0, 0.3};
    m.n_scenarios = 27;
    for (std::int32_t u = 0; u < 2; ++u)
        for (double v : vols)
            for (double mv : moves) m.price_multiplier.push_back(1.0 + mv), m.vol_shift.push_back(v);
    return m;
}

int failures = 0;

}  // namespace

int main() {
    Market market = make_market();
    const std::size_t n = market.kind.size(), ns = market.n_scenarios;
    std::vector<double> risk(n * ns);
    revalue(market.instruments(), market.scenarios(), risk.data());

    MarginRule rule;
    rule.gain_factor = 0.0;  // gains never offset losses (Deribit pnl_offset = 0)
    rule.mm_factor = 0.8;
    const std::size_t n_accounts = 500;
    const std::vector<double> fx{1.0, 1.0};  // USD-linear contracts
    AccountBook book({n, ns, 2, risk.data(), market.unit.data()}, nullptr, fx.data(), rule, n_accounts);

    std::mt19937_64 rng(42);
    std::uniform_int_distribution<std::int64_t> pick_account(0, static_cast<std::int64_t>(n_accounts) - 1);
    std::uniform_int_distribution<std::int32_t> pick_instrument(0, static_cast<std::int32_t>(n) - 1);
    std::uniform_int_distribution<int> lots(-10, 10);
    for (std::int64_t a = 0; a < static_cast<std::int64_t>(n_accounts); ++a)
        for (int k = 0; k < 4; ++k) book.add_fill(a, pick_instrument(rng), 0.1 * lots(rng));

    // The oracle: an account's IM from scratch, through the public pipeline on the current R.
    auto from_scratch = [&](std::int64_t a, double& scale) {
        const auto pos = book.positions(a);
        std::vector<std::int64_t> start{0, static_cast<std::int64_t>(pos.size())};
        std::vector<std::int32_t> ins;
        std::vector<double> qty;
        scale = 0.0;
        for (const auto& p : pos) {
            ins.push_back(p.instrument), qty.push_back(p.quantity);
            double row = 0.0;
            for (std::size_t s = 0; s < ns; ++s) row = std::max(row, std::abs(risk[static_cast<std::size_t>(p.instrument) * ns + s]));
            scale += std::abs(p.quantity) * row;
        }
        std::vector<double> pnl(2 * ns), loss(2);
        net({n, ns, 2, risk.data(), market.unit.data()}, {1, start.data(), ins.data(), qty.data()}, pnl.data());
        worst_loss(pnl.data(), 2, ns, nullptr, 1, rule.gain_factor, loss.data(), nullptr);
        return fx[0] * loss[0] + fx[1] * loss[1];
    };

    const int n_orders = 20000;
    std::vector<double> latency;
    latency.reserve(n_orders);
    int accepted = 0;
    double drift_scale = 1.0;
    for (int k = 0; k < n_orders; ++k) {
        const Order order{pick_account(rng), pick_instrument(rng), 0.1 * lots(rng)};
        const double equity = 2000.0 + 20.0 * static_cast<double>(order.account % 50);
        const auto t0 = std::chrono::steady_clock::now();
        const Check c = book.check(order, equity);
        const auto t1 = std::chrono::steady_clock::now();
        latency.push_back(std::chrono::duration<double, std::nano>(t1 - t0).count());
        if (!c.accepted) continue;
        ++accepted;
        book.add_fill(order);
        if (k % 50 == 0) {  // verify against the oracle
            double scale = 0.0;
            const double im = from_scratch(order.account, scale);
            const double tol = 1e-12 * std::max(scale, 1.0) * drift_scale;
            if (!(std::abs(book.margin(order.account).im - im) <= tol) || !(std::abs(c.after.im - im) <= tol)) {
                std::fprintf(stderr, "order %d: book %.17g what-if %.17g scratch %.17g\n", k,
                             book.margin(order.account).im, c.after.im, im);
                ++failures;
            }
        }
        if (k % 1000 == 999) {  // the market moves: re-revalue one underlying, P += Q * dR
            const std::int32_t u = (k / 1000) % 2;
            market.spot[static_cast<std::size_t>(u)] *= 1.0 + 0.01 * (static_cast<double>(k % 3) - 1.0);
            for (std::size_t i = 0; i < n; ++i)
                if (market.unit[i] == u) market.forward[i] = market.spot[static_cast<std::size_t>(u)] * (market.kind[i] == 0 ? 1.01 : 1.0);
            book.update_unit(u, market.instruments(), market.scenarios());
            revalue(market.instruments(), market.scenarios(), risk.data());  // the oracle's own copy
            drift_scale += 1.0;  // each incremental update may add its rounding to P
        }
    }
    // Bad input is refused and changes nothing.
    const Margin before = book.margin(0);
    try {
        book.what_if(0, static_cast<std::int32_t>(n), 1.0);
        ++failures;
    } catch (const UnknownId& e) {
        std::printf("refused as expected: %s\n", e.what());
    }
    try {
        book.add_fill(static_cast<std::int64_t>(n_accounts), 0, 1.0);
        ++failures;
    } catch (const InvalidInput& e) {
        std::printf("refused as expected: %s\n", e.what());
    }
    try {
        book.add_fill(0, 0, std::nan(""));
        ++failures;
    } catch (const InvalidInput& e) {
        std::printf("refused as expected: %s\n", e.what());
    }
    if (book.margin(0).im != before.im) ++failures;

    std::sort(latency.begin(), latency.end());
    std::printf("simd target %s; %d orders, %d accepted; check() latency incl. timer: median %.0f ns, p99 %.0f ns\n",
                simd_target().c_str(), n_orders, accepted, latency[latency.size() / 2],
                latency[latency.size() * 99 / 100]);
    if (failures) {
        std::printf("FAILED: %d mismatch(es)\n", failures);
        return 1;
    }
    std::printf("pre-trade check loop OK\n");
    return 0;
}
