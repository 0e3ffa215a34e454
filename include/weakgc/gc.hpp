// The typed C++ layer (for applications): garbage-collected objects with a trace method,
// exact strong fields Ref<T>, off-heap handles Root<T>, and make<T>(arena, args...).
//
//   struct Node : weakgc::GcObject {
//     weakgc::Ref<Node> next;
//     void trace(weakgc::Visitor& v) const override { v.visit(next); }
//   };
//   weakgc::Arena arena;
//   weakgc::Root<Node> head(arena, weakgc::make<Node>(arena));
//
// Objects never move. Destructors are not run when an object dies: release foreign resources
// through finalization (Arena::finalize / take_finalized). trace() is called by the collector,
// possibly inside the SIGSEGV handler and on an alias of the object: it must only call
// v.visit(...) on its fields — no allocation, no locks, no reading other heap objects.
#pragma once

#include <cstddef>
#include <new>
#include <type_traits>
#include <utility>

#include "weakgc/arena.hpp"
#include "weakgc/export.hpp"
#include "weakgc/handle.hpp"

namespace weakgc {

template <class T>
class Ref;

/// Passed to GcObject::trace.
class Visitor {
 public:
  /// Internal: made by the typed pool's scan function around the collector's scan state.
  explicit Visitor(ScanState& ss) noexcept : ss_(ss) {}
  /// Reports one strong field. signal-safe.
  template <class T>
  void visit(const Ref<T>& r) noexcept {
    ss_.fix(reinterpret_cast<void**>(const_cast<T**>(&r.ptr_)));
  }
  /// Reports a raw pointer field holding a heap object's base (or anything else: ignored).
  void visit_raw(void* const* slot) noexcept { ss_.fix(const_cast<void**>(slot)); }

 private:
  ScanState& ss_;
};

/// Base of every typed heap object.
class WEAKGC_API GcObject {
 public:
  /// Never run by the collector: release foreign resources through finalization.
  virtual ~GcObject() = default;
  /// Reports every Ref field to the visitor.
  virtual void trace(Visitor&) const {}
};

/// An exact, strong reference field inside a heap object (or anywhere: only fields of heap
/// objects are traced, through their owner's trace()).
template <class T>
class Ref {
 public:
  /// A null reference.
  Ref() noexcept = default;
  /// Refers to `p` (a heap object of the same arena, or null).
  Ref(T* p) noexcept : ptr_(p) {}  // NOLINT: implicit by design, like a pointer
  /// Refers to `p` from now on.
  Ref& operator=(T* p) noexcept {
    ptr_ = p;
    return *this;
  }
  /// The object referred to, or null.
  T* get() const noexcept { return ptr_; }
  /// Member access to the object referred to.
  T* operator->() const noexcept { return ptr_; }
  /// The object referred to (must not be null).
  T& operator*() const noexcept { return *ptr_; }
  /// Whether the reference is not null.
  explicit operator bool() const noexcept { return ptr_ != nullptr; }

 private:
  friend class Visitor;
  T* ptr_ = nullptr;
};

/// A strong handle living outside the heap (stack, malloc): an exact root while it exists.
template <class T>
class Root : private detail::HandleNode {
 public:
  /// Makes `p` (may be null) a root of `arena` until the handle is destroyed.
  explicit Root(Arena& arena, T* p = nullptr) noexcept {
    ptr = p;
    detail::link_handle(arena.impl(), this);
  }
  /// Stops holding the object (nothing to do once the arena is gone).
  ~Root() { detail::unlink_handle(this); }
  Root(const Root&) = delete;
  Root& operator=(const Root&) = delete;
  /// The object held, or null.
  T* get() const noexcept { return static_cast<T*>(ptr); }
  /// Holds `p` (may be null) from now on.
  void set(T* p) noexcept { ptr = p; }
  /// Holds `p` (may be null) from now on.
  Root& operator=(T* p) noexcept {
    ptr = p;
    return *this;
  }
  /// Member access to the object held.
  T* operator->() const noexcept { return get(); }
  /// The object held (must not be null).
  T& operator*() const noexcept { return *get(); }
  /// Whether the handle holds an object.
  explicit operator bool() const noexcept { return ptr != nullptr; }
};

namespace detail {
/// The arena's pool for GcObject-derived objects (created on first use).
WEAKGC_API weakgc::Pool* typed_pool(Arena& arena);
/// The arena's leaf pool (LO) for raw bytes without references.
WEAKGC_API weakgc::Pool* leaf_pool(Arena& arena);
}  // namespace detail

namespace detail {
/// Whether T has no references to report: neither T nor a base between it and GcObject declares
/// trace (then &T::trace names GcObject's). An inaccessible or overloaded trace counts as
/// declared (scanned: always safe).
template <class T>
inline constexpr bool kTraceless = [] {
  if constexpr (requires { &T::trace; })
    return std::is_same_v<decltype(&T::trace), void (GcObject::*)(Visitor&) const>;
  else
    return false;
}();
}  // namespace detail

/// Allocates and constructs a T in the arena. Throws std::bad_alloc if the arena is exhausted
/// even after a collection. A T that does not override trace holds no references, so it is
/// allocated in the leaf pool: marked, never scanned (no mark-stack traffic, no barrier faults).
template <class T, class... Args>
T* make(Arena& arena, Args&&... args) {
  static_assert(std::is_base_of_v<GcObject, T>, "make<T>: T must derive from weakgc::GcObject");
  void* mem = nullptr;
  Pool* pool = detail::kTraceless<T> ? detail::leaf_pool(arena) : detail::typed_pool(arena);
  if (arena.alloc(pool, sizeof(T), &mem) != Status::kOk) throw std::bad_alloc();
  return ::new (mem) T(std::forward<Args>(args)...);
}

/// Allocates `size` zeroed bytes that hold no references (never scanned). Throws std::bad_alloc.
inline void* make_leaf_bytes(Arena& arena, size_t size) {
  void* mem = nullptr;
  if (arena.alloc(detail::leaf_pool(arena), size, &mem) != Status::kOk) throw std::bad_alloc();
  return mem;
}

}  // namespace weakgc
