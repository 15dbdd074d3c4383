// The model book (book.hpp). State layout and the rules that make a what-if equal the fill it
// predicts are described in docs/book.md; in short:
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
//    (hooks marked "SPAN hook" in what_if, apply_fill and recompute; the block "SPAN delta spreads").
#include "marginkernel/book.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <mutex>
#include <new>
#include <shared_mutex>

#include "book_addons.hpp"
#include "book_spreads.hpp"
#include "checks.hpp"
#include "kernels.hpp"
#include "parallel.hpp"
#include "state.hpp"

namespace marginkernel {

using namespace detail;

namespace {

constexpr double kMaxPnl = 1e300;
constexpr double kInf = std::numeric_limits<double>::infinity();

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
double* scratch(std::size_t n) {
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
TailScratch& tail_scratch(std::size_t n) {
    thread_local TailScratch t;
    if (t.joint.size() < n) {
        t.joint.resize(n);
        t.work.resize(n);
        t.sum.resize(n);
        t.order.resize(n);
    }
    return t;
}

}  // namespace

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
    std::vector<std::unique_ptr<Account>> accounts;
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
    Account& account(std::int64_t a) const {
        if (a < 0 || static_cast<std::size_t>(a) >= accounts.size()) throw UnknownId("account", a, accounts.size());
        return *accounts[static_cast<std::size_t>(a)];
    }
    void require_instrument(std::int32_t i) const {
        if (i < 0 || static_cast<std::size_t>(i) >= ni) throw UnknownId("instrument", i, ni);
    }
    void require_unit(std::int32_t u) const {
        if (u < 0 || static_cast<std::size_t>(u) >= nu) throw UnknownId("unit", u, nu);
    }
    void require_order(std::int32_t i, double q) const {
        require_instrument(i);
        require_finite("quantity", -1, q);
        if (expired(static_cast<std::size_t>(i)))
            throw InvalidInput("instrument", i, "has expired (expiry " + show(mk.expiry[static_cast<std::size_t>(i)]) +
                                                    " years); orders on it are refused");
        if (std::abs(q) * risk_max[static_cast<std::size_t>(i)] > kMaxPnl)
            throw InvalidInput("quantity", -1, show(q) + " is too large for instrument " + std::to_string(i) +
                                                   ": |quantity| * max|R| exceeds 1e300");
    }

    static int find_slot(const Account& acc, std::int64_t ukey, int* insert = nullptr) noexcept {
        const auto it = std::lower_bound(acc.slots.begin(), acc.slots.end(), ukey,
                                         [](const Slot& s, std::int64_t k) { return s.ukey < k; });
        if (insert) *insert = static_cast<int>(it - acc.slots.begin());
        return it != acc.slots.end() && it->ukey == ukey ? static_cast<int>(it - acc.slots.begin()) : -1;
    }

    Hypo make_hypo(const Account& acc, std::int32_t i, double q) const {
        Hypo h;
        h.instrument = i;
        h.unit = mk.unit[static_cast<std::size_t>(i)];
        h.ukey = ukey_of(h.unit);
        h.q = q;
        h.slot = find_slot(acc, h.ukey, &h.insert);
        double q_old = 0.0;
        std::size_t count = 0;
        if (h.slot >= 0) {
            const auto& pos = acc.slots[static_cast<std::size_t>(h.slot)].positions;
            count = pos.size();
            const auto it = std::lower_bound(pos.begin(), pos.end(), i,
                                             [](const Position& p, std::int32_t x) { return p.instrument < x; });
            if (it != pos.end() && it->instrument == i) {
                q_old = it->quantity;
                --count;
            }
        }
        h.q_old = q_old;
        h.q_new = q_old + q;
        if (!std::isfinite(h.q_new)) throw InvalidInput("quantity", -1, "the position would overflow");
        if (std::abs(h.q_new) * risk_max[static_cast<std::size_t>(i)] > kMaxPnl)
            throw InvalidInput("quantity", -1, "the position in instrument " + std::to_string(i) +
                                                   " would exceed |quantity| * max|R| = 1e300");
        h.slot_empty = count == 0 && h.q_new == 0.0;
        return h;
    }

    // --- evaluation ---

    // The add-on terms of instrument i (book_addons.hpp), after its market or its unit's FX changed.
    void refresh_terms(std::size_t i) noexcept {
        for (std::size_t k = 0; k < n_addons; ++k) terms[i * n_addons + k] = addon_term(model.addons[k], mk, i);
    }

    // ... of every instrument of the units settled in currency c (their market or FX changed).
    void refresh_currency_terms(std::int32_t c) noexcept {
        for (std::size_t v = 0; v < nu; ++v)
            if (unit_currency[v] == c)
                for (const auto i : unit_instruments[v]) refresh_terms(static_cast<std::size_t>(i));
    }

    // Moves each add-on's sums (sums[3k + j]) from a position of q_old in instrument i to one of
    // q_new: adds term(q_new) - term(q_old) (book_addons.hpp).
    void move_sums(std::int32_t i, double q_old, double q_new, double* sums) const noexcept {
        const double new_long = std::max(q_new, 0.0), new_short = std::max(-q_new, 0.0);
        const double old_long = std::max(q_old, 0.0), old_short = std::max(-q_old, 0.0);
        const AddOnTerm* t = terms.data() + static_cast<std::size_t>(i) * n_addons;
        for (std::size_t k = 0; k < n_addons; ++k)
            for (int j = 0; j < 3; ++j)
                sums[3 * k + j] += (t[k].pos[j] * new_long + t[k].neg[j] * new_short) -
                                   (t[k].pos[j] * old_long + t[k].neg[j] * old_short);
    }

    // The sums of positions [begin, end), in instrument order.
    void position_sums(const Position* begin, const Position* end, double* sums) const noexcept {
        std::fill(sums, sums + 3 * n_addons, 0.0);
        for (const Position* p = begin; p != end; ++p) move_sums(p->instrument, 0.0, p->quantity, sums);
    }

    // The sums of the order's slot after it (s: the slot, or null when the unit is new), exactly as
    // the fill stores them: the slot's sums moved by the order, zero when the slot is emptied.
    void sums_after(const Slot* s, const Hypo& h, double* sums) const noexcept {
        if (s)
            std::copy(s->sums.begin(), s->sums.begin() + static_cast<std::ptrdiff_t>(3 * n_addons), sums);
        else
            std::fill(sums, sums + 3 * n_addons, 0.0);
        if (h.slot_empty)
            std::fill(sums, sums + 3 * n_addons, 0.0);
        else
            move_sums(h.instrument, h.q_old, h.q_new, sums);
    }

    // Each add-on's charge of a pair of unit `unit` from its sums; the SPAN intra-commodity charges
    // from its positions (the order's merged in), whose month deltas they form spreads on.
    void pair_charges(const double* sums, std::int32_t unit, const PositionRange& positions, double* out) const {
        for (std::size_t k = 0; k < n_addons; ++k)
            out[k] = addon_finish(model.addons[k], mk, static_cast<std::size_t>(unit), sums + 3 * k);
        if (spreads) spreads->intra_charges(positions, unit, out);  // SPAN hook
    }

    // Combines scan and charges into requirement and contributions (engine.margin, per node).
    void finish_node(NodeState& n) const noexcept {
        double adds = 0.0, credits = 0.0, top_floor = 0.0;
        int binding = -1;
        for (std::size_t k = 0; k < n_addons; ++k) {
            const double c = n.m.charges[k];
            switch (combine[k]) {
                case Combine::add: adds += c; break;
                case Combine::credit: credits += c; break;
                case Combine::floor:
                    if (binding < 0 || c > top_floor) {
                        top_floor = c;
                        binding = static_cast<int>(k);
                    }
                    break;
            }
        }
        const double base = n.m.scan + adds;
        const double applied = std::min(credits, base);
        const double net = base - applied;
        const double uplift = std::max(top_floor - net, 0.0);
        n.m.requirement = net + uplift;
        const double share = credits > 0 ? applied / credits : 0.0;
        for (std::size_t k = 0; k < n_addons; ++k) {
            const Combine c = combine[k];
            n.contrib[k] = c == Combine::add ? n.m.charges[k] : c == Combine::credit ? -n.m.charges[k] * share : 0.0;
        }
        if (binding >= 0) n.contrib[static_cast<std::size_t>(binding)] += uplift;
    }

    // Worst loss of one P&L vector p + q r (the kernel the fills use).
    double scan_one(const double* p, const double* r, double q, std::int32_t* worst) const noexcept {
        return std::max(0.0, -active_kernels().whatif_min(p, r, q, 1.0, ns, worst));
    }

    bool tail_measure() const noexcept { return model.measure != Measure::worst_loss; }

