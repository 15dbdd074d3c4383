// marginkernel._core.AccountBook: the C++ account state (account.hpp) seen from Python.
//
// The state stays in C++; the per-order methods take ids and scalars and return small records (see
// RecordType), so a what-if from Python costs the call overhead plus the kernel.
//
// GIL: released around everything that touches whole arrays or many accounts (construction,
// add_fills, update_unit, rebuild, settle, set_fx). Safe because AccountBook is internally
// synchronised (account.hpp), every input array is kept alive by the calling frame and only arrays
// created here are written, and no Python object is touched while the GIL is released.
// The per-order methods (what_if, check, add_fill, margin, ...) keep the GIL: releasing and
// re-acquiring it costs more than the O(n_scenarios) work they do (see what_if_fast below).
// Never re-acquire the GIL while holding a book lock: no code here does, so a thread blocked on a
// book lock with the GIL held always waits for a thread that needs only the lock to finish.
#include <Python.h>

#include <cstring>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "arrays.hpp"
#include "marginkernel/account.hpp"

namespace marginkernel::bindings {

namespace {


// Result records: a tiny CPython type per result struct holding the C++ struct by value, with one
// read-only attribute per field (the Python number is made when it is read) and the sequence
// protocol (len, [k], unpacking, tuple(r)). Making one is a single small allocation, about a third
// of the cost of a tuple or struct sequence of Python floats, which matters on the what-if path.
PyObject* field(const WhatIf& w, int k) {
    switch (k) {
        case 0: return PyFloat_FromDouble(w.im);
        case 1: return PyFloat_FromDouble(w.mm);
        case 2: return PyFloat_FromDouble(w.im_before);
        case 3: return PyFloat_FromDouble(w.unit_loss);
        case 4: return PyLong_FromLong(w.unit);
        default: return PyLong_FromLong(w.worst_scenario);
    }
}
PyObject* field(const Check& c, int k) {
    if (k == 0) return PyBool_FromLong(c.accepted);
    if (k == 1) return PyFloat_FromDouble(c.excess);
    return field(c.after, k - 2);
}
PyObject* field(const Margin& g, int k) { return PyFloat_FromDouble(k == 0 ? g.im : g.mm); }
PyObject* field(const UnitMargin& g, int k) {
    if (k == 2) return PyLong_FromLong(g.worst_scenario);
    return PyFloat_FromDouble(k == 0 ? g.loss : g.im);
}

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
        return field(of(self), static_cast<int>(reinterpret_cast<std::intptr_t>(closure)));
    }
    static Py_ssize_t length(PyObject*) { return size(); }
    static PyObject* item(PyObject* self, Py_ssize_t k) {
        if (k < 0 || k >= size()) {
            PyErr_SetString(PyExc_IndexError, "index out of range");
            return nullptr;
        }
        return field(of(self), static_cast<int>(k));
    }
    static PyObject* repr(PyObject* self) {
        std::string text = std::string(short_name) + "(";
        for (Py_ssize_t k = 0; k < size(); ++k) {
            PyObject* v = field(of(self), static_cast<int>(k));
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
            PyObject* v = field(of(self), static_cast<int>(k));
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

std::unique_ptr<AccountBook> make_book(const f64& risk, const i32& risk_unit, std::size_t n_units,
                                       const std::optional<f64>& weight, const std::optional<f64>& fx,
                                       double gain_factor, double mm_factor, bool allow_risk_reducing,
                                       std::size_t n_accounts, const std::optional<f64>& expiry) {
    expect_shape("risk", risk, {-1, -1});
    const auto n = risk.shape(0), ns = risk.shape(1);
    const auto nu = static_cast<py::ssize_t>(n_units);
    expect_shape("risk_unit", risk_unit, {n});
    if (weight) expect_shape("weight", *weight, {nu, ns});
    if (fx) expect_shape("fx", *fx, {nu});
    if (expiry) expect_shape("expiry", *expiry, {n});
    const RiskArraysView r{static_cast<std::size_t>(n), static_cast<std::size_t>(ns), n_units, risk.data(),
                           risk_unit.data()};
    MarginRule rule;
    rule.gain_factor = gain_factor;
    rule.mm_factor = mm_factor;
    rule.allow_risk_reducing = allow_risk_reducing;
    const double* w = weight ? weight->data() : nullptr;
    const double* f = fx ? fx->data() : nullptr;
    const double* e = expiry ? expiry->data() : nullptr;
    py::gil_scoped_release release;  // copies the argument buffers (alive in this frame) only
    return std::make_unique<AccountBook>(r, w, f, rule, n_accounts, e);
}

// The per-order methods (what_if, check) are plain METH_FASTCALL functions rather than pybind11
// overloads: pybind11's generic dispatch (overload loop, argument casters, keyword handling) costs
// about as much as a what-if at 1,000 scenarios. They take exactly the documented arguments
// (positional or by keyword), convert them with the CPython number protocol and translate C++
// exceptions through pybind11's registered translators, so errors are the same as elsewhere.
constexpr std::size_t kMaxArgs = 4;

// Collects n named arguments from a vectorcall (positional first, then keywords) into out[].
bool collect(const char* method, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames,
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
bool to_id(PyObject* o, long long& v) {
    v = PyLong_AsLongLong(o);
    return !(v == -1 && PyErr_Occurred());
}
bool to_double(PyObject* o, double& v) {
    v = PyFloat_AsDouble(o);
    return !(v == -1.0 && PyErr_Occurred());
}
// Instrument ids beyond int32 are unknown ids like any other out-of-range one.
std::int32_t instrument_id(const AccountBook& book, long long v) {
    if (v < std::numeric_limits<std::int32_t>::min() || v > std::numeric_limits<std::int32_t>::max())
        throw UnknownId("instrument", v, book.n_instruments());
    return static_cast<std::int32_t>(v);
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

// GIL: kept. Measured with bench/bench_whatif.py (AMD EPYC Zen 4, CPython 3.11): releasing and
// re-acquiring it adds 40-50 ns per call (medians 101 -> 150 ns at 27 scenarios, 260 -> 310 ns at
// 1,000), more than the whole kernel at small scenario counts, while the gap another Python thread
// could use is only the kernel's 0.03-0.15 us. Releasing it would be safe (the book synchronises
// itself); _what_if_release_gil keeps that variant measurable.
template <bool ReleaseGil>
PyObject* what_if_fast(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
    static const char* const names[] = {"account", "instrument", "quantity"};
    PyObject* a[kMaxArgs];
    long long account = 0, instrument = 0;
    double quantity = 0.0;
    if (!collect("what_if", args, nargs, kwnames, names, 3, a) || !to_id(a[0], account) ||
        !to_id(a[1], instrument) || !to_double(a[2], quantity))
        return nullptr;
    return guarded([&] {
        const auto& book = py::handle(self).cast<const AccountBook&>();
        const std::int32_t i = instrument_id(book, instrument);
        if constexpr (ReleaseGil) {
            WhatIf w;
            {
                py::gil_scoped_release release;
                w = book.what_if(account, i, quantity);
            }
            return RecordType<WhatIf>::make(w);
        } else {
            return RecordType<WhatIf>::make(book.what_if(account, i, quantity));
        }
    });
}

PyObject* check_fast(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
    static const char* const names[] = {"account", "instrument", "quantity", "equity"};
    PyObject* a[kMaxArgs];
    long long account = 0, instrument = 0;
    double quantity = 0.0, equity = 0.0;
    if (!collect("check", args, nargs, kwnames, names, 4, a) || !to_id(a[0], account) ||
        !to_id(a[1], instrument) || !to_double(a[2], quantity) || !to_double(a[3], equity))
        return nullptr;
    return guarded([&] {
        const auto& book = py::handle(self).cast<const AccountBook&>();
        return RecordType<Check>::make(book.check(account, instrument_id(book, instrument), quantity, equity));
    });
}

PyMethodDef fast_methods[] = {
    {"what_if", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(&what_if_fast<false>)),
     METH_FASTCALL | METH_KEYWORDS,
     "what_if($self, /, account, instrument, quantity)\n--\n\n"
     "The account after buying `quantity` (sell: negative) of `instrument`, without changing it:\n"
     "WhatIf(im, mm, im_before, unit_loss, unit, worst_scenario)."},
    {"_what_if_release_gil", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(&what_if_fast<true>)),
     METH_FASTCALL | METH_KEYWORDS, "what_if with the GIL released around the kernel (for measurement)."},
    {"check", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(&check_fast)),
     METH_FASTCALL | METH_KEYWORDS,
     "check($self, /, account, instrument, quantity, equity)\n--\n\n"
     "Pre-trade check of an order against `equity` (reporting currency): Check(accepted, excess,\n"
     "im, mm, im_before, unit_loss, unit, worst_scenario)."},
    {nullptr, nullptr, 0, nullptr}};

}  // namespace

void bind_account(py::module_& m) {
    RecordType<WhatIf>::create(
        m, "marginkernel.WhatIf", "The account after a hypothetical order (the book is unchanged).",
        {{"im", "account IM after the order (reporting currency)"},
         {"mm", "mm_factor * im"},
         {"im_before", "account IM now"},
         {"unit_loss", "worst loss of the order's risk unit after the order (its settlement currency)"},
         {"unit", "the order's risk unit"},
         {"worst_scenario", "scenario of that unit attaining unit_loss"}});
    RecordType<Check>::create(
        m, "marginkernel.Check", "A pre-trade check: the verdict and the account after the order.",
        {{"accepted", "im <= equity, or the order does not increase IM (if the rule allows that)"},
         {"excess", "equity - im after the order (negative: short by that much)"},
         {"im", "account IM after the order"},
         {"mm", "mm_factor * im"},
         {"im_before", "account IM now"},
         {"unit_loss", "worst loss of the order's risk unit after the order"},
         {"unit", "the order's risk unit"},
         {"worst_scenario", "scenario of that unit attaining unit_loss"}});
    RecordType<Margin>::create(m, "marginkernel.Margin", "Account margin now.",
                               {{"im", "initial margin (reporting currency)"}, {"mm", "maintenance margin"}});
    RecordType<UnitMargin>::create(m, "marginkernel.UnitMargin", "One risk unit of one account.",
                                   {{"loss", "worst weighted loss of the unit (its settlement currency)"},
                                    {"im", "fx * loss: the unit's share of the account IM"},
                                    {"worst_scenario", "scenario attaining the loss"}});

    // UnknownId -> UnknownIdError, both an InputError (ValueError) and a KeyError, with .field and
    // .row (= the id). Registered after module.cpp's InvalidInput translator, so tried before it.
    py::dict ns;
    ns["__doc__"] = "An account, instrument or risk unit id that is not in the book (ValueError and KeyError).";
    ns["__str__"] = py::module_::import("builtins").attr("BaseException").attr("__str__");
    ns["__module__"] = "marginkernel";
    const py::tuple bases = py::make_tuple(m.attr("InputError"), py::handle(PyExc_KeyError));
    PyObject* error_class = PyErr_NewException("marginkernel.UnknownIdError", bases.ptr(), ns.ptr());
    if (!error_class) throw py::error_already_set();
    static py::handle unknown_id = error_class;
    m.add_object("UnknownIdError", unknown_id);
    py::register_exception_translator([](std::exception_ptr p) {
        try {
            if (p) std::rethrow_exception(p);
        } catch (const UnknownId& e) {
            set_input_error(unknown_id, e);
        }
    });

    py::class_<AccountBook> cls(m, "AccountBook",
                            "Accounts with cached scenario P&L per risk unit; see marginkernel.account.");
    cls.def(py::init(&make_book), py::arg("risk"), py::arg("risk_unit"), py::arg("n_units"),
             py::arg("weight").none(true), py::arg("fx").none(true), py::arg("gain_factor"),
             py::arg("mm_factor"), py::arg("allow_risk_reducing"), py::arg("n_accounts"),
             py::arg("expiry").none(true))
        .def_property_readonly("n_accounts", &AccountBook::n_accounts)
        .def_property_readonly("n_instruments", &AccountBook::n_instruments)
        .def_property_readonly("n_units", &AccountBook::n_units)
        .def_property_readonly("n_scenarios", &AccountBook::n_scenarios)
        .def_property_readonly("gain_factor", [](const AccountBook& b) { return b.rule().gain_factor; })
        .def_property_readonly("mm_factor", [](const AccountBook& b) { return b.rule().mm_factor; })
        .def_property_readonly("allow_risk_reducing",
                               [](const AccountBook& b) { return b.rule().allow_risk_reducing; })
        .def("add_fill", py::overload_cast<std::int64_t, std::int32_t, double>(&AccountBook::add_fill),
             py::arg("account"), py::arg("instrument"), py::arg("quantity"),
             "Applies a trade: position += quantity, P += quantity * R[instrument], IM refreshed.")
        .def(
            "add_fills",
            [](AccountBook& b, const i64& accounts, const i32& instruments, const f64& quantities) {
                expect_shape("accounts", accounts, {-1});
                expect_shape("instruments", instruments, {accounts.shape(0)});
                expect_shape("quantities", quantities, {accounts.shape(0)});
                const auto n = static_cast<std::size_t>(accounts.shape(0));
                py::gil_scoped_release release;  // reads the argument buffers only
                b.add_fills(accounts.data(), instruments.data(), quantities.data(), n);
            },
            py::arg("accounts"), py::arg("instruments"), py::arg("quantities"),
            "Applies many fills in order; all are checked first and none is applied if one is bad.")
        .def(
            "margin",
            [](const AccountBook& b, std::int64_t account) { return RecordType<Margin>::make(b.margin(account)); },
            py::arg("account"), "Margin(im, mm) of the account now.")
        .def(
            "unit_margin",
            [](const AccountBook& b, std::int64_t account, std::int32_t unit) {
                return RecordType<UnitMargin>::make(b.unit_margin(account, unit));
            },
            py::arg("account"), py::arg("unit"), "UnitMargin(loss, im, worst_scenario) of one risk unit.")
        .def("position", &AccountBook::position, py::arg("account"), py::arg("instrument"))
        .def(
            "positions",
            [](const AccountBook& b, std::int64_t account) {
                py::dict out;
                for (const Position& p : b.positions(account)) out[py::int_(p.instrument)] = p.quantity;
                return out;
            },
            py::arg("account"), "{instrument: quantity} of the account's open positions.")
        .def(
            "pnl",
            [](const AccountBook& b, std::int64_t account) {
                f64 out({static_cast<py::ssize_t>(b.n_units()), static_cast<py::ssize_t>(b.n_scenarios())});
                b.pnl(account, out.mutable_data());
                return out;
            },
            py::arg("account"), "Scenario P&L from the account's positions, shape (n_units, n_scenarios).")
        .def(
            "weighted_pnl",
            [](const AccountBook& b, std::int64_t account) {
                f64 out({static_cast<py::ssize_t>(b.n_units()), static_cast<py::ssize_t>(b.n_scenarios())});
                b.weighted_pnl(account, out.mutable_data());
                return out;
            },
            py::arg("account"), "Copy of the incrementally maintained cache w * P, shape (n_units, n_scenarios).")
        .def(
            "risk_row",
            [](const AccountBook& b, std::int32_t instrument) {
                f64 out({static_cast<py::ssize_t>(b.n_scenarios())});
                b.risk_row(instrument, out.mutable_data());
                return out;
            },
            py::arg("instrument"), "Copy of the book's current risk row of an instrument.")
        .def(
            "instruments_of",
            [](const AccountBook& b, std::int32_t unit) {
                const auto ids = b.instruments_of(unit);
                i32 out({static_cast<py::ssize_t>(ids.size())});
                std::copy(ids.begin(), ids.end(), out.mutable_data());
                return out;
            },
            py::arg("unit"), "Instrument ids of a risk unit, in the row order update_unit expects.")
        .def(
            "update_unit",
            [](AccountBook& b, std::int32_t unit, const f64& rows, std::optional<double> fx, int threads) {
                expect_shape("rows", rows, {-1, static_cast<py::ssize_t>(b.n_scenarios())});
                const auto n = static_cast<std::size_t>(rows.shape(0));
                py::gil_scoped_release release;  // reads `rows` (alive in this frame); the book locks itself
                b.update_unit(unit, rows.data(), n, fx, threads);
            },
            py::arg("unit"), py::arg("rows"), py::arg("fx").none(true) = py::none(), py::arg("threads") = 1,
            "Market update of one risk unit: new risk rows of instruments_of(unit); P += Q * dR.")
        .def(
            "set_fx",
            [](AccountBook& b, std::int32_t unit, double fx) {
                py::gil_scoped_release release;  // scalars only; the book locks itself
                b.set_fx(unit, fx);
            },
            py::arg("unit"), py::arg("fx"))
        .def("set_expiry", &AccountBook::set_expiry, py::arg("instrument"), py::arg("years"))
        .def("expiry", &AccountBook::expiry, py::arg("instrument"))
        .def(
            "settle",
            [](AccountBook& b, std::int32_t instrument) {
                py::gil_scoped_release release;  // scalars only; the book locks itself
                b.settle(instrument);
            },
            py::arg("instrument"))
        .def(
            "rebuild",
            [](AccountBook& b, int threads) {
                py::gil_scoped_release release;  // no Python objects; the book locks itself
                b.rebuild(threads);
            },
            py::arg("threads") = 1)
        .def("add_accounts", &AccountBook::add_accounts, py::arg("count") = 1);
    for (PyMethodDef* def = fast_methods; def->ml_name; ++def) {
        PyObject* method = PyDescr_NewMethod(reinterpret_cast<PyTypeObject*>(cls.ptr()), def);
        if (!method) throw py::error_already_set();
        cls.attr(def->ml_name) = py::reinterpret_steal<py::object>(method);
    }
}

}  // namespace marginkernel::bindings
