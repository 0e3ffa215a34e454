// Full collection of a live random graph: weakgc's Arena::collect() against Boehm's
// GC_gcollect() on the same graph shape, side by side in one process. Not a test: it never
// asserts.
//
// The graph: n objects (default 1,000,000), each with 4 references. Reference 0 follows a random
// permutation (a Hamiltonian path from the root, so every object is reachable); references 1..3
// name uniformly random objects. The edge list is computed once from a fixed seed and the same
// list is built in every heap. Objects are allocated in index order and are all 48-byte cells:
//   weakgc-typed  GcObject (vtable word) + 4 Ref<Node>; trace() visits the four  (40 B -> 48 B)
//   weakgc-fmt    an AMS pool with a format: word 0 unused, 4 reference words; the scan function
//                 calls ss.fix on each (40 B -> 48 B)
//   boehm         GC_MALLOC(40): word 0 unused + 4 pointers, scanned conservatively (40 + 1 B
//                 of interior-pointer padding -> 48 B)
// Each heap is held by one root (a Root<Node> / an exact root / a stack variable) naming the head
// of the path. The weakgc arenas are non-incremental (construction stores into every object;
// collect() is stop-the-world in both modes). Boehm runs one marker thread unless GC_MARKERS is
// set in the environment.
//
// After one warm-up collection each, `reps` rounds each time one collection of every heap, in
// rotating order; the table gives the median per heap and the ratio to Boehm.
//
// Usage: graph_bench [objects [reps [only]]]   only = typed | fmt | boehm (for profiling)
#define GC_THREADS  // declares GC_set_markers_count / GC_get_parallel
#include <gc.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "weakgc/gc.hpp"

namespace {

constexpr int kEdges = 4;

uint64_t now_ns() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

// edges[i * kEdges + k] = target of reference k of object i; root = the head of the path.
struct Graph {
  size_t n = 0;
  uint32_t root = 0;
  std::vector<uint32_t> edges;
};

Graph make_graph(size_t n, uint64_t seed) {
  Graph g;
  g.n = n;
  g.edges.resize(n * kEdges);
  std::mt19937_64 rng(seed);
  std::vector<uint32_t> perm(n);
  for (size_t i = 0; i < n; ++i) perm[i] = static_cast<uint32_t>(i);
  std::shuffle(perm.begin(), perm.end(), rng);
  g.root = perm[0];
  std::uniform_int_distribution<uint32_t> pick(0, static_cast<uint32_t>(n - 1));
  for (size_t i = 0; i < n; ++i) {
    for (int k = 1; k < kEdges; ++k) g.edges[i * kEdges + k] = pick(rng);
  }
  // Reference 0 follows the path; its last object's reference 0 points back to the head.
  for (size_t i = 0; i < n; ++i) g.edges[size_t{perm[i]} * kEdges] = perm[(i + 1) % n];
  return g;
}

// ---------------------------------------------------------------------------- weakgc, typed

struct TNode : weakgc::GcObject {
  weakgc::Ref<TNode> e[kEdges];
  void trace(weakgc::Visitor& v) const override {
    for (const auto& r : e) v.visit(r);
  }
};
static_assert(sizeof(TNode) == 40);

struct TypedHeap {
  std::unique_ptr<weakgc::Arena> arena;
  std::unique_ptr<weakgc::Root<TNode>> root;

