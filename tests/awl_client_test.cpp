// AWL pools with a client format (the runtime's own weak objects, MPS style): weak slots of dead
// referents are splatted to 0 together with the dependent's slot at the same offset; MPS's rule
// (a slot is a reference or a tagged word) is checked and counted; find_dependent returning
// garbage is ignored and counted; single accesses to client weak pages are emulated. Exact roots
// only (no stack scanning), so the oracle is exact. Seeded; not a benchmark.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "core/arena_impl.hpp"
#include "weak_test_util.hpp"
#include "weakgc/arena.hpp"

namespace {

using weakgc::test::finish_cycle;  // this cycle only: collect() would run another

using weakgc::Arena;
using weakgc::ArenaOptions;
using weakgc::Rank;
using weakgc::Status;

// The runtime's weak table half, as in MPS's AWL example: a tagged length, the dependent, slots.
struct ClientArray {
  uintptr_t tagged_length;  // length * 2 + 1: never looks like a reference
  ClientArray* dependent;
  void* slot[1];
};

size_t length_of(const ClientArray* a) {
  return a->tagged_length >> 1;
}

void scan_client_array(weakgc::ScanState& ss, void* obj, size_t, void*) {
  auto* a = static_cast<ClientArray*>(obj);
  for (size_t i = 0; i < length_of(a); ++i) ss.fix(&a->slot[i]);
}

void* dependent_of(void* obj, void*) {
  return static_cast<ClientArray*>(obj)->dependent;
}

// A leaf-ish referent in an AMS pool: one id word, no references.
void scan_nothing(weakgc::ScanState&, void*, size_t, void*) {}

struct Fixture {
  std::unique_ptr<Arena> arena;
  weakgc::Pool* awl = nullptr;
  weakgc::Pool* objs = nullptr;
  std::vector<void*> roots;  // malloc'd: the exact root range
  weakgc::RootId root_id;

