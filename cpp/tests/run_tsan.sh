#!/usr/bin/env bash
# The C++ tests under ThreadSanitizer : every parallel path (revalue / net with threads > 1,
# the account book's concurrent readers and writers). GCC's shared libtsan: test_account replaces the
# global operator new, which clang's static TSan runtime does not allow. Usage: cpp/tests/run_tsan.sh [build-dir]
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build/tsan}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_TESTING=ON \
  -DMARGINKERNEL_SANITIZE=thread >/dev/null
cmake --build "$build" -j2 --target test_pipeline test_account test_account_threads test_book >/dev/null
# One SIMD target (the best): races do not depend on it, and the other builds run every target.
MK_TEST_ONE_TARGET=1 TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
  ctest --test-dir "$build" --output-on-failure
