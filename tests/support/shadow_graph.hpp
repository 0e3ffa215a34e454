// A client object format and a shadow-graph oracle for collector tests (not a benchmark).
//
// What it is: a test client of the low-level API. Objects live in an AMS pool (scanned with the
// format below, small and large > 16 KiB) and an LO pool (leaves). Every object's word 0 holds a
// unique id. The *shadow graph* records, independently of the collector, every edge the mutator
// wrote and every root; from it the oracle computes which objects must survive a cycle and which
// must die, and checks the arena against that after every operation.
//
// Layout of a scanned test object (words):
//   0  id        unique, never 0 (a cell whose id is 0 was allocated but not initialised)
//   1  nslots    number of reference slots
//   2  stride    words from one slot to the next (large objects spread their slots over pages)
//   3 + i*stride slot i
// A leaf (LO) object holds only its id in word 0.
//
// The mutator is honest, as a real program's must be while a cycle runs (DESIGN.md §4): it never
// uses an address it did not load. To touch object X it follows a shadow path from a root with
// *plain C++ loads through mutator addresses* (so the read barrier fires on protected pages) and
// checks every loaded word against the shadow. Stores are plain stores too.
//
// The oracle's claims (black mutator behind a read barrier; objects allocated during a cycle are
// black; no finalization in this client):
//   - at every moment, an object that is not doomed is allocated and holds its id and its slots;
//   - at a flip, the objects unreachable from the roots in the shadow become doomed: the mutator
//     can never load them again, so no path can mark them; objects reachable at the flip survive
//     that cycle (the mutator can change an object only after the barrier scanned it);
//   - at the end of that cycle (Stats::cycles counts it) every doomed object is freed.
// So after each cycle the survivors equal exactly (reachable at its flip) ∪ (allocated since).
// Conservative (ambiguous) roots can pin objects and blur that equality. Use
// ArenaOptions::register_thread = false for an exact oracle, or keep addresses out of the
// caller's frames: GraphMutator keeps them only in malloc'd memory and collect() clears the stack
// below its caller before collecting.
//
// Who may use it: tests, on the arena's thread. Failures are reported as a message (error()) and
// stop the mutator; the caller prints it with the seed.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "core/arena_impl.hpp"
#include "weakgc/arena.hpp"
#include "weakgc/format.hpp"
#include "weakgc/handle.hpp"

