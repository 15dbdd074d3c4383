#include <optional>

#include "arrays.hpp"
#include "marginkernel/revalue.hpp"

namespace marginkernel::bindings {

namespace {

py::tuple revalue(const i8& kind, const i8& settlement, const i32& risk_unit, const f64& strike,
                  const f64& expiry, const f64& multiplier, const f64& forward, const f64& discount,
                  const f64& vol, const f64& spot, const f64& price_multiplier,
                  const std::optional<f64>& vol_shift, const std::optional<f64>& time_shift,
                  int vol_shock, double tau_floor_days, double short_power, double long_power,
                  double vol_up_floor, int threads, std::optional<f64> out) {
    const py::ssize_t n = kind.shape(0);
    expect_shape("kind", kind, {-1});
    for (const auto& [field, a] : {std::pair<const char*, const py::array*>{"settlement", &settlement},
                                   {"risk_unit", &risk_unit}, {"strike", &strike}, {"expiry", &expiry},
                                   {"multiplier", &multiplier}, {"forward", &forward},
                                   {"discount", &discount}, {"vol", &vol}})
        expect_shape(field, *a, {n});
    expect_shape("spot", spot, {-1});
    const py::ssize_t units = spot.shape(0);
    expect_shape("price_multiplier", price_multiplier, {units, -1});
    const py::ssize_t ns = price_multiplier.shape(1);
    if (vol_shift) expect_shape("vol_shift", *vol_shift, {units, ns});
    if (time_shift) expect_shape("time_shift", *time_shift, {ns});

    InstrumentsView in{static_cast<std::size_t>(n), kind.data(), settlement.data(), risk_unit.data(),
                       strike.data(), expiry.data(), multiplier.data(), forward.data(),
                       discount.data(), vol.data()};
    ScenariosView sc;
    sc.n_units = static_cast<std::size_t>(units);
    sc.n_scenarios = static_cast<std::size_t>(ns);
    sc.spot = spot.data();
    sc.price_multiplier = price_multiplier.data();
    sc.vol_shift = vol_shift ? vol_shift->data() : nullptr;
    sc.time_shift = time_shift ? time_shift->data() : nullptr;
    sc.vol_shock = static_cast<VolShockKind>(vol_shock);
    sc.tau_floor_days = tau_floor_days;
    sc.short_power = short_power;
    sc.long_power = long_power;
    sc.vol_up_floor = vol_up_floor;

    // `out` lets a caller that revalues on every market update reuse one buffer: no page faults on
    // a fresh (n x S) array, which otherwise are a measurable share of the call (bench/results/design.json).
    if (out) {
        expect_shape("out", *out, {n, ns});
        if (!out->writeable()) throw InvalidInput("out", -1, "is read-only");
        require_disjoint("out", *out,
                         {&kind, &settlement, &risk_unit, &strike, &expiry, &multiplier, &forward, &discount, &vol,
                          &spot, &price_multiplier, vol_shift ? &*vol_shift : nullptr,
                          time_shift ? &*time_shift : nullptr});
    }
    checked_size("price_multiplier", {n, ns});
    f64 risk = out ? *out : new_aligned_f64({n, ns});
    f64 base({n});
    double* risk_out = risk.mutable_data();
    double* base_out = base.mutable_data();
    {
        // Safe without the GIL: the kernel reads only the buffers above, which these argument
        // objects keep alive, and writes only `risk` and `base` (the caller handed `out` over).
        py::gil_scoped_release release;
        marginkernel::revalue(in, sc, risk_out, base_out, threads);
    }
    return py::make_tuple(risk, base);
}

f64 normal_cdf(const f64& x) {
    f64 out(x.request().shape);
    const auto n = static_cast<std::size_t>(x.size());
    const double* in = x.data();
    double* o = out.mutable_data();
    py::gil_scoped_release release;  // reads x, writes the new array only
    marginkernel::normal_cdf(in, o, n);
    return out;
}

}  // namespace

void bind_revalue(py::module_& m) {
    m.def("revalue", &revalue, py::arg("kind"), py::arg("settlement"), py::arg("risk_unit"),
          py::arg("strike"), py::arg("expiry"), py::arg("multiplier"), py::arg("forward"),
          py::arg("discount"), py::arg("vol"), py::arg("spot"), py::arg("price_multiplier"),
          py::arg("vol_shift").none(true), py::arg("time_shift").none(true), py::arg("vol_shock"),
          py::arg("tau_floor_days"), py::arg("short_power"), py::arg("long_power"),
          py::arg("vol_up_floor"), py::arg("threads") = 1, py::arg("out").none(true) = py::none(),
          "Risk arrays R[n, S] and values now [n]; see marginkernel.kernels.revalue.");
    m.def("normal_cdf", &normal_cdf, py::arg("x"), "The vectorised normal CDF the kernel uses.");
}

}  // namespace marginkernel::bindings
