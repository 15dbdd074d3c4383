// Run-time choice of the instruction set for the hot kernels. Each kernel is compiled once per
// target (separate translation units and namespaces) and the best one the CPU supports is used,
// the way NumPy and Highway ship portable binaries.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace marginkernel {

std::vector<std::string> available_simd_targets();  // compiled in and supported by this CPU
std::string simd_target();                          // the one in use
// Selects a target by name ("baseline", "avx2", "avx512"); throws InvalidInput if unavailable.
// Not thread-safe against concurrent kernel calls: call it at start-up. The environment variable
// MARGINKERNEL_SIMD sets the initial choice.
void select_simd_target(const std::string& name);

// What the environment variable MARGINKERNEL_SIMD asked for (empty or unset: nothing, the best
// target the CPU supports is used). `known`: it names a target of this project (baseline, avx2,
// avx512); `honoured`: that target is compiled in and supported by this CPU, and so in use at
// start-up. The library itself never fails over it; the Python module refuses an unknown name at
// import and warns when a known one cannot be honoured (then the best supported target is used).
struct SimdEnvironment {
    std::string value;
    bool known = false;
    bool honoured = false;
};
SimdEnvironment simd_environment();

// The bandwidth probe of the benchmarks (bench/benchutil.py): the best time in seconds, over
// `passes` passes, of one streaming read (write = false) or write (write = true) of x[0..n) with the
// active target's SIMD loads or stores. Benchmarks divide bytes by it to know the machine's ceiling.
double stream_seconds(double* x, std::size_t n, int passes, bool write);

// The arithmetic probe of the benchmarks: the best time in seconds, over 5 tries, of `passes` sweeps
// of acc = acc + q * x over x[0..n) (n >= 64; whole blocks of 8 SIMD packets) with the active
// target's packets: netting's exact multiply then add, with x in L1 when the caller keeps it small.
// Benchmarks divide multiply-adds by it to know the machine's arithmetic ceiling.
double mul_add_seconds(const double* x, std::size_t n, int passes);

// The data cache size in bytes (level 1, 2 or 3; else 0) that the kernels size their tiles from:
// read once from the operating system, with documented fallbacks (cpp/src/cache_info.hpp).
std::size_t data_cache_bytes(int level);

}  // namespace marginkernel
