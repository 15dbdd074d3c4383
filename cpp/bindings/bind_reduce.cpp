#include <optional>

#include "arrays.hpp"
#include "marginkernel/reduce.hpp"

namespace marginkernel::bindings {

namespace {

py::tuple worst_loss(const f64& pnl, const std::optional<f64>& weight, double gain_factor) {
    expect_shape("pnl", pnl, {-1, -1});
    const auto rows = pnl.shape(0), ns = pnl.shape(1);
    if (weight) expect_shape("weight", *weight, {-1, ns});
    f64 loss({rows});
    i32 worst({rows});
    const double* w = weight ? weight->data() : nullptr;
    const auto wrows = weight ? static_cast<std::size_t>(weight->shape(0)) : 0;
    double* lo = loss.mutable_data();
    std::int32_t* wo = worst.mutable_data();
    {
        py::gil_scoped_release release;  // reads the arguments, writes the new arrays only
        marginkernel::worst_loss(pnl.data(), static_cast<std::size_t>(rows), static_cast<std::size_t>(ns),
                                 w, wrows, gain_factor, lo, wo);
    }
    return py::make_tuple(loss, worst);
}

py::tuple value_at_risk(const f64& pnl, const std::optional<f64>& probability, double confidence) {
    expect_shape("pnl", pnl, {-1, -1});
    const auto rows = pnl.shape(0), ns = pnl.shape(1);
    if (probability) expect_shape("probability", *probability, {ns});
    f64 var({rows}), es({rows});
    const double* pr = probability ? probability->data() : nullptr;
    double* vo = var.mutable_data();
    double* eo = es.mutable_data();
    {
        py::gil_scoped_release release;  // reads the arguments, writes the new arrays only
        marginkernel::value_at_risk(pnl.data(), static_cast<std::size_t>(rows), static_cast<std::size_t>(ns),
                                    pr, confidence, vo, eo);
    }
    return py::make_tuple(var, es);
}

}  // namespace

void bind_reduce(py::module_& m) {
    m.def("worst_loss", &worst_loss, py::arg("pnl"), py::arg("weight").none(true),
          py::arg("gain_factor") = 1.0, "Worst weighted loss and its scenario per row.");
    m.def("value_at_risk", &value_at_risk, py::arg("pnl"), py::arg("probability").none(true),
          py::arg("confidence"), "VaR and ES per row, as losses.");
}

}  // namespace marginkernel::bindings
