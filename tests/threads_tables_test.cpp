// Thread-safe tables (weakgc/concurrent_tables.hpp, docs/design/weak.md "Thread safety"):
// kWorkers registered threads run get/put/remove with plain loads through the API on one shared
// table of each kind while the main thread drives incremental collection (start_cycle/step);
// every thread owns a key range, so a shared oracle (std::unordered_map under a mutex) knows the
// exact expected state. After each cycle, with the workers quiescent, the table must hold every
// live entry with its value, never a removed one, and only dead entries the conservative stack
// scan may have kept. Concurrent interning: one canonical symbol per live name across threads,
// fresh symbols after death. Seeded (WEAKGC_TEST_SEED); not a benchmark.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <chrono>
#include <cstdio>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include "core/threads.hpp"
#include "threads_test_util.hpp"
#include "weak_test_util.hpp"
#include "weakgc/concurrent_tables.hpp"
#include "weakgc/guarded_array.hpp"

#ifndef THREADS_TABLES_SCALE
#define THREADS_TABLES_SCALE 1
#endif

namespace weakgc {
namespace {

using test::Obj;

constexpr int kWorkers = 4;
constexpr int kSlots = 48;  // entries per worker
constexpr int kStable = 8;  // of which never removed nor dropped: every worker reads them
constexpr int kRounds = 6 * THREADS_TABLES_SCALE;
constexpr int kMinSteps = 30;  // collector increments per round (more while a cycle is running)

// The base seed (WEAKGC_TEST_SEED overrides it); each test adds its own offset.
uint64_t base_seed() {
  return test::test_seed(0x7ab1e500u);
}

ArenaOptions mt_options() {
  ArenaOptions o;
  o.incremental = 1;
  o.reserve_bytes = size_t{1} << 30;
  // Growth moves 64 slots per update: a move is nearly always under way, so readers under the
  // shared lock meet several generations (and must not advance the move: .inv.read-only).
  o.table_move_slots = 64;
  return o;
}

// Under ThreadSanitizer a thread blocked in a wait the sanitizer does not treat as blocking
// (std::barrier's futex, pthread mutexes) takes the flip's suspend signal only when the wait ends:
// a flip while such a thread waits would never finish. So every wait here polls for the flip
// (detail::poll_suspend), like the table locks do; the mutexes are table locks.
using Mutex = detail::TableLock;

using test::Rendezvous;

// Keys of worker w have ids (w + 1) << 40 | n: the owner of an id is id >> 40, minus 1.
uint64_t key_id(int w, uint64_t n) {
  return (static_cast<uint64_t>(w + 1) << 40) | n;
}

Obj* make_obj(Arena& a, uint64_t id, uint64_t partner) {
  Obj* o = make<Obj>(a);
  o->id = id;
  o->cls = partner;  // a value's `cls` is the id of the key it was put with
  return o;
}

// Live objects that make marking span many increments, so that the workers run (and fault)
// while the collector marks and while it splats.
class Ballast {
 public:
  explicit Ballast(Arena& arena) : roots_(arena, kCount) {
    for (size_t i = 0; i < kCount; ++i) {
      Obj* o = make_obj(arena, 0, 0);
      if (i > 0) o->ref[0] = static_cast<Obj*>(roots_[i - 1]);
      roots_[i] = o;
    }
  }

