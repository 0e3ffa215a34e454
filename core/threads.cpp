#include "core/threads.hpp"

#include <linux/futex.h>
#include <semaphore.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include <time.h>

#include <algorithm>
#include <cerrno>
#include <mutex>
#include <new>

#include "core/arena_impl.hpp"

namespace weakgc::detail {

namespace {

constexpr size_t kAltStackSize = 64 * 1024;

__attribute__((tls_model("initial-exec"))) thread_local ThreadState* t_state = nullptr;
pthread_key_t g_exit_key;
std::once_flag g_key_once;
sem_t g_ack;
std::atomic<uint32_t> g_resume_epoch{0};
std::mutex g_world_mutex;  // one stop-the-world at a time, process-wide
int g_suspend_signal = 0;

void futex_wait(std::atomic<uint32_t>* word, uint32_t expected) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAIT_PRIVATE, expected, nullptr,
          nullptr, 0);
}
void futex_wake_all(std::atomic<uint32_t>* word) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAKE_PRIVATE, INT32_MAX, nullptr,
          nullptr, 0);
}

std::atomic<uint32_t> g_suspend_epoch{0};

// Stops this thread for the flip in progress (at most once per request). `sp` bounds the part
// of the stack in use; registers were saved by the caller. signal-safe.
void suspend_self(ThreadState* t, uintptr_t sp) {
  uint32_t want = t->suspend_requested.load(std::memory_order_acquire);
  uint32_t served = t->acked_epoch.load(std::memory_order_acquire);
  if (want == 0 || want == served) return;  // no request, or already served
  // Claim the request: if the suspend signal interrupted the poll path right here and served it,
  // the claim fails and this path must not acknowledge a second time.
  if (!t->acked_epoch.compare_exchange_strong(served, want, std::memory_order_acq_rel)) return;
  t->sp = sp;
  uint32_t epoch = g_resume_epoch.load(std::memory_order_acquire);
  sem_post(&g_ack);
  while (g_resume_epoch.load(std::memory_order_acquire) == epoch)
    futex_wait(&g_resume_epoch, epoch);
}

void on_suspend(int, siginfo_t*, void* ucv) {
  int saved = errno;
  ThreadState* t = t_state;
  if (t != nullptr) {
    uint32_t want = t->suspend_requested.load(std::memory_order_acquire);
    if (want != 0 && want != t->acked_epoch.load(std::memory_order_acquire)) {
      const auto* uc = static_cast<const ucontext_t*>(ucv);
      static constexpr int kRegs[16] = {REG_RAX, REG_RCX, REG_RDX, REG_RBX, REG_RSP, REG_RBP,
                                        REG_RSI, REG_RDI, REG_R8,  REG_R9,  REG_R10, REG_R11,
                                        REG_R12, REG_R13, REG_R14, REG_R15};
      for (int i = 0; i < 16; ++i)
        t->regs[i] = static_cast<uintptr_t>(uc->uc_mcontext.gregs[kRegs[i]]);
      suspend_self(t, reinterpret_cast<uintptr_t>(__builtin_frame_address(0)));
    }
  }
  errno = saved;
}

std::atomic<size_t> g_live_states{0};

void release_state(ThreadState* t) {
  g_live_states.fetch_sub(1, std::memory_order_relaxed);
  if (t->own_altstack) {
    stack_t ss{};
    ss.ss_flags = SS_DISABLE;
    sigaltstack(&ss, nullptr);
    munmap(reinterpret_cast<void*>(t->altstack_lo), t->altstack_hi - t->altstack_lo);
  }
  delete t;
}

// .req.exit: the thread-exit hook. Unregisters from every arena still listing this thread.
void on_thread_exit(void* p) {
  auto* t = static_cast<ThreadState*>(p);
  for (auto& slot : g_arenas) {
    ArenaImpl* a = slot.load(std::memory_order_acquire);
    if (a == nullptr) continue;
    LockGuard g(a->lock);
    auto it = std::find(a->threads.begin(), a->threads.end(), t);
    if (it != a->threads.end()) a->threads.erase(it);
  }
  t_state = nullptr;
  release_state(t);
}

