// Object formats: how the collector finds the references inside a client's objects.
//
// A format's scan function is called by the collector (possibly from the SIGSEGV handler) with
// the *collector-view* address of an object; it calls ss.fix(slot) on every reference slot.
// Rules for scan functions (checked where cheap, in debug builds):
//  - signal-safe: no malloc, no locks, no I/O;
//  - it must not dereference other heap objects through their (mutator) addresses: a protected
//    page would fault inside the collector and abort. Use ss.collector_view(p) to read them.
//  - slots may hold foreign (non-arena) addresses or tagged integers: fix ignores them.
#pragma once

#include <cstddef>
#include <cstdint>

#include "weakgc/export.hpp"
namespace weakgc {

namespace detail {
struct ArenaImpl;
}

/// Rank of the references an object holds (DESIGN.md §4): exact references keep their referents
/// alive; weak ones are splatted when the referent dies; ephemeron values are traced only while
/// the entry's key (the same index in the dependent weak array) is alive.
enum class Rank : uint8_t { kExact = 0, kEphemeron = 1, kWeak = 2 };

/// Passed to a format's scan function; fix() is the only operation a scanner needs.
class WEAKGC_API ScanState {
 public:
  /// Fixes one exact reference slot (collector-view address): greys the referent if it is a
  /// heap object; ignores foreign addresses; reports arena addresses that are not an object's
  /// base (debug builds) and counts them. signal-safe.
  void fix(void** slot) noexcept;
  /// Translates a mutator address inside the arena to its collector-view alias, so a scanner can
  /// read another object without touching a protected page. signal-safe.
  void* collector_view(const void* p) const noexcept;

  /// Internal: what fix() does.
  enum class Mode : uint8_t { kMark, kVerify, kWeak };
  /// Internal: made by the collector for one scan.
  ScanState(detail::ArenaImpl* arena, Mode mode) noexcept : arena_(arena), mode_(mode) {}
  /// Internal: whether this scan marks or verifies.
  Mode mode() const noexcept { return mode_; }
  /// Internal: arena addresses that were not objects, seen by a verifying scan.
  size_t dangling() const noexcept { return dangling_; }
  /// Internal: names the object a weak-rank scan is splatting in, and its dependent.
  void set_weak_object(uintptr_t obj, size_t size, uintptr_t dependent) noexcept;

 private:
  detail::ArenaImpl* arena_;
  Mode mode_;
  size_t dangling_ = 0;
  uintptr_t weak_obj_ = 0;  // kWeak: the object being scanned (mutator address)
  size_t weak_size_ = 0;
  uintptr_t weak_dep_ = 0;  // kWeak: its dependent (mutator address) or 0
};

/// A client object format (the low-level layer for runtimes).
struct Format {
  /// Scans the object at `obj` (collector view), whose cell is `size` bytes (at least the size
  /// allocated; bytes the client did not write are zero). Required for scanned pools.
  void (*scan)(ScanState& ss, void* obj, size_t size, void* closure) = nullptr;
  /// AWL pools with a client format: maps an object (collector view) to its dependent's mutator
  /// address, or nullptr. When a weak scan splats a slot, the dependent's slot at the same offset
  /// is splatted too. Optional.
  void* (*find_dependent)(void* obj, void* closure) = nullptr;
  void* closure = nullptr;  ///< passed to scan unchanged
};

}  // namespace weakgc
