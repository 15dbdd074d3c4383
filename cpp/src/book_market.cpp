// Market refresh of one risk unit in the model book (book_impl.hpp): the unit's risk rows, its
// instruments' forward / discount / vol / expiry, its spot and its currency's FX are replaced, and
// every holder (every account holding a unit of that currency when the FX changed) is recomputed
// from its positions. The refresh is all or nothing: if a holder's margin would not be finite, the
// old market is restored and the book is unchanged.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "book_impl.hpp"
#include "checks.hpp"
#include "parallel.hpp"

namespace marginkernel {

void ModelBook::Impl::check_market(std::int32_t u, const UnitMarket& mu) const {
    const auto& members = unit_instruments[static_cast<std::size_t>(u)];
    if (mu.n_rows != members.size())
        throw InvalidInput("rows", -1, "unit " + std::to_string(u) + " has " + std::to_string(members.size()) +
                                           " instruments, got " + std::to_string(mu.n_rows) + " rows");
    if (mu.n_rows > 0) require_pointer("rows", mu.rows);
    if (!std::isnan(mu.spot)) require_positive("spot", u, mu.spot);
    if (!std::isnan(mu.fx)) require_positive("fx", u, mu.fx);
    const double* w = weight.get() + static_cast<std::size_t>(u) * stride;
    for (std::size_t k = 0; k < mu.n_rows; ++k) {
        for (std::size_t s = 0; s < ns; ++s) {
            const double x = mu.rows[k * ns + s];
            if (!std::isfinite(x) || !std::isfinite(w[s] * x))
                throw InvalidInput("rows", static_cast<long long>(k), "scenario " + std::to_string(s) + " is not finite");
        }
        if (mu.forward) require_positive("forward", static_cast<long long>(k), mu.forward[k]);
        if (mu.expiry && std::isnan(mu.expiry[k])) throw InvalidInput("expiry", static_cast<long long>(k), "is NaN");
        if (mu.vol) require_non_negative("vol", static_cast<long long>(k), mu.vol[k]);
        if (mu.discount) require_positive("discount", static_cast<long long>(k), mu.discount[k]);
    }
}

MarketBackup ModelBook::Impl::save_market(std::int32_t u) const {
    const auto& members = unit_instruments[static_cast<std::size_t>(u)];
    const std::size_t nm = members.size();
    MarketBackup b;
    b.rows = make_buffer(nm * stride);
    b.raw = make_buffer(nm * stride);
    b.inst.resize(nm * 6);
    for (std::size_t k = 0; k < nm; ++k) {
        const auto i = static_cast<std::size_t>(members[k]);
        std::copy(wrisk_of(i), wrisk_of(i) + stride, b.rows.get() + k * stride);
        std::copy(risk.get() + i * stride, risk.get() + (i + 1) * stride, b.raw.get() + k * stride);
        const double vals[6] = {mk.forward[i], discount[i], vol[i], mk.expiry[i], mk.delta[i], mk.notional[i]};
        std::copy(vals, vals + 6, b.inst.begin() + static_cast<std::ptrdiff_t>(k * 6));
    }
    b.risk_max = risk_max;
    b.unit_fx = mk.unit_fx;
    b.currency_fx = currency_fx;
    b.spot = mk.unit_spot[static_cast<std::size_t>(u)];
    return b;
}

void ModelBook::Impl::restore_market(std::int32_t u, const MarketBackup& b) {
    const auto& members = unit_instruments[static_cast<std::size_t>(u)];
    for (std::size_t k = 0; k < members.size(); ++k) {
        const auto i = static_cast<std::size_t>(members[k]);
        std::copy(b.rows.get() + k * stride, b.rows.get() + (k + 1) * stride, wrisk.get() + i * stride);
        std::copy(b.raw.get() + k * stride, b.raw.get() + (k + 1) * stride, risk.get() + i * stride);
        const double* v = b.inst.data() + k * 6;
        mk.forward[i] = v[0], discount[i] = v[1], vol[i] = v[2], mk.expiry[i] = v[3];
        mk.delta[i] = v[4], mk.notional[i] = v[5];
    }
    risk_max = b.risk_max;
    mk.unit_fx = b.unit_fx;
    currency_fx = b.currency_fx;
    mk.unit_spot[static_cast<std::size_t>(u)] = b.spot;
    refresh_currency_terms(unit_currency[static_cast<std::size_t>(u)]);
}

void ModelBook::Impl::apply_market(std::int32_t u, const UnitMarket& mu) {
    const auto uu = static_cast<std::size_t>(u);
    const auto& members = unit_instruments[uu];
    const double* w = weight.get() + uu * stride;
    for (std::size_t k = 0; k < members.size(); ++k) {
        const auto i = static_cast<std::size_t>(members[k]);
        double* wr = wrisk.get() + i * stride;
        double* r = risk.get() + i * stride;
        risk_max[i] = 0.0;
        for (std::size_t s = 0; s < ns; ++s) {
            r[s] = mu.rows[k * ns + s];
            wr[s] = w[s] * r[s];
            risk_max[i] = std::max(risk_max[i], std::abs(wr[s]));
        }
        if (mu.forward) mk.forward[i] = mu.forward[k];
        if (mu.discount) discount[i] = mu.discount[k];
        if (mu.vol) vol[i] = mu.vol[k];
        if (mu.expiry) mk.expiry[i] = mu.expiry[k];
        refresh_instrument(mk, i, strike[i], vol[i], discount[i]);
    }
    if (!std::isnan(mu.spot)) mk.unit_spot[uu] = mu.spot;
    const auto cur = unit_currency[uu];
    if (!std::isnan(mu.fx)) {
        currency_fx[static_cast<std::size_t>(cur)] = mu.fx;
        for (std::size_t v = 0; v < nu; ++v)
            if (unit_currency[v] == cur) mk.unit_fx[v] = mu.fx;
    }
    refresh_currency_terms(cur);
}

std::vector<std::int64_t> ModelBook::Impl::holders_of(std::int32_t u, bool fx_changed) const {
    const auto uu = static_cast<std::size_t>(u);
    const auto cur = unit_currency[uu];
    std::vector<std::int64_t> who = holders[uu];
    if (fx_changed)
        for (std::size_t v = 0; v < nu; ++v)
            if (unit_currency[v] == cur && v != uu) who.insert(who.end(), holders[v].begin(), holders[v].end());
    std::sort(who.begin(), who.end());
    who.erase(std::unique(who.begin(), who.end()), who.end());
    return who;
}

void ModelBook::Impl::check_staged(const std::vector<std::int64_t>& who,
                                   const std::vector<std::unique_ptr<Account>>& staged) const {
    for (std::size_t t = 0; t < who.size(); ++t) {
        for (const Slot& s : staged[t]->slots)
            for (const Position& p : s.positions)
                if (std::abs(p.quantity) * risk_max[static_cast<std::size_t>(p.instrument)] > kMaxPnl)
                    throw InvalidInput("rows", -1, "account " + std::to_string(who[t]) + " holds " + show(p.quantity) +
                                                       " of instrument " + std::to_string(p.instrument) +
                                                       ": |quantity| * max|R| would exceed 1e300; market update refused");
        const AccountMargin& total = staged[t]->total;
        if (!std::isfinite(total.im) || !std::isfinite(total.scan_risk))
            throw InvalidInput("rows", -1, "account " + std::to_string(who[t]) +
                                               " would have a margin that is not finite; market update refused");
    }
}

void ModelBook::update_unit(std::int32_t u, const double* rows, std::size_t n_rows, const double* forward,
                            const double* discount, const double* vol, const double* expiry, double spot, double fx,
                            int threads) {
    Impl& m = *impl_;
    std::unique_lock book(m.book_mutex);
    m.require_unit(u);
    const UnitMarket mu{rows, n_rows, forward, discount, vol, expiry, spot, fx};
    m.check_market(u, mu);
    // Keep the old market to restore it if a holder's margin would not be finite.
    const MarketBackup old = m.save_market(u);
    const auto cur = m.unit_currency[static_cast<std::size_t>(u)];
    const bool fx_changed = !std::isnan(fx) && fx != m.currency_fx[static_cast<std::size_t>(cur)];
    m.apply_market(u, mu);
    const std::vector<std::int64_t> who = m.holders_of(u, fx_changed);
    // stage every holder's new state (book exclusive: no account lock needed)
    std::vector<std::unique_ptr<Account>> staged;
    try {
        staged = m.stage(who);
        parallel_for(who.size(), threads, [&](std::size_t begin, std::size_t end) {
            for (std::size_t t = begin; t < end; ++t) m.recompute(*staged[t]);
        });
        m.check_staged(who, staged);
    } catch (...) {
        m.restore_market(u, old);
        throw;
    }
    m.commit(who, staged);
}

}  // namespace marginkernel
