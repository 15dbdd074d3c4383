// Part of kernels_isa.cpp (Highway-style): SIMD packet helpers shared by every stage, and the bandwidth probes.
// Included once per SIMD target inside namespace marginkernel::detail::<target>::{anonymous}, with
// Eigen renamed for that target; no include guard on purpose. Only plain pointers leave it.

namespace pk {

namespace ei = Eigen::internal;
using Pk = ei::packet_traits<double>::type;
constexpr std::size_t L = static_cast<std::size_t>(ei::packet_traits<double>::size);

inline Pk c(double v) { return ei::pset1<Pk>(v); }

// Whether every lane of a comparison mask (all bits set or clear per lane) is set.
inline bool all(const Pk& mask) {
#if defined(__AVX512F__)
    const __m512i bits = _mm512_castpd_si512(mask);
    return _mm512_test_epi64_mask(bits, bits) == 0xFF;
#elif defined(__AVX__)
    return _mm256_movemask_pd(mask) == 0xF;
#elif defined(__SSE2__)
    return _mm_movemask_pd(mask) == 0x3;
#else
    return ei::predux_min(ei::pselect(mask, c(1.0), c(0.0))) > 0.0;
#endif
}
}  // namespace pk

// Whether every lane of v is finite (x - x is 0 for finite x, NaN for inf and NaN).
inline pk::Pk finite_lanes(const pk::Pk& v) {
    return Eigen::internal::pcmp_eq(Eigen::internal::psub(v, v), pk::c(0.0));
}

// A store that bypasses the caches, to an address aligned to the packet (netting streams its output
// with it, and the write probe measures it). A plain store where the instruction set has no such store.
inline void store_stream(double* d, const pk::Pk& v) {
#if defined(__AVX512F__)
    _mm512_stream_pd(d, v);
#elif defined(__AVX__)
    _mm256_stream_pd(d, v);
#elif defined(__SSE2__)
    _mm_stream_pd(d, v);
#else
    Eigen::internal::pstore(d, v);
#endif
}
// Orders the streamed stores before the later ones (the caller's hand-over to other threads).
inline void stream_fence() {
#if defined(__SSE2__)
    _mm_sfence();
#endif
}
inline void store_stream(double* d, double v) { *d = v; }

// Bandwidth probes (see Kernels::stream_read / stream_write).
double stream_read(const double* x, std::size_t n) {
    namespace ei = Eigen::internal;
    using pk::L;
    using pk::Pk;
    Pk acc[8];
    for (auto& a : acc) a = pk::c(0.0);
    std::size_t s = 0;
    for (; s + 8 * L <= n; s += 8 * L)
        for (std::size_t j = 0; j < 8; ++j) acc[j] = ei::padd(acc[j], ei::ploadu<Pk>(x + s + j * L));
    double total = 0.0;
    for (; s < n; ++s) total += x[s];
    for (const auto& a : acc) total += ei::predux(a);
    return total;
}

void stream_write(double* x, std::size_t n, double value) {
    using pk::L;
    const pk::Pk v = pk::c(value);
    std::size_t s = 0;
    // the streamed stores of the netting kernel's output, from the first packet-aligned element
    for (; s < n && reinterpret_cast<std::uintptr_t>(x + s) % sizeof(pk::Pk) != 0; ++s) x[s] = value;
    for (; s + L <= n; s += L) store_stream(x + s, v);
    for (; s < n; ++s) x[s] = value;
    stream_fence();
}
