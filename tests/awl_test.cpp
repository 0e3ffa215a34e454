// AWL pool tests (issue 5): weak arrays with dependents, ephemerons, graveyards, and the single
// access emulation on protected weak pages, checked against a shadow-graph oracle
// (tests/awl_shadow.hpp). The retention test, which needs optimised code, is
// awl_retention_test.cpp; the big seeded variants are awl_stress_test.cpp (label stress).
//
// Not a benchmark: nothing here is timed. AWL_SEED=<n> reproduces a seeded test.
#include <gtest/gtest.h>
#include <sys/mman.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "emulate/emulate.hpp"
#include "tests/awl_shadow.hpp"
#include "weak_test_util.hpp"
#include "weakgc/gc.hpp"
#include "weakgc/weak_array.hpp"

namespace awltest {
namespace {

using weakgc::test::finish_cycle;  // this cycle only: collect() would run another

using weakgc::Arena;
using weakgc::kDeleted;
using weakgc::kEmpty;
using weakgc::Phase;
using weakgc::Rank;
using weakgc::Stats;
using weakgc::Status;
using Decline = weakgc::detail::emu::Decline;

uint64_t declined(const Stats& s, Decline d) {
  return s.declined_by_reason[static_cast<size_t>(d)];
}

// Steps the current cycle until it reaches `want` (or ends); returns whether it did.
bool step_until(Arena& arena, Phase want, uint64_t budget_ns) {
  while (arena.phase() != want) {
    if (arena.phase() == Phase::kIdle) return false;
    arena.step(budget_ns);
  }
  return true;
}

// A weak-key table over `n` keys where the keys at odd indices are dead (unrooted) and the
// others rooted. Values are odd integers (non-references), so only the keys decide.
struct HalfDeadTable {
  Table* t = nullptr;
  std::vector<uintptr_t> dead, live;
};

HalfDeadTable make_half_dead(World& w, size_t n, Kind kind = Kind::kWeakKey) {
  HalfDeadTable h;
  std::vector<uintptr_t> none;
  Table& t = w.add_table(kind, n, none);
  for (size_t i = 0; i < n; ++i) {
    uintptr_t node = w.new_node();
    if (i % 2 == 0) {
      w.root(node);
      h.live.push_back(node);
    } else {
      h.dead.push_back(node);
    }
    World::put(t, i, node, (i << 4) | 1);
  }
  h.t = &t;
  return h;
}

// ------------------------------------------------------------------------------ splat oracle

TEST(AwlSplat, RandomTablesMatchTheOracleAfterWholeCycles) {
  uint64_t seed = seed_from_env(0xa111);
  for (uint64_t s = seed; s < seed + 3; ++s) {
    Arena arena(test_options());
    World w(arena, s);
    RandomRun run(w, s, RandomRun::kWhole);
    run.build(/*nodes=*/1500, /*small_tables=*/9, /*large_tables=*/3);
    for (int round = 0; round < 4; ++round) run.round(round);
    if (::testing::Test::HasFailure()) return;
  }
}

TEST(AwlSplat, RandomTablesMatchTheOracleWithMutatorLoadsDuringIncrementalCycles) {
  uint64_t seed = seed_from_env(0xb222);
  for (uint64_t s = seed; s < seed + 3; ++s) {
    Arena arena(test_options());
    World w(arena, s);
    RandomRun run(w, s, RandomRun::kIncremental);
    run.build(/*nodes=*/1500, /*small_tables=*/9, /*large_tables=*/3);
    for (int round = 0; round < 4; ++round) run.round(round);
    if (::testing::Test::HasFailure()) return;
  }
}

TEST(AwlSplat, WeakKeyTableSplatsDeadKeysAndTheirValues) {
  Arena arena(test_options());
  World w(arena, 1);
  HalfDeadTable h = make_half_dead(w, 40);
  arena.collect();
  for (size_t i = 0; i < 40; ++i) {
    SCOPED_TRACE(i);
    if (i % 2 == 0) {
      EXPECT_EQ(h.t->keys->slot[i], h.live[i / 2]);
      EXPECT_EQ(h.t->values->slot[i], (i << 4) | 1);
    } else {
      EXPECT_EQ(h.t->keys->slot[i], kDeleted);
      EXPECT_EQ(h.t->values->slot[i], kDeleted);
    }
  }
  EXPECT_EQ(h.t->keys->splatted, 20u);
  EXPECT_EQ(h.t->values->splatted, 0u);
  EXPECT_EQ(arena.stats().slots_splatted, 20u);
}

TEST(AwlSplat, DoublyWeakTableSplatsTheEntryWhenEitherHalfDies) {
  Arena arena(test_options());
  World w(arena, 2);
  std::vector<uintptr_t> none;
  Table& t = w.add_table(Kind::kDoublyWeak, 4, none);
  uintptr_t lk = w.new_node(), lv = w.new_node(), dk = w.new_node(), dv = w.new_node();
  w.root(lk);
  w.root(lv);
  World::put(t, 0, lk, lv);  // both live: kept
  World::put(t, 1, dk, lv);  // key dead
  World::put(t, 2, lk, dv);  // value dead
  World::put(t, 3, dk, dv);  // both dead: one splat
  arena.collect();
  EXPECT_EQ(t.keys->slot[0], lk);
  EXPECT_EQ(t.values->slot[0], lv);
  for (size_t i = 1; i < 4; ++i) {
    EXPECT_EQ(t.keys->slot[i], kDeleted) << i;
    EXPECT_EQ(t.values->slot[i], kDeleted) << i;
  }
  EXPECT_EQ(t.keys->splatted + t.values->splatted, 3u);
}

TEST(AwlSplat, EphemeronValueReferringToItsOwnKeyDoesNotKeepTheEntry) {
  Arena arena(test_options());
  World w(arena, 3);
  std::vector<uintptr_t> none;
  Table& t = w.add_table(Kind::kEphemeron, 3, none);
  uintptr_t k0 = w.new_node(), v0 = w.new_node();
  w.set_edge(v0, 0, k0);  // the value refers to its own key; nothing else does
  uintptr_t k1 = w.new_node(), v1 = w.new_node();
  w.root(k1);
  w.set_edge(v1, 0, k1);  // same shape with a live key: kept
  World::put(t, 0, k0, v0);
  World::put(t, 1, k1, v1);
  arena.collect();
  EXPECT_EQ(t.keys->slot[0], kDeleted);
  EXPECT_EQ(t.values->slot[0], kDeleted);
  EXPECT_EQ(t.keys->slot[1], k1);
  EXPECT_EQ(t.values->slot[1], v1);
  EXPECT_EQ(reinterpret_cast<Node*>(v1)->edge[0].get(), reinterpret_cast<Node*>(k1));
}

TEST(AwlSplat, EphemeronChainResolvesThroughValues) {
  // key0 is rooted; value0 -> key1; value1 -> key2; value2 -> key3 (only through the chain).
  // The entries are stored in reverse order so that one pass over the array cannot see the
  // whole chain: the collector must repeat passes to a fixpoint. Entry 4 has a key reachable
  // only from its own value and dies; entry 5's value refers to a live chain key but its own
  // key is dead: dies too.
  Arena arena(test_options());
  World w(arena, 4);
  std::vector<uintptr_t> none;
  Table& t = w.add_table(Kind::kEphemeron, 8, none);
  uintptr_t key[4], val[4];
  for (int i = 0; i < 4; ++i) {
    key[i] = w.new_node();
    val[i] = w.new_node();
  }
  w.root(key[0]);
  for (int i = 0; i < 3; ++i) w.set_edge(val[i], 0, key[i + 1]);
  for (int i = 0; i < 4; ++i) World::put(t, 7 - i, key[i], val[i]);
  uintptr_t lonely_k = w.new_node(), lonely_v = w.new_node();
  w.set_edge(lonely_v, 0, lonely_k);
  World::put(t, 0, lonely_k, lonely_v);
  uintptr_t dead_k = w.new_node(), v5 = w.new_node();
  w.set_edge(v5, 0, key[2]);
  World::put(t, 1, dead_k, v5);
  for (int mode = 0; mode < 2; ++mode) {
    SCOPED_TRACE(mode == 0 ? "collect" : "incremental");
    if (mode == 0) {
      arena.collect();
    } else {
      arena.start_cycle();
      while (arena.step(20000)) {
      }
    }
    for (int i = 0; i < 4; ++i) {
      EXPECT_EQ(t.keys->slot[7 - i], key[i]) << "chain entry " << i;
      EXPECT_EQ(t.values->slot[7 - i], val[i]) << "chain entry " << i;
    }
    for (size_t i = 0; i < 2; ++i) {
      EXPECT_EQ(t.keys->slot[i], kDeleted) << i;
      EXPECT_EQ(t.values->slot[i], kDeleted) << i;
    }
  }
  // Cut the chain at its root: everything goes.
  w.unroot(key[0]);
  arena.collect();
  for (size_t i = 0; i < 8; ++i)
    EXPECT_TRUE(t.keys->slot[i] == kDeleted || t.keys->slot[i] == kEmpty) << i;
}

TEST(AwlSplat, LargeArraysSplatOnEveryPage) {
  // 6,000 slots: 47 KiB, a large object scanned page by page.
  Arena arena(test_options());
  World w(arena, 5);
  HalfDeadTable h = make_half_dead(w, 6000, Kind::kDoublyWeak);
  arena.start_cycle();
  while (arena.step(20000)) {
  }
  for (size_t i = 0; i < 6000; ++i) {
    uintptr_t want = i % 2 == 0 ? h.live[i / 2] : kDeleted;
    ASSERT_EQ(h.t->keys->slot[i], want) << i;
  }
  EXPECT_EQ(arena.stats().slots_splatted, 3000u);
}

TEST(AwlGraveyard, ReceivesTheSurvivingValueWhenTheKeyDies) {
  Arena arena(test_options());
  World w(arena, 6);
  std::vector<uintptr_t> none;
  Table& t = w.add_table(Kind::kWeakKey, 6, none, /*graveyard=*/true);
  uintptr_t live_key = w.new_node(), dead_key = w.new_node(), dead_key2 = w.new_node();
  uintptr_t value = w.new_node(), value2 = w.new_node();
  w.root(live_key);
  World::put(t, 0, live_key, value);    // alive: nothing buried
  World::put(t, 1, dead_key, value2);   // value2 is held only by the table: buried, and alive
  World::put(t, 2, dead_key2, 0x1231);  // a non-reference value is buried as is
  World::put(t, 3, dead_key, kEmpty);   // nothing to bury
  arena.collect();
  EXPECT_EQ(t.grave->slot[0], kEmpty);
  EXPECT_EQ(t.grave->slot[1], value2);
  EXPECT_EQ(t.grave->slot[2], 0x1231u);
  EXPECT_EQ(t.grave->slot[3], kEmpty);
  EXPECT_EQ(t.values->slot[1], kDeleted);
  // The buried value is alive (the graveyard is an exact array): its id is intact after a
  // further cycle that may reuse free cells.
  for (int i = 0; i < 100; ++i) w.new_node();
  arena.collect();
  EXPECT_EQ(reinterpret_cast<Node*>(t.grave->slot[1])->id, w.id_of(value2));
  EXPECT_EQ(t.grave->slot[1], value2);
}

TEST(AwlGraveyard, GraveyardNamedOnlyByTheHeaderStaysAllocated) {
  // Nothing but keys->graveyard names the graveyard. A burial into a freed graveyard would
  // write into whatever reuses its cell.
  Arena arena(test_options());
  World w(arena, 19);
  WeakArray *keys = nullptr, *values = nullptr, *grave = nullptr;
  ASSERT_EQ(weakgc::alloc_weak_array(arena, 4, Rank::kWeak, nullptr, &keys), Status::kOk);
  ASSERT_EQ(weakgc::alloc_weak_array(arena, 4, Rank::kExact, keys, &values), Status::kOk);
  ASSERT_EQ(weakgc::link_dependents(arena, keys, values), Status::kOk);
  ASSERT_EQ(weakgc::alloc_weak_array(arena, 4, Rank::kExact, nullptr, &grave), Status::kOk);
  w.root_object(keys);
  w.root_object(values);
  keys->graveyard = grave;
  arena.collect();
  std::vector<WeakArray*> others;
  for (int i = 0; i < 64; ++i) {
    WeakArray* o = nullptr;
    ASSERT_EQ(weakgc::alloc_weak_array(arena, 4, Rank::kExact, nullptr, &o), Status::kOk);
    w.root_object(o);
    for (size_t j = 0; j < 4; ++j) o->slot[j] = 0x41;
    others.push_back(o);
  }
  keys->slot[2] = w.new_node();  // dies
  values->slot[2] = 0x71;
  arena.collect();
  EXPECT_NE(arena.object_base(grave), nullptr) << "the graveyard was freed";
  EXPECT_EQ(grave->slot[2], 0x71u);
  for (WeakArray* o : others)
    for (size_t j = 0; j < 4; ++j) ASSERT_EQ(o->slot[j], 0x41u) << "a burial hit another array";
  arena.verify();
}

// ----------------------------------------------------------------- single-access emulation

TEST(AwlEmulation, MarkPhaseLoadIsEmulatedAndKeepsOnlyTheLoadedReferent) {
  Arena arena(test_options());
  World w(arena, 7);
  HalfDeadTable h = make_half_dead(w, 64);
  arena.start_cycle();
  ASSERT_EQ(arena.phase(), Phase::kMark);
  Stats before = arena.stats();
  // Load dead key 5 (index 11) and live key 3 (index 6): both faults are emulated.
  EXPECT_EQ(load_slot(h.t->keys, 11), h.dead[5]);
  EXPECT_EQ(load_slot(h.t->keys, 6), h.live[3]);
  Stats mid = arena.stats();
  EXPECT_EQ(mid.faults_emulated - before.faults_emulated, 2u);
  EXPECT_EQ(mid.faults_declined - before.faults_declined, 0u);
  finish_cycle(arena);  // this cycle only
  EXPECT_EQ(h.t->keys->slot[11], h.dead[5]) << "a loaded dead key is held by the mutator";
  EXPECT_EQ(h.t->keys->slot[6], h.live[3]);
  for (size_t i = 1; i < 64; i += 2) {
    if (i != 11) {
      EXPECT_EQ(h.t->keys->slot[i], kDeleted) << i;
    }
  }
  EXPECT_EQ(arena.stats().slots_splatted, 31u);
}

// An instruction that straddles a code page boundary is emulated like any other: the handler
// must read its bytes on the next page too (found by the model test, where one inlined probe
// landed across a page boundary and its faults were declined as truncated).
TEST(AwlEmulation, AnInstructionStraddlingACodePageIsEmulated) {
  // Three pages of code: each instruction starts at the end of one page and runs into the next.
  void* mem = mmap(nullptr, 3 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(mem, MAP_FAILED);
  auto* code = static_cast<uint8_t*>(mem);
  // load(slot): movq (%rdi), %rax; ret — the movq split 1 | 2 bytes across the boundary.
  const uint8_t load[] = {0x48, 0x8b, 0x07, 0xc3};
  // equals(slot, v): cmpq %rsi, (%rdi); sete %al; movzbl %al, %eax; ret — split 2 | 1.
  const uint8_t cmp[] = {0x48, 0x39, 0x37, 0x0f, 0x94, 0xc0, 0x0f, 0xb6, 0xc0, 0xc3};
  uint8_t* load_at = code + 4096 - 1;
  uint8_t* cmp_at = code + 2 * 4096 - 2;
  memcpy(load_at, load, sizeof load);
  memcpy(cmp_at, cmp, sizeof cmp);
  ASSERT_EQ(mprotect(mem, 3 * 4096, PROT_READ | PROT_EXEC), 0);
  auto load_fn = reinterpret_cast<uintptr_t (*)(const uintptr_t*)>(load_at);
  auto cmp_fn = reinterpret_cast<int (*)(const uintptr_t*, uintptr_t)>(cmp_at);

  Arena arena(test_options());
  World w(arena, 9);
  HalfDeadTable h = make_half_dead(w, 64);
  arena.start_cycle();
  ASSERT_EQ(arena.phase(), Phase::kMark);
  Stats before = arena.stats();
  EXPECT_EQ(load_fn(&h.t->keys->slot[6]), h.live[3]);
  EXPECT_EQ(cmp_fn(&h.t->keys->slot[2], h.live[1]), 1);
  EXPECT_EQ(cmp_fn(&h.t->keys->slot[2], h.live[0]), 0);
  Stats mid = arena.stats();
  EXPECT_EQ(mid.faults_emulated - before.faults_emulated, 3u);
  EXPECT_EQ(mid.faults_declined - before.faults_declined, 0u);
  finish_cycle(arena);
  // Nothing but the loaded key was kept: every dead key is splatted.
  for (size_t i = 1; i < 64; i += 2) EXPECT_EQ(h.t->keys->slot[i], kDeleted) << i;
  munmap(mem, 3 * 4096);
}

TEST(AwlEmulation, CompareAgainstAWeakSlotIsEmulatedWithoutGreyingTheReferent) {
  Arena arena(test_options());
  World w(arena, 8);
  HalfDeadTable h = make_half_dead(w, 64);
  uintptr_t* dead_slot = &h.t->keys->slot[1];  // holds h.dead[0]
  uintptr_t* live_slot = &h.t->keys->slot[2];  // holds h.live[1]
  uintptr_t other = h.live[0];
  uintptr_t live = h.live[1];
  arena.start_cycle();
  Stats before = arena.stats();
  unsigned char zf_dead, zf_live, zf_test, zf_imm, below;
  asm volatile("cmpq %[reg], (%[slot])\n\tsetz %[zf]"
               : [zf] "=r"(zf_dead)
               : [reg] "r"(other), [slot] "r"(dead_slot)
               : "cc", "memory");
  asm volatile("cmpq %[reg], (%[slot])\n\tsetz %[zf]"
               : [zf] "=r"(zf_live)
               : [reg] "r"(live), [slot] "r"(live_slot)
               : "cc", "memory");
  asm volatile("testq %[reg], (%[slot])\n\tsetz %[zf]"
               : [zf] "=r"(zf_test)
               : [reg] "r"(~uintptr_t{0}), [slot] "r"(dead_slot)
               : "cc", "memory");
  asm volatile("cmpq $5, (%[slot])\n\tsetz %[zf]"
               : [zf] "=r"(zf_imm)
               : [slot] "r"(dead_slot)
               : "cc", "memory");
  // Unsigned order of the dead key against 1: the slot is above, so CF is clear.
  asm volatile("cmpq %[reg], (%[slot])\n\tsetb %[b]"
               : [b] "=r"(below)
               : [reg] "r"(uintptr_t{1}), [slot] "r"(dead_slot)
               : "cc", "memory");
  Stats mid = arena.stats();
  EXPECT_EQ(zf_dead, 0) << "dead key compared with another key";
  EXPECT_EQ(zf_live, 1) << "live key compared with itself";
  EXPECT_EQ(zf_test, 0) << "test of a non-zero slot";
  EXPECT_EQ(zf_imm, 0) << "the slot is not kDeleted";
  EXPECT_EQ(below, 0);
  EXPECT_EQ(mid.faults_emulated - before.faults_emulated, 5u);
  EXPECT_EQ(mid.faults_declined - before.faults_declined, 0u);
  EXPECT_FALSE(arena.is_marked(reinterpret_cast<void*>(h.dead[0])))
      << "a compare must not grey the slot's referent";
  arena.collect();
  EXPECT_EQ(h.t->keys->slot[1], kDeleted) << "the compared dead key must still be splatted";
  EXPECT_EQ(h.t->values->slot[1], kDeleted);
  EXPECT_EQ(h.t->keys->slot[2], live);
}

TEST(AwlEmulation, StoresToProtectedWeakPagesLandAndSurvive) {
  Arena arena(test_options());
  World w(arena, 9);
  HalfDeadTable h = make_half_dead(w, 128);
  uintptr_t old_live = w.new_node();
  w.root(old_live);
  uintptr_t old_unrooted = w.new_node();
  w.root(old_unrooted);  // rooted at the flip, dropped during the cycle
  arena.start_cycle();   // flipped: marking, the table's pages protected
  ASSERT_EQ(arena.phase(), Phase::kMark);
  w.unroot(old_unrooted);
  Stats before = arena.stats();
  uintptr_t fresh = w.new_node();  // allocated during marking: black
  w.root(fresh);
  uintptr_t fresh_unrooted = w.new_node();
  // Insert into slots that hold dead keys (index 1, 3, 5, 7) and an empty one.
  store_slot(h.t->keys, 1, fresh);
  store_slot(h.t->keys, 3, old_live);
  store_slot(h.t->keys, 5, old_unrooted);
  store_slot(h.t->keys, 7, fresh_unrooted);
  Stats mid = arena.stats();
  EXPECT_EQ(mid.faults_emulated - before.faults_emulated, 4u);
  EXPECT_EQ(load_slot(h.t->keys, 1), fresh) << "the store landed";
  EXPECT_EQ(load_slot(h.t->keys, 3), old_live);
  finish_cycle(arena);  // this cycle only: collect() would run another
  EXPECT_EQ(h.t->keys->slot[1], fresh);
  EXPECT_EQ(h.t->keys->slot[3], old_live);
  EXPECT_EQ(h.t->keys->slot[5], old_unrooted) << "marked at the flip: survives this cycle";
  EXPECT_EQ(h.t->keys->slot[7], fresh_unrooted) << "allocated black: survives this cycle";
  EXPECT_EQ(h.t->values->slot[1], (1u << 4) | 1);
  EXPECT_EQ(reinterpret_cast<Node*>(fresh)->id, w.id_of(fresh));
  EXPECT_EQ(reinterpret_cast<Node*>(old_live)->id, w.id_of(old_live));
  for (size_t i = 9; i < 128; i += 2) EXPECT_EQ(h.t->keys->slot[i], kDeleted) << i;
  // Next cycle: the objects only the weak slots name die.
  arena.collect();
  EXPECT_EQ(h.t->keys->slot[1], fresh);
  EXPECT_EQ(h.t->keys->slot[3], old_live);
  EXPECT_EQ(h.t->keys->slot[5], kDeleted);
  EXPECT_EQ(h.t->keys->slot[7], kDeleted);
  arena.verify();
}

TEST(AwlEmulation, WeakPageFaultedInTheWeakPhaseIsScannedAtWeakRank) {
  // A large table (4,000 pages) whose keys alternate dead and live on every page, so that the
  // weak phase cannot finish in one small step and the last page is still protected when the
  // mutator touches it.
  constexpr size_t kN = 4096 * 512 / 2;
  Arena arena(test_options());
  World w(arena, 10);
  std::vector<uintptr_t> none;
  Table& t = w.add_table(Kind::kWeakKey, kN, none);
  uintptr_t live = w.new_node(), dead = w.new_node();
  w.root(live);
  for (size_t i = 0; i < kN; ++i) {
    t.keys->slot[i] = i % 2 == 0 ? live : dead;
    t.values->slot[i] = (i << 4) | 1;
  }
  bool seen = false;
  for (uint64_t budget : {50000u, 10000u, 2000u}) {
    arena.start_cycle();
    if (!step_until(arena, Phase::kWeak, budget)) continue;
    Stats before = arena.stats();
    uintptr_t got_dead = load_slot(t.keys, kN - 1);
    uintptr_t got_live = load_slot(t.keys, kN - 2);
    Stats after = arena.stats();
    if (after.faults_weak_phase == before.faults_weak_phase) {
      // The weak phase had already reached the last page: try a smaller step.
      arena.collect();
      continue;
    }
    seen = true;
    EXPECT_EQ(got_dead, kDeleted) << "a dead key must never reach the mutator in the weak phase";
    EXPECT_EQ(got_live, live);
    EXPECT_EQ(load_slot(t.values, kN - 1), kDeleted) << "the dependent is splatted with it";
    EXPECT_EQ(after.faults_emulated, before.faults_emulated) << "no emulation in the weak phase";
    EXPECT_EQ(after.faults_weak_phase - before.faults_weak_phase, 1u)
        << "one fault scans the page; the second load does not fault";
    while (arena.step(100000)) {
    }
    break;
  }
  ASSERT_TRUE(seen) << "never caught the weak phase with the last page protected";
  for (size_t i = 0; i < kN; ++i) {
    ASSERT_EQ(t.keys->slot[i], i % 2 == 0 ? live : kDeleted) << i;
    ASSERT_EQ(t.values->slot[i], i % 2 == 0 ? (i << 4) | 1 : kDeleted) << i;
  }
  EXPECT_EQ(arena.stats().slots_splatted, kN / 2);
}

TEST(AwlEmulation, DeclinedInstructionFallsBackToAnExactScanOfItsPageOnly) {
  // A large weak-key table: 4 pages of slots. An `add reg, [slot]` is not emulated: its page is
  // scanned at exact rank (its dead keys survive the cycle), the other pages are not.
  constexpr size_t kN = 2048;  // 16 KiB of slots + header: a large object over 5 pages
  Arena arena(test_options());
  World w(arena, 11);
  HalfDeadTable h = make_half_dead(w, kN);
  uintptr_t* slot = &h.t->keys->slot[1001];   // a dead key, page 1 of the slots
  uintptr_t* slot2 = &h.t->keys->slot[1801];  // another page
  arena.start_cycle();
  Stats before = arena.stats();
  uintptr_t acc = 0;
  asm volatile("addq (%[slot]), %[acc]" : [acc] "+r"(acc) : [slot] "r"(slot) : "cc", "memory");
  EXPECT_EQ(acc, h.dead[500]) << "the declined instruction ran on the scanned page";
  asm volatile("lock orq $0, (%[slot])" : : [slot] "r"(slot2) : "cc", "memory");
  Stats mid = arena.stats();
  EXPECT_EQ(mid.faults_declined - before.faults_declined, 2u);
  EXPECT_EQ(declined(mid, Decline::kUnsupported) - declined(before, Decline::kUnsupported), 1u);
  EXPECT_EQ(declined(mid, Decline::kLockPrefix) - declined(before, Decline::kLockPrefix), 1u);
  EXPECT_EQ(mid.faults_emulated, before.faults_emulated);
  finish_cycle(arena);  // this cycle only
  auto page_of = [&](size_t i) { return reinterpret_cast<uintptr_t>(&h.t->keys->slot[i]) >> 12; };
  size_t retained = 0, splatted = 0;
  for (size_t i = 1; i < kN; i += 2) {
    bool scanned_page = page_of(i) == page_of(1001) || page_of(i) == page_of(1801);
    if (scanned_page) {
      EXPECT_EQ(h.t->keys->slot[i], h.dead[i / 2]) << "exact scan retains dead key " << i;
      ++retained;
    } else {
      EXPECT_EQ(h.t->keys->slot[i], kDeleted) << "page not scanned: dead key " << i;
      ++splatted;
    }
  }
  EXPECT_EQ(retained, 512u) << "two pages of 512 slots, half dead each";
  EXPECT_EQ(arena.stats().slots_splatted, splatted);
}

TEST(AwlEmulation, BudgetExhaustedFallsBackToAnExactScanOfThePage) {
  Arena arena(test_options(/*emulation=*/true, /*budget=*/4));
  World w(arena, 12);
  HalfDeadTable h = make_half_dead(w, 2048);  // large: pages scanned one by one
  auto page_of = [&](size_t i) { return reinterpret_cast<uintptr_t>(&h.t->keys->slot[i]) >> 12; };
  arena.start_cycle();
  Stats before = arena.stats();
  // Six loads of live keys on one page (slots 600..610): four emulated, the fifth exhausts the
  // budget and scans the page, the sixth does not fault.
  for (size_t i = 600; i <= 610; i += 2) EXPECT_EQ(load_slot(h.t->keys, i), h.live[i / 2]);
  // Three loads on another page: within its own budget.
  for (size_t i = 1400; i <= 1404; i += 2) EXPECT_EQ(load_slot(h.t->keys, i), h.live[i / 2]);
  Stats mid = arena.stats();
  EXPECT_EQ(mid.faults_emulated - before.faults_emulated, 4u + 3u);
  EXPECT_EQ(mid.faults_budget - before.faults_budget, 1u);
  EXPECT_EQ(mid.faults_declined - before.faults_declined, 0u);
  finish_cycle(arena);  // this cycle only
  for (size_t i = 1; i < 2048; i += 2) {
    uintptr_t want = page_of(i) == page_of(600) ? h.dead[i / 2] : kDeleted;
    EXPECT_EQ(h.t->keys->slot[i], want) << i;
  }
}

TEST(AwlEmulation, EmulationOffScansEachTouchedPageOnce) {
  Arena arena(test_options(/*emulation=*/false));
  World w(arena, 13);
  HalfDeadTable h = make_half_dead(w, 4096);  // 32 KiB of slots: 9 pages
  auto page_of = [&](size_t i) { return reinterpret_cast<uintptr_t>(&h.t->keys->slot[i]) >> 12; };
  arena.start_cycle();
  Stats before = arena.stats();
  std::vector<size_t> reads = {0, 2, 4, 1000, 1002, 3000};
  std::unordered_set<uintptr_t> pages;
  for (size_t i : reads) {
    EXPECT_EQ(load_slot(h.t->keys, i), h.live[i / 2]);
    pages.insert(page_of(i));
  }
  Stats mid = arena.stats();
  EXPECT_EQ(mid.faults_emulated, before.faults_emulated);
  EXPECT_EQ(mid.faults_declined - before.faults_declined, pages.size());
  finish_cycle(arena);  // this cycle only: collect() would run another
  size_t splatted = 0;
  for (size_t i = 1; i < 4096; i += 2) {
    bool touched = pages.count(page_of(i)) != 0;
    EXPECT_EQ(h.t->keys->slot[i], touched ? h.dead[i / 2] : kDeleted) << i;
    splatted += !touched;
  }
  EXPECT_EQ(arena.stats().slots_splatted, splatted);
}

// -------------------------------------------------------------------------------------- misuse

TEST(AwlMisuse, ForeignDependentIsRejected) {
  Arena arena(test_options());
  static uint64_t foreign[16];
  WeakArray* a = nullptr;
  EXPECT_EQ(
      weakgc::alloc_weak_array(arena, 4, Rank::kWeak, reinterpret_cast<WeakArray*>(foreign), &a),
      Status::kBadParam);
  uint64_t on_stack[8] = {};
  EXPECT_EQ(
      weakgc::alloc_weak_array(arena, 4, Rank::kWeak, reinterpret_cast<WeakArray*>(on_stack), &a),
      Status::kBadParam);
  EXPECT_EQ(a, nullptr);
  arena.verify();
}

TEST(AwlMisuse, DependentThatIsNotAWeakArrayIsRejected) {
  Arena arena(test_options());
  World w(arena, 14);
  uintptr_t node = w.new_node();
  w.root(node);
  WeakArray* a = nullptr;
  EXPECT_EQ(weakgc::alloc_weak_array(arena, 4, Rank::kWeak, reinterpret_cast<WeakArray*>(node), &a),
            Status::kBadParam);
  WeakArray* b = nullptr;
  ASSERT_EQ(weakgc::alloc_weak_array(arena, 4, Rank::kWeak, nullptr, &b), Status::kOk);
  w.root_object(b);
  // An interior address of a weak array is not a weak array either.
  EXPECT_EQ(weakgc::alloc_weak_array(arena, 4, Rank::kWeak,
                                     reinterpret_cast<WeakArray*>(&b->slot[0]), &a),
            Status::kBadParam);
  EXPECT_EQ(weakgc::link_dependents(arena, b, reinterpret_cast<WeakArray*>(node)),
            Status::kBadParam);
  EXPECT_EQ(weakgc::link_dependents(arena, reinterpret_cast<WeakArray*>(node), b),
            Status::kBadParam);
  EXPECT_EQ(weakgc::link_dependents(arena, b, nullptr), Status::kBadParam);
  EXPECT_EQ(b->dependent, nullptr) << "a rejected link changes nothing";
  EXPECT_EQ(reinterpret_cast<Node*>(node)->id, w.id_of(node));
  arena.collect();
  arena.verify();
}

TEST(AwlMisuse, DependentsOfDifferentLengthsAreRejected) {
  Arena arena(test_options());
  World w(arena, 15);
  WeakArray *a = nullptr, *b = nullptr, *c = nullptr;
  ASSERT_EQ(weakgc::alloc_weak_array(arena, 8, Rank::kWeak, nullptr, &a), Status::kOk);
  ASSERT_EQ(weakgc::alloc_weak_array(arena, 16, Rank::kExact, nullptr, &b), Status::kOk);
  w.root_object(a);
  w.root_object(b);
  EXPECT_EQ(weakgc::link_dependents(arena, a, b), Status::kBadParam);
  EXPECT_EQ(a->dependent, nullptr);
  EXPECT_EQ(b->dependent, nullptr);
  // The header comment: "a dependent (another weak array of the same length, or null)". A
  // longer array with a shorter dependent would splat past the dependent's end.
  EXPECT_EQ(weakgc::alloc_weak_array(arena, 16, Rank::kWeak, a, &c), Status::kBadParam);
  EXPECT_EQ(weakgc::alloc_weak_array(arena, 4, Rank::kWeak, b, &c), Status::kBadParam);
  // No corruption: a table linked properly afterwards works.
  uintptr_t dead = w.new_node(), live = w.new_node();
  w.root(live);
  a->slot[0] = dead;
  a->slot[1] = live;
  WeakArray* v = nullptr;
  ASSERT_EQ(weakgc::alloc_weak_array(arena, 8, Rank::kExact, a, &v), Status::kOk);
  w.root_object(v);
  ASSERT_EQ(weakgc::link_dependents(arena, a, v), Status::kOk);
  v->slot[0] = 0x11;
  v->slot[1] = 0x21;
  arena.collect();
  EXPECT_EQ(a->slot[0], kDeleted);
  EXPECT_EQ(v->slot[0], kDeleted);
  EXPECT_EQ(a->slot[1], live);
  EXPECT_EQ(v->slot[1], 0x21u);
  arena.verify();
}

TEST(AwlMisuse, AbsurdLengthAndNullOutputAreRejected) {
  Arena arena(test_options());
  WeakArray* a = nullptr;
  EXPECT_EQ(weakgc::alloc_weak_array(arena, SIZE_MAX / 8, Rank::kWeak, nullptr, &a),
            Status::kBadParam);
  EXPECT_EQ(weakgc::alloc_weak_array(arena, 4, Rank::kWeak, nullptr, nullptr), Status::kBadParam);
  EXPECT_EQ(a, nullptr);
  arena.verify();
}

TEST(AwlMisuse, DependentReachableOnlyThroughTheHeaderIsNotFreedUnderTheKeys) {
  // Only the key array is rooted; its value array is reachable only as its dependent. If the
  // collector freed the value array, the splat of a dead key would write kDeleted into whatever
  // reuses the cell.
  Arena arena(test_options());
  World w(arena, 16);
  WeakArray *keys = nullptr, *values = nullptr;
  ASSERT_EQ(weakgc::alloc_weak_array(arena, 8, Rank::kWeak, nullptr, &keys), Status::kOk);
  ASSERT_EQ(weakgc::alloc_weak_array(arena, 8, Rank::kExact, keys, &values), Status::kOk);
  ASSERT_EQ(weakgc::link_dependents(arena, keys, values), Status::kOk);
  w.root_object(keys);
  uintptr_t live = w.new_node();
  w.root(live);
  keys->slot[0] = live;
  values->slot[0] = 0x31;
  arena.collect();
  // Reuse any free cell of the value array's size class.
  std::vector<WeakArray*> others;
  for (int i = 0; i < 64; ++i) {
    WeakArray* o = nullptr;
    ASSERT_EQ(weakgc::alloc_weak_array(arena, 8, Rank::kExact, nullptr, &o), Status::kOk);
    w.root_object(o);
    for (size_t j = 0; j < 8; ++j) o->slot[j] = 0x41;
    others.push_back(o);
  }
  uintptr_t dead = w.new_node();
  keys->slot[1] = dead;
  values->slot[1] = 0x51;
  arena.collect();
  EXPECT_NE(arena.object_base(values), nullptr) << "the dependent was freed";
  EXPECT_EQ(keys->slot[1], kDeleted);
  EXPECT_EQ(values->slot[0], 0x31u);
  for (WeakArray* o : others)
    for (size_t j = 0; j < 8; ++j) ASSERT_EQ(o->slot[j], 0x41u) << "a splat hit another array";
  arena.verify();
}

TEST(AwlMisuse, EphemeronArrayWithoutDependentNeverDangles) {
  // An ephemeron value array whose key array is missing has no key that could die: its values
  // must not be left pointing at freed objects.
  Arena arena(test_options());
  World w(arena, 17);
  WeakArray* v = nullptr;
  ASSERT_EQ(weakgc::alloc_weak_array(arena, 4, Rank::kEphemeron, nullptr, &v), Status::kOk);
  w.root_object(v);
  uintptr_t n = w.new_node();
  v->slot[0] = n;
  uint64_t id = w.id_of(n);
  arena.collect();
  uintptr_t got = v->slot[0];
  if (got != kDeleted) {
    EXPECT_EQ(got, n);
    EXPECT_NE(arena.object_base(reinterpret_cast<void*>(n)), nullptr) << "value dangles";
    for (int i = 0; i < 2000; ++i) w.new_node();  // reuse free cells
    EXPECT_EQ(reinterpret_cast<Node*>(n)->id, id) << "value dangles";
  }
  arena.verify();
}

// --------------------------------------------------------------------------------- statistics

TEST(AwlStats, CountersAddUpOverAMixedCycle) {
  Arena arena(test_options(/*emulation=*/true, /*budget=*/8));
  World w(arena, 18);
  HalfDeadTable h = make_half_dead(w, 4096);
  auto page_of = [&](size_t i) { return reinterpret_cast<uintptr_t>(&h.t->keys->slot[i]) >> 12; };
  arena.start_cycle();
  Stats before = arena.stats();
  // Page A: 3 loads (emulated). Page B: 10 loads (8 emulated, 1 budget, 1 free).
  // Page C: one declined instruction, then a load (free).
  size_t a = 100, b = 1100, c = 2100;
  for (size_t i = a; i < a + 6; i += 2) load_slot(h.t->keys, i);
  for (size_t i = b; i < b + 20; i += 2) load_slot(h.t->keys, i);
  uintptr_t acc = 0;
  asm volatile("addq (%[s]), %[acc]"
               : [acc] "+r"(acc)
               : [s] "r"(&h.t->keys->slot[c])
               : "cc", "memory");
  load_slot(h.t->keys, c + 2);
  Stats mid = arena.stats();
  EXPECT_EQ(mid.faults_emulated - before.faults_emulated, 3u + 8u);
  EXPECT_EQ(mid.faults_budget - before.faults_budget, 1u);
  EXPECT_EQ(mid.faults_declined - before.faults_declined, 1u);
  uint64_t reasons = 0;
  for (uint64_t r : mid.declined_by_reason) reasons += r;
  EXPECT_EQ(reasons, mid.faults_declined) << "every declined fault has a reason";
  EXPECT_EQ(mid.fault_pauses.count - before.fault_pauses.count, 3u + 8u + 1u + 1u);
  finish_cycle(arena);  // this cycle only
  Stats end = arena.stats();
  size_t dead_total = 2048, retained = 0;
  for (size_t i = 1; i < 4096; i += 2)
    if (page_of(i) == page_of(b) || page_of(i) == page_of(c)) ++retained;
  EXPECT_EQ(end.slots_splatted - before.slots_splatted, dead_total - retained);
  EXPECT_EQ(h.t->keys->splatted, dead_total - retained);
  EXPECT_EQ(end.faults_weak_phase, 0u);
  EXPECT_EQ(end.cycles, before.cycles + 1);
}

}  // namespace
}  // namespace awltest
