// Account state for pre-trade risk (account.hpp). Layout:
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
#include "marginkernel/revalue.hpp"
#include "parallel.hpp"
#include "state.hpp"

namespace marginkernel {

using namespace detail;

namespace {

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

std::vector<Position>::iterator find_position(std::vector<Position>& positions, std::int32_t instrument) {
    return std::lower_bound(positions.begin(), positions.end(), instrument,
                            [](const Position& p, std::int32_t i) { return p.instrument < i; });
}

}  // namespace

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
    std::vector<std::unique_ptr<Account>> accounts;
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

    Account& account(std::int64_t a) const {
        if (a < 0 || static_cast<std::size_t>(a) >= accounts.size())
            throw UnknownId("account", a, accounts.size());
        return *accounts[static_cast<std::size_t>(a)];
    }

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
    m.accounts.reserve(n_accounts);
    for (std::size_t a = 0; a < n_accounts; ++a) m.accounts.push_back(std::make_unique<Account>());
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
    const auto first = static_cast<std::int64_t>(m.accounts.size());
    std::vector<std::unique_ptr<Account>> fresh;
    fresh.reserve(count);
    for (std::size_t k = 0; k < count; ++k) fresh.push_back(std::make_unique<Account>());
    m.accounts.reserve(m.accounts.size() + count);
    for (auto& a : fresh) m.accounts.push_back(std::move(a));
    return first;
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