  explicit Fixture(bool emulation = true, size_t nroots = 1 << 14) {
    ArenaOptions o;
    o.reserve_bytes = size_t{256} << 20;
    o.register_thread = false;  // exact roots only: survivors are exactly the reachable
    o.trigger_bytes = size_t{1} << 40;
    o.emulation = emulation;
    Status st;
    arena = Arena::create(o, &st);
    EXPECT_EQ(st, Status::kOk);
    weakgc::Format f;
    f.scan = &scan_client_array;
    f.find_dependent = &dependent_of;
    EXPECT_EQ(arena->create_pool(weakgc::PoolClass::kAWL, &f, &awl), Status::kOk);
    weakgc::Format g;
    g.scan = &scan_nothing;
    EXPECT_EQ(arena->create_pool(weakgc::PoolClass::kAMS, &g, &objs), Status::kOk);
    roots.assign(nroots, nullptr);
    EXPECT_EQ(arena->register_root(roots.data(), roots.size(), &root_id), Status::kOk);
  }
  ClientArray* new_array(size_t n, Rank rank) {
    void* p = nullptr;
    EXPECT_EQ(arena->alloc(awl, sizeof(uintptr_t) * 2 + n * sizeof(void*), &p, rank), Status::kOk);
    auto* a = static_cast<ClientArray*>(p);
    a->tagged_length = n * 2 + 1;
    return a;
  }
  void* new_obj(uint64_t id) {
    void* p = nullptr;
    EXPECT_EQ(arena->alloc(objs, 16, &p), Status::kOk);
    std::memcpy(p, &id, sizeof id);
    return p;
  }
};

// Reads slot i with one plain load (the compiler may not merge or skip it).
__attribute__((noinline)) void* load_slot(ClientArray* a, size_t i) {
  return *static_cast<void* volatile*>(&a->slot[i]);
}

TEST(AwlClient, DeadReferentsAreSplattedWithTheirDependentSlot) {
  const uint64_t seed = 0xa3c1;
  std::mt19937_64 rng(seed);
  Fixture fx;
  constexpr size_t kN = 3000;
  ClientArray* keys = fx.new_array(kN, Rank::kWeak);
  ClientArray* vals = fx.new_array(kN, Rank::kExact);
  keys->dependent = vals;
  vals->dependent = keys;
  fx.roots[0] = keys;
  fx.roots[1] = vals;
  std::vector<bool> live(kN);
  for (size_t i = 0; i < kN; ++i) {
    keys->slot[i] = fx.new_obj(i + 1);
    vals->slot[i] = fx.new_obj(100000 + i);
    live[i] = rng() % 2 == 0;
    if (live[i]) fx.roots[2 + i] = keys->slot[i];
  }
  fx.arena->collect();
  fx.arena->verify();
  size_t splatted = 0;
  for (size_t i = 0; i < kN; ++i) {
    if (live[i]) {
      ASSERT_EQ(keys->slot[i], fx.roots[2 + i]) << "live key " << i << " lost, seed " << seed;
      uint64_t id;
      std::memcpy(&id, vals->slot[i], sizeof id);
      ASSERT_EQ(id, 100000 + i) << "value of live key " << i;
    } else {
      ASSERT_EQ(keys->slot[i], nullptr) << "dead key " << i << " not splatted, seed " << seed;
      ASSERT_EQ(vals->slot[i], nullptr) << "dependent slot " << i << " not splatted";
      ++splatted;
    }
  }
  EXPECT_GE(fx.arena->stats().slots_splatted, splatted);
  EXPECT_EQ(fx.arena->stats().bad_awl_slots, 0u);
  EXPECT_EQ(fx.arena->stats().bad_dependents, 0u);
}

TEST(AwlClient, LoadsDuringMarkingAreEmulatedAndKeepOnlyWhatTheyRead) {
  Fixture fx;
  constexpr size_t kN = 4096;
  ClientArray* keys = fx.new_array(kN, Rank::kWeak);
  ClientArray* vals = fx.new_array(kN, Rank::kExact);
  keys->dependent = vals;
  vals->dependent = keys;
  fx.roots[0] = keys;
  fx.roots[1] = vals;
  for (size_t i = 0; i < kN; ++i) {
    keys->slot[i] = fx.new_obj(i + 1);
    vals->slot[i] = fx.new_obj(100000 + i);
    if (i % 2 == 0) fx.roots[2 + i] = keys->slot[i];  // odd keys die
  }
  fx.arena->start_cycle();
  uintptr_t sum = 0;
  for (size_t i = 0; i < kN; i += 2) sum += reinterpret_cast<uintptr_t>(load_slot(keys, i));
  EXPECT_NE(sum, 0u);
  finish_cycle(*fx.arena);
  size_t cleared = 0;
  for (size_t i = 1; i < kN; i += 2)
    cleared += keys->slot[i] == nullptr && vals->slot[i] == nullptr;
  weakgc::Stats s = fx.arena->stats();
  EXPECT_GT(s.faults_emulated, 0u);
  EXPECT_EQ(cleared, kN / 2) << "reading live slots kept dead ones alive (emulated "
                             << s.faults_emulated << ", declined " << s.faults_declined << ")";
}

TEST(AwlClient, EmulationOffRetainsWhatThePageScanSaw) {
  // The control: the same reads with emulation off scan the touched pages at exact rank.
  Fixture fx(/*emulation=*/false);
  constexpr size_t kN = 4096;
  ClientArray* keys = fx.new_array(kN, Rank::kWeak);
  fx.roots[0] = keys;
  for (size_t i = 0; i < kN; ++i) {
    keys->slot[i] = fx.new_obj(i + 1);
    if (i % 2 == 0) fx.roots[2 + i] = keys->slot[i];
  }
  fx.arena->start_cycle();
  uintptr_t sum = 0;
  for (size_t i = 0; i < kN; i += 2) sum += reinterpret_cast<uintptr_t>(load_slot(keys, i));
  EXPECT_NE(sum, 0u);
  finish_cycle(*fx.arena);
  size_t cleared = 0;
  for (size_t i = 1; i < kN; i += 2) cleared += keys->slot[i] == nullptr;
  EXPECT_LT(cleared, kN / 4);
}

TEST(AwlClient, AlignedNonReferenceIsCountedAndLeftAlone) {
  Fixture fx;
  ClientArray* keys = fx.new_array(4, Rank::kWeak);
  fx.roots[0] = keys;
  void* obj = fx.new_obj(7);
  fx.roots[1] = obj;
  // An aligned arena address that is no object's base: breaks MPS's rule.
  keys->slot[0] = static_cast<char*>(obj) + 8;
  keys->slot[1] = reinterpret_cast<void*>(uintptr_t{41});  // a tagged integer: fine
  keys->slot[2] = obj;
  fx.arena->collect();
  fx.arena->verify();
  EXPECT_EQ(keys->slot[0], static_cast<char*>(obj) + 8);
  EXPECT_EQ(keys->slot[1], reinterpret_cast<void*>(uintptr_t{41}));
  EXPECT_EQ(keys->slot[2], obj);
  EXPECT_GE(fx.arena->stats().bad_awl_slots, 1u);
}

TEST(AwlClient, GarbageFromFindDependentIsIgnored) {
  Fixture fx;
  ClientArray* keys = fx.new_array(8, Rank::kWeak);
  ClientArray* vals = fx.new_array(8, Rank::kExact);
  fx.roots[0] = keys;
  fx.roots[1] = vals;
  static uintptr_t foreign[16];
  for (size_t i = 0; i < 8; ++i) {
    keys->slot[i] = fx.new_obj(i + 1);  // all die
    vals->slot[i] = fx.new_obj(50 + i);
  }
  keys->dependent = reinterpret_cast<ClientArray*>(foreign);  // not in the arena
  fx.arena->collect();
  EXPECT_GE(fx.arena->stats().bad_dependents, 1u);
  for (uintptr_t w : foreign) EXPECT_EQ(w, 0u) << "foreign memory written";
  // An interior address of a real array: also refused, and the array is untouched.
  for (size_t i = 0; i < 8; ++i) keys->slot[i] = fx.new_obj(i + 1);
  keys->dependent = reinterpret_cast<ClientArray*>(reinterpret_cast<char*>(vals) + 8);
  fx.arena->collect();
  fx.arena->verify();
  for (size_t i = 0; i < 8; ++i) {
    EXPECT_EQ(keys->slot[i], nullptr);
    EXPECT_NE(vals->slot[i], nullptr) << "slot " << i << " of a non-dependent was splatted";
  }
  EXPECT_GE(fx.arena->stats().bad_dependents, 2u);
}

TEST(AwlClient, EphemeronRankNeedsTheLibraryLayout) {
  Fixture fx;
  void* p = nullptr;
  EXPECT_EQ(fx.arena->alloc(fx.awl, 64, &p, Rank::kEphemeron), Status::kBadParam);
}

}  // namespace
