// Internal (not installed): the model book's state and `ModelBook::Impl`, shared by its sources.
// docs/book.md "State layout" describes the layout and the rules that make a what-if equal the fill
// it predicts; in short:
//  * Pre-weighted risk rows W[i] = w[u(i)] * R[i] (64-byte aligned rows of `stride` doubles) and,
//    per account and risk unit held (a Slot), Pw = sum q W[i] maintained by fills (kernel
//    whatif_fill) and recomputed from the positions by market refreshes and rebuilds.
//  * Slots are sorted by (settlement currency, unit): a currency node is a contiguous run of slots.
//  * Per account, one cached NodeState per netting node (sorted by key), and the totals.
//  * A what-if describes the order as a Hypo, evaluates the one node it touches with the Hypo and
//    sums the nodes with that one substituted. add_fill commits the order, then evaluates the node
//    from the committed state through the same functions: the figures are identical bit for bit.
//  * SPAN spreads (book_spreads.hpp): intra_spread is a pair charge (hook in pair_charges);
//    inter_spread credits couple an account's pairs, so a book with one (cross mode) re-forms the
//    account's spreads on every what-if and fill and re-finishes every node whose credit changes
//    (hooks marked "SPAN hook" in what_if, apply_fill and recompute; book_coupling-inl.hpp).
//
// The sources, one job each (all compiled with -ffp-contract=off, CMakeLists.txt):
//  * book_impl.hpp          this file: the types and Impl's members (declarations);
//  * book_measure-inl.hpp   the scan measures: worst loss, VaR / ES of one or several children;
//  * book_nodes-inl.hpp     orders as Hypos, add-on sums and charges, nodes, totals, what-if;
//  * book_coupling-inl.hpp  SPAN inter_spread coupling of an account's pairs (what-if and fill);
//  * book_eval.cpp          the read side: what_if, check, margin, nodes, pair, positions, pnl;
//  * book_fill.cpp          fills, node refresh, recompute, rebuild;
//  * book_market.cpp        market refresh of one unit (update_unit);
//  * book.cpp               construction and validation of the model, market and risk rows.
// The -inl headers define Impl's evaluation functions `inline`, as they were when the class held
// them: every source that evaluates nodes (book_eval.cpp, book_fill.cpp) includes
// book_nodes-inl.hpp (which includes the other two), so the what-if path is one translation unit
// and inlines as before.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "book_addons.hpp"
#include "book_spreads.hpp"
#include "checks.hpp"
#include "kernels.hpp"
#include "marginkernel/book.hpp"
#include "state.hpp"

