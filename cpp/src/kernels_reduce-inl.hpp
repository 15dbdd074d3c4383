// Part of kernels_isa.cpp (Highway-style): stage 3, the reductions (worst loss, VaR / ES).
// Included once per SIMD target inside namespace marginkernel::detail::<target>::{anonymous}, with
// Eigen renamed for that target; no include guard on purpose. Only plain pointers leave it.

// worst_loss (see Kernels::worst_loss_rows), per row of P in two passes over v = w * h(P), h the
// gain haircut. Pass 1 takes the minimum in kReduceChains independent accumulators (one chain of
// compares would wait on each one's latency, bench/bench_reduce.py) and, in as many
// running sums of v - v (0 for finite v, NaN otherwise), whether every v is finite. Pass 2, only
// when the scenario is asked for, finds the first scenario whose v equals that minimum, from L1 (a
// row of 1,000 scenarios is 8 KB). v is the same multiplies as the scalar code and the minimum is
// exact, so every target returns the same loss and scenario bit for bit: the first scenario
// attaining the minimum, -0.0 and 0.0 counting as equal. While pass 2 runs, the next row is
// prefetched.
constexpr std::size_t kReduceChains = 4;
constexpr std::size_t kReduceAheadBytes = 8192;

// A second pass over a row reads L1 only: meanwhile the next row (its first kReduceAheadBytes)
// comes from memory, so that P keeps streaming; the hardware prefetcher alone pauses with the demand.
inline void prefetch_row(const double* row, std::size_t ns) {
    for (std::size_t b = 0; b < std::min(ns * sizeof(double), kReduceAheadBytes); b += 64)
        __builtin_prefetch(reinterpret_cast<const char*>(row) + b);
}

std::size_t worst_loss_rows(const double* pnl, std::size_t begin, std::size_t end, std::size_t ns,
                            const double* weight, std::size_t weight_rows, double gain_factor, double* loss,
                            std::int32_t* worst) {
    namespace ei = Eigen::internal;
    using pk::c;
    using pk::L;
    using pk::Pk;
    constexpr double inf = std::numeric_limits<double>::infinity();
    const Pk g = c(gain_factor);
    std::size_t first_bad = kNone;
    for (std::size_t r = begin; r < end; ++r) {
        const double* p = pnl + r * ns;
        const double* w = weight ? weight + (r % weight_rows) * ns : nullptr;
        const auto value = [&](std::size_t s) {
            const Pk h = pk::scale_gains(ei::ploadu<Pk>(p + s), g);
            return w ? ei::pmul(ei::ploadu<Pk>(w + s), h) : h;
        };
        const auto scalar_value = [&](std::size_t s) {
            const double h = p[s] > 0.0 ? gain_factor * p[s] : p[s];
            return w ? w[s] * h : h;
        };
        Pk low[kReduceChains], probe[kReduceChains];
        for (std::size_t j = 0; j < kReduceChains; ++j) low[j] = c(inf), probe[j] = c(0.0);
        std::size_t s = 0;
        for (; s + kReduceChains * L <= ns; s += kReduceChains * L)
            for (std::size_t j = 0; j < kReduceChains; ++j) {
                const Pk v = value(s + j * L);
                low[j] = ei::pmin(low[j], v);
                probe[j] = ei::padd(probe[j], ei::psub(v, v));
            }
        for (; s + L <= ns; s += L) {
            const Pk v = value(s);
            low[0] = ei::pmin(low[0], v);
            probe[0] = ei::padd(probe[0], ei::psub(v, v));
        }
        for (std::size_t j = 1; j < kReduceChains; ++j) {
            low[0] = ei::pmin(low[0], low[j]);
            probe[0] = ei::padd(probe[0], probe[j]);
        }
        double min_value = ei::predux_min(low[0]);
        bool ok = pk::all(finite_lanes(probe[0]));
        for (; s < ns; ++s) {
            const double v = scalar_value(s);
            ok = ok && std::isfinite(v);
            min_value = v < min_value ? v : min_value;
        }
        if (!ok) {
            if (first_bad == kNone) first_bad = r;
            loss[r] = 0.0;  // the caller reports the row; nothing reads this value
            continue;
        }
        loss[r] = std::max(0.0, -min_value);
        if (!worst) continue;
        if (r + 1 < end) prefetch_row(p + ns, ns);
        const Pk target = c(min_value);
        std::size_t at = 0, lane = L;
        while (at + L <= ns && (lane = pk::first_equal(value(at), target)) == L) at += L;
        if (lane < L)
            at += lane;
        else
            while (scalar_value(at) != min_value) ++at;  // in the last ns % L scenarios
        worst[r] = static_cast<std::int32_t>(at);
    }
    return first_bad;
}

