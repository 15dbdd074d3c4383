// Internal: SPAN delta spreads in the model book (book_impl.hpp, book_spreads.hpp, docs/book.md).
// intra_spread is a pair charge (pair_charges). inter_spread credits couple an account's pairs: an
// order re-forms the account's spreads, and every node whose credit changes (and the order's node)
// is re-finished, by the same functions in what-if (spread_totals) and fill (spread_commit).
// Inline, included by book_nodes-inl.hpp.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "book_impl.hpp"
#include "kernels.hpp"

namespace marginkernel {

// The account's held pairs in slot order (the Hypo's pair replaced or inserted, its state in
// s.hypo), every inter add-on's credit to each and the nodes whose credits change, into s.
inline void ModelBook::Impl::spread_pairs(const Account& acc, const Hypo* h, SpreadScratch& s) const {
    s.pairs.clear();
    bool done = h == nullptr;
    const auto push_hypo = [&] {
        done = true;
        if (!h->slot_empty) s.pairs.push_back(SpreadPair{h->unit, h->ukey, &s.hypo, nullptr});
    };
    for (const Slot& slot : acc.slots) {
        if (!done && h->ukey <= slot.ukey) {
            push_hypo();
            if (h->ukey == slot.ukey) continue;
        }
        if (!slot.positions.empty())
            s.pairs.push_back(SpreadPair{slot.unit, slot.ukey, &slot.spread, slot.charge.data()});
    }
    if (!done) push_hypo();
    const std::size_t n_inter = spreads->n_inter();
    if (s.credit.size() < s.pairs.size() * n_inter) s.credit.resize(s.pairs.size() * n_inter);
    spreads->inter_credits(s.pairs.data(), s.pairs.size(), s.credit.data());
    s.changed.clear();
    s.changed.reserve(s.pairs.size());  // at most one node per pair: warm once, never grows after
    for (std::size_t p = 0; p < s.pairs.size(); ++p) {
        bool diff = s.pairs[p].stored == nullptr;
        for (std::size_t j = 0; j < n_inter; ++j)
            diff = diff || s.credit[p * n_inter + j] != s.pairs[p].stored[spreads->inter_addon(j)];
        const std::int64_t key = node_key(s.pairs[p].ukey, 0);
        if (diff && (s.changed.empty() || s.changed.back() != key)) s.changed.push_back(key);
    }
}

// Node n's inter_spread charges re-summed from s.credit over its pairs in slot order (as
// cross_node sums charges), then the node re-finished.
inline void ModelBook::Impl::spread_patch(NodeState& n, const SpreadScratch& s) const {
    const std::size_t n_inter = spreads->n_inter();
    for (std::size_t j = 0; j < n_inter; ++j) {
        double c = 0.0;
        for (std::size_t p = 0; p < s.pairs.size(); ++p)
            if (node_key(s.pairs[p].ukey, 0) == n.key)
                c += s.credit[p * n_inter + j] * mk.unit_fx[static_cast<std::size_t>(s.pairs[p].unit)];
        n.m.charges[spreads->inter_addon(j)] = c / n.m.fx;
    }
    finish_node(n);
}

// What-if: the account's totals after the order, node n (the order's, from hypo_node) substituted
// and every node whose credits change re-finished.
inline AccountMargin ModelBook::Impl::spread_totals(const Account& acc, const Hypo& h, const NodeState& n, bool has) const {
    SpreadScratch& s = spread_scratch();
    if (!h.slot_empty) {  // the order's pair: Pw + q W[i] rounded as the fill stores it
        if (s.pw_size < stride) {
            s.pw = make_buffer(stride);
            s.pw_size = stride;
        }
        const Slot* slot = h.slot >= 0 ? &acc.slots[static_cast<std::size_t>(h.slot)] : nullptr;
        const double* from = slot ? slot->wpnl.get() : zeros.get();
        std::copy(from, from + ns, s.pw.get());
        active_kernels().whatif_fill(s.pw.get(), wrisk_of(static_cast<std::size_t>(h.instrument)), h.q, ns);
        const Position* b = slot ? slot->positions.data() : nullptr;
        spreads->pair_state(range_of(b, slot ? b + slot->positions.size() : nullptr, &h), h.unit, s.pw.get(),
                            s.hypo);
    }
    spread_pairs(acc, &h, s);
    Account& t = s.acc;
    t.nodes.clear();
    const auto put = [&](const NodeState& x) {
        t.nodes.push_back(x);
        if (x.key == n.key || has_key(s.changed, x.key)) spread_patch(t.nodes.back(), s);
    };
    bool done = false;
    for (const NodeState& x : acc.nodes) {
        if (!done && n.key <= x.key) {
            done = true;
            if (has) put(n);
            if (n.key == x.key) continue;
        }
        put(x);
    }
    if (!done && has) put(n);
    t.has_collateral = acc.has_collateral;
    t.equity = acc.equity;
    return totals(t, 0, nullptr, false);
}

// Fill (k: the order's slot, order_key its node) or recompute (k = -1, every slot): the pairs'
// spread states and credits committed to their charges; a fill re-finishes the order's node and
// those whose credits changed (a recompute builds its nodes next).
inline void ModelBook::Impl::spread_commit(Account& acc, int k, std::int64_t order_key) const {
    SpreadScratch& s = spread_scratch();
    for (std::size_t x = 0; x < acc.slots.size(); ++x) {
        Slot& slot = acc.slots[x];
        if ((k < 0 || static_cast<int>(x) == k) && !slot.positions.empty()) {
            const Position* b = slot.positions.data();
            spreads->pair_state(range_of(b, b + slot.positions.size(), nullptr), slot.unit, slot.wpnl.get(),
                                slot.spread);
        }
    }
    spread_pairs(acc, nullptr, s);
    const std::size_t n_inter = spreads->n_inter();
    std::size_t p = 0;
    for (Slot& slot : acc.slots) {
        for (std::size_t j = 0; j < n_inter; ++j)
            slot.charge[spreads->inter_addon(j)] = slot.positions.empty() ? 0.0 : s.credit[p * n_inter + j];
        if (!slot.positions.empty()) ++p;
    }
    if (k < 0) return;
    for (NodeState& x : acc.nodes)
        if (x.key == order_key || has_key(s.changed, x.key)) spread_patch(x, s);
}

}  // namespace marginkernel