namespace marginkernel::book_detail {

using namespace detail;

inline constexpr double kMaxPnl = 1e300;
inline constexpr double kInf = std::numeric_limits<double>::infinity();

struct Slot {
    std::int32_t unit = 0;
    std::int64_t ukey = 0;  // currency * n_units + unit: the slot order
    Buffer wpnl;            // [stride] w * P
    std::vector<Position> positions;  // sorted by instrument, no zero quantities
    std::array<double, 3 * kMaxAddOns> sums{};  // each add-on's three sums over the positions
    std::array<double, kMaxAddOns> charge{};  // cross mode: the pair's add-on charges
    PairSpreads spread;  // SPAN spreads: what the inter_spread add-ons read of the pair (book_spreads.hpp)
};

struct NodeState {
    std::int64_t key = 0;
    NodeMargin m;
    std::array<double, kMaxAddOns> contrib{};
};

struct Account {
    mutable RwMutex mutex;
    std::vector<Slot> slots;       // sorted by ukey
    std::vector<NodeState> nodes;  // sorted by key
    AccountMargin total;
    std::vector<double> collateral;  // [n_collateral] balances, empty until set
    bool has_collateral = false;
    double equity = 0.0;  // of the balances, reporting currency (set_collateral)
};

// A hypothetical (or about to be committed) order.
struct Hypo {
    std::int32_t instrument = 0;
    std::int32_t unit = 0;
    std::int64_t ukey = 0;
    double q = 0.0;
    double q_old = 0.0;       // the position before the order
    double q_new = 0.0;       // the position after the order
    int slot = -1;            // existing slot of the unit, or -1
    int insert = 0;           // where a new slot goes
    bool slot_empty = false;  // the unit holds no position after the order
};

// Scratch of the calling thread for a hypothetical Pw (multi-child nodes): grows, never shrinks.
inline double* scratch(std::size_t n) {
    thread_local Buffer buf;
    thread_local std::size_t size = 0;
    if (size < n) {
        buf = make_buffer(n);
        size = n;
    }
    return buf.get();
}

// Scratch of the calling thread for the VaR / ES measures: the joint P&L, a copy to select in and
// the scenario order (weighted quantile). Grows, never shrinks: after a thread's first evaluation at
// the book's scenario count the measures allocate nothing.
struct TailScratch {
    std::vector<double> joint, work, sum;
    std::vector<std::int32_t> order;
};
inline TailScratch& tail_scratch(std::size_t n) {
    thread_local TailScratch t;
    if (t.joint.size() < n) {
        t.joint.resize(n);
        t.work.resize(2 * n);  // Kernels::tail_indices' scratch
        t.sum.resize(n);
        t.order.resize(n);
    }
    return t;
}
// A child of a cross-mode node: a pair's weighted P&L, unit, settlement currency and add-on charges.
struct NodeChild {
    const double* p;
    std::int32_t unit;
    std::int32_t currency;
    const double* charge;
};

// SPAN coupling scratch (book_coupling-inl.hpp), per thread; grows, never shrinks (no allocation
// once warm).
struct SpreadScratch {
    std::vector<SpreadPair> pairs;
    std::vector<double> credit;          // [pairs x n_inter]
    std::vector<std::int64_t> changed;   // keys (ascending) of nodes whose credits change
    PairSpreads hypo;                    // the order's pair
    Buffer pw;                           // its weighted P&L after the order
    std::size_t pw_size = 0;
    Account acc;                         // the account's nodes after the order
};
inline SpreadScratch& spread_scratch() {
    thread_local SpreadScratch s;
    return s;
}

// A market refresh of one unit (ModelBook::update_unit's arguments; null / NaN: unchanged).
struct UnitMarket {
    const double* rows = nullptr;
    std::size_t n_rows = 0;
    const double *forward = nullptr, *discount = nullptr, *vol = nullptr, *expiry = nullptr;
    double spot = 0.0, fx = 0.0;
};

// The market of one unit's instruments before a refresh, to restore it when the refresh is refused.
struct MarketBackup {
    Buffer rows, raw;           // W and R rows of the members
    std::vector<double> inst;   // per member: forward, discount, vol, expiry, delta, notional
    std::vector<double> risk_max, unit_fx, currency_fx;
    double spot = 0.0;
};

}  // namespace marginkernel::book_detail

namespace marginkernel {

// The book's sources are its only includers: they see the internal types unqualified.
using namespace book_detail;

struct ModelBook::Impl {
    std::size_t ni = 0, ns = 0, nu = 0, nc = 0, stride = 0;
    BookModel model;
    std::size_t n_addons = 0;
    std::array<Combine, kMaxAddOns> combine{};  // of each add-on
    Buffer risk, wrisk, weight, zeros;  // R and W = w * R per instrument, [ni x stride]
    std::vector<double> risk_max;  // max_s |W[i, s]|
    AddOnMarket mk;
    std::vector<AddOnTerm> terms;  // [ni x n_addons]: each add-on's coefficients per instrument
    std::vector<double> strike, vol, discount;
    std::vector<std::int32_t> unit_currency;
    std::vector<double> currency_fx, unit_gain, currency_gain;
    double report_fx = 1.0;
    std::vector<double> coll_fx, coll_haircut;
    // var / es: the quantile level, its index among equally likely scenarios, the probabilities and
    // their total (empty: equally likely)
    double level = 0.0;
    std::size_t var_index = 0;
    std::vector<double> probability;
    double probability_total = 0.0;
    std::vector<std::vector<std::int32_t>> unit_instruments;
    std::vector<std::vector<std::int64_t>> holders;
    std::mutex holders_mutex;
    AccountTable<Account> accounts;
    mutable RwMutex book_mutex;
    std::unique_ptr<SpreadModel> spreads;  // SPAN delta spreads (null without intra / inter_spread add-ons)

