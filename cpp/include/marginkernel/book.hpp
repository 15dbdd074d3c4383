// The book is the model: per-account state for pre-trade risk under the full generic margin model
// (the one marginkernel.Engine computes): netting hierarchy (risk unit / settlement currency /
// account), cross or isolated mode, gain haircut and cap, the add-ons that can be held per account,
// collateral with haircuts -> equity, margin ratio and liquidation. docs/book.md describes the design.
//
//   ModelBook book(model, instruments, market, risk, weight, n_scenarios, n_accounts);
//   book.add_fill(account, instrument, quantity);            // state updated incrementally
//   ModelWhatIf w = book.what_if(account, instrument, q);    // no allocation, book unchanged
//   AccountMargin m = book.margin(account);                  // IM, MM, scan risk, add-ons, equity
//
// What-if = what happens: what_if() and add_fill() run the same code on the same numbers, so the IM a
// what-if predicts is bit for bit the IM the account has after the fill.
//
// Thread safety: as AccountBook (account.hpp): every member function may be called concurrently;
// account readers share the account's lock, fills take it exclusively, market-wide changes take a
// book-wide lock exclusively; the locks prefer writers.
//
// Errors: bad input throws InvalidInput naming the field (UnknownId for ids out of range); the book
// is then unchanged (every change is computed first and committed only when it is finite).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "marginkernel/account.hpp"
#include "marginkernel/types.hpp"

