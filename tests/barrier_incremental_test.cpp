// Incremental oracle stress for the barrier (issue 3): a mutator reading and writing object fields
// with plain loads and stores through mutator addresses, interleaved with Arena::step() increments
// and allocation, over many seeded schedules; the shadow-graph oracle
// (tests/support/shadow_graph.hpp) must hold after every operation and every cycle:
//   - nothing that is reachable, or was reachable at the flip, or was allocated since, is freed;
//   - at the end of a cycle, everything unreachable at its flip is freed.
// Variants: incremental on, incremental off (ArenaOptions::incremental = 0: allocation never does
// marking work; allocation-triggered collections are whole), an injected mprotect failure on
// every k-th protect, and collect() finishing a cycle midway (without a barrier). A negative
// control runs the same schedules with a barrier that protects nothing and checks that the oracle
// notices. Not a benchmark.
//
// Reproduce: WEAKGC_TEST_SEED=<seed printed> WEAKGC_TEST_ROUNDS=1 ./barrier_test
// --gtest_filter='<test>'. (Increments are bounded by time, so the collector's progress between
// two mutator operations can differ from run to run; the mutator's operations do not.)
#include <sys/mman.h>
#include <sys/wait.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <memory>

#include "support/shadow_graph.hpp"
#include "weakgc/arena.hpp"

#ifndef WEAKGC_TEST_STRESS
#define WEAKGC_TEST_STRESS 0
#endif