    const double* wrisk_of(std::size_t i) const noexcept { return wrisk.get() + i * stride; }
    std::int64_t ukey_of(std::int32_t u) const noexcept {
        return static_cast<std::int64_t>(unit_currency[static_cast<std::size_t>(u)]) * static_cast<std::int64_t>(nu) + u;
    }
    std::int32_t currency_of_key(std::int64_t ukey) const noexcept {
        return static_cast<std::int32_t>(ukey / static_cast<std::int64_t>(nu));
    }
    bool isolated() const noexcept { return model.mode == MarginMode::isolated; }
    bool expired(std::size_t i) const noexcept {
        const int k = mk.kind[i];
        return k != static_cast<int>(Kind::perpetual) && k != static_cast<int>(Kind::spot) && !(mk.expiry[i] > 0.0);
    }

    // Node key of a slot (cross mode) or of a position (isolated mode).
    std::int64_t node_key(std::int64_t ukey, std::int32_t instrument) const noexcept {
        if (isolated()) return ukey * static_cast<std::int64_t>(ni) + instrument;
        switch (model.netting) {
            case Netting::risk_unit: return ukey;
            case Netting::currency: return currency_of_key(ukey);
            default: return 0;
        }
    }

    // --- lookups and checks (callers hold book_mutex) ---
    Account& account(std::int64_t a) const { return account_at(accounts, a); }
    void require_instrument(std::int32_t i) const {
        if (i < 0 || static_cast<std::size_t>(i) >= ni) throw UnknownId("instrument", i, ni);
    }
    void require_unit(std::int32_t u) const {
        if (u < 0 || static_cast<std::size_t>(u) >= nu) throw UnknownId("unit", u, nu);
    }
    void require_order(std::int32_t i, double q) const;
    static int find_slot(const Account& acc, std::int64_t ukey, int* insert = nullptr) noexcept {
        const auto it = std::lower_bound(acc.slots.begin(), acc.slots.end(), ukey,
                                         [](const Slot& s, std::int64_t k) { return s.ukey < k; });
        if (insert) *insert = static_cast<int>(it - acc.slots.begin());
        return it != acc.slots.end() && it->ukey == ukey ? static_cast<int>(it - acc.slots.begin()) : -1;
    }
    Hypo make_hypo(const Account& acc, std::int32_t i, double q) const;
    static void check_finite(const AccountMargin& t, const char* what);

    // --- construction (book.cpp) ---
    void check_views(const BookModel& spec, const InstrumentsView& in, const BookMarketView& mv, const double* rows,
                     std::size_t n_scenarios) const;
    void set_measure(const BookModel& spec, std::size_t n_scenarios);
    void set_units(const BookModel& spec, const BookMarketView& mv, std::size_t n_instruments, std::size_t n_scenarios);
    void check_addon_parameters() const;
    void set_collateral_terms(const BookMarketView& mv);
    void set_instruments(const InstrumentsView& in, const BookMarketView& mv);
    void set_risk(const double* rows, const double* weights);
    // The add-on terms of instrument i (book_addons.hpp), after its market or its unit's FX changed;
    // of every instrument of the units settled in currency c.
    void refresh_terms(std::size_t i) noexcept;
    void refresh_currency_terms(std::int32_t c) noexcept;

    // --- add-on sums and charges (book_nodes-inl.hpp) ---
    void move_sums(std::int32_t i, double q_old, double q_new, double* sums) const noexcept;
    void position_sums(const Position* begin, const Position* end, double* sums) const noexcept;
    void sums_after(const Slot* s, const Hypo& h, double* sums) const noexcept;
    void pair_charges(const double* sums, std::int32_t unit, const PositionRange& positions, double* out) const;
    void finish_node(NodeState& n) const noexcept;
    static PositionRange range_of(const Position* begin, const Position* end, const Hypo* h) noexcept {
        return PositionRange{begin, end, h ? h->instrument : -1, h ? h->q_new : 0.0};
    }

