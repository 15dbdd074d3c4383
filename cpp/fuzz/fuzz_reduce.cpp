// libFuzzer harness over worst_loss() and value_at_risk(): any input either throws InvalidInput or
// returns finite figures; worst_loss equals its scalar definition bit for bit on every SIMD target.
#include <algorithm>
#include <vector>

#include "fuzz_common.hpp"
#include "marginkernel/reduce.hpp"

using namespace marginkernel;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    FuzzedDataProvider in(data, size);
    const auto rows = in.ConsumeIntegralInRange<std::size_t>(0, 6);
    const auto ns = in.ConsumeIntegralInRange<std::size_t>(0, 90);
    const auto wrows = in.ConsumeIntegralInRange<std::size_t>(0, 3);
    const auto pnl = mkfuzz::values(in, rows * ns, -100, 100);
    const auto weight = mkfuzz::values(in, wrows * ns, 0, 1);
    const auto probability = mkfuzz::values(in, ns, 0, 1);
    const double gain = mkfuzz::value(in, 0, 1), confidence = mkfuzz::value(in, 0.5, 1);
    const bool weighted = in.ConsumeBool(), by_probability = in.ConsumeBool();
    const double* w = weighted ? weight.data() : nullptr;

    for (const auto& target : available_simd_targets()) {
        select_simd_target(target);
        std::vector<double> loss(rows, -1.0);
        std::vector<std::int32_t> worst(rows, -1);
        bool ok = true;
        try {
            worst_loss(pnl.data(), rows, ns, w, wrows, gain, loss.data(), worst.data());
        } catch (const InvalidInput&) {
            ok = false;
        }
        if (ok) {
            mkfuzz::require(mkfuzz::all_finite(loss), "worst_loss: non-finite loss");
            for (std::size_t r = 0; r < rows; ++r) {
                double best = 0.0;
                std::int32_t at = 0;
                for (std::size_t s = 0; s < ns; ++s) {
                    const double p = pnl[r * ns + s], h = p > 0.0 ? gain * p : p;
                    const double v = w ? w[(r % wrows) * ns + s] * h : h;
                    if (s == 0 || v < best) best = v, at = static_cast<std::int32_t>(s);
                }
                mkfuzz::require(loss[r] == std::max(0.0, -best) && worst[r] == at, "worst_loss: differs from definition");
            }
        }
    }
    std::vector<double> var(rows), es(rows);
    try {
        value_at_risk(pnl.data(), rows, ns, by_probability ? probability.data() : nullptr, confidence, var.data(),
                      es.data());
    } catch (const InvalidInput&) {
        return 0;
    }
    mkfuzz::require(mkfuzz::all_finite(var) && mkfuzz::all_finite(es), "value_at_risk: non-finite result");
    return 0;
}
