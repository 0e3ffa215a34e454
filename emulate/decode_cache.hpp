// The decode cache: decoded forms by RIP, so a page hit many times decodes once.
//
// Direct-mapped, kCacheEntries entries, each a seqlock over plain words: a writer claims an entry
// by moving its sequence from even to odd (and gives up if another writer holds it, never
// waits), readers retry nothing — a torn or busy read is simply a miss. So lookups and inserts
// are signal-safe and safe between threads and nested handlers.
//
// .inv.cache-validate (docs/design/emulate.md): an entry holds the instruction bytes it was
// decoded from, and a hit requires the code at RIP to match them byte for byte, so code that was
// unmapped, patched or JIT-reused at the same RIP is decoded afresh. Entries hold forms only; the
// effective address is checked against the fault on every use, with the current registers.
#pragma once

#include <cstddef>
#include <cstdint>

#include "emulate/emulate.hpp"

namespace weakgc::detail::emu::cache {

inline constexpr size_t kCacheEntries = 1024;

// Finds the form cached for `rip` whose bytes equal `code` (`len` readable bytes). signal-safe.
bool lookup(uint64_t rip, const uint8_t* code, size_t len, Decoded* out);
// Caches the form `d` decoded from `code` at `rip` (d.length bytes), unless the entry is busy.
// signal-safe.
void insert(uint64_t rip, const uint8_t* code, const Decoded& d);
// Empties the cache (tests, benchmarks). signal-safe.
void clear();

}  // namespace weakgc::detail::emu::cache
