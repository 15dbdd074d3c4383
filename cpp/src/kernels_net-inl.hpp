// Part of kernels_isa.cpp (Highway-style): stage 2, netting.
// Included once per SIMD target inside namespace marginkernel::detail::<target>::{anonymous}, with
// Eigen renamed for that target; no include guard on purpose. Only plain pointers leave it.
//
// Scenario-tiled netting. The scenarios are cut into tiles sized at run time from the CPU's L2
// (cache_info.hpp): the slice R[:, tile] of every instrument stays in L2 while all the accounts'
// positions are summed into it; within a tile each account takes the tile's register blocks (up to
// kNetPackets SIMD packets of scenarios) in turn, its few positions staying in L1 across them. For
// one register block, every position's product is added into accumulators held in registers
// (explicit packets: the compiler will not keep an Eigen array in registers across the loop), and
// each account's output block is written once per run of positions in one risk unit. A packed tile
// narrower than one block, of a book of one risk unit, is swept over all accounts at once (net_sweep).
//
// The tile is first copied into a contiguous buffer (pack_tile), one instrument after another.
// Read in place, the slices lie one row of R apart; when that stride is a multiple of 4 KiB (1,024
// or 2,048 scenarios) every slice starts in the same few cache sets, the tile no longer stays in L2
// and netting ran 2x slower (bench/bench_net.py --scenarios 1024: 74.6 -> 36.5 ms). Packed, the
// slices fill the sets evenly whatever the scenario count, for one copy of R per call.
//
// Exactness: per (account, unit, scenario) the sum is taken position by position in position order,
// each product rounded before it is added (no FMA; the TU is compiled with -ffp-contract=off), as
// the reference takes it, so that a position and its exact opposite cancel exactly and every target,
// tile and thread count gives the same bits. A run of positions of a unit that came back after
// another unit continues from what the unit's earlier runs left in the output.

using Packet = Eigen::internal::packet_traits<double>::type;
constexpr std::size_t kLanes = static_cast<std::size_t>(Eigen::internal::packet_traits<double>::size);
constexpr std::size_t kNetPackets = 8;  // accumulators: 64 scenarios on AVX-512, 32 on AVX2
constexpr std::size_t kNetBlock = kNetPackets * kLanes;
// Positions ahead whose risk slice is prefetched into L1 (tuned with bench/bench_net.py).
constexpr std::int64_t kNetAhead = 8;


inline bool all_finite(const Packet& v) { return pk::all(finite_lanes(v)); }
inline bool all_finite(double v) { return std::isfinite(v); }

// Everything one register block of one account needs, shared by all its blocks.
struct NetArgs {
    const RiskArraysView& r;
    const PositionsView& p;
    const double* slices;  // instrument i's values from the tile's first scenario at slices + i * stride
    std::size_t stride;
    std::size_t first;     // the tile's first scenario
    double* pnl;
    std::int64_t* mark;  // per unit: the tag of the (account, block) that last wrote its row
    std::int64_t k_last;  // the last position of the thread's accounts (prefetch bound)
    std::size_t row;      // n_units * n_scenarios: one account's output
    bool stream;          // non-temporal stores for the output (see net_accounts)
    const std::int32_t* offset;  // packed, one unit: instrument[k] * stride from the first position on
};

// Writes a register block's NP packets of P to dst (past the caches when `stream` and dst is
// aligned for it) and returns whether all are finite: the sum of x - x over the packets is 0 when
// every x is finite, NaN otherwise (one test per block rather than one per packet).
template <class P, std::size_t NP>
bool store_block(double* dst, const P (&acc)[NP], bool stream) {
    namespace ei = Eigen::internal;
    constexpr std::size_t lanes = sizeof(P) / sizeof(double);
    stream = stream && reinterpret_cast<std::uintptr_t>(dst) % sizeof(P) == 0;
    P nan_if_not_finite = ei::pset1<P>(0.0);
    for (std::size_t j = 0; j < NP; ++j) {
        if (stream)
            store_stream(dst + j * lanes, acc[j]);
        else
            ei::pstoreu(dst + j * lanes, acc[j]);
        nan_if_not_finite = ei::padd(nan_if_not_finite, ei::psub(acc[j], acc[j]));
    }
    return all_finite(nan_if_not_finite);
}

