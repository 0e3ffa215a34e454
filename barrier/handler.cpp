// The process-wide SIGSEGV handler and its chaining (.req.chain, .req.overflow, .req.safe).
#include <signal.h>
#include <sigsegv.h>
#include <string.h>
#include <ucontext.h>
#include <unistd.h>

#include <cerrno>
#include <mutex>

#include "barrier/barrier.hpp"
#include "core/arena_impl.hpp"
#include "emulate/emulate.hpp"
#include "weakgc/barrier.h"

namespace weakgc::detail {

namespace {

struct sigaction g_previous;  // the action installed before ours (written once, before install)
bool g_installed = false;
std::mutex g_install_mutex;
alignas(16) char g_overflow_stack[64 * 1024];

void forward(int sig, siginfo_t* info, void* uc) {
  const struct sigaction& prev = g_previous;
  if (prev.sa_flags & SA_SIGINFO) {
    if (prev.sa_sigaction != nullptr) {
      prev.sa_sigaction(sig, info, uc);
      return;
    }
  } else if (prev.sa_handler != SIG_DFL && prev.sa_handler != SIG_IGN) {
    prev.sa_handler(sig);
    return;
  }
  // Default action: restore it and return; the faulting instruction runs again and the kernel
  // kills the process with SIGSEGV (and a core dump where enabled).
  struct sigaction dfl;
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  sigaction(SIGSEGV, &dfl, nullptr);
}

void on_segv(int sig, siginfo_t* info, void* uc) {
  int saved = errno;
  uintptr_t addr = reinterpret_cast<uintptr_t>(info->si_addr);
  ArenaImpl* a = arena_for(addr);
  if (a != nullptr) {
    // Record where the mutator's stack is, for a flip that stops this thread mid-fault.
    ThreadState* t = current_thread_state();
    uintptr_t prev_sp = 0;
    if (t != nullptr) {
      prev_sp = t->fault_sp.load(std::memory_order_relaxed);
      auto* ctx = static_cast<ucontext_t*>(uc);
      t->fault_sp.store(static_cast<uintptr_t>(ctx->uc_mcontext.gregs[REG_RSP]),
                        std::memory_order_release);
    }
    bool handled = a->handle_fault(addr, uc);
    if (t != nullptr) {
      if (handled) ++t->faults;
      t->fault_sp.store(prev_sp, std::memory_order_release);
    }
    if (handled) {
      errno = saved;
      return;
    }
  }
  errno = saved;
  forward(sig, info, uc);
}

void on_stack_overflow(int emergency, stackoverflow_context_t) {
  write_err(emergency ? "weakgc: stack overflow in the mutator (emergency: the fault handler "
                        "itself overflowed)\n"
                      : "weakgc: stack overflow in the mutator (a guard page was hit; this is not "
                        "a barrier fault)\n");
  // Die the way the program would have died without us.
  signal(SIGSEGV, SIG_DFL);
  raise(SIGSEGV);
  _exit(139);
}

}  // namespace

Status install_barrier() noexcept {
  std::lock_guard<std::mutex> g(g_install_mutex);
  if (g_installed) return Status::kOk;
  // Warm the decoder before any fault can reach it (its first use allocates).
  if (!emu::init()) return Status::kOsError;
  // libsigsegv first, so that our handler sits above it and forwards non-arena faults to it —
  // but only if nobody handles SIGSEGV yet: libsigsegv does not chain to the action it replaces
  // (it resets SIG_DFL on a fault it does not own), so a client's handler under it would never
  // see its faults again (.req.chain). A client handler keeps its faults, stack overflows too.
  struct sigaction before;
  if (sigaction(SIGSEGV, nullptr, &before) != 0) return Status::kOsError;
  bool client = (before.sa_flags & SA_SIGINFO)
                    ? before.sa_sigaction != nullptr
                    : before.sa_handler != SIG_DFL && before.sa_handler != SIG_IGN;
  if (!client && stackoverflow_install_handler(&on_stack_overflow, g_overflow_stack,
                                               sizeof g_overflow_stack) != 0) {
    // No stack-overflow detection on this system: still usable, just less informative.
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = &on_segv;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGSEGV, &sa, &g_previous) != 0) return Status::kOsError;
  if (install_suspend_handler() != Status::kOk) return Status::kOsError;
  g_installed = true;
  return Status::kOk;
}

}  // namespace weakgc::detail

extern "C" int weakgc_sigsegv_dispatch(void* fault_address, int serious) {
  (void)serious;
  uintptr_t addr = reinterpret_cast<uintptr_t>(fault_address);
  weakgc::detail::ArenaImpl* a = weakgc::detail::arena_for(addr);
  if (a == nullptr) return 0;
  int saved = errno;
  int handled = a->handle_fault(addr, nullptr) ? 1 : 0;
  errno = saved;
  return handled;
}
