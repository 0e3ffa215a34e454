#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine, builds weakgc, and runs the whole test suite: the optimised
# build, then Debug + AddressSanitizer + UndefinedBehaviorSanitizer, then the multi-threaded
# tests under ThreadSanitizer; builds the API reference and checks the installed package.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
jobs=$(nproc)
cmake --preset release
cmake --build --preset release -j"$jobs"
ctest --preset release -j"$jobs"
# The API reference builds from the header comments with warnings as errors.
cmake --build --preset release --target docs
cmake --preset asan
cmake --build --preset asan -j"$jobs"
ASAN_OPTIONS=detect_stack_use_after_return=0:detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --preset asan -j"$jobs"
# The multi-threaded tests once more under ThreadSanitizer.
cmake --preset tsan
cmake --build --preset tsan -j"$jobs"
TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 ctest --preset tsan -j"$jobs"
if [ -x scripts/test_install.sh ]; then ./scripts/test_install.sh; fi
echo "weakgc: all tests passed"
