// Run-time choice of the instruction set for the hot kernels. Each kernel is compiled once per
// target (separate translation units and namespaces) and the best one the CPU supports is used,
// the way NumPy and Highway ship portable binaries.
#pragma once

#include <string>
#include <vector>

namespace marginkernel {

std::vector<std::string> available_simd_targets();  // compiled in and supported by this CPU
std::string simd_target();                          // the one in use
// Selects a target by name ("baseline", "avx2", "avx512"); throws InvalidInput if unavailable.
// Not thread-safe against concurrent kernel calls: call it at start-up. The environment variable
// MARGINKERNEL_SIMD sets the initial choice.
void select_simd_target(const std::string& name);

}  // namespace marginkernel
