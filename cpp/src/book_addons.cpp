// The add-ons the model book holds per (account, risk unit) pair (book_addons.hpp). Each mirrors
// the NumPy definition in marginkernel.addons term by term; tests/test_book.py holds the book to the
// Engine to 1e-9 relative on every preset and on generated models.
#include "book_addons.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "marginkernel/revalue.hpp"

namespace marginkernel {

Combine combine_of(AddOnType type) noexcept {
    switch (type) {
        case AddOnType::short_option_minimum:
        case AddOnType::per_contract_minimum: return Combine::floor;
        case AddOnType::inter_spread: return Combine::credit;
        default: return Combine::add;
    }
}

const char* addon_type_name(AddOnType type) noexcept {
    switch (type) {
        case AddOnType::roll_shock: return "roll_shock";
        case AddOnType::delta_shock: return "delta_shock";
        case AddOnType::short_option_minimum: return "short_option_minimum";
        case AddOnType::per_contract_minimum: return "per_contract_minimum";
        case AddOnType::concentration: return "concentration";
        case AddOnType::contingency: return "contingency";
        case AddOnType::intra_spread: return "intra_spread";
        case AddOnType::inter_spread: return "inter_spread";
    }
    return "?";
}

namespace {

using detail::is_option;
using detail::kCall;
using detail::kPerpetual;
using detail::kSpot;

// Contract size in units of the underlying (addons.instrument_units).
double units_of(int kind, int settlement, double multiplier, double forward) noexcept {
    return (is_option(kind) || settlement == 0) ? multiplier : multiplier / forward;
}

// Black-76 forward delta times the multiplier (addons.instrument_deltas).
double delta_of(int kind, int settlement, double multiplier, double forward, double strike, double vol,
                double expiry, double discount) noexcept {
    const double units = units_of(kind, settlement, multiplier, forward);
    if (!is_option(kind)) return (kind == kSpot && settlement == 1) ? 0.0 : units;
    const double t = std::max(expiry, 0.0);
    const double sd = vol * std::sqrt(t);
    double d1;
    if (sd > 0) {
        d1 = (std::log(forward / strike) + 0.5 * sd * sd) / sd;
    } else {
        const double sign = forward > strike ? 1.0 : (forward < strike ? -1.0 : 0.0);
        d1 = sign * std::numeric_limits<double>::infinity();  // 0 * inf = NaN -> N = 0.5
    }
    double n1 = 0.5;
    if (!std::isnan(d1)) {
        const double x = std::isinf(d1) ? (d1 > 0 ? 40.0 : -40.0) : d1;
        normal_cdf(&x, &n1, 1);
    }
    return multiplier * discount * (kind == kCall ? n1 : n1 - 1.0);
}

}  // namespace

namespace detail {

void refresh_instrument(AddOnMarket& m, std::size_t i, double strike, double vol, double discount) {
    const int k = m.kind[i], st = m.settlement[i];
    const double units = units_of(k, st, m.multiplier[i], m.forward[i]);
    m.notional[i] = st == 0 ? units * m.forward[i] : units;
    m.delta[i] = delta_of(k, st, m.multiplier[i], m.forward[i], strike, vol, m.expiry[i], discount);
}

AddOnTerm addon_term(const AddOnSpec& p, const AddOnMarket& m, std::size_t i) noexcept {
    AddOnTerm t;
    const int kind = m.kind[i];
    const auto u = static_cast<std::size_t>(m.unit[i]);
    const auto both = [&t](int j, double c) { t.pos[j] = c, t.neg[j] = c; };         // c |q|
    const auto linear = [&t](int j, double c) { t.pos[j] = c, t.neg[j] = -c; };      // c q
    switch (p.type) {
        case AddOnType::roll_shock:
            if (p.kinds & (1u << kind)) {
                // perpetuals and spot have no expiry: T = 0 (whatever placeholder the row holds)
                const double years = (kind == kPerpetual || kind == kSpot) ? 0.0 : std::max(m.expiry[i], 0.0);
                both(0, m.notional[i] * std::max(p.min_annualised_move[u], p.annualised_move_risk[u] * years));
            }
            break;
        case AddOnType::delta_shock: linear(0, m.delta[i]); break;
        case AddOnType::short_option_minimum:
            if (is_option(kind)) {  // short calls into sum 0, short puts into sum 1
                const double per = p.notional_basis ? m.notional[i] : (p.usd ? 1.0 / m.unit_fx[u] : 1.0);
                t.neg[kind == kCall ? 0 : 1] = p.rate[u] * per;
            }
            break;
        case AddOnType::per_contract_minimum:
            if (p.kinds & (1u << kind))
                both(0, p.rate[u] * (p.notional_basis ? m.notional[i]
                                                      : m.multiplier[i] * (p.usd ? 1.0 / m.unit_fx[u] : 1.0)));
            break;
        case AddOnType::concentration:
            if (p.gross_delta)
                both(0, std::abs(m.delta[i]));
            else
                linear(0, m.delta[i]);
            break;
        case AddOnType::contingency:
            if (is_option(kind)) {
                const double c = m.notional[i] * p.option_rate[u];
                if (p.short_only)
                    t.neg[0] = c;
                else
                    both(0, c);
            }
            if (kind == kFuture || kind == kPerpetual) {  // long notional into sum 1, short into sum 2
                t.pos[1] = m.notional[i];
                t.neg[2] = m.notional[i];
            }
            break;
        case AddOnType::intra_spread:  // formed on the pair's month deltas (book_spreads.hpp)
        case AddOnType::inter_spread: break;
    }
    return t;
}

double addon_finish(const AddOnSpec& p, const AddOnMarket& m, std::size_t u, const double* sums) noexcept {
    const double a = sums[0], b = sums[1], c = sums[2];
    switch (p.type) {
        case AddOnType::roll_shock: return a;
        case AddOnType::delta_shock:
            return p.shock[u] * std::max(std::abs(a) * m.unit_spot[u] - p.threshold[u], 0.0) / m.unit_fx[u];
        case AddOnType::short_option_minimum: return p.max_method ? std::max(a, b) : a + b;
        case AddOnType::per_contract_minimum:
            if (p.tiers.empty()) return a;
            return tiered(a * m.unit_fx[u], p.tiers) / m.unit_fx[u];
        case AddOnType::concentration:
            return tiered((p.gross_delta ? a : std::abs(a)) * m.unit_spot[u], p.tiers) / m.unit_fx[u];
        case AddOnType::contingency: return a + p.future_rate[u] * std::min(b, c);
        case AddOnType::intra_spread:  // book_spreads.hpp
        case AddOnType::inter_spread: return 0.0;
    }
    return 0.0;
}

}  // namespace detail

void instrument_deltas(const InstrumentsView& in, double* out) {
    for (std::size_t i = 0; i < in.n; ++i)
        out[i] = delta_of(in.kind[i], in.settlement[i], in.multiplier[i], in.forward[i], in.strike ? in.strike[i] : 0.0,
                          in.vol ? in.vol[i] : 0.0, in.expiry ? in.expiry[i] : 0.0,
                          in.discount ? in.discount[i] : 1.0);
}

}  // namespace marginkernel
