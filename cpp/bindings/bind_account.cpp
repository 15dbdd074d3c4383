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
#include "fastcall.hpp"
#include "records.hpp"
#include "marginkernel/account.hpp"

namespace marginkernel::bindings {

// Fields of the result records (records.hpp).
template <>
struct RecordFields<WhatIf> {
    static PyObject* get(const WhatIf& w, int k) {
        switch (k) {
            case 0: return PyFloat_FromDouble(w.im);
            case 1: return PyFloat_FromDouble(w.mm);
            case 2: return PyFloat_FromDouble(w.im_before);
            case 3: return PyFloat_FromDouble(w.unit_loss);
            case 4: return PyLong_FromLong(w.unit);
            default: return PyLong_FromLong(w.worst_scenario);
        }
    }
};
template <>
struct RecordFields<Check> {
    static PyObject* get(const Check& c, int k) {
        if (k == 0) return PyBool_FromLong(c.accepted);
        if (k == 1) return PyFloat_FromDouble(c.excess);
        return RecordFields<WhatIf>::get(c.after, k - 2);
    }
};
template <>
struct RecordFields<Margin> {
    static PyObject* get(const Margin& g, int k) { return PyFloat_FromDouble(k == 0 ? g.im : g.mm); }
};
template <>
struct RecordFields<UnitMargin> {
    static PyObject* get(const UnitMargin& g, int k) {
        if (k == 2) return PyLong_FromLong(g.worst_scenario);
        return PyFloat_FromDouble(k == 0 ? g.loss : g.im);
    }
};

namespace {

AccountBook& book_of(py::handle self) { return constructed<AccountBook>(self, "AccountBook"); }

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

// Instrument ids beyond int32 are unknown ids like any other out-of-range one.
std::int32_t instrument_id(const AccountBook& book, long long v) {
    if (v < std::numeric_limits<std::int32_t>::min() || v > std::numeric_limits<std::int32_t>::max())
        throw UnknownId("instrument", v, book.n_instruments());
    return static_cast<std::int32_t>(v);
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
        const auto& book = book_of(self);
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
        const auto& book = book_of(self);
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
        .def_property_readonly("n_accounts", [](py::handle b) { return book_of(b).n_accounts(); })
        .def_property_readonly("n_instruments", [](py::handle b) { return book_of(b).n_instruments(); })
        .def_property_readonly("n_units", [](py::handle b) { return book_of(b).n_units(); })
        .def_property_readonly("n_scenarios", [](py::handle b) { return book_of(b).n_scenarios(); })
        .def_property_readonly("gain_factor", [](py::handle b) { return book_of(b).rule().gain_factor; })
        .def_property_readonly("mm_factor", [](py::handle b) { return book_of(b).rule().mm_factor; })
        .def_property_readonly("allow_risk_reducing",
                               [](py::handle b) { return book_of(b).rule().allow_risk_reducing; })
        .def(
            "add_fill",
            [](py::handle p, AnyId account, AnyId instrument, double quantity) {
                AccountBook& b = book_of(p);
                b.add_fill(account.value, instrument_id(b, instrument.value), quantity);
            },
            py::arg("account"), py::arg("instrument"), py::arg("quantity"),
            "Applies a trade: position += quantity, P += quantity * R[instrument], IM refreshed.")
        .def(
            "add_fills",
            [](py::handle p, const i64& accounts, const i32& instruments, const f64& quantities) {
                AccountBook& b = book_of(p);
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
            [](py::handle b, AnyId account) { return RecordType<Margin>::make(book_of(b).margin(account.value)); },
            py::arg("account"), "Margin(im, mm) of the account now.")
        .def(
            "unit_margin",
            [](py::handle p, AnyId account, AnyId unit) {
                const AccountBook& b = book_of(p);
                return RecordType<UnitMargin>::make(b.unit_margin(account.value, id32(unit.value, "unit", b.n_units())));
            },
            py::arg("account"), py::arg("unit"), "UnitMargin(loss, im, worst_scenario) of one risk unit.")
        .def(
            "position",
            [](py::handle p, AnyId account, AnyId instrument) {
                const AccountBook& b = book_of(p);
                return b.position(account.value, instrument_id(b, instrument.value));
            },
            py::arg("account"), py::arg("instrument"))
        .def(
            "positions",
            [](py::handle b, AnyId account) {
                py::dict out;
                for (const Position& p : book_of(b).positions(account.value)) out[py::int_(p.instrument)] = p.quantity;
                return out;
            },
            py::arg("account"), "{instrument: quantity} of the account's open positions.")
        .def(
            "pnl",
            [](py::handle p, AnyId account) {
                const AccountBook& b = book_of(p);
                f64 out({static_cast<py::ssize_t>(b.n_units()), static_cast<py::ssize_t>(b.n_scenarios())});
                b.pnl(account.value, out.mutable_data());
                return out;
            },
            py::arg("account"), "Scenario P&L from the account's positions, shape (n_units, n_scenarios).")
        .def(
            "weighted_pnl",
            [](py::handle p, AnyId account) {
                const AccountBook& b = book_of(p);
                f64 out({static_cast<py::ssize_t>(b.n_units()), static_cast<py::ssize_t>(b.n_scenarios())});
                b.weighted_pnl(account.value, out.mutable_data());
                return out;
            },
            py::arg("account"), "Copy of the incrementally maintained cache w * P, shape (n_units, n_scenarios).")
        .def(
            "risk_row",
            [](py::handle p, AnyId instrument) {
                const AccountBook& b = book_of(p);
                f64 out({static_cast<py::ssize_t>(b.n_scenarios())});
                b.risk_row(instrument_id(b, instrument.value), out.mutable_data());
                return out;
            },
            py::arg("instrument"), "Copy of the book's current risk row of an instrument.")
        .def(
            "instruments_of",
            [](py::handle p, AnyId unit) {
                const AccountBook& b = book_of(p);
                const auto ids = b.instruments_of(id32(unit.value, "unit", b.n_units()));
                i32 out({static_cast<py::ssize_t>(ids.size())});
                std::copy(ids.begin(), ids.end(), out.mutable_data());
                return out;
            },
            py::arg("unit"), "Instrument ids of a risk unit, in the row order update_unit expects.")
        .def(
            "update_unit",
            [](py::handle p, AnyId unit_id, const f64& rows, std::optional<double> fx, int threads) {
                AccountBook& b = book_of(p);
                const std::int32_t unit = id32(unit_id.value, "unit", b.n_units());
                expect_shape("rows", rows, {-1, static_cast<py::ssize_t>(b.n_scenarios())});
                const auto n = static_cast<std::size_t>(rows.shape(0));
                py::gil_scoped_release release;  // reads `rows` (alive in this frame); the book locks itself
                b.update_unit(unit, rows.data(), n, fx, threads);
            },
            py::arg("unit"), py::arg("rows"), py::arg("fx").none(true) = py::none(), py::arg("threads") = 1,
            "Market update of one risk unit: new risk rows of instruments_of(unit); P += Q * dR.")
        .def(
            "_update_unit_from_market",
            [](py::handle p, AnyId unit_id, const i8& kind, const i8& settlement, const i32& risk_unit,
               const f64& strike, const f64& expiry, const f64& multiplier, const f64& forward, const f64& discount,
               const f64& vol, const f64& spot, const f64& price_multiplier, const std::optional<f64>& vol_shift,
               const std::optional<f64>& time_shift, int vol_shock, double tau_floor_days, double short_power,
               double long_power, double vol_up_floor, std::optional<double> fx, int threads) {
                AccountBook& b = book_of(p);
                const std::int32_t unit = id32(unit_id.value, "unit", b.n_units());
                const auto n = static_cast<py::ssize_t>(b.n_instruments());
                for (const auto& [field, a] :
                     {std::pair<const char*, const py::array*>{"kind", &kind}, {"settlement", &settlement},
                      {"risk_unit", &risk_unit}, {"strike", &strike}, {"expiry", &expiry},
                      {"multiplier", &multiplier}, {"forward", &forward}, {"discount", &discount}, {"vol", &vol}})
                    expect_shape(field, *a, {n});
                const auto nu = static_cast<py::ssize_t>(b.n_units()), n_sc = static_cast<py::ssize_t>(b.n_scenarios());
                expect_shape("spot", spot, {nu});
                expect_shape("price_multiplier", price_multiplier, {nu, n_sc});
                if (vol_shift) expect_shape("vol_shift", *vol_shift, {nu, n_sc});
                if (time_shift) expect_shape("time_shift", *time_shift, {n_sc});
                if (vol_shock < 0 || vol_shock > 3) throw InvalidInput("vol_shock", -1, "unknown vol shock code");
                const InstrumentsView in{static_cast<std::size_t>(n), kind.data(),    settlement.data(), risk_unit.data(),
                                         strike.data(),                expiry.data(),  multiplier.data(), forward.data(),
                                         discount.data(),              vol.data()};
                ScenariosView sc;
                sc.n_units = static_cast<std::size_t>(nu);
                sc.n_scenarios = static_cast<std::size_t>(n_sc);
                sc.spot = spot.data();
                sc.price_multiplier = price_multiplier.data();
                sc.vol_shift = vol_shift ? vol_shift->data() : nullptr;
                sc.time_shift = time_shift ? time_shift->data() : nullptr;
                sc.vol_shock = static_cast<VolShockKind>(vol_shock);
                sc.tau_floor_days = tau_floor_days;
                sc.short_power = short_power;
                sc.long_power = long_power;
                sc.vol_up_floor = vol_up_floor;
                py::gil_scoped_release release;  // reads argument arrays alive in this frame; the book locks itself
                b.update_unit(unit, in, sc, fx, threads);
            },
            py::arg("unit"), py::arg("kind"), py::arg("settlement"), py::arg("risk_unit"), py::arg("strike"),
            py::arg("expiry"), py::arg("multiplier"), py::arg("forward"), py::arg("discount"), py::arg("vol"),
            py::arg("spot"), py::arg("price_multiplier"), py::arg("vol_shift").none(true),
            py::arg("time_shift").none(true), py::arg("vol_shock"), py::arg("tau_floor_days"), py::arg("short_power"),
            py::arg("long_power"), py::arg("vol_up_floor"), py::arg("fx").none(true), py::arg("threads"),
            "update_unit after re-revaluing only the unit's instruments (AccountBook::update_unit, C++).")
        .def(
            "set_fx",
            [](py::handle p, AnyId unit_id, double fx) {
                AccountBook& b = book_of(p);
                const std::int32_t unit = id32(unit_id.value, "unit", b.n_units());
                py::gil_scoped_release release;  // scalars only; the book locks itself
                b.set_fx(unit, fx);
            },
            py::arg("unit"), py::arg("fx"))
        .def(
            "set_expiry",
            [](py::handle p, AnyId instrument, double years) {
                AccountBook& b = book_of(p);
                b.set_expiry(instrument_id(b, instrument.value), years);
            },
            py::arg("instrument"), py::arg("years"))
        .def(
            "expiry",
            [](py::handle p, AnyId instrument) {
                const AccountBook& b = book_of(p);
                return b.expiry(instrument_id(b, instrument.value));
            },
            py::arg("instrument"))
        .def(
            "settle",
            [](py::handle p, AnyId instrument_arg) {
                AccountBook& b = book_of(p);
                const std::int32_t instrument = instrument_id(b, instrument_arg.value);
                py::gil_scoped_release release;  // scalars only; the book locks itself
                b.settle(instrument);
            },
            py::arg("instrument"))
        .def(
            "rebuild",
            [](py::handle p, int threads) {
                AccountBook& b = book_of(p);
                py::gil_scoped_release release;  // no Python objects; the book locks itself
                b.rebuild(threads);
            },
            py::arg("threads") = 1)
        .def(
            "add_accounts", [](py::handle b, std::size_t count) { return book_of(b).add_accounts(count); },
            py::arg("count") = 1);
    for (PyMethodDef* def = fast_methods; def->ml_name; ++def) {
        PyObject* method = PyDescr_NewMethod(reinterpret_cast<PyTypeObject*>(cls.ptr()), def);
        if (!method) throw py::error_already_set();
        cls.attr(def->ml_name) = py::reinterpret_steal<py::object>(method);
    }
}

}  // namespace marginkernel::bindings
