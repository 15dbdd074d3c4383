// libFuzzer harness over net(): any input either throws InvalidInput or returns finite P&L equal bit
// for bit to the sequential sum in position order, whatever the thread count and SIMD target.
#include <vector>

#include "fuzz_common.hpp"
#include "marginkernel/net.hpp"

using namespace marginkernel;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    FuzzedDataProvider in(data, size);
    const auto ni = in.ConsumeIntegralInRange<std::size_t>(0, 10);
    const auto units = in.ConsumeIntegralInRange<std::size_t>(1, 4);
    const auto ns = in.ConsumeIntegralInRange<std::size_t>(1, 140);
    const auto accounts = in.ConsumeIntegralInRange<std::size_t>(0, 8);
    std::vector<std::int32_t> unit(ni);
    for (auto& u : unit) u = in.ConsumeIntegralInRange<std::int32_t>(-1, static_cast<std::int32_t>(units));
    const auto risk = mkfuzz::values(in, ni * ns, -100, 100);
    std::vector<std::int64_t> start{in.ConsumeIntegralInRange<std::int64_t>(-1, 1) == 0 ? 0 : 0};
    std::vector<std::int32_t> inst;
    std::vector<double> qty;
    for (std::size_t a = 0; a < accounts; ++a) {
        const auto k = in.ConsumeIntegralInRange<int>(0, 6);
        for (int j = 0; j < k; ++j) {
            inst.push_back(in.ConsumeIntegralInRange<std::int32_t>(-1, static_cast<std::int32_t>(ni)));
            qty.push_back(mkfuzz::value(in, -10, 10));
        }
        start.push_back(static_cast<std::int64_t>(inst.size()) - (in.ConsumeIntegralInRange<int>(0, 30) == 0 ? 1 : 0));
    }
    if (start.back() != static_cast<std::int64_t>(inst.size())) start.back() = static_cast<std::int64_t>(inst.size());
    const RiskArraysView rv{ni, ns, units, risk.data(), unit.data()};
    const PositionsView pv{accounts, start.data(), inst.data(), qty.data()};

    std::vector<double> expected(accounts * units * ns, 0.0);
    bool checked = false;
    for (const auto& target : available_simd_targets()) {
        select_simd_target(target);
        std::vector<double> pnl(accounts * units * ns, -7.0), pnl2(pnl.size(), -9.0);
        try {
            net(rv, pv, pnl.data(), 1);
        } catch (const InvalidInput&) {
            continue;
        }
        mkfuzz::require(mkfuzz::all_finite(pnl), "net: non-finite result");
        if (!checked) {  // validated input: the sequential definition
            for (std::size_t a = 0; a < accounts; ++a)
                for (auto k = start[a]; k < start[a + 1]; ++k) {
                    const auto i = static_cast<std::size_t>(inst[static_cast<std::size_t>(k)]);
                    double* dst = expected.data() + (a * units + static_cast<std::size_t>(unit[i])) * ns;
                    for (std::size_t s = 0; s < ns; ++s) dst[s] += qty[static_cast<std::size_t>(k)] * risk[i * ns + s];
                }
            checked = true;
        }
        mkfuzz::require(pnl == expected, "net: differs from the sequential sum");
        net(rv, pv, pnl2.data(), 3);
        mkfuzz::require(pnl2 == pnl, "net: result depends on the thread count");
    }
    return 0;
}
