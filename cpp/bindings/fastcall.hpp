// Argument parsing for the METH_FASTCALL per-order methods of the bindings (bind_account.cpp,
// bind_book.cpp), and the exception guard that sends C++ errors through pybind11's translators.
#pragma once

#include <Python.h>

#include <cstdint>
#include <limits>

#include "arrays.hpp"
#include "marginkernel/account.hpp"

namespace marginkernel::bindings {

// The per-order methods (what_if, check) are plain METH_FASTCALL functions rather than pybind11
// overloads: pybind11's generic dispatch (overload loop, argument casters, keyword handling) costs
// about as much as a what-if at 1,000 scenarios. They take exactly the documented arguments
// (positional or by keyword), convert them with the CPython number protocol and translate C++
// exceptions through pybind11's registered translators, so errors are the same as elsewhere.
constexpr std::size_t kMaxArgs = 4;

// Collects n named arguments from a vectorcall (positional first, then keywords) into out[].
inline bool collect(const char* method, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames,
             const char* const* names, std::size_t n, PyObject** out) {
    for (std::size_t k = 0; k < n; ++k) out[k] = nullptr;
    if (nargs > static_cast<Py_ssize_t>(n)) {
        PyErr_Format(PyExc_TypeError, "%s() takes %zu arguments (%zd given)", method, n, nargs);
        return false;
    }
    for (Py_ssize_t k = 0; k < nargs; ++k) out[k] = args[k];
    const Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    for (Py_ssize_t j = 0; j < nkw; ++j) {
        PyObject* key = PyTuple_GET_ITEM(kwnames, j);
        std::size_t k = 0;
        while (k < n && PyUnicode_CompareWithASCIIString(key, names[k]) != 0) ++k;
        if (k == n) {
            PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument '%U'", method, key);
            return false;
        }
        if (out[k]) {
            PyErr_Format(PyExc_TypeError, "%s() got multiple values for argument '%s'", method, names[k]);
            return false;
        }
        out[k] = args[nargs + j];
    }
    for (std::size_t k = 0; k < n; ++k)
        if (!out[k]) {
            PyErr_Format(PyExc_TypeError, "%s() missing required argument '%s'", method, names[k]);
            return false;
        }
    return true;
}

// An account / instrument id: any Python integer (or object with __index__).
// Ids beyond the range of long long become the extreme values, which no book holds: the method
// then raises UnknownIdError as for any other id out of range (never OverflowError).
inline bool to_id(PyObject* o, long long& v) {
    PyObject* index = PyNumber_Index(o);
    if (!index) return false;
    int overflow = 0;
    v = PyLong_AsLongLongAndOverflow(index, &overflow);
    Py_DECREF(index);
    if (overflow) v = overflow > 0 ? std::numeric_limits<long long>::max() : std::numeric_limits<long long>::min();
    return !(v == -1 && PyErr_Occurred());
}
inline bool to_double(PyObject* o, double& v) {
    v = PyFloat_AsDouble(o);
    return !(v == -1.0 && PyErr_Occurred());
}
template <class F>
PyObject* guarded(F&& body) {
    try {
        return body().release().ptr();
    } catch (py::error_already_set& e) {
        e.restore();
    } catch (...) {
        py::detail::try_translate_exceptions();  // UnknownIdError, InputError, ... as everywhere
    }
    return nullptr;
}


// An id argument of a pybind11-bound method: any Python integer (see to_id).
struct AnyId {
    long long value = 0;
};

// A 32-bit id (instrument, unit): out of range is unknown like any other id.
inline std::int32_t id32(long long v, const char* field, std::size_t count) {
    if (v < std::numeric_limits<std::int32_t>::min() || v > std::numeric_limits<std::int32_t>::max())
        throw UnknownId(field, v, count);
    return static_cast<std::int32_t>(v);
}

// The C++ object of `self`, an instance of a bound class T or a Python subclass of it. An instance
// whose __init__ never ran (made by cls.__new__(cls)) has no C++ object (its holder was never
// constructed and the value pointer is garbage): refused with a TypeError instead of dereferenced.
template <class T>
T& constructed(py::handle self, const char* cls) {
    auto* inst = reinterpret_cast<py::detail::instance*>(self.ptr());
    const auto v_h = inst->get_value_and_holder(py::detail::get_type_info(typeid(T)));
    if (!v_h || !v_h.holder_constructed() || !v_h.value_ptr())
        throw py::type_error(std::string(cls) + " is not initialised (its __init__ did not run)");
    return *v_h.template value_ptr<T>();
}

}  // namespace marginkernel::bindings

namespace pybind11::detail {
template <>
struct type_caster<marginkernel::bindings::AnyId> {
    PYBIND11_TYPE_CASTER(marginkernel::bindings::AnyId, const_name("int"));
    bool load(handle src, bool) {
        if (!src || PyFloat_Check(src.ptr()) || !PyIndex_Check(src.ptr())) return false;
        if (!marginkernel::bindings::to_id(src.ptr(), value.value)) {
            PyErr_Clear();
            return false;
        }
        return true;
    }
    static handle cast(const marginkernel::bindings::AnyId& v, return_value_policy, handle) {
        return PyLong_FromLongLong(v.value);
    }
};
}  // namespace pybind11::detail
