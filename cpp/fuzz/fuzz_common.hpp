// Shared by the libFuzzer harnesses: decoding fuzz bytes into sizes and doubles that reach the
// interesting corners (0, denormals, huge, negative, NaN, inf) as often as ordinary values.
#pragma once

#include <fuzzer/FuzzedDataProvider.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <string>
#include <vector>

#include "marginkernel/simd.hpp"
#include "marginkernel/types.hpp"

namespace mkfuzz {

inline double value(FuzzedDataProvider& in, double typical_lo, double typical_hi) {
    static const double special[] = {0.0, -0.0, 1.0, -1.0, 1e-308, 4.9e-324, 1e308, -1e308, 1e150, 1e-150,
                                     std::numeric_limits<double>::infinity(),
                                     -std::numeric_limits<double>::infinity(),
                                     std::numeric_limits<double>::quiet_NaN(), 0.5, 2.0, 37.0, -37.0, 7.07};
    switch (in.ConsumeIntegralInRange<int>(0, 7)) {
        case 0: return in.PickValueInArray(special);
        case 1: return in.ConsumeFloatingPoint<double>();
        default: return in.ConsumeFloatingPointInRange<double>(typical_lo, typical_hi);
    }
}

inline std::vector<double> values(FuzzedDataProvider& in, std::size_t n, double lo, double hi) {
    std::vector<double> v(n);
    for (auto& x : v) x = value(in, lo, hi);
    return v;
}

inline bool all_finite(const std::vector<double>& v) {
    for (double x : v)
        if (!std::isfinite(x)) return false;
    return true;
}

// A violated property: print it and crash, so that libFuzzer saves the input.
[[noreturn]] inline void fail(const std::string& what) {
    std::fprintf(stderr, "property violated: %s\n", what.c_str());
    std::abort();
}

inline void require(bool ok, const char* what) {
    if (!ok) fail(what);
}

}  // namespace mkfuzz
