// Construction of the model book (book_impl.hpp): the model, instruments, market and risk rows
// validated (an InvalidInput naming the field and row) and laid out, then the accounts; the
// book's sizes and the add-on terms. The other sources: book_eval.cpp (what-if and the read side),
// book_fill.cpp (fills, recompute), book_market.cpp (market refresh); book_impl.hpp lists them all.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <shared_mutex>
#include <string>
#include <vector>

#include "book_impl.hpp"
#include "checks.hpp"
#include "select.hpp"

namespace marginkernel {

namespace {

template <class T>
void copy_or(std::vector<T>& out, const T* src, std::size_t n, T fallback) {
    out.assign(n, fallback);
    if (src) std::copy(src, src + n, out.begin());
}

}  // namespace

// Sizes, pointers and the model's scalar fields.
void ModelBook::Impl::check_views(const BookModel& spec, const InstrumentsView& in, const BookMarketView& mv,
                                  const double* rows, std::size_t n_scenarios) const {
    if (in.n == 0) throw InvalidInput("instruments", -1, "no instruments");
    if (n_scenarios == 0) throw InvalidInput("risk", -1, "no scenarios");
    if (mv.n_units == 0) throw InvalidInput("n_units", -1, "no risk units");
    if (mv.n_currencies == 0) throw InvalidInput("n_currencies", -1, "no settlement currencies");
    if (in.n > static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max()))
        throw InvalidInput("instruments", -1, "too many instruments");
    for (const char* f : {"kind", "settlement", "risk_unit", "multiplier", "forward"})
        require_pointer(f, f[0] == 'k'   ? static_cast<const void*>(in.kind)
                           : f[0] == 's' ? static_cast<const void*>(in.settlement)
                           : f[0] == 'r' ? static_cast<const void*>(in.risk_unit)
                           : f[0] == 'm' ? static_cast<const void*>(in.multiplier)
                                         : static_cast<const void*>(in.forward));
    require_pointer("risk", rows);
    require_pointer("unit_spot", mv.unit_spot);
    require_pointer("unit_fx", mv.unit_fx);
    require_pointer("unit_currency", mv.unit_currency);
    require_pointer("currency_fx", mv.currency_fx);
    if (spec.addons.size() > kMaxAddOns)
        throw InvalidInput("addons", -1, "at most " + std::to_string(kMaxAddOns) + " add-ons, got " +
                                             std::to_string(spec.addons.size()));
    require_non_negative("im_factor", -1, spec.im_factor);
    require_non_negative("mm_factor", -1, spec.mm_factor);
    if (!(spec.gain_cap >= 0)) throw InvalidInput("gain_cap", -1, "must be >= 0, got " + show(spec.gain_cap));
    require_positive("report_fx", -1, mv.report_fx);
    const auto measure = static_cast<int>(spec.measure);
    if (measure < 0 || measure > 2) throw InvalidInput("measure", -1, "unknown measure " + std::to_string(measure));
    const auto netting = static_cast<int>(spec.netting);
    if (netting < 0 || netting > 2) throw InvalidInput("netting", -1, "unknown netting level " + std::to_string(netting));
}

// VaR / ES: the quantile level, its index among equally likely scenarios, the probabilities.
void ModelBook::Impl::set_measure(const BookModel& spec, std::size_t n_scenarios) {
    if (spec.measure != Measure::worst_loss) {
        if (!(spec.confidence > 0.0 && spec.confidence < 1.0))
            throw InvalidInput("confidence", -1, "must be in (0, 1), got " + show(spec.confidence));
        level = tail_level(spec.confidence);  // as marginkernel.kernels.value_at_risk (select.hpp)
        var_index = equal_weight_index(n_scenarios, level);
        if (!spec.probability.empty()) {
            if (spec.probability.size() != n_scenarios)
                throw InvalidInput("probability", -1, "expected " + std::to_string(n_scenarios) + " values, got " +
                                                          std::to_string(spec.probability.size()));
            for (std::size_t s = 0; s < n_scenarios; ++s) {
                require_non_negative("probability", static_cast<long long>(s), spec.probability[s]);
                probability_total += spec.probability[s];
            }
            if (!std::isfinite(probability_total)) throw InvalidInput("probability", -1, "sum overflows (is not finite)");
            if (!(probability_total > 0.0)) throw InvalidInput("probability", -1, "must not all be zero");
            probability = spec.probability;
        }
    }
}

