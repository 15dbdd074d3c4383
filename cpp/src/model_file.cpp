// Model files (TOML, read with toml++) and compiled market files for C++ programs (model_file.hpp);
// the scenarios, the resolved model and the book built from them are in model_build.cpp.
#define TOML_HEADER_ONLY 1
#define TOML_EXCEPTIONS 1
#include <toml++/toml.h>

#include "marginkernel/model_file.hpp"

#include <algorithm>
#include <cmath>
#include <set>

#include "checks.hpp"

#ifndef MK_PRESETS_DIR
#define MK_PRESETS_DIR ""
#endif

namespace marginkernel {

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
            if (m.measure != "worst_loss")
                fail(w, "'" + m.measure + "' is not built by this loader (worst_loss only; a ModelBook built "
                        "from Python or with BookModel::measure holds VaR and ES)");
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

}  // namespace marginkernel
