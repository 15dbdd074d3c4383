// Internal: the 64-byte aligned, zero-filled arrays of doubles the books and kernels keep.
#pragma once

#include <algorithm>
#include <cstddef>
#include <memory>
#include <new>

namespace marginkernel::detail {

constexpr std::size_t kAlign = 64;

struct AlignedFree {
    void operator()(double* p) const noexcept { ::operator delete[](p, std::align_val_t(kAlign)); }
};
// A zero-filled, 64-byte aligned array of doubles.
using Buffer = std::unique_ptr<double[], AlignedFree>;

inline Buffer make_buffer(std::size_t n) {
    auto* p = static_cast<double*>(::operator new[](std::max<std::size_t>(n, 1) * sizeof(double),
                                                    std::align_val_t(kAlign)));
    std::fill(p, p + std::max<std::size_t>(n, 1), 0.0);
    return Buffer(p);
}

}  // namespace marginkernel::detail