// The book's sizes and model; the units' currencies, the currencies' FX and the gain factors.
void ModelBook::Impl::set_units(const BookModel& spec, const BookMarketView& mv, std::size_t n_instruments,
                                std::size_t n_scenarios) {
    ni = n_instruments;
    ns = n_scenarios;
    nu = mv.n_units;
    nc = mv.n_currencies;
    stride = (ns + 7) / 8 * 8;
    model = spec;
    n_addons = spec.addons.size();
    for (std::size_t k = 0; k < n_addons; ++k) combine[k] = combine_of(spec.addons[k].type);
    report_fx = mv.report_fx;
    unit_currency.assign(mv.unit_currency, mv.unit_currency + nu);
    for (std::size_t u = 0; u < nu; ++u) {
        if (unit_currency[u] < 0 || static_cast<std::size_t>(unit_currency[u]) >= nc)
            throw InvalidInput("unit_currency", static_cast<long long>(u), "out of range");
        require_positive("unit_spot", static_cast<long long>(u), mv.unit_spot[u]);
        require_positive("unit_fx", static_cast<long long>(u), mv.unit_fx[u]);
    }
    currency_fx.assign(mv.currency_fx, mv.currency_fx + nc);
    for (std::size_t c = 0; c < nc; ++c) require_positive("currency_fx", static_cast<long long>(c), currency_fx[c]);
    const std::size_t n_gain = spec.netting == Netting::account ? nc : nu;
    if (!spec.gain_factor.empty() && spec.gain_factor.size() != n_gain)
        throw InvalidInput("gain_factor", -1, "expected " + std::to_string(n_gain) + " values, got " +
                                                  std::to_string(spec.gain_factor.size()));
    std::vector<double> gain = spec.gain_factor.empty() ? std::vector<double>(n_gain, 1.0) : spec.gain_factor;
    for (std::size_t k = 0; k < gain.size(); ++k) require_non_negative("gain_factor", static_cast<long long>(k), gain[k]);
    (spec.netting == Netting::account ? currency_gain : unit_gain) = gain;
    if (unit_gain.empty()) unit_gain.assign(nu, 1.0);
    if (currency_gain.empty()) currency_gain.assign(nc, 1.0);
}

// Each add-on's per-unit parameters: one value per unit, none negative.
void ModelBook::Impl::check_addon_parameters() const {
    for (std::size_t k = 0; k < n_addons; ++k) {
        const AddOnSpec& a = model.addons[k];
        const std::vector<const std::vector<double>*> need =
            a.type == AddOnType::roll_shock     ? std::vector<const std::vector<double>*>{&a.annualised_move_risk, &a.min_annualised_move}
            : a.type == AddOnType::delta_shock  ? std::vector<const std::vector<double>*>{&a.threshold, &a.shock}
            : a.type == AddOnType::contingency  ? std::vector<const std::vector<double>*>{&a.option_rate, &a.future_rate}
            : a.type == AddOnType::concentration || a.type == AddOnType::intra_spread ||
                      a.type == AddOnType::inter_spread
                ? std::vector<const std::vector<double>*>{}
                                                 : std::vector<const std::vector<double>*>{&a.rate};
        for (const auto* v : need) {
            if (v->size() != nu)
                throw InvalidInput("addons." + a.name, -1, "a per-unit parameter has " + std::to_string(v->size()) +
                                                               " values for " + std::to_string(nu) + " units");
            for (std::size_t u = 0; u < nu; ++u)
                require_non_negative(("addons." + a.name).c_str(), static_cast<long long>(u), (*v)[u]);
        }
    }
}

// The collateral currencies' FX (default: the settlement currencies') and haircuts.
void ModelBook::Impl::set_collateral_terms(const BookMarketView& mv) {
    coll_fx.assign(mv.collateral_fx ? mv.collateral_fx : currency_fx.data(),
                     (mv.collateral_fx ? mv.collateral_fx : currency_fx.data()) + mv.n_collateral);
    copy_or(coll_haircut, mv.collateral_haircut, mv.n_collateral, 0.0);
    for (std::size_t k = 0; k < mv.n_collateral; ++k) {
        require_positive("collateral_fx", static_cast<long long>(k), coll_fx[k]);
        if (!(coll_haircut[k] >= 0 && coll_haircut[k] <= 1))
            throw InvalidInput("collateral_haircut", static_cast<long long>(k), "must be in [0, 1]");
    }
}

// The instruments, their market (delta, notional) and add-on terms, grouped by unit.
void ModelBook::Impl::set_instruments(const InstrumentsView& in, const BookMarketView& mv) {
    mk.kind.assign(in.kind, in.kind + ni);
    mk.settlement.assign(in.settlement, in.settlement + ni);
    mk.unit.assign(in.risk_unit, in.risk_unit + ni);
    mk.multiplier.assign(in.multiplier, in.multiplier + ni);
    mk.forward.assign(in.forward, in.forward + ni);
    copy_or(mk.expiry, in.expiry, ni, kInf);
    copy_or(strike, in.strike, ni, 0.0);
    copy_or(vol, in.vol, ni, 0.0);
    copy_or(discount, in.discount, ni, 1.0);
    mk.unit_spot.assign(mv.unit_spot, mv.unit_spot + nu);
    mk.unit_fx.assign(mv.unit_fx, mv.unit_fx + nu);
    mk.delta.assign(ni, 0.0);
    mk.notional.assign(ni, 0.0);
    unit_instruments.resize(nu);
    for (std::size_t i = 0; i < ni; ++i) {
        const auto ll = static_cast<long long>(i);
        if (mk.unit[i] < 0 || static_cast<std::size_t>(mk.unit[i]) >= nu)
            throw InvalidInput("risk_unit", ll, "must be in [0, " + std::to_string(nu) + ")");
        if (mk.kind[i] < 0 || mk.kind[i] > 4) throw InvalidInput("kind", ll, "unknown kind");
        if (mk.settlement[i] < 0 || mk.settlement[i] > 1) throw InvalidInput("settlement", ll, "unknown settlement");
        require_positive("multiplier", ll, mk.multiplier[i]);
        require_positive("forward", ll, mk.forward[i]);
        if (std::isnan(mk.expiry[i])) throw InvalidInput("expiry", ll, "is NaN");
        unit_instruments[static_cast<std::size_t>(mk.unit[i])].push_back(static_cast<std::int32_t>(i));
        refresh_instrument(mk, i, strike[i], vol[i], discount[i]);
        if (!std::isfinite(mk.delta[i]) || !std::isfinite(mk.notional[i]))
            throw InvalidInput("instruments", ll, "delta or notional is not finite");
    }
    terms.resize(ni * n_addons);
    for (std::size_t i = 0; i < ni; ++i) refresh_terms(i);
}

