// marginkernel._core.ModelBook: the model book (book.hpp) seen from Python. Built by
// marginkernel.account.account_book(engine); the per-order methods are METH_FASTCALL functions
// (fastcall.hpp) returning small records (records.hpp), as for AccountBook.
//
// GIL: released around construction, add_fills, update_unit and rebuild (the book synchronises
// itself, the argument arrays stay alive in the calling frame and no Python object is touched);
// kept by the per-order methods, whose work is shorter than releasing and re-taking it.
#include <Python.h>

#include <limits>
#include <string>
#include <vector>

#include "arrays.hpp"
#include "fastcall.hpp"
#include "marginkernel/book.hpp"
#include "records.hpp"

namespace marginkernel::bindings {

template <>
struct RecordFields<ModelWhatIf> {
    static PyObject* get(const ModelWhatIf& w, int k) {
        switch (k) {
            case 0: return PyFloat_FromDouble(w.im);
            case 1: return PyFloat_FromDouble(w.mm);
            case 2: return PyFloat_FromDouble(w.im_before);
            case 3: return PyFloat_FromDouble(w.available);
            default: return PyLong_FromLong(w.worst_scenario);
        }
    }
};
template <>
struct RecordFields<ModelCheck> {
    static PyObject* get(const ModelCheck& c, int k) {
        if (k == 0) return PyBool_FromLong(c.accepted);
        if (k == 1) return PyFloat_FromDouble(c.excess);
        return RecordFields<ModelWhatIf>::get(c.after, k - 2);
    }
};

namespace {

ModelBook& model_book(py::handle self) { return constructed<ModelBook>(self, "ModelBook"); }

std::vector<double> per_unit(const py::dict& d, const char* key, std::size_t n_units) {
    if (!d.contains(key)) return {};
    const f64 a = d[key].cast<f64>();
    expect_shape(key, a, {static_cast<py::ssize_t>(n_units)});
    return std::vector<double>(a.data(), a.data() + n_units);
}

// intra_spread / inter_spread: spreads as [{"rate", "one_tier", "legs": [{"unit", "side_a", "ratio",
// "months"}]}] (book.py _spread_spec), the intra scope [n_units] (uint8), whole, after, price risk.
void spreads_from(const py::dict& d, std::size_t n_units, AddOnSpec& a) {
    for (const auto& raw : d["spreads"].cast<py::list>()) {
        const auto sd = raw.cast<py::dict>();
        DeltaSpreadSpec s;
        s.rate = sd["rate"].cast<double>();
        s.one_tier = sd["one_tier"].cast<bool>();
        for (const auto& leg_raw : sd["legs"].cast<py::list>()) {
            const auto ld = leg_raw.cast<py::dict>();
            SpreadLegSpec leg;
            leg.unit = ld["unit"].cast<std::int32_t>();
            leg.side_a = ld["side_a"].cast<bool>();
            leg.ratio = ld["ratio"].cast<double>();
            const i32 months = ld["months"].cast<i32>();
            expect_shape("months", months, {-1});
            leg.months.assign(months.data(), months.data() + months.size());
            s.legs.push_back(std::move(leg));
        }
        a.spreads.push_back(std::move(s));
    }
    if (d.contains("scope")) {
        const auto scope = d["scope"].cast<array<std::uint8_t>>();
        expect_shape("scope", scope, {static_cast<py::ssize_t>(n_units)});
        a.scope.assign(scope.data(), scope.data() + n_units);
    }
    a.whole = d.contains("whole") && d["whole"].cast<bool>();
    a.after = d.contains("after") ? d["after"].cast<std::int32_t>() : -1;
    a.scan_price_risk = d.contains("scan_price_risk") && d["scan_price_risk"].cast<bool>();
}

AddOnSpec addon_from(const py::dict& d, std::size_t n_units) {
    AddOnSpec a;
    a.name = d["name"].cast<std::string>();
    a.type = static_cast<AddOnType>(d["type"].cast<int>());
    if (static_cast<int>(a.type) < 0 || static_cast<int>(a.type) > 7)
        throw InvalidInput("addons." + a.name + ".type", -1, "unknown add-on type code");
    if (a.type == AddOnType::intra_spread || a.type == AddOnType::inter_spread) spreads_from(d, n_units, a);
    a.annualised_move_risk = per_unit(d, "annualised_move_risk", n_units);
    a.min_annualised_move = per_unit(d, "min_annualised_move", n_units);
    a.threshold = per_unit(d, "threshold", n_units);
    a.shock = per_unit(d, "shock", n_units);
    a.rate = per_unit(d, "rate", n_units);
    a.option_rate = per_unit(d, "option_rate", n_units);
    a.future_rate = per_unit(d, "future_rate", n_units);
    a.kinds = static_cast<std::uint8_t>(d.contains("kinds") ? d["kinds"].cast<int>() : 0);
    a.usd = d.contains("usd") && d["usd"].cast<bool>();
    a.notional_basis = d.contains("notional_basis") && d["notional_basis"].cast<bool>();
    a.max_method = d.contains("max_method") && d["max_method"].cast<bool>();
    a.gross_delta = d.contains("gross_delta") && d["gross_delta"].cast<bool>();
    a.short_only = d.contains("short_only") && d["short_only"].cast<bool>();
    if (d.contains("tiers") && !d["tiers"].is_none())
        a.tiers = d["tiers"].cast<std::vector<std::pair<double, double>>>();
    return a;
}

std::unique_ptr<ModelBook> make_model_book(const f64& risk, const f64& weight, const py::dict& inst,
                                           const py::dict& market, const py::dict& model, std::size_t n_accounts) {
    expect_shape("risk", risk, {-1, -1});
    const auto n = risk.shape(0), ns = risk.shape(1);
    const auto kind = inst["kind"].cast<i8>(), settlement = inst["settlement"].cast<i8>();
    const auto unit = inst["risk_unit"].cast<i32>();
    const f64 cols[6] = {inst["strike"].cast<f64>(),   inst["expiry"].cast<f64>(),   inst["multiplier"].cast<f64>(),
                         inst["forward"].cast<f64>(),  inst["discount"].cast<f64>(), inst["vol"].cast<f64>()};
    expect_shape("kind", kind, {n});
    expect_shape("settlement", settlement, {n});
    expect_shape("risk_unit", unit, {n});
    const char* names[6] = {"strike", "expiry", "multiplier", "forward", "discount", "vol"};
    for (int k = 0; k < 6; ++k) expect_shape(names[k], cols[k], {n});
    const auto spot = market["unit_spot"].cast<f64>(), ufx = market["unit_fx"].cast<f64>();
    const auto ucur = market["unit_currency"].cast<i32>();
    const auto cfx = market["currency_fx"].cast<f64>();
    const auto kfx = market["collateral_fx"].cast<f64>(), khair = market["collateral_haircut"].cast<f64>();
    const auto nu = spot.shape(0);
    expect_shape("unit_fx", ufx, {nu});
    expect_shape("unit_currency", ucur, {nu});
    expect_shape("weight", weight, {nu, ns});
    expect_shape("currency_fx", cfx, {-1});
    expect_shape("collateral_fx", kfx, {-1});
    expect_shape("collateral_haircut", khair, {kfx.shape(0)});
    const InstrumentsView iv{static_cast<std::size_t>(n), kind.data(),     settlement.data(), unit.data(),
                             cols[0].data(),             cols[1].data(),   cols[2].data(),    cols[3].data(),
                             cols[4].data(),             cols[5].data()};
    BookMarketView mv;
    mv.n_units = static_cast<std::size_t>(nu);
    mv.unit_spot = spot.data();
    mv.unit_fx = ufx.data();
    mv.unit_currency = ucur.data();
    mv.n_currencies = static_cast<std::size_t>(cfx.shape(0));
    mv.currency_fx = cfx.data();
    mv.report_fx = market["report_fx"].cast<double>();
    mv.n_collateral = static_cast<std::size_t>(kfx.shape(0));
    mv.collateral_fx = kfx.data();
    mv.collateral_haircut = khair.data();
    i32 month;  // delta spreads: month codes per instrument, the scenario set's moves per unit
    f64 price_multiplier, vol_shift;
    if (market.contains("month") && !market["month"].is_none()) {
        month = market["month"].cast<i32>();
        expect_shape("month", month, {n});
        mv.month = month.data();
        mv.n_months = market["n_months"].cast<std::size_t>();
    }
    if (market.contains("price_multiplier") && !market["price_multiplier"].is_none()) {
        price_multiplier = market["price_multiplier"].cast<f64>();
        vol_shift = market["vol_shift"].cast<f64>();
        expect_shape("price_multiplier", price_multiplier, {nu, ns});
        expect_shape("vol_shift", vol_shift, {nu, ns});
        mv.price_multiplier = price_multiplier.data();
        mv.vol_shift = vol_shift.data();
    }
    BookModel bm;
    bm.netting = static_cast<Netting>(model["netting"].cast<int>());
    bm.mode = static_cast<MarginMode>(model["mode"].cast<int>());
    bm.im_factor = model["im_factor"].cast<double>();
    bm.mm_factor = model["mm_factor"].cast<double>();
    bm.gain_cap = model["gain_cap"].cast<double>();
    bm.allow_risk_reducing = model["allow_risk_reducing"].cast<bool>();
    if (model.contains("measure")) {  // var / es: confidence and the scenario probabilities (None: equal)
        bm.measure = static_cast<Measure>(model["measure"].cast<int>());
        bm.confidence = model["confidence"].cast<double>();
        if (!model["probability"].is_none()) {
            const f64 prob = model["probability"].cast<f64>();
            bm.probability.assign(prob.data(), prob.data() + prob.size());
        }
    }
    const f64 gain = model["gain_factor"].cast<f64>();
    bm.gain_factor.assign(gain.data(), gain.data() + gain.size());
    for (const auto& a : model["addons"].cast<py::list>()) bm.addons.push_back(addon_from(a.cast<py::dict>(), mv.n_units));
    py::gil_scoped_release release;  // copies the argument buffers (alive in this frame) only
    return std::make_unique<ModelBook>(bm, iv, mv, risk.data(), weight.data(), static_cast<std::size_t>(ns),
                                       n_accounts);
}

py::dict margin_dict(const ModelBook& b, const AccountMargin& t) {
    py::dict d;
    d["im"] = t.im;
    d["mm"] = t.mm;
    d["risk"] = t.risk;
    d["scan_risk"] = t.scan_risk;
    py::tuple comps(b.model().addons.size());
    for (std::size_t k = 0; k < b.model().addons.size(); ++k) comps[k] = t.components[k];
    d["components"] = comps;
    d["equity"] = t.equity;
    d["available"] = t.available;
    d["margin_ratio"] = t.margin_ratio;
    d["liquidation"] = t.liquidation;
    d["worst_node"] = t.worst_node;
    d["worst_scenario"] = t.worst_scenario;
    return d;
}

PyObject* what_if_fast(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
    static const char* const names[] = {"account", "instrument", "quantity"};
    PyObject* a[kMaxArgs];
    long long account = 0, instrument = 0;
    double quantity = 0.0;
    if (!collect("what_if", args, nargs, kwnames, names, 3, a) || !to_id(a[0], account) ||
        !to_id(a[1], instrument) || !to_double(a[2], quantity))
        return nullptr;
    return guarded([&] {
        const auto& book = model_book(self);
        const auto i = id32(instrument, "instrument", book.n_instruments());
        return RecordType<ModelWhatIf>::make(book.what_if(account, i, quantity));
    });
}

PyObject* check_fast(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
    static const char* const names[] = {"account", "instrument", "quantity", "equity"};
    PyObject* a[kMaxArgs];
    long long account = 0, instrument = 0;
    double quantity = 0.0, equity = std::numeric_limits<double>::quiet_NaN();
    // equity is optional here: the account's own equity when omitted or None
    Py_ssize_t n_given = nargs + (kwnames ? PyTuple_GET_SIZE(kwnames) : 0);
    const bool has_equity = n_given == 4;
    if (!collect("check", args, nargs, kwnames, names, has_equity ? 4 : 3, a) || !to_id(a[0], account) ||
        !to_id(a[1], instrument) || !to_double(a[2], quantity) ||
        (has_equity && a[3] != Py_None && !to_double(a[3], equity)))
        return nullptr;
    return guarded([&] {
        const auto& book = model_book(self);
        const auto i = id32(instrument, "instrument", book.n_instruments());
        if (has_equity && a[3] != Py_None && std::isnan(equity))
            throw InvalidInput("equity", -1, "must be finite, got nan");
        return RecordType<ModelCheck>::make(book.check(account, i, quantity, equity));
    });
}

PyMethodDef fast_methods[] = {
    {"what_if", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(&what_if_fast)),
     METH_FASTCALL | METH_KEYWORDS,
     "what_if($self, /, account, instrument, quantity)\n--\n\n"
     "The account after the order under the full model, without changing it:\n"
     "ModelWhatIf(im, mm, im_before, available, worst_scenario)."},
    {"check", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(&check_fast)),
     METH_FASTCALL | METH_KEYWORDS,
     "check($self, /, account, instrument, quantity, equity=None)\n--\n\n"
     "Pre-trade check against `equity` (default: the account's own equity from its collateral):\n"
     "ModelCheck(accepted, excess, im, mm, im_before, available, worst_scenario)."},
    {nullptr, nullptr, 0, nullptr}};

}  // namespace

