#!/bin/sh
# Builds and runs the benchmarks of issues 2 and 3 (bench/core.cmake) and prints one summary
# table. Each benchmark measures its contestants side by side in one process and reports
# medians; see docs/benchmarks.md for what each number means.
#
# Usage: bench/run_core_benchmarks.sh [--quick]
#   BUILD_DIR   build directory (default: build/bench, release with debug info)
#   JOBS        parallel build jobs (default 2)
#   --quick     smaller heaps and fewer repetitions (a smoke run, not for the record)
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build/bench}
JOBS=${JOBS:-2}
QUICK=0
[ "${1:-}" = "--quick" ] && QUICK=1

cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWEAKGC_BUILD_TESTS=OFF \
  -DWEAKGC_BUILD_EXAMPLES=OFF >/dev/null
cmake --build "$BUILD_DIR" -j"$JOBS" --target gcbench graph_bench pause_bench barrier_bench \
  finalize_bench >/dev/null

B=$BUILD_DIR/bench
OUT=$(mktemp)
trap 'rm -f "$OUT"' EXIT

echo "== machine"
echo "nproc $(nproc); $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'); kernel $(uname -r)"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"

run() {
  echo
  echo "== $*"
  "$@" | tee -a "$OUT"
}

if [ $QUICK = 1 ]; then
  run "$B/gcbench" 1
  run "$B/graph_bench" 200000 3
  run "$B/pause_bench" tree alloc 1048575 1
  run "$B/pause_bench" random alloc 262144 1
  run "$B/barrier_bench" 256 5 1
  run "$B/finalize_bench" 100000
else
  run "$B/gcbench" 3
  run "$B/graph_bench" 1000000 5
  run "$B/pause_bench" tree alloc 4194303 3
  run "$B/pause_bench" tree step 4194303 3
  run "$B/pause_bench" random alloc 1048576 3
  run "$B/barrier_bench" 1024 20 3
  run "$B/finalize_bench" 1000000
fi

# The summary: one line per RESULT, its key=value pairs as columns.
echo
echo "== summary (medians; ratios are subject / baseline measured in the same process)"
grep '^RESULT ' "$OUT" | awk '{
  printf "%-14s", $2
  for (i = 3; i <= NF; ++i) printf " %s", $i
  printf "\n"
}'
