// Seqlock-protected direct-mapped decode cache; see decode_cache.hpp.
#include "emulate/decode_cache.hpp"

#include <atomic>
#include <cstring>
#include <type_traits>

#include "emulate/form.hpp"

namespace weakgc::detail::emu::cache {
namespace {

static_assert(std::is_trivially_copyable_v<Decoded>);

// Payload: rip, 16 code bytes, the form; copied through relaxed atomic words so that a racing
// reader sees a torn copy (caught by the sequence check) rather than undefined behaviour.
struct Payload {
  uint64_t rip;
  uint8_t bytes[16];
  Decoded form;
};
constexpr size_t kWords = (sizeof(Payload) + 7) / 8;

struct Entry {
  std::atomic<uint32_t> seq{0};  // odd while a writer fills the entry; 0 = never filled
  std::atomic<uint64_t> words[kWords];
};

Entry g_entries[kCacheEntries];

size_t slot_of(uint64_t rip) {
  // Fibonacci hashing: neighbouring instructions spread over the table.
  return static_cast<size_t>((rip * 0x9E3779B97F4A7C15ull) >> 54) & (kCacheEntries - 1);
}
static_assert(kCacheEntries == 1024, "slot_of keeps the top 10 bits");

}  // namespace

bool lookup(uint64_t rip, const uint8_t* code, size_t len, Decoded* out) {
  Entry& e = g_entries[slot_of(rip)];
  uint32_t s1 = e.seq.load(std::memory_order_acquire);
  if (s1 == 0 || (s1 & 1) != 0) return false;
  uint64_t w[kWords];
  for (size_t i = 0; i < kWords; ++i) w[i] = e.words[i].load(std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_acquire);
  if (e.seq.load(std::memory_order_relaxed) != s1) return false;
  Payload p;
  memcpy(&p, w, sizeof p);
  if (p.rip != rip || p.form.length == 0 || p.form.length > len) return false;
  if (memcmp(p.bytes, code, p.form.length) != 0) return false;
  *out = p.form;
  return true;
}

void insert(uint64_t rip, const uint8_t* code, const Decoded& d) {
  if (d.length == 0 || d.length > kMaxInsnLength) return;
  Entry& e = g_entries[slot_of(rip)];
  uint32_t s = e.seq.load(std::memory_order_relaxed);
  if ((s & 1) != 0 || !e.seq.compare_exchange_strong(s, s + 1, std::memory_order_acquire))
    return;  // another writer: skip, never wait
  std::atomic_thread_fence(std::memory_order_release);
  Payload p{};
  p.rip = rip;
  memcpy(p.bytes, code, d.length);
  p.form = d;
  uint64_t w[kWords] = {};
  memcpy(w, &p, sizeof p);
  for (size_t i = 0; i < kWords; ++i) e.words[i].store(w[i], std::memory_order_relaxed);
  e.seq.store(s + 2, std::memory_order_release);
}

void clear() {
  for (Entry& e : g_entries) {
    uint32_t s = e.seq.load(std::memory_order_relaxed);
    if ((s & 1) != 0 || !e.seq.compare_exchange_strong(s, s + 1, std::memory_order_acquire))
      continue;
    e.words[0].store(0, std::memory_order_relaxed);  // rip 0 never matches a real RIP
    e.seq.store(s + 2, std::memory_order_release);
  }
}

}  // namespace weakgc::detail::emu::cache
