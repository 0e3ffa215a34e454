// Finalization at scale (Arena::finalize / take_finalized) against the Boehm collector's
// GC_register_finalizer_no_order, in one process. Not a test: it never asserts.
//
// For n registered objects (default 1,000,000; 64-byte objects, all held by a root array):
//   register   ns per registration call, measured at n/100 and at n objects already registered
//              (a constant cost shows as a ratio near 1)
//   cycle      half the objects are dropped; one collection finds them and queues their
//              messages: weakgc's stop-the-world collect() and Boehm's GC_gcollect(), then
//              weakgc incrementally (1 ms steps): its longest increment against the 1 ms target
//   messages   how many finalization messages (weakgc) / finalizer calls (Boehm) arrived
//   flip       weakgc's flip with the n/2 messages left untaken, then taken (untaken messages
//              are roots, greyed by the first increments, not by the flip)
//
// Usage: finalize_bench [n]
#include <gc.h>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "weakgc/gc.hpp"

namespace {

uint64_t now_ns() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

struct Wrapper : weakgc::GcObject {
  uint64_t payload[6] = {};
};

struct WeakgcResult {
  double reg_small_ns = 0, reg_big_ns = 0;        // per registration, at n/100 and at n registered
  double collect_ms = 0;                          // collect() with n/2 dying
  double inc_max_ms = 0;                          // longest increment of an incremental cycle
  double inc_cycle_ms = 0;                        // that cycle, start to end
  double flip_untaken_ms = 0, flip_taken_ms = 0;  // a flip with the messages untaken / taken
  size_t messages_full = 0, messages_inc = 0;
};

weakgc::ArenaOptions options() {
  weakgc::ArenaOptions o;
  o.register_thread = false;          // exact roots only: nothing kept by the stack
  o.trigger_bytes = size_t{1} << 40;  // no cycle while the objects are made
  o.incremental = 1;
  return o;
}

// Registers objects [from, to) of `objs`; returns ns per call.
double register_range(weakgc::Arena& arena, std::vector<void*>& objs, size_t from, size_t to) {
  uint64_t t0 = now_ns();
  for (size_t i = from; i < to; ++i)
    if (arena.finalize(objs[i]) != weakgc::Status::kOk) std::abort();
  return static_cast<double>(now_ns() - t0) / static_cast<double>(to - from);
}

size_t take_all(weakgc::Arena& arena) {
  size_t n = 0;
  void* p;
  while (arena.take_finalized(&p)) ++n;
  return n;
}

WeakgcResult run_weakgc(size_t n) {
  WeakgcResult r;
  for (int run = 0; run < 2; ++run) {  // 0: stop-the-world cycle, 1: incremental
    weakgc::Arena arena(options());
    std::vector<void*> objs(n, nullptr);
    weakgc::RootId id;
    if (arena.register_root(objs.data(), n, &id) != weakgc::Status::kOk) std::abort();
    for (size_t i = 0; i < n; ++i) objs[i] = weakgc::make<Wrapper>(arena);
    size_t small = std::max<size_t>(n / 100, 1);
    double a = register_range(arena, objs, 0, small);
    register_range(arena, objs, small, n - small);
    double b = register_range(arena, objs, n - small, n);
    if (run == 0) {
      r.reg_small_ns = a;
      r.reg_big_ns = b;
    }
    for (size_t i = 0; i < n; i += 2) objs[i] = nullptr;
    uint64_t t0 = now_ns();
    if (run == 0) {
      arena.collect();
      r.collect_ms = static_cast<double>(now_ns() - t0) / 1e6;
      // The flip with the n/2 messages untaken, then with them taken (the root array is there
      // both times).
      for (int taken = 0; taken < 2; ++taken) {
        if (taken == 1) r.messages_full = take_all(arena);
        uint64_t f0 = now_ns();
        arena.start_cycle();
        (taken == 0 ? r.flip_untaken_ms : r.flip_taken_ms) =
            static_cast<double>(now_ns() - f0) / 1e6;
        while (arena.step(1'000'000)) {
        }
      }
    } else {
      uint64_t longest = 0;
      arena.start_cycle();
      for (bool more = true; more;) {
        uint64_t s = now_ns();
        more = arena.step(1'000'000);
        longest = std::max(longest, now_ns() - s);
      }
      r.inc_cycle_ms = static_cast<double>(now_ns() - t0) / 1e6;
      r.inc_max_ms = static_cast<double>(longest) / 1e6;
      r.messages_inc = take_all(arena);
    }
    (void)arena.remove_root(id);
  }
  return r;
}

size_t g_finalized = 0;
void count_finalizer(void*, void*) {
  ++g_finalized;
}

struct BoehmResult {
  double reg_small_ns = 0, reg_big_ns = 0, collect_ms = 0;
  size_t messages = 0;
};

BoehmResult run_boehm(size_t n) {
  BoehmResult r;
  auto** objs = static_cast<void**>(GC_MALLOC_UNCOLLECTABLE(n * sizeof(void*)));
  for (size_t i = 0; i < n; ++i) objs[i] = GC_MALLOC(64);
  size_t small = std::max<size_t>(n / 100, 1);
  auto reg = [&](size_t from, size_t to) {
    uint64_t t0 = now_ns();
    for (size_t i = from; i < to; ++i)
      GC_register_finalizer_no_order(objs[i], &count_finalizer, nullptr, nullptr, nullptr);
    return static_cast<double>(now_ns() - t0) / static_cast<double>(to - from);
  };
  r.reg_small_ns = reg(0, small);
  reg(small, n - small);
  r.reg_big_ns = reg(n - small, n);
  for (size_t i = 0; i < n; i += 2) objs[i] = nullptr;
  g_finalized = 0;
  uint64_t t0 = now_ns();
  GC_gcollect();
  r.collect_ms = static_cast<double>(now_ns() - t0) / 1e6;
  GC_invoke_finalizers();
  r.messages = g_finalized;
  GC_FREE(objs);
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  size_t n = argc > 1 ? std::max<size_t>(1000, std::strtoull(argv[1], nullptr, 0)) : 1000000;
  GC_set_finalize_on_demand(1);  // finalizers run in GC_invoke_finalizers, on this thread
  GC_INIT();
  std::printf("finalize_bench: %zu registered 64-byte objects, half of them dropped\n", n);
  WeakgcResult w = run_weakgc(n);
  BoehmResult b = run_boehm(n);
  std::printf(
      "  register, ns per call at %zu / %zu registered: weakgc %.1f / %.1f (x%.2f), "
      "Boehm %.1f / %.1f (x%.2f)\n",
      std::max<size_t>(n / 100, 1), n, w.reg_small_ns, w.reg_big_ns, w.reg_big_ns / w.reg_small_ns,
      b.reg_small_ns, b.reg_big_ns, b.reg_big_ns / b.reg_small_ns);
  std::printf(
      "  full collection: weakgc %.1f ms (%zu messages), Boehm %.1f ms (%zu finalizers); "
      "Boehm / weakgc = %.2f\n",
      w.collect_ms, w.messages_full, b.collect_ms, b.messages, b.collect_ms / w.collect_ms);
  std::printf(
      "  weakgc incremental: cycle %.1f ms, longest increment %.3f ms (target 1 ms), "
      "%zu messages\n",
      w.inc_cycle_ms, w.inc_max_ms, w.messages_inc);
  std::printf(
      "  weakgc flip (the %zu-word root array included): messages untaken %.3f ms, "
      "taken %.3f ms\n",
      n, w.flip_untaken_ms, w.flip_taken_ms);
  std::printf(
      "RESULT finalize_bench n=%zu weakgc_reg_ns=%.1f/%.1f boehm_reg_ns=%.1f/%.1f "
      "weakgc_collect_ms=%.1f boehm_collect_ms=%.1f weakgc_inc_max_ms=%.3f flip_untaken_ms=%.3f "
      "flip_taken_ms=%.3f\n",
      n, w.reg_small_ns, w.reg_big_ns, b.reg_small_ns, b.reg_big_ns, w.collect_ms, b.collect_ms,
      w.inc_max_ms, w.flip_untaken_ms, w.flip_taken_ms);
  return 0;
}