ThreadState* make_state() {
  std::call_once(g_key_once, [] { pthread_key_create(&g_exit_key, &on_thread_exit); });
  auto* t = new (std::nothrow) ThreadState();
  if (t == nullptr) return nullptr;
  g_live_states.fetch_add(1, std::memory_order_relaxed);
  t->tid = current_thread_id();
  t->self = pthread_self();
  pthread_attr_t attr;
  if (pthread_getattr_np(pthread_self(), &attr) == 0) {
    void* lo = nullptr;
    size_t size = 0;
    pthread_attr_getstack(&attr, &lo, &size);
    pthread_attr_destroy(&attr);
    t->stack_lo = reinterpret_cast<uintptr_t>(lo);
    t->stack_hi = t->stack_lo + size;
  }
  // The barrier handler runs SA_ONSTACK; give the thread a signal stack unless it has one.
  stack_t old{};
  if (sigaltstack(nullptr, &old) == 0 && (old.ss_flags & SS_DISABLE)) {
    void* mem =
        mmap(nullptr, kAltStackSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem != MAP_FAILED) {
      stack_t ss{};
      ss.ss_sp = mem;
      ss.ss_size = kAltStackSize;
      if (sigaltstack(&ss, nullptr) == 0) {
        t->own_altstack = true;
        t->altstack_lo = reinterpret_cast<uintptr_t>(mem);
        t->altstack_hi = t->altstack_lo + kAltStackSize;
      } else {
        munmap(mem, kAltStackSize);
      }
    }
  } else if (!(old.ss_flags & SS_DISABLE)) {
    t->altstack_lo = reinterpret_cast<uintptr_t>(old.ss_sp);
    t->altstack_hi = t->altstack_lo + old.ss_size;
  }
  pthread_setspecific(g_exit_key, t);
  t_state = t;
  return t;
}

}  // namespace

__attribute__((no_sanitize("address", "thread"))) void scan_ambiguous_range(ArenaImpl* a,
                                                                            uintptr_t lo,
                                                                            uintptr_t hi) noexcept {
  lo = (lo + 7) & ~uintptr_t{7};
  for (uintptr_t p = lo; p + sizeof(uintptr_t) <= hi; p += sizeof(uintptr_t))
    a->fix_ambiguous(*reinterpret_cast<const uintptr_t*>(p));
}

ThreadState* current_thread_state() noexcept {
  return t_state;
}

size_t live_thread_states() noexcept {
  return g_live_states.load(std::memory_order_relaxed);
}

__attribute__((noinline)) void poll_suspend() noexcept {
  ThreadState* t = t_state;
  if (t == nullptr) return;
  uint32_t want = t->suspend_requested.load(std::memory_order_acquire);
  if (want == 0 || want == t->acked_epoch.load(std::memory_order_acquire)) return;
  spill_callee_saved(t->regs);
  for (int i = 6; i < 16; ++i) t->regs[i] = 0;
  // Scan from the stack pointer: the prologue may have pushed the caller's callee-saved
  // registers below the frame pointer.
  uintptr_t sp;
  asm volatile("mov %%rsp, %0" : "=r"(sp));
  suspend_self(t, sp);
}

Status install_suspend_handler() noexcept {
  g_suspend_signal = SIGRTMIN + 3;
  if (sem_init(&g_ack, 0, 0) != 0) return Status::kOsError;
  struct sigaction sa {};
  sa.sa_sigaction = &on_suspend;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  sigfillset(&sa.sa_mask);
  sigdelset(&sa.sa_mask, SIGSEGV);  // a suspended thread never faults, but never block it
  if (sigaction(g_suspend_signal, &sa, nullptr) != 0) return Status::kOsError;
  return Status::kOk;
}

Status register_thread(ArenaImpl* a) noexcept {
  ThreadState* t = t_state != nullptr ? t_state : make_state();
  if (t == nullptr) return Status::kNoMemory;
  // A registered thread must take the suspend signal, or the next flip waits for it forever: a
  // program that blocks every signal in its threads (one thread doing sigwait) would hang.
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, g_suspend_signal);
  if (pthread_sigmask(SIG_UNBLOCK, &s, nullptr) != 0) return Status::kOsError;
  LockGuard g(a->lock);
  if (std::find(a->threads.begin(), a->threads.end(), t) != a->threads.end())
    return Status::kAlready;
  try {
    a->threads.push_back(t);
  } catch (const std::bad_alloc&) {
    return Status::kNoMemory;
  }
  ++t->arenas;
  return Status::kOk;
}

