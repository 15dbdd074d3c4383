// Internal: evaluation of the model book's nodes (book_impl.hpp): orders as Hypos, the add-on sums
// and charges of a pair, a node's requirement from its scan and charges, the nodes of isolated and
// cross mode (with an order applied or not), the account totals and the what-if. A what-if and the
// fill it predicts run these same functions: their figures agree bit for bit. Inline, included by
// the sources that evaluate nodes (book_eval.cpp, book_fill.cpp).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "book_coupling-inl.hpp"
#include "book_impl.hpp"
#include "book_measure-inl.hpp"
#include "kernels.hpp"

namespace marginkernel {

inline void ModelBook::Impl::require_order(std::int32_t i, double q) const {
    require_instrument(i);
    require_finite("quantity", -1, q);
    if (expired(static_cast<std::size_t>(i)))
        throw InvalidInput("instrument", i, "has expired (expiry " + show(mk.expiry[static_cast<std::size_t>(i)]) +
                                                " years); orders on it are refused");
    if (std::abs(q) * risk_max[static_cast<std::size_t>(i)] > kMaxPnl)
        throw InvalidInput("quantity", -1, show(q) + " is too large for instrument " + std::to_string(i) +
                                               ": |quantity| * max|R| exceeds 1e300");
}

inline Hypo ModelBook::Impl::make_hypo(const Account& acc, std::int32_t i, double q) const {
    Hypo h;
    h.instrument = i;
    h.unit = mk.unit[static_cast<std::size_t>(i)];
    h.ukey = ukey_of(h.unit);
    h.q = q;
    h.slot = find_slot(acc, h.ukey, &h.insert);
    double q_old = 0.0;
    std::size_t count = 0;
    if (h.slot >= 0) {
        const auto& pos = acc.slots[static_cast<std::size_t>(h.slot)].positions;
        count = pos.size();
        const auto it = std::lower_bound(pos.begin(), pos.end(), i,
                                         [](const Position& p, std::int32_t x) { return p.instrument < x; });
        if (it != pos.end() && it->instrument == i) {
            q_old = it->quantity;
            --count;
        }
    }
    h.q_old = q_old;
    h.q_new = q_old + q;
    if (!std::isfinite(h.q_new)) throw InvalidInput("quantity", -1, "the position would overflow");
    if (std::abs(h.q_new) * risk_max[static_cast<std::size_t>(i)] > kMaxPnl)
        throw InvalidInput("quantity", -1, "the position in instrument " + std::to_string(i) +
                                               " would exceed |quantity| * max|R| = 1e300");
    h.slot_empty = count == 0 && h.q_new == 0.0;
    return h;
}

inline void ModelBook::Impl::check_finite(const AccountMargin& t, const char* what) {
    bool ok = std::isfinite(t.im) && std::isfinite(t.mm) && std::isfinite(t.scan_risk);
    if (!ok) throw InvalidInput("quantity", -1, std::string(what) + ": the margin would not be finite (inputs too large)");
}

// Moves each add-on's sums (sums[3k + j]) from a position of q_old in instrument i to one of
// q_new: adds term(q_new) - term(q_old) (book_addons.hpp).
inline void ModelBook::Impl::move_sums(std::int32_t i, double q_old, double q_new, double* sums) const noexcept {
    const double new_long = std::max(q_new, 0.0), new_short = std::max(-q_new, 0.0);
    const double old_long = std::max(q_old, 0.0), old_short = std::max(-q_old, 0.0);
    const AddOnTerm* t = terms.data() + static_cast<std::size_t>(i) * n_addons;
    for (std::size_t k = 0; k < n_addons; ++k)
        for (int j = 0; j < 3; ++j)
            sums[3 * k + j] += (t[k].pos[j] * new_long + t[k].neg[j] * new_short) -
                               (t[k].pos[j] * old_long + t[k].neg[j] * old_short);
}


// The sums of positions [begin, end), in instrument order.
inline void ModelBook::Impl::position_sums(const Position* begin, const Position* end, double* sums) const noexcept {
    std::fill(sums, sums + 3 * n_addons, 0.0);
    for (const Position* p = begin; p != end; ++p) move_sums(p->instrument, 0.0, p->quantity, sums);
}


// The sums of the order's slot after it (s: the slot, or null when the unit is new), exactly as
// the fill stores them: the slot's sums moved by the order, zero when the slot is emptied.
inline void ModelBook::Impl::sums_after(const Slot* s, const Hypo& h, double* sums) const noexcept {
    if (s)
        std::copy(s->sums.begin(), s->sums.begin() + static_cast<std::ptrdiff_t>(3 * n_addons), sums);
    else
        std::fill(sums, sums + 3 * n_addons, 0.0);
    if (h.slot_empty)
        std::fill(sums, sums + 3 * n_addons, 0.0);
    else
        move_sums(h.instrument, h.q_old, h.q_new, sums);
}


// Each add-on's charge of a pair of unit `unit` from its sums; the SPAN intra-commodity charges
// from its positions (the order's merged in), whose month deltas they form spreads on.
inline void ModelBook::Impl::pair_charges(const double* sums, std::int32_t unit, const PositionRange& positions, double* out) const {
    for (std::size_t k = 0; k < n_addons; ++k)
        out[k] = addon_finish(model.addons[k], mk, static_cast<std::size_t>(unit), sums + 3 * k);
    if (spreads) spreads->intra_charges(positions, unit, out);  // SPAN hook
}


// Combines scan and charges into requirement and contributions (engine.margin, per node).
inline void ModelBook::Impl::finish_node(NodeState& n) const noexcept {
    double adds = 0.0, credits = 0.0, top_floor = 0.0;
    int binding = -1;
    for (std::size_t k = 0; k < n_addons; ++k) {
        const double c = n.m.charges[k];
        switch (combine[k]) {
            case Combine::add: adds += c; break;
            case Combine::credit: credits += c; break;
            case Combine::floor:
                if (binding < 0 || c > top_floor) {
                    top_floor = c;
                    binding = static_cast<int>(k);
                }
                break;
        }
    }
    const double base = n.m.scan + adds;
    const double applied = std::min(credits, base);
    const double net = base - applied;
    const double uplift = std::max(top_floor - net, 0.0);
    n.m.requirement = net + uplift;
    const double share = credits > 0 ? applied / credits : 0.0;
    for (std::size_t k = 0; k < n_addons; ++k) {
        const Combine c = combine[k];
        n.contrib[k] = c == Combine::add ? n.m.charges[k] : c == Combine::credit ? -n.m.charges[k] * share : 0.0;
    }
    if (binding >= 0) n.contrib[static_cast<std::size_t>(binding)] += uplift;
}

// Isolated mode: the node of one position.
inline NodeState ModelBook::Impl::position_node(std::int64_t ukey, std::int32_t i, double q) const {
    NodeState n;
    n.key = node_key(ukey, i);
    const auto u = mk.unit[static_cast<std::size_t>(i)];
    const auto c = unit_currency[static_cast<std::size_t>(u)];
    n.m.unit = u;
    n.m.instrument = i;
    if (model.netting == Netting::currency) n.m.currency = c;
    const double* r = wrisk_of(static_cast<std::size_t>(i));
    double* v = scratch(stride);
    std::fill(v, v + ns, 0.0);
    active_kernels().whatif_fill(v, r, q, ns);  // q * W[i], as a fill computes it
    const double ufx = mk.unit_fx[static_cast<std::size_t>(u)];
    if (model.netting == Netting::account) {
        const double cfx = currency_fx[static_cast<std::size_t>(c)];
        for (std::size_t s = 0; s < ns; ++s) v[s] *= cfx;
        n.m.fx = 1.0;
    } else {
        n.m.fx = model.netting == Netting::currency ? currency_fx[static_cast<std::size_t>(c)] : ufx;
    }
    n.m.scan = measure_one(v, zeros.get(), 0.0, &n.m.worst_scenario);
    double sums[3 * kMaxAddOns], charge[kMaxAddOns];
    std::fill(sums, sums + 3 * n_addons, 0.0);
    move_sums(i, 0.0, q, sums);
    const Position one{i, q};
    pair_charges(sums, u, range_of(&one, &one + 1, nullptr), charge);
    for (std::size_t k = 0; k < n_addons; ++k) n.m.charges[k] = charge[k] * ufx / n.m.fx;
    finish_node(n);
    return n;
}

// Key, unit or currency and FX of a node whose first child is of unit `unit`; n is a default
// NodeState (every caller's own).
inline void ModelBook::Impl::node_header(NodeState& n, std::int64_t key, std::int32_t unit) const noexcept {
    n.key = key;
    if (model.netting == Netting::risk_unit) {
        n.m.unit = unit;
        n.m.fx = mk.unit_fx[static_cast<std::size_t>(unit)];
    } else if (model.netting == Netting::currency) {
        n.m.currency = static_cast<std::int32_t>(key);
        n.m.fx = currency_fx[static_cast<std::size_t>(key)];
    }
}

// Whether the order's unit is the only one the account holds in the node of unit keys [lo, hi):
// the slots next to the order's (or to where it would go) are outside.
inline bool ModelBook::Impl::alone_in_node(const Account& acc, const Hypo& h, std::int64_t lo, std::int64_t hi) noexcept {
    const int before = (h.slot >= 0 ? h.slot : h.insert) - 1;
    const int after = h.slot >= 0 ? h.slot + 1 : h.insert;
    const int n = static_cast<int>(acc.slots.size());
    return (before < 0 || acc.slots[static_cast<std::size_t>(before)].ukey < lo) &&
           (after >= n || acc.slots[static_cast<std::size_t>(after)].ukey >= hi);
}

// cross_node when the order's unit is the node's only one (risk-unit netting, or a currency
// with one unit held): the same arithmetic as the general case for one child, without
// gathering children. The fill's refresh takes the general case and gets the same bits.
inline bool ModelBook::Impl::hypo_only_node(const Account& acc, std::int64_t key, const Hypo& h, NodeState& n) const {
    if (h.slot_empty) return false;
    const Slot* s = h.slot >= 0 ? &acc.slots[static_cast<std::size_t>(h.slot)] : nullptr;
    double sums[3 * kMaxAddOns], charge[kMaxAddOns];
    sums_after(s, h, sums);
    const Position* pb = s ? s->positions.data() : nullptr;
    pair_charges(sums, h.unit, range_of(pb, s ? pb + s->positions.size() : nullptr, &h), charge);
    node_header(n, key, h.unit);
    n.m.scan = measure_one(s ? s->wpnl.get() : zeros.get(), wrisk_of(static_cast<std::size_t>(h.instrument)), h.q,
                           &n.m.worst_scenario);
    const double ufx = mk.unit_fx[static_cast<std::size_t>(h.unit)];
    for (std::size_t j = 0; j < n_addons; ++j) {
        n.m.charges[j] += charge[j] * ufx;
        n.m.charges[j] /= n.m.fx;
    }
    finish_node(n);
    return true;
}

// The unit keys [lo, hi) of the slots of cross-mode node `key`.
inline void ModelBook::Impl::node_ukeys(std::int64_t key, std::int64_t& lo, std::int64_t& hi) const noexcept {
    lo = 0;
    hi = std::numeric_limits<std::int64_t>::max();
    if (model.netting == Netting::risk_unit) {
        lo = key;
        hi = key + 1;
    } else if (model.netting == Netting::currency) {
        lo = key * static_cast<std::int64_t>(nu);
        hi = lo + static_cast<std::int64_t>(nu);
    }
}

// Cross mode: the node `key` of an account, with the Hypo applied when given. Returns false
// when the node holds no position.
inline bool ModelBook::Impl::cross_node(const Account& acc, std::int64_t key, const Hypo* h, NodeState& n) const {
    // children: slots of the node in order, with the Hypo's slot replaced or inserted
    std::int64_t lo = 0, hi = 0;
    node_ukeys(key, lo, hi);
    const bool in_node = h && h->ukey >= lo && h->ukey < hi;
    if (in_node && model.netting != Netting::account && alone_in_node(acc, *h, lo, hi))
        return hypo_only_node(acc, key, *h, n);
    int b = 0, e = 0;
    find_slot(acc, lo, &b);
    find_slot(acc, hi, &e);
    constexpr int kStack = 32;
    NodeChild stack[kStack];
    std::vector<NodeChild> heap;  // only for nodes of more than 31 units (allocates)
    const int cap = (e - b) + 1;
    NodeChild* ch = stack;
    if (cap > kStack) {
        heap.resize(static_cast<std::size_t>(cap));
        ch = heap.data();
    }
    int nch = 0;
    double hcharge[kMaxAddOns] = {};
    const double* hp = nullptr;
    if (in_node && !h->slot_empty) {
        const Slot* s = h->slot >= 0 ? &acc.slots[static_cast<std::size_t>(h->slot)] : nullptr;
        double sums[3 * kMaxAddOns];
        sums_after(s, *h, sums);
        const Position* pb = s ? s->positions.data() : nullptr;
        pair_charges(sums, h->unit, range_of(pb, s ? pb + s->positions.size() : nullptr, h), hcharge);
        hp = s ? s->wpnl.get() : zeros.get();
    }
    bool hypo_done = !in_node;
    const double* hr = h ? wrisk_of(static_cast<std::size_t>(h->instrument)) : nullptr;
    double* hv = nullptr;  // hypothetical Pw of the order's unit (multi-child nodes)
    auto push_hypo = [&] {
        hypo_done = true;
        if (h->slot_empty) return;
        ch[nch++] = NodeChild{hp, h->unit, currency_of_key(h->ukey), hcharge};
    };
    for (int k = b; k < e; ++k) {
        const Slot& s = acc.slots[static_cast<std::size_t>(k)];
        if (!hypo_done && h->ukey <= s.ukey) {
            push_hypo();
            if (h->ukey == s.ukey) continue;
        }
        if (s.positions.empty()) continue;
        ch[nch++] = NodeChild{s.wpnl.get(), s.unit, currency_of_key(s.ukey), s.charge.data()};
    }
    if (!hypo_done) push_hypo();
    if (nch == 0) return false;

    node_header(n, key, ch[0].unit);
    const bool hypo_child = in_node && !h->slot_empty;
    if (nch == 1 && model.netting != Netting::account) {
        // one child: its P&L as it is (engine: a group of one keeps its child's P&L)
        if (hypo_child)
            n.m.scan = measure_one(hp, hr, h->q, &n.m.worst_scenario);
        else
            n.m.scan = measure_one(ch[0].p, zeros.get(), 0.0, &n.m.worst_scenario);
    } else {
        if (hypo_child) {  // the hypothetical Pw, rounded exactly as the fill rounds it
            hv = scratch(stride);
            std::copy(hp, hp + ns, hv);
            active_kernels().whatif_fill(hv, hr, h->q, ns);
            for (int k = 0; k < nch; ++k)
                if (ch[k].p == hp && ch[k].charge == hcharge) ch[k].p = hv;
        }
        n.m.scan = multi_scan(ch, nch, key, &n.m.worst_scenario);
    }
    for (int k = 0; k < nch; ++k) {
        const double ufx = mk.unit_fx[static_cast<std::size_t>(ch[k].unit)];
        for (std::size_t j = 0; j < n_addons; ++j) n.m.charges[j] += ch[k].charge[j] * ufx;
    }
    for (std::size_t j = 0; j < n_addons; ++j) n.m.charges[j] /= n.m.fx;
    finish_node(n);
    return true;
}

// The account's totals from its nodes, with node `sub` (key sub_key; absent when sub is null)
// substituted for the stored one. A what-if leaves the add-on components out (zero): no
// figure it reports depends on them.
inline AccountMargin ModelBook::Impl::totals(const Account& acc, std::int64_t sub_key, const NodeState* sub, bool has_sub,
                                                   bool components) const noexcept {
    AccountMargin t;
    double best_usd = 0.0;
    auto add = [&](const NodeState& n) {
        const double scale = n.m.fx / report_fx;
        t.risk += n.m.requirement * scale;
        t.scan_risk += n.m.scan * scale;
        if (components)
            for (std::size_t k = 0; k < n_addons; ++k) t.components[k] += n.contrib[k] * scale;
        const double usd = n.m.scan * n.m.fx;
        if (usd > best_usd) {
            best_usd = usd;
            t.worst_scenario = n.m.worst_scenario;
            t.worst_node = model.netting == Netting::risk_unit  ? n.m.unit
                           : model.netting == Netting::currency ? n.m.currency
                                                                : 0;
        }
    };
    bool done = !has_sub;
    for (const NodeState& n : acc.nodes) {
        if (!done && sub_key <= n.key) {
            done = true;
            if (sub) add(*sub);
            if (sub_key == n.key) continue;
        }
        add(n);
    }
    if (!done && sub) add(*sub);
    t.im = model.im_factor * t.risk;
    t.mm = model.mm_factor * t.risk;
    if (acc.has_collateral) {
        t.equity = acc.equity;
        t.available = t.equity - t.im;
        t.margin_ratio = t.mm == 0 ? 0.0 : (t.equity > 0 ? t.mm / t.equity : kInf);
        t.liquidation = t.equity < t.mm;
    }
    return t;
}

// The node an order touches, evaluated with the order (has = false: the node is gone).
inline NodeState ModelBook::Impl::hypo_node(const Account& acc, const Hypo& h, bool& has) const {
    NodeState n;
    if (isolated()) {
        has = h.q_new != 0.0;
        if (has) n = position_node(h.ukey, h.instrument, h.q_new);
        else n.key = node_key(h.ukey, h.instrument);
        return n;
    }
    const std::int64_t key = node_key(h.ukey, h.instrument);
    has = cross_node(acc, key, &h, n);
    n.key = key;
    return n;
}

inline ModelWhatIf ModelBook::Impl::what_if(const Account& acc, std::int32_t i, double q) const {
    const Hypo h = make_hypo(acc, i, q);
    bool has = false;
    const NodeState n = hypo_node(acc, h, has);
    const AccountMargin t = coupled() ? spread_totals(acc, h, n, has)  // SPAN hook: credits move other nodes
                                      : totals(acc, n.key, has ? &n : nullptr, true, false);
    check_finite(t, "what_if");
    return ModelWhatIf{t.im, t.mm, acc.total.im, t.available, t.worst_scenario};
}

}  // namespace marginkernel
