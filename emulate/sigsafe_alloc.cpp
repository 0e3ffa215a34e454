// Static arena behind Capstone's CS_OPT_MEM hooks; see sigsafe_alloc.hpp.
#include "emulate/sigsafe_alloc.hpp"

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>

namespace weakgc::detail::emu::sigsafe {
namespace {

constexpr size_t kArenaBytes = size_t{1} << 20;  // 1 MiB: 8 handles need ~30 KiB
constexpr size_t kHeader = 16;                   // keeps payloads 16-aligned
constexpr size_t kMinClassShift = 5;             // 32 B
constexpr size_t kClasses = 16;                  // 32 B .. 1 MiB
constexpr uint64_t kMagic = 0x57474345'4d55414cull;

struct alignas(16) Header {
  uint32_t size_class;
  uint32_t pad;
  uint64_t magic;
};
static_assert(sizeof(Header) == kHeader);

struct FreeBlock {
  FreeBlock* next;
};

alignas(64) unsigned char g_arena[kArenaBytes];
std::atomic<size_t> g_top{0};

// Per class: the list head, taken only under a try-lock so a handler that interrupts a holder
// never waits for it.
struct FreeList {
  std::atomic_flag busy = ATOMIC_FLAG_INIT;
  FreeBlock* head = nullptr;
};
FreeList g_free[kClasses];

bool in_arena(const void* p) {
  auto a = reinterpret_cast<uintptr_t>(p);
  auto lo = reinterpret_cast<uintptr_t>(g_arena);
  return a >= lo && a < lo + kArenaBytes;
}

size_t class_of(size_t size) {
  size_t c = 0;
  while ((size_t{1} << (c + kMinClassShift)) < size) ++c;
  return c;
}

size_t class_bytes(size_t c) {
  return size_t{1} << (c + kMinClassShift);
}

Header* header_of(void* p) {
  return reinterpret_cast<Header*>(static_cast<char*>(p) - kHeader);
}

void* take_free(size_t c) {
  FreeList& fl = g_free[c];
  if (fl.busy.test_and_set(std::memory_order_acquire)) return nullptr;
  FreeBlock* b = fl.head;
  if (b != nullptr) fl.head = b->next;
  fl.busy.clear(std::memory_order_release);
  return b;
}

void* bump(size_t c) {
  size_t need = kHeader + class_bytes(c);
  size_t old = g_top.load(std::memory_order_relaxed);
  do {
    if (old + need > kArenaBytes) return nullptr;
  } while (!g_top.compare_exchange_weak(old, old + need, std::memory_order_relaxed));
  auto* h = reinterpret_cast<Header*>(g_arena + old);
  h->size_class = static_cast<uint32_t>(c);
  h->magic = kMagic;
  return g_arena + old + kHeader;
}

}  // namespace

void* alloc(size_t size) {
  if (size == 0) size = 1;
  if (size > class_bytes(kClasses - 1)) return nullptr;
  size_t c = class_of(size);
  if (void* p = take_free(c)) return p;
  return bump(c);
}

void* zalloc(size_t n, size_t size) {
  if (size != 0 && n > SIZE_MAX / size) return nullptr;
  void* p = alloc(n * size);
  if (p != nullptr) memset(p, 0, n * size);
  return p;
}

void* resize(void* p, size_t size) {
  if (p == nullptr) return alloc(size);
  if (!in_arena(p)) return realloc(p, size);  // predates the hooks: libc's, outside handlers
  Header* h = header_of(p);
  size_t have = class_bytes(h->size_class);
  if (size <= have) return p;
  void* q = alloc(size);
  if (q == nullptr) return nullptr;
  memcpy(q, p, have);
  release(p);
  return q;
}

void release(void* p) {
  if (p == nullptr) return;
  if (!in_arena(p)) {
    free(p);  // predates the hooks: libc's, outside handlers
    return;
  }
  Header* h = header_of(p);
  if (h->magic != kMagic || h->size_class >= kClasses) return;  // not ours to recycle: leak
  FreeList& fl = g_free[h->size_class];
  if (fl.busy.test_and_set(std::memory_order_acquire)) return;  // contended: leak, never wait
  auto* b = static_cast<FreeBlock*>(p);
  b->next = fl.head;
  fl.head = b;
  fl.busy.clear(std::memory_order_release);
}

int format_nothing(char* str, size_t size, const char*, va_list) {
  if (size > 0) str[0] = '\0';
  return 0;
}

size_t bytes_used() {
  return g_top.load(std::memory_order_relaxed);
}

}  // namespace weakgc::detail::emu::sigsafe
