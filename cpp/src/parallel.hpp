// Internal: split [0, n) into contiguous chunks over up to `threads` threads (the calling thread
// takes the first chunk). Chunks write disjoint output rows, so no synchronisation is needed.
#pragma once

#include <algorithm>
#include <cstddef>
#include <exception>
#include <thread>
#include <vector>

namespace marginkernel::detail {

template <class Body>
void parallel_for(std::size_t n, int threads, Body&& body) {
    const std::size_t t = std::clamp<std::size_t>(threads > 0 ? threads : 1, 1, std::max<std::size_t>(n, 1));
    if (t == 1) {
        body(std::size_t{0}, n);
        return;
    }
    const std::size_t chunk = (n + t - 1) / t;
    std::vector<std::thread> pool;
    std::vector<std::exception_ptr> errors(t);
    for (std::size_t k = 1; k < t; ++k)
        pool.emplace_back([&, k] {
            try {
                body(std::min(n, k * chunk), std::min(n, (k + 1) * chunk));
            } catch (...) {
                errors[k] = std::current_exception();
            }
        });
    try {
        body(std::size_t{0}, std::min(n, chunk));
    } catch (...) {
        errors[0] = std::current_exception();
    }
    for (auto& th : pool) th.join();
    for (auto& e : errors)
        if (e) std::rethrow_exception(e);
}

}  // namespace marginkernel::detail
