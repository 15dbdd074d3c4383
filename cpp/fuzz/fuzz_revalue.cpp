// libFuzzer harness over revalue(): any input either throws InvalidInput or returns finite risk
// arrays and values now, identical bit for bit whatever the thread count, on every SIMD target.
#include <vector>

#include "fuzz_common.hpp"
#include "marginkernel/revalue.hpp"

using namespace marginkernel;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    FuzzedDataProvider in(data, size);
    const auto n = in.ConsumeIntegralInRange<std::size_t>(1, 12);
    const auto units = in.ConsumeIntegralInRange<std::size_t>(1, 3);
    const auto ns = in.ConsumeIntegralInRange<std::size_t>(1, 70);
    std::vector<std::int8_t> kind(n), settle(n);
    std::vector<std::int32_t> unit(n);
    for (std::size_t i = 0; i < n; ++i) {
        kind[i] = in.ConsumeIntegralInRange<std::int8_t>(-1, 5);
        settle[i] = in.ConsumeIntegralInRange<std::int8_t>(0, 2);
        unit[i] = in.ConsumeIntegralInRange<std::int32_t>(-1, static_cast<std::int32_t>(units));
    }
    const auto strike = mkfuzz::values(in, n, 1, 200), expiry = mkfuzz::values(in, n, -0.1, 3),
               mult = mkfuzz::values(in, n, 0.01, 100), fwd = mkfuzz::values(in, n, 1, 200),
               df = mkfuzz::values(in, n, 0.5, 1), vol = mkfuzz::values(in, n, 0, 3),
               spot = mkfuzz::values(in, units, 1, 200), m = mkfuzz::values(in, units * ns, 0.2, 3),
               shift = mkfuzz::values(in, units * ns, -1, 1), dt = mkfuzz::values(in, ns, 0, 0.1);
    ScenariosView sc;
    sc.n_units = units;
    sc.n_scenarios = ns;
    sc.spot = spot.data();
    sc.price_multiplier = m.data();
    sc.vol_shift = in.ConsumeBool() ? shift.data() : nullptr;
    sc.time_shift = in.ConsumeBool() ? dt.data() : nullptr;
    sc.vol_shock = static_cast<VolShockKind>(in.ConsumeIntegralInRange<int>(0, 4));
    sc.tau_floor_days = mkfuzz::value(in, 0.1, 5);
    sc.short_power = mkfuzz::value(in, -1, 1);
    sc.long_power = mkfuzz::value(in, -1, 1);
    sc.vol_up_floor = mkfuzz::value(in, 0, 0.5);
    const InstrumentsView inst{n, kind.data(), settle.data(), unit.data(), strike.data(), expiry.data(),
                               mult.data(), fwd.data(), df.data(), vol.data()};

    for (const auto& target : available_simd_targets()) {
        select_simd_target(target);
        std::vector<double> risk(n * ns), base(n), risk2(n * ns), base2(n);
        try {
            revalue(inst, sc, risk.data(), base.data(), 1);
        } catch (const InvalidInput&) {
            continue;  // refused, naming a field: fine
        }
        mkfuzz::require(mkfuzz::all_finite(risk) && mkfuzz::all_finite(base), "revalue: non-finite result");
        revalue(inst, sc, risk2.data(), base2.data(), 3);
        mkfuzz::require(risk2 == risk && base2 == base, "revalue: result depends on the thread count");
    }
    return 0;
}
