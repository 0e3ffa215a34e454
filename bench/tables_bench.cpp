// Weak-table benchmarks (issue 6, DESIGN.md §7 and §9): weakgc's weak-key table against
// std::unordered_map<void*, void*> (strong, no collector) and against a weak-key table built on
// the Boehm collector's disappearing links, side by side in one run; then ephemeron clearing of
// entries whose value refers to its key. Not a test: it never asserts.
//
// Part 1: `entries` (default 1,000,000) keys and as many values, 16-byte objects, all live
// (held in two heap arrays of 1,000,000 references each: exact-rank arrays of the arena behind
// one Root each in weakgc, GC_MALLOC_UNCOLLECTABLE arrays in Boehm; both collectors mark them
// like any other object). Contestants:
//   umap    std::unordered_map<void*, void*>, reserve(entries) first
//   weakgc  WeakKeyTable<Key, Val>(arena, entries): pre-sized, no growth; the arena is
//           incremental (ArenaOptions::incremental = 1, pause target 1 ms) with a trigger of
//           1 GiB so that no cycle starts by itself while the table is built and measured
//   boehm   open addressing over three arrays: keys GC_MALLOC_ATOMIC (not scanned: the table does
//           not keep keys alive), each full key slot a disappearing link
//           (GC_general_register_disappearing_link) to its key; values GC_MALLOC (scanned:
//           strong); one byte of state per slot (malloc) so that a cleared link reads as a
//           tombstone. Pre-sized to the same capacity as weakgc's table (2^21 slots), hashed with
//           the same function (weakgc::raw::identity_hash). Insert and lookup probe under
//           GC_call_with_alloc_lock, as gc.h requires for reading a disappearing link ("safe
//           lookup"); a lookup without the lock is reported too.
// Measured per contestant: insert (ns/op, every key once, in allocation order), lookup of
// present keys (ns/op, every key once, one random order shared by all), a full collection with
// the table populated (arena.collect() / GC_gcollect(), median of 3).
//
// Pauses with the table populated:
//   weakgc step   start_cycle(); until the cycle ends: 10,000 timed lookups, then
//                 arena.step(1 ms). The collector's histograms (increment, flip, fault pauses)
//                 and the mutator's view (each lookup timed: fault handling and signal delivery
//                 included) are reported.
//   weakgc alloc  another arena, the table grown from empty (insert timed: growth included);
//                 start_cycle(); until the cycle ends: one 64-byte garbage object and one lookup
//                 per operation, each operation timed (allocation-paced increments only).
//   boehm inc     a child process (GC_enable_incremental installs Boehm's own SIGSEGV or
//                 soft-dirty machinery, which cannot share a process with weakgc's barrier):
//                 the same 1,000,000-entry link table, then GC_MALLOC(64) + safe lookup per
//                 operation, each timed, until 3 collections have completed.
//   boehm stw     the same child without GC_enable_incremental.
//
// Part 2 (ephemerons): entries/10 keys, each with a value object whose only field refers to its
// key; drop every key root, collect, count the entries cleared. weakgc EphemeronTable and (as a
// control) WeakKeyTable; Boehm's link table with the same values, and a control whose values do
// not refer to their keys.
//
// Usage: tables_bench [entries [reps]]  (defaults 1000000 3): prints each repetition, the
// medians and RESULT lines. `tables_bench boehm-pause inc|stw entries` is the child process.
// `tables_bench grow [entries]` (default 2,000,000): the longest put while a table grows, and
// the first put after half its keys died, with moves spread (default) vs at once, alternated;
// then lookups of a table a third of the way through its last move, before and after reserve(0).
// `tables_bench profile [lookup]` (for perf): weakgc insert + lookup rounds on 1,000,000 entries
// with no cycle in progress (`lookup`: lookups only after the first round); then the floor (the
// same loop with no table, and with one load from a table-sized array per key) and plain linear
// probing over two arrays in malloc memory and in arena leaf memory, same keys and order.
// `tables_bench flip [entries]`: the flip (start_cycle) with a pre-sized weak-key table whose
// arrays are pending (the default) and, side by side in the same process, protected at the flip
// (ArenaOptions::pending_min_pages = SIZE_MAX), and pending with the program's own keys and
// values held in GuardedArrays instead of Root-held arrays; 7 flips each, alternating.
// `tables_bench roots [objects]` (default 1,000,000): a runtime's root set of that many references
// held three ways, each in its own arena, side by side: a registered root range (malloc memory,
// scanned whole at the flip), an exact-rank array behind one Root (protected at the flip) and a
// GuardedArray (left pending); 7 flips each, alternating (median, max), the marking that follows,
// and a read of every slot in random order (each slot's object read too), idle and right after
// a flip (before any increment).
#define GC_THREADS  // declares GC_set_markers_count / GC_get_parallel
#include <gc.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "weakgc/gc.hpp"
#include "weakgc/guarded_array.hpp"
#include "weakgc/tables.hpp"