namespace wgtest {

// SplitMix64: small, seedable, the same sequence on every platform.
class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(seed) {}
  uint64_t next() {
    uint64_t z = (s_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n) (n > 0).
  uint64_t below(uint64_t n) { return next() % n; }
  // True with probability percent/100.
  bool chance(int percent) { return static_cast<int>(below(100)) < percent; }

 private:
  uint64_t s_;
};

// Reads a decimal count from the environment, or `dflt`.
inline uint64_t env_u64(const char* name, uint64_t dflt) {
  const char* e = getenv(name);
  if (e == nullptr || *e == '\0') return dflt;
  return strtoull(e, nullptr, 0);
}

// Overwrites `bytes` of the stack below the caller's frame with zeros, so that dead frames of
// earlier calls leave no stale object addresses for conservative stack scanning to find. Nothing
// below the stack pointer is live; the store is one `rep stosb`, invisible to sanitizers (whose
// redzones in dead frames a C++ memset would skip).
__attribute__((noinline)) inline void clobber_stack(size_t bytes = 32 * 1024) {
  uintptr_t sp;
  asm volatile("mov %%rsp, %0" : "=r"(sp));
  void* dst = reinterpret_cast<void*>(sp - bytes);
  asm volatile("rep stosb" : "+D"(dst), "+c"(bytes) : "a"(0) : "memory");
}

// Calls f(ctx) with `value` held only in r13 (callee-saved), every other callee-saved register
// zero; returns r13 afterwards (tests/support/clean_registers.S).
extern "C" uintptr_t wgtest_call_holding_in_r13(uintptr_t value, void (*f)(void*), void* ctx);

// Calls f(ctx) with every callee-saved register zeroed: a stale object address in a caller's
// register is a legitimate conservative root, so tests that check "nothing unreachable
// survives" collect through this (r13 holds 0, which is no reference).
inline void wgtest_call_with_clean_registers(void (*f)(void*), void* ctx) {
  (void)wgtest_call_holding_in_r13(0, f, ctx);
}

// Calls f(ctx) with `value` only in r13 (a noinline wrapper, so `value` is in no caller frame).
__attribute__((noinline)) inline uintptr_t call_holding(uintptr_t value, void (*f)(void*),
                                                        void* ctx) {
  return wgtest_call_holding_in_r13(value, f, ctx);
}

// Runs a collection of `arena` with clean registers and a clean stack below the caller.
__attribute__((noinline)) inline void collect_clean_registers(weakgc::Arena& arena) {
  wgtest_call_with_clean_registers([](void* a) { static_cast<weakgc::Arena*>(a)->collect(); },
                                   &arena);
}

// ------------------------------------------------------------------------------ the format

inline constexpr size_t kIdWord = 0;
inline constexpr size_t kNslotsWord = 1;
inline constexpr size_t kStrideWord = 2;
inline constexpr size_t kFirstSlotWord = 3;

// Scans a test object (collector view). Trusts nslots/stride only within the cell: a client bug
// must not make the scanner read past its object.
inline void scan_graph_object(weakgc::ScanState& ss, void* obj, size_t size, void*) {
  auto* w = static_cast<uintptr_t*>(obj);
  size_t words = size / sizeof(uintptr_t);
  uint64_t n = w[kNslotsWord];
  uint64_t stride = w[kStrideWord] == 0 ? 1 : w[kStrideWord];
  for (uint64_t i = 0; i < n; ++i) {
    uint64_t k = kFirstSlotWord + i * stride;
    if (k >= words) break;
    ss.fix(reinterpret_cast<void**>(&w[k]));
  }
}

inline const weakgc::Format kGraphFormat{&scan_graph_object, nullptr};

// Mutator accesses: plain loads and stores through the mutator address (volatile only so the
// compiler keeps each one; they compile to ordinary MOVs that fault on a protected page).
__attribute__((noinline)) inline uintptr_t load_word(uintptr_t obj, size_t word) {
  return reinterpret_cast<volatile uintptr_t*>(obj)[word];
}
__attribute__((noinline)) inline void store_word(uintptr_t obj, size_t word, uintptr_t v) {
  reinterpret_cast<volatile uintptr_t*>(obj)[word] = v;
}

// A word of the arena read through the collector view: never faults, changes nothing.
inline uintptr_t peek_word(weakgc::Arena& arena, uintptr_t obj, size_t word) {
  return *arena.impl()->cview<uintptr_t>(obj + word * sizeof(uintptr_t));
}

// ------------------------------------------------------------------------------ the oracle

enum class Kind : uint8_t { kSmall, kLarge, kLeaf };

// The value a slot (or root) should hold: a shadow node, or a raw word that is not a reference.
struct SlotVal {
  int32_t node = -1;  // index of a shadow node, or -1
  uintptr_t raw = 0;  // the word when node < 0 (0, a foreign address, an integer)
};

struct Node {
  uint64_t id = 0;
  uintptr_t addr = 0;
  Kind kind = Kind::kSmall;
  uint32_t stride = 1;
  uint64_t born = 0;    // number of flips before its allocation
  bool doomed = false;  // unreachable at the flip of the cycle in progress
  bool dead = false;    // confirmed freed at the end of a cycle: never looked at again
  std::vector<SlotVal> slots;
};

// Pure graph bookkeeping: no arena in here.
class ShadowGraph {
 public:
  std::vector<Node> nodes;
  std::vector<SlotVal> roots;      // one per root word (exact arrays and handles)
  std::vector<uint8_t> root_live;  // whether each root word is currently registered

