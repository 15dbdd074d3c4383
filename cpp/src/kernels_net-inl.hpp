// Part of kernels_isa.cpp (Highway-style): stage 2, netting.
// Included once per SIMD target inside namespace marginkernel::detail::<target>::{anonymous}, with
// Eigen renamed for that target; no include guard on purpose. Only plain pointers leave it.

// y += a * x (the netting tail).
void axpy(double* y, const double* x, double a, std::size_t n) {
    Eigen::Map<Eigen::ArrayXd>(y, static_cast<Eigen::Index>(n)) +=
        a * Eigen::Map<const Eigen::ArrayXd>(x, static_cast<Eigen::Index>(n));
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
                // The run's sum starts from what earlier runs of this unit left in the output, so
                // that the sum is taken position by position in order, as the reference takes it.
                double* dst = pnl + a * row + unit * ns + s0;
                Packet acc[kNetPackets];
                if (mark[unit] != tag) {
                    mark[unit] = tag;
                    for (auto& v : acc) v = ei::pset1<Packet>(0.0);
                } else {
                    for (std::size_t j = 0; j < kNetPackets; ++j) acc[j] = ei::ploadu<Packet>(dst + j * kLanes);
                }
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
