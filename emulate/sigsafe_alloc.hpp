// A signal-safe allocator for Capstone's CS_OPT_MEM hooks.
//
// Capstone allocates when a handle is opened and when cs_malloc() makes an instruction buffer;
// the decode path itself (cs_disasm_iter) allocates nothing but formats strings with vsnprintf.
// Routing all of it here makes the decode path signal-safe whatever Capstone does inside
// (.req.no-malloc in docs/design/emulate.md): memory comes from a static arena carved by an
// atomic bump pointer, with per-size-class free lists taken by a try-lock that never waits
// (a contended free list is skipped: the block is bump-allocated or leaked instead).
// Pointers that did not come from the arena (allocated before the hooks were installed) are
// passed on to libc, which only happens outside signal handlers.
#pragma once

#include <cstdarg>
#include <cstddef>

namespace weakgc::detail::emu::sigsafe {

// Returns `size` bytes aligned to 16, or nullptr when the arena is exhausted. signal-safe.
void* alloc(size_t size);
// Returns n * size zeroed bytes or nullptr. signal-safe.
void* zalloc(size_t n, size_t size);
// Grows or shrinks a block, keeping its contents. signal-safe for arena blocks.
void* resize(void* p, size_t size);
// Returns a block to its free list. signal-safe for arena blocks.
void release(void* p);
// Formats nothing: writes "" and returns 0. Capstone's operand strings are not needed. signal-safe.
int format_nothing(char* str, size_t size, const char* format, va_list ap);

// Bytes of the arena handed out so far (for tests). signal-safe.
size_t bytes_used();

}  // namespace weakgc::detail::emu::sigsafe