  // Breadth-first from the live roots; via[i] = (parent node or -1 for a root, slot or root
  // index), or parent -2 if node i is unreachable.
  struct Reach {
    std::vector<int32_t> parent;
    std::vector<int32_t> slot;
    std::vector<int32_t> order;  // reachable nodes in BFS order
    bool has(int32_t i) const { return parent[i] != -2; }
  };
  Reach reach() const {
    Reach r;
    r.parent.assign(nodes.size(), -2);
    r.slot.assign(nodes.size(), -1);
    for (size_t i = 0; i < roots.size(); ++i) {
      int32_t n = roots[i].node;
      if (!root_live[i] || n < 0 || r.parent[n] != -2) continue;
      r.parent[n] = -1;
      r.slot[n] = static_cast<int32_t>(i);
      r.order.push_back(n);
    }
    for (size_t q = 0; q < r.order.size(); ++q) {
      const Node& a = nodes[r.order[q]];
      for (size_t k = 0; k < a.slots.size(); ++k) {
        int32_t n = a.slots[k].node;
        if (n < 0 || r.parent[n] != -2) continue;
        r.parent[n] = r.order[q];
        r.slot[n] = static_cast<int32_t>(k);
        r.order.push_back(n);
      }
    }
    return r;
  }
  uintptr_t expected_word(const SlotVal& v) const {
    return v.node >= 0 ? nodes[v.node].addr : v.raw;
  }
};

// ------------------------------------------------------------------------------ the mutator

// Drives an arena with random, honest mutations and checks it against the shadow graph after
// every call that can run the collector. Call sequence: construct, then any mix of the op_*
// methods, begin_cycle(), step(), collect(); check ok() (or error()) at any time.
class GraphMutator {
 public:
  struct Options {
    size_t root_words = 8;        // the permanently registered exact-root array
    size_t extra_root_words = 4;  // a second array, registered and removed at random
    size_t handles = 4;           // HandleNode roots (what Root<T> is built on)
    uint32_t max_slots = 6;
    int large_percent = 4;    // of allocations: AMS objects > 16 KiB
    int leaf_percent = 20;    // of allocations: LO objects (some of them large too)
    int foreign_percent = 8;  // of stores: words that are not references
    int verify_percent = 5;   // of ops: run Arena::verify() after the op (also mid-cycle)
  };

  GraphMutator(weakgc::Arena& arena, uint64_t seed, const Options& o)
      : arena_(arena), rng_(seed), o_(o) {
    if (arena_.create_pool(weakgc::PoolClass::kAMS, &kGraphFormat, &ams_) != weakgc::Status::kOk ||
        arena_.create_pool(weakgc::PoolClass::kLO, nullptr, &lo_) != weakgc::Status::kOk) {
      fail("cannot create pools");
      return;
    }
    root_words_ = static_cast<void**>(calloc(o_.root_words, sizeof(void*)));
    extra_words_ = static_cast<void**>(calloc(o_.extra_root_words + 1, sizeof(void*)));
    handles_ = new weakgc::detail::HandleNode[o_.handles];
    if (arena_.register_root(root_words_, o_.root_words, &root_id_) != weakgc::Status::kOk ||
        arena_.register_root(extra_words_, o_.extra_root_words, &extra_id_) !=
            weakgc::Status::kOk) {
      fail("cannot register roots");
      return;
    }
    extra_registered_ = true;
    for (size_t h = 0; h < o_.handles; ++h)
      weakgc::detail::link_handle(arena_.impl(), &handles_[h]);
    size_t nroots = o_.root_words + o_.extra_root_words + o_.handles;
    g_.roots.assign(nroots, SlotVal{});
    g_.root_live.assign(nroots, 1);
    cycles_seen_ = arena_.stats().cycles;
    if (arena_.phase() != weakgc::Phase::kIdle) fail("arena is not idle at start");
  }

  ~GraphMutator() {
    if (extra_registered_) (void)arena_.remove_root(extra_id_);
    if (root_words_ != nullptr) (void)arena_.remove_root(root_id_);
    for (size_t h = 0; h < o_.handles; ++h) weakgc::detail::unlink_handle(&handles_[h]);
    delete[] handles_;
    free(root_words_);
    free(extra_words_);
  }
  GraphMutator(const GraphMutator&) = delete;
  GraphMutator& operator=(const GraphMutator&) = delete;

  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  const ShadowGraph& graph() const { return g_; }
  bool in_cycle() const { return in_cycle_; }
  uint64_t cycles_checked() const { return cycles_checked_; }
  uint64_t objects_freed() const { return freed_; }
  Rng& rng() { return rng_; }

