// GuardedArray (weakgc/guarded_array.hpp): a root array read and written through guarded
// accessors, left pending at the flip instead of protected.
//
// Oracles: a std::vector of the ids each slot should name (objects carry their id, and a child
// object carries the same id, so a freed and reused object shows), and a weak-rank "watch" array
// holding every object made: after full collections, exactly the objects the oracle still holds
// may be intact there.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "weak_test_util.hpp"
#include "weakgc/guarded_array.hpp"

namespace weakgc {
namespace {

using test::Obj;

constexpr size_t kSlots = 20000;  // 157 KiB: 39 pages, above the default pending threshold (32)

ArenaOptions options(bool pending) {
  ArenaOptions o = test::exact_options();
  o.pending_min_pages = pending ? 0 : SIZE_MAX;  // 0: the default (32 pages)
  return o;
}

// Every object made, weakly: slot j is kDeleted once object j has been collected.
class Watch {
 public:
  Watch(Arena& arena, size_t n) {
    WeakArray* a = nullptr;
    if (alloc_weak_array(arena, n, Rank::kWeak, nullptr, &a) != Status::kOk) std::abort();
    root_ = std::make_unique<Root<WeakArray>>(arena, a);
  }
  void add(size_t id, Obj* o) {
    detail::slot_store(&root_->get()->slot[id], reinterpret_cast<uintptr_t>(o));
  }
  bool alive(size_t id) const { return !detail::slot_is_deleted(&root_->get()->slot[id]); }

 private:
  std::unique_ptr<Root<WeakArray>> root_;
};

// An object with id `id` whose ref[0] is a child with the same id, reachable only through it.
Obj* make_pair(Arena& arena, uint64_t id) {
  Obj* child = make<Obj>(arena);
  child->id = id;
  Obj* o = make<Obj>(arena);
  o->id = id;
  o->ref[0] = child;
  return o;
}

// Fills every slot i of `a` with a new pair of id i + 1, watched.
void fill_watched(Arena& arena, GuardedArray<Obj>& a, Watch& watch) {
  for (size_t i = 0; i < a.size(); ++i) {
    Obj* o = make_pair(arena, i + 1);
    watch.add(i + 1, o);
    a.set(i, o);
  }
}

// The slot names the object the oracle says (0: null), and that object and its child are intact.
void expect_slot(GuardedArray<Obj>& a, size_t i, uint64_t id) {
  Obj* o = a.get(i);
  if (id == 0) {
    EXPECT_EQ(o, nullptr) << "slot " << i;
    return;
  }
  ASSERT_NE(o, nullptr) << "slot " << i;
  EXPECT_EQ(o->id, id) << "slot " << i;
  ASSERT_NE(o->ref[0].get(), nullptr) << "slot " << i;
  EXPECT_EQ(o->ref[0]->id, id) << "slot " << i << ": child";
}

TEST(GuardedArrayTest, StartsNullAndRoundTripsAgainstAVector) {
  Arena arena(options(true));
  GuardedArray<Obj> a(arena, 1000);
  ASSERT_EQ(a.size(), 1000u);
  std::vector<Obj*> oracle(1000, nullptr);
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a.get(i), nullptr);
  std::mt19937_64 rng(7);
  std::vector<Obj*> made;
  for (int k = 0; k < 5000; ++k) {
    size_t i = rng() % a.size();
    switch (rng() % 3) {
      case 0: {
        Obj* o = make<Obj>(arena);
        made.push_back(o);
        a.set(i, o);
        oracle[i] = o;
        break;
      }
      case 1:
        a.set(i, nullptr);
        oracle[i] = nullptr;
        break;
      default:
        EXPECT_EQ(a.get(i), oracle[i]) << "slot " << i;
    }
  }
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a.get(i), oracle[i]) << "slot " << i;
}

