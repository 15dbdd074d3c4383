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
#include <vector>
#include <limits>

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

#include "normal_cdf.hpp"

// Scenarios are processed in fixed-size blocks: the temporaries live on the stack (no allocation)
// and each expression is one vectorised loop the compiler can keep in registers.
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

inline Block shocked_vol(const Option& o, const Block& shift, const ScenariosView& sc) {
    Block vol;
    switch (sc.vol_shock) {
        case VolShockKind::none: vol = Block::Constant(o.vol); break;
        case VolShockKind::multiplicative: vol = o.vol * (1.0 + shift * o.vol_scale).max(0.0); break;
        case VolShockKind::additive: vol = (o.vol + shift * o.vol_scale).max(0.0); break;
        case VolShockKind::relative: vol = o.vol * (1.0 + shift).max(0.0); break;
    }
    if (sc.vol_up_floor > 0.0) vol = (shift > 0.0).select(vol.max(sc.vol_up_floor), vol);
    return vol;
}

// Black-76 value of one unit (before the contract multiplier) in each lane's scenario.
// Two divisions per value: 1/(sigma sqrt T), and one shared by the two normal CDFs.
inline Block black76(const Option& o, const Block& m, const Block& log_m, const Block& vol,
                     const Block& sqrt_t) {
    const Block sd = vol * sqrt_t;  // sigma * sqrt(T)
    const Block fwd = o.forward * m;
    const Block safe_sd = (sd > 0.0).select(sd, 1.0);
    const Block d1 = (o.log_moneyness + log_m) / safe_sd + 0.5 * safe_sd;
    const Block x1 = o.sign * d1;  // N(x1) and N(x2) are the CDFs of sign * d1, sign * d2
    const Block x2 = o.sign * (d1 - safe_sd);
    const Block a1 = x1.abs().min(40.0), a2 = x2.abs().min(40.0);
    Block num1, den1, num2, den2;
    normal_tail_ratio(a1, num1, den1);
    normal_tail_ratio(a2, num2, den2);
    const Block shared = 1.0 / (den1 * den2);
    // exp(-d2^2/2) = exp(-d1^2/2) * F_s/K exactly (d1^2 - d2^2 = 2 ln(F_s/K)), used in lanes where
    // both are far from under/overflow (|x| < 37 keeps F_s/K and exp(-d1^2/2) normal doubles); the
    // rare other lanes take their own exp. Each lane's choice depends on that lane only, so a
    // scenario's value never depends on which scenarios share its block.
    const Block e1 = (-0.5 * a1 * a1).exp();
    Block e2 = e1 * (o.forward_over_strike * m);
    const auto shared_ok = (a1 < 37.0) && (a2 < 37.0);
    if (!shared_ok.all()) e2 = shared_ok.select(e2, (-0.5 * a2 * a2).exp());
    const Block tail1 = e1 * num1 * den2 * shared;  // N(-|x1|)
    const Block tail2 = e2 * num2 * den1 * shared;
    const Block n1 = (x1 > 0.0).select(1.0 - tail1, tail1);
    const Block n2 = (x2 > 0.0).select(1.0 - tail2, tail2);
    const Block value = o.sign * (fwd * n1 - o.strike * n2);
    const Block intrinsic = (o.sign * (fwd - o.strike)).max(0.0);
    return o.discount * (sd > 0.0).select(value, intrinsic);
}