  // One random mutation (allocation, store, root change, root (un)registration, read check).
  __attribute__((noinline)) void op_random() {
    if (!ok()) return;
    uint64_t r = rng_.below(100);
    if (r < 30)
      op_alloc();
    else if (r < 62)
      op_store();
    else if (r < 80)
      op_root();
    else if (r < 84)
      op_toggle_extra_roots();
    else if (r < 88)
      op_toggle_handle();
    else
      op_read();
    if (ok() && rng_.chance(o_.verify_percent)) arena_.verify();
  }

  // Allocates one object, initialises it, fills some slots and links it from a root or a
  // reachable object (or leaves it garbage).
  __attribute__((noinline)) void op_alloc() {
    if (!ok()) return;
    Kind kind = Kind::kSmall;
    size_t size;
    uint32_t nslots = 0, stride = 1;
    if (rng_.chance(o_.leaf_percent)) {
      kind = Kind::kLeaf;
      size = rng_.chance(5) ? 16 * 1024 + 8 + rng_.below(48 * 1024) : 8 + 8 * rng_.below(40);
    } else if (rng_.chance(o_.large_percent)) {
      kind = Kind::kLarge;
      size = 16 * 1024 + 8 + 8 * rng_.below(10 * 1024);  // 16 KiB .. 96 KiB
      nslots = 1 + static_cast<uint32_t>(rng_.below(o_.max_slots));
      stride = static_cast<uint32_t>((size / 8 - kFirstSlotWord) / nslots);
    } else {
      nslots = static_cast<uint32_t>(rng_.below(o_.max_slots + 1));
      size = 8 * (kFirstSlotWord + nslots) + 8 * rng_.below(24);
    }
    // The allocation comes first, with no address in hand: a collection it runs sees only the
    // roots the shadow knows.
    void* p = nullptr;
    weakgc::Status st = arena_.alloc(kind == Kind::kLeaf ? lo_ : ams_, size, &p);
    sync();
    if (st != weakgc::Status::kOk)
      return fail(std::string("alloc failed: ") + weakgc::status_name(st));
    uintptr_t a = reinterpret_cast<uintptr_t>(p);
    if (arena_.object_base(p) != p || arena_.object_size(p) < size)
      return fail("alloc returned a bad object");
    for (size_t w = 0; w < size / 8; w += 509)
      if (peek_word(arena_, a, w) != 0) return fail("alloc returned memory that is not zeroed");
    Node n;
    n.id = next_id_++;
    n.addr = a;
    n.kind = kind;
    n.stride = stride;
    n.born = flips_;
    n.slots.assign(nslots, SlotVal{});
    store_word(a, kIdWord, n.id);
    if (kind != Kind::kLeaf) {
      store_word(a, kNslotsWord, nslots);
      store_word(a, kStrideWord, stride);
    }
    int32_t idx = static_cast<int32_t>(g_.nodes.size());
    g_.nodes.push_back(std::move(n));
    // Fill some slots with references obtained by loads (the new object is black).
    for (uint32_t k = 0; k < nslots && ok(); ++k) {
      if (!rng_.chance(40)) continue;
      SlotVal v = pick_value();
      if (!ok()) return;
      write_slot(a, idx, k, v);
    }
    if (!ok() || rng_.chance(10)) return;  // garbage at once
    if (rng_.chance(40)) {
      set_root(pick_live_root(), SlotVal{idx, 0});
    } else {
      int32_t parent = pick_reachable(true);
      if (parent < 0 || parent == idx) {
        set_root(pick_live_root(), SlotVal{idx, 0});
      } else {
        uintptr_t pa = obtain(parent);
        if (!ok()) return;
        write_slot(pa, parent, static_cast<uint32_t>(rng_.below(g_.nodes[parent].slots.size())),
                   SlotVal{idx, 0});
      }
    }
  }

  // Stores a random value (null, foreign word, reachable object) into a slot of a reachable
  // object.
  __attribute__((noinline)) void op_store() {
    if (!ok()) return;
    int32_t target = pick_reachable(true);
    if (target < 0) return op_alloc();
    uintptr_t a = obtain(target);
    if (!ok()) return;
    SlotVal v = pick_value();
    if (!ok()) return;
    write_slot(a, target, static_cast<uint32_t>(rng_.below(g_.nodes[target].slots.size())), v);
  }

