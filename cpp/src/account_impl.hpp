// Internal (not installed): the state of the simple-rule AccountBook (account.hpp), shared by
// account.cpp (construction, fills, what-if, queries) and account_market.cpp (market updates,
// settlement, rebuild). The hot what-if path, Impl::what_if and what it calls, is defined here
// in the class so that AccountBook::what_if in account.cpp inlines it. Layout:
//  * R is copied once into 64-byte aligned rows of `stride` doubles (n_scenarios rounded up to 8),
//    and so are the weights and every cached P vector, so each row starts on a cache line.
//  * The cache is kept pre-weighted: W[i] = w[u(i)] * R[i] per instrument and, per account and
//    unit, Pw = w * P = sum q * W[i]. Since w >= 0 commutes with the gain haircut h,
//    w * h(P + q R) = h(Pw + q W), so a what-if streams two vectors (Pw and W[i]) instead of three
//    and needs no multiply by w: at 1,000 scenarios it is bound by cache bandwidth, so this is a
//    third less time. Each rounds once more than the reference's w * h(...), well inside the
//    tests' 1e-12. (h is non-decreasing, so the kernel only needs min Pw + q W; see kernels_isa.cpp.)
//  * An account holds one Slot per risk unit it has traded: its positions in that unit, the cached
//    Pw[a, u] and the unit's worst loss. Slots are kept sorted by unit; a what-if finds its slot by
//    binary search and runs the fused kernel over Pw and W[i] once.
//  * holders[u] lists the accounts with a slot for unit u, so a market update of u visits only them.
#pragma once

#include "marginkernel/account.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <mutex>
#include <new>
#include <shared_mutex>
#include <system_error>

#include "checks.hpp"
#include "kernels.hpp"
#include "state.hpp"

namespace marginkernel {

// Named, not anonymous: AccountBook::Impl (external linkage) holds these and is defined in both
// translation units.
namespace detail::simple_rule {

constexpr double kMaxPnl = 1e300;  // |q| * max|R[i]| above this is refused (keeps P finite)

struct Slot {
    std::int32_t unit = 0;
    std::int32_t worst = 0;
    double loss = 0.0;     // worst loss of P, settlement currency
    double contrib = 0.0;  // fx[unit] * loss
    Buffer wpnl;           // [stride], w[unit] * P[a, unit, :]
    std::vector<Position> positions;  // sorted by instrument, no zero quantities
};

struct Account {
    mutable RwMutex mutex;
    std::vector<std::int32_t> units;  // sorted; units[k] == slots[k].unit
    std::vector<Slot> slots;
    double im = 0.0;  // sum of slots' contrib, in slot order
};

inline std::vector<Position>::iterator find_position(std::vector<Position>& positions, std::int32_t instrument) {
    return std::lower_bound(positions.begin(), positions.end(), instrument,
                            [](const Position& p, std::int32_t i) { return p.instrument < i; });
}

}  // namespace detail::simple_rule

using namespace detail;
using namespace detail::simple_rule;

struct AccountBook::Impl {
    std::size_t ni = 0, ns = 0, nu = 0, stride = 0;
    MarginRule rule;
    Buffer risk;    // [ni x stride] R
    Buffer wrisk;   // [ni x stride] W = w[unit(i)] * R[i]
    Buffer weight;  // [nu x stride]
    Buffer zeros;   // [stride]
    std::vector<std::int32_t> risk_unit;
    std::vector<std::int32_t> row_in_unit;  // position of instrument i in unit_instruments[unit(i)]
    std::vector<std::vector<std::int32_t>> unit_instruments;
    std::vector<double> fx, expiry, risk_max;
    std::vector<std::vector<std::int64_t>> holders;
    std::mutex holders_mutex;  // guards holders against concurrent add_fill on different accounts
    AccountTable<Account> accounts;
    mutable RwMutex book_mutex;

    const double* risk_of(std::size_t i) const noexcept { return risk.get() + i * stride; }
    const double* wrisk_of(std::size_t i) const noexcept { return wrisk.get() + i * stride; }
    // Throws unless row and w[unit(i)] * row are finite.
    void require_row(const char* field, long long row_id, std::size_t i, const double* row) const {
        const double* w = weight_of(static_cast<std::size_t>(risk_unit[i]));
        for (std::size_t s = 0; s < ns; ++s)
            if (!std::isfinite(row[s]) || !std::isfinite(w[s] * row[s]))
                throw InvalidInput(field, row_id, "scenario " + std::to_string(s) + " is not finite (" + show(row[s]) +
                                                      (std::isfinite(row[s]) ? " times its weight" : "") + ")");
    }
    // max_s max(|R[i, s]|, |W[i, s]|): bounds the P&L an order can add.
    double row_max(std::size_t i) const noexcept {
        double m = 0.0;
        for (std::size_t s = 0; s < ns; ++s)
            m = std::max(m, std::max(std::abs(risk_of(i)[s]), std::abs(wrisk_of(i)[s])));
        return m;
    }
    // W[i] = w[unit(i)] * row.
    void set_row(std::size_t i, const double* row) noexcept {
        const double* w = weight_of(static_cast<std::size_t>(risk_unit[i]));
        double* r = risk.get() + i * stride;
        double* wr = wrisk.get() + i * stride;
        for (std::size_t s = 0; s < ns; ++s) {
            r[s] = row[s];
            wr[s] = w[s] * row[s];
        }
    }
    const double* weight_of(std::size_t u) const noexcept { return weight.get() + u * stride; }

