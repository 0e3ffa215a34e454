// Retention of dead weak entries read during marking (issue 5): a 100,000-entry weak-key table
// whose keys alternate live and dead on every page. During marking the mutator gathers a random
// 10% of the live keys with ordinary compiled loads (this file is always built -O2; see
// tests/awl.cmake), so every weak page is hit. With single-access emulation the page stays
// protected and only the loaded (live) keys are greyed: the dead entries are all splatted at the
// end of the cycle. With emulation off every touched page is scanned at exact rank, which keeps
// every dead key on it alive for the cycle (MPS's behaviour on x86-64).
//
// Keys and values are client-format objects in an AMS pool. The oracle is the test's own record
// of which keys are rooted and which it loaded; nothing is timed. AWL_SEED=<n> reproduces.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <random>
#include <unordered_set>
#include <vector>

#include "tests/awl_shadow.hpp"
#include "weakgc/arena.hpp"
#include "weakgc/weak_array.hpp"

namespace awltest {
namespace {

using weakgc::Arena;
using weakgc::kDeleted;
using weakgc::Phase;
using weakgc::Rank;
using weakgc::Stats;
using weakgc::Status;

constexpr size_t kEntries = 100000;

struct Obj {
  uint64_t id;
  void* next;
};

void scan_obj(weakgc::ScanState& ss, void* obj, size_t, void*) {
  ss.fix(&static_cast<Obj*>(obj)->next);
}

// The mutator's gather: out[j] = keys->slot[index[j]]. Not inlined, so the loads are the
// compiler's ordinary `mov reg, [base + index*8 + 32]` (a load folded into arithmetic would be
// declined, which the test would report as declined faults).
__attribute__((noinline)) void gather(const weakgc::WeakArray* keys, const uint32_t* index,
                                      size_t n, uintptr_t* out) {
  for (size_t j = 0; j < n; ++j) out[j] = keys->slot[index[j]];
}

struct Result {
  size_t dead = 0, dead_splatted = 0, dead_retained_on_touched_pages = 0, touched_pages = 0;
  size_t live_intact = 0;
  Stats delta_mark;  // counters over the marking-phase loads
  size_t loads = 0;
};

Result run(bool emulation, uint64_t seed) {
  Arena arena(test_options(emulation));
  weakgc::Format fmt;
  fmt.scan = &scan_obj;
  weakgc::Pool* pool = nullptr;
  EXPECT_EQ(arena.create_pool(weakgc::PoolClass::kAMS, &fmt, &pool), Status::kOk);
  RootBlock roots(arena, kEntries / 2 + 4);
  weakgc::WeakArray *keys = nullptr, *values = nullptr;
  EXPECT_EQ(weakgc::alloc_weak_array(arena, kEntries, Rank::kWeak, nullptr, &keys), Status::kOk);
  EXPECT_EQ(weakgc::alloc_weak_array(arena, kEntries, Rank::kExact, keys, &values), Status::kOk);
  EXPECT_EQ(weakgc::link_dependents(arena, keys, values), Status::kOk);
  roots.add(keys);
  roots.add(values);
  std::vector<uintptr_t> key_addr(kEntries);
  for (size_t i = 0; i < kEntries; ++i) {
    void *k, *v;
    EXPECT_EQ(arena.alloc(pool, sizeof(Obj), &k), Status::kOk);
    EXPECT_EQ(arena.alloc(pool, sizeof(Obj), &v), Status::kOk);
    static_cast<Obj*>(k)->id = 2 * i;
    static_cast<Obj*>(v)->id = 2 * i + 1;
    keys->slot[i] = reinterpret_cast<uintptr_t>(k);
    values->slot[i] = reinterpret_cast<uintptr_t>(v);
    key_addr[i] = reinterpret_cast<uintptr_t>(k);
    if (i % 2 == 0) roots.add(k);  // live and dead interleaved on every page
  }
  // A random 10% of the live keys, in random order.
  std::mt19937_64 rng(seed);
  std::vector<uint32_t> live_index;
  for (uint32_t i = 0; i < kEntries; i += 2) live_index.push_back(i);
  std::shuffle(live_index.begin(), live_index.end(), rng);
  live_index.resize(kEntries / 2 / 10);
  std::vector<uintptr_t> out(live_index.size());
  auto page_of = [&](size_t i) { return reinterpret_cast<uintptr_t>(&keys->slot[i]) >> 12; };
  std::unordered_set<uintptr_t> pages;
  for (uint32_t i : live_index) pages.insert(page_of(i));

  Result r;
  arena.start_cycle();
  Stats before = arena.stats();
  constexpr size_t kChunks = 10;
  size_t per = live_index.size() / kChunks;
  for (size_t c = 0; c < kChunks; ++c) {
    EXPECT_EQ(arena.phase(), Phase::kMark) << "the loads must happen during marking";
    size_t lo = c * per, n = c + 1 == kChunks ? live_index.size() - lo : per;
    gather(keys, live_index.data() + lo, n, out.data() + lo);
    arena.step(10000);  // a little marking between the mutator's bursts (150,000 objects to
                        // mark: ten 10 us steps cannot finish it)
  }
  Stats after = arena.stats();
  r.loads = live_index.size();
  r.delta_mark.faults_emulated = after.faults_emulated - before.faults_emulated;
  r.delta_mark.faults_declined = after.faults_declined - before.faults_declined;
  r.delta_mark.faults_budget = after.faults_budget - before.faults_budget;
  for (size_t j = 0; j < live_index.size(); ++j)
    EXPECT_EQ(out[j], key_addr[live_index[j]]) << "load " << j << " returned a wrong value";
  while (arena.step(1000000)) {
  }
  r.touched_pages = pages.size();
  for (size_t i = 0; i < kEntries; ++i) {
    if (i % 2 == 0) {
      r.live_intact += keys->slot[i] == key_addr[i] && values->slot[i] != kDeleted;
      continue;
    }
    ++r.dead;
    bool splat = keys->slot[i] == kDeleted;
    if (splat) {
      ++r.dead_splatted;
      EXPECT_EQ(values->slot[i], kDeleted) << "dependent of " << i;
    } else {
      EXPECT_EQ(keys->slot[i], key_addr[i]) << i;
      if (pages.count(page_of(i)) != 0) ++r.dead_retained_on_touched_pages;
    }
  }
  arena.verify();
  return r;
}

TEST(AwlRetention, EmulationSplatsDeadEntriesOnPagesTheMutatorRead) {
  uint64_t seed = seed_from_env(0x7e7e);
  SCOPED_TRACE("AWL_SEED=" + std::to_string(seed));
  Result r = run(/*emulation=*/true, seed);
  printf(
      "emulation on: %zu loads on %zu pages, %llu emulated, %llu declined, %llu budget; "
      "%zu/%zu dead entries splatted\n",
      r.loads, r.touched_pages, (unsigned long long)r.delta_mark.faults_emulated,
      (unsigned long long)r.delta_mark.faults_declined,
      (unsigned long long)r.delta_mark.faults_budget, r.dead_splatted, r.dead);
  EXPECT_GE(r.touched_pages, kEntries * 8 / 4096) << "every weak page is hit";
  EXPECT_GT(r.delta_mark.faults_emulated, 0u);
  EXPECT_EQ(r.delta_mark.faults_emulated, r.loads) << "each load of a protected slot is emulated";
  EXPECT_EQ(r.delta_mark.faults_declined, 0u) << "the compiler's load was declined";
  EXPECT_GE(r.dead_splatted * 100, r.dead * 99) << "at least 99% of the dead entries splatted";
  EXPECT_EQ(r.live_intact, kEntries / 2);
}

TEST(AwlRetention, WithoutEmulationTouchedPagesRetainTheirDeadEntries) {
  uint64_t seed = seed_from_env(0x7e7e);
  SCOPED_TRACE("AWL_SEED=" + std::to_string(seed));
  Result r = run(/*emulation=*/false, seed);
  printf(
      "emulation off: %zu loads on %zu pages, %llu declined faults; %zu/%zu dead entries "
      "splatted, %zu retained\n",
      r.loads, r.touched_pages, (unsigned long long)r.delta_mark.faults_declined, r.dead_splatted,
      r.dead, r.dead - r.dead_splatted);
  EXPECT_EQ(r.delta_mark.faults_emulated, 0u);
  EXPECT_EQ(r.delta_mark.faults_declined, r.touched_pages) << "one exact scan per touched page";
  EXPECT_GT(r.dead - r.dead_splatted, r.dead / 2) << "most dead entries retained";
  EXPECT_EQ(r.dead - r.dead_splatted, r.dead_retained_on_touched_pages)
      << "only pages the mutator touched retain dead entries";
  EXPECT_EQ(r.live_intact, kEntries / 2);
}

}  // namespace
}  // namespace awltest
