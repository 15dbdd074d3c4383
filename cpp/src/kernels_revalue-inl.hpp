// Part of kernels_isa.cpp (Highway-style): stage 1, revaluation (Black-76 on packets of scenarios) and its normal CDF.
// Included once per SIMD target inside namespace marginkernel::detail::<target>::{anonymous}, with
// Eigen renamed for that target; no include guard on purpose. Only plain pointers leave it.

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

// tau^p of architecture §3: tau = 30 days / max(DTE, floor), p = short power if DTE <= 30 days.
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

// Linear row: mult * (F_s - F). Inverse (coin-settled, mult = quote notional): mult * (1/F - 1/F_s).
// Inverse spot is the coin itself: no P&L in coin. Returns whether every value is finite. Forced
// inline, as option_of and value_now: revalue_rows compiles to one function, as before the split.
EIGEN_ALWAYS_INLINE bool linear_row(Kind kind, bool inverse, const double* m, double mult, double fwd,
                                    std::size_t ns, double* out) {
    bool finite = true;
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
        if (finite && !pnl.head(n).isFinite().all()) finite = false;
    }
    return finite;
}

// The per-instrument constants of option i (a call or a put).
EIGEN_ALWAYS_INLINE Option option_of(const InstrumentsView& in, std::size_t i, const ScenariosView& sc) {
    Option o{};
    o.forward = in.forward[i];
    o.strike = in.strike[i];
    o.forward_over_strike = o.forward / o.strike;
    o.log_moneyness = std::log(o.forward_over_strike);
    o.sign = static_cast<Kind>(in.kind[i]) == Kind::call ? 1.0 : -1.0;
    o.discount = in.discount[i];
    o.vol = in.vol[i];
    o.expiry = in.expiry[i];
    o.vol_scale = vol_scale(o.expiry, sc);
    return o;
}

// The option's value now (times the multiplier), through the very same code path as the scenarios,
// so that a scenario with m = 1, no vol shift and no look-ahead revalues to exactly zero P&L.
EIGEN_ALWAYS_INLINE double value_now(const Option& o, double mult, double sqrt_t_now, const ScenariosView& sc) {
    namespace ei = Eigen::internal;
    using pk::c;
    using pk::Pk;
    const Pk value = pk::black76(o, c(1.0), c(0.0), pk::shocked_vol(o, c(0.0), sc), c(sqrt_t_now));
    return ei::pfirst(ei::pmul(c(mult), value));
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
        const double mult = in.multiplier[i], fwd = in.forward[i];
        const double inv_spot = 1.0 / sc.spot[u];
        double* out = risk + i * ns;

        if (kind != Kind::call && kind != Kind::put) {
            const bool finite = linear_row(kind, inverse, m, mult, fwd, ns, out);
            if (first_bad == kNone && !finite) first_bad = i;
            if (base_value) base_value[i] = 0.0;
            continue;
        }

        const Option o = option_of(in, i, sc);
        const double sqrt_t_now = std::sqrt(std::max(o.expiry, 0.0));
        const double now = value_now(o, mult, sqrt_t_now, sc);
        const double base = inverse ? now * inv_spot : now;  // as the scenarios below
        if (base_value) base_value[i] = base;
        const Pk p_mult = pk::c(mult), p_sqrt_t_now = pk::c(sqrt_t_now), p_inv_spot = pk::c(inv_spot);
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
            // scenario; their coin P&L is the difference (architecture §3).
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