  void build(const Graph& g) {
    weakgc::ArenaOptions o;
    o.incremental = 0;
    arena = std::make_unique<weakgc::Arena>(o);
    std::vector<TNode*> nodes(g.n);
    weakgc::RootId rid;
    (void)arena->register_root(reinterpret_cast<void**>(nodes.data()), g.n, &rid);
    for (size_t i = 0; i < g.n; ++i) nodes[i] = weakgc::make<TNode>(*arena);
    for (size_t i = 0; i < g.n; ++i)
      for (int k = 0; k < kEdges; ++k) nodes[i]->e[k] = nodes[g.edges[i * kEdges + k]];
    root = std::make_unique<weakgc::Root<TNode>>(*arena, nodes[g.root]);
    (void)arena->remove_root(rid);
  }
  uint64_t marked_before = 0;  // Stats::bytes_marked before the last collect()
  uint64_t collect() {
    marked_before = arena->stats().bytes_marked;
    uint64_t t0 = now_ns();
    arena->collect();
    return now_ns() - t0;
  }
};

// --------------------------------------------------------------------------- weakgc, format

struct FNode {
  uintptr_t header;  // unused: the same object size as TNode's vtable word
  FNode* e[kEdges];
};
static_assert(sizeof(FNode) == 40);

void scan_fnode(weakgc::ScanState& ss, void* obj, size_t, void*) {
  auto* n = static_cast<FNode*>(obj);
  for (auto& r : n->e) ss.fix(reinterpret_cast<void**>(&r));
}

struct FormatHeap {
  std::unique_ptr<weakgc::Arena> arena;
  weakgc::Pool* pool = nullptr;
  void* root_slot[1] = {nullptr};

  void build(const Graph& g) {
    weakgc::ArenaOptions o;
    o.incremental = 0;
    arena = std::make_unique<weakgc::Arena>(o);
    weakgc::Format f;
    f.scan = &scan_fnode;
    (void)arena->create_pool(weakgc::PoolClass::kAMS, &f, &pool);
    std::vector<FNode*> nodes(g.n);
    weakgc::RootId rid, keep;
    (void)arena->register_root(reinterpret_cast<void**>(nodes.data()), g.n, &rid);
    for (size_t i = 0; i < g.n; ++i) {
      void* p = nullptr;
      if (arena->alloc(pool, sizeof(FNode), &p) != weakgc::Status::kOk) std::abort();
      nodes[i] = static_cast<FNode*>(p);
    }
    for (size_t i = 0; i < g.n; ++i)
      for (int k = 0; k < kEdges; ++k) nodes[i]->e[k] = nodes[g.edges[i * kEdges + k]];
    root_slot[0] = nodes[g.root];
    (void)arena->register_root(root_slot, 1, &keep);
    (void)arena->remove_root(rid);
  }
  uint64_t marked_before = 0;  // Stats::bytes_marked before the last collect()
  uint64_t collect() {
    marked_before = arena->stats().bytes_marked;
    uint64_t t0 = now_ns();
    arena->collect();
    return now_ns() - t0;
  }
};

// ------------------------------------------------------------------------------------ Boehm

struct BNode {
  uintptr_t header;
  BNode* e[kEdges];
};

struct BoehmHeap {
  // The root lives in a GC_MALLOC_UNCOLLECTABLE cell (scanned, never freed): Boehm's equivalent
  // of an exact root, independent of what happens to be on the stack.
  BNode** root = nullptr;