 private:
  static constexpr size_t kCount = 20'000;
  test::RootArray roots_;
};

// The main thread's collector loop for one round: at least kMinSteps increments, a cycle
// started whenever the arena is idle, and the last cycle run to its end (the workers mutate
// throughout). Short increments make marking span many of them (the workers fault); long ones
// run whole cycles, so the weak phase splats while the workers update the same entries.
// Returns the cycles completed.
uint64_t drive_collector(Arena& arena, int round) {
  uint64_t before = arena.stats().cycles;
  uint64_t budget_ns = round % 2 == 0 ? 50'000 : 5'000'000;
  for (int i = 0; i < kMinSteps || arena.phase() != Phase::kIdle; ++i) {
    if (arena.phase() == Phase::kIdle && i < kMinSteps) arena.start_cycle();
    arena.step(budget_ns);
    std::this_thread::sleep_for(std::chrono::microseconds(300));
  }
  return arena.stats().cycles - before;
}

// One round of the main thread: the workers mutate (`mutate` set, first rendezvous) while it
// drives the collector, then stop and wait at the second rendezvous. Returns the cycles completed.
uint64_t run_round(Arena& arena, Rendezvous& sync, std::atomic<bool>& mutate, int round) {
  mutate = true;
  sync.arrive_and_wait();
  uint64_t cycles = drive_collector(arena, round);
  mutate = false;
  sync.arrive_and_wait();
  return cycles;
}

// Barrier faults of every outcome.
uint64_t faults(const Stats& s) {
  return s.faults_scanned + s.faults_emulated + s.faults_declined + s.faults_budget +
         s.faults_weak_phase;
}

// ------------------------------------------------------------------------------ tables

template <TableKind Kind>
using TableFor = std::conditional_t<Kind == TableKind::kWeakSet, ConcurrentWeakSet<Obj>,
                                    ConcurrentTypedWeakTable<Obj, Obj, Kind>>;

template <TableKind Kind>
struct Ops {
  static constexpr bool kSet = Kind == TableKind::kWeakSet;
  // Values that die unless rooted (the entry goes with them); dropping such an entry drops the
  // value and keeps the key to put it again later (a put racing the value's death).
  static constexpr bool kWeakValues =
      Kind == TableKind::kWeakValue || Kind == TableKind::kDoublyWeak;
  using Table = TableFor<Kind>;

  static Obj* get(Table& t, Obj* k) {
    if constexpr (kSet)
      return t.contains(k) ? k : nullptr;
    else
      return t.get(k);
  }
  static bool put(Table& t, Obj* k, Obj* v) {
    if constexpr (kSet)
      return t.insert(k);
    else
      return t.put(k, v);
  }
  static bool remove(Table& t, Obj* k) {
    if constexpr (kSet)
      return t.erase(k);
    else
      return t.remove(k);
  }
  template <class F>
  static void for_each(Table& t, F&& f) {
    if constexpr (kSet)
      t.for_each([&](Obj* k) { f(k, nullptr); });
    else
      t.for_each(f);
  }
};

// The oracle: key id -> what the table must show after a cycle.
struct Expect {
  enum State { kLive, kDropped, kGone } state = kGone;
  Obj* key = nullptr;    // kLive: the key (rooted by its owner)
  Obj* value = nullptr;  // kLive: the value (null for sets)
};

struct Oracle {
  Mutex mu;
  std::unordered_map<uint64_t, Expect> map;
  void set(uint64_t id, Expect e) {
    std::lock_guard<Mutex> g(mu);
    map[id] = e;
  }
};

// One worker's entries: slot i is free, live (key and value as in the oracle), or holds a kept
// key whose value was dropped (weak-value kinds).
template <TableKind Kind>
struct Worker {
  using O = Ops<Kind>;
  struct Slot {
    uint64_t id = 0;
    Obj* key = nullptr;
    Obj* value = nullptr;
    bool live = false;
    std::unique_ptr<Root<Obj>> key_root, value_root, prev_value_root;
  };

  Arena& arena;
  typename O::Table& table;
  Oracle& oracle;
  Obj* const* stable;  // kWorkers * kStable keys, rooted by the test
  int w;
  uint64_t seed;
  std::mt19937_64 rng;
  uint64_t next_id = 1;
  Slot slots[kSlots];
  uint64_t ops = 0;

  Worker(Arena& a, typename O::Table& t, Oracle& o, Obj* const* st, int w_, uint64_t s)
      : arena(a), table(t), oracle(o), stable(st), w(w_), seed(s), rng(s) {}

  std::string where() const {
    return "worker " + std::to_string(w) + " op " + std::to_string(ops) + " seed " +
           std::to_string(seed);
  }

