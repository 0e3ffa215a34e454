// The barrier: the process-wide SIGSEGV handler that turns a mutator's touch of a protected
// page into collector work (DESIGN.md §5), and the fault dispatch for one arena.
//
// Requirements:
//  .req.chain     faults outside every arena's mutator view, or on pages the barrier did not
//                 protect, go to the action installed before ours, with its flags, siginfo and
//                 ucontext; SIG_DFL means the process dies of SIGSEGV with a core dump.
//  .req.overflow  a stack overflow is reported as such (libsigsegv), not taken for a barrier fault.
//  .req.safe      async-signal-safe: no malloc, no lock the interrupted code may hold, errno kept.
//  .req.self      a fault raised while the faulting thread holds the arena lock is a collector
//                 bug: abort with a message naming the address.
#pragma once

#include "weakgc/status.hpp"

namespace weakgc::detail {

// Installs the SIGSEGV handler (and libsigsegv's stack-overflow handler under it) once per
// process, after warming up the emulator. Thread-safe; idempotent.
Status install_barrier() noexcept;

}  // namespace weakgc::detail
