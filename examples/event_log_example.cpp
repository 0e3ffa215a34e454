// The event log in use: a small allocating workload (a rolling window of live objects, a weak
// cache that is read while the collector marks) that writes the collector's event log, for
// tools/plot_events.py to turn into pictures (docs/img/). Not a benchmark.
//
//   event_log_example [log-path] [megabytes]
//
// The log is started through the environment (WEAKGC_EVENT_LOG=<path>), which works for any
// program without a code change; the C API's weakgc_event_log_start does the same explicitly.
// The file is written when the arena is destroyed.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "weakgc/gc.hpp"
#include "weakgc/weak_array.hpp"

namespace {

struct Node : weakgc::GcObject {
  weakgc::Ref<Node> next;
  uint64_t payload[6] = {};
  void trace(weakgc::Visitor& v) const override { v.visit(next); }
};

uint64_t g_rng = 0x9e3779b97f4a7c15ULL;
uint64_t rnd() {
  g_rng ^= g_rng >> 12;
  g_rng ^= g_rng << 25;
  g_rng ^= g_rng >> 27;
  return g_rng * 2685821657736338717ULL;
}

}  // namespace

int main(int argc, char** argv) {
  const char* path = argc > 1 ? argv[1] : "weakgc_events.bin";
  long megabytes = argc > 2 ? std::atol(argv[2]) : 256;
  setenv("WEAKGC_EVENT_LOG", path, 1);

  weakgc::ArenaOptions o;
  o.pause_target_ms = 0.5;
  o.trigger_bytes = size_t{4} << 20;
  o.incremental = 1;
  o.reserve_bytes = size_t{1} << 30;
  uint64_t checksum = 0;
  {
    weakgc::Arena arena(o);
    // A rolling window of live nodes (an exact root) and a weak cache naming recent nodes.
    constexpr size_t kWindow = 20000, kCache = 8192;
    std::vector<void*> window(kWindow, nullptr);
    weakgc::RootId window_root;
    if (arena.register_root(window.data(), window.size(), &window_root) != weakgc::Status::kOk)
      return 1;
    weakgc::WeakArray* cache = nullptr;
    if (weakgc::alloc_weak_array(arena, kCache, weakgc::Rank::kWeak, nullptr, &cache) !=
        weakgc::Status::kOk)
      return 1;
    weakgc::Root<weakgc::WeakArray> cache_root(arena, cache);

    size_t total = static_cast<size_t>(megabytes) << 20;
    for (size_t allocated = 0, i = 0; allocated < total; ++i) {
      Node* n = weakgc::make<Node>(arena);
      allocated += sizeof(Node);
      n->payload[0] = i;
      size_t w = rnd() % kWindow;
      n->next = static_cast<Node*>(window[(w + 1) % kWindow]);  // a little structure
      window[w] = n;
      if (i % 16 == 0) cache->slot[rnd() % kCache] = reinterpret_cast<uintptr_t>(n);
      if (i % 64 == 0) {
        // Look things up: reads of the weak cache while marking are emulated single accesses;
        // reads of window nodes on grey pages are barrier faults that scan the page.
        uintptr_t s = cache->slot[rnd() % kCache];
        if (s != weakgc::kEmpty && s != weakgc::kDeleted) checksum += s & 0xff;
        if (Node* m = static_cast<Node*>(window[rnd() % kWindow])) checksum += m->payload[0];
      }
      if (i % 4096 == 0) {
        allocated += 4096;
        weakgc::keep_alive(weakgc::make_leaf_bytes(arena, 4096));
      }
    }
    weakgc::Stats s = arena.stats();
    std::printf(
        "event_log_example: %lu cycles, %lu increments, faults: %lu scanned, %lu emulated, "
        "%lu declined, %lu weak-phase; %lu slots splatted (checksum %lu)\n",
        (unsigned long)s.cycles, (unsigned long)s.increments, (unsigned long)s.faults_scanned,
        (unsigned long)s.faults_emulated, (unsigned long)s.faults_declined,
        (unsigned long)s.faults_weak_phase, (unsigned long)s.slots_splatted,
        (unsigned long)checksum);
    (void)arena.remove_root(window_root);
  }  // the arena's destruction writes the event log
  std::printf("event_log_example: event log written to %s\n", path);
  return 0;
}
