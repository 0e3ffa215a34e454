// Mutator threads: registration, the stop-the-world handshake of the flip, and stack scanning.
//
// A registered thread's stack and registers are ambiguous roots (DESIGN.md §8). The flip stops
// every other registered thread with a signal (kSuspendSignal): the handler saves the thread's
// registers and stack pointer, posts an acknowledgement, and waits on a futex until the flip
// resumes the world. A thread blocked in a system call takes the signal (the call restarts,
// SA_RESTART); a thread inside a barrier fault takes it while it waits for the arena lock, and
// its mutator stack pointer was recorded on entry to the fault (fault_sp).
//
// Requirements:
//  .req.exit   a thread that exits without unregistering is unregistered by a thread-exit hook;
//              its signal stack and state are freed (seed 003).
//  .req.flip   the flip never deadlocks on a thread that is blocked or inside a fault.
#pragma once

#include <pthread.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "weakgc/status.hpp"

namespace weakgc::detail {

struct ArenaImpl;

struct Pool;

// A per-thread allocation buffer for one (arena, pool, rank, size class): up to 64 cells of one
// allocation-bitmap word, reserved under the arena lock (allocation bits set, zeroed), handed
// out without any lock. .inv.tlab: at every
// flip the reserved cells of every registered thread are ambiguous roots, so a cell handed out
// during marking is black, and a cell is never swept while it sits in a buffer.
struct TlabBin {
  ArenaImpl* arena = nullptr;
  Pool* pool = nullptr;
  uint8_t rank = 0;
  uint8_t size_class = 0;
  uint32_t cell_size = 0;
  uintptr_t base = 0;  // address of the cell for bit 0 of `mask`
  uint64_t mask = 0;   // reserved cells not handed out yet: cell i is at base + i * cell_size
};
inline constexpr int kTlabBins = 64;

// One per OS thread that registered with any arena.
struct ThreadState {
  uint32_t tid = 0;
  pthread_t self{};
  uintptr_t stack_lo = 0, stack_hi = 0;        // the thread's stack mapping
  uintptr_t altstack_lo = 0, altstack_hi = 0;  // its signal stack, if we made one
  bool own_altstack = false;
  int arenas = 0;  // arenas this thread is registered with
  // Written by the suspend handler, read by the flipping thread while this one waits.
  uintptr_t regs[16] = {};
  uintptr_t sp = 0;
  uint64_t faults = 0;  // barrier faults this thread took (statistics, tests)
  // Stop requests: stop_world sets suspend_requested to a new epoch; the thread stops once per
  // epoch, by the signal or by polling while it waits for an arena lock (poll_suspend).
  std::atomic<uint32_t> suspend_requested{0};
  // The last request served. Claimed by compare-and-swap: the poll path can be interrupted by the
  // signal between its check and its claim, and exactly one of the two may acknowledge.
  std::atomic<uint32_t> acked_epoch{0};
  TlabBin tlab[kTlabBins];
  // The mutator's stack pointer while this thread is inside a barrier fault, else 0.
  std::atomic<uintptr_t> fault_sp{0};
};

// Stores the six callee-saved registers (rbx, rbp, r12–r15) into regs[0..6); the caller-saved
// ones are already in the thread's frames. Inline, so it sees the caller's registers. signal-safe.
inline __attribute__((always_inline)) void spill_callee_saved(uintptr_t* regs) noexcept {
  asm volatile(
      "mov %%rbx, 0(%0)\n\t"
      "mov %%rbp, 8(%0)\n\t"
      "mov %%r12, 16(%0)\n\t"
      "mov %%r13, 24(%0)\n\t"
      "mov %%r14, 32(%0)\n\t"
      "mov %%r15, 40(%0)\n\t"
      :
      : "r"(regs)
      : "memory");
}
// Fixes every aligned word of [lo, hi) as an ambiguous reference (a stack), without the
// sanitizers' view of it (redzones, other threads' frames). signal-safe.
void scan_ambiguous_range(ArenaImpl* a, uintptr_t lo, uintptr_t hi) noexcept;

// The calling thread's state, or null if it never registered. signal-safe.
ThreadState* current_thread_state() noexcept;
// Registers the calling thread with the arena (stack, signal stack). kAlready if it is.
Status register_thread(ArenaImpl* a) noexcept;
// Unregisters the calling thread. kNotFound if it was not registered.
Status unregister_thread(ArenaImpl* a) noexcept;
// Installs the suspend handler (once, from install_barrier).
Status install_suspend_handler() noexcept;
// Stops every registered thread of `a` but the caller (arena lock held).
void stop_world(ArenaImpl* a) noexcept;
// Resumes the threads stopped by stop_world.
void start_world(ArenaImpl* a) noexcept;
// Scans the stacks and saved registers of every registered thread of `a` (world stopped).
void scan_thread_roots(ArenaImpl* a) noexcept;
// Stops the calling thread now if a flip asked it to (called while spinning on an arena lock,
// which a thread inside a barrier fault does: some sanitizers hold back signals nested in a
// handler, so the fault path must not depend on the suspend signal arriving). signal-safe.
void poll_suspend() noexcept;
// Number of ThreadStates alive in the process (each owns a signal stack): for leak tests.
size_t live_thread_states() noexcept;
// Number of threads registered with `a` (for tests and statistics).
size_t registered_threads(ArenaImpl* a) noexcept;

}  // namespace weakgc::detail
