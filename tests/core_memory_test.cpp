// Memory (issue 2): large objects, exhaustion and recovery, memory returned to the OS, and every
// bad input answered with a clear Status.
#include <sys/mman.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <set>
#include <string>
#include <vector>

#include "support/shadow_graph.hpp"
#include "weakgc/arena.hpp"
#include "weakgc/gc.hpp"

namespace {

using weakgc::Arena;
using weakgc::ArenaOptions;
using weakgc::Status;

constexpr size_t kMiB = size_t{1} << 20;

std::unique_ptr<Arena> make_arena(size_t reserve, bool auto_collect) {
  ArenaOptions o;
  o.reserve_bytes = reserve;
  if (!auto_collect) o.trigger_bytes = size_t{1} << 40;
  o.register_thread = false;  // exact roots: what the test drops really dies
  Status st;
  auto a = Arena::create(o, &st);
  EXPECT_EQ(st, Status::kOk) << weakgc::status_name(st);
  return a;
}

// An exact-root array in malloc'd memory, registered for its lifetime.
struct RootArray {
  Arena& arena;
  void** w;
  size_t n;
  weakgc::RootId id;
  RootArray(Arena& a, size_t count)
      : arena(a), w(static_cast<void**>(calloc(count, sizeof(void*)))), n(count) {
    EXPECT_EQ(a.register_root(w, n, &id), Status::kOk);
  }
  ~RootArray() {
    (void)arena.remove_root(id);
    free(w);
  }
  void clear() { memset(static_cast<void*>(w), 0, n * sizeof(void*)); }
};

// Pages of [p, p+len) resident in memory (mincore; for the arena's memfd views this is the page
// cache, so a hole punched by release is not resident).
size_t resident_bytes(const void* p, size_t len) {
  size_t pages = len / 4096;
  std::vector<unsigned char> v(pages);
  if (mincore(const_cast<void*>(p), len, v.data()) != 0) return SIZE_MAX;
  size_t n = 0;
  for (unsigned char c : v) n += c & 1;
  return n * 4096;
}

// The process's resident set size (/proc/self/statm, second field).
size_t rss_bytes() {
  FILE* f = fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  unsigned long size = 0, resident = 0;
  int got = fscanf(f, "%lu %lu", &size, &resident);
  fclose(f);
  return got == 2 ? resident * static_cast<size_t>(sysconf(_SC_PAGESIZE)) : 0;
}

// ------------------------------------------------------------------ large objects

TEST(LargeObjects, AreZeroedAlignedAndResolveFromAnyInteriorAddress) {
  auto arena = make_arena(64 * kMiB, false);
  weakgc::Pool* ams = nullptr;
  ASSERT_EQ(arena->create_pool(weakgc::PoolClass::kAMS, &wgtest::kGraphFormat, &ams), Status::kOk);
  RootArray roots(*arena, 16);
  const size_t sizes[] = {16 * 1024 + 1, 64 * 1024, 64 * 1024 + 16, 300 * 1024, 3 * kMiB + 7};
  for (size_t i = 0; i < 5; ++i) {
    void* p = nullptr;
    ASSERT_EQ(arena->alloc(ams, sizes[i], &p), Status::kOk);
    roots.w[i] = p;
    auto b = reinterpret_cast<uintptr_t>(p);
    EXPECT_EQ(b % 16, 0u);
    EXPECT_GE(arena->object_size(p), sizes[i]);
    for (size_t off = 0; off < sizes[i]; off += 4093) {
      ASSERT_EQ(arena->object_base(reinterpret_cast<void*>(b + off)), p) << i << " " << off;
      ASSERT_EQ(*reinterpret_cast<char*>(b + off), 0) << "not zeroed";
    }
    EXPECT_EQ(arena->object_base(reinterpret_cast<void*>(b + sizes[i] + 64)), nullptr);
    memset(p, 0xab, sizes[i]);
    wgtest::store_word(b, wgtest::kIdWord, i + 1);
    wgtest::store_word(b, wgtest::kNslotsWord, 0);
  }
  // The last slot word of the 300 KiB object names the 3 MiB one (a reference deep inside).
  auto big = reinterpret_cast<uintptr_t>(roots.w[3]);
  wgtest::store_word(big, wgtest::kNslotsWord, 2);
  wgtest::store_word(big, wgtest::kStrideWord, (300 * 1024 / 8 - 4));
  wgtest::store_word(big, wgtest::kFirstSlotWord, 0);
  wgtest::store_word(big, wgtest::kFirstSlotWord + (300 * 1024 / 8 - 4),
                     reinterpret_cast<uintptr_t>(roots.w[4]));
  void* last = roots.w[4];
  void* dropped = roots.w[1];  // exact roots only: this local is not a root
  roots.w[4] = nullptr;
  roots.w[1] = nullptr;
  arena->collect();
  EXPECT_EQ(arena->object_base(last), last) << "reference in the last page of a large object";
  EXPECT_EQ(arena->object_base(dropped), nullptr);
  for (size_t i : {0, 2, 3}) EXPECT_EQ(arena->object_base(roots.w[i]), roots.w[i]);
  arena->verify();
  // A freed large object's segments are reused, zeroed, by the next allocation.
  void* again = nullptr;
  ASSERT_EQ(arena->alloc(ams, 64 * 1024, &again), Status::kOk);
  for (size_t off = 0; off < 64 * 1024; off += 8)
    ASSERT_EQ(*reinterpret_cast<uint64_t*>(static_cast<char*>(again) + off), 0u) << off;
}

// ------------------------------------------------------------------ exhaustion

// Fills the arena through the roots until kNoMemory; returns the number of objects rooted.
__attribute__((noinline)) size_t fill(Arena& a, weakgc::Pool* ams, weakgc::Pool* lo,
                                      RootArray& roots, Status* last) {
  size_t i = 0;
  wgtest::Rng rng(7);
  for (; i < roots.n; ++i) {
    size_t size = rng.chance(30) ? 1024 : 256 * 1024 + 4096 * rng.below(128);
    void* p = nullptr;
    *last = a.alloc(rng.chance(50) ? ams : lo, size, &p);
    if (*last != Status::kOk) break;
    wgtest::store_word(reinterpret_cast<uintptr_t>(p), wgtest::kIdWord, i + 1);
    roots.w[i] = p;
  }
  return i;
}

TEST(Exhaustion, NoMemoryThenRecoveryAfterRootsAreDropped) {
  auto arena = make_arena(64 * kMiB, true);  // default trigger: cycles run while filling
  weakgc::Pool *ams = nullptr, *lo = nullptr;
  ASSERT_EQ(arena->create_pool(weakgc::PoolClass::kAMS, &wgtest::kGraphFormat, &ams), Status::kOk);
  ASSERT_EQ(arena->create_pool(weakgc::PoolClass::kLO, nullptr, &lo), Status::kOk);
  RootArray roots(*arena, 4096);
  Status last = Status::kOk;
  size_t n = fill(*arena, ams, lo, roots, &last);
  ASSERT_EQ(last, Status::kNoMemory) << weakgc::status_name(last);
  EXPECT_STREQ(weakgc::status_name(last), "no memory");
  EXPECT_GT(n, 50u);
  EXPECT_GE(arena->committed_bytes(), 48 * kMiB);
  // The arena stays usable: nothing rooted was lost, it verifies, asking again says the same.
  arena->verify();
  for (size_t i = 0; i < n; ++i) {
    ASSERT_EQ(arena->object_base(roots.w[i]), roots.w[i]) << i;
    ASSERT_EQ(wgtest::peek_word(*arena, reinterpret_cast<uintptr_t>(roots.w[i]), 0), i + 1);
  }
  void* p = nullptr;
  EXPECT_EQ(arena->alloc(ams, 2 * kMiB, &p), Status::kNoMemory);
  // Drop every other root: large allocations fit again (after the collection alloc runs).
  for (size_t i = 0; i < n; i += 2) roots.w[i] = nullptr;
  EXPECT_EQ(arena->alloc(ams, 200 * 1024, &p), Status::kOk);
  for (size_t i = 1; i < n; i += 2) ASSERT_EQ(arena->object_base(roots.w[i]), roots.w[i]) << i;
  // Drop everything: one object of half the reserve fits.
  roots.clear();
  arena->collect();
  EXPECT_LE(arena->committed_bytes(), 2 * kMiB);
  EXPECT_EQ(arena->alloc(lo, 32 * kMiB, &p), Status::kOk);
  arena->verify();
}

struct Big : weakgc::GcObject {
  weakgc::Ref<Big> next;
  char payload[60 * 1024];
  void trace(weakgc::Visitor& v) const override { v.visit(next); }
};

// Builds a chain of Big objects from `head` until make<Big> throws.
__attribute__((noinline)) bool fill_typed(Arena& a, weakgc::Root<Big>& head, size_t* count) {
  try {
    for (;;) {
      Big* b = weakgc::make<Big>(a);
      b->next = head.get();
      head = b;
      ++*count;
    }
  } catch (const std::bad_alloc&) {
    return true;
  }
}

__attribute__((noinline)) bool make_one(Arena& a) {
  try {
    weakgc::keep_alive(weakgc::make<Big>(a));
    weakgc::keep_alive(weakgc::make_leaf_bytes(a, 8 * kMiB));
    return true;
  } catch (const std::bad_alloc&) {
    return false;
  }
}

TEST(Exhaustion, TypedLayerThrowsBadAllocAndRecovers) {
  auto arena = make_arena(64 * kMiB, true);
  weakgc::Root<Big> head(*arena);
  size_t count = 0;
  EXPECT_TRUE(fill_typed(*arena, head, &count));
  EXPECT_GT(count, 500u);  // 64 KiB per object in 64 MiB
  EXPECT_THROW(weakgc::make_leaf_bytes(*arena, 4 * kMiB), std::bad_alloc);
  size_t seen = 0;
  for (Big* b = head.get(); b != nullptr; b = b->next.get()) ++seen;
  EXPECT_EQ(seen, count);
  arena->verify();
  head = nullptr;
  EXPECT_TRUE(make_one(*arena));
}

// ------------------------------------------------------------------ memory back to the OS

__attribute__((noinline)) void fill_and_touch(Arena& a, weakgc::Pool* lo, weakgc::Pool* ams,
                                              RootArray& roots, size_t bytes) {
  size_t i = 0;
  for (size_t done = 0; done < bytes && i < roots.n; ++i) {
    void* p = nullptr;
    size_t size = (i % 4 == 0) ? 4096 : 512 * 1024;
    ASSERT_EQ(a.alloc(i % 2 ? lo : ams, size, &p), Status::kOk);
    memset(p, 0x5a, size);
    wgtest::store_word(reinterpret_cast<uintptr_t>(p), wgtest::kNslotsWord, 0);
    roots.w[i] = p;
    done += size;
  }
}

TEST(MemoryReturn, CommittedAndResidentBytesFallWhenAGraphDies) {
  auto arena = make_arena(256 * kMiB, false);
  weakgc::Pool *ams = nullptr, *lo = nullptr;
  ASSERT_EQ(arena->create_pool(weakgc::PoolClass::kAMS, &wgtest::kGraphFormat, &ams), Status::kOk);
  ASSERT_EQ(arena->create_pool(weakgc::PoolClass::kLO, nullptr, &lo), Status::kOk);
  RootArray roots(*arena, 1024);
  const void* base = arena->impl()->base;
  size_t reserve = arena->impl()->reserve;
  size_t c0 = arena->committed_bytes();
  size_t rss0 = rss_bytes();
  fill_and_touch(*arena, lo, ams, roots, 48 * kMiB);
  size_t c1 = arena->committed_bytes();
  size_t rss1 = rss_bytes();
  size_t res1 = resident_bytes(base, reserve);
  EXPECT_GE(c1 - c0, 48 * kMiB);
  EXPECT_EQ(arena->stats().committed_bytes, c1);
  EXPECT_GE(res1, 48 * kMiB);
  EXPECT_GE(rss1, rss0 + 40 * kMiB);
  arena->collect();  // everything rooted: nothing goes back
  EXPECT_EQ(arena->committed_bytes(), c1);
  roots.clear();
  arena->collect();
  size_t c2 = arena->committed_bytes();
  size_t rss2 = rss_bytes();
  size_t res2 = resident_bytes(base, reserve);
  EXPECT_LE(c2, c0 + kMiB);
  // The arena keeps up to kFreeCacheMinSegments empty segments committed for reuse (the live
  // data here is tiny, so that is the bound); everything beyond goes back to the OS.
  EXPECT_LE(res2, 2 * kMiB + weakgc::detail::kFreeCacheMinSegments * weakgc::detail::kSegmentSize)
      << "arena pages still resident after their segments were released";
  EXPECT_LE(rss2 + 40 * kMiB, rss1) << "rss " << rss0 << " -> " << rss1 << " -> " << rss2;
  EXPECT_GT(arena->stats().segments_released, 0u);
}

// ------------------------------------------------------------------ bad input

TEST(BadInput, EveryBadArgumentGetsAClearStatus) {
  auto arena = make_arena(16 * kMiB, false);
  Arena& a = *arena;
  weakgc::Pool *ams = nullptr, *lo = nullptr, *awl = nullptr, *pool = nullptr;
  // Pools: AMS needs a format with a scan function; unknown class; null out.
  EXPECT_EQ(a.create_pool(weakgc::PoolClass::kAMS, nullptr, &pool), Status::kBadParam);
  weakgc::Format no_scan;
  EXPECT_EQ(a.create_pool(weakgc::PoolClass::kAMS, &no_scan, &pool), Status::kBadParam);
  EXPECT_EQ(a.create_pool(static_cast<weakgc::PoolClass>(9), &wgtest::kGraphFormat, &pool),
            Status::kBadParam);
  EXPECT_EQ(a.create_pool(weakgc::PoolClass::kLO, nullptr, nullptr), Status::kBadParam);
  ASSERT_EQ(a.create_pool(weakgc::PoolClass::kAMS, &wgtest::kGraphFormat, &ams), Status::kOk);
  ASSERT_EQ(a.create_pool(weakgc::PoolClass::kLO, nullptr, &lo), Status::kOk);
  ASSERT_EQ(a.create_pool(weakgc::PoolClass::kAWL, nullptr, &awl), Status::kOk);
  EXPECT_EQ(ams->pool_class(), weakgc::PoolClass::kAMS);
  EXPECT_EQ(lo->pool_class(), weakgc::PoolClass::kLO);

  // Allocation: zero and absurd sizes, null pool or out, weak ranks outside AWL, foreign pool.
  void* p = nullptr;
  EXPECT_EQ(a.alloc(ams, 0, &p), Status::kBadParam);
  EXPECT_EQ(a.alloc(lo, 0, &p), Status::kBadParam);
  EXPECT_EQ(a.alloc(ams, SIZE_MAX, &p), Status::kBadParam);
  EXPECT_EQ(a.alloc(ams, SIZE_MAX / 2, &p), Status::kBadParam);
  EXPECT_EQ(a.alloc(lo, 64 * kMiB, &p), Status::kBadParam);  // more than the reserve
  EXPECT_EQ(a.alloc(nullptr, 64, &p), Status::kBadParam);
  EXPECT_EQ(a.alloc(ams, 64, nullptr), Status::kBadParam);
  EXPECT_EQ(a.alloc(ams, 64, &p, weakgc::Rank::kWeak), Status::kBadParam);
  EXPECT_EQ(a.alloc(ams, 64, &p, weakgc::Rank::kEphemeron), Status::kBadParam);
  EXPECT_EQ(a.alloc(lo, 64, &p, weakgc::Rank::kWeak), Status::kBadParam);
  EXPECT_EQ(p, nullptr);
  {
    auto other = make_arena(16 * kMiB, false);
    weakgc::Pool* foreign = nullptr;
    ASSERT_EQ(other->create_pool(weakgc::PoolClass::kLO, nullptr, &foreign), Status::kOk);
    EXPECT_EQ(a.alloc(foreign, 64, &p), Status::kBadParam);
  }
  // An allocation too big for what is left (but not for the reserve) is kNoMemory, not a crash.
  RootArray keep(a, 1);
  ASSERT_EQ(a.alloc(ams, 64, &p), Status::kOk);
  wgtest::store_word(reinterpret_cast<uintptr_t>(p), wgtest::kIdWord, 1);
  keep.w[0] = p;
  void* big = nullptr;
  EXPECT_EQ(a.alloc(lo, 16 * kMiB - 4096, &big), Status::kNoMemory);
  EXPECT_EQ(big, nullptr);

  // Roots: null base, zero count, null out, a base inside the arena, double registration,
  // unknown and already-removed ids.
  void* words[4] = {};
  weakgc::RootId id, id2;
  EXPECT_EQ(a.register_root(nullptr, 4, &id), Status::kBadParam);
  EXPECT_EQ(a.register_root(words, 0, &id), Status::kBadParam);
  EXPECT_EQ(a.register_root(words, 4, nullptr), Status::kBadParam);
  EXPECT_EQ(a.register_root(static_cast<void**>(p), 1, &id), Status::kBadParam);
  ASSERT_EQ(a.register_root(words, 4, &id), Status::kOk);
  EXPECT_EQ(a.register_root(words, 4, &id2), Status::kAlready);
  EXPECT_STREQ(weakgc::status_name(Status::kAlready), "already registered");
  EXPECT_EQ(a.remove_root(weakgc::RootId{id.value + 1000}), Status::kNotFound);
  EXPECT_EQ(a.remove_root(weakgc::RootId{0}), Status::kNotFound);
  EXPECT_EQ(a.remove_root(id), Status::kOk);
  EXPECT_EQ(a.remove_root(id), Status::kNotFound);
  EXPECT_STREQ(weakgc::status_name(Status::kNotFound), "not found");

  // Finalization: non-objects (stack, malloc, interior, free arena memory, null), duplicates.
  int local = 0;
  std::unique_ptr<int> heap(new int(0));
  EXPECT_EQ(a.finalize(&local), Status::kBadParam);
  EXPECT_EQ(a.finalize(heap.get()), Status::kBadParam);
  EXPECT_EQ(a.finalize(nullptr), Status::kBadParam);
  EXPECT_EQ(a.finalize(static_cast<char*>(p) + 8), Status::kBadParam);
  EXPECT_EQ(a.finalize(static_cast<char*>(p) + 64 * 1024 * 8), Status::kBadParam);
  EXPECT_STREQ(weakgc::status_name(Status::kBadParam), "bad parameter");
  void* q = nullptr;
  ASSERT_EQ(a.alloc(lo, 32, &q), Status::kOk);
  EXPECT_EQ(a.finalize(q), Status::kOk);
  EXPECT_EQ(a.finalize(q), Status::kAlready);
  void* taken = nullptr;
  EXPECT_FALSE(a.take_finalized(nullptr));
  EXPECT_FALSE(a.take_finalized(&taken));

  // Expose: empty and foreign ranges.
  EXPECT_EQ(a.expose(p, 0), Status::kBadParam);
  EXPECT_EQ(a.expose(&local, sizeof local), Status::kBadParam);

  // The arena still works after all of that.
  a.collect();
  a.verify();
  EXPECT_TRUE(a.take_finalized(&taken));  // q was unreachable: finalized, not lost
  EXPECT_EQ(taken, q);
  EXPECT_EQ(a.object_base(p), p);
}

TEST(BadInput, ArenaOptionsOutOfRange) {
  Status st = Status::kOk;
  ArenaOptions o;
  o.reserve_bytes = 4096;  // below the minimum of four segments
  EXPECT_EQ(Arena::create(o, &st), nullptr);
  EXPECT_EQ(st, Status::kBadParam);
  o.reserve_bytes = size_t{1} << 50;  // above 1 TiB
  EXPECT_EQ(Arena::create(o, &st), nullptr);
  EXPECT_EQ(st, Status::kBadParam);
  o = ArenaOptions{};
  o.pause_target_ms = -1;
  EXPECT_EQ(Arena::create(o, &st), nullptr);
  EXPECT_EQ(st, Status::kBadParam);
  o = ArenaOptions{};
  o.growth_factor = -2;
  EXPECT_EQ(Arena::create(o, &st), nullptr);
  EXPECT_EQ(st, Status::kBadParam);
  // NaN, infinities, and pause targets or growth factors no collector can meet (a pause target
  // under 1 µs once meant no deadline at all; 1e300 overflowed a conversion).
  for (double bad : {std::nan(""), HUGE_VAL, -HUGE_VAL, 1e-7, 1e300}) {
    o = ArenaOptions{};
    o.pause_target_ms = bad;
    EXPECT_EQ(Arena::create(o, &st), nullptr) << bad;
    EXPECT_EQ(st, Status::kBadParam);
    o = ArenaOptions{};
    o.growth_factor = bad == 1e-7 ? 1e7 : bad;
    EXPECT_EQ(Arena::create(o, &st), nullptr) << o.growth_factor;
    EXPECT_EQ(st, Status::kBadParam);
  }
  o = ArenaOptions{};
  o.pause_target_ms = 0.001;
  o.growth_factor = 1e6;
  EXPECT_NE(Arena::create(o, &st), nullptr);  // the ends of the ranges
  o.reserve_bytes = 4096;
  EXPECT_THROW(Arena{o}, std::runtime_error);
  EXPECT_NE(Arena::create(ArenaOptions{}, nullptr), nullptr);  // a null status pointer is fine
}

// Ranks outside the enum, and the ephemeron rank in a client AWL pool, are refused on every
// allocation path: the thread's allocation buffer (a registered thread, small objects) as well
// as the general one. Both once returned kOk: a bad rank indexed past the pool's per-rank
// arrays, and a client object at the ephemeron rank had the collector free live objects.
TEST(BadInput, RanksAreCheckedOnEveryAllocationPath) {
  for (bool registered : {false, true}) {
    SCOPED_TRACE(registered ? "registered thread" : "unregistered thread");
    ArenaOptions o;
    o.reserve_bytes = 16 * kMiB;
    o.trigger_bytes = size_t{1} << 40;
    o.register_thread = registered;
    Arena a(o);
    weakgc::Pool *awl = nullptr, *cawl = nullptr;
    ASSERT_EQ(a.create_pool(weakgc::PoolClass::kAWL, nullptr, &awl), Status::kOk);
    ASSERT_EQ(a.create_pool(weakgc::PoolClass::kAWL, &wgtest::kGraphFormat, &cawl), Status::kOk);
    void* p = nullptr;
    for (int r : {3, 9, 255}) {
      for (size_t size : {size_t{16}, size_t{48}, size_t{20000}}) {
        EXPECT_EQ(a.alloc(awl, size, &p, static_cast<weakgc::Rank>(r)), Status::kBadParam);
        EXPECT_EQ(a.alloc(cawl, size, &p, static_cast<weakgc::Rank>(r)), Status::kBadParam);
      }
    }
    for (size_t size : {size_t{16}, size_t{48}, size_t{20000}}) {
      for (int i = 0; i < 3; ++i)  // the second and later requests hit a filled buffer
        EXPECT_EQ(a.alloc(cawl, size, &p, weakgc::Rank::kEphemeron), Status::kBadParam) << size;
      p = nullptr;
      ASSERT_EQ(a.alloc(cawl, size, &p, weakgc::Rank::kWeak), Status::kOk);  // a valid one
      EXPECT_NE(p, nullptr);
    }
    a.collect();
    a.verify();
  }
}

// A scan function (a trace()) may only fix references: allocating, finalizing or making or
// dropping roots there would run collector work inside collector work, or change a list being
// scanned. Each is cheap to tell (the collector's lock is held by this very thread) and aborts
// with a message naming it, in every build (an allocation served from a registered thread's
// buffer, which takes no lock, is caught in debug builds: the arena here registers no thread).
Arena* g_scan_arena = nullptr;
weakgc::Pool* g_scan_pool = nullptr;
int g_scan_misuse = 0;
void misusing_scan(weakgc::ScanState&, void* obj, size_t, void*) {
  void* p = nullptr;
  switch (g_scan_misuse) {
    case 0:
      (void)g_scan_arena->alloc(g_scan_pool, 64, &p);
      break;
    case 1:
      (void)g_scan_arena->alloc(g_scan_pool, 64 * 1024, &p);  // a large object: no buffer
      break;
    case 2:
      (void)g_scan_arena->finalize(obj);
      break;
    case 3: {
      static void* words[1];
      weakgc::RootId id;
      (void)g_scan_arena->register_root(words, 1, &id);
      break;
    }
  }
}
void collect_with_misusing_scan(int misuse) {
  ArenaOptions o;
  o.reserve_bytes = 16 * kMiB;
  o.trigger_bytes = size_t{1} << 40;
  o.register_thread = false;
  Arena a(o);
  g_scan_arena = &a;
  g_scan_misuse = misuse;
  const weakgc::Format fmt{&misusing_scan, nullptr};
  weakgc::Pool* ams = nullptr;
  if (a.create_pool(weakgc::PoolClass::kAMS, &fmt, &ams) != Status::kOk) _exit(3);
  g_scan_pool = ams;
  static void* roots[1];
  weakgc::RootId id;
  if (a.alloc(ams, 64, &roots[0]) != Status::kOk || a.register_root(roots, 1, &id) != Status::kOk)
    _exit(3);
  a.collect();
  _exit(0);  // not reached: the scan misuses the arena
}

TEST(BadInputDeathTest, ScanFunctionsThatCallBackIntoTheArenaAbortWithAMessage) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(collect_with_misusing_scan(0), "allocation inside the collector");
  EXPECT_DEATH(collect_with_misusing_scan(1), "allocation inside the collector");
  EXPECT_DEATH(collect_with_misusing_scan(2), "finalize inside the collector");
  EXPECT_DEATH(collect_with_misusing_scan(3), "register_root inside the collector");
}

