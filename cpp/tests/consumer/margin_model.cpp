// A C++ program margining a book under the deribit-pm model without Python, against the installed
// package only (find_package(marginkernel) -> marginkernel::core; no Eigen, no Python).
//
// It loads the model from the preset TOML installed with the package (the file Python loads), the
// market compiled by Python (data/deribit_market.toml, marginkernel.book_export) and the book with the
// Python engine's figures for it (data/deribit_case.toml), builds the ModelBook (scenarios,
// revaluation, netting nodes, add-ons, collateral), fills every position and compares IM, MM, scan
// risk, each add-on, equity and margin ratio with the Python figures to 1e-9 relative. Then a
// stream of orders: every what-if must equal the margin after the fill bit for bit.
//
//   margin_model <market.toml> <case.toml> [model.toml]
#define TOML_HEADER_ONLY 1
#include <toml++/toml.h>

#include <marginkernel/book.hpp>
#include <marginkernel/model_file.hpp>

#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

using namespace marginkernel;

namespace {

int failures = 0;

void expect_close(const std::string& what, double got, double want) {
    const bool both_nan = std::isnan(got) && std::isnan(want);
    const bool same_inf = std::isinf(got) && got == want;
    const double tol = 1e-9 * std::max(1.0, std::abs(want));
    if (both_nan || same_inf || std::abs(got - want) <= tol) return;
    std::printf("MISMATCH %s: C++ %.17g, Python %.17g\n", what.c_str(), got, want);
    ++failures;
}

std::vector<double> numbers(const toml::node_view<const toml::node>& n) {
    std::vector<double> out;
    if (const auto* a = n.as_array())
        for (const auto& e : *a) out.push_back(e.value<double>().value_or(std::nan("")));
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 3) {
        std::fprintf(stderr, "usage: margin_model <market.toml> <case.toml> [model.toml]\n");
        return 2;
    }
    try {
        const ModelFile model = load_model_file(argc > 3 ? argv[3] : preset_path("deribit-pm"));
        const BookInputs inputs = load_market_file(argv[1]);
        const toml::table cases = toml::parse_file(argv[2]);
        const auto* accounts = cases["account"].as_array();
        if (!accounts) throw std::runtime_error("case file: no [[account]]");
        auto book = make_book(model, inputs, accounts->size());
        std::printf("model %s: %zu instruments, %zu units, %zu scenarios, %zu accounts\n", model.name.c_str(),
                    book->n_instruments(), book->n_units(), book->n_scenarios(), accounts->size());
        std::int64_t a = 0;
        for (const auto& node : *accounts) {
            const toml::table& acc = *node.as_table();
            const std::string name = acc["name"].value<std::string>().value_or("?");
            const auto inst = numbers(acc["instrument"]), qty = numbers(acc["quantity"]);
            for (std::size_t k = 0; k < inst.size(); ++k) book->add_fill(a, static_cast<std::int32_t>(inst[k]), qty[k]);
            const auto cur = numbers(acc["collateral_currency"]), amt = numbers(acc["collateral_amount"]);
            if (!inputs.collateral_currencies.empty()) book->set_collateral(a, 0, 0.0);  // equity 0 without rows
            for (std::size_t k = 0; k < cur.size(); ++k) book->set_collateral(a, static_cast<std::int32_t>(cur[k]), amt[k]);
            const AccountMargin m = book->margin(a);
            expect_close(name + " im", m.im, acc["im"].value<double>().value_or(NAN));
            expect_close(name + " mm", m.mm, acc["mm"].value<double>().value_or(NAN));
            expect_close(name + " scan_risk", m.scan_risk, acc["scan_risk"].value<double>().value_or(NAN));
            expect_close(name + " equity", m.equity, acc["equity"].value<double>().value_or(NAN));
            expect_close(name + " margin_ratio", m.margin_ratio, acc["margin_ratio"].value<double>().value_or(NAN));
            const auto comps = numbers(acc["component"]);
            for (std::size_t k = 0; k < comps.size(); ++k)
                expect_close(name + " " + model.addons[k].name, m.components[k], comps[k]);
            std::printf("  %-14s IM %14.6f  MM %14.6f  (Python %14.6f)\n", name.c_str(), m.im, m.mm,
                        acc["im"].value<double>().value_or(NAN));
            ++a;
        }
        // what-if = what happens, on a stream of orders
        std::mt19937_64 rng(7);
        std::uniform_int_distribution<std::int64_t> pick_account(0, a - 1);
        std::uniform_int_distribution<std::int32_t> pick_instrument(0, static_cast<std::int32_t>(book->n_instruments()) - 1);
        std::uniform_int_distribution<int> pick_size(-20, 20);
        int orders = 0;
        for (int k = 0; k < 2000; ++k) {
            const std::int64_t acc = pick_account(rng);
            const std::int32_t i = pick_instrument(rng);
            const bool linear = inputs.kind[static_cast<std::size_t>(i)] <= 1;
            const double q = pick_size(rng) * (linear ? 1000.0 : 0.5);
            if (q == 0.0) continue;
            const ModelWhatIf w = book->what_if(acc, i, q);
            book->add_fill(acc, i, q);
            const AccountMargin m = book->margin(acc);
            if (w.im != m.im || w.mm != m.mm) {
                std::printf("MISMATCH what-if %d: %.17g after the fill %.17g\n", k, w.im, m.im);
                ++failures;
            }
            ++orders;
        }
        std::printf("%d what-ifs equal the margin after their fill: %s\n", orders, failures ? "NO" : "yes");
    } catch (const std::exception& e) {
        std::fprintf(stderr, "margin_model: error: %s\n", e.what());
        return 2;
    }
    if (failures) {
        std::printf("%d mismatches\n", failures);
        return 1;
    }
    std::printf("C++ margins equal the Python engine's\n");
    return 0;
}
