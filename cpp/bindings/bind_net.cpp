#include <cstdint>
#include <limits>
#include <optional>
#include <string>

#include "arrays.hpp"
#include "marginkernel/net.hpp"

namespace marginkernel::bindings {

namespace {

f64 net(const f64& risk, const i32& risk_unit, std::size_t n_units, const i64& account_start,
        const i32& instrument, const f64& quantity, int threads, std::optional<f64> out) {
    expect_shape("risk", risk, {-1, -1});
    expect_shape("risk_unit", risk_unit, {risk.shape(0)});
    expect_shape("account_start", account_start, {-1});
    if (account_start.shape(0) < 1) throw InvalidInput("account_start", -1, "needs at least one entry");
    expect_shape("instrument", instrument, {-1});
    expect_shape("quantity", quantity, {instrument.shape(0)});
    const auto accounts = account_start.shape(0) - 1;
    if (account_start.at(accounts) != instrument.shape(0))
        throw InvalidInput("account_start", accounts,
                           "last entry must equal the number of positions (" +
                               std::to_string(instrument.shape(0)) + "), got " +
                               std::to_string(account_start.at(accounts)));

    RiskArraysView r{static_cast<std::size_t>(risk.shape(0)), static_cast<std::size_t>(risk.shape(1)),
                     n_units, risk.data(), risk_unit.data()};
    PositionsView p{static_cast<std::size_t>(accounts), account_start.data(), instrument.data(),
                    quantity.data()};
    if (n_units < 1 || n_units > static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max()))
        throw InvalidInput("n_units", -1, "must be in [1, 2^31), got " + std::to_string(n_units));
    const auto units = static_cast<py::ssize_t>(n_units);
    checked_size("n_units", {accounts, units, risk.shape(1)});
    if (out) {
        expect_shape("out", *out, {accounts, units, risk.shape(1)});
        if (!out->writeable()) throw InvalidInput("out", -1, "is read-only");
        require_disjoint("out", *out, {&risk, &risk_unit, &account_start, &instrument, &quantity});
    }
    f64 pnl = out ? *out : new_aligned_f64({accounts, units, risk.shape(1)});
    double* dst = pnl.mutable_data();
    {
        // Safe without the GIL: reads the argument buffers (kept alive by this frame), writes
        // only `pnl` (new, or the caller's `out`, checked above not to overlap the inputs).
        py::gil_scoped_release release;
        if (!out) populate(dst, static_cast<std::size_t>(pnl.size()));
        marginkernel::net(r, p, dst, threads);
    }
    return pnl;
}

}  // namespace

void bind_net(py::module_& m) {
    m.def("net", &net, py::arg("risk"), py::arg("risk_unit"), py::arg("n_units"),
          py::arg("account_start"), py::arg("instrument"), py::arg("quantity"), py::arg("threads") = 1,
          py::arg("out").none(true) = py::none(),
          "Scenario P&L per account and risk unit, [accounts, units, scenarios].");
}

}  // namespace marginkernel::bindings