    // --- measures (book_measure-inl.hpp) ---
    bool tail_measure() const noexcept { return model.measure != Measure::worst_loss; }
    double scan_one(const double* p, const double* r, double q, std::int32_t* worst) const noexcept;
    double measure_one(const double* p, const double* r, double q, std::int32_t* worst) const;
    double tail(TailScratch& t, std::int32_t* worst) const;
    template <class C>
    double multi_scan(const C* ch, int nch, std::int64_t key, std::int32_t* worst) const;
    template <class C>
    void joint_vector(const C* ch, int nch, std::int64_t key, TailScratch& t) const;
    template <class C, class F>
    void joint_pnl(const C* ch, int nch, std::int64_t key, F&& f) const noexcept;

    // --- nodes, totals, what-if (book_nodes-inl.hpp) ---
    NodeState position_node(std::int64_t ukey, std::int32_t i, double q) const;
    void node_header(NodeState& n, std::int64_t key, std::int32_t unit) const noexcept;
    static bool alone_in_node(const Account& acc, const Hypo& h, std::int64_t lo, std::int64_t hi) noexcept;
    bool hypo_only_node(const Account& acc, std::int64_t key, const Hypo& h, NodeState& n) const;
    void node_ukeys(std::int64_t key, std::int64_t& lo, std::int64_t& hi) const noexcept;
    bool cross_node(const Account& acc, std::int64_t key, const Hypo* h, NodeState& n) const;
    AccountMargin totals(const Account& acc, std::int64_t sub_key, const NodeState* sub, bool has_sub,
                         bool components = true) const noexcept;
    NodeState hypo_node(const Account& acc, const Hypo& h, bool& has) const;
    ModelWhatIf what_if(const Account& acc, std::int32_t i, double q) const;

    // --- SPAN delta spreads (book_coupling-inl.hpp) ---
    bool coupled() const noexcept { return spreads && spreads->coupled() && !isolated(); }
    static bool has_key(const std::vector<std::int64_t>& keys, std::int64_t key) noexcept {
        return std::binary_search(keys.begin(), keys.end(), key);
    }
    void spread_pairs(const Account& acc, const Hypo* h, SpreadScratch& s) const;
    void spread_patch(NodeState& n, const SpreadScratch& s) const;
    AccountMargin spread_totals(const Account& acc, const Hypo& h, const NodeState& n, bool has) const;
    void spread_commit(Account& acc, int k, std::int64_t order_key) const;

    // --- fills and recomputation (book_fill.cpp) ---
    void apply_fill(Account& acc, std::int64_t a, std::int32_t i, double q);
    void refresh_node(Account& acc, std::int64_t key, std::int64_t ukey, std::int32_t i) const;
    void recompute(Account& acc) const;
    // Copies of accounts ids' collateral and positions (fresh P&L buffers), staging for recompute().
    std::vector<std::unique_ptr<Account>> stage(const std::vector<std::int64_t>& ids) const;
    // Moves staged accounts' slots, nodes and totals into the book's accounts ids.
    void commit(const std::vector<std::int64_t>& ids, std::vector<std::unique_ptr<Account>>& staged);

    // --- market refresh of one unit (book_market.cpp) ---
    void check_market(std::int32_t u, const UnitMarket& mu) const;
    MarketBackup save_market(std::int32_t u) const;
    void restore_market(std::int32_t u, const MarketBackup& b);
    void apply_market(std::int32_t u, const UnitMarket& mu);
    std::vector<std::int64_t> holders_of(std::int32_t u, bool fx_changed) const;
    void check_staged(const std::vector<std::int64_t>& who, const std::vector<std::unique_ptr<Account>>& staged) const;
};

}  // namespace marginkernel
