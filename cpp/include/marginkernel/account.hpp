// Account state for pre-trade risk: positions per account, cached scenario P&L per risk unit and the
// current IM / MM, kept up to date incrementally (architecture §2 "What-if is incremental").
//
//   AccountBook book(risk, weight, fx, rule, n_accounts);   // risk arrays copied once
//   book.add_fill(account, instrument, quantity);           // P[a, u] += q * R[i]
//   WhatIf w = book.what_if(account, instrument, quantity); // state unchanged, no allocation
//   Check c = book.check({account, instrument, quantity}, equity);
//   book.update_unit(unit, new_rows);                       // market moved: P += Q * dR
//
// The margin rule (MarginRule) is the simple one of the existing reductions: per risk unit u the
// worst weighted loss L_u = max(0, -min_s w[u, s] * h(P[a, u, s])), with h scaling gains by
// gain_factor (reduce.hpp worst_loss); IM = sum_u fx[u] * L_u in the reporting currency, where fx[u]
// converts the unit's settlement currency (e.g. the unit's spot for coin-settled units, 1 for
// USD-linear ones); MM = mm_factor * IM.
//
// The cache is kept pre-weighted (w * P per account and unit, w * R per instrument): w >= 0
// commutes with h, so a what-if streams two vectors and needs no multiply by w. Figures agree with
// the reference definition to rounding (a few eps of sum |q| |R|), not bit for bit.
//
// Note: h is non-decreasing and h(v) = v for v <= 0, so under this rule the gain factor never
// changes a unit's loss (min_s h(v_s) = h(min_s v_s)); it only decides which scenario is reported
// for a unit with no loss. It starts to matter once haircut P&L of several netting levels is
// summed before the worst case, which the generalised rule will do.
//
// Thread safety: every member function may be called concurrently from any number of threads.
//  * Readers (what_if, check, margin, unit_margin, position, positions, pnl, weighted_pnl, ...)
//    take a shared lock on the account they read; add_fill takes that account's lock exclusively.
//    So many threads may query one account while one thread fills it, and fills on different
//    accounts run in parallel. A reader sees the account either before or after a whole fill.
//  * Everything that changes data shared by all accounts (update_unit, set_fx, set_expiry, settle,
//    add_accounts, rebuild) takes a book-wide lock exclusively, and every account operation holds
//    that lock shared; it waits for running account operations and blocks new ones until it ends.
//  * The locks prefer writers (glibc pthread rwlocks of that kind; std::shared_mutex elsewhere): a
//    waiting fill or market update blocks new readers, so a stream of what-ifs cannot starve it.
//    A reader costs two uncontended lock/unlock pairs (book, account); readers on different
//    threads share the book lock's cache line. No lock is held across calls into user code.
//
// Errors: bad input throws InvalidInput (types.hpp) naming the field, or its subclass UnknownId for
// an account, instrument or risk unit id that does not exist; the book is then unchanged (strong
// guarantee). A lock failure (never expected) throws std::system_error.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "marginkernel/types.hpp"

namespace marginkernel {

// An account, instrument or risk unit id that is not in the book (field "account", "instrument" or
// "unit", row the id). A subclass of InvalidInput; Python sees it as marginkernel.UnknownIdError,
// which is both a ValueError and a KeyError.
class UnknownId : public InvalidInput {
public:
    UnknownId(const std::string& field, long long id, std::size_t count)
        : InvalidInput(field, id, "unknown " + field + " id (the book has " + std::to_string(count) +
                                      ", ids 0.." + std::to_string(static_cast<long long>(count) - 1) + ")") {}
};

// The account margin rule. Small on purpose: a later issue generalises it.
struct MarginRule {
    double gain_factor = 1.0;  // gains scaled by this before the worst case (Deribit pnl_offset), >= 0
    double mm_factor = 1.0;    // MM = mm_factor * IM, >= 0
    // check(): also accept an order that does not increase IM when the equity does not cover it
    // (a risk-reducing order of an under-margined account).
    bool allow_risk_reducing = true;
};

struct Order {
    std::int64_t account = 0;
    std::int32_t instrument = 0;
    double quantity = 0.0;
};

struct Margin {
    double im = 0.0;  // reporting currency
    double mm = 0.0;
};

// One risk unit of one account.
struct UnitMargin {
    double loss = 0.0;                // worst weighted loss, settlement currency of the unit
    double im = 0.0;                  // fx * loss: the unit's share of the account IM
    std::int32_t worst_scenario = 0;  // first scenario attaining the loss (0 if none held)
};

// The account after a hypothetical order (the book is not changed).
struct WhatIf {
    double im = 0.0;         // account IM after the order, reporting currency
    double mm = 0.0;         // mm_factor * im
    double im_before = 0.0;  // account IM now
    double unit_loss = 0.0;  // worst loss of the order's risk unit after the order (settlement ccy)
    std::int32_t unit = 0;   // the order's risk unit
    std::int32_t worst_scenario = 0;  // scenario of that unit attaining unit_loss
};

struct Check {
    bool accepted = false;  // im <= equity, or (allow_risk_reducing and im <= im_before)
    double excess = 0.0;    // equity - im after the order (negative: short by that much)
    WhatIf after;
};

struct Position {
    std::int32_t instrument = 0;
    double quantity = 0.0;
};

class AccountBook {
public:
    // Copies the risk arrays (risk.risk [n_instruments x n_scenarios], risk.risk_unit) once.
    // weight: [n_units x n_scenarios] scenario weights (cover fractions, >= 0), null = all ones.
    // fx: [n_units] reporting currency per unit of each risk unit's settlement currency (> 0),
    // null = all ones. expiry: [n_instruments] years to expiry (<= 0: expired, orders rejected;
    // +inf: never), null = nothing expires. Starts with n_accounts empty accounts, ids 0..n-1.
    AccountBook(const RiskArraysView& risk, const double* weight, const double* fx,
                const MarginRule& rule, std::size_t n_accounts, const double* expiry = nullptr);
    ~AccountBook();
    AccountBook(const AccountBook&) = delete;
    AccountBook& operator=(const AccountBook&) = delete;

