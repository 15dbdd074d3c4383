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

}  // namespace detail

void instrument_deltas(const InstrumentsView& in, double* out) {
    for (std::size_t i = 0; i < in.n; ++i)
        out[i] = delta_of(in.kind[i], in.settlement[i], in.multiplier[i], in.forward[i], in.strike ? in.strike[i] : 0.0,
                          in.vol ? in.vol[i] : 0.0, in.expiry ? in.expiry[i] : 0.0,
                          in.discount ? in.discount[i] : 1.0);
}

}  // namespace marginkernel
