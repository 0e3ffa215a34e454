#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine, builds weakgc (optimised) and runs the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cmake --preset release >/dev/null
target=demo
cmake --build --preset release -j"$(nproc)" --target "$target" >/dev/null || {
  target=hello_gc
  cmake --build --preset release -j"$(nproc)" --target "$target"
}
exec "./build/release/examples/$target" "$@"