void bind_book(py::module_& m) {
    RecordType<ModelWhatIf>::create(
        m, "marginkernel.ModelWhatIf", "The account after a hypothetical order under the full model.",
        {{"im", "account IM after the order (reporting currency)"},
         {"mm", "account MM after the order"},
         {"im_before", "account IM now"},
         {"available", "equity - im after the order (NaN without collateral)"},
         {"worst_scenario", "worst scenario of the costliest node after the order (-1: no loss)"}});
    RecordType<ModelCheck>::create(
        m, "marginkernel.ModelCheck", "A pre-trade check under the full model.",
        {{"accepted", "im <= equity, or the order does not increase IM (if the model allows that)"},
         {"excess", "equity - im after the order"},
         {"im", "account IM after the order"},
         {"mm", "account MM after the order"},
         {"im_before", "account IM now"},
         {"available", "the account's own equity - im after the order (NaN without collateral)"},
         {"worst_scenario", "worst scenario of the costliest node after the order"}});

    py::class_<ModelBook> cls(m, "ModelBook", "The full margin model held per account; see marginkernel.account.");
    cls.def(py::init(&make_model_book), py::arg("risk"), py::arg("weight"), py::arg("instruments"),
            py::arg("market"), py::arg("model"), py::arg("n_accounts"))
        .def_property_readonly("n_accounts", [](py::handle b) { return model_book(b).n_accounts(); })
        .def_property_readonly("n_instruments", [](py::handle b) { return model_book(b).n_instruments(); })
        .def_property_readonly("n_units", [](py::handle b) { return model_book(b).n_units(); })
        .def_property_readonly("n_scenarios", [](py::handle b) { return model_book(b).n_scenarios(); })
        .def(
            "add_fill",
            [](py::handle p, AnyId account, AnyId instrument, double quantity) {
                ModelBook& b = model_book(p);
                b.add_fill(account.value, id32(instrument.value, "instrument", b.n_instruments()), quantity);
            },
            py::arg("account"), py::arg("instrument"), py::arg("quantity"))
        .def(
            "add_fills",
            [](py::handle p, const i64& accounts, const i32& instruments, const f64& quantities) {
                ModelBook& b = model_book(p);
                expect_shape("accounts", accounts, {-1});
                expect_shape("instruments", instruments, {accounts.shape(0)});
                expect_shape("quantities", quantities, {accounts.shape(0)});
                const auto n = static_cast<std::size_t>(accounts.shape(0));
                py::gil_scoped_release release;  // reads the argument buffers only
                b.add_fills(accounts.data(), instruments.data(), quantities.data(), n);
            },
            py::arg("accounts"), py::arg("instruments"), py::arg("quantities"))
        .def(
            "margin",
            [](py::handle p, AnyId account) {
                const ModelBook& b = model_book(p);
                return margin_dict(b, b.margin(account.value));
            },
            py::arg("account"))
        .def(
            "nodes",
            [](py::handle p, AnyId account) {
                const ModelBook& b = model_book(p);
                py::list out;
                for (const NodeMargin& n : b.nodes(account.value)) {
                    py::dict d;
                    d["unit"] = n.unit;
                    d["currency"] = n.currency;
                    d["instrument"] = n.instrument;
                    d["scan"] = n.scan;
                    d["worst_scenario"] = n.worst_scenario;
                    d["fx"] = n.fx;
                    d["requirement"] = n.requirement;
                    py::tuple c(b.model().addons.size());
                    for (std::size_t k = 0; k < b.model().addons.size(); ++k) c[k] = n.charges[k];
                    d["charges"] = c;
                    out.append(d);
                }
                return out;
            },
            py::arg("account"))
        .def(
            "pair",
            [](py::handle p, AnyId account, AnyId unit) {
                const ModelBook& b = model_book(p);
                const PairMargin pm = b.pair(account.value, id32(unit.value, "unit", b.n_units()));
                py::dict d;
                d["loss"] = pm.loss;
                d["worst_scenario"] = pm.worst_scenario;
                py::tuple c(b.model().addons.size());
                for (std::size_t k = 0; k < b.model().addons.size(); ++k) c[k] = pm.charges[k];
                d["charges"] = c;
                return d;
            },
            py::arg("account"), py::arg("unit"))
        .def(
            "positions",
            [](py::handle b, AnyId account) {
                py::dict out;
                for (const Position& q : model_book(b).positions(account.value)) out[py::int_(q.instrument)] = q.quantity;
                return out;
            },
            py::arg("account"))
        .def(
            "pnl",
            [](py::handle p, AnyId account) {
                const ModelBook& b = model_book(p);
                f64 out({static_cast<py::ssize_t>(b.n_units()), static_cast<py::ssize_t>(b.n_scenarios())});
                b.pnl(account.value, out.mutable_data());
                return out;
            },
            py::arg("account"))
        .def(
            "set_collateral",
            [](py::handle b, AnyId account, AnyId currency, double amount) {
                model_book(b).set_collateral(account.value, id32(currency.value, "collateral currency", 0), amount);
            },
            py::arg("account"), py::arg("currency"), py::arg("amount"))
        .def(
            "instruments_of",
            [](py::handle p, AnyId unit) {
                const ModelBook& b = model_book(p);
                const auto ids = b.instruments_of(id32(unit.value, "unit", b.n_units()));
                i32 out({static_cast<py::ssize_t>(ids.size())});
                std::copy(ids.begin(), ids.end(), out.mutable_data());
                return out;
            },
            py::arg("unit"))
        .def(
            "update_unit",
            [](py::handle p, AnyId unit_id, const f64& rows, const std::optional<f64>& forward,
               const std::optional<f64>& discount, const std::optional<f64>& vol, const std::optional<f64>& expiry,
               double spot, double fx, int threads) {
                ModelBook& b = model_book(p);
                const auto unit = id32(unit_id.value, "unit", b.n_units());
                expect_shape("rows", rows, {-1, static_cast<py::ssize_t>(b.n_scenarios())});
                const auto n = rows.shape(0);
                const f64* cols[4] = {forward ? &*forward : nullptr, discount ? &*discount : nullptr,
                                      vol ? &*vol : nullptr, expiry ? &*expiry : nullptr};
                const char* names[4] = {"forward", "discount", "vol", "expiry"};
                const double* ptr[4] = {nullptr, nullptr, nullptr, nullptr};
                for (int k = 0; k < 4; ++k)
                    if (cols[k]) {
                        expect_shape(names[k], *cols[k], {n});
                        ptr[k] = cols[k]->data();
                    }
                py::gil_scoped_release release;  // reads argument arrays alive in this frame; the book locks itself
                b.update_unit(unit, rows.data(), static_cast<std::size_t>(n), ptr[0], ptr[1], ptr[2], ptr[3], spot, fx,
                              threads);
            },
            py::arg("unit"), py::arg("rows"), py::arg("forward").none(true) = py::none(),
            py::arg("discount").none(true) = py::none(), py::arg("vol").none(true) = py::none(),
            py::arg("expiry").none(true) = py::none(), py::arg("spot") = std::numeric_limits<double>::quiet_NaN(),
            py::arg("fx") = std::numeric_limits<double>::quiet_NaN(), py::arg("threads") = 1)
        .def(
            "rebuild",
            [](py::handle p, int threads) {
                ModelBook& b = model_book(p);
                py::gil_scoped_release release;  // no Python objects; the book locks itself
                b.rebuild(threads);
            },
            py::arg("threads") = 1)
        .def(
            "add_accounts", [](py::handle b, std::size_t count) { return model_book(b).add_accounts(count); },
            py::arg("count") = 1);
    for (PyMethodDef* def = fast_methods; def->ml_name; ++def) {
        PyObject* method = PyDescr_NewMethod(reinterpret_cast<PyTypeObject*>(cls.ptr()), def);
        if (!method) throw py::error_already_set();
        cls.attr(def->ml_name) = py::reinterpret_steal<py::object>(method);
    }
}

}  // namespace marginkernel::bindings
