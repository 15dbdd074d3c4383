// The simple-rule AccountBook (account.hpp): construction, fills, the what-if and the queries; its
// state and the what-if path are in account_impl.hpp, market updates, settlement and rebuild in
// account_market.cpp.
#include <algorithm>
#include <cmath>
#include <limits>
#include <mutex>
#include <shared_mutex>

#include "account_impl.hpp"
#include "checks.hpp"
#include "kernels.hpp"
#include "state.hpp"

namespace marginkernel {

AccountBook::AccountBook(const RiskArraysView& r, const double* weight, const double* fx,
                         const MarginRule& rule, std::size_t n_accounts, const double* expiry)
    : impl_(std::make_unique<Impl>()) {
    Impl& m = *impl_;
    if (r.n_instruments == 0) throw InvalidInput("risk", -1, "no instruments");
    if (r.n_scenarios == 0) throw InvalidInput("risk", -1, "no scenarios");
    if (r.n_units == 0) throw InvalidInput("n_units", -1, "no risk units");
    if (r.n_scenarios > static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max()))
        throw InvalidInput("risk", -1, "too many scenarios");
    if (r.n_instruments > static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max()))
        throw InvalidInput("risk", -1, "too many instruments");
    require_pointer("risk", r.risk);
    require_pointer("risk_unit", r.risk_unit);
    require_non_negative("gain_factor", -1, rule.gain_factor);
    require_non_negative("mm_factor", -1, rule.mm_factor);

    m.ni = r.n_instruments;
    m.ns = r.n_scenarios;
    m.nu = r.n_units;
    m.stride = (m.ns + 7) / 8 * 8;
    m.rule = rule;
    m.risk = make_buffer(m.ni * m.stride);
    m.wrisk = make_buffer(m.ni * m.stride);
    m.weight = make_buffer(m.nu * m.stride);
    m.zeros = make_buffer(m.stride);
    m.risk_unit.assign(r.risk_unit, r.risk_unit + m.ni);
    m.row_in_unit.resize(m.ni);
    m.unit_instruments.resize(m.nu);
    m.risk_max.assign(m.ni, 0.0);
    for (std::size_t i = 0; i < m.ni; ++i) {
        const auto u = r.risk_unit[i];
        if (u < 0 || static_cast<std::size_t>(u) >= m.nu)
            throw InvalidInput("risk_unit", static_cast<long long>(i),
                               "must be in [0, " + std::to_string(m.nu) + "), got " + std::to_string(u));
        m.row_in_unit[i] = static_cast<std::int32_t>(m.unit_instruments[static_cast<std::size_t>(u)].size());
        m.unit_instruments[static_cast<std::size_t>(u)].push_back(static_cast<std::int32_t>(i));
    }
    for (std::size_t u = 0; u < m.nu; ++u)
        for (std::size_t s = 0; s < m.ns; ++s) {
            const double v = weight ? weight[u * m.ns + s] : 1.0;
            require_non_negative("weight", static_cast<long long>(u), v);
            m.weight[u * m.stride + s] = v;
        }
    for (std::size_t i = 0; i < m.ni; ++i) {
        m.require_row("risk", static_cast<long long>(i), i, r.risk + i * m.ns);
        m.set_row(i, r.risk + i * m.ns);
        m.risk_max[i] = m.row_max(i);
    }
    m.fx.assign(m.nu, 1.0);
    if (fx)
        for (std::size_t u = 0; u < m.nu; ++u) {
            require_positive("fx", static_cast<long long>(u), fx[u]);
            m.fx[u] = fx[u];
        }
    m.expiry.assign(m.ni, std::numeric_limits<double>::infinity());
    if (expiry)
        for (std::size_t i = 0; i < m.ni; ++i) {
            if (std::isnan(expiry[i])) throw InvalidInput("expiry", static_cast<long long>(i), "is NaN");
            m.expiry[i] = expiry[i];
        }
    m.holders.resize(m.nu);
    append_accounts(m.accounts, n_accounts);
}

AccountBook::~AccountBook() = default;

std::size_t AccountBook::n_accounts() const {
    std::shared_lock book(impl_->book_mutex);
    return impl_->accounts.size();
}
std::size_t AccountBook::n_instruments() const noexcept { return impl_->ni; }
std::size_t AccountBook::n_units() const noexcept { return impl_->nu; }
std::size_t AccountBook::n_scenarios() const noexcept { return impl_->ns; }
const MarginRule& AccountBook::rule() const noexcept { return impl_->rule; }

std::int64_t AccountBook::add_accounts(std::size_t count) {
    Impl& m = *impl_;
    std::unique_lock book(m.book_mutex);
    return append_accounts(m.accounts, count);
}

void AccountBook::add_fill(std::int64_t a, std::int32_t i, double q) {
    Impl& m = *impl_;
    std::shared_lock book(m.book_mutex);
    Account& acc = m.account(a);
    m.require_order(i, q);
    std::unique_lock lock(acc.mutex);
    m.apply_fill(acc, a, i, q);
}

