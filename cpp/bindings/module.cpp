// The private extension marginkernel._core: one bind_<stage>.cpp per pipeline stage.
#include <pybind11/stl.h>

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

    m.def("available_simd_targets", &available_simd_targets,
          "SIMD targets compiled in and supported by this CPU, best first.");
    m.def("simd_target", &simd_target, "The SIMD target the kernels use now.");
    m.def("select_simd_target", &select_simd_target, py::arg("name"),
          "Use the named SIMD target (for testing every compiled path).");

    bindings::bind_revalue(m);
    bindings::bind_net(m);
    bindings::bind_reduce(m);
    bindings::bind_account(m);  // after the InvalidInput translator: its UnknownId one goes first
    bindings::bind_book(m);
}
