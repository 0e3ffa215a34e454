// Weak arrays: the library-owned objects of the AWL pool (DESIGN.md §7, seed 004).
//
// A weak array has a length, a dependent (another weak array of the same length, or null) and
// slots. A slot holds a heap reference, kEmpty, kDeleted, or any other word (integers, foreign
// pointers: ignored by the collector). At weak rank, a slot naming an object that died is set to
// kDeleted, and the same slot of the dependent with it, in the same scan: a table built from a
// key array and a value array that are each other's dependent never holds half an entry. At
// ephemeron rank (a value array whose dependent is the key array), a value is traced only while
// its key is otherwise alive. At exact rank the array is an ordinary strong array.
//
// Reading slots with ordinary loads is the point: during a collection the array's pages are
// protected, and the barrier emulates each access (barrier/), so reading a live slot keeps only
// that slot's referent alive and comparing a slot in memory keeps nothing alive.
#pragma once

#include <cstddef>
#include <cstdint>

#include "weakgc/arena.hpp"
#include "weakgc/export.hpp"

namespace weakgc {

inline constexpr uintptr_t kEmpty = 0;    ///< a slot never used
inline constexpr uintptr_t kDeleted = 5;  ///< a slot splatted by the collector or removed

/// The in-memory layout of a weak array (stable: tables index slots directly).
struct WeakArray {
  uint64_t length;       ///< number of slots
  WeakArray* dependent;  ///< the array whose slot i is splatted with this one's, or null
  uint64_t splatted;     ///< slots this array's weak scans splatted (with the dependent's slot)
  WeakArray* graveyard;  ///< null, or an exact-rank array of the same length receiving the
                         ///< surviving half of each entry this array's scans splat
  uintptr_t slot[];      ///< length slots
};

/// Allocates a weak array of `length` slots (all kEmpty) at `rank` with `dependent` (may be null,
/// else a weak array of this arena with the same length). kBadParam for an absurd length or any
/// other dependent. The header's dependent and graveyard are strong references: an array keeps
/// them alive whatever its rank.
WEAKGC_API Status alloc_weak_array(Arena& arena, size_t length, Rank rank, WeakArray* dependent,
                                   WeakArray** out) noexcept;

/// Makes a and b each other's dependent (both must be weak arrays of the same length).
WEAKGC_API Status link_dependents(Arena& arena, WeakArray* a, WeakArray* b) noexcept;

namespace detail {

// Slot accesses in the instruction forms the barrier's emulator serves (DESIGN.md §4, "Single
// access on weak pages"; docs/design/weak.md .req.forms). During marking the pages of weak
// arrays stay protected; each access below faults once and the handler emulates that one
// instruction. Inline assembly, so that the compiler can neither pick another form (a vector
// load of two slots, a load where only a compare is wanted) nor merge or drop an access whose
// memory it thinks it knows:
//   slot_load        movq (mem), reg    the slot's referent is greyed: the caller now holds it
//   slot_store       movq reg, (mem)    the mutator is black: it only stores grey/black refs
//   slot_equals      cmpq reg, (mem)    flags only: the referent is *not* greyed (.inv.probe)
//   slot_is_deleted  cmpq $5, (mem)     flags only

/// Loads a slot (movq): the result is strong.
inline uintptr_t slot_load(const uintptr_t* p) noexcept {
  uintptr_t v;
  asm volatile("movq %1, %0" : "=r"(v) : "m"(*p));
  return v;
}

/// Stores into a slot (movq).
inline void slot_store(uintptr_t* p, uintptr_t v) noexcept {
  asm volatile("movq %1, %0" : "=m"(*p) : "r"(v));
}

/// Whether a slot holds v, compared in memory (cmpq): keeps nothing alive.
inline bool slot_equals(const uintptr_t* p, uintptr_t v) noexcept {
  bool eq;
  asm volatile("cmpq %2, %1" : "=@ccz"(eq) : "m"(*p), "r"(v));
  return eq;
}

/// Whether a slot holds kDeleted, compared in memory (cmpq $5): keeps nothing alive.
inline bool slot_is_deleted(const uintptr_t* p) noexcept {
  static_assert(kDeleted == 5, "the immediate below is kDeleted");
  bool eq;
  asm volatile("cmpq $5, %1" : "=@ccz"(eq) : "m"(*p));
  return eq;
}

}  // namespace detail
}  // namespace weakgc
