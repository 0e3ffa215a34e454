// Consumer check (C++20): an installed weakgc used through its C++ headers (against the shared
// library, so every symbol used here must be exported). Exit 0 on success.
#include <cstdio>
#include <cstring>

#include <weakgc/gc.hpp>
#include <weakgc/guarded_array.hpp>
#include <weakgc/version.hpp>
#include <weakgc/weak_array.hpp>

struct Node : weakgc::GcObject {
  weakgc::Ref<Node> next;
  long value = 0;
  void trace(weakgc::Visitor& v) const override { v.visit(next); }
};

// Stores an unreferenced node in w's slot i. Not inlined, so that no pointer to it is left in
// main's callee-saved registers (which the collector scans conservatively).
__attribute__((noinline)) static void add_garbage(weakgc::Arena& arena, weakgc::WeakArray* w,
                                                  int i) {
  w->slot[i] = reinterpret_cast<uintptr_t>(weakgc::make<Node>(arena));
}

static int fail(const char* msg) {
  std::fprintf(stderr, "consumer_cpp: %s\n", msg);
  return 1;
}

int main() {
  if (std::strcmp(weakgc::version(), WEAKGC_VERSION_STRING) != 0) return fail("version");
  weakgc::ArenaOptions o;
  o.register_thread = false;  // exact roots only: the outcome below is exact
  o.reserve_bytes = size_t{64} << 20;
  weakgc::Arena arena(o);
  weakgc::WeakArray* w = nullptr;
  if (weakgc::alloc_weak_array(arena, 4, weakgc::Rank::kWeak, nullptr, &w) != weakgc::Status::kOk)
    return fail("weak array");
  weakgc::Root<weakgc::WeakArray> wroot(arena, w);
  weakgc::Root<Node> head(arena, weakgc::make<Node>(arena));
  head->next = weakgc::make<Node>(arena);
  head->next->value = 42;
  w->slot[0] = reinterpret_cast<uintptr_t>(head.get());
  w->slot[1] = reinterpret_cast<uintptr_t>(head->next.get());
  add_garbage(arena, w, 2);
  arena.collect();
  if (w->slot[0] == weakgc::kDeleted || w->slot[1] == weakgc::kDeleted)
    return fail("live splatted");
  if (w->slot[2] != weakgc::kDeleted) return fail("dead not splatted");
  if (head->next->value != 42) return fail("object damaged");
  weakgc::Stats s = arena.stats();
  if (s.cycles != 1 || s.full_pauses.quantile_ns(1.0) != s.full_pauses.max_ns) return fail("stats");
  // A guarded root array, left pending at the flip: its inline accessors call exported helpers
  // while a cycle is under way.
  weakgc::GuardedArray<Node> roots(arena, size_t{1} << 16);
  roots.set(5, weakgc::make<Node>(arena));
  roots.get(5)->value = 7;
  arena.start_cycle();
  if (roots.get(5) == nullptr || roots.get(5)->value != 7) return fail("guarded get");
  roots.set(6, roots.get(5));
  while (arena.step(1000000)) {
  }
  if (roots.get(6) != roots.get(5) || roots.get(6)->value != 7) return fail("guarded set");
  if (arena.stats().pages_pending == 0) return fail("guarded array not pending");
  std::printf("consumer_cpp: weakgc %s (%s) OK\n", weakgc::version(),
              weakgc::status_name(weakgc::Status::kOk));
  return 0;
}
