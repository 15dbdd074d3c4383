// Internal: the data cache sizes of the CPU, read once at run time, so that kernels can size their
// tiles to the machine they run on rather than to a compile-time guess.
#pragma once

#include <cstddef>

namespace marginkernel::detail {

struct CacheSizes {
    std::size_t l1 = 0;  // bytes of level-1 data cache per core
    std::size_t l2 = 0;  // bytes of level-2 cache per core
    std::size_t l3 = 0;  // bytes of the last-level cache (shared)
};

// Read once (thread-safe) from Linux sysfs (/sys/devices/system/cpu/cpu0/cache/index*/), else from
// sysconf(_SC_LEVEL1_DCACHE_SIZE, ...) where the C library provides it; a level neither reports
// (or reports as 0 or absurd) takes the fallback 32 KiB L1 / 1 MiB L2 / 8 MiB L3, sizes common to
// x86-64 and AArch64 server cores, raised so that L1 <= L2 <= L3. The environment variable
// MARGINKERNEL_L2_BYTES, when set to a whole number of bytes in [64 KiB, 64 MiB], replaces the L2
// (to run the tiles of another machine). A wrong guess costs speed, never a result: no kernel's
// result depends on its tile.
const CacheSizes& cache_sizes() noexcept;

}  // namespace marginkernel::detail
