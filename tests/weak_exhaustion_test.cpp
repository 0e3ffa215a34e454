// Arena exhaustion in the weak layer: an operation that needs memory the arena cannot give throws
// std::bad_alloc and loses nothing. The table (intern set, guarded array) holds exactly what it
// held before the call, every dead-entry notification is still delivered exactly once, and once
// memory is freed everything works again. Small exact arenas (weak_test_util.hpp); the oracle is
// the set of entries the test put and has not dropped, kept in a std::unordered_map.
#include <gtest/gtest.h>

#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "weak_test_util.hpp"
#include "weakgc/guarded_array.hpp"
#include "weakgc/intern.hpp"
#include "weakgc/tables.hpp"

namespace weakgc {
namespace {

using test::Obj;
using test::RootArray;

constexpr size_t kReserve = size_t{2} << 20;  // 2 MiB: a few thousand entries
constexpr size_t kMaxEntries = 1 << 14;       // more than fit in kReserve

ArenaOptions small_options() {
  ArenaOptions o = test::exact_options();
  o.reserve_bytes = kReserve;
  return o;
}

using test::kind_name;

// Fills the arena with objects held by `filler` until none fits: leaf objects of every size from
// 64 KiB down to 16 bytes, then exact-rank weak arrays (the pool of notification queues) of every
// length from 8,192 slots down to 1. Returns how many.
size_t exhaust(Arena& arena, RootArray& filler) {
  size_t n = 0;
  for (size_t size = size_t{64} << 10; size >= 16; size /= 2) {
    try {
      while (n < filler.size()) filler[n++] = make_leaf_bytes(arena, size);
    } catch (const std::bad_alloc&) {  // (the right side runs first: n counts what was made)
    }
  }
  for (size_t len = 8192; len >= 1; len /= 2) {
    WeakArray* a = nullptr;
    while (n < filler.size() &&
           alloc_weak_array(arena, len, Rank::kExact, nullptr, &a) == Status::kOk)
      filler[n++] = a;
  }
  return n;
}

// Objects held by roots[2i] (key) and roots[2i + 1] (value), ids i and kMaxEntries + i.
struct Filled {
  size_t entries = 0;      // entries put (0 .. entries - 1)
  bool put_threw = false;  // the last put threw (rather than the allocation of its objects)
};

// Puts entries until the arena is exhausted. While `marking`, a cycle is in progress and
// advances a little every 64 puts, so the table grows during marking (deferred moves).
Filled fill(Arena& arena, WeakTable& t, RootArray& roots, bool marking) {
  const bool set = t.kind() == TableKind::kWeakSet;
  Filled f;
  for (size_t i = 0; i < kMaxEntries; ++i) {
    if (marking && i % 64 == 0) {
      if (arena.phase() == Phase::kIdle) arena.start_cycle();
      (void)arena.step(20000);
    }
    Obj* k = nullptr;
    Obj* v = nullptr;
    try {
      k = make<Obj>(arena);
      k->id = i;
      roots[2 * i] = k;
      v = make<Obj>(arena);
      v->id = kMaxEntries + i;
      roots[2 * i + 1] = v;
    } catch (const std::bad_alloc&) {
      roots[2 * i] = nullptr;
      return f;
    }
    try {
      EXPECT_TRUE(t.put(k, set ? nullptr : v));
    } catch (const std::bad_alloc&) {
      // Strong guarantee: the entry was not made.
      EXPECT_FALSE(t.contains(k)) << "entry " << i;
      EXPECT_EQ(t.get(k), nullptr) << "entry " << i;
      roots[2 * i] = roots[2 * i + 1] = nullptr;
      f.put_threw = true;
      return f;
    }
    f.entries = i + 1;
  }
  return f;
}

// The table holds exactly the entries i < n with `alive(i)`: by lookup, by size, by iteration.
template <class Alive>
void expect_holds(WeakTable& t, RootArray& roots, size_t n, Alive alive) {
  const bool set = t.kind() == TableKind::kWeakSet;
  std::unordered_map<const void*, const void*> oracle;
  for (size_t i = 0; i < n; ++i) {
    if (!alive(i)) continue;
    oracle.emplace(roots[2 * i], set ? roots[2 * i] : roots[2 * i + 1]);
  }
  for (const auto& [k, v] : oracle) {
    ASSERT_EQ(t.get(k), v) << "key id " << static_cast<const Obj*>(k)->id;
    ASSERT_TRUE(t.contains(k));
  }
  EXPECT_EQ(t.size(), oracle.size());
  size_t seen = 0;
  std::unordered_set<const void*> dup;
  t.for_each([&](void* k, void* v) {
    ++seen;
    EXPECT_TRUE(dup.insert(k).second) << "yielded twice";
    auto it = oracle.find(k);
    ASSERT_NE(it, oracle.end()) << "an entry the oracle does not hold";
    if (!set) {
      EXPECT_EQ(v, it->second);
    }
  });
  EXPECT_EQ(seen, oracle.size());
}

struct Case {
  TableKind kind;
  bool marking;
  bool notify;
  bool clear = false;     // clear the table (exhausted) before taking the notifications
  size_t move_slots = 0;  // ArenaOptions::table_move_slots (0: the default)
};

std::string describe(const Case& c) {
  return std::string(kind_name(c.kind)) + (c.marking ? ", during marking" : ", idle") +
         (c.notify ? ", notifying" : "") + (c.clear ? ", cleared" : "") +
         (c.move_slots != 0 ? ", moves of " + std::to_string(c.move_slots) + " slots" : "");
}

// What the runs exercised: how many times put threw (rather than the allocation of an entry's
// objects).
struct Exercised {
  int put_threw = 0;
  size_t reput = 0;  // entries put back into a table while the arena was exhausted
};

void exhaust_table(const Case& c, Exercised* ex) {
  SCOPED_TRACE(describe(c));
  ArenaOptions o = small_options();
  o.table_move_slots = c.move_slots;
  Arena arena(o);
  RootArray roots(arena, 2 * kMaxEntries);
  WeakTable t(arena, c.kind);
  if (c.notify) {
    ASSERT_EQ(t.enable_notification(), Status::kOk);
  }
  Filled f = fill(arena, t, roots, c.marking);
  ex->put_threw += f.put_threw;
  ASSERT_GT(f.entries, 100u);
  ASSERT_LT(f.entries, kMaxEntries) << "the arena was never exhausted";
  expect_holds(t, roots, f.entries, [](size_t) { return true; });
  arena.verify();

  // A reserve far beyond the arena fails the same way, and changes nothing.
  EXPECT_THROW(t.reserve(size_t{1} << 24), std::bad_alloc);
  expect_holds(t, roots, f.entries, [](size_t) { return true; });

  // Still exhausted: remove every 40th entry and put it back. Each put either takes a
  // tombstone (the table needs no memory for that) or throws and leaves the entry out; with
  // a move under way the tombstones of the generation being emptied must not be taken.
  const bool set = c.kind == TableKind::kWeakSet;
  std::vector<bool> out(f.entries, false);
  size_t reput = 0;
  for (size_t i = 0; i < f.entries; i += 40) {
    ASSERT_TRUE(t.remove(roots[2 * i]));
    try {
      EXPECT_TRUE(t.put(roots[2 * i], set ? nullptr : roots[2 * i + 1]));
      ++reput;
    } catch (const std::bad_alloc&) {
      out[i] = true;
    }
  }
  ex->reput += reput;
  expect_holds(t, roots, f.entries, [&](size_t i) { return !out[i]; });
  for (size_t i = 0; i < f.entries; i += 40) {
    if (!out[i]) continue;
    try {
      EXPECT_TRUE(t.put(roots[2 * i], set ? nullptr : roots[2 * i + 1]));
      out[i] = false;
    } catch (const std::bad_alloc&) {
    }
  }
  // What still could not go back in is dropped, as if never put.
  for (size_t i = 0; i < f.entries; ++i)
    if (out[i]) roots[2 * i] = roots[2 * i + 1] = nullptr;

  // Drop both halves of every other entry: once collected, exactly those entries are gone
  // (every kind loses an entry whose key and value both died).
  auto kept = [&](size_t i) { return i % 2 == 1 && !out[i]; };
  std::unordered_set<const void*> dropped_values;
  std::unordered_set<const void*> dropped_keys;
  for (size_t i = 0; i < f.entries; i += 2) {
    if (out[i]) continue;  // removed above: not a death
    dropped_keys.insert(roots[2 * i]);
    dropped_values.insert(roots[2 * i + 1]);
    roots[2 * i] = roots[2 * i + 1] = nullptr;
  }
  test::finish_cycle(arena);  // the cycle in progress, if any
  arena.collect();
  arena.verify();
  expect_holds(t, roots, f.entries, kept);

  if (c.notify) {
    // Fill the arena again with filler the test holds, so that the notification queue cannot
    // grow: neither clearing the table nor taking the notifications may need memory then, and
    // none may be lost or repeated.
    RootArray filler(arena, kMaxEntries);
    ASSERT_LT(exhaust(arena, filler), kMaxEntries) << "the arena was never exhausted";
    if (c.clear) {
      t.clear();
      EXPECT_EQ(t.size(), 0u);
    } else {
      // Replacing a value needs no memory; on the way the table notices the deaths, and the
      // survivors the queue has no room for stay in the graveyards.
      EXPECT_FALSE(t.put(roots[2], c.kind == TableKind::kWeakSet ? nullptr : roots[3]));
      EXPECT_EQ(t.stats().occupied, f.entries / 2);
    }
    // The surviving half is reported: a weak-key table's value (the table kept it alive), a
    // weak-value table's key. Doubly weak and ephemeron entries whose halves both died (an
    // ephemeron value is not traced through a dead key) leave nothing to report.
    std::unordered_set<const void*> expect;
    if (c.kind == TableKind::kWeakKey) expect = dropped_values;
    if (c.kind == TableKind::kWeakValue) expect = dropped_keys;
    std::unordered_set<const void*> got;
    DeadEntry d;
    while (t.take_dead(&d)) {
      const void* survivor = d.key != nullptr ? d.key : d.value;
      EXPECT_TRUE(d.key == nullptr || d.value == nullptr);
      EXPECT_TRUE(got.insert(survivor).second) << "notified twice";
    }
    EXPECT_EQ(got, expect);
  }
  if (c.clear) expect_holds(t, roots, f.entries, [](size_t) { return false; });

  // Updates that need no memory (a value replaced by itself) finish a move under way (a
  // generation being emptied holds its arrays), and the collection returns its memory.
  for (int pass = 0; pass < 64 && t.stats().generations > 1; ++pass)
    for (size_t i = 1; i < f.entries; i += 2)
      if (kept(i)) {
        EXPECT_FALSE(t.put(roots[2 * i], set ? nullptr : roots[2 * i + 1]));
      }
  EXPECT_LE(t.stats().generations, 1u);
  arena.collect();
  // Memory is back: the table takes new entries again, and still holds the old ones.
  size_t added = 0;
  for (size_t i = 0; i < f.entries && added < 50; i += 2, ++added) {
    Obj* k = make<Obj>(arena);
    k->id = i;
    roots[2 * i] = k;
    Obj* v = make<Obj>(arena);
    v->id = kMaxEntries + i;
    roots[2 * i + 1] = v;
    EXPECT_TRUE(t.put(k, c.kind == TableKind::kWeakSet ? nullptr : v));
  }
  expect_holds(t, roots, f.entries,
               [&](size_t i) { return (!c.clear && kept(i)) || (i % 2 == 0 && i < 2 * added); });
  arena.verify();
}

TEST(TableExhaustion, PutThrowsBadAllocAndTheTableLosesNothing) {
  Exercised ex;
  for (TableKind k : {TableKind::kWeakKey, TableKind::kWeakValue, TableKind::kDoublyWeak,
                      TableKind::kEphemeron, TableKind::kWeakSet})
    for (bool marking : {false, true})
      for (size_t slots : {size_t{0}, size_t{64}})  // 64: a move is under way most of the time
        exhaust_table({k, marking, false, false, slots}, &ex);
  EXPECT_GE(ex.put_threw, 10);  // of 20 runs; the others ran out making an entry's objects
  EXPECT_GT(ex.reput, 0u);      // tombstones taken with no memory to be had
}

// take_dead and clear need no arena memory: in an exhausted arena they still hand over (or keep
// for later) every survivor, exactly once.
TEST(TableExhaustion, NotificationsSurviveExhaustion) {
  Exercised ex;
  for (TableKind k :
       {TableKind::kWeakKey, TableKind::kWeakValue, TableKind::kDoublyWeak, TableKind::kEphemeron})
    for (bool marking : {false, true})
      for (bool clear : {false, true}) exhaust_table({k, marking, true, clear}, &ex);
  EXPECT_GE(ex.put_threw, 8);  // of 16 runs
}

// Interning until the arena is exhausted: intern throws, and every symbol made before stays the
// one canonical symbol for its name.
TEST(TableExhaustion, InternThrowsBadAllocAndKeepsEverySymbolCanonical) {
  for (bool marking : {false, true}) {
    SCOPED_TRACE(marking ? "during marking" : "idle");
    Arena arena(small_options());
    RootArray roots(arena, kMaxEntries);
    InternSet s(arena);
    size_t n = 0;
    bool threw = false;
    for (; n < kMaxEntries; ++n) {
      if (marking && n % 64 == 0) {
        if (arena.phase() == Phase::kIdle) arena.start_cycle();
        (void)arena.step(20000);
      }
      std::string name = "symbol-" + std::to_string(n) + std::string(n % 40, 'x');
      try {
        roots[n] = s.intern(name);
      } catch (const std::bad_alloc&) {
        threw = true;
        EXPECT_EQ(s.find(name), nullptr);
        break;
      }
    }
    ASSERT_TRUE(threw) << "the arena was never exhausted";
    ASSERT_GT(n, 100u);
    for (size_t i = 0; i < n; ++i) {
      std::string name = "symbol-" + std::to_string(i) + std::string(i % 40, 'x');
      ASSERT_EQ(s.find(name), roots[i]) << name;
      ASSERT_EQ(s.intern(name), roots[i]) << name;  // a hit allocates nothing
    }
    EXPECT_EQ(s.size(), n);
    for (size_t i = 0; i < n; i += 2) roots[i] = nullptr;
    test::finish_cycle(arena);
    arena.collect();
    arena.verify();
    for (size_t i = 0; i < n; ++i) {
      std::string name = "symbol-" + std::to_string(i) + std::string(i % 40, 'x');
      ASSERT_EQ(s.find(name), i % 2 == 1 ? roots[i] : nullptr) << name;
    }
    EXPECT_EQ(s.size(), n / 2);
    Symbol* again = s.intern("symbol-0");
    EXPECT_NE(again, nullptr);
    EXPECT_EQ(s.find("symbol-0"), again);
  }
}

// Growing a guarded array in a full arena: resize throws and the array keeps its length and
// every slot; once memory is freed it grows.
TEST(TableExhaustion, GuardedArrayResizeThrowsAndKeepsEverySlot) {
  for (bool marking : {false, true}) {
    SCOPED_TRACE(marking ? "during marking" : "idle");
    Arena arena(small_options());
    GuardedArray<Obj> a(arena, 1000);
    for (size_t i = 0; i < a.size(); ++i) {
      Obj* o = make<Obj>(arena);
      o->id = i;
      a.set(i, o);
    }
    RootArray filler(arena, kMaxEntries);
    size_t nf = exhaust(arena, filler);
    ASSERT_LT(nf, kMaxEntries) << "the arena was never exhausted";
    if (marking) {
      arena.start_cycle();
      (void)arena.step(20000);
    }
    EXPECT_THROW(a.resize(4000), std::bad_alloc);
    ASSERT_EQ(a.size(), 1000u);
    test::finish_cycle(arena);
    arena.collect();
    arena.verify();
    for (size_t i = 0; i < a.size(); ++i) {
      ASSERT_NE(a.get(i), nullptr);
      ASSERT_EQ(a.get(i)->id, i);
    }
    for (size_t j = 0; j < nf; ++j) filler[j] = nullptr;
    a.resize(4000);  // the collection inside the allocation frees the filler
    EXPECT_EQ(a.get(999)->id, 999u);
    EXPECT_EQ(a.get(3999), nullptr);
  }
}

}  // namespace
}  // namespace weakgc