namespace marginkernel {

enum class Netting : std::int8_t { risk_unit = 0, currency = 1, account = 2 };
enum class MarginMode : std::int8_t { cross = 0, isolated = 1 };
enum class Combine : std::int8_t { add = 0, credit = 1, floor = 2 };
enum class AddOnType : std::int8_t {
    roll_shock = 0,            // add:   sum |q| notional max(min_move, move_risk * T) over `kinds`
    delta_shock = 1,           // add:   shock * max(0, |net delta| spot - threshold) / fx
    short_option_minimum = 2,  // floor: per short option rate * (contract | notional)
    per_contract_minimum = 3,  // floor: sum |q| rate * (multiplier | notional), optional tiers
    concentration = 4,         // add:   tiered(USD net or gross delta) / fx
    contingency = 5,           // add:   option_rate |q| notional + future_rate min(long, short)
    intra_spread = 6,          // add:   SPAN calendar spreads on month deltas, sum n rate (book_spreads.hpp)
    inter_spread = 7,          // credit: SPAN inter-commodity spreads across an account's units
};

// One leg of a delta spread (intra_spread, inter_spread; marginkernel.spreads): `ratio` deltas of
// the contract months `months` (codes into the book's month table, ascending: the leg's tier) on
// side A or B. An inter_spread leg names its risk unit.
struct SpreadLegSpec {
    std::int32_t unit = -1;
    bool side_a = true;
    double ratio = 1.0;
    std::vector<std::int32_t> months;
};
struct DeltaSpreadSpec {
    double rate = 0.0;      // intra: per spread (settlement currency, or USD with `usd`); inter: a fraction
    bool one_tier = false;  // intra: both legs in one tier (long months against short months)
    std::vector<SpreadLegSpec> legs;
};

// At most this many add-ons per model (results are fixed-size records: no allocation).
constexpr std::size_t kMaxAddOns = 8;

// One add-on with its parameters resolved per risk unit ([n_units] vectors; only those its type
// uses need to be filled). Semantics as marginkernel.addons (docs/models.md).
struct AddOnSpec {
    std::string name;
    AddOnType type = AddOnType::roll_shock;
    std::vector<double> annualised_move_risk, min_annualised_move;  // roll_shock
    std::vector<double> threshold, shock;                           // delta_shock
    std::vector<double> rate;                                       // short_option_minimum, per_contract_minimum
    std::vector<double> option_rate, future_rate;                   // contingency
    std::uint8_t kinds = 0;       // bit (1 << Kind) per kind charged (roll_shock, per_contract_minimum)
    bool usd = false;             // rate in USD per contract (currency = "USD"), else settlement currency
    bool notional_basis = false;  // basis = "notional" (som, pcm)
    bool max_method = false;      // som: method = "max" (else "gross")
    bool gross_delta = false;     // concentration: measure = "gross_delta" (else "net_delta")
    bool short_only = false;      // contingency: option_side = "short" (else "gross")
    std::vector<std::pair<double, double>> tiers;  // [start, value]: pcm multipliers, concentration rates
    // intra_spread / inter_spread (docs/book.md): the spreads in the order they form
    std::vector<DeltaSpreadSpec> spreads;
    std::vector<std::uint8_t> scope;  // intra: [n_units] 1 = the unit's pairs form spreads
    bool whole = false;               // whole spreads only
    std::int32_t after = -1;          // inter: index of the intra_spread add-on whose remaining deltas it takes
    bool scan_price_risk = false;     // inter: price risk = the pair's scan risk (else SPAN's scan - time - vol)
};

Combine combine_of(AddOnType type) noexcept;
const char* addon_type_name(AddOnType type) noexcept;

// The model's rules (its scenario set is already in the risk arrays the book is given).
struct BookModel {
    Netting netting = Netting::risk_unit;
    MarginMode mode = MarginMode::cross;
    double im_factor = 1.0;
    double mm_factor = 1.0;
    double gain_cap = std::numeric_limits<double>::infinity();  // USD, >= 0
    // Gain factor of each child when netting: per risk unit [n_units] for currency netting, per
    // settlement currency [n_currencies] for account netting; empty = all 1.
    std::vector<double> gain_factor;
    std::vector<AddOnSpec> addons;
    bool allow_risk_reducing = true;  // check(): accept an order that does not increase IM
    Measure measure = Measure::worst_loss;
    double confidence = 0.99;          // var / es: in (0, 1)
    std::vector<double> probability;   // var / es: [n_scenarios] finite, >= 0, not all 0; empty = equal
};

// The market the book needs beyond the risk arrays.
struct BookMarketView {
    std::size_t n_units = 0;
    const double* unit_spot = nullptr;             // [n_units] index price
    const double* unit_fx = nullptr;               // [n_units] USD per settlement currency unit
    const std::int32_t* unit_currency = nullptr;   // [n_units] settlement currency, [0, n_currencies)
    std::size_t n_currencies = 0;
    const double* currency_fx = nullptr;           // [n_currencies] USD per unit
    double report_fx = 1.0;                        // USD per unit of the reporting currency
    std::size_t n_collateral = 0;                  // collateral currencies
    const double* collateral_fx = nullptr;         // [n_collateral] USD per unit
    const double* collateral_haircut = nullptr;    // [n_collateral] in [0, 1]
    // Delta spreads (intra_spread / inter_spread add-ons only):
    const std::int32_t* month = nullptr;           // [n_instruments] contract month code, [0, n_months)
    std::size_t n_months = 0;                      // months in ascending order (perpetual / spot: their own)
    const double* price_multiplier = nullptr;      // [n_units x n_scenarios] (inter_spread, SPAN price risk)
    const double* vol_shift = nullptr;             // [n_units x n_scenarios] (inter_spread, SPAN price risk)
};

// An account's margin. Amounts in the reporting currency.
struct AccountMargin {
    double im = 0.0;
    double mm = 0.0;
    double risk = 0.0;       // the requirement: scan risk + add-on contributions
    double scan_risk = 0.0;
    std::array<double, kMaxAddOns> components{};  // each add-on's contribution, model order
    double equity = std::numeric_limits<double>::quiet_NaN();  // NaN: no collateral given
    double available = std::numeric_limits<double>::quiet_NaN();     // equity - im
    double margin_ratio = std::numeric_limits<double>::quiet_NaN();  // mm / equity (inf if equity <= 0 < mm)
    bool liquidation = false;          // equity < mm (false without equity)
    std::int64_t worst_node = -1;      // key of the costliest node: unit, currency or -1 (see node_key)
    std::int32_t worst_scenario = -1;  // its worst scenario (-1: no node has a loss)
};

// The account after a hypothetical order (the book is not changed).
struct ModelWhatIf {
    double im = 0.0;
    double mm = 0.0;
    double im_before = 0.0;
    double available = std::numeric_limits<double>::quiet_NaN();  // equity - im after
    std::int32_t worst_scenario = -1;
};

struct ModelCheck {
    bool accepted = false;  // im <= equity, or (allow_risk_reducing and im <= im_before)
    double excess = 0.0;    // equity - im after the order
    ModelWhatIf after;
};

// One netting node of an account: a risk unit, a settlement currency, the account, or (isolated
// mode) one position. Amounts in the node's currency (fx: USD per unit of it).
struct NodeMargin {
    std::int32_t unit = -1;        // risk unit (risk_unit netting, isolated), else -1
    std::int32_t currency = -1;    // settlement currency (currency netting), else -1
    std::int32_t instrument = -1;  // isolated mode: the position's instrument
    double scan = 0.0;             // the measure (worst loss, VaR or ES) of the node's joint P&L
    std::int32_t worst_scenario = 0;  // first scenario of the minimum joint P&L
    double fx = 1.0;
    double requirement = 0.0;      // max(max(0, scan + adds - credits), max floors)
    std::array<double, kMaxAddOns> charges{};  // per add-on, node currency
};

// One (account, risk unit) pair: the unit's own worst loss and each add-on's raw charge (isolated
// mode: sums over the unit's positions), settlement currency.
struct PairMargin {
    double loss = 0.0;
    std::int32_t worst_scenario = 0;
    std::array<double, kMaxAddOns> charges{};
};

class ModelBook {
public:
    // risk: [n_instruments x n_scenarios] risk arrays as the model counts them (options-only
    // scenarios zeroed for linear instruments); weight: [n_units x n_scenarios] (null: all 1).
    // instruments: the instrument table with market inputs resolved per row (expiry in years from
    // the valuation time; perpetuals and spot never expire whatever their expiry says; other kinds
    // with expiry <= 0 are expired: orders and positions on them are refused).
    ModelBook(const BookModel& model, const InstrumentsView& instruments, const BookMarketView& market,
              const double* risk, const double* weight, std::size_t n_scenarios, std::size_t n_accounts);
    ~ModelBook();
    ModelBook(const ModelBook&) = delete;
    ModelBook& operator=(const ModelBook&) = delete;