namespace {

using weakgc::Arena;
using weakgc::ArenaOptions;
using weakgc::Status;

constexpr uint64_t kDefaultSchedules = WEAKGC_TEST_STRESS ? 30000 : 1000;
constexpr uint64_t kDefaultSeed = 0xba551e5;

// mprotect injection (ArenaImpl::mprotect_fn): fails every k-th PROT_NONE call with ENOMEM.
std::atomic<uint64_t> g_protect_calls{0};
uint64_t g_fail_every = 0;
int failing_mprotect(void* p, size_t n, int prot) {
  if (prot == PROT_NONE && g_fail_every != 0 &&
      g_protect_calls.fetch_add(1, std::memory_order_relaxed) % g_fail_every == g_fail_every - 1) {
    errno = ENOMEM;
    return -1;
  }
  return mprotect(p, n, prot);
}
// A barrier that is off: claims to protect, protects nothing (negative control only).
int fake_mprotect(void*, size_t, int) {
  return 0;
}

enum class Variant {
  kIncremental,
  kNonIncremental,
  kFailingMprotect,
  kNoBarrier,
  kCollectMidCycle
};

struct Result {
  std::string error;
  uint64_t faults_scanned = 0;
  uint64_t cycles = 0;
  uint64_t freed = 0;
  uint64_t mprotect_failures = 0;
  uint64_t full_collections = 0;    // the test never calls collect(): these ran inside alloc()
  uint64_t mid_cycle_collects = 0;  // kCollectMidCycle: collect() calls during a cycle
};

__attribute__((noinline)) Result run_schedule(uint64_t seed, Variant v) {
  Result res;
  wgtest::Rng rng(seed * 0x9e3779b97f4a7c15ull + 17);
  ArenaOptions o;
  o.reserve_bytes = size_t{32} << 20;
  o.register_thread = false;  // exact roots: the oracle's equality is exact
  o.incremental = v == Variant::kNonIncremental ? 0 : 1;
  // Incremental: only the test flips, so every flip is observed. Non-incremental: allocation
  // runs whole collections now and then, inside alloc().
  o.trigger_bytes = v == Variant::kNonIncremental ? (4 + rng.below(60)) * 1024 : size_t{1} << 40;
  o.pause_target_ms = 0.002 * static_cast<double>(1 + rng.below(50));  // allocation-paced steps
  Status st;
  std::unique_ptr<Arena> arena = Arena::create(o, &st);
  if (!arena) {
    res.error = std::string("Arena::create: ") + weakgc::status_name(st);
    return res;
  }
  if (v == Variant::kFailingMprotect) {
    g_fail_every = 2 + rng.below(6);
    g_protect_calls = rng.below(g_fail_every);
    arena->impl()->mprotect_fn = &failing_mprotect;
  } else if (v == Variant::kNoBarrier) {
    arena->impl()->mprotect_fn = &fake_mprotect;
  }
  wgtest::GraphMutator::Options mo;
  mo.large_percent = static_cast<int>(rng.below(8));
  mo.verify_percent = 3;
  auto m = std::make_unique<wgtest::GraphMutator>(*arena, seed, mo);
  int warmup = 20 + static_cast<int>(rng.below(40));
  for (int i = 0; i < warmup && m->ok(); ++i) m->op_random();
  int cycles = 2 + static_cast<int>(rng.below(3));
  int step_percent = 5 + static_cast<int>(rng.below(40));
  for (int c = 0; c < cycles && m->ok(); ++c) {
    m->begin_cycle();
    for (int ops = 0; m->ok() && m->in_cycle(); ++ops) {
      if (ops > 400) {
        m->finish_cycle();
        break;
      }
      if (rng.chance(step_percent)) {
        m->step(uint64_t{200} << rng.below(8));  // 200 ns .. 25 us
        continue;
      }
      if (v == Variant::kCollectMidCycle && ops > 0 && rng.chance(3)) {
        // A whole collection finishes the cycle in progress; with no thread registered it drops
        // the barrier (every protected page unprotected at once) and marks without one.
        ++res.mid_cycle_collects;
        m->collect();
        break;
      }
      uint64_t inc = arena->stats().increments;
      m->op_random();
      // Incremental collection off: a mutator operation never advances the cycle.
      if (v == Variant::kNonIncremental && m->ok() && m->in_cycle() &&
          arena->stats().increments != inc) {
        res.error = "allocation did incremental work with incremental collection off";
        return res;
      }
    }
    int idle = static_cast<int>(rng.below(20));
    for (int i = 0; i < idle && m->ok(); ++i) m->op_random();
  }
  res.error = m->error();
  weakgc::Stats s = arena->stats();
  res.faults_scanned = s.faults_scanned;
  res.cycles = m->cycles_checked();
  res.freed = m->objects_freed();
  res.mprotect_failures = s.mprotect_failures;
  res.full_collections = s.full_collections;
  return res;
}

struct Totals {
  uint64_t n = 0, faults = 0, with_faults = 0, cycles = 0, freed = 0, mprotect_failures = 0;
  uint64_t full_collections = 0;
  uint64_t mid_cycle_collects = 0;
};

__attribute__((noinline)) Totals run_schedules(Variant v, uint64_t seed_offset,
                                               uint64_t schedules = kDefaultSchedules) {
  Totals t;
  uint64_t base = wgtest::env_u64("WEAKGC_TEST_SEED", kDefaultSeed + seed_offset);
  t.n = wgtest::env_u64("WEAKGC_TEST_ROUNDS", schedules);
  for (uint64_t i = 0; i < t.n; ++i) {
    uint64_t seed = base + i;
    Result r = run_schedule(seed, v);
    EXPECT_TRUE(r.error.empty()) << "seed " << seed << " (WEAKGC_TEST_SEED=" << seed
                                 << " WEAKGC_TEST_ROUNDS=1): " << r.error;
    if (!r.error.empty()) break;
    t.faults += r.faults_scanned;
    t.with_faults += r.faults_scanned > 0;
    t.cycles += r.cycles;
    t.freed += r.freed;
    t.mprotect_failures += r.mprotect_failures;
    t.full_collections += r.full_collections;
    t.mid_cycle_collects += r.mid_cycle_collects;
  }
  return t;
}

// The barrier must have been exercised, or the test proves nothing.
void expect_exercised(const Totals& t) {
  printf(
      "%llu schedules: %llu cycles checked, %llu objects freed, %llu barrier faults "
      "(%llu schedules with faults), %llu whole collections inside alloc\n",
      static_cast<unsigned long long>(t.n), static_cast<unsigned long long>(t.cycles),
      static_cast<unsigned long long>(t.freed), static_cast<unsigned long long>(t.faults),
      static_cast<unsigned long long>(t.with_faults),
      static_cast<unsigned long long>(t.full_collections));
  EXPECT_GE(t.cycles, 2 * t.n);
  EXPECT_GT(t.freed, t.n);
  EXPECT_GT(t.faults, t.n) << "barrier faults (pages scanned for the mutator)";
  EXPECT_GT(t.with_faults * 2, t.n) << "schedules with at least one barrier fault";
}

TEST(IncrementalOracle, SurvivorsMatchTheShadowAcrossSchedules) {
  Totals t = run_schedules(Variant::kIncremental, 0);
  expect_exercised(t);
}

TEST(IncrementalOracle, HoldsWithIncrementalCollectionOff) {
  Totals t = run_schedules(Variant::kNonIncremental, 1u << 20);
  expect_exercised(t);
  // Allocation crossed the trigger: whole collections ran inside alloc(), and the oracle followed.
  EXPECT_GT(t.full_collections, t.n / 4);
}

// collect() in the middle of an incremental cycle: the rest of the cycle runs stop-the-world
// without a barrier (no thread is registered), after the protected pages were all unprotected.
TEST(IncrementalOracle, HoldsWhenCollectFinishesACycleMidway) {
  Totals t = run_schedules(Variant::kCollectMidCycle, 4u << 20, kDefaultSchedules / 2);
  EXPECT_GT(t.mid_cycle_collects, t.n / 2);
  EXPECT_GE(t.cycles, 2 * t.n);
  EXPECT_GT(t.freed, t.n);
}

// mprotect failing (ENOMEM) mid-cycle: the pages it could not protect are scanned at once, so the
// barrier invariant still holds.
TEST(IncrementalOracle, HoldsWhenMprotectFailsEveryKthProtect) {
  Totals t = run_schedules(Variant::kFailingMprotect, 2u << 20, kDefaultSchedules / 2);
  EXPECT_GT(t.mprotect_failures, t.n);
  EXPECT_GE(t.cycles, 2 * t.n);
  EXPECT_GT(t.faults, 0u);
}

// Negative control: with a barrier that protects nothing, the same schedules must go wrong
// somewhere (the oracle reports it, or the heap verifier aborts). Run in a child process.
TEST(IncrementalOracle, NoticesACollectorWithoutABarrier) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  auto failed = [](int status) { return !(WIFEXITED(status) && WEXITSTATUS(status) == 0); };
  EXPECT_EXIT(
      {
        for (uint64_t i = 0; i < 300; ++i) {
          Result r = run_schedule(kDefaultSeed + (3u << 20) + i, Variant::kNoBarrier);
          if (!r.error.empty()) {
            fprintf(stderr, "oracle: %s\n", r.error.c_str());
            _exit(1);
          }
        }
        _exit(0);
      },
      failed, "oracle: |weakgc: fatal: verify");
}

}  // namespace