    // The model's measure of one joint P&L vector p + q r: worst loss, or (var / es) the vector
    // p + q r rounded exactly as whatif_fill stores it, measured by tail().
    double measure_one(const double* p, const double* r, double q, std::int32_t* worst) const {
        if (!tail_measure()) return scan_one(p, r, q, worst);
        TailScratch& t = tail_scratch(ns);
        std::copy(p, p + ns, t.joint.data());
        if (q != 0.0) active_kernels().whatif_fill(t.joint.data(), r, q, ns);
        return tail(t, worst);
    }

    // VaR or ES of t.joint (marginkernel.kernels.value_at_risk, clamped at 0); worst = first
    // scenario of the minimum. The ES sums run in scenario order, as the kernel's.
    double tail(TailScratch& t, std::int32_t* worst) const {
        const double* j = t.joint.data();
        std::size_t at = 0;
        for (std::size_t s = 1; s < ns; ++s)
            if (j[s] < j[at]) at = s;
        *worst = static_cast<std::int32_t>(at);
        double q, es;
        if (probability.empty()) {
            if (16 * (var_index + 1) <= ns) {  // a low quantile: keep the k + 1 lowest in a heap, O(S log k)
                std::partial_sort_copy(j, j + ns, t.work.data(), t.work.data() + var_index + 1);
                q = t.work[var_index];
            } else {
                std::copy(j, j + ns, t.work.data());
                const auto nth = t.work.begin() + static_cast<std::ptrdiff_t>(var_index);
                std::nth_element(t.work.begin(), nth, t.work.begin() + static_cast<std::ptrdiff_t>(ns));
                q = *nth;
            }
            double sum = 0.0;
            std::size_t count = 0;
            for (std::size_t s = 0; s < ns; ++s)
                if (j[s] <= q) sum += j[s], ++count;
            es = -sum / static_cast<double>(count);
        } else {
            q = weighted_quantile(t);
            double sum = 0.0, mass = 0.0;
            for (std::size_t s = 0; s < ns; ++s)
                if (j[s] <= q) sum += probability[s] * j[s], mass += probability[s];
            es = -sum / mass;
        }
        return std::max(0.0, model.measure == Measure::var ? -q : es);
    }

    // NumPy's weighted inverted_cdf: the first scenario, in the order of (P&L, index), whose
    // cumulative probability / total reaches the level. Only the m lowest scenarios are ordered
    // (nth_element, then sort), m doubling until their mass reaches the level: O(S + m log m).
    double weighted_quantile(TailScratch& t) const {
        const double* j = t.joint.data();
        auto* order = t.order.data();
        for (std::size_t s = 0; s < ns; ++s) order[s] = static_cast<std::int32_t>(s);
        const auto before = [j](std::int32_t a, std::int32_t b) { return j[a] < j[b] || (j[a] == j[b] && a < b); };
        std::size_t m = std::min(ns, static_cast<std::size_t>(2.0 * level * static_cast<double>(ns)) + 16);
        for (;;) {
            std::nth_element(order, order + (m - 1), order + ns, before);
            std::sort(order, order + m, before);
            double run = 0.0;
            for (std::size_t k = 0; k < m; ++k) {
                run += probability[static_cast<std::size_t>(order[k])];
                if (run / probability_total >= level || k + 1 == ns) return j[order[k]];
            }
            m = std::min(ns, 2 * m);
        }
    }

    // Isolated mode: the node of one position.
    NodeState position_node(std::int64_t ukey, std::int32_t i, double q) const {
        NodeState n;
        n.key = node_key(ukey, i);
        const auto u = mk.unit[static_cast<std::size_t>(i)];
        const auto c = unit_currency[static_cast<std::size_t>(u)];
        n.m.unit = u;
        n.m.instrument = i;
        if (model.netting == Netting::currency) n.m.currency = c;
        const double* r = wrisk_of(static_cast<std::size_t>(i));
        double* v = scratch(stride);
        std::fill(v, v + ns, 0.0);
        active_kernels().whatif_fill(v, r, q, ns);  // q * W[i], as a fill computes it
        const double ufx = mk.unit_fx[static_cast<std::size_t>(u)];
        if (model.netting == Netting::account) {
            const double cfx = currency_fx[static_cast<std::size_t>(c)];
            for (std::size_t s = 0; s < ns; ++s) v[s] *= cfx;
            n.m.fx = 1.0;
        } else {
            n.m.fx = model.netting == Netting::currency ? currency_fx[static_cast<std::size_t>(c)] : ufx;
        }
        n.m.scan = measure_one(v, zeros.get(), 0.0, &n.m.worst_scenario);
        double sums[3 * kMaxAddOns], charge[kMaxAddOns];
        std::fill(sums, sums + 3 * n_addons, 0.0);
        move_sums(i, 0.0, q, sums);
        const Position one{i, q};
        pair_charges(sums, u, range_of(&one, &one + 1, nullptr), charge);
        for (std::size_t k = 0; k < n_addons; ++k) n.m.charges[k] = charge[k] * ufx / n.m.fx;
        finish_node(n);
        return n;
    }

    // Key, unit or currency and FX of a node whose first child is of unit `unit`; n is a default
    // NodeState (every caller's own).
    void node_header(NodeState& n, std::int64_t key, std::int32_t unit) const noexcept {
        n.key = key;
        if (model.netting == Netting::risk_unit) {
            n.m.unit = unit;
            n.m.fx = mk.unit_fx[static_cast<std::size_t>(unit)];
        } else if (model.netting == Netting::currency) {
            n.m.currency = static_cast<std::int32_t>(key);
            n.m.fx = currency_fx[static_cast<std::size_t>(key)];
        }
    }

    // Whether the order's unit is the only one the account holds in the node of unit keys [lo, hi):
    // the slots next to the order's (or to where it would go) are outside.
    static bool alone_in_node(const Account& acc, const Hypo& h, std::int64_t lo, std::int64_t hi) noexcept {
        const int before = (h.slot >= 0 ? h.slot : h.insert) - 1;
        const int after = h.slot >= 0 ? h.slot + 1 : h.insert;
        const int n = static_cast<int>(acc.slots.size());
        return (before < 0 || acc.slots[static_cast<std::size_t>(before)].ukey < lo) &&
               (after >= n || acc.slots[static_cast<std::size_t>(after)].ukey >= hi);
    }

    // cross_node when the order's unit is the node's only one (risk-unit netting, or a currency
    // with one unit held): the same arithmetic as the general case for one child, without
    // gathering children. The fill's refresh takes the general case and gets the same bits.
    bool hypo_only_node(const Account& acc, std::int64_t key, const Hypo& h, NodeState& n) const {
        if (h.slot_empty) return false;
        const Slot* s = h.slot >= 0 ? &acc.slots[static_cast<std::size_t>(h.slot)] : nullptr;
        double sums[3 * kMaxAddOns], charge[kMaxAddOns];
        sums_after(s, h, sums);
        const Position* pb = s ? s->positions.data() : nullptr;
        pair_charges(sums, h.unit, range_of(pb, s ? pb + s->positions.size() : nullptr, &h), charge);
        node_header(n, key, h.unit);
        n.m.scan = measure_one(s ? s->wpnl.get() : zeros.get(), wrisk_of(static_cast<std::size_t>(h.instrument)), h.q,
                               &n.m.worst_scenario);
        const double ufx = mk.unit_fx[static_cast<std::size_t>(h.unit)];
        for (std::size_t j = 0; j < n_addons; ++j) {
            n.m.charges[j] += charge[j] * ufx;
            n.m.charges[j] /= n.m.fx;
        }
        finish_node(n);
        return true;
    }

