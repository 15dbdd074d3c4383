// The hot loops of every stage, compiled once per SIMD target. CMake builds this file several
// times with MK_TARGET set to baseline / avx2 / avx512 and the matching -m flags. The loops
// themselves live in one kernels_<stage>-inl.hpp per stage (Highway-style), included below.
//
// Each copy renames Eigen's namespace so that no inline Eigen function compiled for one target can
// be merged by the linker into another target's code (which would run AVX-512 instructions on a
// CPU without them). Only plain pointers leave this file.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <utility>
#include <vector>

#ifndef MK_TARGET
#error "MK_TARGET must name the SIMD target (baseline, avx2, avx512)"
#endif
#define MK_CAT2(a, b) a##b
#define MK_CAT(a, b) MK_CAT2(a, b)
#define MK_STR2(a) #a
#define MK_STR(a) MK_STR2(a)
#define Eigen MK_CAT(marginkernel_eigen_, MK_TARGET)

#include <Eigen/Core>

#include "buffer.hpp"
#include "cache_info.hpp"
#include "kernels.hpp"
#include "select.hpp"

namespace marginkernel::detail {
namespace MK_TARGET {
namespace {

#include "kernels_packets-inl.hpp"
#include "kernels_revalue-inl.hpp"
#include "kernels_net-inl.hpp"
#include "kernels_reduce-inl.hpp"
#include "kernels_whatif-inl.hpp"

}  // namespace
}  // namespace MK_TARGET

extern const Kernels MK_CAT(kernels_, MK_TARGET);
const Kernels MK_CAT(kernels_, MK_TARGET) = {
    MK_STR(MK_TARGET),
    &MK_TARGET::revalue_rows,
    &MK_TARGET::net_accounts,
    &MK_TARGET::worst_loss_rows,
    &MK_TARGET::tail_rows,
    &MK_TARGET::normal_cdf_array,
    &MK_TARGET::whatif_min,
    &MK_TARGET::stream_read,
    &MK_TARGET::stream_write,
    &MK_TARGET::whatif_fill,
    &MK_TARGET::tail_indices,
    &MK_TARGET::collect_indices_at_most,
    &MK_TARGET::mul_add,
};

}  // namespace marginkernel::detail
