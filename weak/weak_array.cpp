#include "weakgc/weak_array.hpp"

#include "core/arena_impl.hpp"
#include "pools/pool.hpp"

namespace weakgc {

static_assert(sizeof(WeakArray) == detail::kAwlHeaderBytes);
static_assert(kEmpty == detail::kSlotEmpty && kDeleted == detail::kSlotDeleted);

namespace {

weakgc::Pool* weak_pool(detail::ArenaImpl* a) {
  if (a->weak_pool == nullptr)
    WEAKGC_CHECK(detail::make_pool(a, PoolClass::kAWL, nullptr, &a->weak_pool) == Status::kOk);
  return a->weak_pool;
}

bool is_awl_array(detail::ArenaImpl* a, const void* p, detail::Segment** seg) {
  size_t s;
  uint32_t c;
  uintptr_t b;
  if (!a->resolve(reinterpret_cast<uintptr_t>(p), false, &s, &c, &b)) return false;
  *seg = &a->segs[s];
  return a->segs[s].awl;
}

}  // namespace

Status alloc_weak_array(Arena& arena, size_t length, Rank rank, WeakArray* dependent,
                        WeakArray** out) noexcept {
  if (out == nullptr) return Status::kBadParam;
  detail::ArenaImpl* a = arena.impl();
  detail::LockGuard g(a->lock);
  detail::Segment* ds;
  if (dependent != nullptr && !is_awl_array(a, dependent, &ds)) return Status::kBadParam;
  // .inv.dependent: a dependent has this array's length, or splatting slot i would write past
  // its end. Read through the collector view: the dependent's page may be protected.
  if (dependent != nullptr &&
      a->cview<detail::AwlHeader>(reinterpret_cast<uintptr_t>(dependent))->length != length)
    return Status::kBadParam;
  void* obj;
  Status st = detail::alloc_awl_array(a, weak_pool(a)->impl(), length, rank, dependent, &obj);
  if (st == Status::kOk) *out = static_cast<WeakArray*>(obj);
  return st;
}

Status link_dependents(Arena& arena, WeakArray* x, WeakArray* y) noexcept {
  detail::ArenaImpl* a = arena.impl();
  detail::LockGuard g(a->lock);
  detail::Segment* sx;
  detail::Segment* sy;
  if (!is_awl_array(a, x, &sx) || !is_awl_array(a, y, &sy)) return Status::kBadParam;
  auto* hx = a->cview<detail::AwlHeader>(reinterpret_cast<uintptr_t>(x));
  auto* hy = a->cview<detail::AwlHeader>(reinterpret_cast<uintptr_t>(y));
  if (hx->length != hy->length) return Status::kBadParam;
  // Written through the collector view: no fault, no expose, whatever the pages' protection.
  hx->dependent = reinterpret_cast<uintptr_t>(y);
  hy->dependent = reinterpret_cast<uintptr_t>(x);
  return Status::kOk;
}

}  // namespace weakgc
