// Internal: the add-on charges of the model book (book_impl.hpp), one (account, risk unit) pair at a
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

// One add-on's charge of a pair is a function (addon_finish) of up to three sums over its
// positions, each position adding pos[j] * max(q, 0) + neg[j] * max(-q, 0) to sum j: every add-on's
// per-position term is linear in q, |q|, max(q, 0) or max(-q, 0), and one of the two products is an
// exact zero, so each sum gets exactly the one product the term needs. The coefficients are the
// instrument's market values times the add-on's parameters of its unit (addon_term), recomputed
// whenever those change: the what-if path only multiplies and adds.
struct AddOnTerm {
    double pos[3] = {0.0, 0.0, 0.0};
    double neg[3] = {0.0, 0.0, 0.0};
};

AddOnTerm addon_term(const AddOnSpec& spec, const AddOnMarket& m, std::size_t instrument) noexcept;
double addon_finish(const AddOnSpec& spec, const AddOnMarket& m, std::size_t unit, const double* sums) noexcept;

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

}  // namespace marginkernel::detail