    // Cross mode: the node `key` of an account, with the Hypo applied when given. Returns false
    // when the node holds no position.
    bool cross_node(const Account& acc, std::int64_t key, const Hypo* h, NodeState& n) const {
        // children: slots of the node in order, with the Hypo's slot replaced or inserted
        std::int64_t lo = 0, hi = std::numeric_limits<std::int64_t>::max();
        if (model.netting == Netting::risk_unit) {
            lo = key;
            hi = key + 1;
        } else if (model.netting == Netting::currency) {
            lo = key * static_cast<std::int64_t>(nu);
            hi = lo + static_cast<std::int64_t>(nu);
        }
        const bool in_node = h && h->ukey >= lo && h->ukey < hi;
        if (in_node && model.netting != Netting::account && alone_in_node(acc, *h, lo, hi))
            return hypo_only_node(acc, key, *h, n);
        int b = 0, e = 0;
        find_slot(acc, lo, &b);
        find_slot(acc, hi, &e);
        struct Child {
            const double* p;
            std::int32_t unit;
            std::int32_t currency;
            const double* charge;
        };
        constexpr int kStack = 32;
        Child stack[kStack];
        std::vector<Child> heap;  // only for nodes of more than 31 units (allocates)
        const int cap = (e - b) + 1;
        Child* ch = stack;
        if (cap > kStack) {
            heap.resize(static_cast<std::size_t>(cap));
            ch = heap.data();
        }
        int nch = 0;
        double hcharge[kMaxAddOns] = {};
        const double* hp = nullptr;
        if (in_node && !h->slot_empty) {
            const Slot* s = h->slot >= 0 ? &acc.slots[static_cast<std::size_t>(h->slot)] : nullptr;
            double sums[3 * kMaxAddOns];
            sums_after(s, *h, sums);
            const Position* pb = s ? s->positions.data() : nullptr;
            pair_charges(sums, h->unit, range_of(pb, s ? pb + s->positions.size() : nullptr, h), hcharge);
            hp = s ? s->wpnl.get() : zeros.get();
        }
        bool hypo_done = !in_node;
        const double* hr = h ? wrisk_of(static_cast<std::size_t>(h->instrument)) : nullptr;
        double* hv = nullptr;  // hypothetical Pw of the order's unit (multi-child nodes)
        auto push_hypo = [&] {
            hypo_done = true;
            if (h->slot_empty) return;
            ch[nch++] = Child{hp, h->unit, currency_of_key(h->ukey), hcharge};
        };
        for (int k = b; k < e; ++k) {
            const Slot& s = acc.slots[static_cast<std::size_t>(k)];
            if (!hypo_done && h->ukey <= s.ukey) {
                push_hypo();
                if (h->ukey == s.ukey) continue;
            }
            if (s.positions.empty()) continue;
            ch[nch++] = Child{s.wpnl.get(), s.unit, currency_of_key(s.ukey), s.charge.data()};
        }
        if (!hypo_done) push_hypo();
        if (nch == 0) return false;

        node_header(n, key, ch[0].unit);
        const bool hypo_child = in_node && !h->slot_empty;
        if (nch == 1 && model.netting != Netting::account) {
            // one child: its P&L as it is (engine: a group of one keeps its child's P&L)
            if (hypo_child)
                n.m.scan = measure_one(hp, hr, h->q, &n.m.worst_scenario);
            else
                n.m.scan = measure_one(ch[0].p, zeros.get(), 0.0, &n.m.worst_scenario);
        } else {
            if (hypo_child) {  // the hypothetical Pw, rounded exactly as the fill rounds it
                hv = scratch(stride);
                std::copy(hp, hp + ns, hv);
                active_kernels().whatif_fill(hv, hr, h->q, ns);
                for (int k = 0; k < nch; ++k)
                    if (ch[k].p == hp && ch[k].charge == hcharge) ch[k].p = hv;
            }
            n.m.scan = multi_scan(ch, nch, key, &n.m.worst_scenario);
        }
        for (int k = 0; k < nch; ++k) {
            const double ufx = mk.unit_fx[static_cast<std::size_t>(ch[k].unit)];
            for (std::size_t j = 0; j < n_addons; ++j) n.m.charges[j] += ch[k].charge[j] * ufx;
        }
        for (std::size_t j = 0; j < n_addons; ++j) n.m.charges[j] /= n.m.fx;
        finish_node(n);
        return true;
    }

    // The measure of a node of several children (currency or account netting; account netting
    // with one child too).
    template <class C>
    double multi_scan(const C* ch, int nch, std::int64_t key, std::int32_t* worst) const {
        if (tail_measure()) {
            TailScratch& t = tail_scratch(ns);
            joint_vector(ch, nch, key, t);
            return tail(t, worst);
        }
        double best = kInf;
        std::int32_t at = 0;
        joint_pnl(ch, nch, key, [&](std::size_t s, double v) {
            if (v < best) {
                best = v;
                at = static_cast<std::int32_t>(s);
            }
        });
        *worst = at;
        return std::max(0.0, -best);
    }

    // The joint P&L of a node of several children into t.joint, child by child (loops the compiler
    // vectorises); per scenario the same operations in the same order as joint_pnl, so the same
    // doubles. t.work holds the gains, t.sum a currency's sum.
    template <class C>
    void joint_vector(const C* ch, int nch, std::int64_t key, TailScratch& t) const {
        double* j = t.joint.data();
        double* gain = t.work.data();
        std::fill(j, j + ns, 0.0);
        std::fill(gain, gain + ns, 0.0);
        if (model.netting == Netting::currency) {
            const double cap = model.gain_cap / currency_fx[static_cast<std::size_t>(key)];
            for (int k = 0; k < nch; ++k) {
                const double* p = ch[k].p;
                const double g = unit_gain[static_cast<std::size_t>(ch[k].unit)];
                for (std::size_t s = 0; s < ns; ++s) {
                    j[s] += std::min(p[s], 0.0);
                    gain[s] += std::max(p[s], 0.0) * g;
                }
            }
            for (std::size_t s = 0; s < ns; ++s) j[s] = j[s] + std::min(gain[s], cap);
            return;
        }
        bool several = false;
        for (int k = 1; k < nch; ++k) several |= ch[k].currency != ch[0].currency;
        double* y = t.sum.data();
        for (int k = 0; k < nch;) {
            const std::int32_t c = ch[k].currency;
            std::fill(y, y + ns, 0.0);
            for (; k < nch && ch[k].currency == c; ++k)
                for (std::size_t s = 0; s < ns; ++s) y[s] += ch[k].p[s];
            const double fx = currency_fx[static_cast<std::size_t>(c)];
            const double g = currency_gain[static_cast<std::size_t>(c)];
            if (!several) {
                for (std::size_t s = 0; s < ns; ++s) j[s] = y[s] * fx;
                return;
            }
            for (std::size_t s = 0; s < ns; ++s) {
                const double v = y[s] * fx;
                j[s] += std::min(v, 0.0);
                gain[s] += std::max(v, 0.0) * g;
            }
        }
        for (std::size_t s = 0; s < ns; ++s) j[s] = j[s] + std::min(gain[s], model.gain_cap);
    }

    // The joint P&L of a node of several children, scenario by scenario: f(s, J_s).
    template <class C, class F>
    void joint_pnl(const C* ch, int nch, std::int64_t key, F&& f) const noexcept {
        if (model.netting == Netting::currency) {
            const double cap = model.gain_cap / currency_fx[static_cast<std::size_t>(key)];
            for (std::size_t s = 0; s < ns; ++s) {
                double loss = 0.0, gain = 0.0;
                for (int k = 0; k < nch; ++k) {
                    const double x = ch[k].p[s];
                    loss += std::min(x, 0.0);
                    gain += std::max(x, 0.0) * unit_gain[static_cast<std::size_t>(ch[k].unit)];
                }
                f(s, loss + std::min(gain, cap));
            }
        } else {  // account: each currency's units net fully, in USD; then haircut across currencies
            bool several = false;
            for (int k = 1; k < nch; ++k) several |= ch[k].currency != ch[0].currency;
            for (std::size_t s = 0; s < ns; ++s) {
                double loss = 0.0, gain = 0.0, single = 0.0;
                for (int k = 0; k < nch;) {
                    const std::int32_t c = ch[k].currency;
                    double sum = 0.0;
                    for (; k < nch && ch[k].currency == c; ++k) sum += ch[k].p[s];
                    const double y = sum * currency_fx[static_cast<std::size_t>(c)];
                    single = y;
                    loss += std::min(y, 0.0);
                    gain += std::max(y, 0.0) * currency_gain[static_cast<std::size_t>(c)];
                }
                f(s, several ? loss + std::min(gain, model.gain_cap) : single);
            }
        }
    }

    // The account's totals from its nodes, with node `sub` (key sub_key; absent when sub is null)
    // substituted for the stored one. A what-if leaves the add-on components out (zero): no
    // figure it reports depends on them.
    AccountMargin totals(const Account& acc, std::int64_t sub_key, const NodeState* sub, bool has_sub,
                         bool components = true) const noexcept {
        AccountMargin t;
        double best_usd = 0.0;
        auto add = [&](const NodeState& n) {
            const double scale = n.m.fx / report_fx;
            t.risk += n.m.requirement * scale;
            t.scan_risk += n.m.scan * scale;
            if (components)
                for (std::size_t k = 0; k < n_addons; ++k) t.components[k] += n.contrib[k] * scale;
            const double usd = n.m.scan * n.m.fx;
            if (usd > best_usd) {
                best_usd = usd;
                t.worst_scenario = n.m.worst_scenario;
                t.worst_node = model.netting == Netting::risk_unit  ? n.m.unit
                               : model.netting == Netting::currency ? n.m.currency
                                                                    : 0;
            }
        };
        bool done = !has_sub;
        for (const NodeState& n : acc.nodes) {
            if (!done && sub_key <= n.key) {
                done = true;
                if (sub) add(*sub);
                if (sub_key == n.key) continue;
            }
            add(n);
        }
        if (!done && sub) add(*sub);
        t.im = model.im_factor * t.risk;
        t.mm = model.mm_factor * t.risk;
        if (acc.has_collateral) {
            t.equity = acc.equity;
            t.available = t.equity - t.im;
            t.margin_ratio = t.mm == 0 ? 0.0 : (t.equity > 0 ? t.mm / t.equity : kInf);
            t.liquidation = t.equity < t.mm;
        }
        return t;
    }

