// Internal: the add-on charges of the model book (book.cpp), one (account, risk unit) pair at a
// time, in the unit's settlement currency. Semantics as marginkernel.addons (docs/models.md).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>
#include <algorithm>
#include <cmath>
#include <limits>

#include "marginkernel/book.hpp"

namespace marginkernel::detail {

// Per-instrument and per-unit market values the add-ons read.
struct AddOnMarket {
    std::vector<std::int8_t> kind, settlement;
    std::vector<std::int32_t> unit;
    std::vector<double> multiplier, forward, expiry, delta, notional;
    std::vector<double> unit_spot, unit_fx;
};

// Recomputes delta and notional of instruments [begin, end) from kind, settlement, multiplier,
// forward and the given strike / vol / expiry / discount columns.
void refresh_instrument(AddOnMarket& m, std::size_t i, double strike, double vol, double discount);

// Accumulates one position of an add-on's pair; `finish` gives the charge.
class AddOnAccumulator {
public:
    AddOnAccumulator(const AddOnSpec& spec, const AddOnMarket& m, std::int32_t unit) noexcept
        : spec_(spec), m_(m), u_(static_cast<std::size_t>(unit)) {}
    void add(std::int32_t instrument, double quantity) noexcept;
    double finish() const noexcept;

private:
    const AddOnSpec& spec_;
    const AddOnMarket& m_;
    std::size_t u_;
    double a_ = 0.0, b_ = 0.0, c_ = 0.0;
};



// Inline: called per position per add-on on the what-if path.
constexpr int kFuture = 0, kPerpetual = 1, kCall = 2, kPut = 3, kSpot = 4;
inline bool is_option(int kind) noexcept { return kind == kCall || kind == kPut; }

inline double tiered(double x, const std::vector<std::pair<double, double>>& tiers) noexcept {
    double out = 0.0;
    for (std::size_t k = 0; k < tiers.size(); ++k) {
        const double start = tiers[k].first;
        const double end = k + 1 < tiers.size() ? tiers[k + 1].first : std::numeric_limits<double>::infinity();
        out += tiers[k].second * std::min(std::max(x - start, 0.0), end - start);
    }
    return out;
}

inline void AddOnAccumulator::add(std::int32_t instrument, double q) noexcept {
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
        case AddOnType::intra_spread:  // book_spreads.hpp: formed on the pair's month deltas
        case AddOnType::inter_spread: break;
    }
}

inline double AddOnAccumulator::finish() const noexcept {
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
        case AddOnType::intra_spread:  // book_spreads.hpp
        case AddOnType::inter_spread: return 0.0;
    }
    return 0.0;
}


}  // namespace marginkernel::detail
