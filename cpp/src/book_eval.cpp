// The model book's read side (book_impl.hpp): what-if and check, the stored margins, nodes, pairs,
// positions and P&L, and collateral. The whole what-if path is in this translation unit: the
// evaluation is inline (book_nodes-inl.hpp, book_measure-inl.hpp, book_coupling-inl.hpp).
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <shared_mutex>
#include <vector>

#include "book_impl.hpp"
#include "book_nodes-inl.hpp"
#include "checks.hpp"
#include "kernels.hpp"

namespace marginkernel {

ModelWhatIf ModelBook::what_if(std::int64_t a, std::int32_t i, double q) const {
    const Impl& m = *impl_;
    std::shared_lock book(m.book_mutex);
    const Account& acc = m.account(a);
    m.require_order(i, q);
    std::shared_lock lock(acc.mutex);
    return m.what_if(acc, i, q);
}

ModelCheck ModelBook::check(std::int64_t a, std::int32_t i, double q, double equity) const {
    const Impl& m = *impl_;
    if (std::isinf(equity)) require_finite("equity", -1, equity);
    std::shared_lock book(m.book_mutex);
    const Account& acc = m.account(a);
    m.require_order(i, q);
    std::shared_lock lock(acc.mutex);
    ModelCheck c;
    c.after = m.what_if(acc, i, q);
    const double e = std::isnan(equity) ? (acc.has_collateral ? acc.total.equity : 0.0) : equity;
    c.excess = e - c.after.im;
    c.accepted = c.after.im <= e || (m.model.allow_risk_reducing && c.after.im <= c.after.im_before);
    return c;
}

AccountMargin ModelBook::margin(std::int64_t a) const {
    const Impl& m = *impl_;
    std::shared_lock book(m.book_mutex);
    const Account& acc = m.account(a);
    std::shared_lock lock(acc.mutex);
    return acc.total;
}

std::vector<NodeMargin> ModelBook::nodes(std::int64_t a) const {
    const Impl& m = *impl_;
    std::shared_lock book(m.book_mutex);
    const Account& acc = m.account(a);
    std::shared_lock lock(acc.mutex);
    std::vector<NodeMargin> out;
    for (const NodeState& n : acc.nodes) out.push_back(n.m);
    return out;
}

PairMargin ModelBook::pair(std::int64_t a, std::int32_t u) const {
    const Impl& m = *impl_;
    std::shared_lock book(m.book_mutex);
    const Account& acc = m.account(a);
    m.require_unit(u);
    std::shared_lock lock(acc.mutex);
    PairMargin p;
    const int k = Impl::find_slot(acc, m.ukey_of(u));
    if (k < 0) return p;
    const Slot& s = acc.slots[static_cast<std::size_t>(k)];
    if (s.positions.empty()) return p;
    if (!m.isolated()) {
        p.loss = m.scan_one(s.wpnl.get(), m.zeros.get(), 0.0, &p.worst_scenario);
        p.charges = s.charge;
        return p;
    }
    double best = -1.0;
    Buffer v = make_buffer(m.stride);
    for (const Position& pos : s.positions) {
        std::fill(v.get(), v.get() + m.stride, 0.0);
        active_kernels().whatif_fill(v.get(), m.wrisk_of(static_cast<std::size_t>(pos.instrument)), pos.quantity, m.ns);
        std::int32_t w = 0;
        const double loss = m.scan_one(v.get(), m.zeros.get(), 0.0, &w);
        p.loss += loss;
        if (loss > best) {
            best = loss;
            p.worst_scenario = w;
        }
        double sums[3 * kMaxAddOns], charge[kMaxAddOns];
        m.position_sums(&pos, &pos + 1, sums);
        m.pair_charges(sums, u, Impl::range_of(&pos, &pos + 1, nullptr), charge);
        for (std::size_t j = 0; j < m.n_addons; ++j) p.charges[j] += charge[j];
    }
    return p;
}

std::vector<Position> ModelBook::positions(std::int64_t a) const {
    const Impl& m = *impl_;
    std::shared_lock book(m.book_mutex);
    const Account& acc = m.account(a);
    std::shared_lock lock(acc.mutex);
    std::vector<Position> out;
    for (const Slot& s : acc.slots) out.insert(out.end(), s.positions.begin(), s.positions.end());
    std::sort(out.begin(), out.end(), [](const Position& x, const Position& y) { return x.instrument < y.instrument; });
    return out;
}

double ModelBook::position(std::int64_t a, std::int32_t i) const {
    const Impl& m = *impl_;
    std::shared_lock book(m.book_mutex);
    const Account& acc = m.account(a);
    m.require_instrument(i);
    std::shared_lock lock(acc.mutex);
    const int k = Impl::find_slot(acc, m.ukey_of(m.mk.unit[static_cast<std::size_t>(i)]));
    if (k < 0) return 0.0;
    for (const Position& p : acc.slots[static_cast<std::size_t>(k)].positions)
        if (p.instrument == i) return p.quantity;
    return 0.0;
}

void ModelBook::pnl(std::int64_t a, double* out) const {
    const Impl& m = *impl_;
    require_pointer("out", out);
    std::shared_lock book(m.book_mutex);
    const Account& acc = m.account(a);
    std::shared_lock lock(acc.mutex);
    std::fill(out, out + m.nu * m.ns, 0.0);
    for (const Slot& s : acc.slots) {
        double* o = out + static_cast<std::size_t>(s.unit) * m.ns;
        for (const Position& p : s.positions) {
            const double* r = m.risk.get() + static_cast<std::size_t>(p.instrument) * m.stride;
            for (std::size_t k = 0; k < m.ns; ++k) o[k] += p.quantity * r[k];
        }
    }
}

void ModelBook::set_collateral(std::int64_t a, std::int32_t c, double amount) {
    Impl& m = *impl_;
    std::shared_lock book(m.book_mutex);
    Account& acc = m.account(a);
    if (c < 0 || static_cast<std::size_t>(c) >= m.coll_fx.size()) throw UnknownId("collateral currency", c, m.coll_fx.size());
    require_finite("amount", -1, amount);
    if (std::abs(amount) * m.coll_fx[static_cast<std::size_t>(c)] > kMaxPnl)
        throw InvalidInput("amount", -1, show(amount) + " is too large");
    std::unique_lock lock(acc.mutex);
    if (acc.collateral.empty()) acc.collateral.assign(m.coll_fx.size(), 0.0);
    acc.collateral[static_cast<std::size_t>(c)] = amount;
    acc.has_collateral = true;
    double usd = 0.0;
    for (std::size_t k = 0; k < acc.collateral.size(); ++k) {
        const double x = acc.collateral[k];
        usd += (x > 0 ? x * (1.0 - m.coll_haircut[k]) : x) * m.coll_fx[k];
    }
    acc.equity = usd / m.report_fx;
    acc.total = m.totals(acc, 0, nullptr, false);
}

}  // namespace marginkernel
