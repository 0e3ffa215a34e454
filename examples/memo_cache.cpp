// A weak-key memoization cache whose values refer to their keys: an ephemeron table.
//
// An application parses documents into syntax trees and memoizes an expensive analysis per tree:
// analyze(tree) -> Summary. The Summary points back at its tree (to report locations), so in a
// plain weak-key table the strong value would keep its own key alive: the cache would never let
// go of a tree. In an EphemeronTable a value is traced only while its key is alive for some
// other reason, so the entry goes when the application drops the tree.
//
// The program runs the same workload against both kinds of table and prints what each holds.
//
//   build/…/examples/memo_cache
#include <cstdio>
#include <deque>

#include "weakgc/tables.hpp"

namespace {

struct Tree : weakgc::GcObject {
  unsigned long id = 0;
  weakgc::Ref<Tree> left, right;
  void trace(weakgc::Visitor& v) const override {
    v.visit(left);
    v.visit(right);
  }
};

struct Summary : weakgc::GcObject {
  weakgc::Ref<Tree> tree;  // the value refers to its key
  unsigned long nodes = 0;
  void trace(weakgc::Visitor& v) const override { v.visit(tree); }
};

Tree* parse(weakgc::Arena& arena, unsigned long id, int depth) {
  Tree* t = weakgc::make<Tree>(arena);
  t->id = id;
  if (depth > 0) {
    t->left = parse(arena, id, depth - 1);
    t->right = parse(arena, id, depth - 1);
  }
  return t;
}

unsigned long count(const Tree* t) {
  return t == nullptr ? 0 : 1 + count(t->left.get()) + count(t->right.get());
}

template <class Cache>
struct Memo {
  Cache cache;
  unsigned long hits = 0, misses = 0;
  explicit Memo(weakgc::Arena& a) : cache(a) {}
  // The memoized analysis: computed once per live tree.
  Summary* analyze(weakgc::Arena& arena, Tree* t) {
    if (Summary* s = cache.get(t)) {
      ++hits;
      return s;
    }
    ++misses;
    Summary* s = weakgc::make<Summary>(arena);
    s->tree = t;
    s->nodes = count(t);
    cache.put(t, s);
    return s;
  }
};

template <class Cache>
void run(const char* name) {
  weakgc::ArenaOptions options;
  options.trigger_bytes = 1 << 20;
  weakgc::Arena arena(options);
  Memo<Cache> memo(arena);
  // The application keeps the 32 most recent documents open; older ones are closed (dropped).
  std::deque<weakgc::Root<Tree>> open;
  for (int i = 0; i < 32; ++i) open.emplace_back(arena);
  unsigned long total = 0;
  for (unsigned long doc = 0; doc < 3000; ++doc) {
    open[doc % 32] = parse(arena, doc, 5);
    // Each step analyzes a few open documents (mostly cache hits).
    for (unsigned long k = 0; k < 8; ++k) {
      Tree* t = open[(doc + k * 7) % 32].get();
      if (t != nullptr) total += memo.analyze(arena, t)->nodes;
    }
  }
  for (auto& r : open) r = nullptr;  // close everything
  arena.collect();  // reclaims everything unreachable now, even with a cycle under way
  std::printf("%-22s hits %6lu  misses %5lu  entries after closing every document: %zu\n", name,
              memo.hits, memo.misses, memo.cache.size());
  (void)total;
}

}  // namespace

int main() {
  // With an ephemeron table the cache empties (up to a few trees a stale stack word may pin);
  // with a weak-key table every Summary keeps its own Tree alive: nothing is ever released.
  run<weakgc::EphemeronTable<Tree, Summary>>("EphemeronTable");
  run<weakgc::WeakKeyTable<Tree, Summary>>("WeakKeyTable (leaks)");
  return 0;
}
