#!/usr/bin/env bash
# Builds and installs the marginkernel C++ library with plain CMake (no Python, no pip), runs its
# ctest tests, then builds the consumer project in cpp/tests/consumer against the installed package
# (find_package(marginkernel CONFIG REQUIRED)) and runs its pre-trade check loop.
#
#   cpp/tests/run_consumer.sh [work-dir]      (default: a fresh temporary directory, removed after)
#
# Environment: CMAKE_ARGS (extra arguments for the library's configure, e.g.
# -DMARGINKERNEL_SANITIZE=thread), JOBS (parallel build jobs, default 2).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
jobs=${JOBS:-2}
if [[ $# -ge 1 ]]; then
  work=$1
  mkdir -p "$work"
else
  work=$(mktemp -d "${TMPDIR:-/tmp}/marginkernel-consumer.XXXXXX")
  trap 'rm -rf "$work"' EXIT
fi
prefix=$work/prefix

echo "== configure, build and test the library (build dir $work/build)"
# shellcheck disable=SC2086
cmake -S "$root" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$prefix" \
  -DBUILD_TESTING=ON ${CMAKE_ARGS:-}
cmake --build "$work/build" -j "$jobs"
ctest --test-dir "$work/build" --output-on-failure

echo "== install to $prefix"
cmake --install "$work/build"
# Consumers must not need Eigen: neither the headers nor the exported targets may refer to it.
if grep -rlE '#include *[<"]Eigen|Eigen::|Eigen3' "$prefix/include" "$prefix/lib/cmake/marginkernel"; then
  echo "the installed package refers to Eigen" >&2
  exit 1
fi

echo "== build the consumer against the installed package"
cmake -S "$root/cpp/tests/consumer" -B "$work/consumer" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$prefix"
cmake --build "$work/consumer" -j "$jobs"
"$work/consumer/pretrade_check"
# The deribit-pm model loaded from the installed preset, margined in C++, against Python's figures.
"$work/consumer/margin_model" "$root/cpp/tests/consumer/data/deribit_market.toml" \
  "$root/cpp/tests/consumer/data/deribit_case.toml"
echo "== consumer check passed"
