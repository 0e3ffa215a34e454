// Counts calls into the C allocator (malloc, calloc, realloc, free) made anywhere in the test
// binary, by interposing them (tests/emulate_malloc_count.cpp). Used to show that the emulator's
// fault path allocates nothing (.req.no-malloc in docs/design/emulate.md). Unavailable under
// AddressSanitizer or ThreadSanitizer, which own the allocator symbols.
#pragma once

#include <cstdint>

namespace emu_test {

// Whether allocator calls are being counted in this build.
bool malloc_counting_available();
// Number of allocator calls so far. signal-safe.
uint64_t malloc_calls();

}  // namespace emu_test