    // The node an order touches, evaluated with the order (has = false: the node is gone).
    NodeState hypo_node(const Account& acc, const Hypo& h, bool& has) const {
        NodeState n;
        if (isolated()) {
            has = h.q_new != 0.0;
            if (has) n = position_node(h.ukey, h.instrument, h.q_new);
            else n.key = node_key(h.ukey, h.instrument);
            return n;
        }
        const std::int64_t key = node_key(h.ukey, h.instrument);
        has = cross_node(acc, key, &h, n);
        n.key = key;
        return n;
    }

    static void check_finite(const AccountMargin& t, const char* what) {
        bool ok = std::isfinite(t.im) && std::isfinite(t.mm) && std::isfinite(t.scan_risk);
        if (!ok) throw InvalidInput("quantity", -1, std::string(what) + ": the margin would not be finite (inputs too large)");
    }

    ModelWhatIf what_if(const Account& acc, std::int32_t i, double q) const {
        const Hypo h = make_hypo(acc, i, q);
        bool has = false;
        const NodeState n = hypo_node(acc, h, has);
        const AccountMargin t = coupled() ? spread_totals(acc, h, n, has)  // SPAN hook: credits move other nodes
                                          : totals(acc, n.key, has ? &n : nullptr, true, false);
        check_finite(t, "what_if");
        return ModelWhatIf{t.im, t.mm, acc.total.im, t.available, t.worst_scenario};
    }

    // Commits an order (the account held exclusively, checks done).
    void apply_fill(Account& acc, std::int64_t a, std::int32_t i, double q) {
        const Hypo h = make_hypo(acc, i, q);
        {
            bool has = false;
            const NodeState n = hypo_node(acc, h, has);
            check_finite(coupled() ? spread_totals(acc, h, n, has)  // SPAN hook (sizes the scratch spread_commit uses)
                                   : totals(acc, n.key, has ? &n : nullptr, true, false),
                         "add_fill");
        }
        int k = h.slot;
        if (k < 0) {
            Slot slot;
            slot.unit = h.unit;
            slot.ukey = h.ukey;
            slot.wpnl = make_buffer(stride);
            slot.positions.reserve(1);
            acc.slots.reserve(acc.slots.size() + 1);
            acc.nodes.reserve(acc.nodes.size() + 1);
            acc.slots.insert(acc.slots.begin() + h.insert, std::move(slot));
            {
                std::lock_guard guard(holders_mutex);
                holders[static_cast<std::size_t>(h.unit)].push_back(a);
            }
            k = h.insert;
        } else {
            acc.nodes.reserve(acc.nodes.size() + 1);
            acc.slots[static_cast<std::size_t>(k)].positions.reserve(
                acc.slots[static_cast<std::size_t>(k)].positions.size() + 1);
        }
        Slot& slot = acc.slots[static_cast<std::size_t>(k)];
        double sums[3 * kMaxAddOns];
        sums_after(h.slot >= 0 ? &slot : nullptr, h, sums);
        if (coupled()) spreads->reserve(slot.spread);  // SPAN hook: the pair's spread state sized before committing
        auto it = std::lower_bound(slot.positions.begin(), slot.positions.end(), i,
                                   [](const Position& p, std::int32_t x) { return p.instrument < x; });
        if (it == slot.positions.end() || it->instrument != i) it = slot.positions.insert(it, Position{i, 0.0});
        // no throw from here on (capacity reserved above)
        it->quantity = h.q_new;
        if (it->quantity == 0.0) slot.positions.erase(it);
        if (slot.positions.empty())
            std::fill(slot.wpnl.get(), slot.wpnl.get() + stride, 0.0);
        else
            active_kernels().whatif_fill(slot.wpnl.get(), wrisk_of(static_cast<std::size_t>(i)), q, ns);
        std::copy(sums, sums + 3 * n_addons, slot.sums.begin());
        pair_charges(slot.sums.data(), slot.unit,
                     range_of(slot.positions.data(), slot.positions.data() + slot.positions.size(), nullptr),
                     slot.charge.data());
        refresh_node(acc, node_key(h.ukey, i), h.ukey, i);
        if (coupled()) spread_commit(acc, k, node_key(h.ukey, i));  // SPAN hook: the credits of every pair
        acc.total = totals(acc, 0, nullptr, false);
    }

    // Re-evaluates one node from the committed state and stores it (or drops it).
    void refresh_node(Account& acc, std::int64_t key, std::int64_t ukey, std::int32_t i) const {
        NodeState n;
        bool has;
        if (isolated()) {
            const int k = find_slot(acc, ukey);
            double q = 0.0;
            if (k >= 0)
                for (const Position& p : acc.slots[static_cast<std::size_t>(k)].positions)
                    if (p.instrument == i) q = p.quantity;
            has = q != 0.0;
            if (has) n = position_node(ukey, i, q);
        } else {
            has = cross_node(acc, key, nullptr, n);
        }
        n.key = key;
        const auto it = std::lower_bound(acc.nodes.begin(), acc.nodes.end(), key,
                                         [](const NodeState& x, std::int64_t y) { return x.key < y; });
        const bool found = it != acc.nodes.end() && it->key == key;
        if (has && found) *it = n;
        else if (has) acc.nodes.insert(it, n);
        else if (found) acc.nodes.erase(it);
    }

    // ---- SPAN delta spreads (book_spreads.hpp, docs/book.md) -------------------------------------
    // intra_spread is a pair charge (pair_charges). inter_spread credits couple an account's pairs:
    // an order re-forms the account's spreads, and every node whose credit changes (and the order's
    // node) is re-finished, by the same functions in what-if and fill.
    bool coupled() const noexcept { return spreads && spreads->coupled() && !isolated(); }

    static PositionRange range_of(const Position* begin, const Position* end, const Hypo* h) noexcept {
        return PositionRange{begin, end, h ? h->instrument : -1, h ? h->q_new : 0.0};
    }

    struct SpreadScratch {  // per thread; grows, never shrinks (no allocation once warm)
        std::vector<SpreadPair> pairs;
        std::vector<double> credit;          // [pairs x n_inter]
        std::vector<std::int64_t> changed;   // keys (ascending) of nodes whose credits change
        PairSpreads hypo;                    // the order's pair
        Buffer pw;                           // its weighted P&L after the order
        std::size_t pw_size = 0;
        Account acc;                         // the account's nodes after the order
    };
    static SpreadScratch& spread_scratch() {
        thread_local SpreadScratch s;
        return s;
    }
    static bool has_key(const std::vector<std::int64_t>& keys, std::int64_t key) noexcept {
        return std::binary_search(keys.begin(), keys.end(), key);
    }

    // The account's held pairs in slot order (the Hypo's pair replaced or inserted, its state in
    // s.hypo), every inter add-on's credit to each and the nodes whose credits change, into s.
    void spread_pairs(const Account& acc, const Hypo* h, SpreadScratch& s) const {
        s.pairs.clear();
        bool done = h == nullptr;
        const auto push_hypo = [&] {
            done = true;
            if (!h->slot_empty) s.pairs.push_back(SpreadPair{h->unit, h->ukey, &s.hypo, nullptr});
        };
        for (const Slot& slot : acc.slots) {
            if (!done && h->ukey <= slot.ukey) {
                push_hypo();
                if (h->ukey == slot.ukey) continue;
            }
            if (!slot.positions.empty())
                s.pairs.push_back(SpreadPair{slot.unit, slot.ukey, &slot.spread, slot.charge.data()});
        }
        if (!done) push_hypo();
        const std::size_t n_inter = spreads->n_inter();
        if (s.credit.size() < s.pairs.size() * n_inter) s.credit.resize(s.pairs.size() * n_inter);
        spreads->inter_credits(s.pairs.data(), s.pairs.size(), s.credit.data());
        s.changed.clear();
        s.changed.reserve(s.pairs.size());  // at most one node per pair: warm once, never grows after
        for (std::size_t p = 0; p < s.pairs.size(); ++p) {
            bool diff = s.pairs[p].stored == nullptr;
            for (std::size_t j = 0; j < n_inter; ++j)
                diff = diff || s.credit[p * n_inter + j] != s.pairs[p].stored[spreads->inter_addon(j)];
            const std::int64_t key = node_key(s.pairs[p].ukey, 0);
            if (diff && (s.changed.empty() || s.changed.back() != key)) s.changed.push_back(key);
        }
    }

