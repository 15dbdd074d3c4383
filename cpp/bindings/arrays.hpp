// Shared binding helpers: typed NumPy array aliases and extent checks that name the field.
//
// Arrays arrive already checked for dtype and C-contiguity by marginkernel/kernels.py; pybind11's
// signature (no forcecast) refuses anything else, so the C++ side never sees a converted copy.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <string>
#include <vector>

#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "marginkernel/types.hpp"

namespace marginkernel::bindings {

namespace py = pybind11;

template <class T>
using array = py::array_t<T, py::array::c_style>;
using f64 = array<double>;
using i8 = array<std::int8_t>;
using i32 = array<std::int32_t>;
using i64 = array<std::int64_t>;

// A new C-contiguous float64 array whose data starts on a 64-byte boundary (NumPy's own arrays
// usually start 16 bytes past one): every full-width AVX-512 load of a row of R and every store to
// P then stays within one cache line, which makes netting measurably faster (bench/results/design.json). It is
// a view into a NumPy array 7 elements longer, so NumPy's allocator (huge pages for big arrays)
// still does the allocating.
inline f64 new_aligned_f64(const std::vector<py::ssize_t>& shape) {
    py::ssize_t count = 1;
    for (auto e : shape) count *= e;
    f64 storage(count + 7);
    const auto address = reinterpret_cast<std::uintptr_t>(storage.data());
    const auto skip = static_cast<py::ssize_t>(((64 - address % 64) % 64) / sizeof(double));
    return f64(shape, storage.mutable_data() + skip, storage);
}

// Faults in the pages of a new output array (Linux, MADV_POPULATE_WRITE, best effort) in one
// sequential pass before a kernel writes it. Otherwise each first touch inside the kernel stops it
// while the OS clears the page, and that clearing evicts the kernel's working set from the cache
// (measured with bench/bench_net.py). Small arrays, and systems without the advice, are left as
// they are. Called without the GIL (touches only the new array).
inline void populate(double* data, std::size_t count) {
#if defined(__linux__) && defined(MADV_POPULATE_WRITE)
    constexpr std::size_t kPage = 4096, kMinBytes = std::size_t{4} << 20;
    if (count * sizeof(double) < kMinBytes) return;
    const auto begin = (reinterpret_cast<std::uintptr_t>(data) + kPage - 1) & ~(kPage - 1);
    const auto end = reinterpret_cast<std::uintptr_t>(data + count) & ~(kPage - 1);
    if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_POPULATE_WRITE);
#else
    (void)data;
    (void)count;
#endif
}

inline std::string shape_of(const py::array& a) {
    std::string s = "(";
    for (py::ssize_t d = 0; d < a.ndim(); ++d) s += (d ? ", " : "") + std::to_string(a.shape(d));
    return s + (a.ndim() == 1 ? ",)" : ")");
}

// Requires `a` to have exactly the given shape (-1 = any extent).
inline void expect_shape(const char* field, const py::array& a, std::initializer_list<py::ssize_t> shape) {
    bool ok = a.ndim() == static_cast<py::ssize_t>(shape.size());
    py::ssize_t d = 0;
    std::string want = "(";
    for (auto e : shape) {
        if (ok && e >= 0 && a.shape(d) != e) ok = false;
        want += (d ? ", " : "") + (e < 0 ? std::string("*") : std::to_string(e));
        ++d;
    }
    want += shape.size() == 1 ? ",)" : ")";
    if (!ok) throw InvalidInput(field, -1, "has shape " + shape_of(a) + ", expected " + want);
}

// Refuses an output array that shares memory with any input (the kernel reads the inputs while it
// writes the output): compares the byte ranges the arrays' buffers span. Inputs may be null.
inline void require_disjoint(const char* field, const py::array& out, std::initializer_list<const py::array*> inputs) {
    const auto begin = [](const py::array& a) { return reinterpret_cast<std::uintptr_t>(a.data()); };
    const auto end = [&](const py::array& a) { return begin(a) + static_cast<std::uintptr_t>(a.nbytes()); };
    if (out.nbytes() == 0) return;
    for (const py::array* in : inputs)
        if (in && in->nbytes() > 0 && begin(out) < end(*in) && begin(*in) < end(out))
            throw InvalidInput(field, -1, "overlaps an input array");
}

// The element count of an array of this shape, or InvalidInput naming `field` when it would not fit
// in memory addresses (a product that overflows).
inline py::ssize_t checked_size(const char* field, std::initializer_list<py::ssize_t> shape) {
    py::ssize_t count = 1;
    for (auto e : shape) {
        if (e < 0) throw InvalidInput(field, -1, "negative extent");
        if (e != 0 && count > PY_SSIZE_T_MAX / static_cast<py::ssize_t>(sizeof(double)) / e)
            throw InvalidInput(field, -1, "output shape is too large to allocate");
        count *= e;
    }
    return count;
}

// Sets the Python error `cls(e.what())` with the attributes .field and .row (None when the error
// is not about a row): how InvalidInput and its subclasses reach Python.
inline void set_input_error(py::handle cls, const InvalidInput& e) {
    py::object instance = py::reinterpret_borrow<py::object>(cls)(e.what());
    instance.attr("field") = e.field();
    instance.attr("row") = e.row() < 0 ? py::object(py::none()) : py::object(py::int_(e.row()));
    PyErr_SetObject(cls.ptr(), instance.ptr());
}

void bind_revalue(py::module_& m);
void bind_net(py::module_& m);
void bind_reduce(py::module_& m);
void bind_account(py::module_& m);
void bind_book(py::module_& m);
void bind_explain(py::module_& m);

}  // namespace marginkernel::bindings
