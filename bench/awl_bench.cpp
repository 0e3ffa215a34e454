// Retention of dead weak entries and the cost of the weak-page barrier (issue 5), measured side
// by side in one process (DESIGN.md §9). Not a test: it never asserts.
//
// Workload (the retention test's, tests/awl_retention_test.cpp): a weak-key table of N entries
// (default 100,000; key array at weak rank, value array at exact rank, each the other's
// dependent; keys and values are 16-byte client-format objects in an AMS pool). Keys at odd
// indices are dead, so live and dead keys are interleaved on every page. A cycle starts; while it
// is marking, the mutator gathers live keys with ordinary compiled loads
// (`mov reg, [base + index*8 + 32]`) in 10 bursts with a 10 us collector step between bursts;
// the cycle then runs to its end. Three load patterns:
//   uniform-10%   a random 10% of the live keys once each (~25 loads per weak page)
//   uniform-100%  every live key once, in random order (~255 loads per weak page)
//   hot           N/10 loads of live keys on a random 10% of the pages (~500 per page)
// Configurations: emulation forced off (every touched page scanned at exact rank) and on with a
// per-page single-access budget of 16, 64, 256 (the default) and 1024.
//
// Columns (medians over the repetitions):
//   cleared     dead entries splatted at the end of the cycle / dead entries
//   faults      barrier faults on the key array during marking, and how they ended:
//               emulated, declined (emulation refused or off: page scanned at exact rank),
//               budget (budget used up: page scanned at exact rank)
//   coverage    emulated / weak-page faults (target >= 99% when the budget is not the limit)
//   handler     time inside the fault handler (Stats::fault_pauses.total_ns), in ms
//   per fault   handler time / faults, in us
//   mut/fault   mutator time / faults, in us: what one fault costs the mutator (signal delivery
//               and return included)
//   mutator     wall time of the mutator's bursts (kernel signal delivery + handler + loads), ms
//   cycle       wall time from start_cycle to the end of the sweep, bursts included, ms
//
// Usage: awl_bench [entries [repetitions]]
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <unordered_set>
#include <vector>

#include "weakgc/arena.hpp"
#include "weakgc/weak_array.hpp"

