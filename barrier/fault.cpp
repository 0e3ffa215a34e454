// Fault dispatch for one arena: scan the page, or emulate the single access on a weak page
// (DESIGN.md §4 "Single access on weak pages"). Everything here is signal-safe (.req.safe).
#include <errno.h>
#include <sys/uio.h>
#include <ucontext.h>
#include <unistd.h>

#include <cstring>

#include "core/arena_impl.hpp"
#include "core/events.hpp"
#include "emulate/emulate.hpp"

namespace weakgc::detail {

namespace {

// The memory accessor handed to the emulator: reads and writes go through the collector view,
// and only to pages of weak arrays (a grey exact object must never be read without a scan).
struct AccessCtx {
  ArenaImpl* arena;
};

bool access_ok(ArenaImpl* a, uint64_t addr, size_t len) {
  if (len == 0 || !a->in_arena(addr) || !a->in_arena(addr + len - 1)) return false;
  for (size_t p = a->page_index(addr); p <= a->page_index(addr + len - 1); ++p)
    if (!(a->page_flags[p] & kPageWeak)) return false;
  return true;
}

bool acc_read(void* ctx, uint64_t addr, void* out, size_t len) {
  ArenaImpl* a = static_cast<AccessCtx*>(ctx)->arena;
  if (!access_ok(a, addr, len)) return false;
  memcpy(out, a->cview<char>(addr), len);
  return true;
}

bool acc_write(void* ctx, uint64_t addr, const void* in, size_t len) {
  ArenaImpl* a = static_cast<AccessCtx*>(ctx)->arena;
  if (!access_ok(a, addr, len)) return false;
  memcpy(a->cview<char>(addr), in, len);
  return true;
}

// Copies up to n bytes of code at `rip` into out, stopping at the first unmapped or unreadable
// page; returns the count. process_vm_readv on our own process: a system call, so an unmapped
// page is an error it reports, not a fault. Async-signal-safe (errno is saved).
size_t read_code(uint64_t rip, uint8_t* out, size_t n) {
  int saved = errno;
  struct iovec local = {out, n};
  struct iovec remote = {reinterpret_cast<void*>(rip), n};
  ssize_t got = process_vm_readv(getpid(), &local, 1, &remote, 1, 0);
  errno = saved;
  return got > 0 ? static_cast<size_t>(got) : 0;
}

}  // namespace

bool ArenaImpl::handle_fault(uintptr_t addr, void* ucontext) noexcept {
  if (!in_arena(addr)) return false;
  // .req.self: the collector never touches the mutator view; if this thread holds the arena, the
  // fault is a collector bug (or a scan function breaking its rules). Waiting would deadlock.
  if (lock.held_by_me())
    fatal(
        "barrier fault inside the collector (collector bug or a format's scan function touched a "
        "protected page)",
        reinterpret_cast<void*>(addr));
  bool concurrent = faults_in_flight.fetch_add(1, std::memory_order_acq_rel) > 0;
  struct InFlight {
    std::atomic<int>& n;
    ~InFlight() { n.fetch_sub(1, std::memory_order_acq_rel); }
  } in_flight{faults_in_flight};
  LockGuard g(lock);
  if (concurrent) ++stats.faults_concurrent;
  size_t page = page_index(addr);
  if (!(page_flags[page] & kPageProtected)) {
    // Not protected (any more): another thread got here first. Retry the access. A fault on an
    // unprotected arena page cannot come from anything else: the views are always mapped.
    return true;
  }
  uint64_t t0 = now_ns();
  FaultEvent event(this, addr, t0);  // records the outcome when the handler is done
  in_collector = true;
  bool weak_page = (page_flags[page] & kPageWeak) != 0;
  bool handled = false;
  if (weak_page && phase == Phase::kMark) {
    if (options.emulation && ucontext != nullptr &&
        single_access[page] < options.single_access_budget) {
      auto* uc = static_cast<ucontext_t*>(ucontext);
      emu::RegisterFile regs;
      emu::from_ucontext(uc, &regs);
      const uint8_t* code = reinterpret_cast<const uint8_t*>(regs.rip);
      // Read directly at most up to the end of the code page: the next page may not be mapped.
      // An instruction that may continue there is copied by a syscall that reports an unmapped
      // page instead of faulting on it (a page-straddling instruction is otherwise declined).
      size_t avail = 4096 - (regs.rip & 4095);
      size_t len = avail < 15 ? avail : 15;
      uint8_t straddle[15];
      if (avail < 15) {
        size_t got = read_code(regs.rip, straddle, sizeof straddle);
        if (got > avail) {
          code = straddle;
          len = got;
        }
      }
      AccessCtx ctx{this};
      emu::MemoryAccessor mem{&ctx, &acc_read, &acc_write};
      emu::Decoded d;
      emu::Access acc;
      emu::Decline why = emu::emulate_at(code, len, &regs, addr, mem, &d, &acc);
      if (why == emu::Decline::kNone) {
        if (acc.direction == emu::Direction::kLoad) {
          // The mutator now holds what it loaded: grey the referent of every aligned word read.
          uintptr_t lo = acc.address & ~uintptr_t{7};
          for (uintptr_t w = lo; w < acc.address + acc.width; w += 8)
            fix_ambiguous(*cview<uintptr_t>(w));
        }
        // A store needs nothing: the mutator is black, so it stores grey or black references.
        // A compare needs nothing: the slot's value never reaches a register.
        emu::to_ucontext(regs, uc);
        ++single_access[page];
        ++stats.faults_emulated;
        handled = true;
      } else {
        ++stats.faults_declined;
        event.declined(static_cast<uint8_t>(why), d.mnemonic);
        size_t r = static_cast<size_t>(why);
        if (r < sizeof stats.declined_by_reason / sizeof stats.declined_by_reason[0])
          ++stats.declined_by_reason[r];
      }
    } else if (options.emulation && ucontext != nullptr) {
      ++stats.faults_budget;
    } else {
      ++stats.faults_declined;
    }
  }
  if (!handled) {
    // Scan the page's grey objects (at weak rank in the weak phase, where the fate of every
    // referent is known; at exact rank before it, which retains what weak slots name).
    bool weak = phase == Phase::kWeak;
    if (weak && weak_page)
      ++stats.faults_weak_phase;
    else if (!weak_page)
      ++stats.faults_scanned;
    while (grey_count[page] > 0) scan_page(page, weak);
    note_grey_change(page);
  }
  update_protection();
  in_collector = false;
  stats.fault_pauses.record(now_ns() - t0);
  return true;
}

}  // namespace weakgc::detail