// Whether p[0, ns) is all finite: running sums of x - x (0 for finite x, NaN otherwise). Not
// checks.hpp's all_finite_values: an inline function with external linkage compiled in this file
// could be merged into the other targets' code (see select.hpp).
bool row_finite(const double* p, std::size_t ns) {
    namespace ei = Eigen::internal;
    using pk::L;
    pk::Pk probe[kReduceChains];
    for (auto& v : probe) v = pk::c(0.0);
    std::size_t s = 0;
    for (; s + kReduceChains * L <= ns; s += kReduceChains * L)
        for (std::size_t j = 0; j < kReduceChains; ++j) {
            const pk::Pk x = ei::ploadu<pk::Pk>(p + s + j * L);
            probe[j] = ei::padd(probe[j], ei::psub(x, x));
        }
    for (; s + L <= ns; s += L) {
        const pk::Pk x = ei::ploadu<pk::Pk>(p + s);
        probe[0] = ei::padd(probe[0], ei::psub(x, x));
    }
    bool ok = true;
    for (const auto& v : probe) ok = ok && pk::all(finite_lanes(v));
    for (; s < ns; ++s) ok = ok && std::isfinite(p[s]);
    return ok;
}

// Pass 1 of select.hpp's tail selection over packets: the minima of m * L chunks (value s to
// chunk s mod (m * L)), m <= kTailPackets, and whether the row is finite. Returns the threshold T
// (the largest minimum), or NaN for a row that is not finite.
constexpr std::size_t kTailPackets = (kTailMaxK + pk::L - 1) / pk::L;
double tail_threshold(const double* p, std::size_t ns, std::size_t m) {
    namespace ei = Eigen::internal;
    using pk::L;
    using pk::Pk;
    Pk low[kTailPackets], probe = pk::c(0.0);
    for (std::size_t j = 0; j < m; ++j) {
        low[j] = ei::ploadu<Pk>(p + j * L);
        probe = ei::padd(probe, ei::psub(low[j], low[j]));
    }
    std::size_t s = m * L;
    for (; s + m * L <= ns; s += m * L)
        for (std::size_t j = 0; j < m; ++j) {
            const Pk x = ei::ploadu<Pk>(p + s + j * L);
            low[j] = ei::pmin(low[j], x);
            probe = ei::padd(probe, ei::psub(x, x));
        }
    for (; s + L <= ns; s += L) {
        const Pk x = ei::ploadu<Pk>(p + s);
        probe = ei::padd(probe, ei::psub(x, x));
    }
    bool finite = pk::all(finite_lanes(probe));
    for (; s < ns; ++s) finite = finite && std::isfinite(p[s]);
    if (!finite) return std::numeric_limits<double>::quiet_NaN();
    Pk high = low[0];
    for (std::size_t j = 1; j < m; ++j) high = ei::pmax(high, low[j]);
    return ei::predux_max(high);
}

// Pass 2: the values of p[0, ns) at or below t, in scenario order, into `out`; returns their count.
std::size_t collect_at_most(const double* p, std::size_t ns, double t, double* out) {
    namespace ei = Eigen::internal;
    using pk::L;
    const pk::Pk threshold = pk::c(t);
    std::size_t count = 0, s = 0;
    for (; s + L <= ns; s += L) {
        const pk::Pk x = ei::ploadu<pk::Pk>(p + s);
        count += pk::store_selected(x, pk::compare_bits<pk::Cmp::le>(x, threshold), out + count);
    }
    for (; s < ns; ++s)
        if (p[s] <= t) out[count++] = p[s];
    return count;
}

