// Guarded arrays: large root arrays whose pages the flip leaves unprotected (docs/design/weak.md,
// "Guarded arrays"; .inv.pending in core/arena_impl.hpp).
//
// A runtime's big root sets (globals, symbol vectors, value stacks) cost the flip either way when
// held the ordinary way: a registered root range is scanned slot by slot at the flip, and an
// array object held by a Root has every one of its pages protected there (~0.15 µs a page). A
// GuardedArray is read and written only through its accessors, which check the page's pending
// byte in software, so the flip marks it pending instead (ArenaOptions::pending_min_pages pages
// or more) and the collector scans and protects it incrementally: the flip stays short however
// large the array. The weak tables' own key and value arrays use the same protocol.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "weakgc/arena.hpp"
#include "weakgc/export.hpp"
#include "weakgc/handle.hpp"
#include "weakgc/weak_array.hpp"

namespace weakgc {

namespace detail {
/// Whether the slot at p (in the arena) lies on a pending page: unprotected although it may hold
/// references the collector has not yet seen (.inv.pending). Nonzero only while marking.
inline bool on_pending_page(const ArenaPublished& pub, const uintptr_t* p) noexcept {
  size_t page = (reinterpret_cast<uintptr_t>(p) - pub.base) >> 12;
  return __atomic_load_n(&pub.pending[page], __ATOMIC_RELAXED) != 0;
}
/// Loads the slot at p of an owner-guarded array (strong: the referent is kept alive), and loads
/// again if a flip came in between. If the page is pending, first either greys the one slot's
/// referent (`whole_page` false: a table's arrays, where scanning the page would keep the other
/// entries' values alive for the cycle) or scans the page and ends its pending state
/// (`whole_page` true: an exact-rank array without dependents, whose page the collector would
/// scan whole anyway; later loads from it then need no guard).
WEAKGC_API uintptr_t guarded_load(Arena& arena, const ArenaPublished& pub, const uintptr_t* p,
                                  bool whole_page) noexcept;
/// Before a store into the slot at p of an owner-guarded array: a pending page is scanned first,
/// so what it held at the flip is retained exactly as if the page had been protected.
WEAKGC_API void guard_store(Arena& arena, const ArenaPublished& pub, uintptr_t* p) noexcept;
}  // namespace detail

/// An array of references to arena objects (or null) that is itself a root: what it
/// holds stays alive. Untyped; GuardedArray<T> is the typed wrapper.
///
/// Threads: like a std::vector, concurrent get calls are safe and a set needs the caller's
/// synchronisation against other accesses to the array; collections may run on any registered
/// thread meanwhile. Never call from a signal handler. Valid call sequence: construct; get/set;
/// destroy (before or after the arena; no get or set once the arena is gone). Not copyable or
/// movable: the arena's root list points at it.
class WEAKGC_API RawGuardedArray {
 public:
  /// An array of `length` null slots in `arena`. Throws std::length_error if no array of that
  /// length can exist, std::bad_alloc if the arena is exhausted.
  RawGuardedArray(Arena& arena, size_t length);
  /// Drops the array (its slots stop being roots); safe after the arena is gone.
  ~RawGuardedArray();
  RawGuardedArray(const RawGuardedArray&) = delete;
  RawGuardedArray& operator=(const RawGuardedArray&) = delete;

  /// The number of slots.
  size_t size() const noexcept { return length_; }

  /// Changes the number of slots to `length`: slots below both lengths keep their values, new
  /// ones are null, and what lay beyond a shorter length is no longer held. O(length): the slots
  /// move to a new array (safe during a collection). Throws as the constructor, leaving the array
  /// unchanged. Needs the caller's synchronisation against every other access to the array.
  void resize(size_t length);

