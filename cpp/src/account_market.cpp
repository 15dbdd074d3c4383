// The simple-rule AccountBook's market side (account.hpp): a risk unit's new risk arrays (given, or
// revalued from instruments and scenarios), its FX rate, an instrument's settlement and the full
// rebuild. Each holds the book exclusively while it changes it, so no account lock is taken.
#include <algorithm>
#include <mutex>
#include <shared_mutex>

#include "account_impl.hpp"
#include "checks.hpp"
#include "kernels.hpp"
#include "marginkernel/revalue.hpp"
#include "parallel.hpp"
#include "state.hpp"

namespace marginkernel {

void AccountBook::update_unit(std::int32_t u, const double* rows, std::size_t n_rows,
                              std::optional<double> fx, int threads) {
    Impl& m = *impl_;
    std::unique_lock book(m.book_mutex);
    m.require_unit(u);
    const auto& members = m.unit_instruments[static_cast<std::size_t>(u)];
    if (n_rows != members.size())
        throw InvalidInput("rows", -1,
                           "unit " + std::to_string(u) + " has " + std::to_string(members.size()) +
                               " instruments, got " + std::to_string(n_rows) + " rows");
    if (n_rows > 0) require_pointer("rows", rows);
    for (std::size_t k = 0; k < n_rows; ++k)
        m.require_row("rows", static_cast<long long>(k), static_cast<std::size_t>(members[k]), rows + k * m.ns);
    if (fx) require_positive("fx", u, *fx);

    // dW = w * R' - W for each of the unit's instruments, then Pw += q * dW for every holder's
    // positions. Everything that can throw happens before the book changes.
    Buffer delta = make_buffer(n_rows * m.stride);
    const double* w = m.weight_of(static_cast<std::size_t>(u));
    for (std::size_t k = 0; k < n_rows; ++k) {
        const double* old = m.wrisk_of(static_cast<std::size_t>(members[k]));
        for (std::size_t s = 0; s < m.ns; ++s) delta[k * m.stride + s] = w[s] * rows[k * m.ns + s] - old[s];
    }
    // The book is exclusive: no account lock is needed.
    if (fx) m.fx[static_cast<std::size_t>(u)] = *fx;
    const auto& who = m.holders[static_cast<std::size_t>(u)];
    parallel_for(who.size(), threads, [&](std::size_t begin, std::size_t end) {
        for (std::size_t h = begin; h < end; ++h) {
            Account& acc = *m.accounts[static_cast<std::size_t>(who[h])];
            Slot& slot = acc.slots[static_cast<std::size_t>(Impl::find_slot(acc, u))];
            for (const Position& p : slot.positions) {
                const auto k = static_cast<std::size_t>(m.row_in_unit[static_cast<std::size_t>(p.instrument)]);
                active_kernels().whatif_fill(slot.wpnl.get(), delta.get() + k * m.stride, p.quantity, m.ns);
            }
            m.refresh_loss(slot);
            Impl::refresh_im(acc);
        }
    });
    for (std::size_t k = 0; k < n_rows; ++k) {
        const auto i = static_cast<std::size_t>(members[k]);
        m.set_row(i, rows + k * m.ns);
        m.risk_max[i] = m.row_max(i);
    }
}

void AccountBook::update_unit(std::int32_t u, const InstrumentsView& in, const ScenariosView& sc,
                              std::optional<double> fx, int threads) {
    const Impl& m = *impl_;
    m.require_unit(u);
    if (in.n != m.ni)
        throw InvalidInput("instruments", -1,
                           "has " + std::to_string(in.n) + " rows, the book " + std::to_string(m.ni));
    require_pointer("risk_unit", in.risk_unit);
    for (std::size_t i = 0; i < m.ni; ++i)
        if (in.risk_unit[i] != m.risk_unit[i])
            throw InvalidInput("risk_unit", static_cast<long long>(i), "differs from the book's risk units");
    if (sc.n_units != m.nu || sc.n_scenarios != m.ns)
        throw InvalidInput("scenarios", -1,
                           "have " + std::to_string(sc.n_units) + " units x " + std::to_string(sc.n_scenarios) +
                               " scenarios, the book " + std::to_string(m.nu) + " x " + std::to_string(m.ns));
    const auto& members = m.unit_instruments[static_cast<std::size_t>(u)];
    const std::size_t n = members.size();
    std::vector<double> rows(n * m.ns);
    if (n > 0) {
        // Gather the unit's rows into a small instrument table and revalue only those.
        std::vector<std::int8_t> kind(n), settlement(n);
        std::vector<std::int32_t> unit(n, u);
        std::vector<double> cols[6];
        const double* src[6] = {in.strike, in.expiry, in.multiplier, in.forward, in.discount, in.vol};
        for (int c = 0; c < 6; ++c)
            if (src[c]) cols[c].resize(n);
        require_pointer("kind", in.kind);
        require_pointer("settlement", in.settlement);
        for (std::size_t k = 0; k < n; ++k) {
            const auto i = static_cast<std::size_t>(members[k]);
            kind[k] = in.kind[i];
            settlement[k] = in.settlement[i];
            for (int c = 0; c < 6; ++c)
                if (src[c]) cols[c][k] = src[c][i];
        }
        const auto col = [&](int c) { return src[c] ? cols[c].data() : nullptr; };
        const InstrumentsView sub{n, kind.data(), settlement.data(), unit.data(), col(0), col(1),
                                  col(2), col(3), col(4), col(5)};
        revalue(sub, sc, rows.data(), nullptr, threads);
    }
    update_unit(u, rows.data(), n, fx, threads);
}

void AccountBook::set_fx(std::int32_t u, double fx) {
    Impl& m = *impl_;
    std::unique_lock book(m.book_mutex);
    m.require_unit(u);
    require_positive("fx", u, fx);
    m.fx[static_cast<std::size_t>(u)] = fx;
    for (const auto a : m.holders[static_cast<std::size_t>(u)]) {
        Account& acc = *m.accounts[static_cast<std::size_t>(a)];
        Slot& slot = acc.slots[static_cast<std::size_t>(Impl::find_slot(acc, u))];
        slot.contrib = fx * slot.loss;
        Impl::refresh_im(acc);
    }
}

void AccountBook::settle(std::int32_t i) {
    Impl& m = *impl_;
    std::unique_lock book(m.book_mutex);
    m.require_instrument(i);
    const auto u = m.risk_unit[static_cast<std::size_t>(i)];
    for (const auto a : m.holders[static_cast<std::size_t>(u)]) {
        Account& acc = *m.accounts[static_cast<std::size_t>(a)];
        Slot& slot = acc.slots[static_cast<std::size_t>(Impl::find_slot(acc, u))];
        const auto it = find_position(slot.positions, i);
        if (it == slot.positions.end() || it->instrument != i) continue;
        const double q = it->quantity;
        slot.positions.erase(it);
        if (slot.positions.empty())
            std::fill(slot.wpnl.get(), slot.wpnl.get() + m.stride, 0.0);
        else
            active_kernels().whatif_fill(slot.wpnl.get(), m.wrisk_of(static_cast<std::size_t>(i)), -q, m.ns);
        m.refresh_loss(slot);
        Impl::refresh_im(acc);
    }
}

void AccountBook::rebuild(int threads) {
    Impl& m = *impl_;
    std::unique_lock book(m.book_mutex);
    parallel_for(m.accounts.size(), threads, [&](std::size_t begin, std::size_t end) {
        for (std::size_t a = begin; a < end; ++a) {
            Account& acc = *m.accounts[a];
            for (Slot& slot : acc.slots) m.rebuild_slot(slot);
            Impl::refresh_im(acc);
        }
    });
}

}  // namespace marginkernel