// The indices of the values of p[0, ns) at or below t, in scenario order, into `out`; returns their
// count (see Kernels::indices_at_most). A packet's bits are walked only when one of its values is
// that low.
std::size_t collect_indices_at_most(const double* p, std::size_t ns, double t, std::int32_t* out) {
    namespace ei = Eigen::internal;
    using pk::L;
    const pk::Pk threshold = pk::c(t);
    std::size_t count = 0, s = 0;
    for (; s + L <= ns; s += L)
        for (unsigned bits = pk::compare_bits<pk::Cmp::le>(ei::ploadu<pk::Pk>(p + s), threshold); bits;
             bits &= bits - 1)
            out[count++] = static_cast<std::int32_t>(s + static_cast<std::size_t>(__builtin_ctz(bits)));
    for (; s < ns; ++s)
        if (p[s] <= t) out[count++] = static_cast<std::int32_t>(s);
    return count;
}

// See Kernels::tail_indices. With the two passes: the indices at or below the chunk threshold, then
// the k-th smallest of their values, then those indices kept whose value is at or below it; else
// (a deep quantile, a short row, or a row that is not finite) the k-th smallest by a partition.
std::size_t tail_indices(const double* p, std::size_t ns, std::size_t k, std::int32_t* order, double* work) {
    using pk::L;
    const double t = use_tail_chunks(ns, k, L) ? tail_threshold(p, ns, tail_packets(k, L))
                                               : std::numeric_limits<double>::quiet_NaN();
    if (std::isnan(t)) return collect_indices_at_most(p, ns, kth_by_partition(p, ns, k, work), order);
    const std::size_t c = collect_indices_at_most(p, ns, t, order);
    for (std::size_t i = 0; i < c; ++i) work[i] = p[order[i]];
    const double q = kth_of_candidates(work, c, k, work + ns);
    std::size_t kept = 0;
    for (std::size_t i = 0; i < c; ++i)
        if (work[i] <= q) order[kept++] = order[i];
    return kept;
}

// value_at_risk with equally likely scenarios (see Kernels::tail_rows): per row, var = -q, q the
// k-th smallest P&L (select.hpp's two passes, C = m * L chunks, when they apply; else a partition),
// and es = -(the mean of the P&L at or below q), summed in scenario order as the scalar code sums
// it, so every target gives the same bits; a zero q gives var = +0.0 whatever its sign.
std::size_t tail_rows(const double* pnl, std::size_t begin, std::size_t end, std::size_t ns, std::size_t k,
                      double* scratch, double* var, double* es) {
    using pk::L;
    const bool chunked = use_tail_chunks(ns, k, L);
    const std::size_t m = tail_packets(k, L);
    for (std::size_t r = begin; r < end; ++r) {
        const double* p = pnl + r * ns;
        const double* tail = scratch;  // the values at or below the threshold, in scenario order
        std::size_t n_tail;
        double q;
        if (chunked) {
            const double t = tail_threshold(p, ns, m);
            if (std::isnan(t)) return r;
            if (r + 1 < end) prefetch_row(p + ns, ns);
            n_tail = collect_at_most(p, ns, t, scratch);
            q = kth_of_candidates(scratch, n_tail, k, scratch + ns);
        } else {
            if (!row_finite(p, ns)) return r;
            q = kth_by_partition(p, ns, k, scratch);
            tail = p;
            n_tail = ns;
        }
        double sum = 0.0;
        std::size_t count = 0;
        for (std::size_t i = 0; i < n_tail; ++i)
            if (tail[i] <= q) sum += tail[i], ++count;
        var[r] = 0.0 - q;
        es[r] = -sum / static_cast<double>(count);
        if (!std::isfinite(es[r])) return r;
    }
    return kNone;
}
