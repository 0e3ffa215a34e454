#include "pools/pool.hpp"

#include <new>

namespace weakgc::detail {

Status make_pool(ArenaImpl* a, PoolClass cls, const Format* format, weakgc::Pool** out) noexcept {
  if (cls != PoolClass::kAMS && cls != PoolClass::kLO && cls != PoolClass::kAWL)
    return Status::kBadParam;
  if (cls == PoolClass::kAMS && (format == nullptr || format->scan == nullptr))
    return Status::kBadParam;  // an AMS pool is scanned: it needs a scan function
  auto* p = new (std::nothrow) PoolBox();
  if (p == nullptr) return Status::kNoMemory;
  p->pool.arena = a;
  p->pool.cls = cls;
  if (format != nullptr) p->pool.format = *format;
  // An AWL pool with a scan function holds client objects (MPS's AWL: slots are references or
  // tagged words); without one it holds the library's weak arrays.
  p->pool.client_awl = cls == PoolClass::kAWL && format != nullptr && format->scan != nullptr;
  for (auto& r : p->pool.current)
    for (auto& c : r) c = UINT32_MAX;
  a->pools.push_back(p);
  *out = &p->handle;
  return Status::kOk;
}

Status alloc_awl_array(ArenaImpl* a, Pool* pool, size_t length, Rank rank, void* dependent,
                       void** out) noexcept {
  if (pool == nullptr || pool->cls != PoolClass::kAWL) return Status::kBadParam;
  if (length > (a->reserve - kAwlHeaderBytes) / sizeof(uintptr_t)) return Status::kBadParam;
  if (dependent != nullptr && !a->in_arena(reinterpret_cast<uintptr_t>(dependent)))
    return Status::kBadParam;  // a dependent outside the arena cannot be splatted safely
  void* obj;
  Status st = a->allocate(pool, kAwlHeaderBytes + length * sizeof(uintptr_t), rank, &obj);
  if (st != Status::kOk) return st;
  AwlHeader* h = a->cview<AwlHeader>(reinterpret_cast<uintptr_t>(obj));
  h->length = length;
  h->dependent = reinterpret_cast<uintptr_t>(dependent);
  *out = obj;
  return Status::kOk;
}

}  // namespace weakgc::detail
