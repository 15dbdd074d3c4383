// Internal: the numeric input checks every stage shares. Each throws InvalidInput naming the field.
#pragma once

#include <cmath>
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

}  // namespace marginkernel::detail
