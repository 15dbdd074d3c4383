// Scenario builders, the model resolved for a market and book assembly for C++ programs
// (model_file.hpp; the files themselves are read in model_file.cpp). The scenario builders mirror
// marginkernel.scenarios (deribit_grid, range_points) operation for operation, so C++ and Python
// build the same numbers.
#include <algorithm>
#include <cmath>
#include <limits>

#include "checks.hpp"
#include "marginkernel/model_file.hpp"
#include "marginkernel/revalue.hpp"

namespace marginkernel {

using detail::show;

ScenariosView ScenarioTable::view(const double* unit_spot) const noexcept {
    ScenariosView v;
    v.n_units = n_units;
    v.n_scenarios = n_scenarios;
    v.spot = unit_spot;
    v.price_multiplier = price_multiplier.data();
    v.vol_shift = vol_shift.data();
    v.time_shift = time_shift.empty() ? nullptr : time_shift.data();
    v.vol_shock = vol_shock;
    v.tau_floor_days = tau_floor_days;
    v.short_power = short_power;
    v.long_power = long_power;
    v.vol_up_floor = vol_up_floor;
    return v;
}

namespace {

[[noreturn]] void fail(const std::string& where, const std::string& problem) { throw InvalidInput(where, -1, problem); }

struct Params {
    const std::map<std::string, Param>& p;
    double num(const char* key, double fallback) const {
        const auto it = p.find(key);
        if (it == p.end()) return fallback;
        if (it->second.type != Param::Type::number) fail(std::string("scenarios.") + key, "expected a number");
        return it->second.per.value;
    }
    bool flag(const char* key, bool fallback) const {
        const auto it = p.find(key);
        return it == p.end() ? fallback : it->second.flag;
    }
    std::vector<double> nums(const char* key, std::vector<double> fallback) const {
        const auto it = p.find(key);
        return it == p.end() ? fallback : it->second.numbers;
    }
    std::string str(const char* key, const std::string& fallback) const {
        const auto it = p.find(key);
        return it == p.end() ? fallback : it->second.text;
    }
    // per_underlying(): a number or a table by underlying with "default".
    std::vector<double> per(const char* key, double fallback, const std::vector<std::string>& unders) const {
        const auto it = p.find(key);
        std::vector<double> out;
        for (const auto& u : unders)
            out.push_back(it == p.end() ? fallback : it->second.per.lookup(u, u, nullptr, std::string("scenarios.") + key));
        return out;
    }
};

// Columns of (scenario s, unit u) appended scenario by scenario; stored [u x s] at the end.
struct Builder {
    std::size_t nu;
    std::vector<std::vector<double>> mult, shift, weight;  // per scenario, [nu]
    void add(std::vector<double> m, std::vector<double> v, std::vector<double> w) {
        mult.push_back(std::move(m));
        shift.push_back(std::move(v));
        weight.push_back(std::move(w));
    }
    void finish(ScenarioTable& t) const {
        t.n_units = nu;
        t.n_scenarios = mult.size();
        for (auto* out : {&t.price_multiplier, &t.vol_shift, &t.weight}) out->assign(nu * t.n_scenarios, 0.0);
        for (std::size_t s = 0; s < t.n_scenarios; ++s)
            for (std::size_t u = 0; u < nu; ++u) {
                t.price_multiplier[u * t.n_scenarios + s] = mult[s][u];
                t.vol_shift[u * t.n_scenarios + s] = shift[s][u];
                t.weight[u * t.n_scenarios + s] = weight[s][u];
            }
    }
};

ScenarioTable deribit_grid(const Params& p, const std::vector<std::string>& unders) {
    const std::size_t nu = unders.size();
    const auto rng = p.per("price_range", 0.16, unders);
    const double steps_d = p.num("steps", 4.0);
    if (!(steps_d >= 1) || steps_d != std::floor(steps_d) || steps_d > 100000) fail("scenarios.steps", "must be an integer in [1, 100000]");
    const auto steps = static_cast<long>(steps_d);
    const double vol_up = p.num("vol_up", 0.5), vol_down = p.num("vol_down", 0.25);
    const auto moves = p.nums("extended_moves", {-0.66, -0.33, 0.5, 1.0, 2.0, 3.0, 4.0, 5.0});
    const double damp = p.num("extended_dampener", 1.0);
    for (double r : rng)
        if (!(r > 0 && r < 1)) fail("scenarios.price_range", "must be in (0, 1), got " + show(r));
    Builder b{nu, {}, {}, {}};
    std::vector<double> fractions;
    for (long k = -steps; k <= steps; ++k) fractions.push_back(static_cast<double>(k) / static_cast<double>(steps));
    for (const double v : {vol_up, 0.0, -vol_down})
        for (const double f : fractions) {
            std::vector<double> m(nu);
            for (std::size_t u = 0; u < nu; ++u) m[u] = 1.0 + f * rng[u];
            b.add(m, std::vector<double>(nu, v), std::vector<double>(nu, 1.0));
        }
    for (const double move : moves) {
        if (move <= -1 || move == 0) fail("scenarios.extended_moves", "each move must be > -100% and non-zero");
        std::vector<double> w(nu);
        for (std::size_t u = 0; u < nu; ++u) w[u] = rng[u] / std::abs(move) * damp;
        b.add(std::vector<double>(nu, 1.0 + move), std::vector<double>(nu, vol_up), w);
    }
    ScenarioTable t;
    b.finish(t);
    t.vol_shock = VolShockKind::multiplicative;
    t.tau_floor_days = p.num("tau_floor_days", 1.0);
    t.short_power = p.num("short_power", 0.30);
    t.long_power = p.num("long_power", 0.13);
    t.vol_up_floor = p.num("vol_up_floor", 0.0);
    if (p.flag("extended_options_only", false)) {
        t.options_only.assign(t.n_scenarios, 0);
        for (std::size_t s = 3 * fractions.size(); s < t.n_scenarios; ++s) t.options_only[s] = 1;
    }
    return t;
}

VolShockKind vol_shock_kind(const std::string& name) {
    if (name == "none") return VolShockKind::none;
    if (name == "multiplicative") return VolShockKind::multiplicative;
    if (name == "additive") return VolShockKind::additive;
    if (name == "relative") return VolShockKind::relative;
    fail("scenarios.vol_shock", "unknown vol shock '" + name + "'");
}

ScenarioTable range_points(const Params& p, const std::vector<std::string>& unders) {
    const std::size_t nu = unders.size();
    const auto ups = p.per("up", 0.1, unders), downs = p.per("down", 0.1, unders);
    const double points_d = p.num("points", 10.0);
    if (!(points_d >= 2) || points_d != std::floor(points_d) || std::fmod(points_d, 2.0) != 0 || points_d > 200000)
        fail("scenarios.points", "must be an even number >= 2");
    const long half = static_cast<long>(points_d) / 2;
    const double multiple = p.num("extreme_multiple", 0.0), cover = p.num("extreme_cover", 1.0);
    const double extreme_shift = p.num("extreme_vol_shift", 0.0), lookahead = p.num("lookahead_days", 0.0);
    const auto shifts = p.nums("vol_shift", {0.0});
    std::vector<double> fractions;
    for (long k = half; k >= 1; --k) fractions.push_back(-(static_cast<double>(k) / static_cast<double>(half)));
    if (p.flag("include_zero", false)) fractions.push_back(0.0);
    for (long k = 1; k <= half; ++k) fractions.push_back(static_cast<double>(k) / static_cast<double>(half));
    Builder b{nu, {}, {}, {}};
    for (const double v : shifts)
        for (const double f : fractions) {
            std::vector<double> m(nu);
            for (std::size_t u = 0; u < nu; ++u) m[u] = 1.0 + (f < 0 ? f * downs[u] : f * ups[u]);
            b.add(m, std::vector<double>(nu, v), std::vector<double>(nu, 1.0));
        }
    if (multiple > 0)
        for (const double sign : {1.0, -1.0}) {
            std::vector<double> m(nu);
            for (std::size_t u = 0; u < nu; ++u) m[u] = 1.0 + sign * multiple * (sign > 0 ? ups[u] : downs[u]);
            b.add(m, std::vector<double>(nu, extreme_shift), std::vector<double>(nu, cover));
        }
    ScenarioTable t;
    b.finish(t);
    if (lookahead != 0) t.time_shift.assign(t.n_scenarios, lookahead / 365.0);
    t.vol_shock = vol_shock_kind(p.str("vol_shock", "none"));
    t.short_power = p.num("short_power", 0.0);
    t.long_power = p.num("long_power", 0.0);
    t.tau_floor_days = p.num("tau_floor_days", 1.0);
    return t;
}

std::vector<double> resolve_per_unit(const AddOnTable& a, const char* key, const BookInputs& in, const double* fallback) {
    const auto it = a.params.find(key);
    std::vector<double> out(in.unit_names.size());
    const std::string where = "addons." + a.name + "." + key;
    for (std::size_t u = 0; u < out.size(); ++u) {
        if (it == a.params.end()) {
            if (!fallback) fail(where, "missing");
            out[u] = *fallback;
        } else {
            out[u] = it->second.per.lookup(in.unit_names[u], in.unit_underlying[u], nullptr, where);
        }
    }
    return out;
}

std::uint8_t kind_bits(const AddOnTable& a, std::vector<std::string> fallback) {
    const auto it = a.params.find("kinds");
    const auto& names = it == a.params.end() ? fallback : it->second.strings;
    const char* kinds[] = {"future", "perpetual", "call", "put", "spot"};
    std::uint8_t bits = 0;
    for (const auto& n : names) {
        int k = 0;
        while (k < 5 && n != kinds[k]) ++k;
        if (k == 5) fail("addons." + a.name + ".kinds", "unknown kind '" + n + "'");
        bits = static_cast<std::uint8_t>(bits | (1u << k));
    }
    return bits;
}

std::string option(const AddOnTable& a, const char* key, const std::string& fallback) {
    const auto it = a.params.find(key);
    return it == a.params.end() ? fallback : it->second.text;
}

}  // namespace

ScenarioTable build_scenarios(const ModelFile& model, const std::vector<std::string>& underlyings) {
    const Params p{model.scenario_params};
    if (model.builder == "deribit_grid") return deribit_grid(p, underlyings);
    return range_points(p, underlyings);
}

BookModel resolve_model(const ModelFile& model, const BookInputs& in) {
    BookModel m;
    m.netting = model.netting;
    m.mode = model.mode;
    m.im_factor = model.im_factor;
    m.mm_factor = model.mm_factor;
    m.gain_cap = model.gain_cap;
    const double one = 1.0, zero = 0.0;
    std::vector<std::string> currencies;
    for (const auto& c : in.unit_currency)
        if (std::find(currencies.begin(), currencies.end(), c) == currencies.end()) currencies.push_back(c);
    if (model.netting == Netting::currency)
        for (std::size_t u = 0; u < in.unit_names.size(); ++u)
            m.gain_factor.push_back(model.gain_factor.lookup(in.unit_names[u], in.unit_underlying[u], &one, "model.gain_factor"));
    if (model.netting == Netting::account)
        for (const auto& c : currencies) m.gain_factor.push_back(model.gain_factor.lookup(c, c, &one, "model.gain_factor"));
    for (const AddOnTable& a : model.addons) {
        AddOnSpec s;
        s.name = a.name;
        s.usd = option(a, "currency", "settlement") == "USD";
        const auto tiers = a.params.find("tiers");
        if (tiers != a.params.end()) s.tiers = tiers->second.pairs;
        if (a.type == "roll_shock") {
            s.type = AddOnType::roll_shock;
            s.annualised_move_risk = resolve_per_unit(a, "annualised_move_risk", in, &zero);
            s.min_annualised_move = resolve_per_unit(a, "min_annualised_move", in, &zero);
            s.kinds = kind_bits(a, {"future", "perpetual"});
        } else if (a.type == "delta_shock") {
            s.type = AddOnType::delta_shock;
            s.threshold = resolve_per_unit(a, "threshold", in, &zero);
            s.shock = resolve_per_unit(a, "shock", in, nullptr);
        } else if (a.type == "short_option_minimum") {
            s.type = AddOnType::short_option_minimum;
            s.rate = resolve_per_unit(a, "rate", in, nullptr);
            s.notional_basis = option(a, "basis", "contract") == "notional";
            s.max_method = option(a, "method", "gross") == "max";
        } else if (a.type == "per_contract_minimum") {
            s.type = AddOnType::per_contract_minimum;
            s.rate = resolve_per_unit(a, "rate", in, nullptr);
            s.kinds = kind_bits(a, {"call", "put", "future"});
            s.notional_basis = option(a, "basis", "multiplier") == "notional";
        } else if (a.type == "concentration") {
            s.type = AddOnType::concentration;
            s.gross_delta = option(a, "measure", "net_delta") == "gross_delta";
            if (tiers == a.params.end()) fail("addons." + a.name + ".tiers", "missing");
        } else {
            s.type = AddOnType::contingency;
            s.option_rate = resolve_per_unit(a, "option_rate", in, &zero);
            s.future_rate = resolve_per_unit(a, "future_rate", in, &zero);
            s.short_only = option(a, "option_side", "gross") == "short";
        }
        m.addons.push_back(std::move(s));
    }
    return m;
}

std::unique_ptr<ModelBook> make_book(const ModelFile& model, const BookInputs& in, std::size_t n_accounts, int threads) {
    const std::size_t nu = in.unit_names.size(), ni = in.instrument_ids.size();
    const ScenarioTable sc = build_scenarios(model, in.unit_underlying);
    std::vector<double> risk(ni * sc.n_scenarios);
    revalue(in.instruments(), sc.view(in.unit_spot.data()), risk.data(), nullptr, threads);
    if (!sc.options_only.empty())  // counted risk: linear instruments count 0 in options-only scenarios
        for (std::size_t i = 0; i < ni; ++i)
            if (in.kind[i] != static_cast<std::int8_t>(Kind::call) && in.kind[i] != static_cast<std::int8_t>(Kind::put))
                for (std::size_t s = 0; s < sc.n_scenarios; ++s)
                    if (sc.options_only[s]) risk[i * sc.n_scenarios + s] = 0.0;
    std::vector<std::string> currencies;
    std::vector<std::int32_t> unit_currency(nu);
    std::vector<double> currency_fx;
    for (std::size_t u = 0; u < nu; ++u) {
        auto it = std::find(currencies.begin(), currencies.end(), in.unit_currency[u]);
        if (it == currencies.end()) {
            currencies.push_back(in.unit_currency[u]);
            currency_fx.push_back(in.unit_fx[u]);
            it = currencies.end() - 1;
        }
        unit_currency[u] = static_cast<std::int32_t>(it - currencies.begin());
    }
    std::vector<double> haircut;
    const double zero = 0.0;
    for (const auto& c : in.collateral_currencies)
        haircut.push_back(model.collateral_haircut.lookup(c, c, &zero, "collateral.haircut"));
    BookMarketView mv;
    mv.n_units = nu;
    mv.unit_spot = in.unit_spot.data();
    mv.unit_fx = in.unit_fx.data();
    mv.unit_currency = unit_currency.data();
    mv.n_currencies = currencies.size();
    mv.currency_fx = currency_fx.data();
    mv.report_fx = in.report_fx;
    mv.n_collateral = in.collateral_currencies.size();
    mv.collateral_fx = in.collateral_fx.data();
    mv.collateral_haircut = haircut.data();
    std::vector<double> expiry = in.expiry;  // perpetuals and spot never expire
    for (std::size_t i = 0; i < ni; ++i)
        if (in.kind[i] == static_cast<std::int8_t>(Kind::perpetual) || in.kind[i] == static_cast<std::int8_t>(Kind::spot))
            expiry[i] = std::numeric_limits<double>::infinity();
    InstrumentsView iv = in.instruments();
    iv.expiry = expiry.data();
    return std::make_unique<ModelBook>(resolve_model(model, in), iv, mv, risk.data(), sc.weight.data(), sc.n_scenarios,
                                       n_accounts);
}

}  // namespace marginkernel
