// Accesses to weak-array slots in instruction forms the barrier's emulator serves (DESIGN.md §4
// "Single access on weak pages"; docs/design/weak.md .req.forms).
//
// During marking the pages of weak arrays stay protected; every access below faults once and
// the fault handler emulates that one instruction. Written as inline assembly so that the
// compiler can neither pick another form (a vector load of two slots, a load where we only want
// a compare) nor merge or drop accesses whose memory it thinks it knows:
//   slot_load        movq (mem), reg    the slot's referent is greyed: the caller now holds it
//   slot_store       movq reg, (mem)    the mutator is black: it only stores grey/black refs
//   slot_equals      cmpq reg, (mem)    flags only: the referent is *not* greyed (.inv.probe)
//   slot_is_deleted  cmpq $5, (mem)     flags only
// Internal to weak/.
#pragma once

#include <cstdint>

#include "weakgc/weak_array.hpp"

namespace weakgc::detail {

inline uintptr_t slot_load(const uintptr_t* p) noexcept {
  uintptr_t v;
  asm volatile("movq %1, %0" : "=r"(v) : "m"(*p));
  return v;
}

inline void slot_store(uintptr_t* p, uintptr_t v) noexcept {
  asm volatile("movq %1, %0" : "=m"(*p) : "r"(v));
}

inline bool slot_equals(const uintptr_t* p, uintptr_t v) noexcept {
  bool eq;
  asm volatile("cmpq %2, %1" : "=@ccz"(eq) : "m"(*p), "r"(v));
  return eq;
}

inline bool slot_is_deleted(const uintptr_t* p) noexcept {
  static_assert(kDeleted == 5, "the immediate below is kDeleted");
  bool eq;
  asm volatile("cmpq $5, %1" : "=@ccz"(eq) : "m"(*p));
  return eq;
}

// The header word `splatted` of a weak array (an integer: loading it greys nothing).
inline uint64_t header_splatted(const WeakArray* a) noexcept {
  return slot_load(reinterpret_cast<const uintptr_t*>(&a->splatted));
}

}  // namespace weakgc::detail
