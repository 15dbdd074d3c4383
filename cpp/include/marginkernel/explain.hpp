// Explain: incremental scan risk of every position at once, from the netted P&L minus q * R.
//
// The netting tree of one book, laid out flat (pointers + extents, row-major, caller-owned):
//   position k --(q_k * w[u_k, s] * R[i_k, s] * scale[c_k])--> child c_k --> node n(c)
// A child is the unit of full netting below the node (a (account, risk unit) pair, or a settlement
// currency of an account); a node is where the measure is taken. A node's joint P&L per scenario is
//   sum over its live children of min(x_c, 0) + min(cap_n, sum g_c * max(x_c, 0))
// when it has two or more live children (a child is live while it holds a position), and the P&L of
// its one live child as it is otherwise (the engine's "single child keeps its P&L" rule).
// The node's scan is max(0, -min_s joint) (worst loss) or max(0, VaR / ES of joint) over the
// scenarios with `probability` (null = equally likely), as marginkernel::value_at_risk.
#pragma once

#include <cstddef>
#include <cstdint>

#include "marginkernel/types.hpp"

namespace marginkernel {

struct NettingTreeView {
    std::size_t n_scenarios = 0;
    std::size_t n_children = 0;
    std::size_t n_nodes = 0;
    const double* child_pnl = nullptr;       // [n_children x S] weighted P&L in node currency
    const double* child_gain = nullptr;      // [n_children] gain factor g_c in [0, 1]
    const std::int64_t* child_count = nullptr;  // [n_children] positions held (>= 1)
    const double* child_scale = nullptr;     // [n_children] settlement -> node currency factor
    const std::int64_t* node_start = nullptr;   // [n_nodes + 1] children of node n: [start, start+1)
    const double* node_cap = nullptr;        // [n_nodes] cap on the gain credit (inf = none)
    Measure measure = Measure::worst_loss;
    double confidence = 0.99;                // var / es only
    const double* probability = nullptr;     // [S] or null
};

struct RemovalsView {
    std::size_t n = 0;                        // positions
    std::size_t n_instruments = 0;
    std::size_t n_units = 0;
    const double* risk = nullptr;             // [n_instruments x S] R (as the model counts it)
    const double* weight = nullptr;           // [n_units x S] scenario weights per risk unit
    const std::int32_t* instrument = nullptr;  // [n]
    const std::int32_t* unit = nullptr;       // [n] risk unit of the instrument
    const std::int64_t* child = nullptr;      // [n]
    const double* quantity = nullptr;         // [n]
};

// scan_without[k]: the scan of position k's node after removing position k (node currency),
// from child_pnl - q_k * w * R[i_k] * scale; the other nodes do not change. O(S) per position plus
// O(S) per node, one scratch row per call; throws InvalidInput naming the field on bad extents.
void incremental_scan(const NettingTreeView& tree, const RemovalsView& removals, double* scan_without);

// The scan of every node as it is (for checks): scan[n].
void node_scan(const NettingTreeView& tree, double* scan);

}  // namespace marginkernel
