// Pauses of incremental collection against one stop-the-world collection of the same live heap
// (DESIGN.md §9). Not a test: it never asserts.
//
// Heap: `objects` (default 4,194,303) 64-byte typed objects (vtable word, two Ref fields, five
// payload words): 256 MiB live. Two shapes:
//   tree    one complete binary tree built bottom-up (children next to their parents in memory)
//   random  reference l follows a random permutation (every object reachable from the root),
//           reference r names a uniformly random object: the worst case for page protection
// The arena is incremental (ArenaOptions::incremental = 1, pause target 1 ms) with a trigger
// above the heap, so no cycle starts while the heap is built; the measured cycle is started with
// start_cycle() and driven by a mutator until it completes:
//   alloc   allocation-paced increments only (the collector's own pacing)
//   step    the same plus arena.step(1'000'000) after every 100 walks
// The mutator repeats one "walk": from the root, 20 steps down a random path reading a payload
// word of each object (a read of a grey object's page faults), then it replaces the child of the
// last object with a fresh copy and allocates 4 garbage objects (320 bytes per walk).
//
// Measured, per repetition (a fresh arena each):
//   - the collector's own histograms (Arena::stats()): flip_pauses, increment_pauses,
//     fault_pauses (time inside the SIGSEGV handler: not the kernel's signal delivery),
//   - the mutator's view: the latency of each walk while the cycle runs (faults, increments and
//     signal delivery included) against walks with no cycle in progress, in wall time and in
//     the thread's CPU time (user + system: mprotect included, time spent preempted excluded;
//     on a shared machine the wall-time maxima are mostly other processes' time slices, and the
//     involuntary context switches during the cycle are counted to show it),
//   - then arena.collect() on the same heap: full_pauses (the stop-the-world baseline).
//
// Usage: pause_bench [tree|random [alloc|step [objects [reps]]]]
#include <sys/resource.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "weakgc/gc.hpp"

namespace {

uint64_t now_ns() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

// CPU time of this thread (user + system).
uint64_t cpu_ns() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000 + static_cast<uint64_t>(ts.tv_nsec);
}

long involuntary_switches() {
  rusage ru;
  getrusage(RUSAGE_THREAD, &ru);
  return ru.ru_nivcsw;
}

struct Node : weakgc::GcObject {
  weakgc::Ref<Node> l;
  weakgc::Ref<Node> r;
  uint64_t payload[5] = {};
  Node() = default;
  Node(Node* a, Node* b) : l(a), r(b) {}
  void trace(weakgc::Visitor& v) const override {
    v.visit(l);
    v.visit(r);
  }
};
static_assert(sizeof(Node) == 64);

Node* make_tree(weakgc::Arena& a, int depth, uint64_t* count) {
  ++*count;
  if (depth == 0) return weakgc::make<Node>(a);
  Node* l = make_tree(a, depth - 1, count);
  Node* r = make_tree(a, depth - 1, count);
  return weakgc::make<Node>(a, l, r);
}

Node* make_random(weakgc::Arena& a, size_t n, std::mt19937_64& rng) {
  // The node table lives outside the heap: an exact root while the graph is linked.
  std::vector<Node*> nodes(n);
  weakgc::RootId rid;
  (void)a.register_root(reinterpret_cast<void**>(nodes.data()), n, &rid);
  for (size_t i = 0; i < n; ++i) nodes[i] = weakgc::make<Node>(a);
  std::vector<uint32_t> perm(n);
  for (size_t i = 0; i < n; ++i) perm[i] = static_cast<uint32_t>(i);
  std::shuffle(perm.begin(), perm.end(), rng);
  std::uniform_int_distribution<size_t> pick(0, n - 1);
  for (size_t i = 0; i + 1 < n; ++i) nodes[perm[i]]->l = nodes[perm[i + 1]];
  for (size_t i = 0; i < n; ++i) nodes[i]->r = nodes[pick(rng)];
  Node* root = nodes[perm[0]];
  (void)a.remove_root(rid);
  return root;
}

constexpr int kWalkDepth = 20;  // ends on a parent of leaves in the tree

// One walk (see the header); returns a value depending on what was read.
__attribute__((noinline)) uint64_t walk(weakgc::Arena& a, Node* root, uint64_t bits) {
  uint64_t sum = 0;
  Node* n = root;
  for (int d = 0; d < kWalkDepth; ++d) {
    sum += n->payload[d % 5];
    Node* next = ((bits >> d) & 1) ? n->r.get() : n->l.get();
    if (next == nullptr) break;
    n = next;
  }
  if (Node* c = n->l.get()) {
    Node* copy = weakgc::make<Node>(a, c->l.get(), c->r.get());
    copy->payload[0] = c->payload[0] + 1;
    n->l = copy;
  }
  for (int k = 0; k < 4; ++k) weakgc::keep_alive(weakgc::make<Node>(a));
  return sum;
}

