// Several mutator threads (issue 7; docs/benchmarks/threads.md). Not a test: it never asserts.
//
//  BM_Intern*       intern() of names already interned (and held), random order over 10,000
//                   names: ConcurrentInternSet on 1, 2 and 4 threads (shared lock only), and the
//                   lock-free InternSet on 1 and 2 threads — the latter is safe here only because
//                   nothing writes (.inv.read-only: lookups write no table state) and is the
//                   machine's ceiling: what 2 threads reach without any shared write.
//                   items_per_second is the total over all threads.
//  BM_WeakKeyGet*   get() of live keys of a 10,000-entry weak-key table, random order: the same
//                   pairs (WeakKeyTable as the ceiling, ConcurrentWeakKeyTable).
//  BM_BarrierFault  a page-scan barrier fault on a grey object page (one 4 KiB object per page,
//                   as barrier_bench's weakgc-1obj), per fault as the mutator sees it: the main
//                   thread touches `kFaultPages` grey pages after start_cycle(); alone, with a
//                   second registered thread idle (blocked), and with a second registered thread
//                   in a busy loop storing into its own objects.
//
// No collection runs during the throughput benchmarks (hits only: nothing is allocated).
#include <benchmark/benchmark.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "weakgc/concurrent_tables.hpp"

namespace {

using weakgc::Arena;

constexpr size_t kNames = 10'000;
constexpr size_t kKeys = 10'000;
constexpr size_t kFaultPages = 512;

struct Obj : weakgc::GcObject {
  uint64_t id = 0;
  weakgc::Ref<Obj> next;
  void trace(weakgc::Visitor& v) const override { v.visit(next); }
};

struct Big : weakgc::GcObject {
  weakgc::Ref<Big> a;
  char pad[4096 - 16] = {};
  void trace(weakgc::Visitor& v) const override { v.visit(a); }
};
static_assert(sizeof(Big) == 4096);

uint64_t now_ns() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

// A per-thread random index (xorshift: cheaper than the operation measured).
struct Index {
  uint64_t x;
  explicit Index(int thread) : x(0x9e3779b97f4a7c15ULL * static_cast<uint64_t>(thread + 1)) {}
  size_t next(size_t n) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return static_cast<size_t>(x % n);
  }
};

// An exact root array in malloc'd memory.
struct Roots {
  std::vector<void*> slots;
  Roots(Arena& arena, size_t n) : slots(n, nullptr) {
    weakgc::RootId id;
    (void)arena.register_root(slots.data(), slots.size(), &id);
  }
};

// The shared state of the throughput benchmarks, made once by the main thread.
struct World {
  Arena arena;
  std::vector<std::string> names;
  weakgc::InternSet plain_set{arena};
  weakgc::ConcurrentInternSet set{arena};
  weakgc::WeakKeyTable<Obj, Obj> plain_table{arena};
  weakgc::ConcurrentWeakKeyTable<Obj, Obj> table{arena};
  Roots held{arena, kNames * 2 + kKeys * 2};
  std::vector<Obj*> keys;

  World() : arena(options()) {
    for (size_t i = 0; i < kNames; ++i) {
      names.push_back("symbol-" + std::to_string(i * 7919));
      held.slots[2 * i] = plain_set.intern(names.back());
      held.slots[2 * i + 1] = set.intern(names.back());
    }
    for (size_t i = 0; i < kKeys; ++i) {
      Obj* k = weakgc::make<Obj>(arena);
      k->id = i;
      held.slots[2 * kNames + 2 * i] = k;
      Obj* v = weakgc::make<Obj>(arena);
      v->id = i;
      held.slots[2 * kNames + 2 * i + 1] = v;
      plain_table.put(k, v);
      table.put(k, v);
      keys.push_back(k);
    }
    arena.collect();
  }
  static weakgc::ArenaOptions options() {
    weakgc::ArenaOptions o;
    o.incremental = 1;
    return o;
  }
};

World* g_world = nullptr;

