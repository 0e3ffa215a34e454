// Result codes for everything in weakgc that can fail for a reason other than a bug.
// Bugs are assertions (WEAKGC_CHECK); these are the ordinary answers, MPS style.
#pragma once

#include "weakgc/export.hpp"
namespace weakgc {

enum class [[nodiscard]] Status{
    kOk = 0,
    kNoMemory,  ///< the arena (or the OS) has no memory left for this request
    kLimit,     ///< a fixed internal limit was reached (e.g. too many arenas)
    kBadParam,  ///< an argument was invalid (zero or absurd size, null format, ...)
    kNotFound,  ///< the thing named (a root, a registration) is not known
    kAlready,   ///< the thing is already registered
    kOsError,   ///< a system call failed; errno tells more
    kUnimplemented};

/// Returns a static, human-readable name for a status ("ok", "no memory", ...).
WEAKGC_API const char* status_name(Status s) noexcept;

}  // namespace weakgc