    std::size_t n_accounts() const;
    std::size_t n_instruments() const noexcept;
    std::size_t n_units() const noexcept;
    std::size_t n_scenarios() const noexcept;
    std::size_t n_currencies() const noexcept;
    const BookModel& model() const noexcept;

    std::int64_t add_accounts(std::size_t count = 1);

    void add_fill(std::int64_t account, std::int32_t instrument, double quantity);
    // Positions of many accounts at once (checked first; none applied if one is bad).
    void add_fills(const std::int64_t* accounts, const std::int32_t* instruments, const double* quantities,
                   std::size_t n);
    ModelWhatIf what_if(std::int64_t account, std::int32_t instrument, double quantity) const;
    // Against `equity` (reporting currency); NaN = the account's own equity (0 without collateral).
    ModelCheck check(std::int64_t account, std::int32_t instrument, double quantity,
                     double equity = std::numeric_limits<double>::quiet_NaN()) const;

    AccountMargin margin(std::int64_t account) const;
    std::vector<NodeMargin> nodes(std::int64_t account) const;
    PairMargin pair(std::int64_t account, std::int32_t unit) const;  // zeros if not held
    std::vector<Position> positions(std::int64_t account) const;
    double position(std::int64_t account, std::int32_t instrument) const;
    // Scenario P&L (unweighted, settlement currency) from the positions, out[n_units x n_scenarios].
    void pnl(std::int64_t account, double* out) const;

    // Balance of a collateral currency (replaces the previous one); equity = sum of balances in USD,
    // positive ones at (1 - haircut), / report_fx.
    void set_collateral(std::int64_t account, std::int32_t currency, double amount);

    std::vector<std::int32_t> instruments_of(std::int32_t unit) const;
    // Market refresh of one unit: rows [n_members x n_scenarios] counted risk rows of
    // instruments_of(unit); forward, discount, vol, expiry per member (null: unchanged), the unit's
    // spot and the settlement currency's USD rate fx (NaN: unchanged; fx also applies to the other
    // units settled in that currency). Every holder is recomputed from its positions (as rebuild()).
    void update_unit(std::int32_t unit, const double* rows, std::size_t n_rows, const double* forward,
                     const double* discount, const double* vol, const double* expiry, double spot, double fx,
                     int threads = 1);
    // Recomputes every account from its positions.
    void rebuild(int threads = 1);

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// Per-instrument deltas in units of the underlying (marginkernel.addons.instrument_deltas).
void instrument_deltas(const InstrumentsView& instruments, double* out);

}  // namespace marginkernel