  /// Slot i (strong: the caller now holds it). Throws std::out_of_range if i >= size().
  void* get(size_t i) {
    if (i >= length_) [[unlikely]]
      out_of_range(i);
    const uintptr_t* p = &slots_[i];
    // A pending page (only during a collection) is guarded out of line first. Otherwise a plain
    // load: a protected page faults and the barrier scans it. A flip after s0 (another thread's
    // collector work) may have made the page pending before the load: the word changed, and the
    // load is redone guarded (what it loaded was held by nobody).
    const std::atomic<uint64_t>* state = published_.state;  // a local: not reloaded below
    const uint64_t s0 = state->load(std::memory_order_acquire);
    if ((s0 & 3) != 0 && detail::on_pending_page(published_, p)) [[unlikely]]
      return reinterpret_cast<void*>(detail::guarded_load(arena_, published_, p, true));
    uintptr_t v = detail::slot_load(p);
    std::atomic_signal_fence(std::memory_order_seq_cst);
    if (state->load(std::memory_order_acquire) != s0) [[unlikely]]
      v = detail::guarded_load(arena_, published_, p, true);
    return reinterpret_cast<void*>(v);
  }

  /// Stores `value` (an arena object's base address, or null) in slot i. Throws
  /// std::out_of_range if i >= size(). In debug builds an address inside the arena that is not
  /// an object's base aborts with a message.
  void set(size_t i, void* value) {
    if (i >= length_) [[unlikely]]
      out_of_range(i);
#ifndef NDEBUG
    check_value(value);
#endif
    uintptr_t* p = &slots_[i];
    if ((published_.state->load(std::memory_order_acquire) & 3) != 0 &&
        detail::on_pending_page(published_, p)) [[unlikely]]
      detail::guard_store(arena_, published_, p);
    detail::slot_store(p, reinterpret_cast<uintptr_t>(value));
  }

  /// Copies slots [first, first + n) to out[0, n): what n get calls would return, with the
  /// state check and any guarding done once a page instead of once a slot. The references in
  /// `out` are strong only where the collector sees them (a registered thread's stack, a root
  /// range), as for get's result. Throws std::out_of_range (copying nothing) if the range
  /// exceeds size().
  void get_range(size_t first, size_t n, void** out);

  /// Stores values[0, n) in slots [first, first + n), as n set calls would, guarding once a
  /// page. Throws std::out_of_range (storing nothing) if the range exceeds size().
  void set_range(size_t first, const void* const* values, size_t n);

 private:
  [[noreturn]] void out_of_range(size_t i) const;
  [[noreturn]] void out_of_range(size_t first, size_t n) const;
  // The slots from i up to the end of i's page, at most `end`.
  size_t page_end(size_t i, size_t end) const noexcept;
  void check_value(const void* value) const noexcept;

  Arena& arena_;
  detail::ArenaPublished published_;
  detail::HandleNode root_;  // owner-guarded: the array may be left pending at a flip
  uintptr_t* slots_ = nullptr;
  size_t length_ = 0;
};

/// A RawGuardedArray of T* (T an arena object type, e.g. made with make<T>).
template <class T>
class GuardedArray {
 public:
  /// An array of `length` null slots; throws as RawGuardedArray's constructor.
  GuardedArray(Arena& arena, size_t length) : a_(arena, length) {}
  /// The number of slots.
  size_t size() const noexcept { return a_.size(); }
  /// Changes the number of slots, as RawGuardedArray::resize.
  void resize(size_t length) { a_.resize(length); }
  /// Slot i (strong). Throws std::out_of_range if i >= size().
  T* get(size_t i) { return static_cast<T*>(a_.get(i)); }
  /// Stores `value` (or null) in slot i. Throws std::out_of_range if i >= size().
  void set(size_t i, T* value) { a_.set(i, value); }
  /// Copies slots [first, first + n) to out, as RawGuardedArray::get_range.
  void get_range(size_t first, size_t n, T** out) {
    a_.get_range(first, n, reinterpret_cast<void**>(out));
  }
  /// Stores values[0, n) in slots [first, first + n), as RawGuardedArray::set_range.
  void set_range(size_t first, T* const* values, size_t n) {
    a_.set_range(first, reinterpret_cast<const void* const*>(values), n);
  }
  /// The untyped array.
  RawGuardedArray& raw() noexcept { return a_; }

 private:
  RawGuardedArray a_;
};

}  // namespace weakgc
