#include "marginkernel/explain.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "checks.hpp"
#include "marginkernel/reduce.hpp"

namespace marginkernel {

using namespace detail;

namespace {

void check_tree(const NettingTreeView& t) {
    if (t.n_scenarios == 0) throw InvalidInput("child_pnl", -1, "no scenarios");
    if (t.n_nodes > 0) {
        require_pointer("node_start", t.node_start);
        require_pointer("node_cap", t.node_cap);
        if (t.node_start[0] != 0 || static_cast<std::size_t>(t.node_start[t.n_nodes]) != t.n_children)
            throw InvalidInput("node_start", -1, "must run from 0 to the number of children");
        for (std::size_t n = 0; n < t.n_nodes; ++n) {
            if (t.node_start[n + 1] <= t.node_start[n])
                throw InvalidInput("node_start", static_cast<long long>(n), "every node needs a child");
            if (std::isnan(t.node_cap[n]) || t.node_cap[n] < 0.0)
                throw InvalidInput("node_cap", static_cast<long long>(n), "must be >= 0, got " + show(t.node_cap[n]));
        }
    }
    for (std::size_t c = 0; c < t.n_children; ++c) {
        const auto row = static_cast<long long>(c);
        if (!(t.child_gain[c] >= 0.0 && t.child_gain[c] <= 1.0))
            throw InvalidInput("child_gain", row, "must be in [0, 1], got " + show(t.child_gain[c]));
        if (t.child_count[c] < 1) throw InvalidInput("child_count", row, "must be >= 1");
        require_finite("child_scale", row, t.child_scale[c]);
        for (std::size_t s = 0; s < t.n_scenarios; ++s) require_finite("child_pnl", row, t.child_pnl[c * t.n_scenarios + s]);
    }
    if (t.measure != Measure::worst_loss && !(t.confidence > 0.0 && t.confidence < 1.0))
        throw InvalidInput("confidence", -1, "must be in (0, 1), got " + show(t.confidence));
}

double measure_row(const NettingTreeView& t, const double* joint) {
    const std::size_t ns = t.n_scenarios;
    if (t.measure == Measure::worst_loss) {
        double best = joint[0];
        for (std::size_t s = 1; s < ns; ++s) best = std::min(best, joint[s]);
        return std::max(0.0, -best);
    }
    double var = 0.0, es = 0.0;
    value_at_risk(joint, 1, ns, t.probability, t.confidence, &var, &es);
    return std::max(0.0, t.measure == Measure::var ? var : es);
}

// joint[s] of node n with child `changed` replaced by `changed_pnl` (null: removed; changed < 0:
// nothing changed).
void node_joint(const NettingTreeView& t, std::size_t n, long long changed, const double* changed_pnl,
                double* joint, double* gains) {
    const std::size_t ns = t.n_scenarios;
    const auto first = static_cast<std::size_t>(t.node_start[n]);
    const auto last = static_cast<std::size_t>(t.node_start[n + 1]);
    std::size_t live = last - first;
    if (changed >= 0 && changed_pnl == nullptr) --live;
    std::fill(joint, joint + ns, 0.0);
    if (live == 0) return;
    if (live == 1) {  // one live child: its P&L as it is
        for (std::size_t c = first; c < last; ++c) {
            const bool is_changed = static_cast<long long>(c) == changed;
            if (is_changed && changed_pnl == nullptr) continue;
            const double* x = is_changed ? changed_pnl : t.child_pnl + c * ns;
            std::copy(x, x + ns, joint);
        }
        return;
    }
    std::fill(gains, gains + ns, 0.0);
    for (std::size_t c = first; c < last; ++c) {
        const bool is_changed = static_cast<long long>(c) == changed;
        if (is_changed && changed_pnl == nullptr) continue;
        const double* x = is_changed ? changed_pnl : t.child_pnl + c * ns;
        const double g = t.child_gain[c];
        for (std::size_t s = 0; s < ns; ++s) {
            if (x[s] < 0.0) joint[s] += x[s];
            else gains[s] += g * x[s];
        }
    }
    const double cap = t.node_cap[n];
    for (std::size_t s = 0; s < ns; ++s) joint[s] += std::min(cap, gains[s]);
}

}  // namespace

void node_scan(const NettingTreeView& t, double* scan) {
    check_tree(t);
    std::vector<double> joint(t.n_scenarios), gains(t.n_scenarios);
    for (std::size_t n = 0; n < t.n_nodes; ++n) {
        node_joint(t, n, -1, nullptr, joint.data(), gains.data());
        scan[n] = measure_row(t, joint.data());
    }
}

void incremental_scan(const NettingTreeView& t, const RemovalsView& r, double* scan_without) {
    check_tree(t);
    const std::size_t ns = t.n_scenarios;
    std::vector<long long> node_of(t.n_children);
    for (std::size_t n = 0; n < t.n_nodes; ++n)
        for (auto c = t.node_start[n]; c < t.node_start[n + 1]; ++c) node_of[static_cast<std::size_t>(c)] = static_cast<long long>(n);
    std::vector<double> changed(ns), joint(ns), gains(ns);
    for (std::size_t k = 0; k < r.n; ++k) {
        const auto row = static_cast<long long>(k);
        const auto i = r.instrument[k];
        const auto u = r.unit[k];
        const auto c = r.child[k];
        if (i < 0 || static_cast<std::size_t>(i) >= r.n_instruments) throw InvalidInput("instrument", row, "out of range");
        if (u < 0 || static_cast<std::size_t>(u) >= r.n_units) throw InvalidInput("unit", row, "out of range");
        if (c < 0 || static_cast<std::size_t>(c) >= t.n_children) throw InvalidInput("child", row, "out of range");
        require_finite("quantity", row, r.quantity[k]);
        const auto cc = static_cast<std::size_t>(c);
        const double* x = t.child_pnl + cc * ns;
        const double* risk = r.risk + static_cast<std::size_t>(i) * ns;
        const double* w = r.weight + static_cast<std::size_t>(u) * ns;
        const double qs = r.quantity[k];
        const double scale = t.child_scale[cc];
        // P - q * R, in the engine's order: (q * R) weighted, then scaled to the node currency
        for (std::size_t s = 0; s < ns; ++s) changed[s] = x[s] - ((qs * risk[s]) * w[s]) * scale;
        const bool gone = t.child_count[cc] == 1;
        node_joint(t, static_cast<std::size_t>(node_of[cc]), static_cast<long long>(cc), gone ? nullptr : changed.data(),
                   joint.data(), gains.data());
        scan_without[k] = measure_row(t, joint.data());
    }
}

}  // namespace marginkernel