    // --- lookups and checks (callers hold book_mutex) ---

    Account& account(std::int64_t a) const { return account_at(accounts, a); }

    void require_instrument(std::int32_t i) const {
        if (i < 0 || static_cast<std::size_t>(i) >= ni) throw UnknownId("instrument", i, ni);
    }

    void require_unit(std::int32_t u) const {
        if (u < 0 || static_cast<std::size_t>(u) >= nu) throw UnknownId("unit", u, nu);
    }

    void require_order(std::int32_t i, double q) const {
        require_instrument(i);
        require_finite("quantity", -1, q);
        if (!(expiry[static_cast<std::size_t>(i)] > 0.0))
            throw InvalidInput("instrument", i, "has expired (expiry " + show(expiry[static_cast<std::size_t>(i)]) +
                                                    " years); orders on it are rejected");
        if (std::abs(q) * risk_max[static_cast<std::size_t>(i)] > kMaxPnl)
            throw InvalidInput("quantity", -1, show(q) + " is too large for instrument " + std::to_string(i) +
                                                   ": |quantity| * max|R| exceeds 1e300");
    }

    static int find_slot(const Account& acc, std::int32_t u) noexcept {
        const auto it = std::lower_bound(acc.units.begin(), acc.units.end(), u);
        return it != acc.units.end() && *it == u ? static_cast<int>(it - acc.units.begin()) : -1;
    }

    // --- state updates (callers hold the account exclusively, or the book exclusively) ---

    // Worst loss of the slot through the same kernel as what-if (q = 0 against zeros).
    void refresh_loss(Slot& slot) const noexcept {
        const auto u = static_cast<std::size_t>(slot.unit);
        const double m = active_kernels().whatif_min(slot.wpnl.get(), zeros.get(), 0.0, rule.gain_factor, ns,
                                                     &slot.worst);
        slot.loss = std::max(0.0, -m);
        slot.contrib = fx[u] * slot.loss;
    }

    static void refresh_im(Account& acc) noexcept {
        double im = 0.0;
        for (const Slot& s : acc.slots) im += s.contrib;
        acc.im = im;
    }

    // Recomputes a slot's Pw from its positions.
    void rebuild_slot(Slot& slot) const noexcept {
        double* p = slot.wpnl.get();
        std::fill(p, p + stride, 0.0);
        for (const Position& pos : slot.positions)
            active_kernels().whatif_fill(p, wrisk_of(static_cast<std::size_t>(pos.instrument)), pos.quantity, ns);
        refresh_loss(slot);
    }

    // The body of add_fill, after its checks, with the account held exclusively. Everything that
    // can throw (allocations) happens before the account changes.
    void apply_fill(Account& acc, std::int64_t a, std::int32_t i, double q) {
        const auto u = risk_unit[static_cast<std::size_t>(i)];
        int k = find_slot(acc, u);
        if (k < 0) {
            Slot slot;
            slot.unit = u;
            slot.wpnl = make_buffer(stride);
            slot.positions.reserve(1);
            refresh_loss(slot);
            acc.units.reserve(acc.units.size() + 1);
            acc.slots.reserve(acc.slots.size() + 1);
            {
                std::lock_guard guard(holders_mutex);
                holders[static_cast<std::size_t>(u)].push_back(a);
            }
            const auto at = std::lower_bound(acc.units.begin(), acc.units.end(), u) - acc.units.begin();
            acc.units.insert(acc.units.begin() + at, u);
            acc.slots.insert(acc.slots.begin() + at, std::move(slot));
            k = static_cast<int>(at);
        }
        Slot& slot = acc.slots[static_cast<std::size_t>(k)];
        auto it = find_position(slot.positions, i);
        if (it == slot.positions.end() || it->instrument != i) it = slot.positions.insert(it, Position{i, 0.0});
        // No throw from here on.
        it->quantity += q;
        if (it->quantity == 0.0) slot.positions.erase(it);
        if (slot.positions.empty())
            std::fill(slot.wpnl.get(), slot.wpnl.get() + stride, 0.0);
        else
            active_kernels().whatif_fill(slot.wpnl.get(), wrisk_of(static_cast<std::size_t>(i)), q, ns);
        refresh_loss(slot);
        refresh_im(acc);
    }

    WhatIf what_if(const Account& acc, std::int32_t i, double q) const noexcept {
        const auto u = risk_unit[static_cast<std::size_t>(i)];
        const int k = find_slot(acc, u);
        const double* p = zeros.get();
        const double* r = wrisk_of(static_cast<std::size_t>(i));
        double before = 0.0;
        if (k >= 0) {
            const Slot& slot = acc.slots[static_cast<std::size_t>(k)];
            before = slot.contrib;
            p = slot.wpnl.get();
            // The order closes the unit's last position: add_fill would reset P to exactly 0.
            if (slot.positions.size() == 1 && slot.positions[0].instrument == i &&
                slot.positions[0].quantity + q == 0.0) {
                p = zeros.get();
                r = zeros.get();
            }
        }
        WhatIf w;
        w.unit = u;
        w.im_before = acc.im;
        const double m = active_kernels().whatif_min(p, r, q, rule.gain_factor, ns, &w.worst_scenario);
        w.unit_loss = std::max(0.0, -m);
        w.im = acc.im - before + fx[static_cast<std::size_t>(u)] * w.unit_loss;
        w.mm = rule.mm_factor * w.im;
        return w;
    }
};

}  // namespace marginkernel
