// Part of kernels_isa.cpp (Highway-style): the pre-trade what-if of the account book (account.cpp).
// Included once per SIMD target inside namespace marginkernel::detail::<target>::{anonymous}, with
// Eigen renamed for that target; no include guard on purpose. Only plain pointers leave it.

// The pre-trade what-if (see Kernels::whatif_min).
//
// The gain haircut h (h(v) = g * v for v > 0, else v, g >= 0) is non-decreasing, and so is its
// rounded form, so min_s h(v_s) = h(min_s v_s) exactly: the loop needs only the minimum of
// v = p + q * r and its first index. When that minimum is < 0 (a loss) the first scenario attaining
// min h is the same; when it is >= 0 (no loss) and g != 1 the first scenario with h(v_s) equal to
// it may come earlier (e.g. g = 0 maps every gain to 0), and a short scalar scan finds it.
//
// The loop: the values of each group of 4 packets are reduced to a packet minimum (pmin tree) and
// two independent accumulators keep, per lane, the running minimum and the start of the first
// group that reached it; whole packets left over are tracked per packet by a third. The first
// scenario attaining the overall minimum is then found by recomputing the single group that must
// hold it (same arithmetic, so the same bits), and the last n % L scenarios are scalar.
//
// p + q * r is one explicit fused multiply-add when this target has FMA and an unfused multiply
// then add when it has not, in the packets and in the scalar code alike, and whatif_fill updates P
// with exactly the same operation. So the compiler's own contraction choices can never make a
// what-if and the fill it predicts round differently.
#if defined(__FMA__)
constexpr bool kWhatifFused = true;
#else
constexpr bool kWhatifFused = false;
#endif

namespace whatif {

namespace ei = Eigen::internal;
using Pk = ei::packet_traits<double>::type;
constexpr std::size_t L = static_cast<std::size_t>(ei::packet_traits<double>::size);
constexpr std::size_t G = 4 * L;  // scenarios per group
constexpr double kInf = std::numeric_limits<double>::infinity();

inline Pk madd(const Pk& q, const Pk& r, const Pk& p) {
    if constexpr (kWhatifFused)
        return ei::pmadd(q, r, p);
    else
        return ei::padd(p, ei::pmul(q, r));
}
inline double madd(double q, double r, double p) { return kWhatifFused ? std::fma(q, r, p) : p + q * r; }

// best = min(best, x) per lane, and where = at in the lanes where x was strictly smaller.
inline void track(const Pk& x, const Pk& at, Pk& best, Pk& where) {
#if defined(__AVX512F__)
    const __mmask8 lt = _mm512_cmp_pd_mask(x, best, _CMP_LT_OQ);
    best = _mm512_mask_mov_pd(best, lt, x);
    where = _mm512_mask_mov_pd(where, lt, at);
#else
    const Pk lt = ei::pcmp_lt(x, best);
    best = ei::pselect(lt, x, best);
    where = ei::pselect(lt, at, where);
#endif
}

// min_s p[s] + q * r[s] and the first s attaining it.
double min_of(const double* p, const double* r, double q, std::size_t n, std::size_t& at) {
    const Pk pq = ei::pset1<Pk>(q);
    const auto value = [&](std::size_t s) { return madd(pq, ei::ploadu<Pk>(r + s), ei::ploadu<Pk>(p + s)); };
    const auto group = [&](std::size_t s) {
        return ei::pmin(ei::pmin(value(s), value(s + L)), ei::pmin(value(s + 2 * L), value(s + 3 * L)));
    };
    const Pk inf = ei::pset1<Pk>(kInf), zero = ei::pset1<Pk>(0.0);
    Pk best0 = inf, best1 = inf, best2 = inf, where0 = zero, where1 = zero, where2 = zero;
    std::size_t s = 0;
    for (; s + 2 * G <= n; s += 2 * G) {
        track(group(s), ei::pset1<Pk>(static_cast<double>(s)), best0, where0);
        track(group(s + G), ei::pset1<Pk>(static_cast<double>(s + G)), best1, where1);
    }
    const std::size_t grouped = s;
    for (; s + L <= n; s += L) track(value(s), ei::pset1<Pk>(static_cast<double>(s)), best2, where2);

    // The smallest lane value, and the earliest group (or packet) in which a lane first reached it:
    // each lane records the first group holding its minimum, so the earliest such group holds the
    // first scenario overall.
    double min_value = kInf, start = 0.0;
    double lane_value[L], lane_start[L];
    const Pk* bests[3] = {&best0, &best1, &best2};
    const Pk* wheres[3] = {&where0, &where1, &where2};
    for (int k = 0; k < 3; ++k) {
        ei::pstoreu(lane_value, *bests[k]);
        ei::pstoreu(lane_start, *wheres[k]);
        for (std::size_t j = 0; j < L; ++j)
            if (lane_value[j] < min_value || (lane_value[j] == min_value && lane_start[j] < start)) {
                min_value = lane_value[j];
                start = lane_start[j];
            }
    }
    double found = kInf;
    at = 0;
    if (min_value < kInf) {
        const auto first = static_cast<std::size_t>(start);
        const std::size_t last = std::min(first + (first < grouped ? G : L), s);
        for (std::size_t t = first; t < last; ++t)
            if (madd(q, r[t], p[t]) == min_value) {
                found = min_value;
                at = t;
                break;
            }
    }
    for (; s < n; ++s) {
        const double x = madd(q, r[s], p[s]);
        if (x < found) {
            found = x;
            at = s;
        }
    }
    return found;
}

}  // namespace whatif

double whatif_min(const double* p, const double* r, double q, double gain_factor, std::size_t n,
                  std::int32_t* worst) {
    std::size_t at = 0;
    const double m = whatif::min_of(p, r, q, n, at);
    if (m < 0.0 || gain_factor == 1.0) {
        *worst = static_cast<std::int32_t>(at);
        return m;
    }
    // No loss: min h = h(m) = g * m, first reached at or before `at`.
    const double target = gain_factor * m;
    for (std::size_t s = 0; s < at; ++s) {
        const double v = whatif::madd(q, r[s], p[s]);
        if ((v > 0.0 ? gain_factor * v : v) == target) {
            at = s;
            break;
        }
    }
    *worst = static_cast<std::int32_t>(at);
    return target;
}

// p[s] = p[s] + q * r[s], rounded exactly as whatif_min rounds it (see above).
void whatif_fill(double* p, const double* r, double q, std::size_t n) {
    using whatif::L;
    const whatif::Pk pq = whatif::ei::pset1<whatif::Pk>(q);
    std::size_t s = 0;
    for (; s + L <= n; s += L)
        whatif::ei::pstoreu(p + s, whatif::madd(pq, whatif::ei::ploadu<whatif::Pk>(r + s),
                                                whatif::ei::ploadu<whatif::Pk>(p + s)));
    for (; s < n; ++s) p[s] = whatif::madd(q, r[s], p[s]);
}
