#include <optional>

#include "arrays.hpp"
#include "marginkernel/explain.hpp"

namespace marginkernel::bindings {

namespace {

NettingTreeView tree_view(const f64& child_pnl, const f64& child_gain, const i64& child_count, const f64& child_scale,
                          const i64& node_start, const f64& node_cap, int measure, double confidence,
                          const std::optional<f64>& probability) {
    expect_shape("child_pnl", child_pnl, {-1, -1});
    const auto nc = child_pnl.shape(0), ns = child_pnl.shape(1);
    expect_shape("child_gain", child_gain, {nc});
    expect_shape("child_count", child_count, {nc});
    expect_shape("child_scale", child_scale, {nc});
    expect_shape("node_start", node_start, {-1});
    if (node_start.shape(0) < 1) throw InvalidInput("node_start", -1, "must have n_nodes + 1 entries");
    const auto nn = node_start.shape(0) - 1;
    expect_shape("node_cap", node_cap, {nn});
    if (probability) expect_shape("probability", *probability, {ns});
    if (measure < 0 || measure > 2) throw InvalidInput("measure", -1, "must be 0 (worst loss), 1 (VaR) or 2 (ES)");
    NettingTreeView t;
    t.n_scenarios = static_cast<std::size_t>(ns);
    t.n_children = static_cast<std::size_t>(nc);
    t.n_nodes = static_cast<std::size_t>(nn);
    t.child_pnl = child_pnl.data();
    t.child_gain = child_gain.data();
    t.child_count = child_count.data();
    t.child_scale = child_scale.data();
    t.node_start = node_start.data();
    t.node_cap = node_cap.data();
    t.measure = static_cast<Measure>(measure);
    t.confidence = confidence;
    t.probability = probability ? probability->data() : nullptr;
    return t;
}

f64 incremental_scan(const f64& child_pnl, const f64& child_gain, const i64& child_count, const f64& child_scale,
                     const i64& node_start, const f64& node_cap, int measure, double confidence,
                     const std::optional<f64>& probability, const f64& risk, const f64& weight,
                     const i32& instrument, const i32& unit, const i64& child, const f64& quantity) {
    const NettingTreeView t = tree_view(child_pnl, child_gain, child_count, child_scale, node_start, node_cap,
                                        measure, confidence, probability);
    expect_shape("risk", risk, {-1, child_pnl.shape(1)});
    expect_shape("weight", weight, {-1, child_pnl.shape(1)});
    expect_shape("instrument", instrument, {-1});
    const auto n = instrument.shape(0);
    expect_shape("unit", unit, {n});
    expect_shape("child", child, {n});
    expect_shape("quantity", quantity, {n});
    RemovalsView r;
    r.n = static_cast<std::size_t>(n);
    r.n_instruments = static_cast<std::size_t>(risk.shape(0));
    r.n_units = static_cast<std::size_t>(weight.shape(0));
    r.risk = risk.data();
    r.weight = weight.data();
    r.instrument = instrument.data();
    r.unit = unit.data();
    r.child = child.data();
    r.quantity = quantity.data();
    f64 out({n});
    double* o = out.mutable_data();
    {
        py::gil_scoped_release release;  // reads the argument arrays (kept alive by the caller), writes `out` only
        marginkernel::incremental_scan(t, r, o);
    }
    return out;
}

f64 node_scan(const f64& child_pnl, const f64& child_gain, const i64& child_count, const f64& child_scale,
              const i64& node_start, const f64& node_cap, int measure, double confidence,
              const std::optional<f64>& probability) {
    const NettingTreeView t = tree_view(child_pnl, child_gain, child_count, child_scale, node_start, node_cap,
                                        measure, confidence, probability);
    f64 out({static_cast<py::ssize_t>(t.n_nodes)});
    double* o = out.mutable_data();
    {
        py::gil_scoped_release release;  // reads the argument arrays, writes `out` only
        marginkernel::node_scan(t, o);
    }
    return out;
}

}  // namespace

void bind_explain(py::module_& m) {
    m.def("incremental_scan", &incremental_scan, py::arg("child_pnl"), py::arg("child_gain"), py::arg("child_count"),
          py::arg("child_scale"), py::arg("node_start"), py::arg("node_cap"), py::arg("measure"),
          py::arg("confidence"), py::arg("probability").none(true), py::arg("risk"), py::arg("weight"),
          py::arg("instrument"), py::arg("unit"), py::arg("child"), py::arg("quantity"),
          "Scan of each position's node with that position removed (P - q R, no re-netting).");
    m.def("node_scan", &node_scan, py::arg("child_pnl"), py::arg("child_gain"), py::arg("child_count"),
          py::arg("child_scale"), py::arg("node_start"), py::arg("node_cap"), py::arg("measure"),
          py::arg("confidence"), py::arg("probability").none(true), "Scan of every node of a netting tree.");
}

}  // namespace marginkernel::bindings
