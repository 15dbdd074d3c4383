// Internal: the SPAN delta-spread add-ons of the model book (book_impl.hpp). intra_spread is a charge
// per (account, risk unit) pair (calendar spreads on the pair's deltas per contract month);
// inter_spread is a credit that couples the pairs of one account (spreads across risk units on the
// deltas the intra add-on leaves, each leg credited rate n ratio wfpr). Semantics term by term as
// marginkernel.addons.spreads (IntraSpread.compute, InterSpread.compute, price_risk); docs/book.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "book_addons.hpp"
#include "marginkernel/book.hpp"

namespace marginkernel::detail {

// A pair's positions in instrument order, with a hypothetical position (instrument, quantity)
// replacing or joining them (instrument -1: none; quantity 0: that position is closed).
struct PositionRange {
    const Position* begin = nullptr;
    const Position* end = nullptr;
    std::int32_t instrument = -1;
    double quantity = 0.0;
};

// What the inter_spread add-ons read of one pair: per inter add-on, the month deltas it forms
// spreads on (those its `after` intra add-on left, else the pair's) and the weighted futures price
// risk per unit of net delta (wfpr = price risk / |net delta|, 0 when |net delta| <= 1e-9).
struct PairSpreads {
    std::vector<double> rest;  // [n_inter x n_months]
    std::vector<double> wfpr;  // [n_inter]
};

// A held pair of an account as the inter add-ons see it, in slot order.
struct SpreadPair {
    std::int32_t unit = 0;
    std::int64_t ukey = 0;
    const PairSpreads* state = nullptr;
    const double* stored = nullptr;  // the pair's committed charges (kMaxAddOns), null for a new pair
};

class SpreadModel {
public:
    // Checks the spread add-ons of `model` (InvalidInput naming "addons.<name>") and keeps what they
    // need: month codes, the intra scopes, per unit the time scenarios and each scenario's pair.
    SpreadModel(const BookModel& model, const BookMarketView& mv, const AddOnMarket& mk, std::size_t n_instruments,
                std::size_t n_scenarios);

    bool coupled() const noexcept { return !inter_.empty(); }  // inter_spread add-ons couple the pairs
    std::size_t n_inter() const noexcept { return inter_.size(); }
    std::size_t inter_addon(std::size_t j) const noexcept { return inter_[j]; }

    // Sizes a pair's state (so that pair_state does not allocate for it).
    void reserve(PairSpreads& st) const {
        st.rest.resize(inter_.size() * nm_);
        st.wfpr.resize(inter_.size());
    }
    // The intra_spread charges of one pair into out[k] (the other add-ons' entries are left alone).
    void intra_charges(const PositionRange& r, std::int32_t unit, double* out) const;
    // The pair's state for the inter add-ons (st is resized: no allocation once it has the size);
    // wpnl: the pair's weighted scenario P&L.
    void pair_state(const PositionRange& r, std::int32_t unit, const double* wpnl, PairSpreads& st) const;
    // Every inter add-on's credit to each of an account's held pairs: credit[p * n_inter + j].
    void inter_credits(const SpreadPair* pairs, std::size_t n, double* credit) const;

private:
    void month_deltas(const PositionRange& r, double* d) const;
    double form_intra(const AddOnSpec& a, double* d) const;
    double price_risk(std::int32_t unit, const double* wpnl, bool scan_only) const;
    void form_inter(const AddOnSpec& a, const SpreadPair* pairs, std::size_t n, std::size_t j, double* d,
                    double* credit) const;

    const BookModel& model_;
    const AddOnMarket& mk_;
    std::size_t nm_ = 0, ns_ = 0;
    std::vector<std::int32_t> month_;         // [n_instruments]
    std::vector<std::size_t> intra_, inter_;  // add-on indices
    std::vector<std::uint8_t> time_;          // [n_units x n_scenarios] 1: no price move (time risk)
    std::vector<std::int32_t> paired_;        // [n_units x n_scenarios] same move, opposite vol shift
};

}  // namespace marginkernel::detail
