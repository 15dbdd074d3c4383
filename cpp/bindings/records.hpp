// Result records for the bindings: a tiny CPython type per C++ result struct holding the struct by
// value, one read-only attribute per field (the Python number is made when it is read), the sequence
// protocol (len, [k], unpacking, tuple(r)) and _asdict(). A binding specialises RecordFields<T>
// (static PyObject* get(const T&, int k): new reference to field k) and calls RecordType<T>::create.
#pragma once

#include <Python.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "arrays.hpp"

namespace marginkernel::bindings {

template <class T>
struct RecordFields;  // specialised per record type

// Result records (see above): a tiny CPython type per result struct holding the C++ struct by value, with one
// read-only attribute per field (the Python number is made when it is read) and the sequence
// protocol (len, [k], unpacking, tuple(r)). Making one is a single small allocation, about a third
// of the cost of a tuple or struct sequence of Python floats, which matters on the what-if path.
template <class T>
struct Record {
    PyObject_HEAD
    T value;
};

template <class T>
struct RecordType {
    static inline PyTypeObject* type = nullptr;
    static inline std::vector<PyGetSetDef> getset;  // must outlive the type
    static inline std::vector<std::string> names;
    static inline const char* short_name = "";

    static const T& of(PyObject* self) { return reinterpret_cast<Record<T>*>(self)->value; }
    static Py_ssize_t size() { return static_cast<Py_ssize_t>(names.size()); }

    static PyObject* get(PyObject* self, void* closure) {
        return RecordFields<T>::get(of(self), static_cast<int>(reinterpret_cast<std::intptr_t>(closure)));
    }
    static Py_ssize_t length(PyObject*) { return size(); }
    static PyObject* item(PyObject* self, Py_ssize_t k) {
        if (k < 0 || k >= size()) {
            PyErr_SetString(PyExc_IndexError, "index out of range");
            return nullptr;
        }
        return RecordFields<T>::get(of(self), static_cast<int>(k));
    }
    static PyObject* repr(PyObject* self) {
        std::string text = std::string(short_name) + "(";
        for (Py_ssize_t k = 0; k < size(); ++k) {
            PyObject* v = RecordFields<T>::get(of(self), static_cast<int>(k));
            PyObject* r = v ? PyObject_Repr(v) : nullptr;
            Py_XDECREF(v);
            const char* u = r ? PyUnicode_AsUTF8(r) : nullptr;
            if (!u) {
                Py_XDECREF(r);
                return nullptr;
            }
            text += (k ? ", " : "") + names[static_cast<std::size_t>(k)] + "=" + u;
            Py_DECREF(r);
        }
        return PyUnicode_FromString((text + ")").c_str());
    }
    static PyObject* asdict(PyObject* self, PyObject*) {
        PyObject* d = PyDict_New();
        for (Py_ssize_t k = 0; d && k < size(); ++k) {
            PyObject* v = RecordFields<T>::get(of(self), static_cast<int>(k));
            if (!v || PyDict_SetItemString(d, names[static_cast<std::size_t>(k)].c_str(), v) < 0) {
                Py_XDECREF(v);
                Py_DECREF(d);
                return nullptr;
            }
            Py_DECREF(v);
        }
        return d;
    }
    static void dealloc(PyObject* self) {
        PyTypeObject* tp = Py_TYPE(self);
        tp->tp_free(self);
        Py_DECREF(tp);  // heap type instances own a reference to their type
    }

    static py::object make(const T& v) {
        auto* o = reinterpret_cast<Record<T>*>(type->tp_alloc(type, 0));
        if (!o) throw py::error_already_set();
        o->value = v;
        return py::reinterpret_steal<py::object>(reinterpret_cast<PyObject*>(o));
    }

    static void create(py::module_& m, const char* qualified_name, const char* doc,
                       std::initializer_list<std::pair<const char*, const char*>> fields) {
        short_name = std::strrchr(qualified_name, '.') + 1;
        int k = 0;
        for (const auto& [name, field_doc] : fields) {
            names.emplace_back(name);
            getset.push_back(PyGetSetDef{name, &get, nullptr, field_doc,
                                         reinterpret_cast<void*>(static_cast<std::intptr_t>(k++))});
        }
        getset.push_back(PyGetSetDef{nullptr, nullptr, nullptr, nullptr, nullptr});
        static PyMethodDef methods[] = {
            {"_asdict", &asdict, METH_NOARGS, "The fields as a dict."}, {nullptr, nullptr, 0, nullptr}};
        PyType_Slot slots[] = {{Py_tp_doc, const_cast<char*>(doc)},
                               {Py_tp_getset, getset.data()},
                               {Py_tp_methods, methods},
                               {Py_tp_repr, reinterpret_cast<void*>(&repr)},
                               {Py_tp_dealloc, reinterpret_cast<void*>(&dealloc)},
                               {Py_sq_length, reinterpret_cast<void*>(&length)},
                               {Py_sq_item, reinterpret_cast<void*>(&item)},
                               {0, nullptr}};
        static PyType_Spec spec;
        spec = PyType_Spec{qualified_name, static_cast<int>(sizeof(Record<T>)), 0,
                           Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION, slots};
        PyObject* t = PyType_FromSpec(&spec);
        if (!t) throw py::error_already_set();
        type = reinterpret_cast<PyTypeObject*>(t);
        PyObject* field_names = PyTuple_New(size());
        if (!field_names) throw py::error_already_set();
        for (Py_ssize_t j = 0; j < size(); ++j)
            PyTuple_SET_ITEM(field_names, j, PyUnicode_FromString(names[static_cast<std::size_t>(j)].c_str()));
        PyObject_SetAttrString(t, "_fields", field_names);
        Py_DECREF(field_names);
        m.add_object(short_name, py::handle(t));
    }
};

}  // namespace marginkernel::bindings
