/* weakgc barrier hook for programs that run libsigsegv's global handler.
 *
 * weakgc installs its own SIGSEGV handler and forwards every fault it does not own to the handler
 * installed before it. If your program installs libsigsegv's sigsegv_install_handler() *after*
 * creating a weakgc arena, libsigsegv sees barrier faults first: call this from your handler
 * before anything else and return its result if it is non-zero:
 *
 *     static int my_handler(void* addr, int serious) {
 *       if (weakgc_sigsegv_dispatch(addr, serious)) return 1;
 *       ...your own handling...
 *     }
 *
 * Without a ucontext the barrier cannot emulate a single access, so it scans the page instead. */
#ifndef WEAKGC_BARRIER_H
#define WEAKGC_BARRIER_H

#include "weakgc/export.hpp"
#ifdef __cplusplus
extern "C" {
#endif

/** Handles a barrier fault at fault_address; returns 1 if it was one (the access may be
 *  retried), 0 otherwise. Async-signal-safe. */
WEAKGC_API int weakgc_sigsegv_dispatch(void* fault_address, int serious);

#ifdef __cplusplus
}
#endif

#endif
