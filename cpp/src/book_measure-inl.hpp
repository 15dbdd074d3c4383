// Internal: the model book's scan measures (book_impl.hpp): the worst loss, or VaR / ES, of one
// P&L vector (a node of one child) or of the joint P&L of several children (currency and account
// netting, gain haircuts). Inline; the sources include book_nodes-inl.hpp, which includes this.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>

#include "book_impl.hpp"
#include "kernels.hpp"
#include "select.hpp"

namespace marginkernel {

// Worst loss of one P&L vector p + q r (the kernel the fills use).
inline double ModelBook::Impl::scan_one(const double* p, const double* r, double q, std::int32_t* worst) const noexcept {
    return std::max(0.0, -active_kernels().whatif_min(p, r, q, 1.0, ns, worst));
}

// The model's measure of one joint P&L vector p + q r: worst loss, or (var / es) the vector
// p + q r rounded exactly as whatif_fill stores it, measured by tail().
inline double ModelBook::Impl::measure_one(const double* p, const double* r, double q, std::int32_t* worst) const {
    if (!tail_measure()) return scan_one(p, r, q, worst);
    TailScratch& t = tail_scratch(ns);
    std::copy(p, p + ns, t.joint.data());
    if (q != 0.0) active_kernels().whatif_fill(t.joint.data(), r, q, ns);
    return tail(t, worst);
}


// VaR or ES of t.joint (marginkernel.kernels.value_at_risk, clamped at 0); worst = first
// scenario of the minimum. The ES sums run in scenario order, as the kernel's.
inline double ModelBook::Impl::tail(TailScratch& t, std::int32_t* worst) const {
    const double* j = t.joint.data();
    std::size_t at = 0;
    for (std::size_t s = 1; s < ns; ++s)
        if (j[s] < j[at]) at = s;
    *worst = static_cast<std::int32_t>(at);
    double q, es;
    if (probability.empty()) {  // the values at or below the k-th smallest: q is the largest of them
        const std::size_t tail =
            active_kernels().tail_indices(j, ns, var_index, t.order.data(), t.work.data());
        double sum = 0.0;
        q = -std::numeric_limits<double>::infinity();
        for (std::size_t i = 0; i < tail; ++i) {
            const double v = j[static_cast<std::size_t>(t.order[i])];
            sum += v;
            q = std::max(q, v);
        }
        es = -sum / static_cast<double>(tail);
    } else {
        q = weighted_quantile(j, ns, probability.data(), probability_total, level, t.order.data(),
                              t.work.data());
        es = weighted_shortfall(j, ns, probability.data(), q, t.order.data());
    }
    return std::max(0.0, model.measure == Measure::var ? -q : es);
}

// The measure of a node of several children (currency or account netting; account netting
// with one child too).
template <class C>
inline double ModelBook::Impl::multi_scan(const C* ch, int nch, std::int64_t key, std::int32_t* worst) const {
    if (tail_measure()) {
        TailScratch& t = tail_scratch(ns);
        joint_vector(ch, nch, key, t);
        return tail(t, worst);
    }
    double best = kInf;
    std::int32_t at = 0;
    joint_pnl(ch, nch, key, [&](std::size_t s, double v) {
        if (v < best) {
            best = v;
            at = static_cast<std::int32_t>(s);
        }
    });
    *worst = at;
    return std::max(0.0, -best);
}


// The joint P&L of a node of several children into t.joint, child by child (loops the compiler
// vectorises); per scenario the same operations in the same order as joint_pnl, so the same
// doubles. t.work holds the gains, t.sum a currency's sum.
template <class C>
inline void ModelBook::Impl::joint_vector(const C* ch, int nch, std::int64_t key, TailScratch& t) const {
    double* j = t.joint.data();
    double* gain = t.work.data();
    std::fill(j, j + ns, 0.0);
    std::fill(gain, gain + ns, 0.0);
    if (model.netting == Netting::currency) {
        const double cap = model.gain_cap / currency_fx[static_cast<std::size_t>(key)];
        for (int k = 0; k < nch; ++k) {
            const double* p = ch[k].p;
            const double g = unit_gain[static_cast<std::size_t>(ch[k].unit)];
            for (std::size_t s = 0; s < ns; ++s) {
                j[s] += std::min(p[s], 0.0);
                gain[s] += std::max(p[s], 0.0) * g;
            }
        }
        for (std::size_t s = 0; s < ns; ++s) j[s] = j[s] + std::min(gain[s], cap);
        return;
    }
    bool several = false;
    for (int k = 1; k < nch; ++k) several |= ch[k].currency != ch[0].currency;
    double* y = t.sum.data();
    for (int k = 0; k < nch;) {
        const std::int32_t c = ch[k].currency;
        std::fill(y, y + ns, 0.0);
        for (; k < nch && ch[k].currency == c; ++k)
            for (std::size_t s = 0; s < ns; ++s) y[s] += ch[k].p[s];
        const double fx = currency_fx[static_cast<std::size_t>(c)];
        const double g = currency_gain[static_cast<std::size_t>(c)];
        if (!several) {
            for (std::size_t s = 0; s < ns; ++s) j[s] = y[s] * fx;
            return;
        }
        for (std::size_t s = 0; s < ns; ++s) {
            const double v = y[s] * fx;
            j[s] += std::min(v, 0.0);
            gain[s] += std::max(v, 0.0) * g;
        }
    }
    for (std::size_t s = 0; s < ns; ++s) j[s] = j[s] + std::min(gain[s], model.gain_cap);
}


// The joint P&L of a node of several children, scenario by scenario: f(s, J_s).
template <class C, class F>
inline void ModelBook::Impl::joint_pnl(const C* ch, int nch, std::int64_t key, F&& f) const noexcept {
    if (model.netting == Netting::currency) {
        const double cap = model.gain_cap / currency_fx[static_cast<std::size_t>(key)];
        for (std::size_t s = 0; s < ns; ++s) {
            double loss = 0.0, gain = 0.0;
            for (int k = 0; k < nch; ++k) {
                const double x = ch[k].p[s];
                loss += std::min(x, 0.0);
                gain += std::max(x, 0.0) * unit_gain[static_cast<std::size_t>(ch[k].unit)];
            }
            f(s, loss + std::min(gain, cap));
        }
    } else {  // account: each currency's units net fully, in USD; then haircut across currencies
        bool several = false;
        for (int k = 1; k < nch; ++k) several |= ch[k].currency != ch[0].currency;
        for (std::size_t s = 0; s < ns; ++s) {
            double loss = 0.0, gain = 0.0, single = 0.0;
            for (int k = 0; k < nch;) {
                const std::int32_t c = ch[k].currency;
                double sum = 0.0;
                for (; k < nch && ch[k].currency == c; ++k) sum += ch[k].p[s];
                const double y = sum * currency_fx[static_cast<std::size_t>(c)];
                single = y;
                loss += std::min(y, 0.0);
                gain += std::max(y, 0.0) * currency_gain[static_cast<std::size_t>(c)];
            }
            f(s, several ? loss + std::min(gain, model.gain_cap) : single);
        }
    }
}

}  // namespace marginkernel