void AccountBook::add_fills(const std::int64_t* accounts, const std::int32_t* instruments,
                            const double* quantities, std::size_t n) {
    Impl& m = *impl_;
    if (n == 0) return;
    require_pointer("accounts", accounts);
    require_pointer("instruments", instruments);
    require_pointer("quantities", quantities);
    std::shared_lock book(m.book_mutex);
    for (std::size_t k = 0; k < n; ++k) {
        try {
            m.account(accounts[k]);
            m.require_order(instruments[k], quantities[k]);
        } catch (const UnknownId&) {
            throw;  // names the id itself
        } catch (const InvalidInput& e) {
            throw InvalidInput("fills", static_cast<long long>(k), e.what());
        }
    }
    for (std::size_t k = 0; k < n; ++k) {
        Account& acc = m.account(accounts[k]);
        std::unique_lock lock(acc.mutex);
        m.apply_fill(acc, accounts[k], instruments[k], quantities[k]);
    }
}

WhatIf AccountBook::what_if(std::int64_t a, std::int32_t i, double q) const {
    const Impl& m = *impl_;
    std::shared_lock book(m.book_mutex);
    const Account& acc = m.account(a);
    m.require_order(i, q);
    std::shared_lock lock(acc.mutex);
    return m.what_if(acc, i, q);
}

Check AccountBook::check(const Order& order, double equity) const {
    require_finite("equity", -1, equity);
    Check c;
    c.after = what_if(order);
    c.excess = equity - c.after.im;
    c.accepted = c.after.im <= equity || (impl_->rule.allow_risk_reducing && c.after.im <= c.after.im_before);
    return c;
}

Margin AccountBook::margin(std::int64_t a) const {
    const Impl& m = *impl_;
    std::shared_lock book(m.book_mutex);
    const Account& acc = m.account(a);
    std::shared_lock lock(acc.mutex);
    return Margin{acc.im, m.rule.mm_factor * acc.im};
}

UnitMargin AccountBook::unit_margin(std::int64_t a, std::int32_t u) const {
    const Impl& m = *impl_;
    std::shared_lock book(m.book_mutex);
    const Account& acc = m.account(a);
    m.require_unit(u);
    std::shared_lock lock(acc.mutex);
    const int k = Impl::find_slot(acc, u);
    if (k < 0) return UnitMargin{};
    const Slot& s = acc.slots[static_cast<std::size_t>(k)];
    return UnitMargin{s.loss, s.contrib, s.worst};
}

double AccountBook::position(std::int64_t a, std::int32_t i) const {
    const Impl& m = *impl_;
    std::shared_lock book(m.book_mutex);
    const Account& acc = m.account(a);
    m.require_instrument(i);
    std::shared_lock lock(acc.mutex);
    const int k = Impl::find_slot(acc, m.risk_unit[static_cast<std::size_t>(i)]);
    if (k < 0) return 0.0;
    for (const Position& p : acc.slots[static_cast<std::size_t>(k)].positions)
        if (p.instrument == i) return p.quantity;
    return 0.0;
}

std::vector<Position> AccountBook::positions(std::int64_t a) const {
    const Impl& m = *impl_;
    std::shared_lock book(m.book_mutex);
    const Account& acc = m.account(a);
    std::shared_lock lock(acc.mutex);
    std::vector<Position> out;
    for (const Slot& s : acc.slots) out.insert(out.end(), s.positions.begin(), s.positions.end());
    std::sort(out.begin(), out.end(), [](const Position& x, const Position& y) { return x.instrument < y.instrument; });
    return out;
}

void AccountBook::pnl(std::int64_t a, double* out) const {
    const Impl& m = *impl_;
    require_pointer("out", out);
    std::shared_lock book(m.book_mutex);
    const Account& acc = m.account(a);
    std::shared_lock lock(acc.mutex);
    std::fill(out, out + m.nu * m.ns, 0.0);
    for (const Slot& s : acc.slots)
        for (const Position& p : s.positions)
            active_kernels().whatif_fill(out + static_cast<std::size_t>(s.unit) * m.ns,
                                         m.risk_of(static_cast<std::size_t>(p.instrument)), p.quantity, m.ns);
}

void AccountBook::weighted_pnl(std::int64_t a, double* out) const {
    const Impl& m = *impl_;
    require_pointer("out", out);
    std::shared_lock book(m.book_mutex);
    const Account& acc = m.account(a);
    std::shared_lock lock(acc.mutex);
    std::fill(out, out + m.nu * m.ns, 0.0);
    for (const Slot& s : acc.slots)
        std::copy(s.wpnl.get(), s.wpnl.get() + m.ns, out + static_cast<std::size_t>(s.unit) * m.ns);
}

std::vector<std::int32_t> AccountBook::instruments_of(std::int32_t u) const {
    impl_->require_unit(u);
    return impl_->unit_instruments[static_cast<std::size_t>(u)];  // fixed at construction
}

void AccountBook::risk_row(std::int32_t i, double* out) const {
    const Impl& m = *impl_;
    require_pointer("out", out);
    std::shared_lock book(m.book_mutex);
    m.require_instrument(i);
    const double* r = m.risk_of(static_cast<std::size_t>(i));
    std::copy(r, r + m.ns, out);
}

void AccountBook::set_expiry(std::int32_t i, double years) {
    Impl& m = *impl_;
    std::unique_lock book(m.book_mutex);
    m.require_instrument(i);
    if (std::isnan(years)) throw InvalidInput("expiry", i, "is NaN");
    m.expiry[static_cast<std::size_t>(i)] = years;
}

double AccountBook::expiry(std::int32_t i) const {
    const Impl& m = *impl_;
    std::shared_lock book(m.book_mutex);
    m.require_instrument(i);
    return m.expiry[static_cast<std::size_t>(i)];
}

}  // namespace marginkernel