    // Node n's inter_spread charges re-summed from s.credit over its pairs in slot order (as
    // cross_node sums charges), then the node re-finished.
    void spread_patch(NodeState& n, const SpreadScratch& s) const {
        const std::size_t n_inter = spreads->n_inter();
        for (std::size_t j = 0; j < n_inter; ++j) {
            double c = 0.0;
            for (std::size_t p = 0; p < s.pairs.size(); ++p)
                if (node_key(s.pairs[p].ukey, 0) == n.key)
                    c += s.credit[p * n_inter + j] * mk.unit_fx[static_cast<std::size_t>(s.pairs[p].unit)];
            n.m.charges[spreads->inter_addon(j)] = c / n.m.fx;
        }
        finish_node(n);
    }

    // What-if: the account's totals after the order, node n (the order's, from hypo_node) substituted
    // and every node whose credits change re-finished.
    AccountMargin spread_totals(const Account& acc, const Hypo& h, const NodeState& n, bool has) const {
        SpreadScratch& s = spread_scratch();
        if (!h.slot_empty) {  // the order's pair: Pw + q W[i] rounded as the fill stores it
            if (s.pw_size < stride) {
                s.pw = make_buffer(stride);
                s.pw_size = stride;
            }
            const Slot* slot = h.slot >= 0 ? &acc.slots[static_cast<std::size_t>(h.slot)] : nullptr;
            const double* from = slot ? slot->wpnl.get() : zeros.get();
            std::copy(from, from + ns, s.pw.get());
            active_kernels().whatif_fill(s.pw.get(), wrisk_of(static_cast<std::size_t>(h.instrument)), h.q, ns);
            const Position* b = slot ? slot->positions.data() : nullptr;
            spreads->pair_state(range_of(b, slot ? b + slot->positions.size() : nullptr, &h), h.unit, s.pw.get(),
                                s.hypo);
        }
        spread_pairs(acc, &h, s);
        Account& t = s.acc;
        t.nodes.clear();
        const auto put = [&](const NodeState& x) {
            t.nodes.push_back(x);
            if (x.key == n.key || has_key(s.changed, x.key)) spread_patch(t.nodes.back(), s);
        };
        bool done = false;
        for (const NodeState& x : acc.nodes) {
            if (!done && n.key <= x.key) {
                done = true;
                if (has) put(n);
                if (n.key == x.key) continue;
            }
            put(x);
        }
        if (!done && has) put(n);
        t.has_collateral = acc.has_collateral;
        t.equity = acc.equity;
        return totals(t, 0, nullptr, false);
    }

    // Fill (k: the order's slot, order_key its node) or recompute (k = -1, every slot): the pairs'
    // spread states and credits committed to their charges; a fill re-finishes the order's node and
    // those whose credits changed (a recompute builds its nodes next).
    void spread_commit(Account& acc, int k, std::int64_t order_key) const {
        SpreadScratch& s = spread_scratch();
        for (std::size_t x = 0; x < acc.slots.size(); ++x) {
            Slot& slot = acc.slots[x];
            if ((k < 0 || static_cast<int>(x) == k) && !slot.positions.empty()) {
                const Position* b = slot.positions.data();
                spreads->pair_state(range_of(b, b + slot.positions.size(), nullptr), slot.unit, slot.wpnl.get(),
                                    slot.spread);
            }
        }
        spread_pairs(acc, nullptr, s);
        const std::size_t n_inter = spreads->n_inter();
        std::size_t p = 0;
        for (Slot& slot : acc.slots) {
            for (std::size_t j = 0; j < n_inter; ++j)
                slot.charge[spreads->inter_addon(j)] = slot.positions.empty() ? 0.0 : s.credit[p * n_inter + j];
            if (!slot.positions.empty()) ++p;
        }
        if (k < 0) return;
        for (NodeState& x : acc.nodes)
            if (x.key == order_key || has_key(s.changed, x.key)) spread_patch(x, s);
    }

    // Everything of an account from its positions (rebuild, refresh, bulk load).
    void recompute(Account& acc) const {
        for (Slot& s : acc.slots) {
            std::fill(s.wpnl.get(), s.wpnl.get() + stride, 0.0);
            for (const Position& p : s.positions)
                active_kernels().whatif_fill(s.wpnl.get(), wrisk_of(static_cast<std::size_t>(p.instrument)), p.quantity, ns);
            position_sums(s.positions.data(), s.positions.data() + s.positions.size(), s.sums.data());
            pair_charges(s.sums.data(), s.unit, range_of(s.positions.data(), s.positions.data() + s.positions.size(), nullptr),
                         s.charge.data());
        }
        if (coupled()) spread_commit(acc, -1, -1);  // SPAN hook: every pair's spread state and credits
        acc.nodes.clear();
        for (const Slot& s : acc.slots) {
            if (isolated()) {
                for (const Position& p : s.positions) acc.nodes.push_back(position_node(s.ukey, p.instrument, p.quantity));
                continue;
            }
            const std::int64_t key = node_key(s.ukey, 0);
            if (!acc.nodes.empty() && acc.nodes.back().key == key) continue;
            NodeState n;
            if (cross_node(acc, key, nullptr, n)) acc.nodes.push_back(n);
        }
        acc.total = totals(acc, 0, nullptr, false);
    }
};

namespace {

// A slot's positions with a fresh (zero) P&L buffer: staging for recompute().
Slot clone_slot(const Slot& s, std::size_t stride) {
    Slot c;
    c.unit = s.unit;
    c.ukey = s.ukey;
    c.wpnl = make_buffer(stride);
    c.positions.reserve(s.positions.size());
    for (const Position& p : s.positions) c.positions.push_back(p);
    return c;
}

template <class T>
void copy_or(std::vector<T>& out, const T* src, std::size_t n, T fallback) {
    out.assign(n, fallback);
    if (src) std::copy(src, src + n, out.begin());
}

}  // namespace

ModelBook::ModelBook(const BookModel& model, const InstrumentsView& in, const BookMarketView& mv, const double* risk,
                     const double* weight, std::size_t n_scenarios, std::size_t n_accounts)
    : impl_(std::make_unique<Impl>()) {
    Impl& m = *impl_;
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
    require_pointer("risk", risk);
    require_pointer("unit_spot", mv.unit_spot);
    require_pointer("unit_fx", mv.unit_fx);
    require_pointer("unit_currency", mv.unit_currency);
    require_pointer("currency_fx", mv.currency_fx);
    if (model.addons.size() > kMaxAddOns)
        throw InvalidInput("addons", -1, "at most " + std::to_string(kMaxAddOns) + " add-ons, got " +
                                             std::to_string(model.addons.size()));
    require_non_negative("im_factor", -1, model.im_factor);
    require_non_negative("mm_factor", -1, model.mm_factor);
    if (!(model.gain_cap >= 0)) throw InvalidInput("gain_cap", -1, "must be >= 0, got " + show(model.gain_cap));
    require_positive("report_fx", -1, mv.report_fx);
    const auto measure = static_cast<int>(model.measure);
    if (measure < 0 || measure > 2) throw InvalidInput("measure", -1, "unknown measure " + std::to_string(measure));
    const auto netting = static_cast<int>(model.netting);
    if (netting < 0 || netting > 2) throw InvalidInput("netting", -1, "unknown netting level " + std::to_string(netting));
    if (model.measure != Measure::worst_loss) {
        if (!(model.confidence > 0.0 && model.confidence < 1.0))
            throw InvalidInput("confidence", -1, "must be in (0, 1), got " + show(model.confidence));
        // the same level as marginkernel.kernels.value_at_risk (1 - confidence lowered by 1e-12)
        m.level = (1.0 - model.confidence) * (1.0 - 1e-12);
        const double index = static_cast<double>(n_scenarios) * m.level - 1.0;
        const double below = std::floor(index);
        const double k = std::clamp(index - below == 0.0 ? below : below + 1.0, 0.0,
                                    static_cast<double>(n_scenarios - 1));
        m.var_index = static_cast<std::size_t>(k);
        if (!model.probability.empty()) {
            if (model.probability.size() != n_scenarios)
                throw InvalidInput("probability", -1, "expected " + std::to_string(n_scenarios) + " values, got " +
                                                          std::to_string(model.probability.size()));
            for (std::size_t s = 0; s < n_scenarios; ++s) {
                require_non_negative("probability", static_cast<long long>(s), model.probability[s]);
                m.probability_total += model.probability[s];
            }
            if (!std::isfinite(m.probability_total)) throw InvalidInput("probability", -1, "sum overflows (is not finite)");
            if (!(m.probability_total > 0.0)) throw InvalidInput("probability", -1, "must not all be zero");
            m.probability = model.probability;
        }
    }

    m.ni = in.n;
    m.ns = n_scenarios;
    m.nu = mv.n_units;
    m.nc = mv.n_currencies;
    m.stride = (m.ns + 7) / 8 * 8;
    m.model = model;
    m.n_addons = model.addons.size();
    for (std::size_t k = 0; k < m.n_addons; ++k) m.combine[k] = combine_of(model.addons[k].type);
    m.report_fx = mv.report_fx;
    m.unit_currency.assign(mv.unit_currency, mv.unit_currency + m.nu);
    for (std::size_t u = 0; u < m.nu; ++u) {
        if (m.unit_currency[u] < 0 || static_cast<std::size_t>(m.unit_currency[u]) >= m.nc)
            throw InvalidInput("unit_currency", static_cast<long long>(u), "out of range");
        require_positive("unit_spot", static_cast<long long>(u), mv.unit_spot[u]);
        require_positive("unit_fx", static_cast<long long>(u), mv.unit_fx[u]);
    }
    m.currency_fx.assign(mv.currency_fx, mv.currency_fx + m.nc);
    for (std::size_t c = 0; c < m.nc; ++c) require_positive("currency_fx", static_cast<long long>(c), m.currency_fx[c]);
    const std::size_t n_gain = model.netting == Netting::account ? m.nc : m.nu;
    if (!model.gain_factor.empty() && model.gain_factor.size() != n_gain)
        throw InvalidInput("gain_factor", -1, "expected " + std::to_string(n_gain) + " values, got " +
                                                  std::to_string(model.gain_factor.size()));
    std::vector<double> gain = model.gain_factor.empty() ? std::vector<double>(n_gain, 1.0) : model.gain_factor;
    for (std::size_t k = 0; k < gain.size(); ++k) require_non_negative("gain_factor", static_cast<long long>(k), gain[k]);
    (model.netting == Netting::account ? m.currency_gain : m.unit_gain) = gain;
    if (m.unit_gain.empty()) m.unit_gain.assign(m.nu, 1.0);
    if (m.currency_gain.empty()) m.currency_gain.assign(m.nc, 1.0);
    for (std::size_t k = 0; k < m.n_addons; ++k) {
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
            if (v->size() != m.nu)
                throw InvalidInput("addons." + a.name, -1, "a per-unit parameter has " + std::to_string(v->size()) +
                                                               " values for " + std::to_string(m.nu) + " units");
            for (std::size_t u = 0; u < m.nu; ++u)
                require_non_negative(("addons." + a.name).c_str(), static_cast<long long>(u), (*v)[u]);
        }
    }
    m.coll_fx.assign(mv.collateral_fx ? mv.collateral_fx : m.currency_fx.data(),
                     (mv.collateral_fx ? mv.collateral_fx : m.currency_fx.data()) + mv.n_collateral);
    copy_or(m.coll_haircut, mv.collateral_haircut, mv.n_collateral, 0.0);
    for (std::size_t k = 0; k < mv.n_collateral; ++k) {
        require_positive("collateral_fx", static_cast<long long>(k), m.coll_fx[k]);
        if (!(m.coll_haircut[k] >= 0 && m.coll_haircut[k] <= 1))
            throw InvalidInput("collateral_haircut", static_cast<long long>(k), "must be in [0, 1]");
    }