struct Rep {
  double build_ms = 0;
  double cycle_ms = 0;  // wall time from start_cycle() to the cycle's end
  uint64_t walks = 0;
  weakgc::Stats inc;                     // stats at the end of the incremental cycle
  weakgc::PauseHistogram walk_busy;      // walk latency while the cycle runs
  weakgc::PauseHistogram walk_idle;      // walk latency with no cycle in progress
  weakgc::PauseHistogram walk_busy_cpu;  // the same in thread CPU time
  weakgc::PauseHistogram walk_idle_cpu;
  weakgc::PauseHistogram step_wall;  // explicit step() calls (step driver)
  weakgc::PauseHistogram step_cpu;
  long preempted = 0;       // involuntary context switches during the cycle
  uint64_t stw_ns = 0;      // full_pauses.max_ns of the collect() after
  uint64_t stw_marked = 0;  // bytes marked by it
  uint64_t check = 0;
  uint64_t max_pause() const {
    return std::max({inc.flip_pauses.max_ns, inc.increment_pauses.max_ns, inc.fault_pauses.max_ns});
  }
};

Rep run(const std::string& shape, const std::string& driver, size_t objects, uint64_t seed) {
  Rep rep;
  weakgc::ArenaOptions o;
  o.incremental = 1;
  o.pause_target_ms = 1.0;
  o.trigger_bytes = size_t{1} << 40;  // no automatic cycle: the measured one is started by hand
  weakgc::Arena a(o);
  std::mt19937_64 rng(seed);
  uint64_t t0 = now_ns();
  weakgc::Root<Node> root(a);
  if (shape == "tree") {
    int depth = 0;
    while ((uint64_t{2} << (depth + 1)) - 1 <= objects) ++depth;
    uint64_t count = 0;
    root = make_tree(a, depth, &count);
  } else {
    root = make_random(a, objects, rng);
  }
  rep.build_ms = static_cast<double>(now_ns() - t0) / 1e6;

  // Idle walks: the mutator's latency without a collection (same code, same heap).
  for (int i = 0; i < 20000; ++i) {
    uint64_t c0 = cpu_ns(), w0 = now_ns();
    rep.check += walk(a, root.get(), rng());
    uint64_t w1 = now_ns(), c1 = cpu_ns();
    rep.walk_idle.record(w1 - w0);
    rep.walk_idle_cpu.record(c1 - c0);
  }

  bool step = driver == "step";
  long sw0 = involuntary_switches();
  uint64_t start = now_ns();
  a.start_cycle();
  while (a.phase() != weakgc::Phase::kIdle) {
    uint64_t c0 = cpu_ns(), w0 = now_ns();
    rep.check += walk(a, root.get(), rng());
    uint64_t w1 = now_ns(), c1 = cpu_ns();
    rep.walk_busy.record(w1 - w0);
    rep.walk_busy_cpu.record(c1 - c0);
    ++rep.walks;
    if (step && rep.walks % 100 == 0) {
      (void)a.step(1'000'000);
      uint64_t w2 = now_ns(), c2 = cpu_ns();
      rep.step_wall.record(w2 - w1);
      rep.step_cpu.record(c2 - c1);
    }
  }
  rep.cycle_ms = static_cast<double>(now_ns() - start) / 1e6;
  rep.preempted = involuntary_switches() - sw0;
  rep.inc = a.stats();

  a.collect();
  weakgc::Stats s = a.stats();
  rep.stw_ns = s.full_pauses.max_ns;
  rep.stw_marked = s.bytes_marked - rep.inc.bytes_marked;
  return rep;
}

double ms(uint64_t ns) {
  return static_cast<double>(ns) / 1e6;
}

void print_hist(const char* name, const weakgc::PauseHistogram& h) {
  std::printf("    %-18s n=%-8llu p50<=%8.3f  p99<=%8.3f  max %8.3f  total %9.1f ms\n", name,
              static_cast<unsigned long long>(h.count), ms(h.quantile_ns(0.5)),
              ms(h.quantile_ns(0.99)), ms(h.max_ns), ms(h.total_ns));
}