Status unregister_thread(ArenaImpl* a) noexcept {
  ThreadState* t = t_state;
  if (t == nullptr) return Status::kNotFound;
  LockGuard g(a->lock);
  auto it = std::find(a->threads.begin(), a->threads.end(), t);
  if (it == a->threads.end()) return Status::kNotFound;
  a->threads.erase(it);
  // Cells still reserved in this thread's buffers become garbage; the next cycle frees them.
  for (TlabBin& b : t->tlab)
    if (b.arena == a) b = TlabBin{};
  --t->arenas;
  return Status::kOk;
}

size_t registered_threads(ArenaImpl* a) noexcept {
  LockGuard g(a->lock);
  return a->threads.size();
}

void stop_world(ArenaImpl* a) noexcept {
  g_world_mutex.lock();
  ThreadState* me = t_state;
  uint32_t epoch = g_suspend_epoch.fetch_add(1, std::memory_order_acq_rel) + 1;
  if (epoch == 0) epoch = g_suspend_epoch.fetch_add(1, std::memory_order_acq_rel) + 1;
  int sent = 0;
  for (ThreadState* t : a->threads) {
    if (t == me) continue;
    t->suspend_requested.store(epoch, std::memory_order_release);
    if (pthread_kill(t->self, g_suspend_signal) == 0) ++sent;
  }
  // Every thread signalled answers; one that does not within seconds has the signal blocked
  // again (after registering) or is stopped in a debugger. Said once, then waited for.
  bool warned = false;
  for (int i = 0; i < sent; ++i) {
    for (;;) {
      timespec until;
      clock_gettime(CLOCK_REALTIME, &until);
      until.tv_sec += 10;
      if (sem_timedwait(&g_ack, &until) == 0) break;
      if (errno == ETIMEDOUT && !warned) {
        write_err(
            "weakgc: a registered thread has not stopped for the flip in 10 s; a registered "
            "thread must not block the collector's suspend signal (SIGRTMIN+3)\n");
        warned = true;
      }
    }
  }
}

void start_world(ArenaImpl*) noexcept {
  g_resume_epoch.fetch_add(1, std::memory_order_acq_rel);
  futex_wake_all(&g_resume_epoch);
  g_world_mutex.unlock();
}

void scan_thread_roots(ArenaImpl* a) noexcept {
  ThreadState* me = t_state;
  for (ThreadState* t : a->threads) {
    // .inv.tlab: every reserved cell still in a buffer. A cell the owner was taking when it
    // stopped is either still in the mask or already in its registers or stack.
    for (const TlabBin& b : t->tlab)
      if (b.arena == a)
        for (uint64_t m = b.mask; m != 0; m &= m - 1)
          a->fix_ambiguous(b.base +
                           uintptr_t{b.cell_size} * static_cast<unsigned>(__builtin_ctzll(m)));
    if (t == me) continue;  // the flipping thread scans its own stack (scan_thread_stacks)
    for (uintptr_t r : t->regs) a->fix_ambiguous(r);
    uintptr_t sp = t->sp;
    if (sp >= t->stack_lo && sp < t->stack_hi) {
      scan_ambiguous_range(a, sp, t->stack_hi);
    } else {
      // Suspended on its signal stack, i.e. inside a barrier fault: scan the signal stack in use
      // (it holds the fault's ucontext) and the mutator stack below the faulting frame.
      if (sp >= t->altstack_lo && sp < t->altstack_hi) scan_ambiguous_range(a, sp, t->altstack_hi);
      uintptr_t fsp = t->fault_sp.load(std::memory_order_acquire);
      uintptr_t lo = fsp != 0 && fsp - 128 >= t->stack_lo ? fsp - 128 : t->stack_lo;
      scan_ambiguous_range(a, lo, t->stack_hi);
    }
  }
}

}  // namespace weakgc::detail