void BM_InternPlain(benchmark::State& state) {
  Index ix(state.thread_index());
  for (auto _ : state) {
    weakgc::Symbol* s = g_world->plain_set.intern(g_world->names[ix.next(kNames)]);
    benchmark::DoNotOptimize(s);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_InternPlain)->Threads(1)->Threads(2)->UseRealTime();

void BM_InternConcurrent(benchmark::State& state) {
  weakgc::ThreadScope scope(g_world->arena);
  Index ix(state.thread_index());
  for (auto _ : state) {
    weakgc::Symbol* s = g_world->set.intern(g_world->names[ix.next(kNames)]);
    benchmark::DoNotOptimize(s);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_InternConcurrent)->Threads(1)->Threads(2)->Threads(4)->UseRealTime();

void BM_WeakKeyGetPlain(benchmark::State& state) {
  Index ix(state.thread_index());
  for (auto _ : state) {
    Obj* v = g_world->plain_table.get(g_world->keys[ix.next(kKeys)]);
    benchmark::DoNotOptimize(v);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_WeakKeyGetPlain)->Threads(1)->Threads(2)->UseRealTime();

void BM_WeakKeyGetConcurrent(benchmark::State& state) {
  weakgc::ThreadScope scope(g_world->arena);
  Index ix(state.thread_index());
  for (auto _ : state) {
    Obj* v = g_world->table.get(g_world->keys[ix.next(kKeys)]);
    benchmark::DoNotOptimize(v);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_WeakKeyGetConcurrent)->Threads(1)->Threads(2)->Threads(4)->UseRealTime();

// ------------------------------------------------------------------------------ barrier faults

// A second registered thread: idle (blocked on a condition variable) or busy (storing into its
// own 64 objects in a loop, never allocating).
class Companion {
 public:
  enum Mode { kNone, kIdle, kBusy };
  Companion(Arena& arena, Mode mode) : mode_(mode) {
    if (mode == kNone) return;
    thread_ = std::thread([this, &arena] {
      weakgc::ThreadScope scope(arena);
      Roots own(arena, 64);
      for (auto& s : own.slots) s = weakgc::make<Obj>(arena);
      {
        std::lock_guard g(mu_);
        ready_ = true;
      }
      cv_.notify_all();
      if (mode_ == kBusy) {
        uint64_t i = 0;
        while (!stop_.load(std::memory_order_relaxed)) {
          auto* a = static_cast<Obj*>(own.slots[i % 64]);
          a->next = static_cast<Obj*>(own.slots[(i * 7 + 3) % 64]);
          a->id = i++;
        }
      } else {
        std::unique_lock g(mu_);
        cv_.wait(g, [this] { return stop_.load(); });
      }
    });
    std::unique_lock g(mu_);
    cv_.wait(g, [this] { return ready_; });
  }
  ~Companion() {
    if (mode_ == kNone) return;
    {
      std::lock_guard g(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  Mode mode_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool ready_ = false;
  std::atomic<bool> stop_{false};
};

// kFaultPages grey 4 KiB objects, one per page, each named by an exact root.
struct FaultPages {
  std::unique_ptr<Arena> arena;
  std::unique_ptr<Roots> roots;
  FaultPages() {
    weakgc::ArenaOptions o;
    o.incremental = 1;
    o.trigger_bytes = size_t{1} << 40;  // cycles only when the benchmark starts them
    arena = std::make_unique<Arena>(o);
    roots = std::make_unique<Roots>(*arena, kFaultPages);
    for (auto& s : roots->slots) s = weakgc::make<Big>(*arena);
    arena->collect();
  }
};

void BM_BarrierFault(benchmark::State& state) {
  FaultPages fp;
  Arena& arena = *fp.arena;
  Companion companion(arena, static_cast<Companion::Mode>(state.range(0)));
  uint64_t touch_ns = 0, faults = 0, handler_ns = 0;
  for (auto _ : state) {
    weakgc::Stats s0 = arena.stats();
    arena.start_cycle();
    uint64_t t0 = now_ns();
    for (void* p : fp.roots->slots)
      benchmark::DoNotOptimize(*(static_cast<volatile uint64_t*>(p) + 8));
    uint64_t t1 = now_ns();
    weakgc::Stats s1 = arena.stats();
    while (arena.step(1'000'000'000)) {
    }
    state.SetIterationTime(static_cast<double>(t1 - t0) * 1e-9);
    touch_ns += t1 - t0;
    faults += s1.fault_pauses.count - s0.fault_pauses.count;
    handler_ns += s1.fault_pauses.total_ns - s0.fault_pauses.total_ns;
  }
  double rounds = static_cast<double>(state.iterations());
  state.counters["ns_per_fault"] =
      static_cast<double>(touch_ns) / (rounds * static_cast<double>(kFaultPages));
  state.counters["handler_ns"] =
      faults == 0 ? 0 : static_cast<double>(handler_ns) / static_cast<double>(faults);
  state.counters["faults_per_page"] =
      static_cast<double>(faults) / (rounds * static_cast<double>(kFaultPages));
}
BENCHMARK(BM_BarrierFault)
    ->ArgName("companion")  // 0 alone, 1 idle registered thread, 2 busy registered thread
    ->Arg(Companion::kNone)
    ->Arg(Companion::kIdle)
    ->Arg(Companion::kBusy)
    ->UseManualTime()
    ->Iterations(200);

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  World world;
  g_world = &world;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  g_world = nullptr;
  return 0;
}
