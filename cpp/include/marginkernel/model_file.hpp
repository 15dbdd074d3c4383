// Margin models from their TOML files, for C++ programs without Python (docs/book.md).
//
//   ModelFile model = load_model_file(preset_path("deribit-pm"));   // the same file Python loads
//   BookInputs in = load_market_file("market.toml");                // compiled market, see below
//   auto book = make_book(model, in, n_accounts);                   // scenarios, revaluation, ModelBook
//
// The model file is read with toml++ and checked like marginkernel.model.MarginModel: unknown
// sections and keys, wrong types, and models or parts this loader does not build (another
// methodology, a measure other than worst_loss, SPAN spread add-ons, a scenario builder other than
// deribit_grid and range_points; the ModelBook itself holds VaR, ES and the spreads when its inputs
// come from Python or are filled in C++) throw InvalidInput naming the key.
//
// The market is a compiled input written by Python (marginkernel.account.write_market_file): the
// instruments with their market inputs resolved per row (as Engine.market has them) and the risk
// units' spot, settlement currency and USD rates, so that C++ and Python value the same numbers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "marginkernel/book.hpp"
#include "marginkernel/types.hpp"

namespace marginkernel {

// A number, or a table of numbers by key with an optional "default".
struct PerKey {
    bool is_table = false;
    double value = 0.0;
    std::vector<std::pair<std::string, double>> table;
    // The value for `name`, else for `fallback`, else "default", else `otherwise` (nullptr: throw
    // InvalidInput naming `where`).
    double lookup(const std::string& name, const std::string& fallback, const double* otherwise,
                  const std::string& where) const;
};

// One parameter of a scenario builder or an add-on table.
struct Param {
    enum class Type { number, table, numbers, strings, text, flag, pairs } type = Type::number;
    PerKey per;                                       // number, table
    std::vector<double> numbers;                      // numbers
    std::vector<std::string> strings;                 // strings
    std::string text;                                 // text
    bool flag = false;                                // flag
    std::vector<std::pair<double, double>> pairs;     // pairs ([[a, b], ...])
};

struct AddOnTable {
    std::string name;
    std::string type;  // defaults to the name
    std::map<std::string, Param> params;
};

struct ModelFile {
    std::string path;
    std::string name;
    std::string measure = "worst_loss";
    Netting netting = Netting::risk_unit;
    MarginMode mode = MarginMode::cross;
    std::string currency = "USD";
    double im_factor = 1.0;
    double mm_factor = 1.0;
    double gain_cap = std::numeric_limits<double>::infinity();
    PerKey gain_factor{false, 1.0, {}};
    PerKey collateral_haircut{false, 0.0, {}};
    std::string builder;
    std::map<std::string, Param> scenario_params;
    std::vector<AddOnTable> addons;
};

// Reads and checks a model file (throws InvalidInput naming the file and key).
ModelFile load_model_file(const std::string& path);
// The installed preset of that name (<prefix>/share/marginkernel/presets/<name>.toml), as compiled in.
std::string preset_path(const std::string& name);

// Instruments and market as the book needs them (owning storage).
struct BookInputs {
    std::vector<std::string> instrument_ids;
    std::vector<std::int8_t> kind, settlement;
    std::vector<std::int32_t> risk_unit;
    std::vector<double> strike, expiry, multiplier, forward, discount, vol;  // expiry: years (perpetuals: 0)
    std::vector<std::string> unit_names, unit_underlying, unit_currency;
    std::vector<double> unit_spot, unit_fx;
    std::vector<std::string> collateral_currencies;  // currencies collateral may be posted in
    std::vector<double> collateral_fx;               // their USD rates
    double report_fx = 1.0;                          // USD per unit of the model's reporting currency

    InstrumentsView instruments() const noexcept;
};

// Reads a compiled market file (docs/book.md gives its layout).
BookInputs load_market_file(const std::string& path);

// The scenario set of a model for risk units with these underlyings (owning storage).
struct ScenarioTable {
    std::size_t n_units = 0, n_scenarios = 0;
    std::vector<double> price_multiplier, vol_shift, weight;  // [n_units x n_scenarios]
    std::vector<double> time_shift;                           // [n_scenarios] or empty
    std::vector<std::uint8_t> options_only;                   // [n_scenarios] or empty
    VolShockKind vol_shock = VolShockKind::none;
    double tau_floor_days = 1.0, short_power = 0.0, long_power = 0.0, vol_up_floor = 0.0;

    ScenariosView view(const double* unit_spot) const noexcept;
};

ScenarioTable build_scenarios(const ModelFile& model, const std::vector<std::string>& underlyings);

// The model's rules resolved for these inputs' risk units and currencies.
BookModel resolve_model(const ModelFile& model, const BookInputs& inputs);

// Scenarios, revaluation (risk arrays as the model counts them) and the book, with n_accounts empty
// accounts; collateral currencies are the inputs' (haircuts from the model).
std::unique_ptr<ModelBook> make_book(const ModelFile& model, const BookInputs& inputs, std::size_t n_accounts,
                                     int threads = 1);

}  // namespace marginkernel
