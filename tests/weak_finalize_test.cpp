// Finalization (Arena::finalize / take_finalized; seeds 002 and 000): a message for exactly the
// registered objects that became unreachable, each once, posted when the collector proves it and
// taken by the client on its own thread. The oracle is the set of registered objects the test
// left unrooted.
#include <gtest/gtest.h>

#include <random>
#include <set>
#include <vector>

#include "core/arena_impl.hpp"
#include "weak_test_util.hpp"
#include "weakgc/tables.hpp"

namespace weakgc {
namespace {

using test::Obj;
using test::RootArray;

std::multiset<uint64_t> take_ids(Arena& arena) {
  std::multiset<uint64_t> ids;
  void* p;
  while (arena.take_finalized(&p)) {
    auto* o = static_cast<Obj*>(p);
    ids.insert(o->id);
    // An object reachable only from the finalized one was kept alive with it.
    if (o->ref[0]) {
      EXPECT_EQ(o->ref[0]->id, o->id + 1000000);
    }
  }
  return ids;
}

void run_cycle(Arena& arena, bool incremental) {
  if (!incremental) {
    arena.collect();
    return;
  }
  arena.start_cycle();
  while (arena.step(20000)) {
  }
}

class FinalizeTest : public ::testing::TestWithParam<bool> {};

TEST_P(FinalizeTest, MessagesNameExactlyTheUnreachableRegisteredObjectsOnce) {
  bool incremental = GetParam();
  uint64_t seed = test::test_seed(7);
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng(seed);
  Arena arena(test::exact_options());
  constexpr size_t kN = 2000;
  RootArray roots(arena, kN);
  std::multiset<uint64_t> expect;
  for (uint64_t i = 0; i < kN; ++i) {
    Obj* o = make<Obj>(arena);
    o->id = i;
    int r = static_cast<int>(rng() % 4);
    if (r != 3) {
      ASSERT_EQ(arena.finalize(o), Status::kOk);  // registered
    }
    if (r == 3 || rng() % 2) roots[i] = o;  // rooted
    if (r != 3 && roots[i] == nullptr) {
      expect.insert(i);
      Obj* child = make<Obj>(arena);  // reachable only from a finalizable object
      child->id = i + 1000000;
      o->ref[0] = child;
    }
  }
  run_cycle(arena, incremental);
  EXPECT_EQ(take_ids(arena), expect);
  run_cycle(arena, incremental);
  EXPECT_TRUE(take_ids(arena).empty()) << "a message was posted twice";
  // Drop the rest: now every registered rooted object is finalized, once.
  std::multiset<uint64_t> rest;
  for (uint64_t i = 0; i < kN; ++i) {
    if (roots[i] == nullptr) continue;
    Obj* o = static_cast<Obj*>(roots[i]);
    Status st = arena.finalize(o);  // kAlready for the registered ones
    if (st == Status::kAlready) rest.insert(i);
    if (st == Status::kOk) rest.insert(i);  // unregistered until now: registered here
    roots[i] = nullptr;
  }
  run_cycle(arena, incremental);
  EXPECT_EQ(take_ids(arena), rest);
  EXPECT_EQ(arena.stats().objects_finalized, expect.size() + rest.size());
}

INSTANTIATE_TEST_SUITE_P(Collection, FinalizeTest, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "Incremental" : "Full"; });

// The finalization pass is incremental: with 1 µs steps it spans many increments, and objects
// registered between them (new ones, allocated black, and registered ones again) are kept right.
TEST(FinalizeUnit, TheIncrementalPassKeepsRegistrationsMadeBetweenItsSteps) {
  uint64_t seed = test::test_seed(11);
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng(seed);
  Arena arena(test::exact_options());
  constexpr size_t kN = 40000;
  constexpr size_t kLate = 4000;
  RootArray roots(arena, kN + kLate);
  std::multiset<uint64_t> expect;
  for (uint64_t i = 0; i < kN; ++i) {
    Obj* o = make<Obj>(arena);
    o->id = i;
    ASSERT_EQ(arena.finalize(o), Status::kOk);
    if (rng() % 3 == 0)
      roots[i] = o;
    else
      expect.insert(i);
  }
  arena.start_cycle();
  bool partial = false;  // seen between two steps of the pass
  size_t late = 0;
  while (arena.step(1000)) {
    const auto* impl = arena.impl();
    if (impl->final_cursor > 0 && impl->final_cursor < impl->final_registered.size())
      partial = true;
    if (late < kLate && arena.phase() == Phase::kMark) {
      Obj* o = make<Obj>(arena);  // allocated during the cycle: alive in it
      o->id = kN + late;
      ASSERT_EQ(arena.finalize(o), Status::kOk);
      if (late % 2 == 0) roots[kN + late] = o;
      ++late;
      // A registered object registered again: still once.
      for (size_t i = rng() % kN;; i = (i + 1) % kN) {
        if (roots[i] == nullptr) continue;
        EXPECT_EQ(arena.finalize(roots[i]), Status::kAlready);
        break;
      }
    }
  }
  ASSERT_TRUE(partial) << "the pass ran in one increment: the test did not test it";
  EXPECT_EQ(take_ids(arena), expect);
  // The late ones die in the next cycle if unrooted; the rooted ones never.
  std::multiset<uint64_t> late_expect;
  for (uint64_t i = 0; i < late; ++i)
    if (i % 2 == 1) late_expect.insert(kN + i);
  arena.collect();
  EXPECT_EQ(take_ids(arena), late_expect);
  arena.collect();
  EXPECT_TRUE(take_ids(arena).empty());
  EXPECT_EQ(arena.stats().objects_finalized, expect.size() + late_expect.size());
}

// Untaken messages are roots, but the flip does not scan them (a long queue would lengthen it):
// the first increments do. A message taken before that scan reached it is greyed on the way out,
// so the client may unlink a child from it during marking and still use the child; messages
// left untaken keep their objects and children.
TEST(FinalizeUnit, MessagesTakenDuringMarkingBeforeTheQueueScanAreGreyed) {
  Arena arena(test::exact_options());
  constexpr size_t kN = 20000;
  for (uint64_t i = 0; i < kN; ++i) {
    Obj* o = make<Obj>(arena);
    o->id = i;
    Obj* child = make<Obj>(arena);
    child->id = i + 1000000;
    o->ref[0] = child;
    ASSERT_EQ(arena.finalize(o), Status::kOk);
  }
  arena.collect();  // every one unreachable: kN messages, none taken
  arena.start_cycle();
  const auto* impl = arena.impl();
  ASSERT_EQ(impl->final_scan_end - impl->final_scan_next, kN) << "the flip scanned the queue";
  (void)arena.step(1000);  // part of the queue at most
  ASSERT_GT(impl->final_scan_end - impl->final_scan_next, 0u) << "the test needs an unscanned part";
  std::vector<Obj*> taken, children;  // malloc'd memory: not roots
  void* p;
  for (size_t k = 0; k < kN / 2 && arena.take_finalized(&p); ++k) {
    auto* o = static_cast<Obj*>(p);
    taken.push_back(o);
    children.push_back(o->ref[0].get());
    o->ref[0] = nullptr;
  }
  ASSERT_EQ(taken.size(), kN / 2);
  test::finish_cycle(arena);
  for (size_t j = 0; j < taken.size(); ++j) {
    ASSERT_EQ(arena.object_base(children[j]), children[j]) << "child of message " << j;
    EXPECT_EQ(children[j]->id, taken[j]->id + 1000000);
  }
  // The rest, untaken through the cycle: intact, with their children.
  std::multiset<uint64_t> rest = take_ids(arena);
  EXPECT_EQ(rest.size(), kN - kN / 2);
  for (size_t j = 0; j < taken.size(); ++j) EXPECT_EQ(rest.count(taken[j]->id), 0u);
}

// A type without its own trace is allocated as a leaf (never scanned): finalization works the
// same, and a kept leaf is not reported.
struct Blob : GcObject {
  uint64_t id = 0;
};
static_assert(detail::kTraceless<Blob>);

TEST(FinalizeUnit, LeafObjectsAreFinalizedOnceWhenUnreachable) {
  Arena arena(test::exact_options());
  RootArray roots(arena, 1);
  Blob* kept = make<Blob>(arena);
  kept->id = 1;
  roots[0] = kept;
  ASSERT_EQ(arena.finalize(kept), Status::kOk);
  Blob* lost = make<Blob>(arena);
  lost->id = 2;
  ASSERT_EQ(arena.finalize(lost), Status::kOk);
  lost = nullptr;
  arena.collect();
  void* p = nullptr;
  ASSERT_TRUE(arena.take_finalized(&p));
  EXPECT_EQ(static_cast<Blob*>(p)->id, 2u);
  EXPECT_FALSE(arena.take_finalized(&p));
  arena.collect();
  EXPECT_FALSE(arena.take_finalized(&p));
  EXPECT_EQ(static_cast<Blob*>(roots[0])->id, 1u);
}

TEST(FinalizeUnit, UntakenMessagesKeepTheirObjectsAliveAndAreNotRepeated) {
  Arena arena(test::exact_options());
  Obj* o = make<Obj>(arena);
  o->id = 42;
  ASSERT_EQ(arena.finalize(o), Status::kOk);
  EXPECT_EQ(arena.finalize(o), Status::kAlready);
  arena.collect();
  arena.collect();
  arena.collect();
  void* p = nullptr;
  ASSERT_TRUE(arena.take_finalized(&p));
  EXPECT_EQ(static_cast<Obj*>(p)->id, 42u);
  EXPECT_FALSE(arena.take_finalized(&p));
  // Registered again after the message: a second message when it dies again.
  ASSERT_EQ(arena.finalize(p), Status::kOk);
  p = nullptr;
  arena.collect();
  ASSERT_TRUE(arena.take_finalized(&p));
  EXPECT_FALSE(arena.take_finalized(&p));
}

TEST(FinalizeUnit, RejectsWhatIsNotAnObject) {
  Arena arena(test::exact_options());
  int local = 0;
  EXPECT_EQ(arena.finalize(&local), Status::kBadParam);
  Obj* o = make<Obj>(arena);
  Root<Obj> r(arena, o);
  EXPECT_EQ(arena.finalize(reinterpret_cast<char*>(o) + 8), Status::kBadParam);
}

TEST(FinalizeUnit, AFinalizedKeyStaysInWeakTablesUntilItsMessageIsDropped) {
  // Finalization runs before the weak phase: the resurrected object is alive in that cycle, so
  // weak references to it are kept; once the client drops the message, it dies normally.
  Arena arena(test::exact_options());
  WeakKeyTable<Obj, Obj> t(arena);
  Obj* k = make<Obj>(arena);
  t.put(k, make<Obj>(arena));
  ASSERT_EQ(arena.finalize(k), Status::kOk);
  arena.collect();
  EXPECT_EQ(t.size(), 1u);
  void* p = nullptr;
  ASSERT_TRUE(arena.take_finalized(&p));
  EXPECT_EQ(p, static_cast<void*>(k));
  p = nullptr;
  arena.collect();
  EXPECT_EQ(t.size(), 0u);
}

}  // namespace
}  // namespace weakgc