// Account a, scenarios [s0, s0 + NP * lanes of P): P is a SIMD packet or a plain double (the last
// ns % kLanes scenarios). Returns whether every sum stayed finite. OneUnit (a book of one risk
// unit, the common case) drops the per-position look-up of the next position's unit: an account's
// positions are then one run (measurably faster, most with narrow tiles: docs/netting-kernel.md).
template <class P, std::size_t NP, bool OneUnit = false>
bool net_block(const NetArgs& g, std::size_t a, std::size_t s0, std::int64_t tag) {
    namespace ei = Eigen::internal;
    constexpr std::size_t lanes = sizeof(P) / sizeof(double);
    const std::size_t ns = g.r.n_scenarios;
    const auto* instrument = g.p.instrument;
    auto k = g.p.account_start[a];
    const auto k_end = g.p.account_start[a + 1];
    bool finite = true;
    std::size_t unit = k < k_end ? static_cast<std::size_t>(g.r.risk_unit[instrument[k]]) : 0;
    while (k < k_end) {
        double* dst = g.pnl + a * g.row + unit * ns + s0;
        P acc[NP];
        if (g.mark[unit] != tag) {
            g.mark[unit] = tag;
            for (auto& v : acc) v = ei::pset1<P>(0.0);
        } else {  // the unit came back: continue from its earlier sum
            for (std::size_t j = 0; j < NP; ++j) acc[j] = ei::ploadu<P>(dst + j * lanes);
        }
        std::size_t next_unit = unit;
        for (; k < k_end; ++k) {
            if constexpr (lanes > 1) {
                const auto i_ahead = static_cast<std::size_t>(instrument[std::min(k + kNetAhead, g.k_last)]);
                const double* ahead = g.slices + i_ahead * g.stride + (s0 - g.first);
                for (std::size_t j = 0; j < NP * lanes; j += 8) __builtin_prefetch(ahead + j);
            }
            const double* src = g.slices + static_cast<std::size_t>(instrument[k]) * g.stride + (s0 - g.first);
            const P q = ei::pset1<P>(g.p.quantity[k]);
            for (std::size_t j = 0; j < NP; ++j)
                acc[j] = ei::padd(acc[j], ei::pmul(q, ei::ploadu<P>(src + j * lanes)));
            if (OneUnit) continue;
            if (k + 1 < k_end) {
                next_unit = static_cast<std::size_t>(g.r.risk_unit[instrument[k + 1]]);
                if (next_unit != unit) {
                    ++k;
                    break;
                }
            }
        }
        finite = store_block(dst, acc, g.stream) && finite;
        unit = next_unit;
    }
    return finite;
}

using NetBlockFn = bool (*)(const NetArgs&, std::size_t, std::size_t, std::int64_t);

template <class P, std::size_t... NP>
NetBlockFn pick_block(std::size_t packets, bool one_unit, std::index_sequence<NP...>) {
    static constexpr NetBlockFn table[] = {nullptr, &net_block<P, NP + 1>...};  // by packet count
    static constexpr NetBlockFn one_unit_table[] = {nullptr, &net_block<P, NP + 1, true>...};
    return packets <= sizeof...(NP) ? (one_unit ? one_unit_table : table)[packets] : nullptr;
}

// The packets of a packed tile of a book of one risk unit (the common case) that make one register
// block: every account in one loop, each position's slice found by its premultiplied offset
// (net_offsets). net_block's per-account work -- a call, the unit look-up, the tag, the index
// multiply -- is then gone, which counts when the tile is narrow (many instruments or a small L2:
// a few packets per position; docs/netting-kernel.md). Same sums in the same order as net_block.
// Returns the first account whose sums overflowed, or kNone.
template <std::size_t NP>
std::size_t net_sweep(const NetArgs& g, std::size_t begin, std::size_t end, std::size_t s0) {
    namespace ei = Eigen::internal;
    const auto* start = g.p.account_start;
    const auto k0 = start[begin];  // g.offset[0] is position k0's
    const double* slices = g.slices + (s0 - g.first);
    std::size_t first_bad = kNone;
    for (std::size_t a = begin; a < end; ++a) {
        const auto k_end = start[a + 1];
        if (start[a] == k_end) continue;  // zero_empty_rows wrote it
        Packet acc[NP];
        for (auto& v : acc) v = ei::pset1<Packet>(0.0);
        for (auto k = start[a]; k < k_end; ++k) {
            const double* src = slices + g.offset[k - k0];
            const Packet q = ei::pset1<Packet>(g.p.quantity[k]);
            for (std::size_t j = 0; j < NP; ++j)
                acc[j] = ei::padd(acc[j], ei::pmul(q, ei::ploadu<Packet>(src + j * kLanes)));
        }
        if (!store_block(g.pnl + a * g.row + s0, acc, g.stream) && a < first_bad) first_bad = a;
    }
    return first_bad;
}