namespace {

uint64_t now_ns() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

struct Obj {
  uint64_t id;
  void* next;
};

void scan_obj(weakgc::ScanState& ss, void* obj, size_t, void*) {
  ss.fix(&static_cast<Obj*>(obj)->next);
}

// The mutator's gather: plain loads of weak slots.
__attribute__((noinline)) void gather(const weakgc::WeakArray* keys, const uint32_t* index,
                                      size_t n, uintptr_t* out) {
  for (size_t j = 0; j < n; ++j) out[j] = keys->slot[index[j]];
}

enum class Pattern { kUniform10, kUniform100, kHot };

const char* pattern_name(Pattern p) {
  switch (p) {
    case Pattern::kUniform10:
      return "uniform-10%";
    case Pattern::kUniform100:
      return "uniform-100%";
    case Pattern::kHot:
      return "hot";
  }
  return "?";
}

struct Config {
  bool emulation;
  uint32_t budget;
  Pattern pattern;
};

struct Sample {
  double cleared_pct = 0;
  double emulated = 0, declined = 0, budget = 0, weak_phase = 0;
  double coverage_pct = 0;
  double handler_ms = 0, per_fault_us = 0, mutator_ms = 0, mutator_us_per_fault = 0;
  double cycle_ms = 0;
  double loads = 0;
};

Sample run(size_t n, const Config& cfg, uint64_t seed) {
  weakgc::ArenaOptions o;
  o.register_thread = false;
  o.incremental = 1;
  o.trigger_bytes = size_t{1} << 30;
  o.emulation = cfg.emulation;
  o.single_access_budget = cfg.budget;
  weakgc::Arena arena(o);
  weakgc::Format fmt;
  fmt.scan = &scan_obj;
  weakgc::Pool* pool = nullptr;
  if (arena.create_pool(weakgc::PoolClass::kAMS, &fmt, &pool) != weakgc::Status::kOk) abort();
  std::vector<void*> roots(n / 2 + 4, nullptr);
  weakgc::RootId rid;
  if (arena.register_root(roots.data(), roots.size(), &rid) != weakgc::Status::kOk) abort();
  weakgc::WeakArray *keys = nullptr, *values = nullptr;
  if (weakgc::alloc_weak_array(arena, n, weakgc::Rank::kWeak, nullptr, &keys) !=
          weakgc::Status::kOk ||
      weakgc::alloc_weak_array(arena, n, weakgc::Rank::kExact, keys, &values) !=
          weakgc::Status::kOk ||
      weakgc::link_dependents(arena, keys, values) != weakgc::Status::kOk)
    abort();
  size_t r = 0;
  roots[r++] = keys;
  roots[r++] = values;
  for (size_t i = 0; i < n; ++i) {
    void *k, *v;
    if (arena.alloc(pool, sizeof(Obj), &k) != weakgc::Status::kOk ||
        arena.alloc(pool, sizeof(Obj), &v) != weakgc::Status::kOk)
      abort();
    static_cast<Obj*>(k)->id = 2 * i;
    static_cast<Obj*>(v)->id = 2 * i + 1;
    keys->slot[i] = reinterpret_cast<uintptr_t>(k);
    values->slot[i] = reinterpret_cast<uintptr_t>(v);
    if (i % 2 == 0) roots[r++] = k;
  }

  std::mt19937_64 rng(seed);
  std::vector<uint32_t> idx;
  if (cfg.pattern == Pattern::kHot) {
    // A random 10% of the pages; loads of live keys on them only.
    size_t first_slot_page = (reinterpret_cast<uintptr_t>(&keys->slot[0]) >> 12);
    size_t pages = (reinterpret_cast<uintptr_t>(&keys->slot[n - 1]) >> 12) - first_slot_page + 1;
    std::vector<size_t> page_ids(pages);
    for (size_t p = 0; p < pages; ++p) page_ids[p] = p;
    std::shuffle(page_ids.begin(), page_ids.end(), rng);
    page_ids.resize(std::max<size_t>(1, pages / 10));
    std::vector<uint32_t> candidates;
    for (size_t p : page_ids) {
      uintptr_t lo = (first_slot_page + p) << 12, hi = lo + 4096;
      for (size_t i = 0; i < n; i += 2) {
        uintptr_t a = reinterpret_cast<uintptr_t>(&keys->slot[i]);
        if (a >= lo && a < hi) candidates.push_back(static_cast<uint32_t>(i));
      }
    }
    size_t loads = n / 10;
    for (size_t j = 0; j < loads; ++j) idx.push_back(candidates[rng() % candidates.size()]);
  } else {
    for (uint32_t i = 0; i < n; i += 2) idx.push_back(i);
    std::shuffle(idx.begin(), idx.end(), rng);
    if (cfg.pattern == Pattern::kUniform10) idx.resize(idx.size() / 10);
  }
  std::vector<uintptr_t> out(idx.size());

  weakgc::Stats before = arena.stats();
  uint64_t t_cycle = now_ns();
  arena.start_cycle();
  uint64_t mutator = 0;
  constexpr size_t kBursts = 10;
  size_t per = idx.size() / kBursts;
  size_t late = 0;  // bursts that found marking over (the workload did not hold)
  for (size_t b = 0; b < kBursts; ++b) {
    size_t lo = b * per, cnt = b + 1 == kBursts ? idx.size() - lo : per;
    late += arena.phase() != weakgc::Phase::kMark;
    uint64_t t0 = now_ns();
    gather(keys, idx.data() + lo, cnt, out.data() + lo);
    mutator += now_ns() - t0;
    arena.step(10000);
  }
  if (late > 0) fprintf(stderr, "warning: %zu bursts ran after marking ended\n", late);
  weakgc::Stats mid = arena.stats();
  while (arena.step(1000000)) {
  }
  uint64_t cycle = now_ns() - t_cycle;
  weakgc::Stats after = arena.stats();

  size_t dead = 0, cleared = 0;
  for (size_t i = 1; i < n; i += 2) {
    ++dead;
    cleared += keys->slot[i] == weakgc::kDeleted;
  }
  Sample s;
  s.loads = static_cast<double>(idx.size());
  s.cleared_pct = 100.0 * static_cast<double>(cleared) / static_cast<double>(dead);
  s.emulated = static_cast<double>(mid.faults_emulated - before.faults_emulated);
  s.declined = static_cast<double>(mid.faults_declined - before.faults_declined);
  s.budget = static_cast<double>(mid.faults_budget - before.faults_budget);
  s.weak_phase = static_cast<double>(after.faults_weak_phase - before.faults_weak_phase);
  double faults = s.emulated + s.declined + s.budget;
  s.coverage_pct = faults > 0 ? 100.0 * s.emulated / faults : 0;
  double handler = static_cast<double>(mid.fault_pauses.total_ns - before.fault_pauses.total_ns);
  s.handler_ms = handler / 1e6;
  s.per_fault_us = faults > 0 ? handler / faults / 1e3 : 0;
  s.mutator_ms = static_cast<double>(mutator) / 1e6;
  s.mutator_us_per_fault = faults > 0 ? static_cast<double>(mutator) / faults / 1e3 : 0;
  s.cycle_ms = static_cast<double>(cycle) / 1e6;
  volatile uintptr_t sink = 0;
  for (uintptr_t v : out) sink = sink + v;
  return s;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  size_t n = argc > 1 ? strtoull(argv[1], nullptr, 0) : 100000;
  int reps = argc > 2 ? atoi(argv[2]) : 3;
  if (n < 1000 || reps < 1) {
    fprintf(stderr, "usage: awl_bench [entries >= 1000 [repetitions >= 1]]\n");
    return 2;
  }
  printf(
      "awl_bench: weak-key table of %zu entries (half dead, interleaved), %d repetitions "
      "(interleaved across configurations), medians\n\n",
      n, reps);
  std::vector<Config> configs;
  for (Pattern p : {Pattern::kUniform10, Pattern::kUniform100, Pattern::kHot}) {
    configs.push_back({false, 0, p});
    for (uint32_t b : {16u, 64u, 256u, 1024u}) configs.push_back({true, b, p});
  }
  // Repetition r of every configuration runs before repetition r + 1 of any, so that a change
  // in machine load spreads over all configurations instead of biasing one.
  std::vector<std::vector<Sample>> samples(configs.size());
  for (int r = 0; r < reps; ++r)
    for (size_t c = 0; c < configs.size(); ++c)
      samples[c].push_back(run(n, configs[c], 0x5eed + static_cast<uint64_t>(r)));

  const char* fmt_h = "%-13s %-9s %7s %8s %9s %8s %7s %9s %8s %9s %8s %9s %8s\n";
  printf(fmt_h, "pattern", "emulation", "loads", "cleared", "emulated", "declined", "budget",
         "coverage", "handler", "per fault", "mutator", "mut/fault", "cycle");
  printf(fmt_h, "", "", "", "%", "faults", "faults", "faults", "%", "ms", "us", "ms", "us", "ms");
  for (size_t c = 0; c < configs.size(); ++c) {
    if (c > 0 && configs[c].pattern != configs[c - 1].pattern) printf("\n");
    auto med = [&](double Sample::*f) {
      std::vector<double> v;
      for (const Sample& s : samples[c]) v.push_back(s.*f);
      return median(v);
    };
    std::string emu = configs[c].emulation ? "on/" + std::to_string(configs[c].budget) : "off";
    printf("%-13s %-9s %7.0f %8.2f %9.0f %8.0f %7.0f %9.2f %8.2f %9.2f %8.2f %9.2f %8.2f\n",
           pattern_name(configs[c].pattern), emu.c_str(), med(&Sample::loads),
           med(&Sample::cleared_pct), med(&Sample::emulated), med(&Sample::declined),
           med(&Sample::budget), med(&Sample::coverage_pct), med(&Sample::handler_ms),
           med(&Sample::per_fault_us), med(&Sample::mutator_ms), med(&Sample::mutator_us_per_fault),
           med(&Sample::cycle_ms));
  }
  return 0;
}
