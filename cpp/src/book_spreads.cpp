// The SPAN delta-spread add-ons of the model book (book_spreads.hpp). Each step mirrors the NumPy
// definition in marginkernel.addons.spreads (IntraSpread.compute / _form / _consume_rows,
// InterSpread.compute, price_risk) operation by operation; tests/test_book_span.py holds the book to
// the Engine to 1e-9 relative on the span preset and on generated models.
#include "book_spreads.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <string>
#include <utility>

#include "checks.hpp"

namespace marginkernel::detail {

namespace {

constexpr double kTol = 1e-9;  // deltas of this size or less count as zero (marginkernel.addons.spreads.TOL)
constexpr std::size_t kMaxLegs = 8;

int sgn(double x) noexcept { return std::abs(x) <= kTol ? 0 : (x > 0 ? 1 : -1); }

// Months of d: the sum over a leg's months (0 for none).
double leg_sum(const double* d, const std::vector<std::int32_t>& months) noexcept {
    double s = 0.0;
    for (const std::int32_t m : months) s += d[m];
    return s;
}

// Takes `amount` of delta of sign `sign` out of `months` of d, pro rata (spreads._consume_rows).
void consume(double* d, const std::vector<std::int32_t>& months, int sign, double amount) noexcept {
    if (months.empty()) return;
    const double s = sign;
    double total = 0.0;
    for (const std::int32_t m : months) total += s * d[m] > 0 ? s * d[m] : 0.0;
    const double frac = (total > 0 && amount > 0) ? std::min(amount / total, 1.0) : 0.0;
    for (const std::int32_t m : months) {
        const double side = s * d[m] > 0 ? s * d[m] : 0.0;
        d[m] = d[m] - s * side * frac;
    }
}

// The number of spreads formed by legs in different tiers (or units): the legs' deltas `x` must have
// signs matching their sides; n = min |x| / ratio (whole: floored); 0 when they do not.
double form_count(const DeltaSpreadSpec& s, const double* x, bool whole) noexcept {
    const int sign = sgn(x[0]) * (s.legs[0].side_a ? 1 : -1);
    bool ok = sign != 0;
    double n = std::numeric_limits<double>::infinity();
    for (std::size_t k = 0; k < s.legs.size(); ++k) {
        ok = ok && sgn(x[k]) == (s.legs[k].side_a ? sign : -sign);
        n = std::min(n, std::abs(x[k]) / s.legs[k].ratio);
    }
    if (whole) n = std::floor(n + kTol);
    return ok && n > kTol ? n : 0.0;
}

// Two legs in one tier: the tier's long months against its short months (spreads._form).
double form_one_tier(const DeltaSpreadSpec& s, double* d, bool whole) noexcept {
    const SpreadLegSpec& a = s.legs[0].side_a ? s.legs[0] : s.legs[1];
    const SpreadLegSpec& b = s.legs[0].side_a ? s.legs[1] : s.legs[0];
    double long_ = 0.0, short_ = 0.0;
    for (const std::int32_t m : a.months) {
        long_ += d[m] > 0 ? d[m] : 0.0;
        short_ += d[m] < 0 ? -d[m] : 0.0;
    }
    const double n1 = std::min(long_ / a.ratio, short_ / b.ratio);
    const double n2 = std::min(short_ / a.ratio, long_ / b.ratio);
    double n = std::max(n1, n2);
    if (whole) n = std::floor(n + kTol);
    n = n > kTol ? n : 0.0;
    const int a_sign = n1 >= n2 ? 1 : -1;
    consume(d, a.months, a_sign, n * a.ratio);
    consume(d, a.months, -a_sign, n * b.ratio);
    return n;
}

void check_leg(const SpreadLegSpec& leg, const std::string& where, std::size_t nm, std::size_t nu, bool inter) {
    if (!(leg.ratio > 0) || !std::isfinite(leg.ratio)) throw InvalidInput(where + ".ratio", -1, "must be > 0 and finite");
    for (const std::int32_t m : leg.months)
        if (m < 0 || static_cast<std::size_t>(m) >= nm) throw InvalidInput(where + ".months", -1, "month code out of range");
    if (inter && (leg.unit < 0 || static_cast<std::size_t>(leg.unit) >= nu))
        throw InvalidInput(where + ".unit", -1, "risk unit out of range");
}

void check_spreads(const AddOnSpec& a, std::size_t nm, std::size_t nu) {
    const bool inter = a.type == AddOnType::inter_spread;
    for (std::size_t k = 0; k < a.spreads.size(); ++k) {
        const DeltaSpreadSpec& s = a.spreads[k];
        const std::string where = "addons." + a.name + ".spreads[" + std::to_string(k) + "]";
        if (!(s.rate >= 0) || !std::isfinite(s.rate)) throw InvalidInput(where + ".rate", -1, "must be >= 0 and finite");
        if (s.legs.size() < 2 || s.legs.size() > kMaxLegs)
            throw InvalidInput(where + ".legs", -1, "the book holds spreads of 2 to 8 legs, got " + std::to_string(s.legs.size()));
        if (s.one_tier && (inter || s.legs.size() != 2 || s.legs[0].side_a == s.legs[1].side_a))
            throw InvalidInput(where + ".legs", -1, "legs in one tier must be two, one on side A and one on side B");
        for (std::size_t j = 0; j < s.legs.size(); ++j)
            check_leg(s.legs[j], where + ".legs[" + std::to_string(j) + "]", nm, nu, inter);
    }
}

}  // namespace

SpreadModel::SpreadModel(const BookModel& model, const BookMarketView& mv, const AddOnMarket& mk,
                         std::size_t n_instruments, std::size_t n_scenarios)
    : model_(model), mk_(mk), nm_(mv.n_months), ns_(n_scenarios) {
    const std::size_t nu = mv.n_units;
    for (std::size_t k = 0; k < model.addons.size(); ++k) {
        const AddOnSpec& a = model.addons[k];
        if (a.type == AddOnType::intra_spread) intra_.push_back(k);
        if (a.type != AddOnType::inter_spread) continue;
        inter_.push_back(k);
        const bool intra_before = a.after >= 0 && static_cast<std::size_t>(a.after) < k &&
                                  model.addons[static_cast<std::size_t>(a.after)].type == AddOnType::intra_spread;
        if (a.after != -1 && !intra_before)
            throw InvalidInput("addons." + a.name + ".after", -1, "must name an intra_spread add-on before this one");
    }
    if (intra_.empty() && inter_.empty()) return;
    require_pointer("month", mv.month);
    if (nm_ == 0) throw InvalidInput("n_months", -1, "spread add-ons need the month table (n_months > 0)");
    month_.assign(mv.month, mv.month + n_instruments);
    for (std::size_t i = 0; i < n_instruments; ++i)
        if (month_[i] < 0 || static_cast<std::size_t>(month_[i]) >= nm_)
            throw InvalidInput("month", static_cast<long long>(i), "must be in [0, n_months)");
    for (const std::size_t k : intra_) {
        const AddOnSpec& a = model.addons[k];
        if (a.scope.size() != nu)
            throw InvalidInput("addons." + a.name + ".scope", -1, "expected one flag per risk unit");
        check_spreads(a, nm_, nu);
    }
    bool span_risk = false;
    for (const std::size_t k : inter_) {
        check_spreads(model.addons[k], nm_, nu);
        span_risk = span_risk || !model.addons[k].scan_price_risk;
    }
    if (!span_risk) return;
    // SPAN price risk: per unit, the scenarios without a price move and each scenario's pair (the
    // first scenario with the same price multiplier and the opposite vol shift; itself if none)
    require_pointer("price_multiplier", mv.price_multiplier);
    require_pointer("vol_shift", mv.vol_shift);
    time_.assign(nu * ns_, 0);
    paired_.assign(nu * ns_, 0);
    for (std::size_t u = 0; u < nu; ++u) {
        const double* m = mv.price_multiplier + u * ns_;
        const double* v = mv.vol_shift + u * ns_;
        std::map<std::pair<double, double>, std::int32_t> first;
        for (std::size_t s = 0; s < ns_; ++s) {
            if (!std::isfinite(m[s]) || !std::isfinite(v[s]))
                throw InvalidInput(std::isfinite(m[s]) ? "vol_shift" : "price_multiplier", static_cast<long long>(u),
                                   "scenario " + std::to_string(s) + " is not finite");
            first.emplace(std::make_pair(m[s] + 0.0, v[s] + 0.0), static_cast<std::int32_t>(s));  // + 0.0: -0 as 0
        }
        for (std::size_t s = 0; s < ns_; ++s) {
            time_[u * ns_ + s] = m[s] == 1.0;
            auto p = static_cast<std::int32_t>(s);
            if (v[s] != 0) {
                const auto it = first.find(std::make_pair(m[s] + 0.0, -v[s] + 0.0));
                if (it != first.end()) p = it->second;
            }
            paired_[u * ns_ + s] = p;
        }
    }
}

void SpreadModel::month_deltas(const PositionRange& r, double* d) const {
    std::fill(d, d + nm_, 0.0);
    const auto add = [&](std::int32_t i, double q) {
        const auto k = static_cast<std::size_t>(i);
        d[month_[k]] += q * mk_.delta[k];
    };
    bool done = r.instrument < 0;
    for (const Position* p = r.begin; p != r.end; ++p) {
        if (!done && r.instrument <= p->instrument) {
            done = true;
            if (r.quantity != 0.0) add(r.instrument, r.quantity);
            if (r.instrument == p->instrument) continue;
        }
        add(p->instrument, p->quantity);
    }
    if (!done && r.quantity != 0.0) add(r.instrument, r.quantity);
}

// Forms an intra add-on's spreads in order on d (consumed); returns sum n rate.
double SpreadModel::form_intra(const AddOnSpec& a, double* d) const {
    double charge = 0.0;
    double x[kMaxLegs];
    for (const DeltaSpreadSpec& s : a.spreads) {
        double n;
        if (s.one_tier) {
            n = form_one_tier(s, d, a.whole);
        } else {
            for (std::size_t k = 0; k < s.legs.size(); ++k) x[k] = leg_sum(d, s.legs[k].months);
            n = form_count(s, x, a.whole);
            for (std::size_t k = 0; k < s.legs.size(); ++k) consume(d, s.legs[k].months, sgn(x[k]), n * s.legs[k].ratio);
        }
        charge += n * s.rate;
    }
    return charge;
}

namespace {
std::vector<double>& month_scratch(std::size_t n) {
    thread_local std::vector<double> d;
    if (d.size() < n) d.resize(n);
    return d;
}
}  // namespace

void SpreadModel::intra_charges(const PositionRange& r, std::int32_t unit, double* out) const {
    if (intra_.empty()) return;
    double* d = month_scratch(nm_).data();
    const auto u = static_cast<std::size_t>(unit);
    for (const std::size_t k : intra_) {
        const AddOnSpec& a = model_.addons[k];
        if (!a.scope[u]) {
            out[k] = 0.0;
            continue;
        }
        month_deltas(r, d);
        const double charge = form_intra(a, d);
        out[k] = a.usd ? charge / mk_.unit_fx[u] : charge;
    }
}

// SPAN price risk of a pair (spreads.price_risk): scan - time risk - vol risk, floored at 0; or the
// scan risk itself.
double SpreadModel::price_risk(std::int32_t unit, const double* wpnl, bool scan_only) const {
    std::size_t worst = 0;
    for (std::size_t s = 1; s < ns_; ++s)
        if (wpnl[s] < wpnl[worst]) worst = s;
    const double scan = std::max(0.0, -wpnl[worst]);
    if (scan_only) return scan;
    if (!(scan > 0)) return 0.0;
    const std::size_t base = static_cast<std::size_t>(unit) * ns_;
    double sum = 0.0;
    std::size_t count = 0;
    for (std::size_t s = 0; s < ns_; ++s)
        if (time_[base + s]) sum += -wpnl[s], ++count;
    const double time_risk = count > 0 ? sum / static_cast<double>(count) : 0.0;
    const double active = -wpnl[worst];
    const double pair_loss = -wpnl[static_cast<std::size_t>(paired_[base + worst])];
    const double vol_risk = std::max(active - pair_loss, 0.0) / 2.0;
    return std::max(scan - time_risk - vol_risk, 0.0);
}

void SpreadModel::pair_state(const PositionRange& r, std::int32_t unit, const double* wpnl, PairSpreads& st) const {
    reserve(st);
    for (std::size_t j = 0; j < inter_.size(); ++j) {
        const AddOnSpec& a = model_.addons[inter_[j]];
        double* d = st.rest.data() + j * nm_;
        month_deltas(r, d);
        if (a.after >= 0) {
            const AddOnSpec& intra = model_.addons[static_cast<std::size_t>(a.after)];
            if (intra.scope[static_cast<std::size_t>(unit)]) form_intra(intra, d);
        }
        double net = 0.0;
        for (std::size_t m = 0; m < nm_; ++m) net += d[m];
        const double risk = price_risk(unit, wpnl, a.scan_price_risk);
        st.wfpr[j] = std::abs(net) > kTol ? risk / std::abs(net) : 0.0;
    }
}

// One inter add-on's spreads in order over an account's pairs (InterSpread.compute); d holds the
// pairs' month deltas [n x n_months] (consumed).
void SpreadModel::form_inter(const AddOnSpec& a, const SpreadPair* pairs, std::size_t n, std::size_t j, double* d,
                             double* credit) const {
    const std::size_t ni = inter_.size();
    std::size_t at[kMaxLegs];
    double x[kMaxLegs];
    for (const DeltaSpreadSpec& s : a.spreads) {
        bool held = true;
        for (std::size_t k = 0; k < s.legs.size() && held; ++k) {
            at[k] = n;
            for (std::size_t p = 0; p < n; ++p)
                if (pairs[p].unit == s.legs[k].unit) at[k] = p;
            held = at[k] < n;
        }
        if (!held) continue;
        for (std::size_t k = 0; k < s.legs.size(); ++k) x[k] = leg_sum(d + at[k] * nm_, s.legs[k].months);
        const double count = form_count(s, x, a.whole);
        for (std::size_t k = 0; k < s.legs.size(); ++k) {
            const std::size_t p = at[k];
            credit[p * ni + j] += s.rate * count * s.legs[k].ratio * pairs[p].state->wfpr[j];
            consume(d + p * nm_, s.legs[k].months, sgn(x[k]), count * s.legs[k].ratio);
        }
    }
}

void SpreadModel::inter_credits(const SpreadPair* pairs, std::size_t n, double* credit) const {
    const std::size_t ni = inter_.size();
    std::fill(credit, credit + n * ni, 0.0);
    if (n == 0) return;
    thread_local std::vector<double> scratch;
    if (scratch.size() < n * nm_) scratch.resize(n * nm_);
    double* d = scratch.data();
    for (std::size_t j = 0; j < ni; ++j) {
        for (std::size_t p = 0; p < n; ++p) {
            const double* rest = pairs[p].state->rest.data() + j * nm_;
            std::copy(rest, rest + nm_, d + p * nm_);
        }
        form_inter(model_.addons[inter_[j]], pairs, n, j, d, credit);
    }
}

}  // namespace marginkernel::detail