  // Sets a registered root word to null or a reachable object (drops roots).
  __attribute__((noinline)) void op_root() {
    if (!ok()) return;
    size_t r = pick_live_root();
    SlotVal v;
    if (!rng_.chance(35)) {
      int32_t n = pick_reachable(false);
      if (n >= 0) {
        obtain(n);
        v.node = n;
      }
    }
    if (ok()) set_root(r, v);
  }

  // Removes the extra exact-root array, or clears and registers it again.
  __attribute__((noinline)) void op_toggle_extra_roots() {
    if (!ok()) return;
    size_t first = o_.root_words;
    if (extra_registered_) {
      if (arena_.remove_root(extra_id_) != weakgc::Status::kOk) return fail("remove_root failed");
      if (arena_.remove_root(extra_id_) != weakgc::Status::kNotFound)
        return fail("removing a root twice did not say kNotFound");
      extra_registered_ = false;
      for (size_t i = 0; i < o_.extra_root_words; ++i) g_.root_live[first + i] = 0;
    } else {
      // Words outside the roots are not references the mutator holds: clear before registering.
      for (size_t i = 0; i < o_.extra_root_words; ++i) {
        reinterpret_cast<volatile uintptr_t*>(extra_words_)[i] = 0;
        g_.roots[first + i] = SlotVal{};
        g_.root_live[first + i] = 1;
      }
      if (arena_.register_root(extra_words_, o_.extra_root_words, &extra_id_) !=
          weakgc::Status::kOk)
        return fail("register_root failed");
      extra_registered_ = true;
    }
  }

  // Unlinks a handle root, or clears and links it again.
  __attribute__((noinline)) void op_toggle_handle() {
    if (!ok() || o_.handles == 0) return;
    size_t h = rng_.below(o_.handles);
    size_t r = o_.root_words + o_.extra_root_words + h;
    if (g_.root_live[r]) {
      weakgc::detail::unlink_handle(&handles_[h]);
      g_.root_live[r] = 0;
    } else {
      handles_[h].ptr = nullptr;
      g_.roots[r] = SlotVal{};
      weakgc::detail::link_handle(arena_.impl(), &handles_[h]);
      g_.root_live[r] = 1;
    }
  }

  // Walks to a reachable object and reads its id and every slot with plain loads.
  __attribute__((noinline)) void op_read() {
    if (!ok()) return;
    int32_t n = pick_reachable(false);
    if (n < 0) return;
    uintptr_t a = obtain(n);
    if (!ok()) return;
    const Node& node = g_.nodes[n];
    if (load_word(a, kIdWord) != node.id) return fail("mutator read a wrong id", n);
    for (size_t k = 0; k < node.slots.size(); ++k) {
      if (load_word(a, slot_word(node, k)) != g_.expected_word(node.slots[k]))
        return fail("mutator read a wrong slot", n);
    }
  }

  // Starts a cycle (the flip) if none is in progress.
  __attribute__((noinline)) void begin_cycle() {
    if (!ok()) return;
    arena_.start_cycle();
    sync();
  }

  // One increment of collection work.
  __attribute__((noinline)) bool step(uint64_t budget_ns) {
    if (!ok()) return false;
    bool more = arena_.step(budget_ns);
    sync();
    if (more != (arena_.phase() != weakgc::Phase::kIdle))
      fail("step's result disagrees with phase");
    return more;
  }

  // Finishes the cycle in progress with bounded steps (never a collect()).
  __attribute__((noinline)) void finish_cycle() {
    for (int i = 0; i < 100000 && ok() && in_cycle_; ++i) step(1000000);
    if (ok() && in_cycle_) fail("cycle does not finish");
  }

  // A whole stop-the-world collection. Clears the stack below the caller first (always inlined
  // into the caller, so the frames of earlier ops are gone before the collector scans).
  __attribute__((always_inline)) void collect() {
    clobber_stack();
    collect_impl();
  }

  // Checks that every object that is not doomed is allocated, holds its id, and holds in every
  // slot the word the shadow says (read through the collector view: no fault, no marking).
  __attribute__((noinline)) void check_heap() {
    for (size_t i = 0; i < g_.nodes.size() && ok(); ++i) {
      const Node& n = g_.nodes[i];
      if (n.dead || n.doomed) continue;
      if (!alive(n)) return fail("reachable object was freed", static_cast<int32_t>(i));
      for (size_t k = 0; k < n.slots.size(); ++k) {
        if (peek_word(arena_, n.addr, slot_word(n, k)) != g_.expected_word(n.slots[k]))
          return fail("object slot corrupted", static_cast<int32_t>(i));
      }
    }
  }

