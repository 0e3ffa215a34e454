// Roots (issue 2): conservative roots (the registered thread's stack and registers, interior
// pointers included), keep_alive, Root<T> handles and the typed layer's tracing.
//
// Object addresses the tests check later are kept in heap memory (never scanned); helpers that
// hold them on the stack are noinline, and the stack below the caller is cleared before a
// collection that must not see them (wgtest::clobber_stack).
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "support/shadow_graph.hpp"
#include "weakgc/arena.hpp"
#include "weakgc/gc.hpp"

namespace {

using weakgc::Arena;
using weakgc::ArenaOptions;
using weakgc::Status;

std::unique_ptr<Arena> make_arena(bool register_thread) {
  ArenaOptions o;
  o.reserve_bytes = size_t{16} << 20;
  o.trigger_bytes = size_t{1} << 40;  // collections only when the test asks
  o.register_thread = register_thread;
  Status st;
  auto a = Arena::create(o, &st);
  EXPECT_EQ(st, Status::kOk);
  return a;
}

// What the tests remember about objects, in heap memory.
struct Env {
  std::unique_ptr<Arena> arena;
  weakgc::Pool* ams = nullptr;
  weakgc::Pool* lo = nullptr;
  std::vector<uintptr_t> base;  // object bases, by id - 1
  explicit Env(bool register_thread) : arena(make_arena(register_thread)) {
    EXPECT_EQ(arena->create_pool(weakgc::PoolClass::kAMS, &wgtest::kGraphFormat, &ams),
              Status::kOk);
    EXPECT_EQ(arena->create_pool(weakgc::PoolClass::kLO, nullptr, &lo), Status::kOk);
  }
  bool alive(uint64_t id) const {
    void* p = reinterpret_cast<void*>(base[id - 1]);
    return arena->object_base(p) == p &&
           wgtest::peek_word(*arena, base[id - 1], wgtest::kIdWord) == id;
  }
};

// Allocates an object (its base recorded in env.base) and returns base + offset: the caller never
// sees the base itself.
__attribute__((noinline)) uintptr_t make_object(Env& e, bool leaf, size_t size, size_t offset) {
  void* p = nullptr;
  EXPECT_EQ(e.arena->alloc(leaf ? e.lo : e.ams, size, &p), Status::kOk);
  uintptr_t b = reinterpret_cast<uintptr_t>(p);
  e.base.push_back(b);
  wgtest::store_word(b, wgtest::kIdWord, e.base.size());
  return b + offset;
}

struct Held {
  bool survived = false;
  bool marked_black = false;
};

// Holds only `base + offset` of a new object in a stack slot across a collection.
__attribute__((noinline)) Held hold_in_local(Env& e, bool leaf, size_t size, size_t offset) {
  volatile uintptr_t local = make_object(e, leaf, size, offset);
  wgtest::clobber_stack();  // make_object's dead frame held the base
  // Registers cleared (the volatile local is on the stack): only the stack can pin the object.
  wgtest::collect_clean_registers(*e.arena);
  Held h;
  h.survived = e.alive(e.base.size());
  wgtest::clobber_stack();
  (void)local;
  return h;
}

__attribute__((noinline)) void collect_clean(Env& e) {
  wgtest::collect_clean_registers(*e.arena);
}

struct LocalCase {
  const char* name;
  bool leaf;
  size_t size;
  size_t offset;
};

// An object referenced only from a local variable (by its base, or by an interior pointer)
// survives collect(); once the local is gone and the stack is cleared, it is reclaimed.
TEST(ConservativeRoots, LocalReferenceKeepsObjectUntilItIsGone) {
  const LocalCase cases[] = {
      {"small by base", false, 64, 0},
      {"small by interior pointer", false, 200, 72},
      {"leaf by interior pointer", true, 512, 511},
      {"large by pointer into its third page", false, 40 * 1024, 2 * 4096 + 24},
      {"large leaf by base", true, 100 * 1024, 0},
  };
  for (const LocalCase& c : cases) {
    Env e(true);
    wgtest::clobber_stack();
    Held h = hold_in_local(e, c.leaf, c.size, c.offset);
    EXPECT_TRUE(h.survived) << c.name << ": object referenced from the stack was freed";
    wgtest::clobber_stack();
    collect_clean(e);
    EXPECT_FALSE(e.alive(1)) << c.name << ": object kept after its last reference was gone";
    e.arena->verify();
  }
}

// An object whose only reference is in a callee-saved register of the mutator (r13) while it
// calls collect() survives, wherever the collector's frames push r13; once r13 lets it go, the
// next collection frees it.
__attribute__((noinline)) bool hold_in_r13_across_collect(Env& e) {
  uintptr_t held = wgtest::call_holding(
      make_object(e, false, 64, 0), [](void* a) { static_cast<Arena*>(a)->collect(); },
      e.arena.get());
  return held == e.base[0];  // r13 came back unchanged
}

TEST(ConservativeRoots, ObjectHeldOnlyInACalleeSavedRegisterSurvives) {
  Env e(true);
  wgtest::clobber_stack();
  EXPECT_TRUE(hold_in_r13_across_collect(e));
  EXPECT_TRUE(e.alive(1)) << "object held only in r13 across collect() was freed";
  wgtest::clobber_stack();
  collect_clean(e);
  EXPECT_FALSE(e.alive(1)) << "object kept after r13 let it go";
}

// The same with exact roots only: a local is not a root, so the object dies (this is what makes
// the test above able to fail).
TEST(ConservativeRoots, UnregisteredThreadStackIsNotARoot) {
  Env e(false);
  Held h = hold_in_local(e, false, 64, 0);
  EXPECT_FALSE(h.survived);
}

// An address just past an object (base + cell size) pins the next cell, not the object.
TEST(ConservativeRoots, PointerPastTheEndDoesNotPinTheObject) {
  Env e(true);
  wgtest::clobber_stack();
  Held h = hold_in_local(e, true, 48, 48);  // cell size of 48 bytes is exactly 48
  EXPECT_FALSE(h.survived);
}

// keep_alive(p): the last use of p is before the collection, keep_alive after it keeps the
// object alive up to there.
__attribute__((noinline)) bool use_then_keep_alive(Env& e) {
  auto* p = reinterpret_cast<char*>(make_object(e, true, 256, 0));
  p[100] = 42;  // the last real use of p
  wgtest::clobber_stack();
  e.arena->collect();
  bool ok = e.alive(e.base.size()) && *e.arena->impl()->cview<char>(e.base.back() + 100) == 42;
  weakgc::keep_alive(p);
  return ok;
}

TEST(KeepAlive, KeepsObjectAliveAcrossCollection) {
  Env e(true);
  wgtest::clobber_stack();
  EXPECT_TRUE(use_then_keep_alive(e));
  wgtest::clobber_stack();
  collect_clean(e);
  EXPECT_FALSE(e.alive(1));
}

// ------------------------------------------------------------------ typed layer, Root<T>

struct Node : weakgc::GcObject {
  weakgc::Ref<Node> next;
  weakgc::Ref<Node> other;
  void* raw = nullptr;  // a raw field reported with visit_raw
  uint64_t id = 0;
  explicit Node(uint64_t i) : id(i) {}
  void trace(weakgc::Visitor& v) const override {
    v.visit(next);
    v.visit(other);
    v.visit_raw(&raw);
  }
};

struct TypedEnv {
  std::unique_ptr<Arena> arena = make_arena(false);  // exact roots only: Root<T> and nothing else
  std::vector<uintptr_t> addr;                       // by id - 1
  bool alive(uint64_t id) const {
    auto* p = reinterpret_cast<void*>(addr[id - 1]);
    return arena->object_base(p) == p && arena->impl()->cview<Node>(addr[id - 1])->id == id;
  }
};

// Builds a chain of n nodes (ids first..first+n-1) and returns its head.
Node* make_chain(TypedEnv& e, int n) {
  Node* head = nullptr;
  for (int i = 0; i < n; ++i) {
    Node* x = weakgc::make<Node>(*e.arena, e.addr.size() + 1);
    e.addr.push_back(reinterpret_cast<uintptr_t>(x));
    x->next = head;
    head = x;
  }
  return head;
}

TEST(RootHandle, KeepsWhatItReachesAndReleasesWhenReset) {
  TypedEnv e;
  weakgc::Root<Node> a(*e.arena, make_chain(e, 50));                           // ids 1..50
  auto b = std::make_unique<weakgc::Root<Node>>(*e.arena, make_chain(e, 30));  // ids 51..80
  weakgc::Root<Node> c(*e.arena);                                              // empty
  Node* leaf_holder = weakgc::make<Node>(*e.arena, 81);
  e.addr.push_back(reinterpret_cast<uintptr_t>(leaf_holder));
  leaf_holder->raw = weakgc::make_leaf_bytes(*e.arena, 100);
  uintptr_t leaf = reinterpret_cast<uintptr_t>(leaf_holder->raw);
  c = leaf_holder;
  EXPECT_FALSE(static_cast<bool>(weakgc::Root<Node>(*e.arena)));
  e.arena->collect();
  for (uint64_t id = 1; id <= 81; ++id) ASSERT_TRUE(e.alive(id)) << id;
  EXPECT_EQ(e.arena->object_base(reinterpret_cast<void*>(leaf)), reinterpret_cast<void*>(leaf));
  // Walk the chains through the handles: contents intact.
  uint64_t want = 50;
  for (Node* n = a.get(); n != nullptr; n = n->next.get()) EXPECT_EQ(n->id, want--);
  EXPECT_EQ(want, 0u);
  // Destroy the middle handle of the arena's list and clear the raw field.
  b.reset();
  c->raw = nullptr;
  e.arena->collect();
  for (uint64_t id = 1; id <= 50; ++id) EXPECT_TRUE(e.alive(id)) << id;
  for (uint64_t id = 51; id <= 80; ++id) EXPECT_FALSE(e.alive(id)) << id;
  EXPECT_TRUE(e.alive(81));
  EXPECT_EQ(e.arena->object_base(reinterpret_cast<void*>(leaf)), nullptr);
  // Cut the first chain in the middle through set(): the tail dies.
  Node* mid = a.get();
  for (int i = 0; i < 24; ++i) mid = mid->next.get();
  EXPECT_EQ(mid->id, 26u);
  mid->next = nullptr;
  a.set(a.get());
  e.arena->collect();
  for (uint64_t id = 26; id <= 50; ++id) EXPECT_TRUE(e.alive(id)) << id;
  for (uint64_t id = 1; id <= 25; ++id) EXPECT_FALSE(e.alive(id)) << id;
  a = nullptr;
  c = nullptr;
  e.arena->collect();
  for (uint64_t id = 1; id <= 81; ++id) EXPECT_FALSE(e.alive(id)) << id;
  e.arena->verify();
}

// A Root that outlives its arena is detached: its destructor does nothing harmful.
TEST(RootHandle, MayOutliveItsArena) {
  auto arena = make_arena(false);
  auto r1 = std::make_unique<weakgc::Root<Node>>(*arena, weakgc::make<Node>(*arena, 1));
  auto r2 = std::make_unique<weakgc::Root<Node>>(*arena, weakgc::make<Node>(*arena, 2));
  r1.reset();
  arena.reset();
  r2.reset();  // ASan would report a use after free here if the handle were still linked
  SUCCEED();
}

// A handle created while a cycle is marking holds a black reference; it is a root from the next
// flip on.
TEST(RootHandle, CreatedDuringACycleIsARootFromTheNextFlip) {
  TypedEnv e;
  auto holder = std::make_unique<weakgc::Root<Node>>(*e.arena, make_chain(e, 3));  // ids 1..3
  e.arena->start_cycle();
  ASSERT_EQ(e.arena->phase(), weakgc::Phase::kMark);
  // Loaded through the barrier: the mutator holds node 2 legitimately.
  auto r = std::make_unique<weakgc::Root<Node>>(*e.arena, holder->get()->next.get());
  holder.reset();
  while (e.arena->step(1000000)) {
  }
  for (uint64_t id = 1; id <= 3; ++id) EXPECT_TRUE(e.alive(id)) << id;  // reachable at the flip
  e.arena->collect();
  EXPECT_FALSE(e.alive(3));
  EXPECT_TRUE(e.alive(2));
  EXPECT_TRUE(e.alive(1));
  r.reset();
  e.arena->collect();
  EXPECT_FALSE(e.alive(2));
  EXPECT_FALSE(e.alive(1));
}

// collect() during a cycle reclaims everything unreachable at the call: what was reachable at
// the cycle's flip, and what was allocated (black) since, not only what that cycle would free.
TEST(Collect, DuringACycleReclaimsWhatDiedSinceItsFlip) {
  TypedEnv e;
  auto holder = std::make_unique<weakgc::Root<Node>>(*e.arena, make_chain(e, 3));  // ids 1..3
  e.arena->start_cycle();
  ASSERT_EQ(e.arena->phase(), weakgc::Phase::kMark);
  make_chain(e, 2);  // ids 4, 5: allocated during marking, never held
  holder.reset();
  e.arena->collect();
  EXPECT_EQ(e.arena->phase(), weakgc::Phase::kIdle);
  for (uint64_t id = 1; id <= 5; ++id) EXPECT_FALSE(e.alive(id)) << id;
}

// make<T> throws std::bad_alloc when the arena is exhausted (checked in core_memory_test too);
// make_leaf_bytes gives zeroed memory.
TEST(TypedLayer, LeafBytesAreZeroedAndNeverScanned) {
  TypedEnv e;
  weakgc::Root<Node> r(*e.arena, weakgc::make<Node>(*e.arena, 1));
  e.addr.push_back(reinterpret_cast<uintptr_t>(r.get()));
  auto* bytes = static_cast<uintptr_t*>(weakgc::make_leaf_bytes(*e.arena, 4096));
  r->raw = bytes;
  for (int i = 0; i < 512; ++i) ASSERT_EQ(bytes[i], 0u) << i;
  // A leaf holding the address of an otherwise unreachable node does not keep it.
  Node* lost = weakgc::make<Node>(*e.arena, 2);
  e.addr.push_back(reinterpret_cast<uintptr_t>(lost));
  bytes[0] = reinterpret_cast<uintptr_t>(lost);
  lost = nullptr;
  e.arena->collect();
  EXPECT_TRUE(e.alive(1));
  EXPECT_FALSE(e.alive(2));
}

// A type that does not override trace holds no references: make<T> puts it in the leaf pool,
// whose objects are marked but never scanned, so their pages are never protected. A traced type
// in the same situation is grey after the flip and its page protected (the control).
struct Plain : weakgc::GcObject {
  uint64_t word = 0;
};
struct PlainDerived : Plain {};
struct TracedDerived : Plain {
  weakgc::Ref<Node> ref;
  void trace(weakgc::Visitor& v) const override { v.visit(ref); }
};
class PrivateTrace : public weakgc::GcObject {
  void trace(weakgc::Visitor&) const override {}  // private: make<T> must still compile
};
static_assert(weakgc::detail::kTraceless<Plain> && weakgc::detail::kTraceless<PlainDerived>);
static_assert(!weakgc::detail::kTraceless<PrivateTrace>);
static_assert(!weakgc::detail::kTraceless<Node> && !weakgc::detail::kTraceless<TracedDerived>);

TEST(TypedLayer, ObjectsWithoutTraceAreNeverScannedNorProtected) {
  ArenaOptions o;
  o.reserve_bytes = size_t{16} << 20;
  o.trigger_bytes = size_t{1} << 40;
  o.register_thread = false;
  o.incremental = 1;
  Arena arena(o);
  weakgc::Root<Plain> plain(arena, weakgc::make<PlainDerived>(arena));
  weakgc::Root<TracedDerived> traced(arena, weakgc::make<TracedDerived>(arena));
  weakgc::Root<PrivateTrace> private_trace(arena, weakgc::make<PrivateTrace>(arena));
  plain->word = 7;
  auto read = [](const Plain* p) { return *static_cast<const volatile uint64_t*>(&p->word); };
  arena.start_cycle();
  ASSERT_EQ(arena.phase(), weakgc::Phase::kMark);
  weakgc::Stats s0 = arena.stats();
  EXPECT_EQ(read(plain.get()), 7u);  // leaf page: no fault
  weakgc::Stats s1 = arena.stats();
  EXPECT_EQ(s1.faults_scanned, s0.faults_scanned);
  EXPECT_EQ(read(traced.get()), 0u);  // grey page: the barrier scans it
  weakgc::Stats s2 = arena.stats();
  EXPECT_EQ(s2.faults_scanned, s1.faults_scanned + 1);
  arena.collect();  // rooted, so alive: marked without a scan
  EXPECT_EQ(arena.object_base(plain.get()), plain.get());
  EXPECT_EQ(read(plain.get()), 7u);
}

}  // namespace