// The unit weights w and the rows R and W = w * R (finite, checked).
void ModelBook::Impl::set_risk(const double* rows, const double* weights) {
    risk = make_buffer(ni * stride);
    wrisk = make_buffer(ni * stride);
    weight = make_buffer(nu * stride);
    zeros = make_buffer(stride);
    risk_max.assign(ni, 0.0);
    for (std::size_t u = 0; u < nu; ++u)
        for (std::size_t s = 0; s < ns; ++s) {
            const double v = weights ? weights[u * ns + s] : 1.0;
            require_non_negative("weight", static_cast<long long>(u), v);
            weight[u * stride + s] = v;
        }
    for (std::size_t i = 0; i < ni; ++i) {
        const double* w = weight.get() + static_cast<std::size_t>(mk.unit[i]) * stride;
        double* wr = wrisk.get() + i * stride;
        for (std::size_t s = 0; s < ns; ++s) {
            const double x = rows[i * ns + s];
            risk[i * stride + s] = x;
            wr[s] = w[s] * x;
            if (!std::isfinite(x) || !std::isfinite(wr[s]))
                throw InvalidInput("risk", static_cast<long long>(i), "scenario " + std::to_string(s) + " is not finite");
            risk_max[i] = std::max(risk_max[i], std::abs(wr[s]));
        }
    }
}

void ModelBook::Impl::refresh_terms(std::size_t i) noexcept {
    for (std::size_t k = 0; k < n_addons; ++k) terms[i * n_addons + k] = addon_term(model.addons[k], mk, i);
}

void ModelBook::Impl::refresh_currency_terms(std::int32_t c) noexcept {
    for (std::size_t v = 0; v < nu; ++v)
        if (unit_currency[v] == c)
            for (const auto i : unit_instruments[v]) refresh_terms(static_cast<std::size_t>(i));
}

ModelBook::ModelBook(const BookModel& model, const InstrumentsView& in, const BookMarketView& mv, const double* risk,
                     const double* weight, std::size_t n_scenarios, std::size_t n_accounts)
    : impl_(std::make_unique<Impl>()) {
    Impl& m = *impl_;
    m.check_views(model, in, mv, risk, n_scenarios);
    m.set_measure(model, n_scenarios);
    m.set_units(model, mv, in.n, n_scenarios);
    m.check_addon_parameters();
    m.set_collateral_terms(mv);
    m.set_instruments(in, mv);
    m.set_risk(risk, weight);
    bool spread_addons = false;  // SPAN delta spreads (book_spreads.hpp)
    for (const AddOnSpec& a : model.addons)
        spread_addons = spread_addons || a.type == AddOnType::intra_spread || a.type == AddOnType::inter_spread;
    if (spread_addons) m.spreads = std::make_unique<SpreadModel>(m.model, mv, m.mk, m.ni, m.ns);
    m.holders.resize(m.nu);
    append_accounts(m.accounts, n_accounts);
}

ModelBook::~ModelBook() = default;

std::size_t ModelBook::n_accounts() const {
    std::shared_lock book(impl_->book_mutex);
    return impl_->accounts.size();
}
std::size_t ModelBook::n_instruments() const noexcept { return impl_->ni; }
std::size_t ModelBook::n_units() const noexcept { return impl_->nu; }
std::size_t ModelBook::n_scenarios() const noexcept { return impl_->ns; }
std::size_t ModelBook::n_currencies() const noexcept { return impl_->nc; }
const BookModel& ModelBook::model() const noexcept { return impl_->model; }

std::int64_t ModelBook::add_accounts(std::size_t count) {
    Impl& m = *impl_;
    std::unique_lock book(m.book_mutex);
    return append_accounts(m.accounts, count);
}

std::vector<std::int32_t> ModelBook::instruments_of(std::int32_t u) const {
    impl_->require_unit(u);
    return impl_->unit_instruments[static_cast<std::size_t>(u)];
}

}  // namespace marginkernel
