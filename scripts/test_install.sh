#!/usr/bin/env bash
# Installs weakgc into a temporary prefix and builds and runs the consumer project
# (tests/consumer) against the installed tree, the way a client would:
#   1. through CMake: find_package(weakgc CONFIG REQUIRED) + weakgc::weakgc / weakgc::weakgc_shared
#   2. through pkg-config: weakgc.pc, shared and static (--static)
# and checks that libweakgc.so exports only the public API. Exits 0 when everything passed.
#
# Usage: scripts/test_install.sh [build-dir]   (default: build/install-check, library only)
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD
build=${1:-$src/build/install-check}
jobs=$(nproc)
work=$(mktemp -d "${TMPDIR:-/tmp}/weakgc-install.XXXXXX")
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix
step() { echo "test_install: $*"; }

step "building the library in $build"
cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWEAKGC_BUILD_TESTS=OFF \
  -DWEAKGC_BUILD_BENCH=OFF -DWEAKGC_BUILD_EXAMPLES=OFF >"$work/configure.log" \
  || { cat "$work/configure.log"; exit 1; }
cmake --build "$build" -j"$jobs" --target weakgc weakgc_shared >"$work/build.log" \
  || { cat "$work/build.log"; exit 1; }
step "installing into $prefix"
cmake --install "$build" --prefix "$prefix" >"$work/install.log"
for f in include/weakgc/weakgc.h include/weakgc/version.hpp include/weakgc/export.hpp \
         lib/libweakgc.a lib/pkgconfig/weakgc.pc lib/cmake/weakgc/weakgcConfig.cmake \
         lib/cmake/weakgc/weakgcConfigVersion.cmake lib/cmake/weakgc/weakgcTargets.cmake; do
  [ -e "$prefix/$f" ] || { echo "test_install: missing $f"; exit 1; }
done
ls "$prefix"/lib/libweakgc.so* >/dev/null

step "checking the exported symbols of libweakgc.so"
# Allowed: the C API (weakgc_*), the C++ API (weakgc::, but in weakgc::detail only what inline
# code and templates of the public headers call), and libstdc++ template instances.
bad=$(nm -D --defined-only "$prefix/lib/libweakgc.so" | awk '{print $3}' | c++filt | awk '
  /^weakgc_/ { next }                                          # the C API
  /^weakgc::detail::(typed_pool|leaf_pool|link_handle|unlink_handle|guarded_load|guard_store)\(/ { next }
  /^weakgc::detail::TableLock::/ { next }                      # used by the concurrent tables templates
  /^weakgc::detail::/ { print; next }                          # any other internal function
  /^weakgc::/ { next }                                         # the C++ API
  /^(typeinfo|typeinfo name|vtable) for weakgc::/ { next }
  /^[^(]*std::/ { next }                                       # libstdc++ template instances
  { print }')
if [ -n "$bad" ]; then
  echo "test_install: libweakgc.so exports internal symbols:"; echo "$bad"; exit 1
fi
exported=$(nm -D --defined-only "$prefix/lib/libweakgc.so")
grep -q ' T weakgc_arena_create$' <<<"$exported"
grep -q ' T _ZN6weakgc5Arena7collectEv$' <<<"$exported"

step "consumer through CMake (find_package(weakgc CONFIG REQUIRED))"
cmake -S "$src/tests/consumer" -B "$work/cmake-build" -DCMAKE_PREFIX_PATH="$prefix" \
  >"$work/consumer-configure.log" || { cat "$work/consumer-configure.log"; exit 1; }
cmake --build "$work/cmake-build" -j"$jobs" >"$work/consumer-build.log" \
  || { cat "$work/consumer-build.log"; exit 1; }
"$work/cmake-build/consumer_c"
"$work/cmake-build/consumer_cpp"
if grep -q libweakgc <<<"$(ldd "$work/cmake-build/consumer_c")"; then
  echo "test_install: consumer_c should be linked statically"; exit 1
fi
grep -q "$prefix/lib/libweakgc.so" <<<"$(ldd "$work/cmake-build/consumer_cpp")"

step "consumer through pkg-config (weakgc.pc)"
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
libdir=$(pkg-config --variable=libdir weakgc)
[ "$(cd "$libdir" && pwd)" = "$(cd "$prefix/lib" && pwd)" ]
grep -q capstone <<<"$(pkg-config --print-requires-private weakgc)"
cc=${CC:-cc}
cxx=${CXX:-c++}
# shellcheck disable=SC2046  # pkg-config's output is a list of flags
"$cc" -std=c99 -Wall -Wextra -Werror -o "$work/pc_c_shared" "$src/tests/consumer/main.c" \
  $(pkg-config --cflags --libs weakgc) -Wl,-rpath,"$libdir"
"$work/pc_c_shared"
# shellcheck disable=SC2046
"$cxx" -std=c++20 -Wall -Wextra -Werror -o "$work/pc_cpp_shared" "$src/tests/consumer/main.cpp" \
  $(pkg-config --cflags --libs weakgc) -Wl,-rpath,"$libdir"
"$work/pc_cpp_shared"
# Static: the archive by name, then the private dependencies that --static adds.
static_libs=$(pkg-config --static --libs weakgc | sed 's/-lweakgc\b/-l:libweakgc.a/')
# shellcheck disable=SC2046,SC2086
"$cc" -std=c99 -Wall -Wextra -Werror -o "$work/pc_c_static" "$src/tests/consumer/main.c" \
  $(pkg-config --cflags weakgc) $static_libs
"$work/pc_c_static"
if grep -q libweakgc <<<"$(ldd "$work/pc_c_static")"; then
  echo "test_install: pc_c_static should not need libweakgc.so"; exit 1
fi
step "passed (CMake: static C + shared C++; pkg-config: shared C and C++, static C)"
