// Internal slot helpers of weak/ (the access primitives themselves are in weakgc/weak_array.hpp,
// where the inline table paths use them too).
#pragma once

#include <cstdint>

#include "weakgc/weak_array.hpp"

namespace weakgc::detail {

// The header word `splatted` of a weak array (an integer: loading it greys nothing).
inline uint64_t header_splatted(const WeakArray* a) noexcept {
  return slot_load(reinterpret_cast<const uintptr_t*>(&a->splatted));
}

}  // namespace weakgc::detail