  // Number of nodes currently allocated according to the shadow (not dead).
  size_t live_nodes() const {
    size_t c = 0;
    for (const Node& n : g_.nodes) c += !n.dead;
    return c;
  }

 private:
  __attribute__((noinline)) void collect_impl() {
    if (!ok()) return;
    collect_clean_registers(arena_);
    sync();
    if (ok() && (in_cycle_ || arena_.phase() != weakgc::Phase::kIdle))
      fail("collect() left a cycle in progress");
  }

  bool alive(const Node& n) const {
    void* p = reinterpret_cast<void*>(n.addr);
    return arena_.object_base(p) == p && peek_word(arena_, n.addr, kIdWord) == n.id;
  }

  static size_t slot_word(const Node& n, size_t k) { return kFirstSlotWord + k * n.stride; }

  // Accounts for what the collector did inside the last arena call. Within one call the events
  // are ordered: [the cycle in progress ends] [whole cycles: flip, end] [a new flip]; the shadow
  // did not change during the call, so every flip in it saw the current shadow roots.
  void sync() {
    if (!ok()) return;
    uint64_t c = arena_.stats().cycles;
    uint64_t ended = c - cycles_seen_;
    cycles_seen_ = c;
    if (in_cycle_ && ended > 0) {
      end_cycle();
      --ended;
    }
    while (ended > 0 && ok()) {
      flip();
      end_cycle();
      --ended;
    }
    if (ok() && !in_cycle_ && arena_.phase() != weakgc::Phase::kIdle) flip();
    if (ok() && in_cycle_ && arena_.phase() == weakgc::Phase::kIdle)
      fail("the arena went idle without counting a cycle");
    check_heap();
  }

  void flip() {
    ShadowGraph::Reach r = g_.reach();
    for (size_t i = 0; i < g_.nodes.size(); ++i) {
      Node& n = g_.nodes[i];
      if (n.dead) continue;
      n.doomed = !r.has(static_cast<int32_t>(i));
    }
    ++flips_;
    in_cycle_ = true;
  }

  void end_cycle() {
    in_cycle_ = false;
    ++cycles_checked_;
    for (size_t i = 0; i < g_.nodes.size() && ok(); ++i) {
      Node& n = g_.nodes[i];
      if (n.dead || !n.doomed) continue;
      if (alive(n)) return fail("object unreachable at the flip survived its cycle", int32_t(i));
      n.dead = true;
      n.doomed = false;
      ++freed_;
    }
    if (ok()) arena_.verify();
  }

  // A reachable node (with slots if `with_slots`), uniformly, or -1.
  int32_t pick_reachable(bool with_slots) {
    ShadowGraph::Reach r = g_.reach();
    std::vector<int32_t> c;
    for (int32_t n : r.order)
      if (!with_slots || !g_.nodes[n].slots.empty()) c.push_back(n);
    if (c.empty()) return -1;
    return c[rng_.below(c.size())];
  }

  size_t pick_live_root() {
    for (;;) {
      size_t r = rng_.below(g_.roots.size());
      if (g_.root_live[r]) return r;
    }
  }

  // A value to store: null, a word that is not a reference, or a reachable object (loaded).
  SlotVal pick_value() {
    SlotVal v;
    uint64_t r = rng_.below(100);
    if (r < 25) return v;
    if (r < 25 + static_cast<uint64_t>(o_.foreign_percent)) {
      v.raw = foreign_word();
      return v;
    }
    int32_t n = pick_reachable(false);
    if (n < 0) return v;
    obtain(n);
    v.node = n;
    return v;
  }

  // Words an exact slot may hold that are not references: the collector must ignore them.
  uintptr_t foreign_word() {
    uintptr_t base = reinterpret_cast<uintptr_t>(arena_.impl()->base);
    uintptr_t reserve = arena_.impl()->reserve;
    switch (rng_.below(6)) {
      case 0:
        return 2 * rng_.below(1000) + 1;  // a tagged integer
      case 1:
        return reinterpret_cast<uintptr_t>(root_words_);  // a malloc'd address
      case 2:
        return reinterpret_cast<uintptr_t>(&kGraphFormat);  // a static address
      case 3:
        return base - 4096;  // just below the arena
      case 4:
        return base + reserve;  // the collector view's base
      default:
        return base + reserve + 4096 * rng_.below(64);  // inside the collector view
    }
  }

