// Model files (TOML, read with toml++), compiled market files, scenario builders and book assembly
// for C++ programs (model_file.hpp). The scenario builders mirror marginkernel.scenarios
// (deribit_grid, range_points) operation for operation, so C++ and Python build the same numbers.
#define TOML_HEADER_ONLY 1
#define TOML_EXCEPTIONS 1
#include <toml++/toml.h>

#include "marginkernel/model_file.hpp"

#include <algorithm>
#include <cmath>
#include <set>

#include "checks.hpp"
#include "marginkernel/revalue.hpp"

#ifndef MK_PRESETS_DIR
#define MK_PRESETS_DIR ""
#endif

namespace marginkernel {

using detail::show;

namespace {

[[noreturn]] void fail(const std::string& where, const std::string& problem) { throw InvalidInput(where, -1, problem); }

double number(const toml::node& n, const std::string& where) {
    if (!n.is_number()) fail(where, "expected a number");
    const double v = n.value<double>().value_or(std::nan(""));
    if (std::isnan(v)) fail(where, "must not be NaN");
    return v;
}

PerKey per_key(const toml::node& n, const std::string& where) {
    PerKey p;
    if (const auto* t = n.as_table()) {
        p.is_table = true;
        if (t->empty()) fail(where, "empty table");
        for (auto&& [k, v] : *t) p.table.emplace_back(std::string(k.str()), number(v, where + "." + std::string(k.str())));
        return p;
    }
    p.value = number(n, where);
    return p;
}

Param param(const toml::node& n, const std::string& where) {
    Param p;
    if (n.is_boolean()) {
        p.type = Param::Type::flag;
        p.flag = *n.value<bool>();
    } else if (n.is_string()) {
        p.type = Param::Type::text;
        p.text = *n.value<std::string>();
    } else if (n.is_number() || n.is_table()) {
        p.type = n.is_table() ? Param::Type::table : Param::Type::number;
        p.per = per_key(n, where);
    } else if (const auto* a = n.as_array()) {
        const bool strings = !a->empty() && (*a)[0].is_string();
        const bool pairs = !a->empty() && (*a)[0].is_array();
        p.type = strings ? Param::Type::strings : pairs ? Param::Type::pairs : Param::Type::numbers;
        std::size_t k = 0;
        for (const auto& e : *a) {
            const std::string w = where + "[" + std::to_string(k++) + "]";
            if (strings) {
                if (!e.is_string()) fail(w, "expected a string");
                p.strings.push_back(*e.value<std::string>());
            } else if (pairs) {
                const auto* row = e.as_array();
                if (!row || row->size() != 2) fail(w, "expected [start, value]");
                p.pairs.emplace_back(number((*row)[0], w + "[0]"), number((*row)[1], w + "[1]"));
            } else {
                p.numbers.push_back(number(e, w));
            }
        }
    } else {
        fail(where, "unsupported value");
    }
    return p;
}

std::string text(const toml::node& n, const std::string& where) {
    if (!n.is_string()) fail(where, "expected a string");
    return *n.value<std::string>();
}

const std::set<std::string> kModelKeys = {"name", "methodology", "description", "source", "as_of", "measure",
                                          "netting", "confidence", "gain_factor", "gain_cap", "im_factor",
                                          "mm_factor", "mode", "currency"};
const std::set<std::string> kHeldAddOns = {"roll_shock", "delta_shock", "short_option_minimum",
                                           "per_contract_minimum", "concentration", "contingency"};

void read_model_section(const toml::table& t, ModelFile& m) {
    for (auto&& [key, v] : t) {
        const std::string k(key.str()), w = "model." + k;
        if (!kModelKeys.count(k)) fail(w, "unknown key");
        if (k == "name") m.name = text(v, w);
        else if (k == "methodology") {
            if (text(v, w) != "scenario-grid") fail(w, "'" + text(v, w) + "' is not the generic scenario-grid methodology the book holds");
        } else if (k == "measure") {
            m.measure = text(v, w);
            if (m.measure != "worst_loss") fail(w, "'" + m.measure + "' is not held incrementally by the book (worst_loss only)");
        } else if (k == "netting") {
            const std::string n = text(v, w);
            if (n == "risk_unit") m.netting = Netting::risk_unit;
            else if (n == "currency") m.netting = Netting::currency;
            else if (n == "account") m.netting = Netting::account;
            else fail(w, "must be one of risk_unit, currency, account, got '" + n + "'");
        } else if (k == "mode") {
            const std::string n = text(v, w);
            if (n == "cross") m.mode = MarginMode::cross;
            else if (n == "isolated") m.mode = MarginMode::isolated;
            else fail(w, "must be cross or isolated, got '" + n + "'");
        } else if (k == "currency") m.currency = text(v, w);
        else if (k == "im_factor") m.im_factor = number(v, w);
        else if (k == "mm_factor") m.mm_factor = number(v, w);
        else if (k == "gain_cap") m.gain_cap = number(v, w);
        else if (k == "gain_factor") m.gain_factor = per_key(v, w);
        else if (k == "confidence") number(v, w);
        else if (!v.is_string() && !v.is_date()) fail(w, "expected a string");
    }
    if (m.name.empty()) fail("model.name", "missing");
    if (!(m.im_factor >= 0 && std::isfinite(m.im_factor))) fail("model.im_factor", "must be finite and >= 0");
    if (!(m.mm_factor >= 0 && std::isfinite(m.mm_factor))) fail("model.mm_factor", "must be finite and >= 0");
    if (!(m.gain_cap >= 0)) fail("model.gain_cap", "must be >= 0");
}

}  // namespace

double PerKey::lookup(const std::string& name, const std::string& fallback, const double* otherwise,
                      const std::string& where) const {
    if (!is_table) return value;
    for (const std::string& key : {name, fallback, std::string("default")})
        for (const auto& [k, v] : table)
            if (k == key) return v;
    if (!otherwise) fail(where, "no value for '" + name + "' (or '" + fallback + "') and no 'default'");
    return *otherwise;
}

ModelFile load_model_file(const std::string& path) {
    ModelFile m;
    m.path = path;
    toml::table root;
    try {
        root = toml::parse_file(path);
    } catch (const toml::parse_error& e) {
        fail("model file '" + path + "'", std::string("not valid TOML: ") + std::string(e.description()));
    }
    try {
        for (auto&& [key, v] : root) {
            const std::string k(key.str());
            if (k != "model" && k != "scenarios" && k != "collateral" && k != "addons")
                fail(k, "unknown section; a model file has model, scenarios, collateral, addons");
            if (!v.is_table()) fail(k, "expected a table");
        }
        const auto* model = root["model"].as_table();
        if (!model) fail("model", "missing [model] section");
        read_model_section(*model, m);
        const auto* scen = root["scenarios"].as_table();
        if (!scen || !(*scen)["builder"]) fail("scenarios.builder", "missing [scenarios] section or its builder");
        for (auto&& [key, v] : *scen) {
            const std::string k(key.str());
            if (k == "builder") m.builder = text(v, "scenarios.builder");
            else m.scenario_params[k] = param(v, "scenarios." + k);
        }
        if (const auto* coll = root["collateral"].as_table())
            for (auto&& [key, v] : *coll) {
                if (key.str() != "haircut") fail("collateral." + std::string(key.str()), "unknown key; known: haircut");
                m.collateral_haircut = per_key(v, "collateral.haircut");
            }
        // add-ons in file order (toml++ tables iterate by key; their nodes know where they began)
        std::vector<std::pair<std::string, const toml::node*>> ordered;
        if (const auto* adds = root["addons"].as_table())
            for (auto&& [key, v] : *adds) ordered.emplace_back(std::string(key.str()), &v);
        std::stable_sort(ordered.begin(), ordered.end(), [](const auto& x, const auto& y) {
            const auto& a = x.second->source().begin;
            const auto& b = y.second->source().begin;
            return a.line != b.line ? a.line < b.line : a.column < b.column;
        });
        for (const auto& [key, node] : ordered) {
                const toml::node& v = *node;
                AddOnTable a;
                a.name = key;
                const std::string w = "addons." + a.name;
                const auto* t = v.as_table();
                if (!t) fail(w, "expected a table");
                a.type = a.name;
                for (auto&& [pk, pv] : *t) {
                    const std::string k(pk.str());
                    if (k == "type") a.type = text(pv, w + ".type");
                    else a.params[k] = param(pv, w + "." + k);
                }
                if (a.type == "intra_spread" || a.type == "inter_spread")  // month tables: built in Python
                    fail(w, "add-on type '" + a.type + "' is not held incrementally by the book from a C++ model "
                            "file (SPAN spreads need the month table and scenario moves Python builds: "
                            "Engine.account_book, docs/book.md)");
                if (!kHeldAddOns.count(a.type))
                    fail(w, "add-on type '" + a.type + "' is not held incrementally by the book");
                m.addons.push_back(std::move(a));
            }
        if (m.builder != "deribit_grid" && m.builder != "range_points")
            fail("scenarios.builder", "'" + m.builder + "' is not built in C++ (deribit_grid, range_points)");
    } catch (const InvalidInput& e) {
        throw InvalidInput("model file '" + path + "'", -1, e.what());
    }
    return m;
}

std::string preset_path(const std::string& name) { return std::string(MK_PRESETS_DIR) + "/" + name + ".toml"; }

InstrumentsView BookInputs::instruments() const noexcept {
    return InstrumentsView{kind.size(), kind.data(),     settlement.data(), risk_unit.data(), strike.data(),
                           expiry.data(), multiplier.data(), forward.data(), discount.data(), vol.data()};
}

namespace {

template <class T>
std::vector<T> column(const toml::table& t, const char* key, const std::string& where) {
    const auto* a = t[key].as_array();
    if (!a) fail(where + "." + key, "missing array");
    std::vector<T> out;
    std::size_t k = 0;
    for (const auto& e : *a) {
        const std::string w = where + "." + key + "[" + std::to_string(k++) + "]";
        if constexpr (std::is_same_v<T, std::string>) out.push_back(text(e, w));
        else if constexpr (std::is_floating_point_v<T>) {
            if (!e.is_number()) fail(w, "expected a number");
            out.push_back(*e.value<double>());
        } else {
            if (!e.is_integer()) fail(w, "expected an integer");
            out.push_back(static_cast<T>(*e.value<std::int64_t>()));
        }
    }
    return out;
}

}  // namespace

BookInputs load_market_file(const std::string& path) {
    BookInputs in;
    try {
        const toml::table root = toml::parse_file(path);
        const auto* u = root["units"].as_table();
        const auto* i = root["instruments"].as_table();
        if (!u || !i) fail("market file", "needs [units] and [instruments]");
        in.unit_names = column<std::string>(*u, "name", "units");
        in.unit_underlying = column<std::string>(*u, "underlying", "units");
        in.unit_currency = column<std::string>(*u, "currency", "units");
        in.unit_spot = column<double>(*u, "spot", "units");
        in.unit_fx = column<double>(*u, "fx", "units");
        in.instrument_ids = column<std::string>(*i, "id", "instruments");
        in.kind = column<std::int8_t>(*i, "kind", "instruments");
        in.settlement = column<std::int8_t>(*i, "settlement", "instruments");
        in.risk_unit = column<std::int32_t>(*i, "unit", "instruments");
        in.strike = column<double>(*i, "strike", "instruments");
        in.expiry = column<double>(*i, "expiry_years", "instruments");
        in.multiplier = column<double>(*i, "multiplier", "instruments");
        in.forward = column<double>(*i, "forward", "instruments");
        in.discount = column<double>(*i, "discount", "instruments");
        in.vol = column<double>(*i, "vol", "instruments");
        if (const auto* c = root["collateral"].as_table()) {
            in.collateral_currencies = column<std::string>(*c, "currency", "collateral");
            in.collateral_fx = column<double>(*c, "fx", "collateral");
        }
        in.report_fx = root["report_fx"].value<double>().value_or(1.0);
    } catch (const toml::parse_error& e) {
        fail("market file '" + path + "'", std::string("not valid TOML: ") + std::string(e.description()));
    }
    const std::size_t n = in.instrument_ids.size(), nu = in.unit_names.size();
    for (const auto* v : {&in.strike, &in.expiry, &in.multiplier, &in.forward, &in.discount, &in.vol})
        if (v->size() != n) fail("market file '" + path + "'", "instrument columns differ in length");
    if (in.kind.size() != n || in.settlement.size() != n || in.risk_unit.size() != n)
        fail("market file '" + path + "'", "instrument columns differ in length");
    if (in.unit_underlying.size() != nu || in.unit_currency.size() != nu || in.unit_spot.size() != nu ||
        in.unit_fx.size() != nu || in.collateral_fx.size() != in.collateral_currencies.size())
        fail("market file '" + path + "'", "unit or collateral columns differ in length");
    return in;
}

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
