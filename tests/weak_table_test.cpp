// Unit tests of the weak tables (weakgc/tables.hpp): each kind's semantics across collections,
// growth and compaction during and outside marking, iteration, size, dead-entry notification,
// content keys, and the raw layer. Exact arenas (weak_test_util.hpp): the expected outcome of
// every collection is known.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <set>
#include <stdexcept>
#include <vector>

#include <sys/mman.h>

#include <cerrno>

#include "core/arena_impl.hpp"
#include "weak_test_util.hpp"
#include "weakgc/tables.hpp"

namespace weakgc {
namespace {

using test::Obj;
using test::RootArray;

Obj* new_obj(Arena& a, uint64_t id, uint64_t cls = 0) {
  Obj* o = make<Obj>(a);
  o->id = id;
  o->cls = cls;
  return o;
}

// Objects the test refers to without keeping them alive: malloc'd, not a root.
using Handles = std::vector<Obj*>;

class WeakTableTest : public ::testing::Test {
 protected:
  Arena arena{test::exact_options()};
};

// ------------------------------------------------------------------ basics, every kind

template <class T>
void basic_ops(Arena& arena) {
  T t(arena);
  RootArray roots(arena, 200);
  for (uint64_t i = 0; i < 100; ++i) {
    roots[2 * i] = new_obj(arena, i);
    roots[2 * i + 1] = new_obj(arena, 1000 + i);
  }
  auto k = [&](size_t i) { return static_cast<Obj*>(roots[2 * i]); };
  auto v = [&](size_t i) { return static_cast<Obj*>(roots[2 * i + 1]); };
  for (size_t i = 0; i < 100; ++i) EXPECT_TRUE(t.put(k(i), v(i)));
  EXPECT_EQ(t.size(), 100u);
  for (size_t i = 0; i < 100; ++i) {
    EXPECT_EQ(t.get(k(i)), v(i));
    EXPECT_TRUE(t.contains(k(i)));
    EXPECT_FALSE(t.contains(v(i)));
  }
  EXPECT_EQ(t.exchange(k(3), v(4)), v(3));  // replaces, returns the old value
  EXPECT_EQ(t.get(k(3)), v(4));
  EXPECT_FALSE(t.put(k(6), v(7)));  // replaces
  EXPECT_EQ(t.get(k(6)), v(7));
  EXPECT_TRUE(t.put(k(6), v(6)) == false && t.get(k(6)) == v(6));
  EXPECT_EQ(t.take(k(5)), v(5));
  EXPECT_EQ(t.take(k(5)), nullptr);
  EXPECT_FALSE(t.remove(k(5)));
  EXPECT_EQ(t.get(k(5)), nullptr);
  EXPECT_TRUE(t.remove(k(8)));
  EXPECT_TRUE(t.put(k(8), v(8)));
  EXPECT_EQ(t.size(), 99u);
  // Everything is rooted: a collection changes nothing.
  arena.collect();
  EXPECT_EQ(t.size(), 99u);
  for (size_t i = 0; i < 100; ++i) {
    if (i == 5) continue;
    EXPECT_EQ(t.get(k(i)), i == 3 ? v(4) : v(i)) << i;
  }
  std::map<uint64_t, uint64_t> seen;
  t.for_each([&](Obj* key, Obj* val) { seen[key->id] = val->id; });
  EXPECT_EQ(seen.size(), 99u);
  EXPECT_EQ(seen[3], 1004u);
  t.clear();
  EXPECT_EQ(t.size(), 0u);
  EXPECT_EQ(t.get(k(1)), nullptr);
  EXPECT_TRUE(t.put(k(1), v(1)));
  EXPECT_EQ(t.get(k(1)), v(1));
}

// Words no slot can hold and capacities no table can have are refused with an exception naming
// the problem (they once aborted the process, looped forever or wrapped to a tiny table), and
// the table is left exactly as it was.
TEST_F(WeakTableTest, BadArgumentsThrowAndLeaveTheTableAsItWas) {
  RootArray roots(arena, 2);
  roots[0] = new_obj(arena, 1);
  roots[1] = new_obj(arena, 2);
  auto* k = static_cast<Obj*>(roots[0]);
  auto* v = static_cast<Obj*>(roots[1]);
  void* deleted = reinterpret_cast<void*>(kDeleted);
  for (TableKind kind : {TableKind::kWeakKey, TableKind::kWeakValue, TableKind::kDoublyWeak,
                         TableKind::kEphemeron, TableKind::kWeakSet}) {
    SCOPED_TRACE(test::kind_name(kind));
    const bool values = kind != TableKind::kWeakSet;
    WeakTable t(arena, kind);
    ASSERT_TRUE(t.put(k, v));
    EXPECT_THROW(t.put(nullptr, v), std::invalid_argument);
    EXPECT_THROW(t.put(deleted, v), std::invalid_argument);
    EXPECT_THROW(t.exchange(nullptr, v), std::invalid_argument);
    EXPECT_THROW(t.put_new(0, deleted, v), std::invalid_argument);
    if (values) {
      EXPECT_THROW(t.put(k, nullptr), std::invalid_argument);
      EXPECT_THROW(t.put(k, deleted), std::invalid_argument);
      EXPECT_THROW(t.put_new(0, v, deleted), std::invalid_argument);
    }
    for (size_t n : {SIZE_MAX, SIZE_MAX / 8 * 7, size_t{1} << 62, raw::kMaxCapacity})
      EXPECT_THROW(t.reserve(n), std::length_error) << n;
    EXPECT_EQ(t.size(), 1u);
    EXPECT_EQ(t.get(k), values ? static_cast<void*>(v) : static_cast<void*>(k));
    EXPECT_EQ(t.stats().generations, 1u);
    EXPECT_THROW(WeakTable(arena, kind, SIZE_MAX), std::length_error);
  }
  EXPECT_THROW(WeakTable(arena, TableKind::kWeakKey, WeakTable::ContentKeys{}),
               std::invalid_argument);
  // capacity_for saturates instead of wrapping: never below what was asked, never a loop.
  EXPECT_GT(raw::capacity_for(SIZE_MAX), raw::kMaxCapacity);
  EXPECT_GT(raw::capacity_for(size_t{1} << 62), raw::kMaxCapacity);
  EXPECT_EQ(raw::capacity_for(14), 16u);  // 14 of 16 is the most the 7/8 load allows
  EXPECT_EQ(raw::capacity_for(15), 32u);
}

TEST_F(WeakTableTest, WeakKeyTableBasicOperations) {
  basic_ops<WeakKeyTable<Obj, Obj>>(arena);
}
TEST_F(WeakTableTest, WeakValueTableBasicOperations) {
  basic_ops<WeakValueTable<Obj, Obj>>(arena);
}
TEST_F(WeakTableTest, DoublyWeakTableBasicOperations) {
  basic_ops<DoublyWeakTable<Obj, Obj>>(arena);
}
TEST_F(WeakTableTest, EphemeronTableBasicOperations) {
  basic_ops<EphemeronTable<Obj, Obj>>(arena);
}

// ------------------------------------------------------------------ what each kind keeps

struct Fates {
  size_t kept = 0;
  size_t gone = 0;
};

// Builds 4 groups of 50 entries — both halves rooted, only the key, only the value, neither —
// collects, and returns which groups' entries the table still holds.
template <class T>
std::vector<bool> survivors(Arena& arena) {
  T t(arena);
  RootArray roots(arena, 400);
  Handles keys, values;
  for (uint64_t i = 0; i < 200; ++i) {
    Obj* k = new_obj(arena, i);
    Obj* v = new_obj(arena, 1000 + i);
    keys.push_back(k);
    values.push_back(v);
    t.put(k, v);
    uint64_t group = i / 50;
    if (group == 0 || group == 1) roots[2 * i] = k;
    if (group == 0 || group == 2) roots[2 * i + 1] = v;
  }
  test::finish_cycle(arena);
  std::vector<bool> kept(4, false);
  std::vector<size_t> count(4, 0);
  t.for_each([&](Obj* k, Obj* v) {
    EXPECT_EQ(v->id, k->id + 1000);
    ++count[k->id / 50];
  });
  for (size_t g = 0; g < 4; ++g) {
    EXPECT_TRUE(count[g] == 0 || count[g] == 50) << "group " << g << " partly kept";
    kept[g] = count[g] == 50;
  }
  size_t expect = 50 * static_cast<size_t>(std::count(kept.begin(), kept.end(), true));
  EXPECT_EQ(t.size(), expect);
  return kept;
}

using Groups = std::vector<bool>;  // kept: {both rooted, key only, value only, neither}

TEST_F(WeakTableTest, WeakKeyEntriesLiveExactlyAsLongAsTheirKey) {
  Groups g = survivors<WeakKeyTable<Obj, Obj>>(arena);
  EXPECT_EQ(g, (Groups{true, true, false, false}));
}
TEST_F(WeakTableTest, WeakValueEntriesLiveExactlyAsLongAsTheirValue) {
  Groups g = survivors<WeakValueTable<Obj, Obj>>(arena);
  EXPECT_EQ(g, (Groups{true, false, true, false}));
}
TEST_F(WeakTableTest, DoublyWeakEntriesNeedBothHalvesAlive) {
  Groups g = survivors<DoublyWeakTable<Obj, Obj>>(arena);
  EXPECT_EQ(g, (Groups{true, false, false, false}));
}
TEST_F(WeakTableTest, EphemeronEntriesLiveExactlyAsLongAsTheirKey) {
  Groups g = survivors<EphemeronTable<Obj, Obj>>(arena);
  EXPECT_EQ(g, (Groups{true, true, false, false}));
}

TEST_F(WeakTableTest, WeakKeyValueReferringToItsKeyKeepsTheEntry) {
  // The contrast that motivates ephemerons: the value array is strong, so a value that refers
  // to its key keeps the key, and the entry, alive.
  WeakKeyTable<Obj, Obj> t(arena);
  for (uint64_t i = 0; i < 100; ++i) {
    Obj* k = new_obj(arena, i);
    Obj* v = new_obj(arena, i);
    v->ref[0] = k;
    t.put(k, v);
  }
  test::finish_cycle(arena);
  test::finish_cycle(arena);
  EXPECT_EQ(t.size(), 100u);
}

TEST_F(WeakTableTest, EphemeronValuesReferringToTheirKeysAreAllClearedAfterOneCycle) {
  constexpr uint64_t kN = 100000;
  EphemeronTable<Obj, Obj> t(arena);
  {
    RootArray keep(arena, 1);
    for (uint64_t i = 0; i < kN; ++i) {
      Obj* k = new_obj(arena, i);
      keep[0] = k;  // the key stays rooted while the value is made
      Obj* v = new_obj(arena, i);
      v->ref[0] = k;
      t.put(k, v);
    }
  }
  EXPECT_EQ(t.size(), kN);
  Stats before = arena.stats();
  test::finish_cycle(arena);
  Stats after = arena.stats();
  EXPECT_EQ(t.size(), 0u);
  size_t n = 0;
  t.for_each([&](Obj*, Obj*) { ++n; });
  EXPECT_EQ(n, 0u);
  EXPECT_EQ(after.slots_splatted - before.slots_splatted, kN);
  // Keys and values were freed, not merely dropped from the table.
  EXPECT_GE(after.bytes_swept - before.bytes_swept, 2 * kN * sizeof(Obj));
}

TEST_F(WeakTableTest, EphemeronChainsResolveThroughValues) {
  // Entry i's value refers to key i+1: key i+1 is reachable only if entry i is alive.
  constexpr size_t kN = 1000;
  EphemeronTable<Obj, Obj> t(arena);
  RootArray roots(arena, 1);
  Handles keys;
  RootArray all(arena, kN);  // temporary: keeps the keys alive while the chain is built
  for (size_t i = 0; i < kN; ++i) {
    all[i] = new_obj(arena, i);
    keys.push_back(static_cast<Obj*>(all[i]));
  }
  // Insert in reverse so that the table's order is unrelated to the chain's.
  for (size_t i = kN; i-- > 0;) {
    Obj* v = new_obj(arena, 100000 + i);
    if (i + 1 < kN) v->ref[0] = keys[i + 1];
    t.put(keys[i], v);
  }
  for (size_t i = 0; i < kN; ++i) all[i] = nullptr;
  roots[0] = keys[0];
  test::finish_cycle(arena);
  EXPECT_EQ(t.size(), kN);  // the whole chain hangs from key 0
  roots[0] = keys[kN / 2];
  test::finish_cycle(arena);
  EXPECT_EQ(t.size(), kN / 2);  // from the middle on
  std::set<uint64_t> ids;
  t.for_each([&](Obj* k, Obj* v) {
    EXPECT_EQ(v->id, 100000 + k->id);
    ids.insert(k->id);
  });
  EXPECT_EQ(*ids.begin(), kN / 2);
  EXPECT_EQ(*ids.rbegin(), kN - 1);
  roots[0] = nullptr;
  test::finish_cycle(arena);
  EXPECT_EQ(t.size(), 0u);
}

TEST_F(WeakTableTest, EphemeronValueKeepsAnotherTablesKeyAlive) {
  // Ephemerons across two tables: table 2's key is reachable only from table 1's value.
  EphemeronTable<Obj, Obj> t1(arena), t2(arena);
  Root<Obj> k1(arena, new_obj(arena, 1));
  Obj* k2 = new_obj(arena, 2);
  Obj* v1 = new_obj(arena, 3);
  v1->ref[0] = k2;
  t1.put(k1.get(), v1);
  t2.put(k2, new_obj(arena, 4));
  test::finish_cycle(arena);
  EXPECT_EQ(t1.size(), 1u);
  EXPECT_EQ(t2.size(), 1u);
  k1 = nullptr;
  test::finish_cycle(arena);
  EXPECT_EQ(t1.size(), 0u);
  EXPECT_EQ(t2.size(), 0u);
}

TEST_F(WeakTableTest, WeakSetHoldsItsElementsWeakly) {
  WeakSet<Obj> s(arena);
  RootArray roots(arena, 50);
  for (uint64_t i = 0; i < 100; ++i) {
    Obj* o = new_obj(arena, i);
    if (i < 50) roots[i] = o;
    EXPECT_TRUE(s.insert(o));
    EXPECT_FALSE(s.insert(o));
  }
  EXPECT_EQ(s.size(), 100u);
  test::finish_cycle(arena);
  EXPECT_EQ(s.size(), 50u);
  for (size_t i = 0; i < 50; ++i) EXPECT_TRUE(s.contains(static_cast<Obj*>(roots[i])));
  EXPECT_TRUE(s.erase(static_cast<Obj*>(roots[0])));
  EXPECT_FALSE(s.contains(static_cast<Obj*>(roots[0])));
  size_t n = 0;
  s.for_each([&](Obj* o) {
    EXPECT_LT(o->id, 50u);
    ++n;
  });
  EXPECT_EQ(n, 49u);
}

// ------------------------------------------------------------------ during a collection

TEST_F(WeakTableTest, LookupsDuringMarkingKeepOnlyWhatTheyReturn) {
  WeakValueTable<Obj, Obj> t(arena);
  RootArray keys(arena, 100);
  for (uint64_t i = 0; i < 100; ++i) {
    keys[i] = new_obj(arena, i);
    t.put(static_cast<Obj*>(keys[i]), new_obj(arena, 1000 + i));  // values unreachable
  }
  arena.start_cycle();
  // contains() compares in memory; get() loads. Only the loaded values survive the cycle.
  for (size_t i = 0; i < 100; ++i) {
    EXPECT_TRUE(t.contains(static_cast<Obj*>(keys[i])));
    if (i % 4 == 0) {
      EXPECT_EQ(t.get(static_cast<Obj*>(keys[i]))->id, 1000 + i);
    }
  }
  test::finish_cycle(arena);
  EXPECT_EQ(t.size(), 25u);
  for (size_t i = 0; i < 100; ++i)
    EXPECT_EQ(t.contains(static_cast<Obj*>(keys[i])), i % 4 == 0) << i;
  EXPECT_EQ(arena.stats().faults_declined, 0u);
}

TEST_F(WeakTableTest, GrowthDuringMarkingDefersTheMoveAndResurrectsNothing) {
  WeakKeyTable<Obj, Obj> t(arena);
  RootArray live(arena, 1000);
  for (uint64_t i = 0; i < 200; ++i) {
    Obj* k = new_obj(arena, i);
    if (i % 2 == 0) live[i] = k;  // odd keys die in the next cycle
    t.put(k, new_obj(arena, 1000 + i));
  }
  size_t cap_before = t.stats().capacity;
  arena.start_cycle();
  // Grow well past the capacity while marking: the old entries may not be copied (loading a
  // dead key would keep it alive), so a new generation takes the insertions.
  for (uint64_t i = 200; i < 1000; ++i) {
    live[i] = new_obj(arena, i);
    t.put(static_cast<Obj*>(live[i]), new_obj(arena, 1000 + i));
  }
  TableStats during = t.stats();
  EXPECT_GT(during.generations, 1u);
  EXPECT_GT(during.deferred_moves, 0u);
  EXPECT_GT(during.capacity, cap_before);
  for (uint64_t i = 0; i < 1000; i += 2)
    EXPECT_EQ(t.get(static_cast<Obj*>(live[i]))->id, 1000 + i) << i;
  test::finish_cycle(arena);
  EXPECT_EQ(t.size(), 900u);  // 100 odd keys of the first 200 died; the rest lives
  // The first operation outside marking moves everything into one generation.
  Obj* extra = new_obj(arena, 5000);
  Root<Obj> hold(arena, extra);
  t.put(extra, extra);
  TableStats after = t.stats();
  EXPECT_EQ(after.generations, 1u);
  EXPECT_EQ(t.size(), 901u);
  for (uint64_t i = 0; i < 1000; ++i) {
    if (i < 200 && i % 2 == 1) continue;
    EXPECT_EQ(t.get(static_cast<Obj*>(live[i]))->id, 1000 + i) << i;
  }
}

// A large table grows without copying itself in one operation: each later update moves at most
// ArenaOptions::table_move_slots slots of the old arrays. Meanwhile every entry is found exactly
// once (iterating while looking up too: lookups move nothing), and the move never runs while
// marking.
TEST(WeakTableMoves, GrowthMovesABoundedNumberOfSlotsPerOperation) {
  ArenaOptions o = test::exact_options();
  o.table_move_slots = 64;
  Arena arena(o);
  WeakKeyTable<Obj, Obj> t(arena);
  constexpr size_t kN = 6000;
  RootArray roots(arena, 2 * kN);
  size_t most_generations = 0, multi_ops = 0;
  for (uint64_t i = 0; i < kN; ++i) {
    roots[2 * i] = new_obj(arena, i);
    roots[2 * i + 1] = new_obj(arena, 100000 + i);
    size_t gens_before = t.stats().generations;
    size_t cap_before = t.stats().capacity;
    ASSERT_TRUE(t.put(static_cast<Obj*>(roots[2 * i]), static_cast<Obj*>(roots[2 * i + 1])));
    TableStats st = t.stats();
    most_generations = std::max(most_generations, st.generations);
    if (st.generations > 1) ++multi_ops;
    // An operation adds at most one generation, and only when the table needs room.
    ASSERT_LE(st.generations, gens_before + 1);
    if (st.generations > gens_before) {
      ASSERT_GT(st.capacity, cap_before);
    }
    if (i % 97 == 0) {  // every entry so far, once
      ASSERT_EQ(t.size(), i + 1);
      size_t seen = 0;
      t.for_each([&](Obj* k, Obj* v) {
        ++seen;
        EXPECT_EQ(v->id, 100000 + k->id);
      });
      ASSERT_EQ(seen, i + 1);
      // Present keys are found in whichever generation holds them, absent ones (the values)
      // in neither.
      for (uint64_t j = 0; j <= i; j += 13) {
        Obj* got = t.get(static_cast<Obj*>(roots[2 * j]));
        ASSERT_NE(got, nullptr) << j;
        ASSERT_EQ(got->id, 100000 + j) << j;
        ASSERT_EQ(t.get(static_cast<Obj*>(roots[2 * j + 1])), nullptr) << j;
      }
    }
  }
  EXPECT_GE(most_generations, 2u);
  EXPECT_GT(multi_ops, 30u) << "moves were not spread over operations";
  // During marking the move waits (.inv.mark-copy); lookups alone finish it afterwards.
  if (t.stats().generations == 1) {
    for (uint64_t i = kN; i < kN + 2000 && t.stats().generations == 1; ++i)
      t.put(new_obj(arena, i), new_obj(arena, 0));  // until a growth starts a move
  }
  ASSERT_GT(t.stats().generations, 1u);
  arena.start_cycle();
  const TableStats marking = t.stats();
  for (uint64_t j = 0; j < kN; ++j) ASSERT_NE(t.get(static_cast<Obj*>(roots[2 * j])), nullptr);
  EXPECT_EQ(t.stats().generations, marking.generations);
  EXPECT_EQ(t.stats().capacity, marking.capacity);
  test::finish_cycle(arena);
  // Iteration with lookups of other entries in between: each entry once, nothing moved.
  const TableStats before_iteration = t.stats();
  size_t seen = 0;
  std::set<Obj*> yielded;
  t.for_each([&](Obj* k, Obj*) {
    ++seen;
    EXPECT_TRUE(yielded.insert(k).second) << "yielded twice";
    EXPECT_NE(t.get(static_cast<Obj*>(roots[2 * (seen * 31 % kN)])), nullptr);
  });
  EXPECT_EQ(seen, t.size());
  EXPECT_EQ(t.stats().generations, before_iteration.generations);
  // reserve finishes a move at once (asked for): here on a copy grown the same way.
  {
    WeakKeyTable<Obj, Obj> u(arena);
    uint64_t n = 0;  // entries put, up to the first growth past 1,000 that leaves a move
    while (n < kN && (n < 1000 || u.stats().generations == 1)) {
      u.put(static_cast<Obj*>(roots[2 * n]), static_cast<Obj*>(roots[2 * n + 1]));
      ++n;
    }
    ASSERT_GT(u.stats().generations, 1u) << "no move under way: the test tests nothing";
    u.reserve(0);
    EXPECT_EQ(u.stats().generations, 1u);
    EXPECT_EQ(u.size(), n);
    for (uint64_t j = 0; j < n; ++j)
      ASSERT_EQ(u.get(static_cast<Obj*>(roots[2 * j]))->id, 100000 + j) << j;
  }
  // Updates (here: values replaced by themselves) finish the move.
  for (int pass = 0; pass < 40 && t.stats().generations > 1; ++pass)
    for (uint64_t j = 0; j < kN; j += 7)
      ASSERT_FALSE(t.put(static_cast<Obj*>(roots[2 * j]), static_cast<Obj*>(roots[2 * j + 1])));
  EXPECT_EQ(t.stats().generations, 1u);
  for (uint64_t j = 0; j < kN; ++j)
    ASSERT_EQ(t.get(static_cast<Obj*>(roots[2 * j]))->id, 100000 + j) << j;
}

TEST_F(WeakTableTest, ChurnCompactsTombstonesInsteadOfGrowing) {
  WeakKeyTable<Obj, Obj> t(arena);
  RootArray live(arena, 64);
  size_t max_capacity = 0;
  for (uint64_t round = 0; round < 200; ++round) {
    for (uint64_t i = 0; i < 64; ++i) {
      Obj* k = new_obj(arena, round * 64 + i);
      live[i] = k;
      t.put(k, new_obj(arena, 0));
    }
    // Half removed explicitly, half left to die: tombstones of both sorts.
    for (uint64_t i = 0; i < 32; ++i) t.remove(static_cast<Obj*>(live[i]));
    for (uint64_t i = 0; i < 64; ++i) live[i] = nullptr;
    if (round % 10 == 9) test::finish_cycle(arena);
    max_capacity = std::max(max_capacity, t.stats().capacity);
  }
  test::finish_cycle(arena);
  EXPECT_EQ(t.size(), 0u);
  EXPECT_LE(max_capacity, 2048u);  // 200 × 64 insertions, never more than ~320 present
  EXPECT_GT(t.stats().rebuilds, 0u);
  EXPECT_GT(t.stats().splats_noticed, 0u);
}

TEST_F(WeakTableTest, IterationDuringACollectionNeverYieldsASplattedEntry) {
  DoublyWeakTable<Obj, Obj> t(arena);
  RootArray roots(arena, 400);
  for (uint64_t i = 0; i < 200; ++i) {
    Obj* k = new_obj(arena, i);
    Obj* v = new_obj(arena, 1000 + i);
    t.put(k, v);
    if (i % 3 != 0) {
      roots[2 * i] = k;
      roots[2 * i + 1] = v;
    }
  }
  arena.start_cycle();
  while (arena.phase() == Phase::kMark) arena.step(1000);
  ASSERT_NE(arena.phase(), Phase::kIdle);
  // In the weak phase (or later): dead entries are splatted as their pages are touched.
  size_t n = 0;
  t.for_each([&](Obj* k, Obj* v) {
    EXPECT_NE(k->id % 3, 0u);
    EXPECT_EQ(v->id, k->id + 1000);
    ++n;
    new_obj(arena, 0);  // allocation inside the loop is allowed
  });
  EXPECT_EQ(n, 133u);
  test::finish_cycle(arena);
  EXPECT_EQ(t.size(), 133u);
}

TEST_F(WeakTableTest, SizeIsExactAfterTheWeakPhaseWithoutTouchingTheTable) {
  WeakKeyTable<Obj, Obj> t(arena);
  RootArray roots(arena, 300);
  for (uint64_t i = 0; i < 300; ++i) {
    Obj* k = new_obj(arena, i);
    if (i < 100) roots[i] = k;
    t.put(k, new_obj(arena, 1000 + i));
  }
  test::finish_cycle(arena);
  EXPECT_EQ(t.stats().occupied, 300u);  // nothing noticed yet ...
  EXPECT_EQ(t.size(), 100u);            // ... but the splat counters already tell
  arena.start_cycle();
  EXPECT_EQ(t.size(), 100u);  // still exact during the next marking
  test::finish_cycle(arena);
}

// ------------------------------------------------------------------ notification

template <class T>
std::multiset<std::pair<uint64_t, uint64_t>> take_all(T& t) {
  std::multiset<std::pair<uint64_t, uint64_t>> out;
  Obj* k;
  Obj* v;
  while (t.take_dead(&k, &v)) {
    EXPECT_TRUE((k == nullptr) != (v == nullptr));
    out.insert({k ? k->id : 0, v ? v->id : 0});
  }
  return out;
}

TEST_F(WeakTableTest, WeakKeyNotificationQueuesTheValuesOfDeadKeys) {
  WeakKeyTable<Obj, Obj> t(arena);
  ASSERT_EQ(t.enable_notification(), Status::kOk);
  RootArray roots(arena, 100);
  for (uint64_t i = 1; i <= 100; ++i) {
    Obj* k = new_obj(arena, i);
    if (i % 2 == 0) roots[i - 1] = k;
    t.put(k, new_obj(arena, 1000 + i));
  }
  t.remove(static_cast<Obj*>(roots[1]));  // a removal is not a death
  roots[3] = nullptr;                     // key 4 dies too
  test::finish_cycle(arena);
  auto got = take_all(t);
  std::multiset<std::pair<uint64_t, uint64_t>> want;
  for (uint64_t i = 1; i <= 100; i += 2) want.insert({0, 1000 + i});
  want.insert({0, 1004});
  EXPECT_EQ(got, want);
  EXPECT_TRUE(take_all(t).empty());  // each once
  // The notified values stay alive until taken; after that they are ordinary garbage.
  test::finish_cycle(arena);
  EXPECT_TRUE(take_all(t).empty());
}

TEST_F(WeakTableTest, WeakValueNotificationQueuesTheKeysOfDeadValues) {
  WeakValueTable<Obj, Obj> t(arena);
  ASSERT_EQ(t.enable_notification(), Status::kOk);
  RootArray keys(arena, 20);
  Root<Obj> v_live(arena, new_obj(arena, 999));
  for (uint64_t i = 1; i <= 20; ++i) {
    keys[i - 1] = new_obj(arena, i);
    t.put(static_cast<Obj*>(keys[i - 1]), i <= 10 ? v_live.get() : new_obj(arena, 1000 + i));
  }
  test::finish_cycle(arena);
  auto got = take_all(t);
  std::multiset<std::pair<uint64_t, uint64_t>> want;
  for (uint64_t i = 11; i <= 20; ++i) want.insert({i, 0});
  EXPECT_EQ(got, want);
  EXPECT_EQ(t.size(), 10u);
}

TEST_F(WeakTableTest, DoublyWeakNotificationQueuesTheSurvivingHalfOnly) {
  DoublyWeakTable<Obj, Obj> t(arena);
  ASSERT_EQ(t.enable_notification(), Status::kOk);
  RootArray roots(arena, 30);
  for (uint64_t i = 0; i < 30; ++i) {
    Obj* k = new_obj(arena, 1 + i);
    Obj* v = new_obj(arena, 1001 + i);
    t.put(k, v);
    if (i < 10)
      roots[i] = k;  // value dies: notify key
    else if (i < 20)
      roots[i] = v;  // key dies: notify value
  }                  // both die: nothing
  test::finish_cycle(arena);
  std::multiset<std::pair<uint64_t, uint64_t>> want;
  for (uint64_t i = 0; i < 10; ++i) want.insert({1 + i, 0});
  for (uint64_t i = 10; i < 20; ++i) want.insert({0, 1001 + i});
  EXPECT_EQ(take_all(t), want);
  EXPECT_EQ(t.size(), 0u);
}

// Ephemeron value arrays and key arrays are settled by separate scans in the weak phase, in
// segment order. Whichever runs first must report the same survivor: a value alive elsewhere.
void ephemeron_notification(Arena& arena, bool value_array_first) {
  if (value_array_first) {
    // An ephemeron-rank array allocated first takes the lower segment for that rank and size
    // class, so the table's value array (same class) lands before its key array.
    WeakArray* early = nullptr;
    ASSERT_EQ(alloc_weak_array(arena, 64, Rank::kEphemeron, nullptr, &early), Status::kOk);
  }
  EphemeronTable<Obj, Obj> t(arena, 40);  // 64 slots, as the array above
  ASSERT_EQ(t.enable_notification(), Status::kOk);
  RootArray values(arena, 20);
  for (uint64_t i = 0; i < 20; ++i) {
    Obj* v = new_obj(arena, 1000 + i);
    values[i] = v;  // every key dies; every value lives on elsewhere
    t.put(new_obj(arena, i), v);
  }
  test::finish_cycle(arena);
  auto got = take_all(t);
  std::multiset<std::pair<uint64_t, uint64_t>> want;
  for (uint64_t i = 0; i < 20; ++i) want.insert({0, 1000 + i});
  EXPECT_EQ(got, want);
}

TEST_F(WeakTableTest, EphemeronNotificationWhenKeyArrayIsSettledFirst) {
  ephemeron_notification(arena, false);
}
TEST_F(WeakTableTest, EphemeronNotificationWhenValueArrayIsSettledFirst) {
  ephemeron_notification(arena, true);
}

TEST_F(WeakTableTest, ClearDuringMarkingKeepsEarlierNotifications) {
  WeakKeyTable<Obj, Obj> t(arena);
  ASSERT_EQ(t.enable_notification(), Status::kOk);
  for (uint64_t i = 0; i < 10; ++i) t.put(new_obj(arena, i), new_obj(arena, 100 + i));
  ASSERT_EQ(t.size(), 10u);
  test::finish_cycle(arena);  // ten deaths, not yet noticed by the table
  arena.start_cycle();
  t.clear();
  test::finish_cycle(arena);
  EXPECT_EQ(take_all(t).size(), 10u);
  EXPECT_EQ(t.size(), 0u);
}

TEST_F(WeakTableTest, ClearDuringTheWeakPhaseStillNotifiesThatCyclesDeaths) {
  // Arrays of 8,192 slots (64 KiB, own segments) are settled a page per weak-phase step, so
  // clear() finds them unsettled: it must settle them before dropping them, or the deaths still
  // to be splatted are buried in graveyards no one drains. The entries sit past the arrays'
  // first pages (home slots from 2,048 on), so reading the splat counters in the headers
  // settles none of them.
  WeakKeyTable<Obj, Obj> t(arena, 4000);
  ASSERT_EQ(t.enable_notification(), Status::kOk);
  const size_t cap = t.stats().capacity;
  ASSERT_EQ(cap, 8192u);
  constexpr size_t kN = 200;
  RootArray keys(arena, kN);
  RootArray values(arena, kN);
  std::multiset<std::pair<uint64_t, uint64_t>> want;
  for (uint64_t i = 0; i < kN;) {
    Obj* k = new_obj(arena, i);
    if (raw::home_slot(raw::identity_hash(k), cap) < 2048) continue;  // garbage
    Obj* v = new_obj(arena, 10000 + i);
    keys[i] = k;
    values[i] = v;  // every value survives its key
    t.put(k, v);
    if (i % 2 == 1) want.insert({0, 10000 + i});
    ++i;
  }
  for (size_t i = 1; i < kN; i += 2) keys[i] = nullptr;
  arena.start_cycle();
  while (arena.phase() == Phase::kMark) arena.step(1000);
  ASSERT_EQ(arena.phase(), Phase::kWeak);  // 1 µs steps: the weak phase is under way
  t.clear();
  test::finish_cycle(arena);
  EXPECT_EQ(take_all(t), want);
  EXPECT_EQ(t.size(), 0u);
}

// clear() in the weak phase keeps the dropped arrays' graveyards (orphans) linked, and the
// collector goes on splatting into them. take_dead may be part-way through an orphan when that
// happens behind its position: here a lookup settles the arrays' last page first (a dead entry
// there is splatted and its value buried), take_dead hands that value over, and only then does
// the collector settle the earlier pages. Every survivor must still be reported, once.
TEST(WeakTableOrphans, SplatsBehindAPartlyTakenOrphanAreStillReported) {
  ArenaOptions o = test::exact_options();
  o.view_probes = false;  // a probe touches the key array, which settles its page
  Arena arena(o);
  WeakKeyTable<Obj, Obj> t(arena, 4000);
  ASSERT_EQ(t.enable_notification(), Status::kOk);
  const size_t cap = t.stats().capacity;
  ASSERT_EQ(cap, 8192u);  // 16 pages of 512 slots
  constexpr size_t kPerGroup = 10;
  RootArray keys(arena, 2 * kPerGroup + 1);
  RootArray values(arena, 2 * kPerGroup);
  std::multiset<std::pair<uint64_t, uint64_t>> want;
  std::set<uint64_t> high_values;
  size_t low = 0, high = 0;
  Obj* touch = nullptr;  // a live key on the last page
  for (uint64_t id = 0; low < kPerGroup || high < kPerGroup || touch == nullptr; ++id) {
    Obj* k = new_obj(arena, id);
    size_t home = raw::home_slot(raw::identity_hash(k), cap);
    bool is_low = home >= 1024 && home < 3072;   // pages 2-5
    bool is_high = home >= 7680 && home < 8176;  // the last page
    if (is_high && touch == nullptr) {
      touch = k;
      keys[2 * kPerGroup] = k;
      t.put(k, new_obj(arena, 50000));
      continue;
    }
    if (!(is_low && low < kPerGroup) && !(is_high && high < kPerGroup)) continue;  // garbage
    size_t n = low + high;
    Obj* v = new_obj(arena, 10000 + id);
    values[n] = v;  // every value outlives its key
    t.put(k, v);
    want.insert({0, 10000 + id});
    if (is_high) high_values.insert(10000 + id);
    (is_low ? low : high)++;
  }
  arena.start_cycle();
  while (arena.phase() == Phase::kMark) arena.step(1000);
  ASSERT_EQ(arena.phase(), Phase::kWeak);
  ASSERT_NE(t.get(touch), nullptr);  // settles the last page of the key array
  t.clear();
  Obj* k;
  Obj* v;
  ASSERT_TRUE(t.take_dead(&k, &v));
  ASSERT_EQ(k, nullptr);
  ASSERT_EQ(high_values.count(v->id), 1u) << "the last page was not the first settled";
  std::multiset<std::pair<uint64_t, uint64_t>> got{{0, v->id}};
  test::finish_cycle(arena);  // settles pages 2-5: splats behind the position in the orphan
  auto rest = take_all(t);
  got.insert(rest.begin(), rest.end());
  EXPECT_EQ(got, want);
}

// Every other PROT_NONE fails (ENOMEM, as when the process runs out of mappings).
int g_protects = 0;
int every_other_protect_fails(void* p, size_t n, int prot) {
  if (prot == PROT_NONE && (g_protects++ & 1) != 0) {
    errno = ENOMEM;
    return -1;
  }
  return mprotect(p, n, prot);
}

TEST_F(WeakTableTest, PendingArraysWhoseProtectionFailsAreScannedInstead) {
  // The collector protects pending pages before the ephemeron passes; where mprotect fails it
  // scans their grey objects at once (exact rank: this cycle keeps their dead entries). The
  // table must stay right for every live key, and the next cycle must clear every dead entry.
  arena.impl()->mprotect_fn = &every_other_protect_fails;
  constexpr size_t kN = 20000;  // 32,768 slots: 64 pages per array, pending by default
  WeakKeyTable<Obj, Obj> t(arena, kN);
  RootArray keys(arena, kN);
  for (uint64_t i = 0; i < kN; ++i) {
    Obj* k = new_obj(arena, i);
    if (i % 2 == 0) keys[i] = k;
    t.put(k, new_obj(arena, 100000 + i));
  }
  Stats s0 = arena.stats();
  arena.start_cycle();
  for (size_t i = 0; i < kN; i += 20) {
    Obj* v = t.get(static_cast<Obj*>(keys[i]));
    ASSERT_TRUE(v != nullptr && v->id == 100000 + i);
  }
  test::finish_cycle(arena);
  Stats s1 = arena.stats();
  EXPECT_GT(s1.pages_pending, s0.pages_pending);
  EXPECT_GT(s1.mprotect_failures, s0.mprotect_failures);
  for (size_t i = 0; i < kN; i += 2) {
    Obj* v = t.get(static_cast<Obj*>(keys[i]));
    ASSERT_TRUE(v != nullptr && v->id == 100000 + i) << i;
  }
  EXPECT_GE(t.size(), kN / 2);
  arena.impl()->mprotect_fn = nullptr;
  test::finish_cycle(arena);
  EXPECT_EQ(t.size(), kN / 2);
  arena.verify();
}

TEST_F(WeakTableTest, NotificationIsNotForSets) {
  WeakSet<Obj> s(arena);
  EXPECT_EQ(s.untyped().enable_notification(), Status::kBadParam);
}

// ------------------------------------------------------------------ content keys

uint64_t bad_hash(const Obj*) {
  return 42;
}  // every key collides: probing must still work
bool cls_eq(const Obj* a, const Obj* b) {
  return a->cls == b->cls;
}

TEST_F(WeakTableTest, ContentKeysWithACollidingHashCompareByEquality) {
  WeakKeyTable<Obj, Obj> t(arena, ContentKeys<Obj>{&bad_hash, &cls_eq});
  RootArray roots(arena, 200);
  for (uint64_t i = 0; i < 100; ++i) {
    roots[i] = new_obj(arena, i, i);
    t.put(static_cast<Obj*>(roots[i]), new_obj(arena, 1000 + i));
  }
  for (uint64_t i = 0; i < 100; ++i) {
    // A different object with the same content finds the entry.
    Obj* probe = new_obj(arena, 5000 + i, i);
    roots[100 + i] = probe;
    ASSERT_NE(t.get(probe), nullptr);
    EXPECT_EQ(t.get(probe)->id, 1000 + i);
  }
  Root<Obj> other(arena, new_obj(arena, 7, 7));
  Obj* old = t.exchange(other.get(), new_obj(arena, 77));  // same content as key 7: replaces
  EXPECT_EQ(old->id, 1007u);
  EXPECT_EQ(t.size(), 100u);
  test::finish_cycle(arena);
  EXPECT_EQ(t.size(), 100u);
  for (uint64_t i = 0; i < 100; ++i) roots[i] = nullptr;  // the stored keys die
  test::finish_cycle(arena);
  EXPECT_EQ(t.size(), 0u);
}

// ------------------------------------------------------------------ reserve

TEST_F(WeakTableTest, ReserveAvoidsLaterGrowth) {
  WeakKeyTable<Obj, Obj> t(arena);
  t.reserve(5000);
  size_t cap = t.stats().capacity;
  EXPECT_GE(cap * 7 / 8, 5000u);
  RootArray roots(arena, 5000);
  for (uint64_t i = 0; i < 5000; ++i) {
    roots[i] = new_obj(arena, i);
    t.put(static_cast<Obj*>(roots[i]), static_cast<Obj*>(roots[i]));
  }
  EXPECT_EQ(t.stats().capacity, cap);
  EXPECT_EQ(t.stats().rebuilds, 0u);
}

// A table grown one insertion at a time ends at the smallest capacity that holds its entries
// below the maximum load (7/8): a full table doubles, it does not quadruple.
TEST_F(WeakTableTest, GrowthDoublesTheCapacity) {
  for (size_t n : {100u, 900u, 1000u, 5000u}) {
    WeakKeyTable<Obj, Obj> t(arena);
    RootArray roots(arena, n);
    for (uint64_t i = 0; i < n; ++i) {
      roots[i] = new_obj(arena, i);
      t.put(static_cast<Obj*>(roots[i]), static_cast<Obj*>(roots[i]));
    }
    size_t want = 16;
    while (n * 8 > want * 7) want *= 2;
    EXPECT_EQ(t.stats().capacity, want) << n;
    EXPECT_EQ(t.size(), n);
  }
}

// ------------------------------------------------------------------ the raw layer

TEST_F(WeakTableTest, RawLayerFindsStoresAndCountsSplats) {
  // A runtime keeps raw::Slots in its own memory; here in a registered root array.
  RootArray holder(arena, 4);
  raw::Slots s;
  ASSERT_EQ(raw::alloc_slots(arena, TableKind::kDoublyWeak, 64, false, &s), Status::kOk);
  holder[0] = s.keys;
  holder[1] = s.values;
  holder[2] = s.ctrl;
  EXPECT_EQ(s.capacity, 64u);
  RootArray roots(arena, 40);
  for (uint64_t i = 0; i < 40; ++i) {
    Obj* k = new_obj(arena, i);
    Obj* v = new_obj(arena, 100 + i);
    if (i < 20) roots[i] = k;
    if (i < 10) roots[20 + i] = v;
    uint64_t h = raw::identity_hash(k);
    ASSERT_EQ(raw::find_identity(s, h, k), raw::kNotFound);
    size_t j = raw::find_free(s, h);
    raw::store(s, j, h, k, v);
    ASSERT_EQ(raw::find_identity(s, h, k), j);
  }
  EXPECT_EQ(raw::splat_count(s), 0u);
  test::finish_cycle(arena);
  // Entries 0..9 have both halves rooted; every other one lost a half.
  EXPECT_EQ(raw::splat_count(s), 30u);
  size_t full = 0, dead = 0;
  for (size_t i = 0; i < s.capacity; ++i) {
    if (!raw::ctrl_full(s.ctrl[i])) continue;
    ++full;
    if (raw::splatted(s, i)) {
      ++dead;
      raw::forget(s, i);
    }
  }
  EXPECT_EQ(full, 40u);
  EXPECT_EQ(dead, 30u);
  for (uint64_t i = 0; i < 10; ++i) {
    Obj* k = static_cast<Obj*>(roots[i]);
    size_t j = raw::find_identity(s, raw::identity_hash(k), k);
    ASSERT_NE(j, raw::kNotFound);
    EXPECT_EQ(reinterpret_cast<Obj*>(raw::load_value(s, j))->id, 100 + i);
  }
}

}  // namespace
}  // namespace weakgc
