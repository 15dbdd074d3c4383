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

// x with its positive lanes multiplied by g (g * x where 0 < x, else x): the gain haircut of the
// reductions, one masked multiply on AVX-512 rather than Eigen's compare-and-select through a mask
// packet. The same products as the scalar code, so every target gives the same bits.
inline Pk scale_gains(const Pk& x, const Pk& g) {
#if defined(__AVX512F__)
    return _mm512_mask_mul_pd(x, _mm512_cmp_pd_mask(x, _mm512_setzero_pd(), _CMP_GT_OQ), g, x);
#elif defined(__AVX__)
    return _mm256_blendv_pd(x, _mm256_mul_pd(g, x), _mm256_cmp_pd(x, _mm256_setzero_pd(), _CMP_GT_OQ));
#elif defined(__SSE2__)
    const __m128d gains = _mm_cmpgt_pd(x, _mm_setzero_pd());
    return _mm_or_pd(_mm_and_pd(gains, _mm_mul_pd(g, x)), _mm_andnot_pd(gains, x));
#else
    return ei::pselect(ei::pcmp_lt(c(0.0), x), ei::pmul(g, x), x);
#endif
}

// One bit per lane (lane 0 the lowest) of the comparison v < t, v <= t or v == t (ordered: false
// for NaN; -0.0 equals 0.0).
enum class Cmp { lt, le, eq };
template <Cmp op>
inline unsigned compare_bits(const Pk& v, const Pk& t) {
#if defined(__AVX512F__)
    constexpr int imm = op == Cmp::lt ? _CMP_LT_OQ : op == Cmp::le ? _CMP_LE_OQ : _CMP_EQ_OQ;
    return _mm512_cmp_pd_mask(v, t, imm);
#elif defined(__AVX__)
    constexpr int imm = op == Cmp::lt ? _CMP_LT_OQ : op == Cmp::le ? _CMP_LE_OQ : _CMP_EQ_OQ;
    return static_cast<unsigned>(_mm256_movemask_pd(_mm256_cmp_pd(v, t, imm)));
#elif defined(__SSE2__)
    const __m128d m = op == Cmp::lt ? _mm_cmplt_pd(v, t) : op == Cmp::le ? _mm_cmple_pd(v, t) : _mm_cmpeq_pd(v, t);
    return static_cast<unsigned>(_mm_movemask_pd(m));
#else
    double lanes[L], target[L];
    ei::pstoreu(lanes, v);
    ei::pstoreu(target, t);
    unsigned bits = 0;
    for (std::size_t j = L; j-- > 0;) {
        const bool hit = op == Cmp::lt ? lanes[j] < target[j] : op == Cmp::le ? lanes[j] <= target[j] : lanes[j] == target[j];
        bits = bits << 1 | (hit ? 1u : 0u);
    }
    return bits;
#endif
}

// Stores the lanes of v whose bit is set, in lane order, at out[0, popcount(bits)); returns that
// count. Without branches (which lanes are set is data, unpredictable), and writing all of
// out[0, L): AVX-512 compresses in a register (a compressing store to memory is slow on Intel
// cores); the other targets store every lane and advance by its bit.
inline std::size_t store_selected(const Pk& v, unsigned bits, double* out) {
#if defined(__AVX512F__)
    _mm512_storeu_pd(out, _mm512_maskz_compress_pd(static_cast<__mmask8>(bits), v));
    return static_cast<std::size_t>(__builtin_popcount(bits));
#else
    double lanes[L];
    ei::pstoreu(lanes, v);
    std::size_t count = 0;
    for (std::size_t j = 0; j < L; ++j) {
        out[count] = lanes[j];
        count += bits >> j & 1u;
    }
    return count;
#endif
}

// The first lane of v equal to m, or L when there is none.
inline std::size_t first_equal(const Pk& v, const Pk& m) {
    const unsigned bits = compare_bits<Cmp::eq>(v, m);
    for (std::size_t j = 0; j < L; ++j)
        if (bits >> j & 1u) return j;
    return L;
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

// Arithmetic probe (see Kernels::mul_add): netting's load, multiply and add per packet, nothing else.
double mul_add(const double* x, std::size_t n, double q, int passes) {
    namespace ei = Eigen::internal;
    using pk::L;
    using pk::Pk;
    Pk acc[8];
    for (auto& a : acc) a = pk::c(0.0);
    const Pk factor = pk::c(q);
    const std::size_t whole = n / (8 * L) * (8 * L);
    for (int p = 0; p < passes; ++p)
        for (std::size_t s = 0; s < whole; s += 8 * L)
            for (std::size_t j = 0; j < 8; ++j)
                acc[j] = ei::padd(acc[j], ei::pmul(factor, ei::ploadu<Pk>(x + s + j * L)));
    double total = 0.0;
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