namespace {

uint64_t now_ns() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

uint64_t median(std::vector<uint64_t> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}
double mediand(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Latencies of individual operations.
struct Lat {
  std::vector<uint32_t> ns;
  uint64_t max = 0;
  void add(uint64_t d) {
    ns.push_back(static_cast<uint32_t>(std::min<uint64_t>(d, UINT32_MAX)));
    max = std::max(max, d);
  }
  uint64_t quantile(double q) {
    if (ns.empty()) return 0;
    size_t k = std::min(ns.size() - 1, static_cast<size_t>(q * static_cast<double>(ns.size())));
    std::nth_element(ns.begin(), ns.begin() + static_cast<ptrdiff_t>(k), ns.end());
    return ns[k];
  }
  uint64_t sum() const {
    uint64_t s = 0;
    for (uint32_t x : ns) s += x;
    return s;
  }
};

std::vector<uint32_t> permutation(size_t n, uint64_t seed) {
  std::vector<uint32_t> p(n);
  for (size_t i = 0; i < n; ++i) p[i] = static_cast<uint32_t>(i);
  std::mt19937_64 rng(seed);
  std::shuffle(p.begin(), p.end(), rng);
  return p;
}

// ------------------------------------------------------------------------------------ weakgc

struct Key : weakgc::GcObject {
  uint64_t id = 0;
};
struct Val : weakgc::GcObject {
  uint64_t payload = 0;
};
struct Junk : weakgc::GcObject {
  uint64_t w[7] = {};
};
struct EVal : weakgc::GcObject {
  weakgc::Ref<Key> key;
  explicit EVal(Key* k) : key(k) {}
  void trace(weakgc::Visitor& v) const override { v.visit(key); }
};
static_assert(sizeof(Key) == 16 && sizeof(Val) == 16 && sizeof(Junk) == 64);

weakgc::ArenaOptions arena_options() {
  weakgc::ArenaOptions o;
  o.incremental = 1;
  o.trigger_bytes = size_t{1} << 30;
  return o;
}

// Keys and values of one weakgc run, in registered exact root ranges.
// The live keys and values, held the way a program holds a million objects: in two heap arrays
// (exact-rank arrays of the arena, each behind one Root), marked incrementally like any other
// object. (Registered root ranges of that size are scanned whole at the flip.)
struct WHeap {
  std::unique_ptr<weakgc::Arena> arena;
  std::unique_ptr<weakgc::Root<weakgc::WeakArray>> karr, varr;
  void** keys = nullptr;
  void** vals = nullptr;
  explicit WHeap(size_t n, const weakgc::ArenaOptions& o = arena_options()) {
    arena = std::make_unique<weakgc::Arena>(o);
    weakgc::WeakArray* ka = nullptr;
    weakgc::WeakArray* va = nullptr;
    if (weakgc::alloc_weak_array(*arena, n, weakgc::Rank::kExact, nullptr, &ka) !=
        weakgc::Status::kOk)
      std::abort();
    karr = std::make_unique<weakgc::Root<weakgc::WeakArray>>(*arena, ka);
    if (weakgc::alloc_weak_array(*arena, n, weakgc::Rank::kExact, nullptr, &va) !=
        weakgc::Status::kOk)
      std::abort();
    varr = std::make_unique<weakgc::Root<weakgc::WeakArray>>(*arena, va);
    keys = reinterpret_cast<void**>(ka->slot);
    vals = reinterpret_cast<void**>(va->slot);
    for (size_t i = 0; i < n; ++i) {
      Key* k = weakgc::make<Key>(*arena);
      k->id = i;
      keys[i] = k;
      Val* v = weakgc::make<Val>(*arena);
      v->payload = i;
      vals[i] = v;
    }
  }
  ~WHeap() {
    karr.reset();
    varr.reset();
  }
};

struct PauseReport {
  // The collector's histograms for the measured cycle.
  uint64_t inc_count = 0, inc_max = 0, inc_p99 = 0;
  uint64_t flip_max = 0;
  uint64_t fault_count = 0, fault_max = 0, fault_p99 = 0;
  uint64_t emulated = 0, scanned = 0, budget = 0;
  // The mutator's view.
  uint64_t ops = 0, op_max = 0, op_p99 = 0, op_p999 = 0;
  double op_mean = 0;
  uint64_t step_max = 0;  // wall time of the longest arena.step() call (step mode)
  uint64_t start_ns = 0;  // wall time of the start_cycle() call (the flip)
  double cycle_ms = 0;
  uint64_t gcs = 0;      // Boehm: collections completed
  double insert_ns = 0;  // Boehm child: insert into a fresh process's table
};

void fill_from_stats(const weakgc::Stats& s, PauseReport* r) {
  r->inc_count = s.increment_pauses.count;
  r->inc_max = s.increment_pauses.max_ns;
  r->inc_p99 = s.increment_pauses.quantile_ns(0.99);
  r->flip_max = s.flip_pauses.max_ns;
  r->fault_count = s.fault_pauses.count;
  r->fault_max = s.fault_pauses.max_ns;
  r->fault_p99 = s.fault_pauses.quantile_ns(0.99);
  r->emulated = s.faults_emulated;
  r->scanned = s.faults_scanned + s.faults_declined + s.faults_budget + s.faults_weak_phase;
}

void fill_from_lat(Lat& l, PauseReport* r) {
  r->ops = l.ns.size();
  r->op_max = l.max;
  r->op_mean = l.ns.empty() ? 0 : static_cast<double>(l.sum()) / static_cast<double>(l.ns.size());
  r->op_p99 = l.quantile(0.99);
  r->op_p999 = l.quantile(0.999);
}

struct WeakgcResult {
  double insert_ns = 0, lookup_ns = 0, collect_ms = 0;
  double build_ms = 0;
  PauseReport step;
};

// Pre-sized table: insert, lookup, a cycle driven by step(1 ms) with lookups, full collections.
WeakgcResult run_weakgc(size_t n, const std::vector<uint32_t>& perm) {
  WeakgcResult r;
  uint64_t t0 = now_ns();
  WHeap h(n);
  weakgc::WeakKeyTable<Key, Val> table(*h.arena, n);
  r.build_ms = static_cast<double>(now_ns() - t0) / 1e6;
  h.arena->collect();  // nothing in progress while insert and lookup are timed

  t0 = now_ns();
  for (size_t i = 0; i < n; ++i)
    table.put(static_cast<Key*>(h.keys[i]), static_cast<Val*>(h.vals[i]));
  r.insert_ns = static_cast<double>(now_ns() - t0) / static_cast<double>(n);

  uint64_t sum = 0;
  t0 = now_ns();
  for (size_t i = 0; i < n; ++i) {
    Val* v = table.get(static_cast<Key*>(h.keys[perm[i]]));
    sum += v->payload;
  }
  r.lookup_ns = static_cast<double>(now_ns() - t0) / static_cast<double>(n);
  if (sum != static_cast<uint64_t>(n) * (n - 1) / 2) std::printf("  weakgc: lookup sum mismatch\n");

  // One incremental cycle: lookups between 1 ms steps. The arena has run no incremental work
  // before (its only cycle was collect()), so the increment and fault histograms are this
  // cycle's; the flip histogram also holds collect()'s flip.
  weakgc::Stats s0 = h.arena->stats();
  Lat lat;
  lat.ns.reserve(8 * n);
  uint64_t step_max = 0;
  size_t j = 0;
  t0 = now_ns();
  h.arena->start_cycle();
  r.step.start_ns = now_ns() - t0;
  while (h.arena->phase() != weakgc::Phase::kIdle) {
    for (int b = 0; b < 10000; ++b) {
      Key* k = static_cast<Key*>(h.keys[perm[j]]);
      j = j + 1 == n ? 0 : j + 1;
      uint64_t a = now_ns();
      Val* v = table.get(k);
      lat.add(now_ns() - a);
      sum += v->payload;
    }
    uint64_t a = now_ns();
    h.arena->step(1'000'000);
    step_max = std::max(step_max, now_ns() - a);
  }
  r.step.cycle_ms = static_cast<double>(now_ns() - t0) / 1e6;
  weakgc::Stats s1 = h.arena->stats();
  fill_from_stats(s1, &r.step);
  r.step.flip_max = s1.flip_pauses.max_ns;  // collect()'s flip included: an upper bound
  r.step.inc_count = s1.increment_pauses.count - s0.increment_pauses.count;
  r.step.fault_count = s1.fault_pauses.count - s0.fault_pauses.count;
  r.step.emulated = s1.faults_emulated - s0.faults_emulated;
  fill_from_lat(lat, &r.step);
  r.step.step_max = step_max;

  std::vector<uint64_t> c;
  for (int i = 0; i < 3; ++i) {
    t0 = now_ns();
    h.arena->collect();
    c.push_back(now_ns() - t0);
  }
  r.collect_ms = static_cast<double>(median(c)) / 1e6;
  weakgc::keep_alive(&sum);
  if (table.size() != n) std::printf("  weakgc: size %zu after collections\n", table.size());
  return r;
}

struct WeakgcAllocResult {
  double grow_insert_ns = 0;
  PauseReport alloc;
};

// Table grown from empty; a cycle paced by allocation only, one lookup per allocation.
WeakgcAllocResult run_weakgc_alloc(size_t n, const std::vector<uint32_t>& perm) {
  WeakgcAllocResult r;
  WHeap h(n);
  weakgc::WeakKeyTable<Key, Val> table(*h.arena);
  h.arena->collect();
  uint64_t t0 = now_ns();
  for (size_t i = 0; i < n; ++i)
    table.put(static_cast<Key*>(h.keys[i]), static_cast<Val*>(h.vals[i]));
  r.grow_insert_ns = static_cast<double>(now_ns() - t0) / static_cast<double>(n);
  h.arena->collect();  // finishes anything the growth allocations started

  weakgc::Stats s0 = h.arena->stats();
  Lat lat;
  lat.ns.reserve(8 * n);
  uint64_t sum = 0;
  size_t j = 0;
  t0 = now_ns();
  h.arena->start_cycle();
  r.alloc.start_ns = now_ns() - t0;
  while (h.arena->phase() != weakgc::Phase::kIdle) {
    Key* k = static_cast<Key*>(h.keys[perm[j]]);
    j = j + 1 == n ? 0 : j + 1;
    weakgc::Phase before = h.arena->phase();
    uint64_t a = now_ns();
    Junk* g = weakgc::make<Junk>(*h.arena);
    Val* v = table.get(k);
    uint64_t d = now_ns() - a;
    lat.add(d);
    if (d > 5'000'000)
      std::printf("    (alloc mode: a %.1f ms operation, phase %d -> %d)\n", d / 1e6,
                  static_cast<int>(before), static_cast<int>(h.arena->phase()));
    g->w[0] = v->payload;
    sum += v->payload;
  }
  r.alloc.cycle_ms = static_cast<double>(now_ns() - t0) / 1e6;
  weakgc::Stats s1 = h.arena->stats();
  fill_from_stats(s1, &r.alloc);
  r.alloc.inc_count = s1.increment_pauses.count - s0.increment_pauses.count;
  r.alloc.fault_count = s1.fault_pauses.count - s0.fault_pauses.count;
  r.alloc.emulated = s1.faults_emulated - s0.faults_emulated;
  fill_from_lat(lat, &r.alloc);
  weakgc::keep_alive(&sum);
  return r;
}

// ------------------------------------------------------------------------- std::unordered_map

struct UmapResult {
  double insert_ns = 0, lookup_ns = 0;
};

// Keys and values: the weakgc objects' addresses (no collector runs meanwhile).
UmapResult run_umap(void* const* keys, void* const* vals, const std::vector<uint32_t>& perm) {
  UmapResult r;
  size_t n = perm.size();
  std::unordered_map<void*, void*> m;
  m.reserve(n);
  uint64_t t0 = now_ns();
  for (size_t i = 0; i < n; ++i) m.emplace(keys[i], vals[i]);
  r.insert_ns = static_cast<double>(now_ns() - t0) / static_cast<double>(n);
  uint64_t sum = 0;
  t0 = now_ns();
  for (size_t i = 0; i < n; ++i) {
    auto it = m.find(keys[perm[i]]);
    sum += static_cast<Val*>(it->second)->payload;
  }
  r.lookup_ns = static_cast<double>(now_ns() - t0) / static_cast<double>(n);
  if (sum != static_cast<uint64_t>(n) * (n - 1) / 2) std::printf("  umap: lookup sum mismatch\n");
  return r;
}

// ------------------------------------------------------------------------------------ Boehm

// A weak-key table on disappearing links (see the header comment).
struct BTable {
  void** keys = nullptr;     // GC_MALLOC_ATOMIC: each full slot a disappearing link
  void** vals = nullptr;     // GC_MALLOC: scanned, values strong
  uint8_t* state = nullptr;  // malloc: 0 empty, 1 used (a cleared link is a tombstone)
  size_t mask = 0;

  explicit BTable(size_t capacity) {
    mask = capacity - 1;
    keys = static_cast<void**>(GC_MALLOC_ATOMIC(capacity * sizeof(void*)));
    std::memset(keys, 0, capacity * sizeof(void*));
    vals = static_cast<void**>(GC_MALLOC(capacity * sizeof(void*)));
    state = static_cast<uint8_t*>(std::calloc(capacity, 1));
  }
  ~BTable() { std::free(state); }
  BTable(const BTable&) = delete;
  BTable& operator=(const BTable&) = delete;

  struct Op {
    BTable* t;
    void* key;
    void* value;
  };
  // Runs under the allocation lock: the link is read where the collector cannot clear it.
  static void* get_locked(void* p) {
    Op* op = static_cast<Op*>(p);
    BTable* t = op->t;
    size_t i = weakgc::raw::identity_hash(op->key) & t->mask;
    while (t->state[i] != 0) {
      if (t->keys[i] == op->key) return t->vals[i];
      i = (i + 1) & t->mask;
    }
    return nullptr;
  }
  static void* put_locked(void* p) {
    Op* op = static_cast<Op*>(p);
    BTable* t = op->t;
    size_t i = weakgc::raw::identity_hash(op->key) & t->mask;
    while (t->state[i] != 0) {
      if (t->keys[i] == op->key) {
        t->vals[i] = op->value;
        return nullptr;
      }
      i = (i + 1) & t->mask;
    }
    t->state[i] = 1;
    t->keys[i] = op->key;
    t->vals[i] = op->value;
    return &t->keys[i];
  }
  void* get(void* key) {
    Op op{this, key, nullptr};
    return GC_call_with_alloc_lock(&get_locked, &op);
  }
  void* get_unlocked(void* key) {
    Op op{this, key, nullptr};
    return get_locked(&op);
  }
  void put(void* key, void* value) {
    Op op{this, key, value};
    void* link = GC_call_with_alloc_lock(&put_locked, &op);
    if (link != nullptr) GC_general_register_disappearing_link(static_cast<void**>(link), key);
  }
  // Entries whose key the collector has cleared.
  size_t cleared() const {
    size_t c = 0;
    for (size_t i = 0; i <= mask; ++i) c += state[i] != 0 && keys[i] == nullptr;
    return c;
  }
};

size_t table_capacity(size_t n) {
  return weakgc::raw::capacity_for(n);
}

// Boehm keys and values of one run, in uncollectable (scanned, never freed) arrays.
struct BHeap {
  size_t n;
  void** keys;
  void** vals;
  explicit BHeap(size_t count) : n(count) {
    keys = static_cast<void**>(GC_MALLOC_UNCOLLECTABLE(n * sizeof(void*)));
    vals = static_cast<void**>(GC_MALLOC_UNCOLLECTABLE(n * sizeof(void*)));
    for (size_t i = 0; i < n; ++i) {
      auto* k = static_cast<uint64_t*>(GC_MALLOC(16));
      k[0] = i;
      keys[i] = k;
      auto* v = static_cast<uint64_t*>(GC_MALLOC(16));
      v[0] = i;
      vals[i] = v;
    }
  }
  ~BHeap() {
    GC_FREE(keys);
    GC_FREE(vals);
  }
  BHeap(const BHeap&) = delete;
  BHeap& operator=(const BHeap&) = delete;
};

struct BoehmResult {
  double insert_ns = 0, lookup_ns = 0, unlocked_lookup_ns = 0, collect_ms = 0;
};

BoehmResult run_boehm(size_t n, const std::vector<uint32_t>& perm) {
  BoehmResult r;
  {
    BHeap h(n);
    BTable t(table_capacity(n));
    GC_gcollect();
    uint64_t t0 = now_ns();
    for (size_t i = 0; i < n; ++i) t.put(h.keys[i], h.vals[i]);
    r.insert_ns = static_cast<double>(now_ns() - t0) / static_cast<double>(n);

    uint64_t sum = 0;
    t0 = now_ns();
    for (size_t i = 0; i < n; ++i) sum += *static_cast<uint64_t*>(t.get(h.keys[perm[i]]));
    r.lookup_ns = static_cast<double>(now_ns() - t0) / static_cast<double>(n);
    t0 = now_ns();
    for (size_t i = 0; i < n; ++i) sum += *static_cast<uint64_t*>(t.get_unlocked(h.keys[perm[i]]));
    r.unlocked_lookup_ns = static_cast<double>(now_ns() - t0) / static_cast<double>(n);
    if (sum != static_cast<uint64_t>(n) * (n - 1)) std::printf("  boehm: lookup sum mismatch\n");

    std::vector<uint64_t> c;
    for (int i = 0; i < 3; ++i) {
      t0 = now_ns();
      GC_gcollect();
      c.push_back(now_ns() - t0);
    }
    r.collect_ms = static_cast<double>(median(c)) / 1e6;
    if (t.cleared() != 0) std::printf("  boehm: %zu live links cleared\n", t.cleared());
  }
  GC_gcollect();  // the table, keys and values are garbage now: their links go with them
  return r;
}

// Child process: Boehm pauses with GC_MALLOC(64) + safe lookup per operation.
int boehm_pause_child(bool incremental, size_t n) {
  if (getenv("GC_MARKERS") == nullptr) GC_set_markers_count(1);
  GC_INIT();
  if (incremental) GC_enable_incremental();
  std::vector<uint32_t> perm = permutation(n, 0x7ab1e5);
  BHeap h(n);
  BTable t(table_capacity(n));
  GC_gcollect();
  uint64_t ti = now_ns();
  for (size_t i = 0; i < n; ++i) t.put(h.keys[i], h.vals[i]);
  double insert_ns = static_cast<double>(now_ns() - ti) / static_cast<double>(n);
  GC_gcollect();
  Lat lat;
  lat.ns.reserve(16 * n);
  uint64_t sum = 0;
  size_t j = 0;
  GC_word gc0 = GC_get_gc_no();
  uint64_t t0 = now_ns();
  size_t ops = 0;
  while (GC_get_gc_no() < gc0 + 3 && ops < 60'000'000) {
    void* key = h.keys[perm[j]];
    j = j + 1 == n ? 0 : j + 1;
    uint64_t a = now_ns();
    auto* g = static_cast<uint64_t*>(GC_MALLOC(64));
    auto* v = static_cast<uint64_t*>(t.get(key));
    lat.add(now_ns() - a);
    g[0] = *v;
    sum += *v;
    ++ops;
  }
  PauseReport r;
  r.cycle_ms = static_cast<double>(now_ns() - t0) / 1e6;
  r.gcs = GC_get_gc_no() - gc0;
  fill_from_lat(lat, &r);
  std::printf("CHILD_INSERT %.1f\n", insert_ns);
  std::printf("CHILD %d %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %.1f %.1f %" PRIu64
              " %lu %" PRIu64 "\n",
              GC_is_incremental_mode(), r.ops, r.op_max, r.op_p99, r.op_p999, r.op_mean, r.cycle_ms,
              r.gcs, GC_get_time_limit(), sum & 1);
  return 0;
}

bool run_boehm_child(const char* self, bool incremental, size_t n, PauseReport* r, int* inc_mode) {
  std::string cmd =
      std::string(self) + " boehm-pause " + (incremental ? "inc" : "stw") + " " + std::to_string(n);
  FILE* f = popen(cmd.c_str(), "r");
  if (f == nullptr) return false;
  char line[512];
  bool ok = false;
  while (std::fgets(line, sizeof line, f) != nullptr) {
    unsigned long tl = 0;
    uint64_t odd = 0;
    if (std::sscanf(line, "CHILD_INSERT %lf", &r->insert_ns) == 1) continue;
    if (std::sscanf(line,
                    "CHILD %d %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %lf %lf %" SCNu64
                    " %lu %" SCNu64,
                    inc_mode, &r->ops, &r->op_max, &r->op_p99, &r->op_p999, &r->op_mean,
                    &r->cycle_ms, &r->gcs, &tl, &odd) == 10)
      ok = true;
    else
      std::fputs(line, stdout);
  }
  pclose(f);
  return ok;
}

// ------------------------------------------------------------------------------- ephemerons

struct EphResult {
  double weakgc_eph = 0, weakgc_wk = 0, boehm = 0, boehm_ctl = 0;  // % cleared
};

// Builds the keys, values and table in a frame of its own, so that no key is left in a live
// stack slot of the caller (the thread's stack is an ambiguous root).
template <class Table>
[[gnu::noinline]] void eph_fill(weakgc::Arena& arena, Table& t, std::vector<void*>& keys) {
  for (size_t i = 0; i < keys.size(); ++i) {
    Key* k = weakgc::make<Key>(arena);
    keys[i] = k;
    t.put(k, weakgc::make<EVal>(arena, k));
  }
}

template <template <class, class> class TableT>
double weakgc_eph(size_t n) {
  weakgc::Arena arena(arena_options());
  std::vector<void*> keys(n, nullptr);
  weakgc::RootId id;
  if (arena.register_root(keys.data(), n, &id) != weakgc::Status::kOk) std::abort();
  TableT<Key, EVal> t(arena);
  eph_fill(arena, t, keys);
  arena.collect();
  size_t before = t.size();
  std::fill(keys.begin(), keys.end(), nullptr);
  arena.collect();
  size_t after = t.size();
  (void)arena.remove_root(id);
  return 100.0 * static_cast<double>(before - after) / static_cast<double>(n);
}

[[gnu::noinline]] void boehm_eph_fill(BTable& t, void** keys, size_t n, bool value_refers) {
  for (size_t i = 0; i < n; ++i) {
    auto** k = static_cast<void**>(GC_MALLOC(16));
    keys[i] = k;
    auto** v = static_cast<void**>(GC_MALLOC(16));
    v[0] = value_refers ? k : nullptr;
    t.put(k, v);
  }
}

double boehm_eph(size_t n, bool value_refers) {
  double pct = 0;
  {
    BTable t(table_capacity(n));
    auto** keys = static_cast<void**>(GC_MALLOC_UNCOLLECTABLE(n * sizeof(void*)));
    boehm_eph_fill(t, keys, n, value_refers);
    GC_gcollect();
    size_t before = t.cleared();
    GC_FREE(keys);
    GC_gcollect();
    GC_gcollect();
    pct = 100.0 * static_cast<double>(t.cleared() - before) / static_cast<double>(n);
  }
  GC_gcollect();
  return pct;
}

void print_pause(const char* name, const PauseReport& p) {
  std::printf("    %-12s cycle %.1f ms, %" PRIu64
              " ops, op mean %.0f ns, p99 %.1f us, p99.9 %.1f us, "
              "max %.3f ms",
              name, p.cycle_ms, p.ops, p.op_mean, p.op_p99 / 1e3, p.op_p999 / 1e3, p.op_max / 1e6);
  if (p.gcs != 0) std::printf(", %" PRIu64 " collections", p.gcs);
  if (p.insert_ns != 0) std::printf("; insert in a fresh process %.1f ns/op", p.insert_ns);
  std::printf("\n");
  if (p.inc_count != 0 || p.fault_count != 0)
    std::printf("    %-12s increments %" PRIu64
                " (max %.3f ms, p99 %.3f ms), start_cycle %.3f ms, "
                "faults %" PRIu64 " (%" PRIu64 " emulated; max %.3f ms, p99 %.1f us)%s\n",
                "", p.inc_count, p.inc_max / 1e6, p.inc_p99 / 1e6, p.start_ns / 1e6, p.fault_count,
                p.emulated, p.fault_max / 1e6, p.fault_p99 / 1e3,
                p.step_max
                    ? (", longest step() call " + std::to_string(p.step_max / 1000) + " us").c_str()
                    : "");
}

// For perf: weakgc insert and lookups only, no cycle in progress.
int profile_weakgc(size_t n, int rounds, bool lookups_only) {
  std::vector<uint32_t> perm = permutation(n, 0x7ab1e5);
  WHeap h(n);
  weakgc::WeakKeyTable<Key, Val> table(*h.arena, n);
  h.arena->collect();
  uint64_t sum = 0;
  for (int r = 0; r < rounds; ++r) {
    if (lookups_only && r > 0) {
      uint64_t t0 = now_ns();
      for (size_t i = 0; i < n; ++i) sum += table.get(static_cast<Key*>(h.keys[perm[i]]))->payload;
      std::printf("profile: lookup %.1f ns/op\n",
                  static_cast<double>(now_ns() - t0) / static_cast<double>(n));
      continue;
    }
    table.clear();
    uint64_t t0 = now_ns();
    for (size_t i = 0; i < n; ++i)
      table.put(static_cast<Key*>(h.keys[i]), static_cast<Val*>(h.vals[i]));
    uint64_t t1 = now_ns();
    for (size_t i = 0; i < n; ++i) sum += table.get(static_cast<Key*>(h.keys[perm[i]]))->payload;
    uint64_t t2 = now_ns();
    std::printf("profile: insert %.1f ns/op, lookup %.1f ns/op\n",
                static_cast<double>(t1 - t0) / static_cast<double>(n),
                static_cast<double>(t2 - t1) / static_cast<double>(n));
  }
  size_t cap = table_capacity(n);
  // The floor under any lookup measured this way: the loop's own accesses (the key, in random
  // order, and the payload of its value) with no table at all, then plus exactly one load from a
  // table-sized array at the key's hash (what a table with one array and no probing would cost).
  {
    auto* one = static_cast<uint64_t*>(std::calloc(cap, 8));
    for (int r = 0; r < 3; ++r) {
      uint64_t t0 = now_ns();
      for (size_t i = 0; i < n; ++i) {
        void* k = h.keys[perm[i]];
        sum += reinterpret_cast<uintptr_t>(k) + static_cast<Val*>(h.vals[perm[i]])->payload;
      }
      uint64_t t1 = now_ns();
      for (size_t i = 0; i < n; ++i) {
        void* k = h.keys[perm[i]];
        sum += one[weakgc::raw::identity_hash(k) & (cap - 1)] +
               static_cast<Val*>(h.vals[perm[i]])->payload;
      }
      uint64_t t2 = now_ns();
      std::printf(
          "profile: floor, no table %.1f ns/op; plus one load from a %zu-slot array %.1f ns/op\n",
          static_cast<double>(t1 - t0) / static_cast<double>(n), cap,
          static_cast<double>(t2 - t1) / static_cast<double>(n));
    }
    std::free(one);
  }
  // The same memory access pattern without the table code: linear probing over plain key and
  // value arrays, in malloc memory and in arena (leaf) memory.
  for (int where = 0; where < 2; ++where) {
    auto** pk = static_cast<void**>(where == 0 ? std::calloc(cap, 8)
                                               : weakgc::make_leaf_bytes(*h.arena, cap * 8));
    auto** pv = static_cast<void**>(where == 0 ? std::calloc(cap, 8)
                                               : weakgc::make_leaf_bytes(*h.arena, cap * 8));
    for (size_t i = 0; i < n; ++i) {
      size_t j = weakgc::raw::identity_hash(h.keys[i]) & (cap - 1);
      while (pk[j] != nullptr) j = (j + 1) & (cap - 1);
      pk[j] = h.keys[i];
      pv[j] = h.vals[i];
    }
    for (int r = 0; r < 3; ++r) {
      uint64_t t0 = now_ns();
      for (size_t i = 0; i < n; ++i) {
        void* k = h.keys[perm[i]];
        size_t j = weakgc::raw::identity_hash(k) & (cap - 1);
        while (pk[j] != k) j = (j + 1) & (cap - 1);
        sum += static_cast<Val*>(pv[j])->payload;
      }
      std::printf("profile: plain probing in %s memory: lookup %.1f ns/op\n",
                  where == 0 ? "malloc" : "arena",
                  static_cast<double>(now_ns() - t0) / static_cast<double>(n));
    }
    if (where == 0) {
      std::free(pk);
      std::free(pv);
    }
  }
  weakgc::keep_alive(&sum);
  return 0;
}

// Table growth and noticing as single operations (tables_bench grow): the longest put while a
// table grows from empty to n entries, and the first put after a cycle in which half the keys
// died, with moves of ArenaOptions::table_move_slots (default) vs all at once (SIZE_MAX),
// alternated in one process. Also the total insert time, which the spread moves may change.
int grow_bench(size_t n) {
  struct Res {
    std::vector<uint64_t> worst_put, total, first_after;
  } res[2];
  for (int rep = 0; rep < 3; ++rep) {
    for (int k = 0; k < 2; ++k) {
      weakgc::ArenaOptions o = arena_options();
      if (k == 1) o.table_move_slots = SIZE_MAX;
      WHeap h(n, o);
      h.arena->collect();
      weakgc::WeakKeyTable<Key, Val> t(*h.arena);
      uint64_t worst = 0;
      uint64_t t0 = now_ns();
      for (size_t i = 0; i < n; ++i) {
        uint64_t a = now_ns();
        t.put(static_cast<Key*>(h.keys[i]), static_cast<Val*>(h.vals[i]));
        worst = std::max(worst, now_ns() - a);
      }
      res[k].total.push_back(now_ns() - t0);
      res[k].worst_put.push_back(worst);
      // Half the keys die; the first update after the cycle notices them.
      for (size_t i = 0; i < n; i += 2) h.keys[i] = nullptr;
      h.arena->collect();
      uint64_t a = now_ns();
      t.put(static_cast<Key*>(h.keys[1]), static_cast<Val*>(h.vals[0]));
      res[k].first_after.push_back(now_ns() - a);
    }
  }
  const char* names[2] = {"moves of 4,096 slots", "moves at once"};
  for (int k = 0; k < 2; ++k)
    std::printf(
        "grow, %zu entries, %-20s longest put %.3f ms, insert %.1f ns/op; first put after "
        "%zu deaths %.3f ms (medians of 3)\n",
        n, names[k], static_cast<double>(median(res[k].worst_put)) / 1e6,
        static_cast<double>(median(res[k].total)) / static_cast<double>(n), n / 2,
        static_cast<double>(median(res[k].first_after)) / 1e6);
  std::printf(
      "RESULT grow longest put at once / spread %.1fx; first put after deaths %.1fx; "
      "insert spread / at once %.2fx\n",
      static_cast<double>(median(res[1].worst_put)) / static_cast<double>(median(res[0].worst_put)),
      static_cast<double>(median(res[1].first_after)) /
          static_cast<double>(median(res[0].first_after)),
      static_cast<double>(median(res[0].total)) / static_cast<double>(median(res[1].total)));

  // Lookups while a move is under way (a table that grew and is then only read): every key so
  // far once, in random order, with two generations, then after reserve(0) with one.
  std::vector<uint64_t> moving, settled;
  size_t m = 0;
  double moved_fraction = 0;
  for (int rep = 0; rep < 3; ++rep) {
    WHeap h(n, arena_options());
    h.arena->collect();
    // The last growth that n keys allow (the put after which a second generation appeared),
    // found on a first table; then a second one filled a third of the way through that move.
    const size_t step = 4096;  // ArenaOptions::table_move_slots' default
    size_t last_growth = 0;
    {
      weakgc::WeakKeyTable<Key, Val> probe(*h.arena);
      for (size_t i = 0, gens = 1; i < n; ++i) {
        probe.put(static_cast<Key*>(h.keys[i]), static_cast<Val*>(h.vals[i]));
        size_t g = probe.stats().generations;
        if (g > gens) last_growth = i + 1;
        gens = g;
      }
    }
    weakgc::WeakKeyTable<Key, Val> t(*h.arena);
    const size_t old_slots = weakgc::raw::capacity_for(last_growth - 1);
    m = std::min(n, last_growth + old_slots / 3 / step);
    for (size_t i = 0; i < m; ++i)
      t.put(static_cast<Key*>(h.keys[i]), static_cast<Val*>(h.vals[i]));
    if (t.stats().generations != 2) {
      std::printf("grow lookups: no move under way after %zu puts; not measured\n", m);
      return 0;
    }
    moved_fraction = static_cast<double>((m - last_growth) * step) / static_cast<double>(old_slots);
    std::vector<uint32_t> perm = permutation(m, 0x600d + static_cast<uint64_t>(rep));
    uint64_t sum = 0;
    for (int pass = 0; pass < 2; ++pass) {
      uint64_t t0 = now_ns();
      for (size_t i = 0; i < m; ++i) sum += t.get(static_cast<Key*>(h.keys[perm[i]]))->payload;
      (pass == 0 ? moving : settled).push_back((now_ns() - t0) / m);
      if (pass == 0) t.reserve(0);  // finishes the move at once
    }
    if (sum != static_cast<uint64_t>(m) * (m - 1)) std::printf("  grow lookups: sum mismatch\n");
  }
  std::printf(
      "grow, lookups of %zu entries, a move %.0f%% done: %.1f ns/op with two generations, "
      "%.1f ns/op after reserve(0) (medians of 3)\n",
      m, 100 * moved_fraction, static_cast<double>(median(moving)),
      static_cast<double>(median(settled)));
  std::printf("RESULT grow lookup two generations / one %.2fx\n",
              static_cast<double>(median(moving)) / static_cast<double>(median(settled)));
  return 0;
}

// The flip with the table's arrays pending vs protected (tables_bench flip).
int flip_bench(size_t n) {
  struct Run {
    const char* name;
    std::unique_ptr<WHeap> h;  // the program's keys and values in Root-held arrays, or
    std::unique_ptr<weakgc::Arena> own;
    std::unique_ptr<weakgc::GuardedArray<Key>> gkeys;  // in guarded arrays
    std::unique_ptr<weakgc::GuardedArray<Val>> gvals;
    std::unique_ptr<weakgc::WeakKeyTable<Key, Val>> t;
    std::vector<uint64_t> ns;
    uint64_t pages = 0, pending = 0;
    weakgc::Arena& arena() { return h != nullptr ? *h->arena : *own; }
    Key* key(size_t i) { return h != nullptr ? static_cast<Key*>(h->keys[i]) : gkeys->get(i); }
    Val* val(size_t i) { return h != nullptr ? static_cast<Val*>(h->vals[i]) : gvals->get(i); }
  };
  constexpr int kRuns = 3;
  Run runs[kRuns];
  const char* names[kRuns] = {"pending (default)", "protected at flip", "pending, guarded keys"};
  for (int k = 0; k < kRuns; ++k) {
    Run& run = runs[k];
    weakgc::ArenaOptions o = arena_options();
    o.pending_min_pages = k == 1 ? SIZE_MAX : 0;
    run.name = names[k];
    if (k < 2) {
      run.h = std::make_unique<WHeap>(n, o);
    } else {
      run.own = std::make_unique<weakgc::Arena>(o);
      run.gkeys = std::make_unique<weakgc::GuardedArray<Key>>(*run.own, n);
      run.gvals = std::make_unique<weakgc::GuardedArray<Val>>(*run.own, n);
      for (size_t i = 0; i < n; ++i) {
        Key* key = weakgc::make<Key>(*run.own);
        key->id = i;
        run.gkeys->set(i, key);
        Val* v = weakgc::make<Val>(*run.own);
        v->payload = i;
        run.gvals->set(i, v);
      }
    }
    run.t = std::make_unique<weakgc::WeakKeyTable<Key, Val>>(run.arena(), n);
    for (size_t i = 0; i < n; ++i) run.t->put(run.key(i), run.val(i));
  }
  for (int r = 0; r < 7; ++r) {
    for (Run& run : runs) {
      weakgc::Arena& a = run.arena();
      a.collect();
      weakgc::Stats s0 = a.stats();
      uint64_t t0 = now_ns();
      a.start_cycle();
      run.ns.push_back(now_ns() - t0);
      weakgc::Stats s1 = a.stats();
      run.pages = s1.pages_protected - s0.pages_protected;
      run.pending = s1.pages_pending - s0.pages_pending;
      // One lookup: with pending arrays its load is guarded in software.
      if (run.t->get(run.key(n / 2)) == nullptr) std::abort();
      a.collect();
    }
  }
  double median[kRuns];
  for (int k = 0; k < kRuns; ++k) {
    Run& run = runs[k];
    std::sort(run.ns.begin(), run.ns.end());
    median[k] = static_cast<double>(run.ns[run.ns.size() / 2]) / 1e6;
    std::printf(
        "flip, %zu-entry weak-key table, %-21s median %.3f ms, max %.3f ms; pages protected "
        "%" PRIu64 ", pending %" PRIu64 "\n",
        n, run.name, median[k], static_cast<double>(run.ns.back()) / 1e6, run.pages, run.pending);
  }
  std::printf(
      "RESULT flip protected/pending %.2fx, pending/pending-with-guarded-keys %.2fx (medians)\n",
      median[1] / median[0], median[0] / median[2]);
  return 0;
}

// A runtime's root set held three ways (tables_bench roots).
int roots_bench(size_t n) {
  enum How { kRange, kRooted, kGuarded };
  struct Run {
    const char* name;
    std::unique_ptr<weakgc::Arena> arena;
    void** range = nullptr;  // kRange: malloc'd, registered
    weakgc::RootId id;
    std::unique_ptr<weakgc::Root<weakgc::WeakArray>> rooted;  // kRooted
    void** rooted_slots = nullptr;
    std::unique_ptr<weakgc::GuardedArray<Val>> guarded;  // kGuarded
    std::vector<uint64_t> flip_ns, mark_ns, read_ns, marking_read_ns;
    uint64_t pages = 0, pending = 0;
    // Reads every slot in perm's order, and its object's payload.
    void read(const std::vector<uint32_t>& perm, uint64_t* sum) {
      uint64_t s = 0;
      const size_t n = perm.size();
      if (range != nullptr) {
        for (size_t i = 0; i < n; ++i) s += static_cast<Val*>(range[perm[i]])->payload;
      } else if (rooted_slots != nullptr) {
        for (size_t i = 0; i < n; ++i) s += static_cast<Val*>(rooted_slots[perm[i]])->payload;
      } else {
        for (size_t i = 0; i < n; ++i) s += guarded->get(perm[i])->payload;
      }
      *sum += s;
    }
    // Reads every slot in order, and its object's payload; a guarded array with get, or with
    // get_range a chunk at a time if `ranges`.
    void scan(bool ranges, uint64_t* sum) {
      uint64_t s = 0;
      const size_t n = guarded != nullptr ? guarded->size() : 0;
      if (range != nullptr || rooted_slots != nullptr) {
        void** slots = range != nullptr ? range : rooted_slots;
        for (size_t i = 0; i < count; ++i) s += static_cast<Val*>(slots[i])->payload;
      } else if (!ranges) {
        for (size_t i = 0; i < n; ++i) s += guarded->get(i)->payload;
      } else {
        Val* buf[512];
        for (size_t i = 0; i < n; i += 512) {
          size_t k = std::min<size_t>(512, n - i);
          guarded->get_range(i, k, buf);
          for (size_t j = 0; j < k; ++j) s += buf[j]->payload;
        }
      }
      *sum += s;
    }
    size_t count = 0;
    std::vector<uint64_t> scan_ns, scan_flip_ns, range_ns, range_flip_ns;
    void set(size_t i, Val* v) {
      if (range != nullptr)
        range[i] = v;
      else if (rooted_slots != nullptr)
        rooted_slots[i] = v;
      else
        guarded->set(i, v);
    }
  };
  Run runs[3];
  const char* names[3] = {"registered range", "Root-held array", "GuardedArray"};
  for (int k = 0; k < 3; ++k) {
    Run& r = runs[k];
    r.name = names[k];
    r.count = n;
    r.arena = std::make_unique<weakgc::Arena>(arena_options());
    if (k == kRange) {
      r.range = static_cast<void**>(std::calloc(n, sizeof(void*)));
      if (r.arena->register_root(r.range, n, &r.id) != weakgc::Status::kOk) std::abort();
    } else if (k == kRooted) {
      weakgc::WeakArray* a = nullptr;
      if (weakgc::alloc_weak_array(*r.arena, n, weakgc::Rank::kExact, nullptr, &a) !=
          weakgc::Status::kOk)
        std::abort();
      r.rooted = std::make_unique<weakgc::Root<weakgc::WeakArray>>(*r.arena, a);
      r.rooted_slots = reinterpret_cast<void**>(a->slot);
    } else {
      r.guarded = std::make_unique<weakgc::GuardedArray<Val>>(*r.arena, n);
    }
    for (size_t i = 0; i < n; ++i) {
      Val* v = weakgc::make<Val>(*r.arena);
      v->payload = i;
      r.set(i, v);
    }
  }
  std::vector<uint32_t> perm = permutation(n, 0x2007);
  uint64_t sum = 0;
  for (int rep = 0; rep < 7; ++rep) {
    for (Run& r : runs) {
      weakgc::Arena& a = *r.arena;
      a.collect();
      weakgc::Stats s0 = a.stats();
      uint64_t t0 = now_ns();
      a.start_cycle();
      uint64_t t1 = now_ns();
      while (a.step(1000000)) {
      }
      uint64_t t2 = now_ns();
      weakgc::Stats s1 = a.stats();
      r.flip_ns.push_back(t1 - t0);
      r.mark_ns.push_back(t2 - t1);
      r.pages = s1.pages_protected - s0.pages_protected;
      r.pending = s1.pages_pending - s0.pages_pending;
      uint64_t t3 = now_ns();
      r.read(perm, &sum);
      r.read_ns.push_back(now_ns() - t3);
      // The same reads while marking: a cycle started, no increment yet.
      a.start_cycle();
      uint64_t t4 = now_ns();
      r.read(perm, &sum);
      r.marking_read_ns.push_back(now_ns() - t4);
      while (a.step(1000000)) {
      }
      // Sequential scans, idle and right after a flip; a guarded array by get and by get_range.
      for (int ranges = 0; ranges < (r.guarded != nullptr ? 2 : 1); ++ranges) {
        uint64_t t5 = now_ns();
        r.scan(ranges != 0, &sum);
        (ranges != 0 ? r.range_ns : r.scan_ns).push_back(now_ns() - t5);
        a.start_cycle();
        uint64_t t6 = now_ns();
        r.scan(ranges != 0, &sum);
        (ranges != 0 ? r.range_flip_ns : r.scan_flip_ns).push_back(now_ns() - t6);
        while (a.step(1000000)) {
        }
      }
    }
  }
  for (Run& r : runs) {
    uint64_t max = *std::max_element(r.flip_ns.begin(), r.flip_ns.end());
    std::printf(
        "roots, %zu objects, %-16s flip median %.3f ms (max %.3f), rest of the cycle %.1f ms, "
        "random read idle %.1f ns/slot, while marking %.1f ns/slot; pages protected %" PRIu64
        ", pending %" PRIu64 "\n",
        n, r.name, static_cast<double>(median(r.flip_ns)) / 1e6, static_cast<double>(max) / 1e6,
        static_cast<double>(median(r.mark_ns)) / 1e6,
        static_cast<double>(median(r.read_ns)) / static_cast<double>(n),
        static_cast<double>(median(r.marking_read_ns)) / static_cast<double>(n), r.pages,
        r.pending);
  }
  auto per_slot = [&](const std::vector<uint64_t>& v) {
    return static_cast<double>(median(v)) / static_cast<double>(n);
  };
  for (Run& r : runs) {
    std::printf(
        "roots, %zu objects, %-16s sequential scan: idle %.2f ns/slot, right after a flip "
        "%.2f",
        n, r.name, per_slot(r.scan_ns), per_slot(r.scan_flip_ns));
    if (r.guarded != nullptr)
      std::printf("; by get_range (512 a call): idle %.2f, right after a flip %.2f",
                  per_slot(r.range_ns), per_slot(r.range_flip_ns));
    std::printf("\n");
  }
  auto ratio = [&](std::vector<uint64_t> Run::*f, int a, int b) {
    return static_cast<double>(median(runs[a].*f)) / static_cast<double>(median(runs[b].*f));
  };
  std::printf("RESULT roots flip range/guarded %.2fx, rooted/guarded %.2fx (medians)\n",
              ratio(&Run::flip_ns, kRange, kGuarded), ratio(&Run::flip_ns, kRooted, kGuarded));
  std::printf("RESULT roots idle read guarded/range %.2fx, guarded/rooted %.2fx (medians)\n",
              ratio(&Run::read_ns, kGuarded, kRange), ratio(&Run::read_ns, kGuarded, kRooted));
  auto vs_rooted = [&](const std::vector<uint64_t>& g, const std::vector<uint64_t>& rooted) {
    return static_cast<double>(median(g)) / static_cast<double>(median(rooted));
  };
  const Run& g = runs[kGuarded];
  const Run& ro = runs[kRooted];
  std::printf(
      "RESULT roots sequential scan, guarded / Root-held: get %.2fx, get_range %.2fx idle; "
      "right after a flip %.2fx, %.2fx (medians)\n",
      vs_rooted(g.scan_ns, ro.scan_ns), vs_rooted(g.range_ns, ro.scan_ns),
      vs_rooted(g.scan_flip_ns, ro.scan_flip_ns), vs_rooted(g.range_flip_ns, ro.scan_flip_ns));
  (void)runs[kRange].arena->remove_root(runs[kRange].id);
  std::free(runs[kRange].range);
  weakgc::keep_alive(&sum);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::strcmp(argv[1], "boehm-pause") == 0) {
    bool inc = argc > 2 && std::strcmp(argv[2], "inc") == 0;
    size_t n = argc > 3 ? static_cast<size_t>(atol(argv[3])) : 1000000;
    return boehm_pause_child(inc, n);
  }
  if (argc > 1 && std::strcmp(argv[1], "roots") == 0)
    return roots_bench(argc > 2 ? static_cast<size_t>(std::max(1000L, atol(argv[2]))) : 1000000);
  if (argc > 1 && std::strcmp(argv[1], "flip") == 0)
    return flip_bench(argc > 2 ? static_cast<size_t>(std::max(1000L, atol(argv[2]))) : 1000000);
  if (argc > 1 && std::strcmp(argv[1], "grow") == 0)
    return grow_bench(argc > 2 ? static_cast<size_t>(std::max(1000L, atol(argv[2]))) : 2000000);
  if (argc > 1 && std::strcmp(argv[1], "profile") == 0)
    return profile_weakgc(1000000, 10, argc > 2 && std::strcmp(argv[2], "lookup") == 0);
  size_t n = argc > 1 ? static_cast<size_t>(std::max(1000L, atol(argv[1]))) : 1000000;
  int reps = argc > 2 ? std::max(1, atoi(argv[2])) : 3;
  if (getenv("GC_MARKERS") == nullptr) GC_set_markers_count(1);
  GC_INIT();
  std::vector<uint32_t> perm = permutation(n, 0x7ab1e5);
  std::printf(
      "tables_bench: %zu entries, %d repetitions; table capacity %zu slots; boehm marker "
      "threads %d\n",
      n, reps, table_capacity(n), GC_get_parallel() + 1);

  std::vector<double> u_ins, u_look, w_ins, w_look, w_col, w_grow, b_ins, b_look, b_ulook, b_col;
  std::vector<double> e_w, e_wk, e_b, e_bc;
  std::vector<PauseReport> p_step, p_alloc, p_binc, p_bstw;
  int boehm_inc_mode = -1;
  for (int rep = 0; rep < reps; ++rep) {
    std::printf("  repetition %d\n", rep + 1);
    for (int k = 0; k < 3; ++k) {
      switch ((rep + k) % 3) {
        case 0: {
          // umap runs on the keys of a weakgc heap (addresses only; no collection meanwhile).
          WHeap h(n);
          UmapResult u = run_umap(h.keys, h.vals, perm);
          u_ins.push_back(u.insert_ns);
          u_look.push_back(u.lookup_ns);
          std::printf("    umap         insert %.1f ns/op, lookup %.1f ns/op\n", u.insert_ns,
                      u.lookup_ns);
          break;
        }
        case 1: {
          WeakgcResult w = run_weakgc(n, perm);
          w_ins.push_back(w.insert_ns);
          w_look.push_back(w.lookup_ns);
          w_col.push_back(w.collect_ms);
          p_step.push_back(w.step);
          std::printf(
              "    weakgc       insert %.1f ns/op, lookup %.1f ns/op, collect %.1f ms "
              "(build %.0f ms)\n",
              w.insert_ns, w.lookup_ns, w.collect_ms, w.build_ms);
          print_pause("weakgc step", w.step);
          WeakgcAllocResult a = run_weakgc_alloc(n, perm);
          w_grow.push_back(a.grow_insert_ns);
          p_alloc.push_back(a.alloc);
          std::printf("    weakgc       insert into a growing table %.1f ns/op\n",
                      a.grow_insert_ns);
          print_pause("weakgc alloc", a.alloc);
          break;
        }
        case 2: {
          BoehmResult b = run_boehm(n, perm);
          b_ins.push_back(b.insert_ns);
          b_look.push_back(b.lookup_ns);
          b_ulook.push_back(b.unlocked_lookup_ns);
          b_col.push_back(b.collect_ms);
          std::printf(
              "    boehm        insert %.1f ns/op, safe lookup %.1f ns/op (unlocked "
              "%.1f), collect %.1f ms\n",
              b.insert_ns, b.lookup_ns, b.unlocked_lookup_ns, b.collect_ms);
          PauseReport pi, ps;
          int mode = -1;
          if (run_boehm_child(argv[0], true, n, &pi, &mode)) {
            boehm_inc_mode = mode;
            p_binc.push_back(pi);
            print_pause(mode ? "boehm inc" : "boehm inc?", pi);
          }
          if (run_boehm_child(argv[0], false, n, &ps, &mode)) {
            p_bstw.push_back(ps);
            print_pause("boehm stw", ps);
          }
          break;
        }
      }
    }
    size_t ne = n / 10;
    e_w.push_back(weakgc_eph<weakgc::EphemeronTable>(ne));
    e_wk.push_back(weakgc_eph<weakgc::WeakKeyTable>(ne));
    e_b.push_back(boehm_eph(ne, true));
    e_bc.push_back(boehm_eph(ne, false));
    std::printf(
        "    ephemerons   %zu entries, value refers to key, cleared: weakgc ephemeron "
        "%.2f%%, weakgc weak-key %.2f%%, boehm links %.2f%% (control, value without "
        "the key: %.2f%%)\n",
        ne, e_w.back(), e_wk.back(), e_b.back(), e_bc.back());
    std::fflush(stdout);
  }

  auto med_max = [](std::vector<PauseReport>& v, uint64_t PauseReport::*f) {
    std::vector<uint64_t> x;
    for (auto& p : v) x.push_back(p.*f);
    return median(x);
  };
  double ui = mediand(u_ins), ul = mediand(u_look), wi = mediand(w_ins), wl = mediand(w_look);
  double wc = mediand(w_col), bi = mediand(b_ins), bl = mediand(b_look), bc = mediand(b_col);
  std::printf("medians of %d:\n", reps);
  std::vector<double> bf;
  for (auto& p : p_bstw) bf.push_back(p.insert_ns);
  double bfi = mediand(bf);
  std::printf(
      "  insert ns/op: umap %.1f, weakgc %.1f (growing %.1f), boehm %.1f (fresh process "
      "%.1f)\n",
      ui, wi, mediand(w_grow), bi, bfi);
  std::printf("  lookup ns/op: umap %.1f, weakgc %.1f, boehm safe %.1f (unlocked %.1f)\n", ul, wl,
              bl, mediand(b_ulook));
  std::printf("  full collection ms: weakgc %.1f, boehm %.1f\n", wc, bc);
  std::printf(
      "  weakgc step:  increment max %.3f ms p99 %.3f ms; flip max %.3f ms; fault max "
      "%.3f ms p99 %.1f us; lookup max %.3f ms p99.9 %.1f us\n",
      med_max(p_step, &PauseReport::inc_max) / 1e6, med_max(p_step, &PauseReport::inc_p99) / 1e6,
      med_max(p_step, &PauseReport::flip_max) / 1e6, med_max(p_step, &PauseReport::fault_max) / 1e6,
      med_max(p_step, &PauseReport::fault_p99) / 1e3, med_max(p_step, &PauseReport::op_max) / 1e6,
      med_max(p_step, &PauseReport::op_p999) / 1e3);
  std::printf(
      "  weakgc alloc: increment max %.3f ms p99 %.3f ms; flip max %.3f ms; fault max "
      "%.3f ms p99 %.1f us; op max %.3f ms p99.9 %.1f us\n",
      med_max(p_alloc, &PauseReport::inc_max) / 1e6, med_max(p_alloc, &PauseReport::inc_p99) / 1e6,
      med_max(p_alloc, &PauseReport::flip_max) / 1e6,
      med_max(p_alloc, &PauseReport::fault_max) / 1e6,
      med_max(p_alloc, &PauseReport::fault_p99) / 1e3, med_max(p_alloc, &PauseReport::op_max) / 1e6,
      med_max(p_alloc, &PauseReport::op_p999) / 1e3);
  if (!p_binc.empty())
    std::printf("  boehm inc (incremental mode %d): op max %.3f ms p99.9 %.1f us\n", boehm_inc_mode,
                med_max(p_binc, &PauseReport::op_max) / 1e6,
                med_max(p_binc, &PauseReport::op_p999) / 1e3);
  if (!p_bstw.empty())
    std::printf("  boehm stw: op max %.3f ms p99.9 %.1f us\n",
                med_max(p_bstw, &PauseReport::op_max) / 1e6,
                med_max(p_bstw, &PauseReport::op_p999) / 1e3);
  std::printf(
      "  ephemerons cleared %%: weakgc ephemeron %.2f, weakgc weak-key %.2f, boehm %.2f "
      "(control %.2f)\n",
      mediand(e_w), mediand(e_wk), mediand(e_b), mediand(e_bc));
  std::printf(
      "RESULT insert boehm-fresh/weakgc %.2fx boehm-warm/weakgc %.2fx (target >= 10)  lookup "
      "boehm-safe/weakgc %.2fx "
      "(target >= 3)  collect boehm/weakgc %.2fx (target >= 5)  lookup weakgc/umap %.2fx "
      "(target <= 2)  insert weakgc/umap %.2fx\n",
      bfi / wi, bi / wi, bl / wl, bc / wc, wl / ul, wi / ui);
  std::printf(
      "RESULT weakgc max increment step %.3f ms alloc %.3f ms (target <= 1)  max fault "
      "%.3f ms  max op seen by mutator step %.3f ms alloc %.3f ms  boehm inc op max %.3f "
      "ms\n",
      med_max(p_step, &PauseReport::inc_max) / 1e6, med_max(p_alloc, &PauseReport::inc_max) / 1e6,
      std::max(med_max(p_step, &PauseReport::fault_max),
               med_max(p_alloc, &PauseReport::fault_max)) /
          1e6,
      med_max(p_step, &PauseReport::op_max) / 1e6, med_max(p_alloc, &PauseReport::op_max) / 1e6,
      p_binc.empty() ? 0.0 : med_max(p_binc, &PauseReport::op_max) / 1e6);
  return 0;
}
