#include "cache_info.hpp"

#include <cstdlib>
#include <fstream>
#include <string>

#if defined(__unix__) || defined(__APPLE__)
#include <unistd.h>
#endif

namespace marginkernel::detail {

namespace {

constexpr std::size_t kFallbackL1 = std::size_t{32} << 10;
constexpr std::size_t kFallbackL2 = std::size_t{1} << 20;
constexpr std::size_t kFallbackL3 = std::size_t{8} << 20;
constexpr std::size_t kMaxPlausible = std::size_t{1} << 34;  // 16 GiB: anything larger is garbage

std::string read_line(const std::string& path) {
    std::ifstream in(path);
    std::string line;
    if (in) std::getline(in, line);
    return line;
}

// "48K", "2048K", "480M" -> bytes; 0 when unreadable.
std::size_t parse_size(const std::string& text) {
    if (text.empty()) return 0;
    char* end = nullptr;
    const unsigned long long value = std::strtoull(text.c_str(), &end, 10);
    if (end == text.c_str()) return 0;
    std::size_t scale = 1;
    if (*end == 'K') scale = std::size_t{1} << 10;
    if (*end == 'M') scale = std::size_t{1} << 20;
    if (*end == 'G') scale = std::size_t{1} << 30;
    const std::size_t bytes = static_cast<std::size_t>(value) * scale;
    return bytes <= kMaxPlausible ? bytes : 0;
}

void read_sysfs(CacheSizes& c) {
    for (int index = 0; index < 16; ++index) {
        const std::string dir = "/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(index) + "/";
        const std::string level = read_line(dir + "level");
        if (level.empty()) break;
        if (read_line(dir + "type") == "Instruction") continue;
        const std::size_t bytes = parse_size(read_line(dir + "size"));
        if (level == "1" && c.l1 == 0) c.l1 = bytes;
        if (level == "2" && c.l2 == 0) c.l2 = bytes;
        if ((level == "3" || level == "4") && bytes > c.l3) c.l3 = bytes;
    }
}

void read_sysconf([[maybe_unused]] CacheSizes& c) {
#if defined(_SC_LEVEL1_DCACHE_SIZE) && defined(_SC_LEVEL2_CACHE_SIZE) && defined(_SC_LEVEL3_CACHE_SIZE)
    const auto get = [](int name) {
        const long v = sysconf(name);
        return v > 0 && static_cast<unsigned long>(v) <= kMaxPlausible ? static_cast<std::size_t>(v) : 0;
    };
    if (c.l1 == 0) c.l1 = get(_SC_LEVEL1_DCACHE_SIZE);
    if (c.l2 == 0) c.l2 = get(_SC_LEVEL2_CACHE_SIZE);
    if (c.l3 == 0) c.l3 = get(_SC_LEVEL3_CACHE_SIZE);
#endif
}

// MARGINKERNEL_L2_BYTES: the L2 size to tile to instead of this CPU's, to run here the tiles a
// machine with that L2 would choose (bench/bench_net.py: a 512 KiB L2 as on AMD EPYC). Whole bytes
// in [64 KiB, 64 MiB], else ignored.
std::size_t l2_override() {
    const char* text = std::getenv("MARGINKERNEL_L2_BYTES");
    if (text == nullptr || *text < '0' || *text > '9') return 0;
    char* end = nullptr;
    const unsigned long long bytes = std::strtoull(text, &end, 10);
    if (*end != '\0' || bytes < (1ull << 16) || bytes > (1ull << 26)) return 0;
    return static_cast<std::size_t>(bytes);
}

CacheSizes detect() noexcept {
    CacheSizes c;
    try {
        read_sysfs(c);
    } catch (...) {  // an allocation failure reading a file: use what sysconf or the fallback says
    }
    read_sysconf(c);
    if (const std::size_t l2 = l2_override()) c.l2 = l2;
    if (c.l1 < 1024) c.l1 = kFallbackL1;
    if (c.l2 < c.l1) c.l2 = c.l1 > kFallbackL2 ? c.l1 : kFallbackL2;
    if (c.l3 < c.l2) c.l3 = c.l2 > kFallbackL3 ? c.l2 : kFallbackL3;
    return c;
}

}  // namespace

const CacheSizes& cache_sizes() noexcept {
    static const CacheSizes sizes = detect();
    return sizes;
}

}  // namespace marginkernel::detail
