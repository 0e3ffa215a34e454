// The built-in pools behind the typed layer: GcObject (AMS, scanned through trace()) and leaf
// bytes (LO).
#include <cstring>

#include "core/arena_impl.hpp"
#include "pools/pool.hpp"
#include "weakgc/gc.hpp"

namespace weakgc::detail {

namespace {

void scan_gc_object(ScanState& ss, void* obj, size_t, void*) {
  // A cell whose vtable word is still zero was allocated but not yet constructed: nothing in it.
  uintptr_t vptr;
  memcpy(&vptr, obj, sizeof vptr);
  if (vptr == 0) return;
  Visitor v(ss);
  static_cast<const GcObject*>(obj)->trace(v);
}

}  // namespace

weakgc::Pool* typed_pool(Arena& arena) {
  ArenaImpl* a = arena.impl();
  LockGuard g(a->lock);
  if (a->typed_pool == nullptr) {
    Format f;
    f.scan = &scan_gc_object;
    WEAKGC_CHECK(make_pool(a, PoolClass::kAMS, &f, &a->typed_pool) == Status::kOk);
  }
  return a->typed_pool;
}

weakgc::Pool* leaf_pool(Arena& arena) {
  ArenaImpl* a = arena.impl();
  LockGuard g(a->lock);
  if (a->leaf_pool == nullptr)
    WEAKGC_CHECK(make_pool(a, PoolClass::kLO, nullptr, &a->leaf_pool) == Status::kOk);
  return a->leaf_pool;
}

}  // namespace weakgc::detail
