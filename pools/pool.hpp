// Pools: AMS (exact mark-sweep, client format), LO (leaf, never scanned) and AWL (weak linked:
// the library's weak-array layout at exact, ephemeron or weak rank). A pool is an allocation
// point; the arena's segments record which pool and rank they serve, and the collector asks the
// segment, not the pool, how to scan (core/collector.cpp).
#pragma once

#include "core/arena_impl.hpp"

namespace weakgc::detail {

// Creates a pool on the arena (lock held). Checks the format for scanned classes.
Status make_pool(ArenaImpl* a, PoolClass cls, const Format* format, weakgc::Pool** out) noexcept;

// Allocates an AWL array of `length` slots at `rank` (lock held); slots start empty, the header
// names `dependent` (may be null). signal-unsafe.
Status alloc_awl_array(ArenaImpl* a, Pool* pool, size_t length, Rank rank, void* dependent,
                       void** out) noexcept;

}  // namespace weakgc::detail