TEST(GuardedArrayTest, ABadIndexThrowsOutOfRangeNamingItAndChangesNothing) {
  Arena arena(options(true));
  GuardedArray<Obj> a(arena, 10);
  Obj* o = make<Obj>(arena);
  a.set(9, o);
  try {
    a.get(10);
    ADD_FAILURE() << "get(10) of 10 slots did not throw";
  } catch (const std::out_of_range& e) {
    EXPECT_NE(std::string(e.what()).find("index 10"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("size 10"), std::string::npos) << e.what();
  }
  EXPECT_THROW(a.set(10, o), std::out_of_range);
  EXPECT_THROW(a.set(SIZE_MAX, nullptr), std::out_of_range);
  EXPECT_EQ(a.get(9), o);
  for (size_t i = 0; i < 9; ++i) EXPECT_EQ(a.get(i), nullptr);
  GuardedArray<Obj> empty(arena, 0);  // a valid, empty array
  EXPECT_EQ(empty.size(), 0u);
  EXPECT_THROW(empty.get(0), std::out_of_range);
  EXPECT_THROW(empty.set(0, o), std::out_of_range);
}

TEST(GuardedArrayTest, ImpossibleLengthsThrowAndLeaveTheArenaUsable) {
  ArenaOptions o = options(true);
  o.reserve_bytes = size_t{64} << 20;
  Arena arena(o);
  EXPECT_THROW(GuardedArray<Obj>(arena, SIZE_MAX / 8), std::length_error);
  EXPECT_THROW(GuardedArray<Obj>(arena, size_t{16} << 20), std::length_error);  // > reserve
  GuardedArray<Obj> big(arena, size_t{5} << 20);                                // 40 MiB
  size_t committed = arena.committed_bytes();
  EXPECT_THROW(GuardedArray<Obj>(arena, size_t{3} << 20), std::bad_alloc);  // 24 MiB more
  EXPECT_EQ(arena.committed_bytes(), committed);
  Obj* x = make<Obj>(arena);
  x->id = 42;
  big.set(big.size() - 1, x);
  test::finish_cycle(arena);
  ASSERT_NE(big.get(big.size() - 1), nullptr);
  EXPECT_EQ(big.get(big.size() - 1)->id, 42u);
}

// What the array holds survives; what it dropped is collected (the weak watch says which).
TEST(GuardedArrayTest, KeepsWhatItHoldsAndLetsGoWhatItDropped) {
  for (bool pending : {true, false}) {
    SCOPED_TRACE(pending ? "pending" : "protected");
    Arena arena(options(pending));
    GuardedArray<Obj> a(arena, kSlots);
    Watch watch(arena, kSlots + 1);
    std::vector<uint64_t> oracle(kSlots, 0);
    fill_watched(arena, a, watch);
    for (size_t i = 0; i < kSlots; ++i) oracle[i] = i + 1;
    arena.start_cycle();
    for (size_t i = 0; i < kSlots; i += 3) {  // dropped during marking
      a.set(i, nullptr);
      oracle[i] = 0;
    }
    test::finish_cycle(arena);
    test::finish_cycle(arena);  // a dropped object may have been retained by the first cycle
    for (size_t i = 0; i < kSlots; ++i) {
      expect_slot(a, i, oracle[i]);
      EXPECT_EQ(watch.alive(i + 1), oracle[i] != 0) << "object " << i + 1;
    }
    arena.verify();
  }
}

// The flip leaves the array pending: loading from it takes no barrier fault; the first load from
// a page scans it in software (as a fault would), greying what every slot there names, so a
// loaded object's page is protected before the mutator can read it. The mutator then unlinks each
// loaded object's child and holds the child alone (in malloc'd memory: not a root). Only the
// greying of the loaded object makes the child survive: without it the object is white and
// unprotected, its field is read without a fault, and the collector later scans the object with the
// field already null. With protection instead of pending, the loads fault.
TEST(GuardedArrayTest, IsLeftPendingAtTheFlipAndALoadScansItsPageInSoftware) {
  for (bool pending : {true, false}) {
    SCOPED_TRACE(pending ? "pending" : "protected");
    Arena arena(options(pending));
    GuardedArray<Obj> a(arena, kSlots);
    for (size_t i = 0; i < kSlots; ++i) a.set(i, make_pair(arena, 1000000 + i));
    Stats s0 = arena.stats();
    arena.start_cycle();
    Stats s1 = arena.stats();
    const uint64_t pages = (kSlots * 8) / 4096;
    if (pending)
      EXPECT_GE(s1.pages_pending - s0.pages_pending, pages);
    else
      EXPECT_EQ(s1.pages_pending, s0.pages_pending);
    std::vector<Obj*> loaded;  // malloc'd memory: not a root
    for (size_t i = 0; i < kSlots; i += 50) loaded.push_back(a.get(i));
    Stats s2 = arena.stats();
    EXPECT_EQ(arena.phase(), Phase::kMark);
    uint64_t faults = s2.faults_scanned - s1.faults_scanned;
    uint64_t guards = s2.pending_guards - s1.pending_guards;
    if (pending) {
      // The first load from each page scans the page (guarded in software) and ends its pending
      // state; the page's other loads need nothing.
      EXPECT_EQ(faults, 0u);
      EXPECT_GE(guards, pages);  // every page is loaded from
      EXPECT_LE(guards, pages + 1);
    } else {
      EXPECT_GT(faults, 0u);
      EXPECT_EQ(guards, 0u);
    }
    std::vector<Obj*> children;
    for (Obj* o : loaded) {
      children.push_back(o->ref[0].get());
      o->ref[0] = nullptr;
    }
    test::finish_cycle(arena);
    for (size_t j = 0; j < children.size(); ++j) {
      ASSERT_EQ(arena.object_base(children[j]), children[j]) << "child " << j << " was freed";
      EXPECT_EQ(children[j]->id, 1000000 + j * 50) << "child " << j;
    }
  }
}

// A store into a pending page scans the page first, as the fault on a protected page would: what
// the page held at the flip is retained for that cycle (and let go by the next).
TEST(GuardedArrayTest, AStoreOnAPendingPageRetainsWhatThePageHeldAtTheFlip) {
  Arena arena(options(true));
  GuardedArray<Obj> a(arena, kSlots);
  Watch watch(arena, kSlots + 1);
  fill_watched(arena, a, watch);
  arena.start_cycle();
  for (size_t i = 0; i < kSlots; i += 512) a.set(i, nullptr);  // one store per page
  test::finish_cycle(arena);
  for (size_t i = 0; i < kSlots; i += 512) EXPECT_TRUE(watch.alive(i + 1)) << "object " << i + 1;
  test::finish_cycle(arena);
  for (size_t i = 0; i < kSlots; i += 512) EXPECT_FALSE(watch.alive(i + 1)) << "object " << i + 1;
}

// A range read of a pending array guards once a page (not once a slot) and gives what get gives;
// a range store on pending pages retains what they held at the flip, as set does. Bad ranges
// throw and touch nothing.
TEST(GuardedArrayTest, RangesGuardOncePerPageAndMatchSlotBySlotAccess) {
  Arena arena(options(true));
  GuardedArray<Obj> a(arena, kSlots);
  Watch watch(arena, 2 * kSlots + 1);
  fill_watched(arena, a, watch);
  arena.start_cycle();  // the array is pending now
  ASSERT_GT(arena.stats().pages_pending, 0u);
  const uint64_t guards0 = arena.stats().pending_guards;
  std::vector<Obj*> got(kSlots, nullptr);
  // Chunks of varying size, crossing page boundaries, including empty ones.
  std::mt19937_64 rng(test::test_seed(0x7a2));
  for (size_t i = 0; i < kSlots;) {
    size_t n = std::min<size_t>(rng() % 900, kSlots - i);
    a.get_range(i, n, got.data() + i);
    i += n;
  }
  const size_t pages = kSlots * 8 / 4096 + 2;
  EXPECT_LE(arena.stats().pending_guards - guards0, pages);
  for (size_t i = 0; i < kSlots; ++i) {
    ASSERT_NE(got[i], nullptr) << i;
    ASSERT_EQ(got[i]->id, i + 1) << i;
  }
  test::finish_cycle(arena);
  // A range store on freshly pending pages: the objects it overwrites were in the array at the
  // flip, so they live through this cycle and go in the next.
  arena.start_cycle();
  std::vector<Obj*> fresh(kSlots / 2);
  for (size_t j = 0; j < fresh.size(); ++j) {
    fresh[j] = make_pair(arena, kSlots + 1 + j);
    watch.add(kSlots + 1 + j, fresh[j]);
  }
  a.set_range(kSlots / 4, fresh.data(), fresh.size());
  test::finish_cycle(arena);
  for (size_t i = kSlots / 4; i < kSlots / 4 + fresh.size(); ++i)
    EXPECT_TRUE(watch.alive(i + 1)) << "overwritten during the cycle: kept for it";
  test::finish_cycle(arena);
  arena.collect();
  for (size_t i = 0; i < kSlots; ++i) {
    bool overwritten = i >= kSlots / 4 && i < kSlots / 4 + fresh.size();
    EXPECT_EQ(watch.alive(i + 1), !overwritten) << i;
    expect_slot(a, i, overwritten ? kSlots + 1 + (i - kSlots / 4) : i + 1);
  }
  // Bad ranges: nothing copied or stored.
  Obj* sentinel = a.get(0);
  std::vector<Obj*> out(3, sentinel);
  EXPECT_THROW(a.get_range(kSlots - 1, 2, out.data()), std::out_of_range);
  EXPECT_THROW(a.get_range(kSlots + 1, 0, out.data()), std::out_of_range);
  EXPECT_THROW(a.get_range(1, SIZE_MAX, out.data()), std::out_of_range);
  EXPECT_EQ(out, std::vector<Obj*>(3, sentinel));
  std::vector<Obj*> nulls(3, nullptr);
  EXPECT_THROW(a.set_range(kSlots - 2, nulls.data(), 3), std::out_of_range);
  expect_slot(a, kSlots - 2, kSlots - 1);
  expect_slot(a, kSlots - 1, kSlots);
  a.get_range(kSlots, 0, nullptr);  // an empty range at the end is fine
}

// What a range read returns from a pending page is greyed, as get's result is: the mutator may
// unlink a child from a loaded object during marking and still hold the child (the black-mutator
// invariant). With the range read's guard disabled the children are freed.
TEST(GuardedArrayTest, ARangeReadFromPendingPagesGreysWhatItReturns) {
  Arena arena(options(true));
  GuardedArray<Obj> a(arena, kSlots);
  for (size_t i = 0; i < kSlots; ++i) a.set(i, make_pair(arena, 1000000 + i));
  arena.start_cycle();
  std::vector<Obj*> loaded(kSlots);  // malloc'd memory: not a root
  a.get_range(0, kSlots, loaded.data());
  std::vector<Obj*> children;
  for (size_t i = 0; i < kSlots; i += 50) {
    children.push_back(loaded[i]->ref[0].get());
    loaded[i]->ref[0] = nullptr;
  }
  test::finish_cycle(arena);
  for (size_t j = 0; j < children.size(); ++j) {
    ASSERT_EQ(arena.object_base(children[j]), children[j]) << "child " << j << " was freed";
    EXPECT_EQ(children[j]->id, 1000000 + j * 50) << "child " << j;
  }
}

// resize keeps the slots below both lengths, adds null ones, and stops holding what lay beyond
// a shorter length; during marking too (the copy loads pending pages). An impossible length
// throws and changes nothing.
TEST(GuardedArrayTest, ResizeKeepsTheCommonSlotsAndLetsGoOfTheRest) {
  for (bool marking : {false, true}) {
    SCOPED_TRACE(marking ? "during marking" : "idle");
    Arena arena(options(true));
    GuardedArray<Obj> a(arena, kSlots);
    Watch watch(arena, kSlots + 1);
    fill_watched(arena, a, watch);
    if (marking) arena.start_cycle();
    EXPECT_THROW(a.resize(SIZE_MAX / 8), std::length_error);
    ASSERT_EQ(a.size(), kSlots);
    a.resize(2 * kSlots);
    ASSERT_EQ(a.size(), 2 * kSlots);
    for (size_t i = kSlots; i < 2 * kSlots; i += 101) EXPECT_EQ(a.get(i), nullptr);
    a.resize(kSlots / 2);
    ASSERT_EQ(a.size(), kSlots / 2);
    EXPECT_THROW(a.get(kSlots / 2), std::out_of_range);
    test::finish_cycle(arena);
    test::finish_cycle(arena);
    size_t wrong = 0;
    for (size_t i = 0; i < kSlots; ++i) {
      bool held = i < kSlots / 2;
      if (held) expect_slot(a, i, i + 1);
      wrong += watch.alive(i + 1) != held ? 1 : 0;
    }
    EXPECT_EQ(wrong, 0u) << "objects alive beyond the new length, or dead below it";
    arena.verify();
  }
}

// Destroyed while its pages are pending: the collector still finishes the cycle (it guards and
// scans what the flip left pending), then lets the objects go; the other array is untouched.
TEST(GuardedArrayTest, DestroyedDuringMarkingItsObjectsGoAndTheCycleCompletes) {
  Arena arena(options(true));
  Watch watch(arena, 2 * kSlots + 1);
  GuardedArray<Obj> kept(arena, kSlots);
  auto dropped = std::make_unique<GuardedArray<Obj>>(arena, kSlots);
  for (size_t i = 0; i < kSlots; ++i) {
    Obj* a = make_pair(arena, i + 1);
    Obj* b = make_pair(arena, kSlots + i + 1);
    watch.add(i + 1, a);
    watch.add(kSlots + i + 1, b);
    kept.set(i, a);
    dropped->set(i, b);
  }
  arena.start_cycle();
  EXPECT_EQ(dropped->get(7)->id, kSlots + 8);  // a guarded load from a pending page
  arena.step(100000);
  dropped.reset();
  test::finish_cycle(arena);
  test::finish_cycle(arena);
  size_t wrong = 0;
  for (size_t i = 0; i < kSlots; ++i) {
    wrong += watch.alive(i + 1) ? 0 : 1;
    wrong += watch.alive(kSlots + i + 1) ? 1 : 0;
  }
  EXPECT_EQ(wrong, 0u);
  for (size_t i = 0; i < kSlots; i += 97) expect_slot(kept, i, i + 1);
  arena.verify();
}

// An array may outlive its arena (destroying it then touches nothing), as Root handles may;
// the ASan build is the oracle.
TEST(GuardedArrayTest, MayBeDestroyedAfterItsArena) {
  auto arena = std::make_unique<Arena>(options(true));
  auto a = std::make_unique<GuardedArray<Obj>>(*arena, kSlots);
  a->set(3, make_pair(*arena, 3));
  arena->start_cycle();
  EXPECT_GT(arena->stats().pages_pending, 0u);  // pending when the arena goes
  arena.reset();
  a.reset();  // under ASan, a touch of the freed arena fails here
}

// Seeded random sets, copies, drops, loads and resizes interleaved with collector steps and flips,
// against the oracle; pending and protected arrays. At the end, exactly the objects the oracle
// holds are alive.
void random_against_oracle(bool pending, uint64_t seed) {
  Arena arena(options(pending));
  constexpr size_t kOps = 60000;
  GuardedArray<Obj> a(arena, kSlots);
  Watch watch(arena, kOps + 1);
  std::vector<uint64_t> oracle(kSlots, 0);
  std::mt19937_64 rng(seed);
  uint64_t next_id = 1;
  size_t resizes = 0;
  for (size_t op = 0; op < kOps; ++op) {
    size_t i = rng() % oracle.size();
    unsigned r = static_cast<unsigned>(rng() % 1000);
    if (r < 2) {
      size_t n = kSlots / 2 + rng() % kSlots;  // 0.5x to 1.5x
      a.resize(n);
      oracle.resize(n, 0);
      ++resizes;
      continue;
    }
    r /= 10;
    if (r < 30) {
      Obj* o = make_pair(arena, next_id);
      watch.add(next_id, o);
      a.set(i, o);
      oracle[i] = next_id++;
    } else if (r < 45) {
      size_t j = rng() % oracle.size();
      a.set(i, a.get(j));
      oracle[i] = oracle[j];
    } else if (r < 55) {
      a.set(i, nullptr);
      oracle[i] = 0;
    } else if (r < 94) {
      expect_slot(a, i, oracle[i]);
    } else if (r < 96) {
      // A range read (crossing pages), checked slot by slot.
      size_t n = std::min<size_t>(rng() % 1500, oracle.size() - i);
      std::vector<Obj*> got(n + 1, nullptr);
      a.get_range(i, n, got.data());
      for (size_t j = 0; j < n; ++j) {
        uint64_t id = oracle[i + j];
        ASSERT_EQ(got[j] == nullptr, id == 0) << "slot " << i + j;
        if (id != 0) {
          ASSERT_EQ(got[j]->id, id) << "slot " << i + j;
        }
      }
    } else if (r < 98) {
      // A range copy: read one range, store it at another (possibly overlapping) place.
      size_t from = rng() % oracle.size();
      size_t n = std::min<size_t>({rng() % 1500, oracle.size() - i, oracle.size() - from});
      std::vector<Obj*> tmp(n);
      a.get_range(from, n, tmp.data());
      a.set_range(i, tmp.data(), n);
      std::vector<uint64_t> ids(oracle.begin() + static_cast<ptrdiff_t>(from),
                                oracle.begin() + static_cast<ptrdiff_t>(from + n));
      std::copy(ids.begin(), ids.end(), oracle.begin() + static_cast<ptrdiff_t>(i));
    } else if (r < 99) {
      if (arena.phase() == Phase::kIdle) arena.start_cycle();
    } else {
      arena.step(rng() % 200000);
    }
    if (::testing::Test::HasFatalFailure()) return;
  }
  test::finish_cycle(arena);
  test::finish_cycle(arena);
  ASSERT_EQ(a.size(), oracle.size());
  std::vector<bool> held(next_id, false);
  for (size_t i = 0; i < oracle.size(); ++i) {
    expect_slot(a, i, oracle[i]);
    held[oracle[i]] = true;
  }
  size_t wrong = 0;
  for (uint64_t id = 1; id < next_id; ++id) wrong += watch.alive(id) != held[id] ? 1 : 0;
  EXPECT_EQ(wrong, 0u) << "objects alive that the oracle dropped, or dead that it holds";
  arena.verify();
  EXPECT_GT(resizes, 0u);
  std::printf("[ measure  ] %s seed %llu: %llu objects made, %zu resizes, %llu pending guards\n",
              pending ? "pending" : "protected", static_cast<unsigned long long>(seed),
              static_cast<unsigned long long>(next_id - 1), resizes,
              static_cast<unsigned long long>(arena.stats().pending_guards));
}

TEST(GuardedArrayTest, RandomOperationsAgainstAnOracle) {
  const uint64_t base = test::test_seed(0x6a7d);
  for (uint64_t k = 0; k < 3; ++k) {
    for (bool pending : {true, false}) {
      SCOPED_TRACE("seed " + std::to_string(base + k) + (pending ? " pending" : " protected"));
      random_against_oracle(pending, base + k);
    }
  }
}

}  // namespace
}  // namespace weakgc