  void record(const Slot& s) { oracle.set(s.id, Expect{Expect::kLive, s.key, s.value}); }

  // Gives slot i a new value for its (possibly new) key and puts it. Values of weak-value kinds
  // are rooted: the previous value stays rooted until the put has replaced it, so that a
  // concurrent reader never finds the entry missing.
  void put_new_value(int i, bool fresh_key) {
    Slot& s = slots[i];
    if (fresh_key) {
      s.id = key_id(w, next_id++);
      s.key = make_obj(arena, s.id, 0);
      s.key_root = std::make_unique<Root<Obj>>(arena, s.key);
    }
    Obj* v = nullptr;
    if (!O::kSet) {
      v = make_obj(arena, key_id(w, next_id++), s.id);
      if (Kind == TableKind::kEphemeron) v->ref[0] = s.key;  // a value that refers to its key
      if (O::kWeakValues || i < kStable) {
        s.prev_value_root = std::move(s.value_root);
        s.value_root = std::make_unique<Root<Obj>>(arena, v);
      }
    }
    bool was_live = s.live;
    bool made = O::put(table, s.key, v);
    if (fresh_key) {
      EXPECT_TRUE(made) << where();
    }
    if (was_live) {
      EXPECT_FALSE(made) << where();
    }
    s.prev_value_root.reset();
    s.value = v;
    s.live = true;
    record(s);
  }

