// Assertions and the fatal path.
//
// WEAKGC_CHECK is always on; WEAKGC_DCHECK only in debug builds (WEAKGC_DEBUG). The fatal path
// writes with write(2), never allocates, and is safe in a signal handler.
#pragma once

#include <cstddef>
#include <cstdint>

namespace weakgc::detail {

// Writes "weakgc: <msg>" (and an optional address) to stderr and aborts. signal-safe.
[[noreturn]] void fatal(const char* msg, const void* addr = nullptr) noexcept;
[[noreturn]] void check_failed(const char* expr, const char* file, int line) noexcept;

// Writes a string to stderr. signal-safe.
void write_err(const char* s) noexcept;
// Formats v in hex ("0x...") into buf (≥ 19 bytes), returns buf. signal-safe.
char* format_hex(uint64_t v, char* buf) noexcept;
// Formats v in decimal into buf (≥ 21 bytes), returns buf. signal-safe.
char* format_dec(uint64_t v, char* buf) noexcept;
// Monotonic nanoseconds. signal-safe (clock_gettime).
uint64_t now_ns() noexcept;

#if defined(WEAKGC_DEBUG)
inline constexpr bool kDebug = true;
#else
inline constexpr bool kDebug = false;
#endif

}  // namespace weakgc::detail

#define WEAKGC_CHECK(expr)                                                                       \
  do {                                                                                           \
    if (__builtin_expect(!(expr), 0)) ::weakgc::detail::check_failed(#expr, __FILE__, __LINE__); \
  } while (0)

#if defined(WEAKGC_DEBUG)
#define WEAKGC_DCHECK(expr) WEAKGC_CHECK(expr)
#else
#define WEAKGC_DCHECK(expr) \
  do {                      \
  } while (0 && (expr))
#endif
