// The hot loops of every stage, compiled once per SIMD target. CMake builds this file several
// times with MK_TARGET set to baseline / avx2 / avx512 and the matching -m flags.
//
// Each copy renames Eigen's namespace so that no inline Eigen function compiled for one target can
// be merged by the linker into another target's code (which would run AVX-512 instructions on a
// CPU without them). Only plain pointers leave this file.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#ifndef MK_TARGET
#error "MK_TARGET must name the SIMD target (baseline, avx2, avx512)"
#endif
#define MK_CAT2(a, b) a##b
#define MK_CAT(a, b) MK_CAT2(a, b)
#define MK_STR2(a) #a
#define MK_STR(a) MK_STR2(a)
#define Eigen MK_CAT(marginkernel_eigen_, MK_TARGET)

#include <Eigen/Core>

#include "kernels.hpp"

namespace marginkernel::detail {
namespace MK_TARGET {
namespace {


// Linear instruments are processed in fixed-size blocks of scenarios: the temporaries live on the
// stack (no allocation) and each expression is one vectorised loop.
constexpr std::size_t kBlock = 64;
using Block = Eigen::Array<double, kBlock, 1>;
using ConstBlockMap = Eigen::Map<const Block, Eigen::Unaligned>;

constexpr double kDaysPerYear = 365.0;

// Loads n <= kBlock values, padding the rest with `pad` so padded lanes stay finite.
inline Block load(const double* p, std::size_t n, double pad) {
    if (n == kBlock) return ConstBlockMap(p);
    Block b = Block::Constant(pad);
    for (std::size_t k = 0; k < n; ++k) b[k] = p[k];
    return b;
}

// Per-instrument constants of an option, computed once per row.
struct Option {
    double forward, log_moneyness, forward_over_strike, strike, sign, discount, vol, expiry, vol_scale;
};

// tau^p of DESIGN §3: tau = 30 days / max(DTE, floor), p = short power if DTE <= 30 days.
inline double vol_scale(double expiry_years, const ScenariosView& sc) {
    const double dte = expiry_years * kDaysPerYear;
    const double tau = 30.0 / std::max(dte, sc.tau_floor_days);
    return std::pow(tau, dte <= 30.0 ? sc.short_power : sc.long_power);
}

// The option kernel works one SIMD packet of scenarios at a time with Eigen's packet functions,
// so that a whole valuation stays in registers (Eigen array expressions over blocks of scenarios
// spill every temporary to the stack and were measurably slower: bench/results/design.json).
// Operations are unfused (-ffp-contract=off) except the two Horner polynomials of the tail ratio and
// Eigen's exp, which use pmadd (fused on FMA targets: the cross-target bound of docs/determinism.md).
// The value now and the scenarios share this code path, and normal_cdf_array evaluates the same
// functions, so the accuracy tests measure what prices use.
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

// The standard normal CDF.
// Why not erfc: Eigen 3.4 vectorises exp, log and sqrt for double but not erf/erfc, and glibc's
// vector maths is only reached under -ffast-math. So N(x) is Hart's (1968) double-precision
// algorithm as given by West (2005), "Better approximations to cumulative normal functions":
// N(-|x|) = exp(-x^2/2) * P(|x|) / Q(|x|) for |x| < 7.07, exp(-x^2/2) / (sqrt(2 pi) * CF(|x|)) with
// a five-term continued fraction CF for 7.07 <= |x| < 37, and 0 beyond; N(x) = 1 - N(-x) for x > 0.
// The continued fraction is expanded into one ratio of polynomials and both branches are selected
// before a single division (computed only for packets that reach the far tail), so there is one exp
// and one division per value (or, with normal_tail_ratio, one division shared by several values).
// Measured maximum error against mpmath at 50 digits (tests/test_normal_cdf.py): absolute 2.2e-16
// over [-40, 40]; relative, for N(x) on x <= 0: 5.0e-16 on [-1, 0], 6.9e-14 on [-3.5, 0], 2.9e-9 on
// the rational branch [-7.07, 0], 8.9e-9 on (-37, 0] (continued fraction, near x = -7.8); N = 0 for
// x <= -37 (true value < 5.8e-300). The tail error is the approximation's own, not rounding.
//
// normal_tail_ratio, for ax = |x| >= 0: N(-ax) = exp(-ax^2/2) * numer / denom (numer = 0 from 37 on).
inline void normal_tail_ratio(const Pk& ax_in, Pk& numer, Pk& denom) {
    using namespace ei;
    const Pk ax = pmin(ax_in, c(40.0));
    Pk p = pmadd(c(0.0352624965998911), ax, c(0.700383064443688));
    p = pmadd(p, ax, c(6.37396220353165));
    p = pmadd(p, ax, c(33.912866078383));
    p = pmadd(p, ax, c(112.079291497871));
    p = pmadd(p, ax, c(221.213596169931));
    p = pmadd(p, ax, c(220.206867912376));
    Pk q = pmadd(c(0.0883883476483184), ax, c(1.75566716318264));
    q = pmadd(q, ax, c(16.064177579207));
    q = pmadd(q, ax, c(86.7807322029461));
    q = pmadd(q, ax, c(296.564248779674));
    q = pmadd(q, ax, c(637.333633378831));
    q = pmadd(q, ax, c(793.826512519948));
    q = pmadd(q, ax, c(440.413735824752));
    constexpr double cut = 7.07106781186547;
    const Pk near = pcmp_lt(ax, c(cut));
    if (all(near)) {  // the common case: no lane in the far tail
        numer = p;
        denom = q;
        return;
    }
    Pk cf_num = padd(ax, c(0.65));
    Pk cf_den = c(1.0);
    for (const double k : {4.0, 3.0, 2.0, 1.0}) {
        const Pk next = padd(pmul(ax, cf_num), pmul(c(k), cf_den));
        cf_den = cf_num;
        cf_num = next;
    }
    constexpr double sqrt_2pi = 2.5066282746310002;
    numer = pselect(near, p, pselect(pcmp_lt(ax, c(37.0)), cf_den, c(0.0)));
    denom = pselect(near, q, pmul(c(sqrt_2pi), cf_num));
}

inline Pk shocked_vol(const Option& o, const Pk& shift, const ScenariosView& sc) {
    using namespace ei;
    Pk vol = c(o.vol);
    switch (sc.vol_shock) {
        case VolShockKind::none: break;
        case VolShockKind::multiplicative:
            vol = pmul(c(o.vol), pmax(padd(c(1.0), pmul(shift, c(o.vol_scale))), c(0.0)));
            break;
        case VolShockKind::additive: vol = pmax(padd(c(o.vol), pmul(shift, c(o.vol_scale))), c(0.0)); break;
        case VolShockKind::relative: vol = pmul(c(o.vol), pmax(padd(c(1.0), shift), c(0.0))); break;
    }
    if (sc.vol_up_floor > 0.0) vol = pselect(pcmp_lt(c(0.0), shift), pmax(vol, c(sc.vol_up_floor)), vol);
    return vol;
}

// Black-76 value of one unit (before the contract multiplier) in each lane's scenario.
// Two divisions per value: 1/(sigma sqrt T), and one shared by the two normal CDFs.
inline Pk black76(const Option& o, const Pk& m, const Pk& log_m, const Pk& vol, const Pk& sqrt_t) {
    using namespace ei;
    const Pk zero = c(0.0), one = c(1.0), sign = c(o.sign);
    const Pk sd = pmul(vol, sqrt_t);  // sigma * sqrt(T)
    const Pk fwd = pmul(c(o.forward), m);
    const Pk positive = pcmp_lt(zero, sd);
    const Pk safe_sd = pselect(positive, sd, one);
    const Pk d1 = padd(pdiv(padd(c(o.log_moneyness), log_m), safe_sd), pmul(c(0.5), safe_sd));
    const Pk x1 = pmul(sign, d1);  // N(x1) and N(x2) are the CDFs of sign * d1, sign * d2
    const Pk x2 = pmul(sign, psub(d1, safe_sd));
    const Pk a1 = pmin(pabs(x1), c(40.0)), a2 = pmin(pabs(x2), c(40.0));
    Pk num1, den1, num2, den2;
    normal_tail_ratio(a1, num1, den1);
    normal_tail_ratio(a2, num2, den2);
    const Pk shared = pdiv(one, pmul(den1, den2));
    // exp(-d2^2/2) = exp(-d1^2/2) * F_s/K exactly (d1^2 - d2^2 = 2 ln(F_s/K)), used in lanes where
    // both are far from under/overflow (|x| < 37 keeps F_s/K and exp(-d1^2/2) normal doubles); the
    // rare other lanes take their own exp. Each lane's choice depends on that lane only, so a
    // scenario's value never depends on which scenarios share its packet.
    const Pk e1 = pexp(pmul(pmul(c(-0.5), a1), a1));
    Pk e2 = pmul(e1, pmul(c(o.forward_over_strike), m));
    const Pk shared_ok = pand(pcmp_lt(a1, c(37.0)), pcmp_lt(a2, c(37.0)));
    if (!all(shared_ok)) e2 = pselect(shared_ok, e2, pexp(pmul(pmul(c(-0.5), a2), a2)));
    const Pk tail1 = pmul(pmul(pmul(e1, num1), den2), shared);  // N(-|x1|)
    const Pk tail2 = pmul(pmul(pmul(e2, num2), den1), shared);
    const Pk n1 = pselect(pcmp_lt(zero, x1), psub(one, tail1), tail1);
    const Pk n2 = pselect(pcmp_lt(zero, x2), psub(one, tail2), tail2);
    const Pk value = pmul(sign, psub(pmul(fwd, n1), pmul(c(o.strike), n2)));
    const Pk intrinsic = pmax(pmul(sign, psub(fwd, c(o.strike))), zero);
    return pmul(c(o.discount), pselect(positive, value, intrinsic));
}

}  // namespace pk

// Whether every lane of v is finite (x - x is 0 for finite x, NaN for inf and NaN).
inline pk::Pk finite_lanes(const pk::Pk& v) {
    return Eigen::internal::pcmp_eq(Eigen::internal::psub(v, v), pk::c(0.0));
}

std::size_t revalue_rows(const InstrumentsView& in, const ScenariosView& sc, const double* log_multiplier,
                         const double* inv_multiplier, std::size_t begin, std::size_t end, double* risk,
                         double* base_value) {
    namespace ei = Eigen::internal;
    using pk::Pk;
    using pk::L;
    const std::size_t ns = sc.n_scenarios;
    std::size_t first_bad = kNone;
    for (std::size_t i = begin; i < end; ++i) {
        const auto kind = static_cast<Kind>(in.kind[i]);
        const bool inverse = static_cast<Settlement>(in.settlement[i]) == Settlement::inverse;
        const std::size_t u = static_cast<std::size_t>(in.risk_unit[i]);
        const double* m = sc.price_multiplier + u * ns;
        const double* log_m = log_multiplier + u * ns;
        const double* inv_m = inv_multiplier + u * ns;
        const double* shift = sc.vol_shift ? sc.vol_shift + u * ns : nullptr;
        const double mult = in.multiplier[i];
        const double fwd = in.forward[i];
        const double spot = sc.spot[u];
        const double inv_spot = 1.0 / spot;
        double* out = risk + i * ns;

        if (kind != Kind::call && kind != Kind::put) {
            // Linear: mult * (F_s - F). Inverse (coin-settled, mult = quote notional):
            // mult * (1/F - 1/F_s). Inverse spot is the coin itself: no P&L in coin.
            for (std::size_t s0 = 0; s0 < ns; s0 += kBlock) {
                const std::size_t n = std::min(kBlock, ns - s0);
                const Block mb = load(m + s0, n, 1.0);
                Block pnl;
                if (!inverse)
                    pnl = mult * (fwd * mb - fwd);
                else if (kind == Kind::spot)
                    pnl = Block::Zero();
                else
                    pnl = mult * (1.0 / fwd - 1.0 / (fwd * mb));
                Eigen::Map<Block, Eigen::Unaligned>(out + s0).head(n) = pnl.head(n);
                if (first_bad == kNone && !pnl.head(n).isFinite().all()) first_bad = i;
            }
            if (base_value) base_value[i] = 0.0;
            continue;
        }

        Option o{};
        o.forward = fwd;
        o.strike = in.strike[i];
        o.forward_over_strike = fwd / o.strike;
        o.log_moneyness = std::log(o.forward_over_strike);
        o.sign = kind == Kind::call ? 1.0 : -1.0;
        o.discount = in.discount[i];
        o.vol = in.vol[i];
        o.expiry = in.expiry[i];
        o.vol_scale = vol_scale(o.expiry, sc);

        // Value now, through the very same code path as the scenarios, so that a scenario with
        // m = 1, no vol shift and no look-ahead revalues to exactly zero P&L.
        const double sqrt_t_now = std::sqrt(std::max(o.expiry, 0.0));
        const Pk p_mult = pk::c(mult), p_sqrt_t_now = pk::c(sqrt_t_now), p_inv_spot = pk::c(inv_spot);
        const Pk now = ei::pmul(
            p_mult, pk::black76(o, pk::c(1.0), pk::c(0.0), pk::shocked_vol(o, pk::c(0.0), sc), p_sqrt_t_now));
        const double value_now = ei::pfirst(now);
        const double base = inverse ? value_now * inv_spot : value_now;  // as the scenarios below
        if (base_value) base_value[i] = base;
        const Pk p_base = pk::c(base), p_expiry = pk::c(o.expiry);

        // One packet of scenarios from s; the last, partial packet is padded (m = 1, ln m = 0,
        // no shifts) so that its padded lanes stay finite.
        const auto one_packet = [&](const double* pm, const double* plm, const double* pinv,
                                    const double* pshift, const double* ptime) {
            const Pk mb = ei::ploadu<Pk>(pm);
            const Pk vb = pshift ? ei::ploadu<Pk>(pshift) : pk::c(0.0);
            const Pk sqrt_t = ptime ? ei::psqrt(ei::pmax(ei::psub(p_expiry, ei::ploadu<Pk>(ptime)), pk::c(0.0)))
                                    : p_sqrt_t_now;
            const Pk value =
                ei::pmul(p_mult, pk::black76(o, mb, ei::ploadu<Pk>(plm), pk::shocked_vol(o, vb, sc), sqrt_t));
            // Inverse options are worth their quote value divided by the index, now and in the
            // scenario; their coin P&L is the difference (DESIGN §3).
            return inverse ? ei::psub(ei::pmul(ei::pmul(value, ei::ploadu<Pk>(pinv)), p_inv_spot), p_base)
                           : ei::psub(value, p_base);
        };
        const double* time_shift = sc.time_shift;
        std::size_t s = 0;
        Pk finite = finite_lanes(p_base);
        for (; s + L <= ns; s += L) {
            const Pk v = one_packet(m + s, log_m + s, inv_m + s, shift ? shift + s : nullptr,
                                    time_shift ? time_shift + s : nullptr);
            finite = ei::pand(finite, finite_lanes(v));
            ei::pstoreu(out + s, v);
        }
        if (s < ns) {
            const std::size_t n = ns - s;
            double bm[L], blm[L], binv[L], bshift[L], btime[L], res[L];
            for (std::size_t k = 0; k < L; ++k) {
                const bool in_range = k < n;
                bm[k] = in_range ? m[s + k] : 1.0;
                blm[k] = in_range ? log_m[s + k] : 0.0;
                binv[k] = in_range ? inv_m[s + k] : 1.0;
                bshift[k] = in_range && shift ? shift[s + k] : 0.0;
                btime[k] = in_range && time_shift ? time_shift[s + k] : 0.0;
            }
            ei::pstoreu(res, one_packet(bm, blm, binv, shift ? bshift : nullptr, time_shift ? btime : nullptr));
            for (std::size_t k = 0; k < n; ++k) {
                out[s + k] = res[k];
                if (!std::isfinite(res[k])) finite = pk::c(0.0);
            }
        }
        if (first_bad == kNone && !pk::all(finite)) first_bad = i;
    }
    return first_bad;
}

// y += a * x (the netting tail).
void axpy(double* y, const double* x, double a, std::size_t n) {
    Eigen::Map<Eigen::ArrayXd>(y, static_cast<Eigen::Index>(n)) +=
        a * Eigen::Map<const Eigen::ArrayXd>(x, static_cast<Eigen::Index>(n));
}

// The normal CDF exactly as black76 evaluates it (same packet functions), for accuracy tests.
void normal_cdf_array(const double* x, double* out, std::size_t n) {
    namespace ei = Eigen::internal;
    using pk::c;
    using pk::L;
    using pk::Pk;
    const auto cdf = [](const Pk& v) {
        const Pk ax = ei::pmin(ei::pabs(v), c(40.0));
        Pk numer, denom;
        pk::normal_tail_ratio(ax, numer, denom);
        const Pk lower = ei::pdiv(ei::pmul(ei::pexp(ei::pmul(ei::pmul(c(-0.5), ax), ax)), numer), denom);
        return ei::pselect(ei::pcmp_lt(c(0.0), v), ei::psub(c(1.0), lower), lower);  // N(-|x|) or 1 - it
    };
    std::size_t s = 0;
    for (; s + L <= n; s += L) ei::pstoreu(out + s, cdf(ei::ploadu<Pk>(x + s)));
    if (s < n) {
        double buf[L] = {};
        for (std::size_t k = 0; s + k < n; ++k) buf[k] = x[s + k];
        ei::pstoreu(buf, cdf(ei::ploadu<Pk>(buf)));
        for (std::size_t k = 0; s + k < n; ++k) out[s + k] = buf[k];
    }
}

// Scenario-blocked netting. For a block of kNetPackets SIMD packets of scenarios, the slice
// R[:, block] stays in cache while every account's positions are summed into accumulators held in
// registers (explicit packets: the compiler will not keep an Eigen array in registers across the
// loop); each account's output block is written once per run of positions in one risk unit.
// Products are rounded before they are added (no FMA), like the reference, so that a position and
// its exact opposite cancel exactly.
using Packet = Eigen::internal::packet_traits<double>::type;
constexpr std::size_t kLanes = static_cast<std::size_t>(Eigen::internal::packet_traits<double>::size);
constexpr std::size_t kNetPackets = 8;  // 64 scenarios on AVX-512, 32 on AVX2
constexpr std::size_t kNetBlock = kNetPackets * kLanes;
constexpr std::int64_t kNetAhead = 4;  // positions ahead whose risk slice is prefetched

std::size_t net_accounts(const RiskArraysView& r, const PositionsView& p, std::size_t begin,
                         std::size_t end, double* pnl) {
    namespace ei = Eigen::internal;
    if (begin >= end) return kNone;  // nothing to net: allocate nothing (n_units may be huge)
    std::size_t first_bad = kNone;  // an account whose P&L overflowed (finite inputs, huge values)
    const std::size_t ns = r.n_scenarios;
    const std::size_t units = r.n_units;
    const std::size_t row = units * ns;
    // Rows (account, unit) without positions are zero; every other row is written by plain stores
    // the first time a block of it is reached and accumulated after that, so the output is
    // neither cleared nor read back in the common case of one run of positions per risk unit.
    std::vector<std::int64_t> mark(units, -1);
    for (std::size_t a = begin; a < end; ++a) {
        const auto tag = static_cast<std::int64_t>(a);
        for (auto k = p.account_start[a]; k < p.account_start[a + 1]; ++k)
            mark[static_cast<std::size_t>(r.risk_unit[p.instrument[k]])] = tag;
        for (std::size_t u = 0; u < units; ++u)
            if (mark[u] != tag) std::fill(pnl + a * row + u * ns, pnl + a * row + (u + 1) * ns, 0.0);
    }
    std::fill(mark.begin(), mark.end(), -1);
    std::int64_t tag = 0;
    const std::size_t full = ns - ns % kNetBlock;
    const std::int64_t k_last = p.account_start[end] - 1;  // the last position of these accounts
    for (std::size_t s0 = 0; s0 < full; s0 += kNetBlock) {
        for (std::size_t a = begin; a < end; ++a, ++tag) {
            auto k = p.account_start[a];
            const auto k_end = p.account_start[a + 1];
            std::size_t unit = k < k_end ? static_cast<std::size_t>(r.risk_unit[p.instrument[k]]) : 0;
            while (k < k_end) {
                Packet acc[kNetPackets];
                for (auto& v : acc) v = ei::pset1<Packet>(0.0);
                std::size_t next_unit = unit;
                for (; k < k_end; ++k) {
                    // The slice of a position a few ahead (possibly in the next accounts).
                    const double* ahead =
                        r.risk + static_cast<std::size_t>(p.instrument[std::min(k + kNetAhead, k_last)]) * ns + s0;
                    for (std::size_t j = 0; j < kNetBlock; j += 8) __builtin_prefetch(ahead + j);
                    const double* src = r.risk + static_cast<std::size_t>(p.instrument[k]) * ns + s0;
                    const Packet q = ei::pset1<Packet>(p.quantity[k]);
                    for (std::size_t j = 0; j < kNetPackets; ++j)
                        acc[j] = ei::padd(acc[j], ei::pmul(q, ei::ploadu<Packet>(src + j * kLanes)));
                    if (k + 1 < k_end) {
                        next_unit = static_cast<std::size_t>(r.risk_unit[p.instrument[k + 1]]);
                        if (next_unit != unit) {
                            ++k;
                            break;
                        }
                    }
                }
                double* dst = pnl + a * row + unit * ns + s0;
                if (mark[unit] != tag) {
                    mark[unit] = tag;
                } else {
                    for (std::size_t j = 0; j < kNetPackets; ++j)
                        acc[j] = ei::padd(ei::ploadu<Packet>(dst + j * kLanes), acc[j]);
                }
                Packet finite = finite_lanes(acc[0]);
                for (std::size_t j = 0; j < kNetPackets; ++j) {
                    ei::pstoreu(dst + j * kLanes, acc[j]);
                    finite = ei::pand(finite, finite_lanes(acc[j]));
                }
                if (!pk::all(finite) && a < first_bad) first_bad = a;
                unit = next_unit;
            }
        }
    }
    if (full == ns) return first_bad;
    // The last ns % kNetBlock scenarios: clear the tails of the rows that have positions, then add
    // position by position.
    const auto tail = [&](std::size_t a, std::int64_t k) {
        return pnl + a * row + static_cast<std::size_t>(r.risk_unit[p.instrument[k]]) * ns + full;
    };
    for (std::size_t a = begin; a < end; ++a) {
        for (auto k = p.account_start[a]; k < p.account_start[a + 1]; ++k)
            std::fill(tail(a, k), tail(a, k) + (ns - full), 0.0);
        for (auto k = p.account_start[a]; k < p.account_start[a + 1]; ++k)
            axpy(tail(a, k), r.risk + static_cast<std::size_t>(p.instrument[k]) * ns + full, p.quantity[k],
                 ns - full);
        for (auto k = p.account_start[a]; k < p.account_start[a + 1] && a < first_bad; ++k)
            for (std::size_t s = 0; s < ns - full; ++s)
                if (!std::isfinite(tail(a, k)[s])) first_bad = a;
    }
    return first_bad;
}

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

// worst_loss (see Kernels::worst_loss_rows). Each lane keeps its running minimum of v = w * h(P)
// and the packet where it first reached it (strict <), so the first scenario attaining the overall
// minimum is the smallest index among the lanes holding it; the last ns % L scenarios are scalar.
// v is one multiply (h) and one multiply (w), the same operations as the scalar code, so every
// target returns the same loss and scenario bit for bit.
std::size_t worst_loss_rows(const double* pnl, std::size_t begin, std::size_t end, std::size_t ns,
                            const double* weight, std::size_t weight_rows, double gain_factor, double* loss,
                            std::int32_t* worst) {
    namespace ei = Eigen::internal;
    using pk::c;
    using pk::L;
    using pk::Pk;
    constexpr double inf = std::numeric_limits<double>::infinity();
    const Pk g = c(gain_factor), zero = c(0.0);
    std::size_t first_bad = kNone;
    for (std::size_t r = begin; r < end; ++r) {
        const double* p = pnl + r * ns;
        const double* w = weight ? weight + (r % weight_rows) * ns : nullptr;
        const auto value = [&](std::size_t s) {
            const Pk x = ei::ploadu<Pk>(p + s);
            const Pk h = ei::pselect(ei::pcmp_lt(zero, x), ei::pmul(g, x), x);
            return w ? ei::pmul(ei::ploadu<Pk>(w + s), h) : h;
        };
        Pk best = c(inf), where = zero, finite = finite_lanes(zero);
        std::size_t s = 0;
        for (; s + L <= ns; s += L) {
            const Pk v = value(s);
            finite = ei::pand(finite, finite_lanes(v));
            const Pk lt = ei::pcmp_lt(v, best);
            best = ei::pselect(lt, v, best);
            where = ei::pselect(lt, c(static_cast<double>(s)), where);
        }
        double lane_best[L], lane_where[L];
        ei::pstoreu(lane_best, best);
        ei::pstoreu(lane_where, where);
        double min_value = inf;
        std::size_t at = 0;
        bool ok = pk::all(finite);
        for (std::size_t j = 0; j < L && s > 0; ++j) {
            const std::size_t index = static_cast<std::size_t>(lane_where[j]) + j;
            if (lane_best[j] < min_value || (lane_best[j] == min_value && index < at)) {
                min_value = lane_best[j];
                at = index;
            }
        }
        for (; s < ns; ++s) {
            const double h = p[s] > 0.0 ? gain_factor * p[s] : p[s];
            const double v = w ? w[s] * h : h;
            ok = ok && std::isfinite(v);
            if (v < min_value) {
                min_value = v;
                at = s;
            }
        }
        if (!ok && first_bad == kNone) first_bad = r;
        loss[r] = std::max(0.0, -min_value);
        if (worst) worst[r] = static_cast<std::int32_t>(at);
    }
    return first_bad;
}

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
    namespace ei = Eigen::internal;
    using pk::L;
    const pk::Pk v = pk::c(value);
    std::size_t s = 0;
    for (; s + L <= n; s += L) ei::pstoreu(x + s, v);
    for (; s < n; ++s) x[s] = value;
}

}  // namespace
}  // namespace MK_TARGET

extern const Kernels MK_CAT(kernels_, MK_TARGET);
const Kernels MK_CAT(kernels_, MK_TARGET) = {
    MK_STR(MK_TARGET),
    &MK_TARGET::revalue_rows,
    &MK_TARGET::net_accounts,
    &MK_TARGET::worst_loss_rows,
    &MK_TARGET::normal_cdf_array,
    &MK_TARGET::whatif_min,
    &MK_TARGET::stream_read,
    &MK_TARGET::stream_write,
    &MK_TARGET::whatif_fill,
};

}  // namespace marginkernel::detail
