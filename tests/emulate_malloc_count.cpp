// Allocator interposition for tests/emulate_malloc_count.hpp: forwards to glibc's __libc_*
// entry points and counts every call.
#include "emulate_malloc_count.hpp"

#include <atomic>
#include <cstddef>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)

namespace emu_test {
bool malloc_counting_available() {
  return false;
}
uint64_t malloc_calls() {
  return 0;
}
}  // namespace emu_test

#else

namespace {
std::atomic<uint64_t> g_calls{0};
}

extern "C" {
void* __libc_malloc(size_t);
void* __libc_calloc(size_t, size_t);
void* __libc_realloc(void*, size_t);
void __libc_free(void*);

void* malloc(size_t n) {
  g_calls.fetch_add(1, std::memory_order_relaxed);
  return __libc_malloc(n);
}
void* calloc(size_t n, size_t s) {
  g_calls.fetch_add(1, std::memory_order_relaxed);
  return __libc_calloc(n, s);
}
void* realloc(void* p, size_t n) {
  g_calls.fetch_add(1, std::memory_order_relaxed);
  return __libc_realloc(p, n);
}
void free(void* p) {
  g_calls.fetch_add(1, std::memory_order_relaxed);
  __libc_free(p);
}
}

namespace emu_test {
bool malloc_counting_available() {
  return true;
}
uint64_t malloc_calls() {
  return g_calls.load(std::memory_order_relaxed);
}
}  // namespace emu_test

#endif