using NetSweepFn = std::size_t (*)(const NetArgs&, std::size_t, std::size_t, std::size_t);

template <std::size_t... NP>
NetSweepFn pick_sweep(std::size_t packets, std::index_sequence<NP...>) {
    static constexpr NetSweepFn table[] = {nullptr, &net_sweep<NP + 1>...};  // by packet count
    return packets <= sizeof...(NP) ? table[packets] : nullptr;
}

// The scenario tile: the largest whole number of register blocks whose R slice (every instrument)
// fits half the L2 (the other half for positions, output lines and the prefetched slices), at most
// every scenario. When not even one block fits (many instruments, or a small L2), the most whole SIMD
// packets that fit, if that is at least kNetMinTile scenarios: slices of two lines or more from L2
// beat whole blocks from L3 (bench/bench_net.py --instruments 8000, like 2,000 on a 512 KiB L2:
// 80.0 -> 66.1 ms), narrower ones lose more to the per-position work than they gain. Else one block.
constexpr std::size_t kNetMinTile = 16;
std::size_t net_tile(const RiskArraysView& r) {
    const std::size_t per_scenario = std::max<std::size_t>(r.n_instruments, 1) * sizeof(double);
    const std::size_t fit = cache_sizes().l2 / 2 / per_scenario;  // scenarios whose slices fit
    std::size_t tile = kNetBlock;
    if (fit >= kNetBlock)
        tile = fit / kNetBlock * kNetBlock;
    else if (fit / kLanes * kLanes >= kNetMinTile)
        tile = fit / kLanes * kLanes;
    return std::min(tile, r.n_scenarios);
}

// Rows (account, unit) without positions are zero; every other row is written by plain stores the
// first time a block of it is reached and accumulated after that, so the output is neither cleared
// nor read back in the common case of one run of positions per risk unit. One unit (the common
// case): every account with a position writes its whole row. Leaves `mark` all -1.
void zero_empty_rows(const RiskArraysView& r, const PositionsView& p, std::size_t begin, std::size_t end,
                     double* pnl, std::vector<std::int64_t>& mark) {
    const std::size_t ns = r.n_scenarios;
    const std::size_t row = r.n_units * ns;
    for (std::size_t a = begin; a < end; ++a) {
        const auto tag = static_cast<std::int64_t>(a);
        if (r.n_units == 1 && p.account_start[a] < p.account_start[a + 1]) continue;
        for (auto k = p.account_start[a]; k < p.account_start[a + 1]; ++k)
            mark[static_cast<std::size_t>(r.risk_unit[p.instrument[k]])] = tag;
        for (std::size_t u = 0; u < r.n_units; ++u)
            if (mark[u] != tag) std::fill(pnl + a * row + u * ns, pnl + a * row + (u + 1) * ns, 0.0);
    }
    std::fill(mark.begin(), mark.end(), -1);
}

// The packed tile's row stride: whole cache lines, so that every slice starts on a line.
std::size_t packed_stride(std::size_t tile) { return (tile + 7) / 8 * 8; }

// Copies R[:, t0:t1) into `packed` (one slice per instrument, `stride` apart).
void pack_tile(const RiskArraysView& r, std::size_t t0, std::size_t t1, std::size_t stride, double* packed) {
    for (std::size_t i = 0; i < r.n_instruments; ++i)
        std::memcpy(packed + i * stride, r.risk + i * r.n_scenarios + t0, (t1 - t0) * sizeof(double));
}

// net_sweep's offsets: where each position of accounts [begin, end) finds its instrument's slice
// in a packed tile of `stride` (int32: a packed tile fits in half the L2).
std::vector<std::int32_t> net_offsets(const PositionsView& p, std::size_t begin, std::size_t end,
                                      std::size_t stride) {
    const auto k0 = p.account_start[begin];
    const auto n = static_cast<std::size_t>(p.account_start[end] - k0);
    std::vector<std::int32_t> offset(n);
    const std::int32_t* instrument = p.instrument + k0;
    for (std::size_t k = 0; k < n; ++k)
        offset[k] = static_cast<std::int32_t>(static_cast<std::size_t>(instrument[k]) * stride);
    return offset;
}

