// Finalization: a garbage-collected wrapper around malloc'ed memory (seeds 002 and 000).
//
// A Buffer is a heap object that owns a block of foreign memory. The block is not the GC's: the
// pointer to it is an ordinary field the trace() never reports, so the collector never takes it
// for a reference, even if malloc hands out an address that later lands near the arena. When a
// Buffer becomes unreachable the collector does not free the block (it runs no destructors);
// instead, because the Buffer is registered for finalization, it keeps the Buffer alive and
// posts a message. The client takes the messages on its own thread, at a time it chooses, and
// frees the blocks. Here that is the main loop, every few hundred requests.
//
//   build/…/examples/finalize_wrapper
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <unordered_set>

#include "weakgc/gc.hpp"

namespace {

size_t g_outstanding = 0;            // bytes of foreign memory not yet freed
std::unordered_set<void*> g_blocks;  // the blocks not yet freed (for shutdown)

// A heap object owning `size` bytes of malloc'ed memory.
struct Buffer : weakgc::GcObject {
  unsigned char* data = nullptr;  // foreign: deliberately not reported by trace()
  size_t size = 0;
  weakgc::Ref<Buffer> parent;  // heap references are reported as usual
  void trace(weakgc::Visitor& v) const override { v.visit(parent); }
};

Buffer* make_buffer(weakgc::Arena& arena, size_t size) {
  Buffer* b = weakgc::make<Buffer>(arena);
  b->data = static_cast<unsigned char*>(std::malloc(size));
  b->size = size;
  g_blocks.insert(b->data);
  g_outstanding += size;
  std::memset(b->data, 0xab, size);
  if (arena.finalize(b) != weakgc::Status::kOk) std::abort();  // tell me when it is garbage
  return b;
}

// The client's side of finalization: free the foreign memory of every dead Buffer. Each message
// names a Buffer that is alive again until we drop it; after that it is ordinary garbage.
size_t release_dead_buffers(weakgc::Arena& arena) {
  size_t n = 0;
  void* obj;
  while (arena.take_finalized(&obj)) {
    auto* b = static_cast<Buffer*>(obj);
    g_blocks.erase(b->data);
    std::free(b->data);
    g_outstanding -= b->size;
    b->data = nullptr;
    ++n;
  }
  return n;
}

}  // namespace

int main() {
  weakgc::ArenaOptions options;
  options.trigger_bytes = 256 << 10;  // collect often, to show the messages flowing
  weakgc::Arena arena(options);
  // The collector counts heap bytes only; it cannot see the foreign blocks behind them. So the
  // client adds its own pressure: a cycle (incremental, paced by allocation) whenever 4 MiB of
  // foreign memory has piled up since the last one.
  size_t foreign_at_last_cycle = 0;
  // A working set: the last 64 requests' buffers stay reachable, in a ring of roots.
  constexpr size_t kWorkingSet = 64;
  std::deque<weakgc::Root<Buffer>> ring;  // Root handles never move: a deque keeps them put
  for (size_t i = 0; i < kWorkingSet; ++i) ring.emplace_back(arena);

  size_t allocated = 0, freed = 0;
  std::printf("%8s %12s %12s %14s %8s\n", "request", "allocated", "freed", "outstanding B",
              "cycles");
  for (size_t req = 1; req <= 20000; ++req) {
    Buffer* b = make_buffer(arena, 256 + (req * 37) % 4096);
    if (req % 3 == 0) b->parent = ring[(req + 1) % kWorkingSet].get();  // an older buffer
    ring[req % kWorkingSet] = b;
    ++allocated;
    if (g_outstanding > foreign_at_last_cycle + (4u << 20)) {
      arena.start_cycle();  // no-op if a cycle is already running
      foreign_at_last_cycle = g_outstanding;
    }
    if (req % 500 == 0) {
      arena.step(500000);  // donate up to 0.5 ms of collection work, then take the messages
      freed += release_dead_buffers(arena);
      if (req % 4000 == 0)
        std::printf("%8zu %12zu %12zu %14zu %8llu\n", req, allocated, freed, g_outstanding,
                    static_cast<unsigned long long>(arena.stats().cycles));
    }
  }
  // Shut down: drop the working set, collect, and release what is left.
  for (auto& r : ring) r = nullptr;
  // A buffer reachable from a dead buffer is finalized after it (its message only comes once the
  // referring buffer's message has been dropped), so a few rounds may be needed.
  for (int round = 0; round < 8 && freed < allocated; ++round) {
    arena.collect();
    freed += release_dead_buffers(arena);
  }
  std::printf("%8s %12zu %12zu %14zu %8llu\n", "end", allocated, freed, g_outstanding,
              static_cast<unsigned long long>(arena.stats().cycles));
  // Each buffer is freed at most once (a message is posted once); one may remain if a stale word
  // on this thread's stack still looks like a pointer to it (the stack is scanned conservatively).
  std::printf("finalization messages: %llu, buffers freed: %zu of %zu\n",
              static_cast<unsigned long long>(arena.stats().objects_finalized), freed, allocated);
  // Finalization is not guaranteed to run before exit: the client frees what is left itself.
  for (void* block : g_blocks) std::free(block);
  std::printf("freed directly at shutdown: %zu\n", g_blocks.size());
  return 0;
}
