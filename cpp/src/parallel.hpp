// Internal: split [0, n) into contiguous chunks over up to `threads` threads (the calling thread
// takes the first chunk). Chunks write disjoint output rows, so no synchronisation is needed.
//
// The thread count is capped at the hardware's concurrency (more threads than cores only add
// start-up cost), and a thread that fails to start (std::system_error, e.g. no memory for its
// stack) is not fatal: the calling thread runs that chunk and the remaining ones itself. The
// chunking never changes a result: every row is computed by the same code whichever thread runs it.
#pragma once

#include <algorithm>
#include <cstddef>
#include <exception>
#include <system_error>
#include <thread>
#include <vector>

namespace marginkernel::detail {

// The number of threads parallel_for uses for n rows: min(threads, hardware threads, n), >= 1.
inline std::size_t thread_count(std::size_t n, int threads) noexcept {
    const std::size_t hardware = std::max(1u, std::thread::hardware_concurrency());
    const std::size_t wanted = threads > 0 ? static_cast<std::size_t>(threads) : 1;
    return std::max<std::size_t>(1, std::min({wanted, hardware, n}));
}

template <class Body>
void parallel_for(std::size_t n, int threads, Body&& body) {
    const std::size_t t = thread_count(n, threads);
    if (t == 1) {
        body(std::size_t{0}, n);
        return;
    }
    const std::size_t chunk = (n + t - 1) / t;
    std::vector<std::exception_ptr> errors(t);
    const auto run = [&](std::size_t k) {
        try {
            body(std::min(n, k * chunk), std::min(n, (k + 1) * chunk));
        } catch (...) {
            errors[k] = std::current_exception();
        }
    };
    std::vector<std::thread> pool;
    pool.reserve(t - 1);
    std::size_t started = 1;  // chunks [1, started) run on their own threads
    for (; started < t; ++started) {
        try {
            pool.emplace_back(run, started);
        } catch (const std::system_error&) {
            break;  // no more threads: this thread runs the rest
        }
    }
    run(0);
    for (std::size_t k = started; k < t; ++k) run(k);
    for (auto& th : pool) th.join();
    for (auto& e : errors)
        if (e) std::rethrow_exception(e);
}

}  // namespace marginkernel::detail