void revalue_rows(const InstrumentsView& in, const ScenariosView& sc, const double* log_multiplier,
                  const double* inv_multiplier, std::size_t begin, std::size_t end, double* risk,
                  double* base_value) {
    const std::size_t ns = sc.n_scenarios;
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
        const Block now = black76(o, Block::Ones(), Block::Zero(), shocked_vol(o, Block::Zero(), sc),
                                  Block::Constant(sqrt_t_now));
        const double value_now = mult * now[0];
        const double base = inverse ? value_now * inv_spot : value_now;  // as the scenarios below
        if (base_value) base_value[i] = base;

        for (std::size_t s0 = 0; s0 < ns; s0 += kBlock) {
            const std::size_t n = std::min(kBlock, ns - s0);
            const Block mb = load(m + s0, n, 1.0);
            const Block lmb = load(log_m + s0, n, 0.0);
            const Block vb = shift ? load(shift + s0, n, 0.0) : Block::Zero();
            Block sqrt_t;
            if (sc.time_shift)
                sqrt_t = (o.expiry - load(sc.time_shift + s0, n, 0.0)).max(0.0).sqrt();
            else
                sqrt_t = Block::Constant(sqrt_t_now);
            const Block value = mult * black76(o, mb, lmb, shocked_vol(o, vb, sc), sqrt_t);
            // Inverse options are worth their quote value divided by the index, now and in the
            // scenario; their coin P&L is the difference (DESIGN §3).
            const Block pnl =
                inverse ? Block(value * load(inv_m + s0, n, 1.0) * inv_spot - base) : Block(value - base);
            Eigen::Map<Block, Eigen::Unaligned>(out + s0).head(n) = pnl.head(n);
        }
    }
}

void axpy(double* y, const double* x, double a, std::size_t n) {
    Eigen::Map<Eigen::ArrayXd>(y, static_cast<Eigen::Index>(n)) +=
        a * Eigen::Map<const Eigen::ArrayXd>(x, static_cast<Eigen::Index>(n));
}

void normal_cdf_array(const double* x, double* out, std::size_t n) {
    for (std::size_t s0 = 0; s0 < n; s0 += kBlock) {
        const std::size_t len = std::min(kBlock, n - s0);
        const Block v = normal_cdf<Block>(load(x + s0, len, 0.0));
        for (std::size_t k = 0; k < len; ++k) out[s0 + k] = v[k];
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
constexpr std::size_t kNetPackets = 4;  // measured best of 2, 4, 8 (bench/bench_net.py)
constexpr std::size_t kNetBlock = kNetPackets * kLanes;

void net_accounts(const RiskArraysView& r, const PositionsView& p, std::size_t begin,
                  std::size_t end, double* pnl) {
    namespace ei = Eigen::internal;
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
    for (std::size_t s0 = 0; s0 < full; s0 += kNetBlock) {
        for (std::size_t a = begin; a < end; ++a, ++tag) {
            auto k = p.account_start[a];
            const auto k_end = p.account_start[a + 1];
            while (k < k_end) {
                const auto unit = static_cast<std::size_t>(r.risk_unit[p.instrument[k]]);
                Packet acc[kNetPackets];
                for (auto& v : acc) v = ei::pset1<Packet>(0.0);
                for (; k < k_end && static_cast<std::size_t>(r.risk_unit[p.instrument[k]]) == unit; ++k) {
                    const double* src = r.risk + static_cast<std::size_t>(p.instrument[k]) * ns + s0;
                    const Packet q = ei::pset1<Packet>(p.quantity[k]);
                    for (std::size_t j = 0; j < kNetPackets; ++j)
                        acc[j] = ei::padd(acc[j], ei::pmul(q, ei::ploadu<Packet>(src + j * kLanes)));
                }
                double* dst = pnl + a * row + unit * ns + s0;
                if (mark[unit] != tag) {
                    mark[unit] = tag;
                    for (std::size_t j = 0; j < kNetPackets; ++j) ei::pstoreu(dst + j * kLanes, acc[j]);
                } else {
                    for (std::size_t j = 0; j < kNetPackets; ++j)
                        ei::pstoreu(dst + j * kLanes, ei::padd(ei::ploadu<Packet>(dst + j * kLanes), acc[j]));
                }
            }
        }
    }
    if (full == ns) return;
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
    }
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

}  // namespace
}  // namespace MK_TARGET

extern const Kernels MK_CAT(kernels_, MK_TARGET);
const Kernels MK_CAT(kernels_, MK_TARGET) = {
    MK_STR(MK_TARGET),
    &MK_TARGET::revalue_rows,
    &MK_TARGET::net_accounts,
    &MK_TARGET::axpy,
    &MK_TARGET::normal_cdf_array,
    &MK_TARGET::whatif_min,
    &MK_TARGET::whatif_fill,
};

}  // namespace marginkernel::detail
