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

namespace {

// Returns the pool in `slot`, creating it under the arena lock on first use.
weakgc::Pool* builtin_pool(ArenaImpl* a, std::atomic<weakgc::Pool*>& slot, PoolClass cls,
                           const Format* f) {
  weakgc::Pool* p = slot.load(std::memory_order_acquire);
  if (p != nullptr) return p;  // the common case: no lock
  LockGuard g(a->lock);
  p = slot.load(std::memory_order_relaxed);
  if (p == nullptr) {
    WEAKGC_CHECK(make_pool(a, cls, f, &p) == Status::kOk);
    slot.store(p, std::memory_order_release);
  }
  return p;
}

const Format kGcObjectFormat = [] {
  Format f;
  f.scan = &scan_gc_object;
  return f;
}();

}  // namespace

weakgc::Pool* typed_pool(Arena& arena) {
  ArenaImpl* a = arena.impl();
  return builtin_pool(a, a->typed_pool, PoolClass::kAMS, &kGcObjectFormat);
}

weakgc::Pool* leaf_pool(Arena& arena) {
  ArenaImpl* a = arena.impl();
  return builtin_pool(a, a->leaf_pool, PoolClass::kLO, nullptr);
}

}  // namespace weakgc::detail
