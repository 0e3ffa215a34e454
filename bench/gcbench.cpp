// GCBench (Ellis, Kovac, Boehm): binary trees, on weakgc's typed layer and on the Boehm
// collector, side by side in one process. Not a test: it never asserts.
//
// The classic workload: a stretch tree of depth 18 (discarded), a long-lived tree of depth 16
// and an array of 500,000 doubles kept to the end, then for depths 4, 6, ..., 16 many temporary
// trees built top-down (Populate) and bottom-up (MakeTree), 2 * TreeSize(18) / TreeSize(d) of
// each. About 15 million 32-byte nodes (~480 MB) are allocated in all.
//
// Contestants (same node size: 32-byte cells in both collectors):
//   weakgc-stw   make<Node>, Ref<Node>; ArenaOptions::incremental = 0 (collections stop the world)
//   weakgc-inc   the same with incremental = 1 (allocation-paced increments, read barrier)
//   boehm        GC_MALLOC / GC_MALLOC_ATOMIC, non-incremental, one marker thread unless the
//                environment sets GC_MARKERS
// Both collectors find temporaries on the stack conservatively; the long-lived tree is a
// Root<Node> (weakgc) or a stack variable (Boehm), the array a leaf object / atomic block.
//
// Boehm and weakgc share the process: GC_INIT runs first (its temporary SIGSEGV handler, used
// while it probes the address space, is gone before weakgc installs the barrier's), and Boehm in
// non-incremental mode protects no pages, so every SIGSEGV is weakgc's.
//
// Usage: gcbench [reps [only]]   reps defaults to 3; prints each run and the median of each
// contestant. `only` (stw, inc or boehm) runs one contestant, for profiling.
#define GC_THREADS  // declares GC_set_markers_count / GC_get_parallel
#include <gc.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "weakgc/gc.hpp"

