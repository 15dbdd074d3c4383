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
    double forward, log_moneyness, strike, sign, discount, vol, expiry, vol_scale;
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
inline Block black76(const Option& o, const Block& m, const Block& log_m, const Block& vol,
                     const Block& sqrt_t) {
    const Block sd = vol * sqrt_t;  // sigma * sqrt(T)
    const Block fwd = o.forward * m;
    const Block safe_sd = (sd > 0.0).select(sd, 1.0);
    const Block d1 = (o.log_moneyness + log_m) / safe_sd + 0.5 * safe_sd;
    const Block d2 = d1 - safe_sd;
    const Block value = o.sign * (fwd * normal_cdf<Block>(o.sign * d1) -
                                  o.strike * normal_cdf<Block>(o.sign * d2));
    const Block intrinsic = (o.sign * (fwd - o.strike)).max(0.0);
    return o.discount * (sd > 0.0).select(value, intrinsic);
}

void revalue_rows(const InstrumentsView& in, const ScenariosView& sc, const double* log_multiplier,
                  std::size_t begin, std::size_t end, double* risk, double* base_value) {
    const std::size_t ns = sc.n_scenarios;
    for (std::size_t i = begin; i < end; ++i) {
        const auto kind = static_cast<Kind>(in.kind[i]);
        const bool inverse = static_cast<Settlement>(in.settlement[i]) == Settlement::inverse;
        const std::size_t u = static_cast<std::size_t>(in.risk_unit[i]);
        const double* m = sc.price_multiplier + u * ns;
        const double* log_m = log_multiplier + u * ns;
        const double* shift = sc.vol_shift ? sc.vol_shift + u * ns : nullptr;
        const double mult = in.multiplier[i];
        const double fwd = in.forward[i];
        const double spot = sc.spot[u];
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
        o.log_moneyness = std::log(fwd / o.strike);
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
        const double base = inverse ? value_now / spot : value_now;
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
            const Block pnl = inverse ? Block(value / (spot * mb) - base) : Block(value - base);
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

void net_accounts(const RiskArraysView& r, const PositionsView& p, std::size_t begin,
                  std::size_t end, double* pnl) {
    const std::size_t ns = r.n_scenarios;
    const std::size_t row = r.n_units * ns;
    for (std::size_t a = begin; a < end; ++a) {
        double* out = pnl + a * row;
        std::fill(out, out + row, 0.0);
        for (auto k = p.account_start[a]; k < p.account_start[a + 1]; ++k) {
            const auto i = static_cast<std::size_t>(p.instrument[k]);
            const auto u = static_cast<std::size_t>(r.risk_unit[i]);
            axpy(out + u * ns, r.risk + i * ns, p.quantity[k], ns);
        }
    }
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
};

}  // namespace marginkernel::detail
