// Part of kernels_isa.cpp (Highway-style): stage 3, the worst-loss reduction.
// Included once per SIMD target inside namespace marginkernel::detail::<target>::{anonymous}, with
// Eigen renamed for that target; no include guard on purpose. Only plain pointers leave it.

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
