// Public, Eigen-free data views shared by every pipeline stage.
//
// Every view is a bundle of pointers plus extents into memory the caller owns: the library never
// copies or frees it. Matrices are row-major and contiguous.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace marginkernel {

enum class Kind : std::int8_t { future = 0, perpetual = 1, call = 2, put = 3, spot = 4 };
enum class Settlement : std::int8_t { linear = 0, inverse = 1 };

// How a scenario's vol shift v changes an implied vol sigma (architecture §3). tau = 30 days /
// max(DTE, floor_days) and p = short_power if DTE <= 30 days else long_power.
enum class VolShockKind : std::int8_t {
    none = 0,            // sigma
    multiplicative = 1,  // sigma * max(0, 1 + v * tau^p)
    additive = 2,        // max(0, sigma + v * tau^p)
    relative = 3,        // sigma * max(0, 1 + v)  (SPAN volatility scan, no tau scaling)
};

// The measure of a netting node's joint P&L J (marginkernel.engine.netting, value_at_risk): worst
// loss max(0, -min_s J_s); VaR max(0, -q); ES max(0, -mean(J_s | J_s <= q)) weighted by probability,
// with q NumPy's inverted-CDF quantile of J at level (1 - confidence)(1 - 1e-12), weighted by
// probability. Shared by the model book (book.hpp) and explain (explain.hpp).
enum class Measure : std::int8_t { worst_loss = 0, var = 1, es = 2 };

// Instruments as a struct of arrays, one row per instrument, with market inputs already resolved
// per row. Units: `expiry` in years from the valuation time (<= 0 means expired); `forward` is the
// forward of the option or future's expiry, or the mark of a perpetual / spot; `discount` is the
// discount factor to expiry. `multiplier` is the contract size: units of the underlying for
// linear contracts and inverse options, quote-currency notional for inverse futures and perps.
struct InstrumentsView {
    std::size_t n = 0;
    const std::int8_t* kind = nullptr;        // Kind
    const std::int8_t* settlement = nullptr;  // Settlement
    const std::int32_t* risk_unit = nullptr;  // index into the risk units, [0, n_units)
    const double* strike = nullptr;           // options only
    const double* expiry = nullptr;           // years; options only
    const double* multiplier = nullptr;
    const double* forward = nullptr;
    const double* discount = nullptr;         // options only
    const double* vol = nullptr;              // implied vol, options only
};

// Scenarios per risk unit. price_multiplier, vol_shift and weight are [n_units x n_scenarios];
// time_shift (look-ahead, years) is [n_scenarios] and may be null (no look-ahead).
struct ScenariosView {
    std::size_t n_units = 0;
    std::size_t n_scenarios = 0;
    const double* spot = nullptr;              // [n_units] index price, converts inverse values
    const double* price_multiplier = nullptr;  // F_s = F * m
    const double* vol_shift = nullptr;         // v, see VolShockKind
    const double* time_shift = nullptr;        // T_s = max(T - dt, 0)
    VolShockKind vol_shock = VolShockKind::none;
    double tau_floor_days = 1.0;
    double short_power = 0.0;
    double long_power = 0.0;
    double vol_up_floor = 0.0;  // lower bound on an up-shocked vol (v > 0); 0 = none
};

// Sparse positions in compressed-row form, grouped by account: the positions of account a are
// rows account_start[a] .. account_start[a + 1] - 1.
struct PositionsView {
    std::size_t n_accounts = 0;
    const std::int64_t* account_start = nullptr;  // [n_accounts + 1]
    const std::int32_t* instrument = nullptr;     // [nnz]
    const double* quantity = nullptr;             // [nnz]
};

// Risk arrays as produced by revalue(): [n_instruments x n_scenarios], with each row's risk unit.
// Read by net() and by the account book (account.hpp).
struct RiskArraysView {
    std::size_t n_instruments = 0;
    std::size_t n_scenarios = 0;
    std::size_t n_units = 0;
    const double* risk = nullptr;
    const std::int32_t* risk_unit = nullptr;  // [n_instruments]
};

// Thrown for bad input; names the offending field and row (row = -1 when not row-specific).
class InvalidInput : public std::invalid_argument {
public:
    InvalidInput(std::string field, long long row, const std::string& problem)
        : std::invalid_argument(describe(field, row, problem)), field_(std::move(field)), row_(row) {}
    const std::string& field() const noexcept { return field_; }
    long long row() const noexcept { return row_; }

private:
    static std::string describe(const std::string& field, long long row, const std::string& problem) {
        return row < 0 ? field + ": " + problem : field + "[" + std::to_string(row) + "]: " + problem;
    }
    std::string field_;
    long long row_;
};

}  // namespace marginkernel
