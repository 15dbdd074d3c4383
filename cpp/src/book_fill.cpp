// Fills in the model book (book_impl.hpp): one order committed (apply_fill, then the touched node
// refreshed through the same evaluation as its what-if), bulk fills staged and recomputed, and the
// recomputation of an account from its positions (rebuild, market refresh, bulk load).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <vector>

#include "book_impl.hpp"
#include "book_nodes-inl.hpp"
#include "checks.hpp"
#include "kernels.hpp"
#include "parallel.hpp"

namespace marginkernel {

// Commits an order (the account held exclusively, checks done).
inline void ModelBook::Impl::apply_fill(Account& acc, std::int64_t a, std::int32_t i, double q) {
    const Hypo h = make_hypo(acc, i, q);
    {
        bool has = false;
        const NodeState n = hypo_node(acc, h, has);
        check_finite(coupled() ? spread_totals(acc, h, n, has)  // SPAN hook (sizes the scratch spread_commit uses)
                               : totals(acc, n.key, has ? &n : nullptr, true, false),
                     "add_fill");
    }
    int k = h.slot;
    if (k < 0) {
        Slot slot;
        slot.unit = h.unit;
        slot.ukey = h.ukey;
        slot.wpnl = make_buffer(stride);
        slot.positions.reserve(1);
        acc.slots.reserve(acc.slots.size() + 1);
        acc.nodes.reserve(acc.nodes.size() + 1);
        acc.slots.insert(acc.slots.begin() + h.insert, std::move(slot));
        {
            std::lock_guard guard(holders_mutex);
            holders[static_cast<std::size_t>(h.unit)].push_back(a);
        }
        k = h.insert;
    } else {
        acc.nodes.reserve(acc.nodes.size() + 1);
        acc.slots[static_cast<std::size_t>(k)].positions.reserve(
            acc.slots[static_cast<std::size_t>(k)].positions.size() + 1);
    }
    Slot& slot = acc.slots[static_cast<std::size_t>(k)];
    double sums[3 * kMaxAddOns];
    sums_after(h.slot >= 0 ? &slot : nullptr, h, sums);
    if (coupled()) spreads->reserve(slot.spread);  // SPAN hook: the pair's spread state sized before committing
    auto it = std::lower_bound(slot.positions.begin(), slot.positions.end(), i,
                               [](const Position& p, std::int32_t x) { return p.instrument < x; });
    if (it == slot.positions.end() || it->instrument != i) it = slot.positions.insert(it, Position{i, 0.0});
    // no throw from here on (capacity reserved above)
    it->quantity = h.q_new;
    if (it->quantity == 0.0) slot.positions.erase(it);
    if (slot.positions.empty())
        std::fill(slot.wpnl.get(), slot.wpnl.get() + stride, 0.0);
    else
        active_kernels().whatif_fill(slot.wpnl.get(), wrisk_of(static_cast<std::size_t>(i)), q, ns);
    std::copy(sums, sums + 3 * n_addons, slot.sums.begin());
    pair_charges(slot.sums.data(), slot.unit,
                 range_of(slot.positions.data(), slot.positions.data() + slot.positions.size(), nullptr),
                 slot.charge.data());
    refresh_node(acc, node_key(h.ukey, i), h.ukey, i);
    if (coupled()) spread_commit(acc, k, node_key(h.ukey, i));  // SPAN hook: the credits of every pair
    acc.total = totals(acc, 0, nullptr, false);
}


// Re-evaluates one node from the committed state and stores it (or drops it).
inline void ModelBook::Impl::refresh_node(Account& acc, std::int64_t key, std::int64_t ukey, std::int32_t i) const {
    NodeState n;
    bool has;
    if (isolated()) {
        const int k = find_slot(acc, ukey);
        double q = 0.0;
        if (k >= 0)
            for (const Position& p : acc.slots[static_cast<std::size_t>(k)].positions)
                if (p.instrument == i) q = p.quantity;
        has = q != 0.0;
        if (has) n = position_node(ukey, i, q);
    } else {
        has = cross_node(acc, key, nullptr, n);
    }
    n.key = key;
    const auto it = std::lower_bound(acc.nodes.begin(), acc.nodes.end(), key,
                                     [](const NodeState& x, std::int64_t y) { return x.key < y; });
    const bool found = it != acc.nodes.end() && it->key == key;
    if (has && found) *it = n;
    else if (has) acc.nodes.insert(it, n);
    else if (found) acc.nodes.erase(it);
}

// Everything of an account from its positions (rebuild, refresh, bulk load).
void ModelBook::Impl::recompute(Account& acc) const {
    for (Slot& s : acc.slots) {
        std::fill(s.wpnl.get(), s.wpnl.get() + stride, 0.0);
        for (const Position& p : s.positions)
            active_kernels().whatif_fill(s.wpnl.get(), wrisk_of(static_cast<std::size_t>(p.instrument)), p.quantity, ns);
        position_sums(s.positions.data(), s.positions.data() + s.positions.size(), s.sums.data());
        pair_charges(s.sums.data(), s.unit, range_of(s.positions.data(), s.positions.data() + s.positions.size(), nullptr),
                     s.charge.data());
    }
    if (coupled()) spread_commit(acc, -1, -1);  // SPAN hook: every pair's spread state and credits
    acc.nodes.clear();
    for (const Slot& s : acc.slots) {
        if (isolated()) {
            for (const Position& p : s.positions) acc.nodes.push_back(position_node(s.ukey, p.instrument, p.quantity));
            continue;
        }
        const std::int64_t key = node_key(s.ukey, 0);
        if (!acc.nodes.empty() && acc.nodes.back().key == key) continue;
        NodeState n;
        if (cross_node(acc, key, nullptr, n)) acc.nodes.push_back(n);
    }
    acc.total = totals(acc, 0, nullptr, false);
}

std::vector<std::unique_ptr<Account>> ModelBook::Impl::stage(const std::vector<std::int64_t>& ids) const {
    std::vector<std::unique_ptr<Account>> staged(ids.size());
    for (std::size_t t = 0; t < ids.size(); ++t) {
        const Account& old = *accounts[static_cast<std::size_t>(ids[t])];
        auto acc = std::make_unique<Account>();
        acc->collateral = old.collateral;
        acc->has_collateral = old.has_collateral;
        acc->equity = old.equity;
        for (const Slot& s : old.slots) {  // positions with a fresh (zero) P&L buffer
            Slot c;
            c.unit = s.unit;
            c.ukey = s.ukey;
            c.wpnl = make_buffer(stride);
            c.positions.reserve(s.positions.size());
            for (const Position& p : s.positions) c.positions.push_back(p);
            acc->slots.push_back(std::move(c));
        }
        staged[t] = std::move(acc);
    }
    return staged;
}

void ModelBook::Impl::commit(const std::vector<std::int64_t>& ids, std::vector<std::unique_ptr<Account>>& staged) {
    for (std::size_t t = 0; t < ids.size(); ++t) {
        const auto a = ids[t];
        Account& acc = *accounts[static_cast<std::size_t>(a)];
        for (const Slot& s : staged[t]->slots)  // units new to the account (bulk fills)
            if (find_slot(acc, s.ukey) < 0) holders[static_cast<std::size_t>(s.unit)].push_back(a);
        acc.slots = std::move(staged[t]->slots);
        acc.nodes = std::move(staged[t]->nodes);
        acc.total = staged[t]->total;
    }
}

void ModelBook::add_fill(std::int64_t a, std::int32_t i, double q) {
    Impl& m = *impl_;
    std::shared_lock book(m.book_mutex);
    Account& acc = m.account(a);
    m.require_order(i, q);
    std::unique_lock lock(acc.mutex);
    m.apply_fill(acc, a, i, q);
}

void ModelBook::add_fills(const std::int64_t* accounts, const std::int32_t* instruments, const double* quantities,
                          std::size_t n) {
    Impl& m = *impl_;
    if (n == 0) return;
    require_pointer("accounts", accounts);
    require_pointer("instruments", instruments);
    require_pointer("quantities", quantities);
    std::unique_lock book(m.book_mutex);
    for (std::size_t k = 0; k < n; ++k) {
        try {
            m.account(accounts[k]);
            m.require_order(instruments[k], quantities[k]);
        } catch (const UnknownId&) {
            throw;
        } catch (const InvalidInput& e) {
            throw InvalidInput("fills", static_cast<long long>(k), e.what());
        }
    }
    // Stage: the touched accounts' new positions, recomputed from scratch, committed if all finite.
    std::vector<std::int64_t> touched(accounts, accounts + n);
    std::sort(touched.begin(), touched.end());
    touched.erase(std::unique(touched.begin(), touched.end()), touched.end());
    std::vector<std::unique_ptr<Account>> staged = m.stage(touched);
    for (std::size_t k = 0; k < n; ++k) {
        const auto t = static_cast<std::size_t>(std::lower_bound(touched.begin(), touched.end(), accounts[k]) - touched.begin());
        Account& acc = *staged[t];
        const std::int32_t i = instruments[k];
        const Hypo h = m.make_hypo(acc, i, quantities[k]);
        int s = h.slot;
        if (s < 0) {
            Slot c;
            c.unit = h.unit;
            c.ukey = h.ukey;
            c.wpnl = make_buffer(m.stride);
            acc.slots.insert(acc.slots.begin() + h.insert, std::move(c));
            s = h.insert;
        }
        auto& pos = acc.slots[static_cast<std::size_t>(s)].positions;
        auto it = std::lower_bound(pos.begin(), pos.end(), i, [](const Position& p, std::int32_t x) { return p.instrument < x; });
        if (it == pos.end() || it->instrument != i) it = pos.insert(it, Position{i, 0.0});
        it->quantity = h.q_new;
        if (it->quantity == 0.0) pos.erase(it);
    }
    for (std::size_t t = 0; t < touched.size(); ++t) {
        m.recompute(*staged[t]);
        try {
            Impl::check_finite(staged[t]->total, "add_fills");
        } catch (const InvalidInput& e) {
            throw InvalidInput("account", touched[t], e.what());
        }
    }
    m.commit(touched, staged);
}

void ModelBook::rebuild(int threads) {
    Impl& m = *impl_;
    std::unique_lock book(m.book_mutex);
    parallel_for(m.accounts.size(), threads, [&](std::size_t begin, std::size_t end) {
        for (std::size_t a = begin; a < end; ++a) m.recompute(*m.accounts[a]);
    });
}

}  // namespace marginkernel