  void build(const Graph& g) {
    root = static_cast<BNode**>(GC_MALLOC_UNCOLLECTABLE(sizeof(BNode*)));
    auto** nodes = static_cast<BNode**>(GC_MALLOC_UNCOLLECTABLE(g.n * sizeof(BNode*)));
    for (size_t i = 0; i < g.n; ++i) nodes[i] = static_cast<BNode*>(GC_MALLOC(sizeof(BNode)));
    for (size_t i = 0; i < g.n; ++i)
      for (int k = 0; k < kEdges; ++k) nodes[i]->e[k] = nodes[g.edges[i * kEdges + k]];
    *root = nodes[g.root];
    GC_FREE(nodes);
  }
  uint64_t collect() {
    uint64_t t0 = now_ns();
    GC_gcollect();
    return now_ns() - t0;
  }
};

uint64_t median(std::vector<uint64_t> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  size_t n = argc > 1 ? static_cast<size_t>(std::max(1000L, atol(argv[1]))) : 1000000;
  int reps = argc > 2 ? std::max(1, atoi(argv[2])) : 5;
  std::string only = argc > 3 ? argv[3] : "";
  bool do_typed = only.empty() || only == "typed";
  bool do_fmt = only.empty() || only == "fmt";
  bool do_boehm = only.empty() || only == "boehm";
  if (getenv("GC_MARKERS") == nullptr) GC_set_markers_count(1);
  GC_INIT();

  Graph g = make_graph(n, 0x5eed'0001);
  TypedHeap typed;
  FormatHeap fmt;
  BoehmHeap boehm;
  uint64_t t0 = now_ns();
  if (do_typed) typed.build(g);
  uint64_t t1 = now_ns();
  if (do_fmt) fmt.build(g);
  uint64_t t2 = now_ns();
  if (do_boehm) boehm.build(g);
  uint64_t t3 = now_ns();
  std::printf("graph_bench: %zu objects x %d refs, 48-byte cells; boehm marker threads %d\n", n,
              kEdges, GC_get_parallel() + 1);
  std::printf(
      "  build (allocate + link, collections included): typed %.0f ms, fmt %.0f ms, "
      "boehm %.0f ms\n",
      (t1 - t0) / 1e6, (t2 - t1) / 1e6, (t3 - t2) / 1e6);
  // Warm-up: frees construction leftovers (the node arrays) and faults in every side table.
  if (do_typed) typed.collect();
  if (do_fmt) fmt.collect();
  if (do_boehm) boehm.collect();

  std::vector<uint64_t> tt, tf, tb;
  for (int rep = 0; rep < reps; ++rep) {
    for (int k = 0; k < 3; ++k) {
      switch ((rep + k) % 3) {
        case 0:
          if (do_typed) tt.push_back(typed.collect());
          break;
        case 1:
          if (do_fmt) tf.push_back(fmt.collect());
          break;
        case 2:
          if (do_boehm) tb.push_back(boehm.collect());
          break;
      }
    }
    std::printf("  round %d:", rep + 1);
    if (do_typed) std::printf("  typed %.2f ms", tt.back() / 1e6);
    if (do_fmt) std::printf("  fmt %.2f ms", tf.back() / 1e6);
    if (do_boehm) std::printf("  boehm %.2f ms", tb.back() / 1e6);
    std::printf("\n");
  }
  if (!only.empty()) return 0;

  weakgc::Stats st = typed.arena->stats();
  weakgc::Stats sf = fmt.arena->stats();
  // Bytes marked by the last (timed) collection of each heap.
  double typed_mb = static_cast<double>(st.bytes_marked - typed.marked_before) / 1e6;
  double fmt_mb = static_cast<double>(sf.bytes_marked - fmt.marked_before) / 1e6;
  uint64_t mt = median(tt), mf = median(tf), mb = median(tb);
  std::printf(
      "  live: typed %.1f MB marked per collection, fmt %.1f MB, boehm heap %.1f MB (%.1f MB in "
      "use)\n",
      typed_mb, fmt_mb, static_cast<double>(GC_get_heap_size()) / 1e6,
      static_cast<double>(GC_get_heap_size() - GC_get_free_bytes()) / 1e6);
  std::printf(
      "  median of %d: typed %.2f ms (%.1f ns/object), fmt %.2f ms (%.1f ns/object), "
      "boehm %.2f ms (%.1f ns/object)\n",
      reps, mt / 1e6, static_cast<double>(mt) / static_cast<double>(n), mf / 1e6,
      static_cast<double>(mf) / static_cast<double>(n), mb / 1e6,
      static_cast<double>(mb) / static_cast<double>(n));
  std::printf(
      "RESULT graph_bench n=%zu typed_ms=%.2f fmt_ms=%.2f boehm_ms=%.2f typed/boehm=%.2f "
      "fmt/boehm=%.2f\n",
      n, mt / 1e6, mf / 1e6, mb / 1e6, static_cast<double>(mt) / static_cast<double>(mb),
      static_cast<double>(mf) / static_cast<double>(mb));
  return 0;
}
