#include "marginkernel/simd.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <string>

#include "cache_info.hpp"
#include "kernels.hpp"

namespace marginkernel {
namespace {

using detail::Kernels;

bool supported(const Kernels& k) {
    const std::string name = k.name;
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
    if (name == "avx2") return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (name == "avx512")
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw");
#endif
    return name == "baseline";
}

// Best first.
const Kernels* const all_targets[] = {
#if defined(MK_HAVE_AVX512)
    &detail::kernels_avx512,
#endif
#if defined(MK_HAVE_AVX2)
    &detail::kernels_avx2,
#endif
    &detail::kernels_baseline,
};

const Kernels* find(const std::string& name) {
    for (const Kernels* k : all_targets)
        if (name == k->name && supported(*k)) return k;
    return nullptr;
}

const char* environment() {
    const char* env = std::getenv("MARGINKERNEL_SIMD");
    return env && *env ? env : nullptr;
}

const Kernels* initial_choice() {
    if (const char* env = environment())
        if (const Kernels* k = find(env)) return k;
    for (const Kernels* k : all_targets)
        if (supported(*k)) return k;
    return &detail::kernels_baseline;
}

std::atomic<const Kernels*>& active() {
    static std::atomic<const Kernels*> choice{initial_choice()};
    return choice;
}

}  // namespace

namespace detail {
const Kernels& active_kernels() noexcept { return *active().load(std::memory_order_relaxed); }
}  // namespace detail

std::vector<std::string> available_simd_targets() {
    std::vector<std::string> names;
    for (const Kernels* k : all_targets)
        if (supported(*k)) names.emplace_back(k->name);
    return names;
}

SimdEnvironment simd_environment() {
    SimdEnvironment e;
    if (const char* env = environment()) {
        e.value = env;
        e.known = e.value == "baseline" || e.value == "avx2" || e.value == "avx512";
        e.honoured = find(e.value) != nullptr;
    }
    return e;
}

double stream_seconds(double* x, std::size_t n, int passes, bool write) {
    const Kernels& k = detail::active_kernels();
    double best = 1e300;
    volatile double sink = 0.0;  // keeps the reads from being optimised away
    for (int p = 0; p < std::max(passes, 1); ++p) {
        const auto t0 = std::chrono::steady_clock::now();
        if (write)
            k.stream_write(x, n, static_cast<double>(p));
        else
            sink = sink + k.stream_read(x, n);
        const std::chrono::duration<double> dt = std::chrono::steady_clock::now() - t0;
        best = std::min(best, dt.count());
    }
    return best;
}

double mul_add_seconds(const double* x, std::size_t n, int passes) {
    if (n < 64) throw InvalidInput("x", -1, "needs at least 64 values, got " + std::to_string(n));
    const Kernels& k = detail::active_kernels();
    double best = 1e300;
    volatile double sink = 0.0;  // keeps the sums from being optimised away
    for (int t = 0; t < 5; ++t) {
        const auto t0 = std::chrono::steady_clock::now();
        sink = sink + k.mul_add(x, n, 1.0 + 0x1p-20, std::max(passes, 1));
        const std::chrono::duration<double> dt = std::chrono::steady_clock::now() - t0;
        best = std::min(best, dt.count());
    }
    return best;
}

std::string simd_target() { return detail::active_kernels().name; }

void select_simd_target(const std::string& name) {
    const Kernels* k = find(name);
    if (!k) {
        std::string known;
        for (const auto& n : available_simd_targets()) known += (known.empty() ? "" : ", ") + n;
        throw InvalidInput("simd_target", -1,
                           "'" + name + "' is not available on this build and CPU (have: " + known + ")");
    }
    active().store(k, std::memory_order_relaxed);
}

std::size_t data_cache_bytes(int level) {
    const detail::CacheSizes& c = detail::cache_sizes();
    return level == 1 ? c.l1 : level == 2 ? c.l2 : level == 3 ? c.l3 : 0;
}

}  // namespace marginkernel