    std::size_t n_accounts() const;
    std::size_t n_instruments() const noexcept;
    std::size_t n_units() const noexcept;
    std::size_t n_scenarios() const noexcept;
    const MarginRule& rule() const noexcept;

    // Appends `count` empty accounts; returns the id of the first. Book-wide exclusive.
    std::int64_t add_accounts(std::size_t count = 1);

    // A trade: position += quantity and P[a, unit(i)] += quantity * R[i]; the unit's loss and the
    // account's IM (re-summed over its units) are updated. A position that reaches exactly 0 is
    // removed; a unit left with no position has its P reset to exactly 0. Throws UnknownId, or
    // InvalidInput for a non-finite quantity, an expired instrument or an order so large that
    // |quantity| * max_s |R[i, s]| > 1e300.
    void add_fill(std::int64_t account, std::int32_t instrument, double quantity);
    void add_fill(const Order& order) { add_fill(order.account, order.instrument, order.quantity); }
    // n fills in order. Every fill is checked first: if any is bad, it throws (row = its index)
    // and none is applied. A reader may see some of the fills applied and not others.
    void add_fills(const std::int64_t* accounts, const std::int32_t* instruments,
                   const double* quantities, std::size_t n);

    // The account after the order, without changing it: one fused pass over the order's risk
    // unit's cached w * P and w * R[i] (kernel whatif_min), other units' losses from the cache:
    // im = im_before - fx[u] * L_u(before) + fx[u] * L_u(after). O(n_scenarios), no allocation,
    // no revaluation. The unit loss equals the one add_fill would produce bit for bit.
    WhatIf what_if(std::int64_t account, std::int32_t instrument, double quantity) const;
    WhatIf what_if(const Order& order) const { return what_if(order.account, order.instrument, order.quantity); }

    // Pre-trade check against the account's available equity (reporting currency, finite).
    Check check(const Order& order, double equity) const;
    Check check(std::int64_t account, std::int32_t instrument, double quantity, double equity) const {
        return check(Order{account, instrument, quantity}, equity);
    }

    Margin margin(std::int64_t account) const;
    UnitMargin unit_margin(std::int64_t account, std::int32_t unit) const;
    double position(std::int64_t account, std::int32_t instrument) const;
    std::vector<Position> positions(std::int64_t account) const;  // by instrument id
    // The account's scenario P&L P[u, s] = sum over its positions of q * R[i, s], recomputed from
    // its positions and the current risk arrays into out[n_units x n_scenarios].
    void pnl(std::int64_t account, double* out) const;
    // The cache itself: w[u, s] * P[u, s], maintained incrementally by fills and market updates
    // (the book keeps P pre-weighted: w >= 0 commutes with the gain haircut, so a what-if streams
    // only this vector and the weighted risk row). Into out[n_units x n_scenarios].
    void weighted_pnl(std::int64_t account, double* out) const;

    // Instruments of a risk unit in increasing id order: the row order update_unit expects.
    std::vector<std::int32_t> instruments_of(std::int32_t unit) const;
    // Copies the current risk row of an instrument into out[n_scenarios].
    void risk_row(std::int32_t instrument, double* out) const;

    // A market update of one risk unit: rows[k] is the new risk row of instruments_of(unit)[k]
    // ([n_rows x n_scenarios], n_rows = instruments_of(unit).size()); fx, when given, is the unit's
    // new conversion rate. Every account holding the unit gets P[a, u] += sum_i q[a, i] * (R'[i] -
    // R[i]) over its positions in the unit, then the unit loss and IM are refreshed; other units
    // are not touched. `threads` > 1 splits the holding accounts across threads. Book-wide
    // exclusive. Rounding drifts by about eps * sum |q| |R| per update; rebuild() resets it.
    void update_unit(std::int32_t unit, const double* rows, std::size_t n_rows,
                     std::optional<double> fx = std::nullopt, int threads = 1);
    // The same after re-revaluing only the unit's instruments: `instruments` is the full instrument
    // table (n == n_instruments, same risk units as the book) and `scenarios` the new market and
    // scenarios (n_units and n_scenarios as the book); revalue() runs on the unit's rows only.
    void update_unit(std::int32_t unit, const InstrumentsView& instruments, const ScenariosView& scenarios,
                     std::optional<double> fx = std::nullopt, int threads = 1);

    // Changes a unit's reporting rate and refreshes the IM of the accounts holding it.
    void set_fx(std::int32_t unit, double fx);
    // Years to expiry of an instrument (<= 0: expired; NaN rejected). Existing positions still count.
    void set_expiry(std::int32_t instrument, double years);
    double expiry(std::int32_t instrument) const;
    // Removes every position in the instrument (P -= q * R) and refreshes the accounts affected:
    // what an exchange does when an expired instrument settles.
    void settle(std::int32_t instrument);
    // Recomputes every account's P from its positions from scratch (removes accumulated rounding).
    void rebuild(int threads = 1);

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace marginkernel