namespace {

constexpr int kStretchTreeDepth = 18;
constexpr int kLongLivedTreeDepth = 16;
constexpr int kArraySize = 500000;
constexpr int kMinTreeDepth = 4;
constexpr int kMaxTreeDepth = 16;

int tree_size(int depth) {
  return (1 << (depth + 1)) - 1;
}
int num_iters(int depth) {
  return 2 * tree_size(kStretchTreeDepth) / tree_size(depth);
}

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

struct Result {
  std::string name;
  double seconds = 0;
  double mbytes = 0;   // MB (10^6 bytes) allocated
  uint64_t gcs = 0;    // collections (cycles) run
  double heap_mb = 0;  // heap (committed) at the end, MB
  long check = 0;      // keeps the long-lived data observably used
};

// ------------------------------------------------------------------------------------- weakgc

namespace wk {

struct Node : weakgc::GcObject {
  weakgc::Ref<Node> left;
  weakgc::Ref<Node> right;
  int i = 0;
  int j = 0;
  Node() = default;
  Node(Node* l, Node* r) : left(l), right(r) {}
  void trace(weakgc::Visitor& v) const override {
    v.visit(left);
    v.visit(right);
  }
};
static_assert(sizeof(Node) == 32);

void populate(weakgc::Arena& a, int depth, Node* n) {
  if (depth <= 0) return;
  --depth;
  n->left = weakgc::make<Node>(a);
  n->right = weakgc::make<Node>(a);
  populate(a, depth, n->left.get());
  populate(a, depth, n->right.get());
}

Node* make_tree(weakgc::Arena& a, int depth) {
  if (depth <= 0) return weakgc::make<Node>(a);
  Node* l = make_tree(a, depth - 1);
  Node* r = make_tree(a, depth - 1);
  return weakgc::make<Node>(a, l, r);
}

__attribute__((noinline)) void time_construction(weakgc::Arena& a, int depth) {
  int iters = num_iters(depth);
  for (int i = 0; i < iters; ++i) {
    Node* t = weakgc::make<Node>(a);
    populate(a, depth, t);
  }
  for (int i = 0; i < iters; ++i) {
    Node* t = make_tree(a, depth);
    weakgc::keep_alive(t);
  }
}

__attribute__((noinline)) void stretch(weakgc::Arena& a) {
  Node* t = make_tree(a, kStretchTreeDepth);
  weakgc::keep_alive(t);
}

Result run(bool incremental) {
  weakgc::ArenaOptions o;
  o.incremental = incremental ? 1 : 0;
  Result r;
  r.name = incremental ? "weakgc-inc" : "weakgc-stw";
  double t0 = now_s();
  {
    weakgc::Arena a(o);
    stretch(a);
    weakgc::Root<Node> long_lived(a, weakgc::make<Node>(a));
    populate(a, kLongLivedTreeDepth, long_lived.get());
    auto* array = static_cast<double*>(weakgc::make_leaf_bytes(a, sizeof(double) * kArraySize));
    for (int i = 0; i < kArraySize / 2; ++i) array[i] = 1.0 / (i + 1);
    for (int d = kMinTreeDepth; d <= kMaxTreeDepth; d += 2) time_construction(a, d);
    r.check = long_lived->left ? 1 : 0;
    r.check += static_cast<long>(array[1000] * 1e6);
    weakgc::keep_alive(array);
    weakgc::Stats s = a.stats();
    r.seconds = now_s() - t0;
    r.mbytes = static_cast<double>(s.bytes_allocated) / 1e6;
    r.gcs = s.cycles;
    r.heap_mb = static_cast<double>(a.committed_bytes()) / 1e6;
  }
  return r;
}

}  // namespace wk

// -------------------------------------------------------------------------------------- Boehm

namespace bw {

struct Node {
  Node* left;
  Node* right;
  int i;
  int j;
};

Node* new_node(Node* l = nullptr, Node* r = nullptr) {
  auto* n = static_cast<Node*>(GC_MALLOC(sizeof(Node)));
  n->left = l;
  n->right = r;
  return n;
}

void populate(int depth, Node* n) {
  if (depth <= 0) return;
  --depth;
  n->left = new_node();
  n->right = new_node();
  populate(depth, n->left);
  populate(depth, n->right);
}

Node* make_tree(int depth) {
  if (depth <= 0) return new_node();
  Node* l = make_tree(depth - 1);
  Node* r = make_tree(depth - 1);
  return new_node(l, r);
}

__attribute__((noinline)) void time_construction(int depth) {
  int iters = num_iters(depth);
  for (int i = 0; i < iters; ++i) {
    Node* t = new_node();
    populate(depth, t);
  }
  for (int i = 0; i < iters; ++i) {
    Node* t = make_tree(depth);
    weakgc::keep_alive(t);
  }
}

__attribute__((noinline)) void stretch() {
  Node* t = make_tree(kStretchTreeDepth);
  weakgc::keep_alive(t);
}

Result run() {
  Result r;
  r.name = "boehm";
  GC_gcollect();  // start every run from an empty heap (the heap itself stays mapped)
  GC_word bytes0 = GC_get_total_bytes();
  GC_word gc0 = GC_get_gc_no();
  double t0 = now_s();
  stretch();
  Node* long_lived = new_node();
  populate(kLongLivedTreeDepth, long_lived);
  auto* array = static_cast<double*>(GC_MALLOC_ATOMIC(sizeof(double) * kArraySize));
  for (int i = 0; i < kArraySize / 2; ++i) array[i] = 1.0 / (i + 1);
  for (int d = kMinTreeDepth; d <= kMaxTreeDepth; d += 2) time_construction(d);
  r.check = long_lived->left ? 1 : 0;
  r.check += static_cast<long>(array[1000] * 1e6);
  weakgc::keep_alive(array);
  weakgc::keep_alive(long_lived);
  r.seconds = now_s() - t0;
  r.mbytes = static_cast<double>(GC_get_total_bytes() - bytes0) / 1e6;
  r.gcs = GC_get_gc_no() - gc0;
  r.heap_mb = static_cast<double>(GC_get_heap_size()) / 1e6;
  return r;
}

}  // namespace bw

void print(const Result& r) {
  std::printf("  %-11s %8.1f ms  %8.1f MB  %8.1f MB/s  %5llu GCs  heap %7.1f MB  (check %ld)\n",
              r.name.c_str(), r.seconds * 1e3, r.mbytes, r.mbytes / r.seconds,
              static_cast<unsigned long long>(r.gcs), r.heap_mb, r.check);
}

Result median(std::vector<Result> v) {
  std::sort(v.begin(), v.end(),
            [](const Result& a, const Result& b) { return a.seconds < b.seconds; });
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  int reps = argc > 1 ? std::max(1, atoi(argv[1])) : 3;
  std::string only = argc > 2 ? argv[2] : "";
  if (getenv("GC_MARKERS") == nullptr) GC_set_markers_count(1);
  GC_INIT();
  std::printf(
      "gcbench: stretch depth %d, long-lived depth %d, array %d, depths %d..%d; "
      "boehm marker threads %d\n",
      kStretchTreeDepth, kLongLivedTreeDepth, kArraySize, kMinTreeDepth, kMaxTreeDepth,
      GC_get_parallel() + 1);
  std::vector<Result> stw, inc, boehm;
  for (int rep = 0; rep < reps; ++rep) {
    std::printf("run %d\n", rep + 1);
    // Rotate the order so no contestant always runs first (warm caches, page cache, CPU clock).
    for (int k = 0; k < 3; ++k) {
      int which = (rep + k) % 3;
      if (!only.empty() && only != (which == 0 ? "stw" : which == 1 ? "inc" : "boehm")) continue;
      switch (which) {
        case 0:
          stw.push_back(wk::run(false));
          print(stw.back());
          break;
        case 1:
          inc.push_back(wk::run(true));
          print(inc.back());
          break;
        case 2:
          boehm.push_back(bw::run());
          print(boehm.back());
          break;
      }
    }
  }
  if (!only.empty()) return 0;
  Result ms = median(stw), mi = median(inc), mb = median(boehm);
  std::printf("median of %d\n", reps);
  print(ms);
  print(mi);
  print(mb);
  std::printf(
      "RESULT gcbench weakgc-stw_ms=%.1f weakgc-inc_ms=%.1f boehm_ms=%.1f "
      "stw/boehm=%.2f inc/boehm=%.2f stw_MBps=%.0f inc_MBps=%.0f boehm_MBps=%.0f\n",
      ms.seconds * 1e3, mi.seconds * 1e3, mb.seconds * 1e3, ms.seconds / mb.seconds,
      mi.seconds / mb.seconds, ms.mbytes / ms.seconds, mi.mbytes / mi.seconds,
      mb.mbytes / mb.seconds);
  return 0;
}
