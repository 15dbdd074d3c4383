// The private extension marginkernel._core: one bind_<stage>.cpp per pipeline stage.
#include <pybind11/native_enum.h>
#include <pybind11/stl.h>

#include <string>

#include "arrays.hpp"
#include "marginkernel/simd.hpp"

namespace py = pybind11;
using namespace marginkernel;

PYBIND11_MODULE(_core, m, py::mod_gil_not_used()) {
    m.doc() = "marginkernel native core: revalue -> net -> reduce";

    // InvalidInput becomes marginkernel.InputError (a ValueError) carrying .field and .row, so the
    // Python layer can name the instrument or account behind a row.
    static py::handle input_error =
        py::exception<InvalidInput>(m, "InputError", PyExc_ValueError).release();
    py::register_exception_translator([](std::exception_ptr p) {
        try {
            if (p) std::rethrow_exception(p);
        } catch (const InvalidInput& e) {
            bindings::set_input_error(input_error, e);
        }
    });

    // The integer codes of types.hpp, as Python IntEnums: the one definition that
    // marginkernel.codes is held to (tests/test_codes.py).
    py::native_enum<Kind>(m, "Kind", "enum.IntEnum", "Instrument kind (InstrumentsView::kind).")
        .value("FUTURE", Kind::future)
        .value("PERPETUAL", Kind::perpetual)
        .value("CALL", Kind::call)
        .value("PUT", Kind::put)
        .value("SPOT", Kind::spot)
        .finalize();
    py::native_enum<Settlement>(m, "Settlement", "enum.IntEnum", "Settlement currency: quote (linear) or coin (inverse).")
        .value("LINEAR", Settlement::linear)
        .value("INVERSE", Settlement::inverse)
        .finalize();
    py::native_enum<VolShockKind>(m, "VolShockKind", "enum.IntEnum", "How a scenario's vol shift changes a vol.")
        .value("NONE", VolShockKind::none)
        .value("MULTIPLICATIVE", VolShockKind::multiplicative)
        .value("ADDITIVE", VolShockKind::additive)
        .value("RELATIVE", VolShockKind::relative)
        .finalize();

    // MARGINKERNEL_SIMD: a name that is no target of this project is a typo and refused at import;
    // a real target this build or CPU lacks is a warning, and the best supported target is used.
    const SimdEnvironment env = simd_environment();
    if (!env.value.empty() && !env.known)
        throw py::import_error("MARGINKERNEL_SIMD='" + env.value +
                               "' is not a SIMD target; use one of baseline, avx2, avx512 or unset it");
    if (!env.value.empty() && !env.honoured) {
        const std::string message = "MARGINKERNEL_SIMD='" + env.value +
                                    "' is not available on this build and CPU; using '" + simd_target() + "'";
        if (PyErr_WarnEx(PyExc_RuntimeWarning, message.c_str(), 1) < 0) throw py::error_already_set();
    }

    m.def("available_simd_targets", &available_simd_targets,
          "SIMD targets compiled in and supported by this CPU, best first.");
    m.def("simd_target", &simd_target, "The SIMD target the kernels use now.");
    m.def("select_simd_target", &select_simd_target, py::arg("name"),
          "Use the named SIMD target (for testing every compiled path).");

    m.def(
        "_stream_seconds",
        [](bindings::f64& x, int passes, bool write) {
            if (write && !x.writeable()) throw InvalidInput("x", -1, "is read-only");
            double* data = const_cast<double*>(x.data());  // written only when write (checked above)
            const auto n = static_cast<std::size_t>(x.size());
            py::gil_scoped_release release;  // touches only x, which the caller keeps alive
            return stream_seconds(data, n, passes, write);
        },
        py::arg("x"), py::arg("passes"), py::arg("write"),
        "Benchmark probe: best seconds of a streaming read or write of x (bench/benchutil.py).");
    m.def(
        "_mul_add_seconds",
        [](const bindings::f64& x, int passes) {
            const double* data = x.data();
            const auto n = static_cast<std::size_t>(x.size());
            py::gil_scoped_release release;  // reads only x, which the caller keeps alive
            return mul_add_seconds(data, n, passes);
        },
        py::arg("x"), py::arg("passes"),
        "Benchmark probe: best seconds of `passes` sweeps of acc + q * x over x (bench/benchutil.py).");
    m.def(
        "_cache_sizes",
        [] {
            py::dict sizes;
            for (int level = 1; level <= 3; ++level) sizes[("L" + std::to_string(level)).c_str()] = data_cache_bytes(level);
            return sizes;
        },
        "The data cache sizes in bytes the kernels size their tiles from ({'L1': ..., 'L2': ..., 'L3': ...}).");

    bindings::bind_revalue(m);
    bindings::bind_net(m);
    bindings::bind_reduce(m);
    bindings::bind_account(m);  // after the InvalidInput translator: its UnknownId one goes first
    bindings::bind_book(m);
    bindings::bind_explain(m);
}