void print_rep(int i, const Rep& r) {
  const weakgc::Stats& s = r.inc;
  std::printf("  rep %d: build %.0f ms; cycle %.0f ms wall, %llu walks; marked %.1f MB\n", i,
              r.build_ms, r.cycle_ms, static_cast<unsigned long long>(r.walks),
              static_cast<double>(s.bytes_marked) / 1e6);
  print_hist("flip", s.flip_pauses);
  print_hist("increment", s.increment_pauses);
  print_hist("fault", s.fault_pauses);
  print_hist("walk in cycle", r.walk_busy);
  print_hist("walk in cycle, cpu", r.walk_busy_cpu);
  print_hist("walk idle", r.walk_idle);
  print_hist("walk idle, cpu", r.walk_idle_cpu);
  if (r.step_wall.count != 0) {
    print_hist("step() call", r.step_wall);
    print_hist("step() call, cpu", r.step_cpu);
  }
  std::printf(
      "    faults scanned %llu; mprotect calls %llu (failed %llu), pages protected %llu; "
      "preempted %ld times during the cycle\n",
      static_cast<unsigned long long>(s.faults_scanned),
      static_cast<unsigned long long>(s.mprotect_calls),
      static_cast<unsigned long long>(s.mprotect_failures),
      static_cast<unsigned long long>(s.pages_protected), r.preempted);
  std::printf(
      "    max pause %.3f ms (flip %.3f, increment %.3f, fault %.3f); STW collect() %.1f ms "
      "(marked %.1f MB)\n",
      ms(r.max_pause()), ms(s.flip_pauses.max_ns), ms(s.increment_pauses.max_ns),
      ms(s.fault_pauses.max_ns), ms(r.stw_ns), static_cast<double>(r.stw_marked) / 1e6);
}

template <class F>
double median_of(const std::vector<Rep>& reps, F f) {
  std::vector<double> v;
  for (const Rep& r : reps) v.push_back(f(r));
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  std::string shape = argc > 1 ? argv[1] : "tree";
  std::string driver = argc > 2 ? argv[2] : "alloc";
  size_t objects = argc > 3 ? static_cast<size_t>(std::max(1000L, atol(argv[3]))) : 4194303;
  int nreps = argc > 4 ? std::max(1, atoi(argv[4])) : 3;
  if ((shape != "tree" && shape != "random") || (driver != "alloc" && driver != "step")) {
    std::fprintf(stderr, "usage: pause_bench [tree|random [alloc|step [objects [reps]]]]\n");
    return 2;
  }
  std::printf(
      "pause_bench: shape %s, driver %s, %zu objects of 64 B (%.0f MiB), pause target 1 ms\n",
      shape.c_str(), driver.c_str(), objects, static_cast<double>(objects) * 64 / (1 << 20));
  std::vector<Rep> reps;
  for (int i = 0; i < nreps; ++i) {
    reps.push_back(run(shape, driver, objects, 0x5eed'0100 + static_cast<uint64_t>(i)));
    print_rep(i + 1, reps.back());
  }
  double maxp = median_of(reps, [](const Rep& r) { return ms(r.max_pause()); });
  double flip = median_of(reps, [](const Rep& r) { return ms(r.inc.flip_pauses.max_ns); });
  double incmax = median_of(reps, [](const Rep& r) { return ms(r.inc.increment_pauses.max_ns); });
  double inc99 =
      median_of(reps, [](const Rep& r) { return ms(r.inc.increment_pauses.quantile_ns(0.99)); });
  double fmax = median_of(reps, [](const Rep& r) { return ms(r.inc.fault_pauses.max_ns); });
  double f99 =
      median_of(reps, [](const Rep& r) { return ms(r.inc.fault_pauses.quantile_ns(0.99)); });
  double wmax = median_of(reps, [](const Rep& r) { return ms(r.walk_busy.max_ns); });
  double w99 = median_of(reps, [](const Rep& r) { return ms(r.walk_busy.quantile_ns(0.99)); });
  double wimax = median_of(reps, [](const Rep& r) { return ms(r.walk_idle.max_ns); });
  double wcmax = median_of(reps, [](const Rep& r) { return ms(r.walk_busy_cpu.max_ns); });
  double wc99 = median_of(reps, [](const Rep& r) { return ms(r.walk_busy_cpu.quantile_ns(0.99)); });
  double stw = median_of(reps, [](const Rep& r) { return ms(r.stw_ns); });
  std::printf(
      "median of %d: max pause %.3f ms (flip %.3f, increment max %.3f p99 %.3f, fault max "
      "%.3f p99 %.3f); walk in cycle max %.3f p99 %.3f (idle max %.3f), in cpu time max "
      "%.3f p99 %.3f; STW %.1f ms; STW / max pause = %.0f\n",
      nreps, maxp, flip, incmax, inc99, fmax, f99, wmax, w99, wimax, wcmax, wc99, stw, stw / maxp);
  std::printf(
      "RESULT pause_bench shape=%s driver=%s max_pause_ms=%.3f flip_ms=%.3f "
      "inc_max_ms=%.3f inc_p99_ms=%.3f fault_max_ms=%.3f fault_p99_ms=%.3f "
      "walk_max_ms=%.3f walk_p99_ms=%.3f walk_cpu_max_ms=%.3f walk_cpu_p99_ms=%.3f "
      "stw_ms=%.1f stw/max=%.0f\n",
      shape.c_str(), driver.c_str(), maxp, flip, incmax, inc99, fmax, f99, wmax, w99, wcmax, wc99,
      stw, stw / maxp);
  return 0;
}
