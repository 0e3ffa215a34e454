// Root handles: strong references that live outside the heap (on the C++ stack or in malloc'd
// memory). Internal building block of Root<T>; runtimes may use it directly.
#pragma once

#include "weakgc/export.hpp"
namespace weakgc {
namespace detail {
struct ArenaImpl;

/// One handle in an arena's intrusive list; `ptr` is scanned as an exact root at every flip.
struct HandleNode {
  HandleNode* prev = nullptr;
  HandleNode* next = nullptr;
  void* ptr = nullptr;
  ArenaImpl* arena = nullptr;
  /// The owner reads the referent only through loads it guards in software (WeakTable's key and
  /// value arrays, GuardedArray): a large referent greyed at the flip is left unprotected
  /// ("pending", see core/arena_impl.hpp .inv.pending) until the owner or the collector guards its
  /// pages.
  bool owner_guarded = false;
};

/// Links a handle into its arena's root list. Takes the arena lock.
WEAKGC_API void link_handle(ArenaImpl* arena, HandleNode* h) noexcept;
/// Unlinks a handle. Takes the arena lock.
WEAKGC_API void unlink_handle(HandleNode* h) noexcept;
}  // namespace detail
}  // namespace weakgc
