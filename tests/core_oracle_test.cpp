// Stop-the-world oracle stress for the foundation (issue 2): seeded random object graphs built with
// the low-level API, random mutations and root drops, then collect(); the surviving objects must
// be exactly the ones the shadow graph computes reachable (tests/support/shadow_graph.hpp), and
// Arena::verify() must pass after every collection. Not a benchmark.
//
// Reproduce one graph: WEAKGC_TEST_SEED=<seed printed> WEAKGC_TEST_ROUNDS=1 ./core_test
// --gtest_filter='StopTheWorldOracle.*'. WEAKGC_TEST_ROUNDS overrides the number of graphs.
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "support/shadow_graph.hpp"
#include "weakgc/arena.hpp"

#ifndef WEAKGC_TEST_STRESS
#define WEAKGC_TEST_STRESS 0
#endif

namespace {

using weakgc::Arena;
using weakgc::ArenaOptions;
using weakgc::Status;

constexpr uint64_t kDefaultGraphs = WEAKGC_TEST_STRESS ? 40000 : 1000;
constexpr uint64_t kDefaultSeed = 0x5eed0001;

struct GraphResult {
  std::string error;
  uint64_t cycles = 0;
  uint64_t freed = 0;
};

// One graph in a fresh arena: a few rounds of random mutations, each ending in collect().
// Addresses live only in the mutator's malloc'd shadow; this frame holds none.
__attribute__((noinline)) GraphResult run_graph(uint64_t seed, bool conservative) {
  GraphResult res;
  ArenaOptions o;
  o.reserve_bytes = size_t{32} << 20;
  o.trigger_bytes = size_t{1} << 40;  // only collect() starts cycles
  o.register_thread = conservative;
  Status st;
  std::unique_ptr<Arena> arena = Arena::create(o, &st);
  if (!arena) {
    res.error = std::string("Arena::create: ") + weakgc::status_name(st);
    return res;
  }
  wgtest::GraphMutator::Options mo;
  auto m = std::make_unique<wgtest::GraphMutator>(*arena, seed, mo);
  wgtest::Rng rng(seed ^ 0xabcdef);
  int rounds = 2 + static_cast<int>(rng.below(3));
  for (int r = 0; r < rounds && m->ok(); ++r) {
    int ops = 10 + static_cast<int>(rng.below(50));
    for (int i = 0; i < ops && m->ok(); ++i) m->op_random();
    m->collect();
  }
  res.error = m->error();
  res.cycles = m->cycles_checked();
  res.freed = m->objects_freed();
  return res;
}

__attribute__((noinline)) void run_graphs(bool conservative) {
  wgtest::clobber_stack(256 * 1024);  // stale words of earlier tests below this frame
  uint64_t base = wgtest::env_u64("WEAKGC_TEST_SEED", kDefaultSeed);
  uint64_t n = wgtest::env_u64("WEAKGC_TEST_ROUNDS", kDefaultGraphs);
  uint64_t cycles = 0, freed = 0;
  for (uint64_t i = 0; i < n; ++i) {
    uint64_t seed = base + i;
    GraphResult r = run_graph(seed, conservative);
    ASSERT_TRUE(r.error.empty()) << "seed " << seed << " (WEAKGC_TEST_SEED=" << seed
                                 << " WEAKGC_TEST_ROUNDS=1): " << r.error;
    cycles += r.cycles;
    freed += r.freed;
  }
  // The oracle must have had something to judge: cycles ran and objects died.
  EXPECT_GE(cycles, 2 * n);
  EXPECT_GT(freed, n);
}

// Exact roots only (ArenaOptions::register_thread = false): survivors == reachable, exactly.
TEST(StopTheWorldOracle, SurvivorsEqualReachableWithExactRoots) {
  run_graphs(false);
}

// With the thread's stack scanned conservatively: the mutator keeps addresses only in malloc'd
// memory and clears the stack before collecting, so nothing is pinned and equality still holds.
TEST(StopTheWorldOracle, SurvivorsEqualReachableWithStackScanning) {
  run_graphs(true);
}

// ------------------------------------------------------------------ exact slots that lie

constexpr size_t kWords = 8;

// Allocates a test object with `n` slots (words 3..3+n) in `pool`; returns its address.
void* new_obj(Arena& a, weakgc::Pool* pool, uint64_t id, size_t n, size_t size = 0) {
  void* p = nullptr;
  if (size == 0) size = (wgtest::kFirstSlotWord + n) * 8;
  EXPECT_EQ(a.alloc(pool, size, &p), Status::kOk);
  if (p == nullptr) return nullptr;
  wgtest::store_word(reinterpret_cast<uintptr_t>(p), wgtest::kIdWord, id);
  wgtest::store_word(reinterpret_cast<uintptr_t>(p), wgtest::kNslotsWord, n);
  wgtest::store_word(reinterpret_cast<uintptr_t>(p), wgtest::kStrideWord, 1);
  return p;
}

bool alive(Arena& a, void* p, uint64_t id) {
  return a.object_base(p) == p &&
         wgtest::peek_word(a, reinterpret_cast<uintptr_t>(p), wgtest::kIdWord) == id;
}

struct ExactArena {
  std::unique_ptr<Arena> arena;
  weakgc::Pool* ams = nullptr;
  weakgc::Pool* lo = nullptr;
  void** roots = nullptr;
  weakgc::RootId root_id;
  ExactArena() {
    ArenaOptions o;
    o.reserve_bytes = size_t{16} << 20;
    o.trigger_bytes = size_t{1} << 40;
    o.register_thread = false;  // exact roots only: what dies is exactly what the test says
    Status st;
    arena = Arena::create(o, &st);
    EXPECT_EQ(st, Status::kOk);
    EXPECT_EQ(arena->create_pool(weakgc::PoolClass::kAMS, &wgtest::kGraphFormat, &ams),
              Status::kOk);
    EXPECT_EQ(arena->create_pool(weakgc::PoolClass::kLO, nullptr, &lo), Status::kOk);
    roots = static_cast<void**>(calloc(kWords, sizeof(void*)));
    EXPECT_EQ(arena->register_root(roots, kWords, &root_id), Status::kOk);
  }
  ~ExactArena() {
    (void)arena->remove_root(root_id);
    arena.reset();
    free(roots);
  }
};

// Foreign words in exact slots (malloc'd, static, stack, integers, just outside the arena, the
// collector view) are ignored: not counted as bad references, nothing kept, nothing corrupted.
TEST(ExactSlots, ForeignAddressesAreIgnored) {
  ExactArena e;
  Arena& a = *e.arena;
  auto holder = reinterpret_cast<uintptr_t>(new_obj(a, e.ams, 1, 7));
  e.roots[0] = reinterpret_cast<void*>(holder);
  int on_stack = 0;
  std::unique_ptr<int> on_heap(new int(7));
  uintptr_t base = reinterpret_cast<uintptr_t>(a.impl()->base);
  uintptr_t reserve = a.impl()->reserve;
  const uintptr_t foreign[7] = {reinterpret_cast<uintptr_t>(on_heap.get()),
                                reinterpret_cast<uintptr_t>(&wgtest::kGraphFormat),
                                reinterpret_cast<uintptr_t>(&on_stack),
                                12345,
                                base - 8,
                                base + reserve,
                                base + reserve + 64 * 1024};
  for (size_t k = 0; k < 7; ++k) wgtest::store_word(holder, wgtest::kFirstSlotWord + k, foreign[k]);
  for (int i = 0; i < 3; ++i) a.collect();
  EXPECT_TRUE(alive(a, reinterpret_cast<void*>(holder), 1));
  for (size_t k = 0; k < 7; ++k)
    EXPECT_EQ(wgtest::peek_word(a, holder, wgtest::kFirstSlotWord + k), foreign[k]) << k;
  EXPECT_EQ(a.stats().bad_exact_refs, 0u);
  EXPECT_EQ(*on_heap, 7);
  a.verify();
}

// An exact slot holding an arena address that is not an allocated object's base (an interior
// pointer, a freed object, a free segment) keeps nothing alive, is counted in bad_exact_refs, and
// never corrupts the heap: the heap verifies and the other objects keep their contents.
TEST(ExactSlots, NonObjectArenaAddressesAreCountedAndNeverFollowed) {
  ExactArena e;
  Arena& a = *e.arena;
  auto holder = reinterpret_cast<uintptr_t>(new_obj(a, e.ams, 1, 4));
  e.roots[0] = reinterpret_cast<void*>(holder);
  // Target of an interior pointer only: it must die (exact slots do not take interior pointers).
  void* inner = new_obj(a, e.ams, 2, 2);
  // A large object named by an address inside its second page.
  void* big = new_obj(a, e.ams, 3, 1, 40 * 1024);
  // An object that dies first, whose address stays in a slot afterwards.
  void* doomed = new_obj(a, e.ams, 4, 0);
  // An object on a page the others do not share, kept by a proper reference for contrast.
  void* kept = new_obj(a, e.lo, 5, 0, 64);
  wgtest::store_word(holder, wgtest::kFirstSlotWord + 0, reinterpret_cast<uintptr_t>(inner) + 8);
  wgtest::store_word(holder, wgtest::kFirstSlotWord + 1, reinterpret_cast<uintptr_t>(big) + 5000);
  wgtest::store_word(holder, wgtest::kFirstSlotWord + 3, reinterpret_cast<uintptr_t>(kept));
  EXPECT_EQ(a.stats().bad_exact_refs, 0u);
  a.collect();
  uint64_t bad1 = a.stats().bad_exact_refs;
  EXPECT_GE(bad1, 2u);  // the two interior pointers
  EXPECT_EQ(a.object_base(inner), nullptr) << "an interior pointer in an exact slot kept an object";
  EXPECT_EQ(a.object_base(big), nullptr);
  EXPECT_EQ(a.object_base(doomed), nullptr);
  EXPECT_TRUE(alive(a, kept, 5));
  a.verify();
  // Now the slots name freed cells and a free segment; add the freed small object's address.
  wgtest::store_word(holder, wgtest::kFirstSlotWord + 2, reinterpret_cast<uintptr_t>(doomed));
  a.collect();
  EXPECT_GE(a.stats().bad_exact_refs, bad1 + 3);
  a.verify();
  EXPECT_TRUE(alive(a, reinterpret_cast<void*>(holder), 1));
  EXPECT_TRUE(alive(a, kept, 5));
  EXPECT_EQ(wgtest::peek_word(a, holder, wgtest::kFirstSlotWord + 2),
            reinterpret_cast<uintptr_t>(doomed));
  // The heap still works: new objects are allocated, kept and collected normally.
  std::vector<void*> fresh;
  for (int i = 0; i < 100; ++i) fresh.push_back(new_obj(a, e.ams, 100 + i, 2));
  e.roots[1] = fresh[0];
  for (int i = 1; i < 100; ++i)
    wgtest::store_word(reinterpret_cast<uintptr_t>(fresh[i - 1]), wgtest::kFirstSlotWord,
                       reinterpret_cast<uintptr_t>(fresh[i]));
  a.collect();
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(alive(a, fresh[i], 100 + i)) << i;
  a.verify();
}

// A bad exact root (register_root words holding a non-object arena address) is ignored the same
// way.
TEST(ExactSlots, BadExactRootIsCountedAndIgnored) {
  ExactArena e;
  Arena& a = *e.arena;
  void* x = new_obj(a, e.ams, 1, 0, 256);
  e.roots[0] = static_cast<char*>(x) + 16;
  a.collect();
  EXPECT_GE(a.stats().bad_exact_refs, 1u);
  EXPECT_EQ(a.object_base(x), nullptr);
  a.verify();
}

}  // namespace
