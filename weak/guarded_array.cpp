// Guarded arrays (weakgc/guarded_array.hpp) and the guarded slot accesses they share with the
// weak tables' key and value arrays (.inv.pending in core/arena_impl.hpp).
#include "weakgc/guarded_array.hpp"

#include <new>
#include <stdexcept>
#include <string>

#include "core/arena_impl.hpp"
#include "core/check.hpp"
#include "weakgc/gc.hpp"

namespace weakgc {

namespace detail {

uintptr_t guarded_load(Arena& arena, const ArenaPublished& pub, const uintptr_t* p,
                       bool whole_page) noexcept {
  for (;;) {
    uint64_t s0 = pub.state->load(std::memory_order_acquire);
    // Pages are pending only while marking (.inv.pending): in any other phase the pending byte
    // (a likely cache miss) is not read. A flip before the load changes the state: loaded again.
    if (static_cast<Phase>(s0 & 3) == Phase::kMark && on_pending_page(pub, p)) {
      if (whole_page)
        arena.impl()->guard_page_for_mutator(reinterpret_cast<uintptr_t>(p));
      else
        arena.impl()->guard_for_mutator(reinterpret_cast<uintptr_t>(p));
    }
    std::atomic_signal_fence(std::memory_order_seq_cst);
    uintptr_t v = slot_load(p);
    std::atomic_signal_fence(std::memory_order_seq_cst);
    if (pub.state->load(std::memory_order_acquire) == s0) return v;
  }
}

void guard_store(Arena& arena, const ArenaPublished& pub, uintptr_t* p) noexcept {
  if (on_pending_page(pub, p)) arena.impl()->guard_page_for_mutator(reinterpret_cast<uintptr_t>(p));
}

}  // namespace detail

namespace {

// A new exact-rank array of `length` slots for a guarded array; throws as its constructor.
WeakArray* new_slots(Arena& arena, size_t length) {
  WeakArray* a = nullptr;
  Status st = alloc_weak_array(arena, length, Rank::kExact, nullptr, &a);
  if (st == Status::kBadParam)
    throw std::length_error("weakgc::GuardedArray: no array of " + std::to_string(length) +
                            " slots can be allocated");
  if (st != Status::kOk) throw std::bad_alloc();
  return a;
}

}  // namespace

RawGuardedArray::RawGuardedArray(Arena& arena, size_t length)
    : arena_(arena), published_(arena.published()), length_(length) {
  WeakArray* a = new_slots(arena, length);
  slots_ = a->slot;
  root_.ptr = a;
  root_.owner_guarded = true;
  detail::link_handle(arena.impl(), &root_);
}

size_t RawGuardedArray::page_end(size_t i, size_t end) const noexcept {
  uintptr_t a = reinterpret_cast<uintptr_t>(&slots_[i]);
  size_t left = (detail::kPageSize - (a & (detail::kPageSize - 1))) / sizeof(uintptr_t);
  return end - i < left ? end : i + left;
}

void RawGuardedArray::get_range(size_t first, size_t n, void** out) {
  if (first > length_ || n > length_ - first) out_of_range(first, n);
  const size_t end = first + n;
  const std::atomic<uint64_t>* state = published_.state;
  for (size_t i = first; i < end;) {
    // A page at a time, as get does a slot at a time: a pending page is scanned first (and is
    // then no longer pending), and a flip during the copy makes it go again.
    const size_t stop = page_end(i, end);
    const uint64_t s0 = state->load(std::memory_order_acquire);
    if ((s0 & 3) != 0 && detail::on_pending_page(published_, &slots_[i])) {
      (void)detail::guarded_load(arena_, published_, &slots_[i], true);
      continue;
    }
    for (size_t j = i; j < stop; ++j)
      out[j - first] = reinterpret_cast<void*>(detail::slot_load(&slots_[j]));
    std::atomic_signal_fence(std::memory_order_seq_cst);
    if (state->load(std::memory_order_acquire) != s0) continue;
    i = stop;
  }
}

void RawGuardedArray::set_range(size_t first, const void* const* values, size_t n) {
  if (first > length_ || n > length_ - first) out_of_range(first, n);
#ifndef NDEBUG
  for (size_t j = 0; j < n; ++j) check_value(values[j]);
#endif
  const size_t end = first + n;
  for (size_t i = first; i < end;) {
    const size_t stop = page_end(i, end);
    uintptr_t* p = &slots_[i];
    if ((published_.state->load(std::memory_order_acquire) & 3) != 0 &&
        detail::on_pending_page(published_, p))
      detail::guard_store(arena_, published_, p);
    for (size_t j = i; j < stop; ++j)
      detail::slot_store(&slots_[j], reinterpret_cast<uintptr_t>(values[j - first]));
    i = stop;
  }
}

void RawGuardedArray::resize(size_t length) {
  // The new array is rooted from the start: copying runs collector work (guarded loads scan
  // pages), and another thread may flip meanwhile.
  Root<WeakArray> fresh(arena_, new_slots(arena_, length));
  const size_t keep = length < length_ ? length : length_;
  get_range(0, keep, reinterpret_cast<void**>(fresh->slot));
  // Switched under the lock, so that a flip scans the handles either before or after.
  detail::LockGuard g(arena_.impl()->lock);
  root_.ptr = fresh.get();
  slots_ = fresh->slot;
  length_ = length;
}

RawGuardedArray::~RawGuardedArray() {
  detail::unlink_handle(&root_);
}

void RawGuardedArray::out_of_range(size_t i) const {
  throw std::out_of_range("weakgc::GuardedArray: index " + std::to_string(i) +
                          " out of range (size " + std::to_string(length_) + ")");
}

void RawGuardedArray::out_of_range(size_t first, size_t n) const {
  throw std::out_of_range("weakgc::GuardedArray: slots [" + std::to_string(first) + ", " +
                          std::to_string(first) + " + " + std::to_string(n) +
                          ") out of range (size " + std::to_string(length_) + ")");
}

void RawGuardedArray::check_value(const void* value) const noexcept {
  if (value == nullptr || !arena_.contains(value)) return;
  detail::ArenaImpl* a = arena_.impl();
  detail::LockGuard g(a->lock);  // another thread may be sweeping the segment
  size_t seg;
  uint32_t cell;
  uintptr_t base;
  if (!a->resolve(reinterpret_cast<uintptr_t>(value), true, &seg, &cell, &base) ||
      base != reinterpret_cast<uintptr_t>(value))
    detail::fatal("GuardedArray::set: not the base address of an arena object", value);
}

}  // namespace weakgc