    AddOnMarket& mk = m.mk;
    mk.kind.assign(in.kind, in.kind + m.ni);
    mk.settlement.assign(in.settlement, in.settlement + m.ni);
    mk.unit.assign(in.risk_unit, in.risk_unit + m.ni);
    mk.multiplier.assign(in.multiplier, in.multiplier + m.ni);
    mk.forward.assign(in.forward, in.forward + m.ni);
    copy_or(mk.expiry, in.expiry, m.ni, kInf);
    copy_or(m.strike, in.strike, m.ni, 0.0);
    copy_or(m.vol, in.vol, m.ni, 0.0);
    copy_or(m.discount, in.discount, m.ni, 1.0);
    mk.unit_spot.assign(mv.unit_spot, mv.unit_spot + m.nu);
    mk.unit_fx.assign(mv.unit_fx, mv.unit_fx + m.nu);
    mk.delta.assign(m.ni, 0.0);
    mk.notional.assign(m.ni, 0.0);
    m.unit_instruments.resize(m.nu);
    for (std::size_t i = 0; i < m.ni; ++i) {
        const auto ll = static_cast<long long>(i);
        if (mk.unit[i] < 0 || static_cast<std::size_t>(mk.unit[i]) >= m.nu)
            throw InvalidInput("risk_unit", ll, "must be in [0, " + std::to_string(m.nu) + ")");
        if (mk.kind[i] < 0 || mk.kind[i] > 4) throw InvalidInput("kind", ll, "unknown kind");
        if (mk.settlement[i] < 0 || mk.settlement[i] > 1) throw InvalidInput("settlement", ll, "unknown settlement");
        require_positive("multiplier", ll, mk.multiplier[i]);
        require_positive("forward", ll, mk.forward[i]);
        if (std::isnan(mk.expiry[i])) throw InvalidInput("expiry", ll, "is NaN");
        m.unit_instruments[static_cast<std::size_t>(mk.unit[i])].push_back(static_cast<std::int32_t>(i));
        refresh_instrument(mk, i, m.strike[i], m.vol[i], m.discount[i]);
        if (!std::isfinite(mk.delta[i]) || !std::isfinite(mk.notional[i]))
            throw InvalidInput("instruments", ll, "delta or notional is not finite");
    }
    m.terms.resize(m.ni * m.n_addons);
    for (std::size_t i = 0; i < m.ni; ++i) m.refresh_terms(i);
    m.risk = make_buffer(m.ni * m.stride);
    m.wrisk = make_buffer(m.ni * m.stride);
    m.weight = make_buffer(m.nu * m.stride);
    m.zeros = make_buffer(m.stride);
    m.risk_max.assign(m.ni, 0.0);
    for (std::size_t u = 0; u < m.nu; ++u)
        for (std::size_t s = 0; s < m.ns; ++s) {
            const double v = weight ? weight[u * m.ns + s] : 1.0;
            require_non_negative("weight", static_cast<long long>(u), v);
            m.weight[u * m.stride + s] = v;
        }
    for (std::size_t i = 0; i < m.ni; ++i) {
        const double* w = m.weight.get() + static_cast<std::size_t>(mk.unit[i]) * m.stride;
        double* wr = m.wrisk.get() + i * m.stride;
        for (std::size_t s = 0; s < m.ns; ++s) {
            const double x = risk[i * m.ns + s];
            m.risk[i * m.stride + s] = x;
            wr[s] = w[s] * x;
            if (!std::isfinite(x) || !std::isfinite(wr[s]))
                throw InvalidInput("risk", static_cast<long long>(i), "scenario " + std::to_string(s) + " is not finite");
            m.risk_max[i] = std::max(m.risk_max[i], std::abs(wr[s]));
        }
    }
    bool spread_addons = false;  // SPAN delta spreads (book_spreads.hpp)
    for (const AddOnSpec& a : model.addons)
        spread_addons = spread_addons || a.type == AddOnType::intra_spread || a.type == AddOnType::inter_spread;
    if (spread_addons) m.spreads = std::make_unique<SpreadModel>(m.model, mv, m.mk, m.ni, m.ns);
    m.holders.resize(m.nu);
    m.accounts.reserve(n_accounts);
    for (std::size_t a = 0; a < n_accounts; ++a) m.accounts.push_back(std::make_unique<Account>());
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
    const auto first = static_cast<std::int64_t>(m.accounts.size());
    std::vector<std::unique_ptr<Account>> fresh;
    fresh.reserve(count);
    for (std::size_t k = 0; k < count; ++k) fresh.push_back(std::make_unique<Account>());
    m.accounts.reserve(m.accounts.size() + count);
    for (auto& a : fresh) m.accounts.push_back(std::move(a));
    return first;
}

void ModelBook::add_fill(std::int64_t a, std::int32_t i, double q) {
    Impl& m = *impl_;
    std::shared_lock book(m.book_mutex);
    Account& acc = m.account(a);
    m.require_order(i, q);
    std::unique_lock lock(acc.mutex);
    m.apply_fill(acc, a, i, q);
}