  void step() {
    ++ops;
    int r = static_cast<int>(rng() % 100);
    if (r < 25) {  // read another worker's (or our own) stable key: always present
      Obj* k = stable[rng() % (kWorkers * kStable)];
      Obj* v = O::get(table, k);
      ASSERT_NE(v, nullptr) << "stable key " << k->id << " missing, " << where();
      if (!O::kSet) {
        EXPECT_EQ(v->cls, k->id) << where();
      }
      return;
    }
    int i = static_cast<int>(rng() % kSlots);
    Slot& s = slots[i];
    if (!s.live) {
      put_new_value(i, s.key == nullptr);
      return;
    }
    if (r < 50) {
      EXPECT_EQ(O::get(table, s.key), O::kSet ? s.key : s.value) << where();
    } else if (r < 70 || i < kStable) {
      put_new_value(i, false);
    } else if (r < 85) {
      EXPECT_TRUE(O::remove(table, s.key)) << where();
      EXPECT_EQ(O::get(table, s.key), nullptr) << where();
      oracle.set(s.id, Expect{Expect::kGone});
      s = Slot{};
    } else {
      // Drop: the entry must die. Weak-value kinds lose their value and keep the key (put again
      // later); doubly weak tables drop the key instead half the time.
      oracle.set(s.id, Expect{Expect::kDropped});
      if (O::kWeakValues && (Kind == TableKind::kWeakValue || rng() % 2 == 0)) {
        s.value_root.reset();
        s.value = nullptr;
        s.live = false;
      } else {
        s = Slot{};
      }
    }
  }
};

template <TableKind Kind>
// pending: the table is big (arrays of 8,192 slots) and its arrays are left unprotected at each
// flip (ArenaOptions::pending_min_pages): the workers' loads are guarded in software, and a
// flip by the collecting thread between a guard and its load makes the load retry.
void run_table_test(uint64_t seed, bool pending = false) {
  using O = Ops<Kind>;
  std::printf("kind %d seed %llu (rerun with WEAKGC_TEST_SEED=%llu)\n", static_cast<int>(Kind),
              static_cast<unsigned long long>(seed), static_cast<unsigned long long>(base_seed()));
  ArenaOptions options = mt_options();
  options.pending_min_pages = pending ? 1 : SIZE_MAX;
  Arena arena(options);
  Ballast ballast(arena);
  typename O::Table table(arena, pending ? 5000 : 0);
  Oracle oracle;
  std::vector<Obj*> stable(kWorkers * kStable, nullptr);
  std::atomic<bool> mutate{false};
  Rendezvous sync(kWorkers + 1);
  uint64_t dropped_total = 0, cleared_total = 0, cycles = 0;

  std::vector<std::thread> threads;
  for (int w = 0; w < kWorkers; ++w) {
    threads.emplace_back([&, w] {
      ThreadScope scope(arena);
      Worker<Kind> wk(arena, table, oracle, stable.data(), w, seed + static_cast<uint64_t>(w));
      for (int i = 0; i < kStable; ++i) {
        wk.put_new_value(i, true);
        stable[static_cast<size_t>(w * kStable + i)] = wk.slots[i].key;
      }
      sync.arrive_and_wait();  // stable keys published
      for (int round = 0; round < kRounds; ++round) {
        sync.arrive_and_wait();  // round starts
        while (mutate.load(std::memory_order_acquire)) wk.step();
        sync.arrive_and_wait();  // quiescent: the main thread collects and checks
        sync.arrive_and_wait();
      }
    });
  }
  sync.arrive_and_wait();
  for (int round = 0; round < kRounds; ++round) {
    cycles += run_round(arena, sync, mutate, round);
    arena.collect();  // a complete cycle with every worker quiescent
    arena.verify();

    // Check the table against the oracle.
    std::unique_lock<Mutex> g(oracle.mu);
    size_t live = 0, seen_live = 0, retained = 0, dropped = 0;
    for (auto& [id, e] : oracle.map) {
      live += e.state == Expect::kLive;
      dropped += e.state == Expect::kDropped;
    }
    std::vector<uint64_t> kept;
    O::for_each(table, [&](Obj* k, Obj* v) {
      auto it = oracle.map.find(k->id);
      ASSERT_NE(it, oracle.map.end()) << "unknown key " << k->id << ", round " << round;
      const Expect& e = it->second;
      switch (e.state) {
        case Expect::kLive:
          ++seen_live;
          EXPECT_EQ(k, e.key) << "key " << k->id;
          EXPECT_EQ(v, e.value) << "key " << k->id << " round " << round;
          break;
        case Expect::kDropped:  // dead, but a stale stack word may have kept it
          ++retained;
          kept.push_back(k->id);
          if (!O::kSet) {
            EXPECT_EQ(v->cls, k->id);
          }
          break;
        case Expect::kGone:
          ADD_FAILURE() << "removed or cleared key " << k->id << " present, round " << round;
          break;
      }
    });
    EXPECT_EQ(seen_live, live) << "round " << round;
    for (auto& [id, e] : oracle.map) {
      if (e.state == Expect::kLive) {
        EXPECT_EQ(O::get(table, e.key), O::kSet ? e.key : e.value) << "key " << id;
      }
    }
    EXPECT_EQ(table.size(), live + retained) << "round " << round;
    // Dropped entries that were cleared must never come back; retained ones stay "dropped".
    for (auto& [id, e] : oracle.map)
      if (e.state == Expect::kDropped) e.state = Expect::kGone;
    for (uint64_t id : kept) oracle.map[id].state = Expect::kDropped;
    dropped_total += dropped;
    cleared_total += dropped - retained;
    g.unlock();
    sync.arrive_and_wait();  // let the workers go on
  }
  for (auto& t : threads) t.join();
  Stats st = arena.stats();
  std::printf(
      "  %llu cycles, %llu dropped entries, %llu cleared; faults %llu (%llu emulated, "
      "%llu weak phase)\n",
      static_cast<unsigned long long>(cycles), static_cast<unsigned long long>(dropped_total),
      static_cast<unsigned long long>(cleared_total), static_cast<unsigned long long>(faults(st)),
      static_cast<unsigned long long>(st.faults_emulated),
      static_cast<unsigned long long>(st.faults_weak_phase));
  if (pending) {
    EXPECT_GT(st.pending_guards, 0u) << "no load met a pending page: the test proves nothing";
  } else {
    EXPECT_GT(faults(st), 0u) << "the workers never met the barrier: the test proves nothing";
  }
  EXPECT_GE(cycles, static_cast<uint64_t>(kRounds)) << "collection never overlapped the workers";
  EXPECT_GT(dropped_total, 0u) << "the test dropped nothing: it proves nothing about weakness";
  // Conservative stack scanning may keep a few dead entries; most must go.
  EXPECT_GE(cleared_total * 2, dropped_total) << "dead entries are not being cleared";
}

TEST(ThreadsTables, WeakKeyTableMatchesOracleUnderConcurrentUpdatesAndCollection) {
  run_table_test<TableKind::kWeakKey>(base_seed());
}
TEST(ThreadsTables, WeakValueTableMatchesOracleUnderConcurrentUpdatesAndCollection) {
  run_table_test<TableKind::kWeakValue>(base_seed() + 100);
}
TEST(ThreadsTables, DoublyWeakTableMatchesOracleUnderConcurrentUpdatesAndCollection) {
  run_table_test<TableKind::kDoublyWeak>(base_seed() + 200);
}
TEST(ThreadsTables, EphemeronTableMatchesOracleUnderConcurrentUpdatesAndCollection) {
  run_table_test<TableKind::kEphemeron>(base_seed() + 300);
}
TEST(ThreadsTables, WeakSetMatchesOracleUnderConcurrentUpdatesAndCollection) {
  run_table_test<TableKind::kWeakSet>(base_seed() + 400);
}

TEST(ThreadsTables, WeakKeyTableWithPendingArraysMatchesOracle) {
  run_table_test<TableKind::kWeakKey>(base_seed() + 500, true);
}
TEST(ThreadsTables, DoublyWeakTableWithPendingArraysMatchesOracle) {
  run_table_test<TableKind::kDoublyWeak>(base_seed() + 600, true);
}
TEST(ThreadsTables, EphemeronTableWithPendingArraysMatchesOracle) {
  run_table_test<TableKind::kEphemeron>(base_seed() + 700, true);
}

// A GuardedArray shared by the workers, left pending at the flips: each worker sets and reads
// its own slots (objects with a child carrying the same id) and reads a stable range nobody
// writes, while the main thread flips and marks. A flip can stop a worker between a get's state
// check and its load: the load is then redone guarded. After each round, with the workers
// quiescent, every slot must name the object its owner's oracle says, intact with its child.
TEST(ThreadsTables, GuardedArrayMatchesOracleUnderConcurrentAccessAndCollection) {
  constexpr size_t kPerWorker = 4096;  // 160 KiB of slots in all: left pending at flips
  constexpr size_t kStableSlots = 4096;
  uint64_t seed = base_seed() + 800;
  std::printf("seed %llu (rerun with WEAKGC_TEST_SEED=%llu)\n",
              static_cast<unsigned long long>(seed), static_cast<unsigned long long>(base_seed()));
  Arena arena(mt_options());
  Ballast ballast(arena);
  GuardedArray<Obj> a(arena, kStableSlots + kWorkers * kPerWorker);
  auto make_pair = [&](uint64_t id) {
    Obj* child = make_obj(arena, id, 0);
    Obj* o = make_obj(arena, id, 0);
    o->ref[0] = child;
    return o;
  };
  // Slot i holds an object with id oracle[i] whose child has the same id (0: null).
  auto matches = [&](size_t i, uint64_t id) {
    Obj* o = a.get(i);
    if (id == 0) return o == nullptr;
    return o != nullptr && o->id == id && o->ref[0].get() != nullptr && o->ref[0]->id == id;
  };
  std::vector<uint64_t> oracle(a.size(), 0);
  for (size_t i = 0; i < kStableSlots; ++i) {
    a.set(i, make_pair(i + 1));
    oracle[i] = i + 1;
  }
  std::atomic<bool> mutate{false};
  Rendezvous sync(kWorkers + 1);
  std::vector<uint64_t> mismatches(kWorkers, 0);
  std::vector<std::thread> threads;
  for (int w = 0; w < kWorkers; ++w) {
    threads.emplace_back([&, w] {
      ThreadScope scope(arena);
      std::mt19937_64 rng(seed + static_cast<uint64_t>(w));
      const size_t first = kStableSlots + static_cast<size_t>(w) * kPerWorker;
      uint64_t next = key_id(w, 1);
      for (int round = 0; round < kRounds; ++round) {
        sync.arrive_and_wait();
        while (mutate.load(std::memory_order_acquire)) {
          size_t i = first + rng() % kPerWorker;
          unsigned r = static_cast<unsigned>(rng() % 10);
          if (r < 3) {
            a.set(i, make_pair(next));
            oracle[i] = next++;
          } else if (r < 4) {
            size_t j = first + rng() % kPerWorker;
            a.set(i, a.get(j));
            oracle[i] = oracle[j];
          } else if (r < 5) {
            a.set(i, nullptr);
            oracle[i] = 0;
          } else if (r < 8) {
            mismatches[static_cast<size_t>(w)] += matches(i, oracle[i]) ? 0 : 1;
          } else {
            size_t j = rng() % kStableSlots;
            mismatches[static_cast<size_t>(w)] += matches(j, j + 1) ? 0 : 1;
          }
        }
        sync.arrive_and_wait();  // quiescent: the main thread checks every slot
        sync.arrive_and_wait();
      }
    });
  }
  uint64_t cycles = 0;
  for (int round = 0; round < kRounds; ++round) {
    cycles += run_round(arena, sync, mutate, round);
    size_t wrong = 0;
    for (size_t i = 0; i < a.size(); ++i) wrong += matches(i, oracle[i]) ? 0 : 1;
    EXPECT_EQ(wrong, 0u) << "round " << round;
    arena.verify();
    if (round % 2 == 1) {
      // Grown while the workers wait, with a cycle under way: the copy loads pending pages. The
      // next round's collector work runs on the new array.
      arena.start_cycle();
      a.resize(a.size() + 1024);
      oracle.resize(a.size(), 0);
    }
    sync.arrive_and_wait();
  }
  for (auto& t : threads) t.join();
  for (int w = 0; w < kWorkers; ++w)
    EXPECT_EQ(mismatches[static_cast<size_t>(w)], 0u) << "worker " << w << " read a wrong object";
  Stats st = arena.stats();
  std::printf("  %llu cycles, %llu pages left pending, %llu software guards\n",
              static_cast<unsigned long long>(cycles),
              static_cast<unsigned long long>(st.pages_pending),
              static_cast<unsigned long long>(st.pending_guards));
  EXPECT_GT(st.pending_guards, 0u) << "no load met a pending page: the test proves nothing";
  EXPECT_GE(cycles, static_cast<uint64_t>(kRounds)) << "collection never overlapped the workers";
}

// get_or_put from every thread on the same keys: one winner per key, seen by all.
TEST(ThreadsTables, GetOrPutAgreesOnOneValuePerKeyAcrossThreads) {
  constexpr int kKeys = 256;
  uint64_t seed = base_seed() + 500;
  std::printf("seed %llu (rerun with WEAKGC_TEST_SEED=%llu)\n",
              static_cast<unsigned long long>(seed), static_cast<unsigned long long>(base_seed()));
  Arena arena(mt_options());
  ConcurrentWeakTable table(arena, TableKind::kWeakKey);
  test::RootArray keys(arena, kKeys);
  for (int i = 0; i < kKeys; ++i) keys[static_cast<size_t>(i)] = make_obj(arena, 1 + i, 0);
  std::vector<std::vector<void*>> got(kWorkers, std::vector<void*>(kKeys, nullptr));
  Rendezvous sync(kWorkers + 1);
  std::atomic<int> finished{0};
  std::vector<std::thread> threads;
  for (int w = 0; w < kWorkers; ++w) {
    threads.emplace_back([&, w] {
      ThreadScope scope(arena);
      std::mt19937_64 rng(seed + static_cast<uint64_t>(w));
      std::vector<int> order(kKeys);
      for (int i = 0; i < kKeys; ++i) order[static_cast<size_t>(i)] = i;
      std::shuffle(order.begin(), order.end(), rng);
      sync.arrive_and_wait();
      for (int i : order) {
        void* k = keys[static_cast<size_t>(i)];
        void* v = table.get_or_put(k, make_obj(arena, 1000 + i, static_cast<uint64_t>(w)));
        got[static_cast<size_t>(w)][static_cast<size_t>(i)] = v;
        EXPECT_EQ(static_cast<Obj*>(v)->id, static_cast<uint64_t>(1000 + i));
      }
      finished.fetch_add(1, std::memory_order_release);
    });
  }
  sync.arrive_and_wait();
  while (finished.load(std::memory_order_acquire) < kWorkers) {
    if (arena.phase() == Phase::kIdle) arena.start_cycle();
    arena.step(100'000);
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  for (auto& t : threads) t.join();
  arena.collect();
  for (int i = 0; i < kKeys; ++i) {
    void* v = table.get(keys[static_cast<size_t>(i)]);
    for (int w = 0; w < kWorkers; ++w)
      EXPECT_EQ(got[static_cast<size_t>(w)][static_cast<size_t>(i)], v) << "key " << i;
  }
  EXPECT_EQ(table.size(), static_cast<size_t>(kKeys));
}

// ------------------------------------------------------------------------------ interning

// Names every worker interns; the shared registry records, per name, the symbol some worker
// holds and how many hold it. Two symbols with the same bytes held at the same time must be one.
struct Registry {
  Mutex mu;
  std::vector<Symbol*> sym;
  std::vector<int> holders;
  explicit Registry(size_t n) : sym(n, nullptr), holders(n, 0) {}
};

std::string name_of(int i) {
  std::string s = "name-" + std::to_string(i);
  if (i % 16 == 0) s += std::string(200, static_cast<char>('a' + i % 26));  // a longer one
  return s;
}

TEST(ThreadsTables, ConcurrentInterningGivesOneSymbolPerLiveNameAndFreshOnesAfterDeath) {
  constexpr int kNames = 256;
  constexpr int kBurst = 64;  // new names interned by every worker at the same moment
  uint64_t seed = base_seed() + 600;
  std::printf("seed %llu (rerun with WEAKGC_TEST_SEED=%llu)\n",
              static_cast<unsigned long long>(seed), static_cast<unsigned long long>(base_seed()));
  Arena arena(mt_options());
  Ballast ballast(arena);
  ConcurrentInternSet set(arena);
  Registry reg(kNames);
  std::vector<std::string> names;
  for (int i = 0; i < kNames; ++i) names.push_back(name_of(i));
  std::atomic<bool> mutate{false};
  Rendezvous sync(kWorkers + 1);
  // burst[w][i]: the symbol worker w got for burst name i of the current round (held in roots).
  std::vector<std::vector<Symbol*>> burst(kWorkers, std::vector<Symbol*>(kBurst, nullptr));
  uint64_t gone_total = 0, checked_total = 0;

  std::vector<std::thread> threads;
  for (int w = 0; w < kWorkers; ++w) {
    threads.emplace_back([&, w] {
      ThreadScope scope(arena);
      std::mt19937_64 rng(seed + static_cast<uint64_t>(w));
      std::vector<std::unique_ptr<Root<Symbol>>> held(kNames);
      test::RootArray burst_roots(arena, kBurst);
      for (int round = 0; round < kRounds; ++round) {
        sync.arrive_and_wait();  // round starts: every worker interns the same new names
        for (int i = 0; i < kBurst; ++i) {
          std::string n = "burst-" + std::to_string(round) + "-" + std::to_string(i);
          Symbol* s = set.intern(n);
          burst_roots[static_cast<size_t>(i)] = s;
          burst[static_cast<size_t>(w)][static_cast<size_t>(i)] = s;
          EXPECT_EQ(s->view(), n);
        }
        while (mutate.load(std::memory_order_acquire)) {
          int i = static_cast<int>(rng() % kNames);
          auto& h = held[static_cast<size_t>(i)];
          if (h == nullptr) {
            Symbol* s = set.intern(names[static_cast<size_t>(i)]);
            h = std::make_unique<Root<Symbol>>(arena, s);
            EXPECT_EQ(s->view(), names[static_cast<size_t>(i)]);
            std::lock_guard<Mutex> g(reg.mu);
            if (reg.holders[static_cast<size_t>(i)] > 0)
              EXPECT_EQ(s, reg.sym[static_cast<size_t>(i)]) << "two live symbols for " << i;
            else
              reg.sym[static_cast<size_t>(i)] = s;
            ++reg.holders[static_cast<size_t>(i)];
          } else if (rng() % 3 == 0) {
            EXPECT_EQ(set.find(names[static_cast<size_t>(i)]), h->get()) << "name " << i;
            EXPECT_EQ(set.intern(names[static_cast<size_t>(i)]), h->get()) << "name " << i;
          } else {
            {
              std::lock_guard<Mutex> g(reg.mu);
              --reg.holders[static_cast<size_t>(i)];
            }
            h.reset();
          }
        }
        sync.arrive_and_wait();  // quiescent: the main thread compares the bursts
        sync.arrive_and_wait();  // everyone lets go of everything
        for (int i = 0; i < kNames; ++i) {
          if (held[static_cast<size_t>(i)] == nullptr) continue;
          std::lock_guard<Mutex> g(reg.mu);
          --reg.holders[static_cast<size_t>(i)];
          held[static_cast<size_t>(i)].reset();
        }
        for (int i = 0; i < kBurst; ++i) burst_roots[static_cast<size_t>(i)] = nullptr;
        sync.arrive_and_wait();  // the main thread collects and checks deaths
        sync.arrive_and_wait();
      }
    });
  }
  for (int round = 0; round < kRounds; ++round) {
    run_round(arena, sync, mutate, round);
    for (int i = 0; i < kBurst; ++i)
      for (int w = 1; w < kWorkers; ++w)
        EXPECT_EQ(burst[static_cast<size_t>(w)][static_cast<size_t>(i)],
                  burst[0][static_cast<size_t>(i)])
            << "burst name " << i << " round " << round;
    sync.arrive_and_wait();
    sync.arrive_and_wait();  // nobody holds a symbol now
    arena.collect();
    arena.verify();
    // A name whose symbol died is interned afresh: one new symbol, then the same one again.
    for (int i = 0; i < kNames; ++i) {
      const std::string& n = names[static_cast<size_t>(i)];
      Symbol* old = set.find(n);
      gone_total += old == nullptr;
      ++checked_total;
      uint64_t before = set.symbols_created();
      Root<Symbol> s(arena, set.intern(n));
      EXPECT_EQ(set.symbols_created(), before + (old == nullptr ? 1 : 0)) << n;
      if (old != nullptr) {
        EXPECT_EQ(s.get(), old) << n;
      }
      EXPECT_EQ(set.intern(n), s.get()) << n;
      EXPECT_EQ(s->view(), n);
    }
    sync.arrive_and_wait();
  }
  for (auto& t : threads) t.join();
  std::printf("  %llu of %llu names died between rounds; %llu symbols created\n",
              static_cast<unsigned long long>(gone_total),
              static_cast<unsigned long long>(checked_total),
              static_cast<unsigned long long>(set.symbols_created()));
  EXPECT_GT(faults(arena.stats()), 0u) << "the workers never met the barrier";
  EXPECT_GE(gone_total * 2, checked_total) << "dead symbols are not being cleared";
  EXPECT_GT(set.symbols_created(), static_cast<uint64_t>(kNames + kRounds * kBurst))
      << "no name was ever interned afresh after its symbol died";
}

}  // namespace
}  // namespace weakgc
