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
    }
    return "?";
}

namespace {

constexpr int kFuture = 0, kPerpetual = 1, kCall = 2, kPut = 3, kSpot = 4;

bool is_option(int kind) noexcept { return kind == kCall || kind == kPut; }

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

double tiered(double x, const std::vector<std::pair<double, double>>& tiers) noexcept {
    double out = 0.0;
    for (std::size_t k = 0; k < tiers.size(); ++k) {
        const double start = tiers[k].first;
        const double end = k + 1 < tiers.size() ? tiers[k + 1].first : std::numeric_limits<double>::infinity();
        out += tiers[k].second * std::min(std::max(x - start, 0.0), end - start);
    }
    return out;
}

void AddOnAccumulator::add(std::int32_t instrument, double q) noexcept {
    const auto i = static_cast<std::size_t>(instrument);
    const int kind = m_.kind[i];
    const AddOnSpec& p = spec_;
    const std::size_t u = u_;
    switch (p.type) {
        case AddOnType::roll_shock:
            if (p.kinds & (1u << kind)) {
                // perpetuals and spot have no expiry: T = 0 (whatever placeholder the row holds)
                const double t = (kind == kPerpetual || kind == kSpot) ? 0.0 : std::max(m_.expiry[i], 0.0);
                const double move = std::max(p.min_annualised_move[u], p.annualised_move_risk[u] * t);
                a_ += std::abs(q) * m_.notional[i] * move;
            }
            break;
        case AddOnType::delta_shock: a_ += q * m_.delta[i]; break;
        case AddOnType::short_option_minimum: {
            if (!is_option(kind)) break;
            const double per = p.notional_basis ? m_.notional[i] : (p.usd ? 1.0 / m_.unit_fx[u] : 1.0);
            const double amount = std::max(-q, 0.0) * p.rate[u] * per;
            (kind == kCall ? a_ : b_) += amount;
            break;
        }
        case AddOnType::per_contract_minimum:
            if (p.kinds & (1u << kind)) {
                const double size = p.notional_basis ? m_.notional[i]
                                                     : m_.multiplier[i] * (p.usd ? 1.0 / m_.unit_fx[u] : 1.0);
                a_ += std::abs(q) * p.rate[u] * size;
            }
            break;
        case AddOnType::concentration: {
            const double d = q * m_.delta[i];
            a_ += p.gross_delta ? std::abs(d) : d;
            break;
        }
        case AddOnType::contingency:
            if (is_option(kind) && (!p.short_only || q < 0)) a_ += std::abs(q) * m_.notional[i] * p.option_rate[u];
            if (kind == kFuture || kind == kPerpetual) {
                if (q > 0) b_ += q * m_.notional[i];
                if (q < 0) c_ += -q * m_.notional[i];
            }
            break;
    }
}

double AddOnAccumulator::finish() const noexcept {
    const AddOnSpec& p = spec_;
    const std::size_t u = u_;
    switch (p.type) {
        case AddOnType::roll_shock: return a_;
        case AddOnType::delta_shock:
            return p.shock[u] * std::max(std::abs(a_) * m_.unit_spot[u] - p.threshold[u], 0.0) / m_.unit_fx[u];
        case AddOnType::short_option_minimum: return p.max_method ? std::max(a_, b_) : a_ + b_;
        case AddOnType::per_contract_minimum:
            if (p.tiers.empty()) return a_;
            return tiered(a_ * m_.unit_fx[u], p.tiers) / m_.unit_fx[u];
        case AddOnType::concentration:
            return tiered((p.gross_delta ? a_ : std::abs(a_)) * m_.unit_spot[u], p.tiers) / m_.unit_fx[u];
        case AddOnType::contingency: return a_ + p.future_rate[u] * std::min(b_, c_);
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
