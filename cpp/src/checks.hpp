// Internal: the input checks every stage shares. Each throws InvalidInput naming the field and row.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <sstream>
#include <string>

#include "marginkernel/types.hpp"

namespace marginkernel::detail {

inline std::string show(double v) {
    std::ostringstream s;
    s.precision(17);
    s << v;
    return s.str();
}

inline void require_finite(const char* field, long long row, double v) {
    if (!std::isfinite(v)) throw InvalidInput(field, row, "must be finite, got " + show(v));
}

inline void require_positive(const char* field, long long row, double v) {
    if (!(std::isfinite(v) && v > 0.0))
        throw InvalidInput(field, row, "must be finite and > 0, got " + show(v));
}

inline void require_non_negative(const char* field, long long row, double v) {
    if (!(std::isfinite(v) && v >= 0.0))
        throw InvalidInput(field, row, "must be finite and >= 0, got " + show(v));
}

inline void require_pointer(const char* field, const void* p) {
    if (!p) throw InvalidInput(field, -1, "is missing (null pointer)");
}

// An index into a table of `count` rows (a risk unit, an instrument): 0 <= value < count.
template <class Int>
inline void require_index(const char* field, long long row, Int value, std::size_t count) {
    if (value < 0 || static_cast<std::size_t>(value) >= count)
        throw InvalidInput(field, row,
                           "must be in [0, " + std::to_string(count) + "), got " + std::to_string(value));
}

// Whether no value is NaN or infinite: the exponent bits tested as integers, without an early exit,
// so that the compiler vectorises the loop (netting checks all of R on every call).
inline bool all_finite_values(const double* values, std::size_t n) {
    constexpr std::uint64_t kExponent = 0x7ff0000000000000;
    std::uint64_t bad = 0;
    for (std::size_t s = 0; s < n; ++s) {
        std::uint64_t bits;
        std::memcpy(&bits, values + s, sizeof bits);
        bad |= static_cast<std::uint64_t>((bits & kExponent) == kExponent);
    }
    return bad == 0;
}

// Every value of one row of n scenarios finite; the message names the first bad scenario.
inline void require_finite_row(const char* field, long long row, const double* values, std::size_t n) {
    if (all_finite_values(values, n)) return;
    for (std::size_t s = 0; s < n; ++s)
        if (!std::isfinite(values[s]))
            throw InvalidInput(field, row, "scenario " + std::to_string(s) + " is not finite, got " + show(values[s]));
}

// The `threads` argument of every parallel entry point (revalue, net, AccountBook::rebuild and
// update_unit): at least 1. More than the hardware runs at once is allowed and capped (parallel.hpp).
inline void require_threads(int threads) {
    if (threads < 1) throw InvalidInput("threads", -1, "must be >= 1, got " + std::to_string(threads));
}

}  // namespace marginkernel::detail
