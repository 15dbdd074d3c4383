// Internal: the add-on charges of the model book (book.cpp), one (account, risk unit) pair at a
// time, in the unit's settlement currency. Semantics as marginkernel.addons (docs/models.md).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "marginkernel/book.hpp"

namespace marginkernel::detail {

// Per-instrument and per-unit market values the add-ons read.
struct AddOnMarket {
    std::vector<std::int8_t> kind, settlement;
    std::vector<std::int32_t> unit;
    std::vector<double> multiplier, forward, expiry, delta, notional;
    std::vector<double> unit_spot, unit_fx;
};

// Recomputes delta and notional of instruments [begin, end) from kind, settlement, multiplier,
// forward and the given strike / vol / expiry / discount columns.
void refresh_instrument(AddOnMarket& m, std::size_t i, double strike, double vol, double discount);

// Accumulates one position of an add-on's pair; `finish` gives the charge.
class AddOnAccumulator {
public:
    AddOnAccumulator(const AddOnSpec& spec, const AddOnMarket& m, std::int32_t unit) noexcept
        : spec_(spec), m_(m), u_(static_cast<std::size_t>(unit)) {}
    void add(std::int32_t instrument, double quantity) noexcept;
    double finish() const noexcept;

private:
    const AddOnSpec& spec_;
    const AddOnMarket& m_;
    std::size_t u_;
    double a_ = 0.0, b_ = 0.0, c_ = 0.0;
};

double tiered(double x, const std::vector<std::pair<double, double>>& tiers) noexcept;

}  // namespace marginkernel::detail