void ModelBook::add_fills(const std::int64_t* accounts, const std::int32_t* instruments, const double* quantities,
                          std::size_t n) {
    Impl& m = *impl_;
    if (n == 0) return;
    require_pointer("accounts", accounts);
    require_pointer("instruments", instruments);
    require_pointer("quantities", quantities);
    std::unique_lock book(m.book_mutex);
    for (std::size_t k = 0; k < n; ++k) {
        try {
            m.account(accounts[k]);
            m.require_order(instruments[k], quantities[k]);
        } catch (const UnknownId&) {
            throw;
        } catch (const InvalidInput& e) {
            throw InvalidInput("fills", static_cast<long long>(k), e.what());
        }
    }
    // Stage: the touched accounts' new positions, recomputed from scratch, committed if all finite.
    std::vector<std::int64_t> touched(accounts, accounts + n);
    std::sort(touched.begin(), touched.end());
    touched.erase(std::unique(touched.begin(), touched.end()), touched.end());
    std::vector<std::unique_ptr<Account>> staged(touched.size());
    for (std::size_t t = 0; t < touched.size(); ++t) {
        const Account& old = *m.accounts[static_cast<std::size_t>(touched[t])];
        auto acc = std::make_unique<Account>();
        acc->collateral = old.collateral;
        acc->has_collateral = old.has_collateral;
        acc->equity = old.equity;
        for (const Slot& s : old.slots) {
            acc->slots.push_back(clone_slot(s, m.stride));
        }
        staged[t] = std::move(acc);
    }
    for (std::size_t k = 0; k < n; ++k) {
        const auto t = static_cast<std::size_t>(std::lower_bound(touched.begin(), touched.end(), accounts[k]) - touched.begin());
        Account& acc = *staged[t];
        const std::int32_t i = instruments[k];
        const Hypo h = m.make_hypo(acc, i, quantities[k]);
        int s = h.slot;
        if (s < 0) {
            Slot c;
            c.unit = h.unit;
            c.ukey = h.ukey;
            c.wpnl = make_buffer(m.stride);
            acc.slots.insert(acc.slots.begin() + h.insert, std::move(c));
            s = h.insert;
        }
        auto& pos = acc.slots[static_cast<std::size_t>(s)].positions;
        auto it = std::lower_bound(pos.begin(), pos.end(), i, [](const Position& p, std::int32_t x) { return p.instrument < x; });
        if (it == pos.end() || it->instrument != i) it = pos.insert(it, Position{i, 0.0});
        it->quantity = h.q_new;
        if (it->quantity == 0.0) pos.erase(it);
    }
    for (std::size_t t = 0; t < touched.size(); ++t) {
        m.recompute(*staged[t]);
        try {
            Impl::check_finite(staged[t]->total, "add_fills");
        } catch (const InvalidInput& e) {
            throw InvalidInput("account", touched[t], e.what());
        }
    }
    for (std::size_t t = 0; t < touched.size(); ++t) {
        const auto a = touched[t];
        Account& acc = *m.accounts[static_cast<std::size_t>(a)];
        for (const Slot& s : staged[t]->slots)
            if (Impl::find_slot(acc, s.ukey) < 0) m.holders[static_cast<std::size_t>(s.unit)].push_back(a);
        acc.slots = std::move(staged[t]->slots);
        acc.nodes = std::move(staged[t]->nodes);
        acc.total = staged[t]->total;
    }
}

ModelWhatIf ModelBook::what_if(std::int64_t a, std::int32_t i, double q) const {
    const Impl& m = *impl_;
    std::shared_lock book(m.book_mutex);
    const Account& acc = m.account(a);
    m.require_order(i, q);
    std::shared_lock lock(acc.mutex);
    return m.what_if(acc, i, q);
}

ModelCheck ModelBook::check(std::int64_t a, std::int32_t i, double q, double equity) const {
    const Impl& m = *impl_;
    if (std::isinf(equity)) require_finite("equity", -1, equity);
    std::shared_lock book(m.book_mutex);
    const Account& acc = m.account(a);
    m.require_order(i, q);
    std::shared_lock lock(acc.mutex);
    ModelCheck c;
    c.after = m.what_if(acc, i, q);
    const double e = std::isnan(equity) ? (acc.has_collateral ? acc.total.equity : 0.0) : equity;
    c.excess = e - c.after.im;
    c.accepted = c.after.im <= e || (m.model.allow_risk_reducing && c.after.im <= c.after.im_before);
    return c;
}

AccountMargin ModelBook::margin(std::int64_t a) const {
    const Impl& m = *impl_;
    std::shared_lock book(m.book_mutex);
    const Account& acc = m.account(a);
    std::shared_lock lock(acc.mutex);
    return acc.total;
}

std::vector<NodeMargin> ModelBook::nodes(std::int64_t a) const {
    const Impl& m = *impl_;
    std::shared_lock book(m.book_mutex);
    const Account& acc = m.account(a);
    std::shared_lock lock(acc.mutex);
    std::vector<NodeMargin> out;
    for (const NodeState& n : acc.nodes) out.push_back(n.m);
    return out;
}

PairMargin ModelBook::pair(std::int64_t a, std::int32_t u) const {
    const Impl& m = *impl_;
    std::shared_lock book(m.book_mutex);
    const Account& acc = m.account(a);
    m.require_unit(u);
    std::shared_lock lock(acc.mutex);
    PairMargin p;
    const int k = Impl::find_slot(acc, m.ukey_of(u));
    if (k < 0) return p;
    const Slot& s = acc.slots[static_cast<std::size_t>(k)];
    if (s.positions.empty()) return p;
    if (!m.isolated()) {
        p.loss = m.scan_one(s.wpnl.get(), m.zeros.get(), 0.0, &p.worst_scenario);
        p.charges = s.charge;
        return p;
    }
    double best = -1.0;
    Buffer v = make_buffer(m.stride);
    for (const Position& pos : s.positions) {
        std::fill(v.get(), v.get() + m.stride, 0.0);
        active_kernels().whatif_fill(v.get(), m.wrisk_of(static_cast<std::size_t>(pos.instrument)), pos.quantity, m.ns);
        std::int32_t w = 0;
        const double loss = m.scan_one(v.get(), m.zeros.get(), 0.0, &w);
        p.loss += loss;
        if (loss > best) {
            best = loss;
            p.worst_scenario = w;
        }
        double sums[3 * kMaxAddOns], charge[kMaxAddOns];
        m.position_sums(&pos, &pos + 1, sums);
        m.pair_charges(sums, u, Impl::range_of(&pos, &pos + 1, nullptr), charge);
        for (std::size_t j = 0; j < m.n_addons; ++j) p.charges[j] += charge[j];
    }
    return p;
}

std::vector<Position> ModelBook::positions(std::int64_t a) const {
    const Impl& m = *impl_;
    std::shared_lock book(m.book_mutex);
    const Account& acc = m.account(a);
    std::shared_lock lock(acc.mutex);
    std::vector<Position> out;
    for (const Slot& s : acc.slots) out.insert(out.end(), s.positions.begin(), s.positions.end());
    std::sort(out.begin(), out.end(), [](const Position& x, const Position& y) { return x.instrument < y.instrument; });
    return out;
}

double ModelBook::position(std::int64_t a, std::int32_t i) const {
    const Impl& m = *impl_;
    std::shared_lock book(m.book_mutex);
    const Account& acc = m.account(a);
    m.require_instrument(i);
    std::shared_lock lock(acc.mutex);
    const int k = Impl::find_slot(acc, m.ukey_of(m.mk.unit[static_cast<std::size_t>(i)]));
    if (k < 0) return 0.0;
    for (const Position& p : acc.slots[static_cast<std::size_t>(k)].positions)
        if (p.instrument == i) return p.quantity;
    return 0.0;
}

void ModelBook::pnl(std::int64_t a, double* out) const {
    const Impl& m = *impl_;
    require_pointer("out", out);
    std::shared_lock book(m.book_mutex);
    const Account& acc = m.account(a);
    std::shared_lock lock(acc.mutex);
    std::fill(out, out + m.nu * m.ns, 0.0);
    for (const Slot& s : acc.slots) {
        double* o = out + static_cast<std::size_t>(s.unit) * m.ns;
        for (const Position& p : s.positions) {
            const double* r = m.risk.get() + static_cast<std::size_t>(p.instrument) * m.stride;
            for (std::size_t k = 0; k < m.ns; ++k) o[k] += p.quantity * r[k];
        }
    }
}