TEST(BadInput, StatusNamesAreDistinctAndReadable) {
  std::set<std::string> names;
  for (int s = 0; s <= static_cast<int>(Status::kUnimplemented); ++s) {
    const char* n = weakgc::status_name(static_cast<Status>(s));
    ASSERT_NE(n, nullptr);
    EXPECT_GT(strlen(n), 1u);
    names.insert(n);
  }
  EXPECT_EQ(names.size(), static_cast<size_t>(Status::kUnimplemented) + 1);
  EXPECT_STREQ(weakgc::status_name(Status::kOk), "ok");
}

// WEAKGC_INCREMENTAL=0 turns incremental collection off for arenas that do not choose.
TEST(Options, IncrementalFollowsTheEnvironmentUnlessChosen) {
  const char* saved = getenv("WEAKGC_INCREMENTAL");
  std::string keep = saved ? saved : "";
  setenv("WEAKGC_INCREMENTAL", "0", 1);
  EXPECT_FALSE(make_arena(16 * kMiB, false)->incremental());
  ArenaOptions o;
  o.reserve_bytes = 16 * kMiB;
  o.incremental = 1;
  EXPECT_TRUE(Arena(o).incremental());
  unsetenv("WEAKGC_INCREMENTAL");
  EXPECT_TRUE(make_arena(16 * kMiB, false)->incremental());
  o.incremental = 0;
  EXPECT_FALSE(Arena(o).incremental());
  if (saved) setenv("WEAKGC_INCREMENTAL", keep.c_str(), 1);
}

}  // namespace