  // Follows a shadow path from a root to node `target` with plain loads and returns its
  // address as loaded (checked against the shadow at every hop).
  uintptr_t obtain(int32_t target) {
    ShadowGraph::Reach r = g_.reach();
    if (!r.has(target)) {
      fail("obtain: target is not reachable (harness bug)", target);
      return 0;
    }
    std::vector<int32_t> path;
    for (int32_t n = target; n >= 0; n = r.parent[n]) path.push_back(n);
    int32_t first = path.back();
    uintptr_t v = read_root(static_cast<size_t>(r.slot[first]));
    if (v != g_.nodes[first].addr) {
      fail("root word does not hold what the mutator stored", first);
      return 0;
    }
    for (size_t i = path.size() - 1; i > 0; --i) {
      const Node& from = g_.nodes[path[i]];
      int32_t to = path[i - 1];
      v = load_word(v, slot_word(from, static_cast<size_t>(r.slot[to])));
      if (v != g_.nodes[to].addr) {
        fail("loaded reference differs from the shadow", to);
        return 0;
      }
    }
    return v;
  }

  uintptr_t read_root(size_t r) {
    size_t nw = o_.root_words, ne = o_.extra_root_words;
    if (r < nw) return reinterpret_cast<volatile uintptr_t*>(root_words_)[r];
    if (r < nw + ne) return reinterpret_cast<volatile uintptr_t*>(extra_words_)[r - nw];
    return reinterpret_cast<uintptr_t>(
        reinterpret_cast<void* volatile&>(handles_[r - nw - ne].ptr));
  }

  void set_root(size_t r, SlotVal v) {
    size_t nw = o_.root_words, ne = o_.extra_root_words;
    uintptr_t w = g_.expected_word(v);
    if (r < nw)
      reinterpret_cast<volatile uintptr_t*>(root_words_)[r] = w;
    else if (r < nw + ne)
      reinterpret_cast<volatile uintptr_t*>(extra_words_)[r - nw] = w;
    else
      reinterpret_cast<void* volatile&>(handles_[r - nw - ne].ptr) = reinterpret_cast<void*>(w);
    g_.roots[r] = v;
  }

  void write_slot(uintptr_t a, int32_t n, uint32_t k, SlotVal v) {
    Node& node = g_.nodes[n];
    store_word(a, slot_word(node, k), g_.expected_word(v));
    node.slots[k] = v;
  }

  void fail(const std::string& what, int32_t node = -1) {
    if (!error_.empty()) return;
    error_ = what;
    if (node >= 0) {
      const Node& n = g_.nodes[node];
      char buf[160];
      snprintf(buf, sizeof buf, " (object id %llu at %#llx, kind %d, born after flip %llu)",
               static_cast<unsigned long long>(n.id), static_cast<unsigned long long>(n.addr),
               static_cast<int>(n.kind), static_cast<unsigned long long>(n.born));
      error_ += buf;
    }
    char buf[96];
    snprintf(buf, sizeof buf, " [flips %llu, phase %d]", static_cast<unsigned long long>(flips_),
             static_cast<int>(arena_.phase()));
    error_ += buf;
  }

  weakgc::Arena& arena_;
  Rng rng_;
  Options o_;
  weakgc::Pool* ams_ = nullptr;
  weakgc::Pool* lo_ = nullptr;
  void** root_words_ = nullptr;
  void** extra_words_ = nullptr;
  weakgc::detail::HandleNode* handles_ = nullptr;
  weakgc::RootId root_id_, extra_id_;
  bool extra_registered_ = false;
  ShadowGraph g_;
  uint64_t next_id_ = 1;
  uint64_t flips_ = 0;
  uint64_t cycles_seen_ = 0;
  uint64_t cycles_checked_ = 0;
  uint64_t freed_ = 0;
  bool in_cycle_ = false;
  std::string error_;
};

}  // namespace wgtest