void ModelBook::set_collateral(std::int64_t a, std::int32_t c, double amount) {
    Impl& m = *impl_;
    std::shared_lock book(m.book_mutex);
    Account& acc = m.account(a);
    if (c < 0 || static_cast<std::size_t>(c) >= m.coll_fx.size()) throw UnknownId("collateral currency", c, m.coll_fx.size());
    require_finite("amount", -1, amount);
    if (std::abs(amount) * m.coll_fx[static_cast<std::size_t>(c)] > kMaxPnl)
        throw InvalidInput("amount", -1, show(amount) + " is too large");
    std::unique_lock lock(acc.mutex);
    if (acc.collateral.empty()) acc.collateral.assign(m.coll_fx.size(), 0.0);
    acc.collateral[static_cast<std::size_t>(c)] = amount;
    acc.has_collateral = true;
    double usd = 0.0;
    for (std::size_t k = 0; k < acc.collateral.size(); ++k) {
        const double x = acc.collateral[k];
        usd += (x > 0 ? x * (1.0 - m.coll_haircut[k]) : x) * m.coll_fx[k];
    }
    acc.equity = usd / m.report_fx;
    acc.total = m.totals(acc, 0, nullptr, false);
}

std::vector<std::int32_t> ModelBook::instruments_of(std::int32_t u) const {
    impl_->require_unit(u);
    return impl_->unit_instruments[static_cast<std::size_t>(u)];
}

void ModelBook::update_unit(std::int32_t u, const double* rows, std::size_t n_rows, const double* forward,
                            const double* discount, const double* vol, const double* expiry, double spot, double fx,
                            int threads) {
    Impl& m = *impl_;
    std::unique_lock book(m.book_mutex);
    m.require_unit(u);
    const auto& members = m.unit_instruments[static_cast<std::size_t>(u)];
    const auto uu = static_cast<std::size_t>(u);
    if (n_rows != members.size())
        throw InvalidInput("rows", -1, "unit " + std::to_string(u) + " has " + std::to_string(members.size()) +
                                           " instruments, got " + std::to_string(n_rows) + " rows");
    if (n_rows > 0) require_pointer("rows", rows);
    if (!std::isnan(spot)) require_positive("spot", u, spot);
    if (!std::isnan(fx)) require_positive("fx", u, fx);
    const double* w = m.weight.get() + uu * m.stride;
    for (std::size_t k = 0; k < n_rows; ++k) {
        for (std::size_t s = 0; s < m.ns; ++s) {
            const double x = rows[k * m.ns + s];
            if (!std::isfinite(x) || !std::isfinite(w[s] * x))
                throw InvalidInput("rows", static_cast<long long>(k), "scenario " + std::to_string(s) + " is not finite");
        }
        if (forward) require_positive("forward", static_cast<long long>(k), forward[k]);
        if (expiry && std::isnan(expiry[k])) throw InvalidInput("expiry", static_cast<long long>(k), "is NaN");
        if (vol) require_non_negative("vol", static_cast<long long>(k), vol[k]);
        if (discount) require_positive("discount", static_cast<long long>(k), discount[k]);
    }
    // Keep the old market to restore it if a holder's margin would not be finite.
    const std::size_t nm = members.size();
    Buffer old_rows = make_buffer(nm * m.stride), old_raw = make_buffer(nm * m.stride);
    std::vector<double> old_inst(nm * 6);
    for (std::size_t k = 0; k < nm; ++k) {
        const auto i = static_cast<std::size_t>(members[k]);
        std::copy(m.wrisk_of(i), m.wrisk_of(i) + m.stride, old_rows.get() + k * m.stride);
        std::copy(m.risk.get() + i * m.stride, m.risk.get() + (i + 1) * m.stride, old_raw.get() + k * m.stride);
        const double vals[6] = {m.mk.forward[i], m.discount[i], m.vol[i], m.mk.expiry[i], m.mk.delta[i], m.mk.notional[i]};
        std::copy(vals, vals + 6, old_inst.begin() + static_cast<std::ptrdiff_t>(k * 6));
    }
    const std::vector<double> old_risk_max = m.risk_max, old_unit_fx = m.mk.unit_fx, old_currency_fx = m.currency_fx;
    const double old_spot = m.mk.unit_spot[uu];
    const auto cur = m.unit_currency[uu];
    const auto restore = [&] {
        for (std::size_t k = 0; k < nm; ++k) {
            const auto i = static_cast<std::size_t>(members[k]);
            std::copy(old_rows.get() + k * m.stride, old_rows.get() + (k + 1) * m.stride, m.wrisk.get() + i * m.stride);
            std::copy(old_raw.get() + k * m.stride, old_raw.get() + (k + 1) * m.stride, m.risk.get() + i * m.stride);
            const double* v = old_inst.data() + k * 6;
            m.mk.forward[i] = v[0], m.discount[i] = v[1], m.vol[i] = v[2], m.mk.expiry[i] = v[3];
            m.mk.delta[i] = v[4], m.mk.notional[i] = v[5];
        }
        m.risk_max = old_risk_max;
        m.mk.unit_fx = old_unit_fx;
        m.currency_fx = old_currency_fx;
        m.mk.unit_spot[uu] = old_spot;
        m.refresh_currency_terms(cur);
    };
    // apply the new market
    for (std::size_t k = 0; k < nm; ++k) {
        const auto i = static_cast<std::size_t>(members[k]);
        double* wr = m.wrisk.get() + i * m.stride;
        double* r = m.risk.get() + i * m.stride;
        m.risk_max[i] = 0.0;
        for (std::size_t s = 0; s < m.ns; ++s) {
            r[s] = rows[k * m.ns + s];
            wr[s] = w[s] * r[s];
            m.risk_max[i] = std::max(m.risk_max[i], std::abs(wr[s]));
        }
        if (forward) m.mk.forward[i] = forward[k];
        if (discount) m.discount[i] = discount[k];
        if (vol) m.vol[i] = vol[k];
        if (expiry) m.mk.expiry[i] = expiry[k];
        refresh_instrument(m.mk, i, m.strike[i], m.vol[i], m.discount[i]);
    }
    if (!std::isnan(spot)) m.mk.unit_spot[uu] = spot;
    const bool fx_changed = !std::isnan(fx) && fx != m.currency_fx[static_cast<std::size_t>(cur)];
    if (!std::isnan(fx)) {
        m.currency_fx[static_cast<std::size_t>(cur)] = fx;
        for (std::size_t v = 0; v < m.nu; ++v)
            if (m.unit_currency[v] == cur) m.mk.unit_fx[v] = fx;
    }
    m.refresh_currency_terms(cur);
    std::vector<std::int64_t> who = m.holders[uu];
    if (fx_changed)
        for (std::size_t v = 0; v < m.nu; ++v)
            if (m.unit_currency[v] == cur && v != uu) who.insert(who.end(), m.holders[v].begin(), m.holders[v].end());
    std::sort(who.begin(), who.end());
    who.erase(std::unique(who.begin(), who.end()), who.end());
    // stage every holder's new state (book exclusive: no account lock needed)
    std::vector<std::unique_ptr<Account>> staged(who.size());
    try {
        for (std::size_t t = 0; t < who.size(); ++t) {
            const Account& old = *m.accounts[static_cast<std::size_t>(who[t])];
            auto acc = std::make_unique<Account>();
            acc->collateral = old.collateral;
            acc->has_collateral = old.has_collateral;
            acc->equity = old.equity;
            for (const Slot& s : old.slots) {
                acc->slots.push_back(clone_slot(s, m.stride));
            }
            staged[t] = std::move(acc);
        }
        parallel_for(who.size(), threads, [&](std::size_t begin, std::size_t end) {
            for (std::size_t t = begin; t < end; ++t) m.recompute(*staged[t]);
        });
        for (std::size_t t = 0; t < who.size(); ++t) {
            for (const Slot& s : staged[t]->slots)
                for (const Position& p : s.positions)
                    if (std::abs(p.quantity) * m.risk_max[static_cast<std::size_t>(p.instrument)] > kMaxPnl)
                        throw InvalidInput("rows", -1, "account " + std::to_string(who[t]) + " holds " + show(p.quantity) +
                                                           " of instrument " + std::to_string(p.instrument) +
                                                           ": |quantity| * max|R| would exceed 1e300; market update refused");
            const AccountMargin& total = staged[t]->total;
            if (!std::isfinite(total.im) || !std::isfinite(total.scan_risk))
                throw InvalidInput("rows", -1, "account " + std::to_string(who[t]) +
                                                   " would have a margin that is not finite; market update refused");
        }
    } catch (...) {
        restore();
        throw;
    }
    for (std::size_t t = 0; t < who.size(); ++t) {
        Account& acc = *m.accounts[static_cast<std::size_t>(who[t])];
        acc.slots = std::move(staged[t]->slots);
        acc.nodes = std::move(staged[t]->nodes);
        acc.total = staged[t]->total;
    }
}

void ModelBook::rebuild(int threads) {
    Impl& m = *impl_;
    std::unique_lock book(m.book_mutex);
    parallel_for(m.accounts.size(), threads, [&](std::size_t begin, std::size_t end) {
        for (std::size_t a = begin; a < end; ++a) m.recompute(*m.accounts[a]);
    });
}

}  // namespace marginkernel