std::size_t net_accounts(const RiskArraysView& r, const PositionsView& p, std::size_t begin,
                         std::size_t end, double* pnl) {
    if (begin >= end) return kNone;  // nothing to net: allocate nothing (n_units may be huge)
    std::size_t first_bad = kNone;  // an account whose P&L overflowed (finite inputs, huge values)
    const std::size_t ns = r.n_scenarios;
    const std::size_t row = r.n_units * ns;
    std::vector<std::int64_t> mark(r.n_units, -1);
    zero_empty_rows(r, p, begin, end, pnl, mark);
    const std::size_t tile = net_tile(r);
    // Packing pays when the packed tile stays in L2 (the tile is sized for that unless even one
    // register block of every instrument is too big) and the positions read each slice about once
    // or more; otherwise the slices are read in place.
    const auto positions = static_cast<std::size_t>(p.account_start[end] - p.account_start[begin]);
    const std::size_t stride = packed_stride(tile);
    const bool pack = r.n_instruments * stride * sizeof(double) <= cache_sizes().l2 / 2 &&
                      r.n_instruments * stride <= INT32_MAX && positions >= r.n_instruments && tile < ns;
    const Buffer packed = make_buffer(pack ? r.n_instruments * stride : 0);
    const bool one_unit = r.n_units == 1;
    const auto offset =
        pack && one_unit ? net_offsets(p, begin, end, stride) : std::vector<std::int32_t>{};
    // The output streams past the caches when it cannot stay in L2 beside the risk tile anyway
    // (faster on bench/bench_net.py's large book: no read-for-ownership, the tile stays in L2); a
    // small output stays cached for the reduction that reads it next.
    const bool stream = (end - begin) * row * sizeof(double) > cache_sizes().l2;
    // Register blocks of one tile: full ones, then the leftover packets, then leftover scenarios.
    std::int64_t tag = 0;
    for (std::size_t t0 = 0; t0 < ns; t0 += tile) {
        const std::size_t t1 = std::min(ns, t0 + tile);
        if (pack) pack_tile(r, t0, t1, stride, packed.get());
        const NetArgs g{r, p, pack ? packed.get() : r.risk, pack ? stride : ns, pack ? t0 : 0, pnl,
                        mark.data(), p.account_start[end] - 1, row, stream, offset.data()};
        const std::size_t packets_end = t1 - (t1 == ns ? ns % kLanes : 0);
        // A narrow packed one-unit tile (its packets less than one full block): swept (net_sweep).
        const NetSweepFn sweep =
            pack && one_unit && packets_end - t0 < kNetBlock
                ? pick_sweep((packets_end - t0) / kLanes, std::make_index_sequence<kNetPackets - 1>{})
                : nullptr;
        if (sweep) first_bad = std::min(first_bad, sweep(g, begin, end, t0));
        const std::size_t full_end = sweep ? t0 : t0 + (packets_end - t0) / kNetBlock * kNetBlock;
        const NetBlockFn rest_packets =
            sweep ? nullptr
                  : pick_block<Packet>((packets_end - full_end) / kLanes, one_unit,
                                       std::make_index_sequence<kNetPackets - 1>{});
        const NetBlockFn rest_scalars =
            pick_block<double>(t1 - packets_end, one_unit, std::make_index_sequence<kLanes - 1>{});
        if (!rest_packets && !rest_scalars && full_end == t0) continue;
        for (std::size_t a = begin; a < end; ++a) {
            bool finite = true;
            for (std::size_t s0 = t0; s0 < full_end; s0 += kNetBlock)
                finite = (one_unit ? net_block<Packet, kNetPackets, true>(g, a, s0, tag++)
                                   : net_block<Packet, kNetPackets>(g, a, s0, tag++)) && finite;
            if (rest_packets) finite = rest_packets(g, a, full_end, tag++) && finite;
            if (rest_scalars) finite = rest_scalars(g, a, packets_end, tag++) && finite;
            if (!finite && a < first_bad) first_bad = a;
        }
    }
    if (stream) stream_fence();  // the streamed stores reach memory before another thread reads them
    return first_bad;
}
