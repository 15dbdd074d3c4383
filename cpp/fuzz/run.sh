#!/usr/bin/env bash
# Builds the libFuzzer harnesses with clang (ASan + UBSan) and runs each for a bounded time over the
# corpus kept in cpp/fuzz/corpus/<harness>/ (read only: new inputs go to a scratch directory; a
# crash, leak or violated property fails the script and leaves the reproducer in the build dir).
# Usage: cpp/fuzz/run.sh [total-seconds=60] [build-dir=build/fuzz]
set -euo pipefail
cd "$(dirname "$0")/../.."
total=${1:-60}
build=${2:-build/fuzz}
cmake -S . -B "$build" -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_TESTING=OFF \
  -DMARGINKERNEL_FUZZ=ON "-DMARGINKERNEL_SANITIZE=fuzzer-no-link;address;undefined" >/dev/null
harnesses=(fuzz_revalue fuzz_net fuzz_reduce)
cmake --build "$build" -j2 --target "${harnesses[@]}" >/dev/null
each=$(( total / ${#harnesses[@]} ))
root=$PWD
for h in "${harnesses[@]}"; do
  scratch=$(mktemp -d)
  log="$build/$h.log"
  echo "== $h (${each}s)"
  set +e
  (cd "$build" && UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ./cpp/fuzz/"$h" "$scratch" \
    "$root/cpp/fuzz/corpus/$h" -max_total_time="$each" -timeout=10 -rss_limit_mb=2048 -max_len=4096 \
    -print_final_stats=1) >"$log" 2>&1
  status=$?
  set -e
  rm -rf "$scratch"
  grep -E "^(#[0-9]+ +DONE|stat::number_of_executed_units)" "$log" || true
  if [ "$status" -ne 0 ]; then
    tail -n 40 "$log"
    echo "$h: FAILED (exit $status); the reproducer is in $build (crash-*, leak-*, timeout-*)"
    exit 1
  fi
done
