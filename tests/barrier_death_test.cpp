// Fault-handler behaviour that ends (or could end) a process, checked in child processes
// (issue 3): a client's null dereference still dies of SIGSEGV; a stack overflow is reported as
// one; a format whose scan function touches a protected page aborts with the collector's message
// instead of deadlocking; a SIGSEGV handler installed before the first arena still receives the
// faults that are not the arena's, with a usable context.
//
// Death tests run "threadsafe" (the child re-executes this binary and runs only the test), so a
// child starts with no arena and no weakgc handler installed.
#include <signal.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdio>
#include <memory>

#include "support/shadow_graph.hpp"
#include "weakgc/arena.hpp"

// A load whose faulting instruction and successor are known: `movq (%rdi), %rax` then `ret`.
extern "C" uintptr_t wgc_test_load(const void* p);
extern "C" char wgc_test_load_end[];
asm(R"(
  .text
  .globl wgc_test_load
  .type wgc_test_load, @function
wgc_test_load:
  movq (%rdi), %rax
  .globl wgc_test_load_end
wgc_test_load_end:
  ret
  .size wgc_test_load, .-wgc_test_load
)");

namespace {

using weakgc::Arena;
using weakgc::ArenaOptions;
using weakgc::Status;

class BarrierDeathTest : public ::testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

std::unique_ptr<Arena> small_arena() {
  ArenaOptions o;
  o.reserve_bytes = size_t{16} << 20;
  o.trigger_bytes = size_t{1} << 40;
  o.register_thread = false;
  Status st;
  return Arena::create(o, &st);
}

// A store through a null pointer. In assembly, so that no sanitizer check intercepts it before
// the CPU faults.
__attribute__((noinline)) void null_store() {
  void* p = nullptr;
  asm volatile("movl $1, (%0)" : : "r"(p) : "memory");
}

#if defined(__SANITIZE_ADDRESS__)
// Under AddressSanitizer its handler was installed first, so it is the one the fault is
// forwarded to: it reports the SEGV and exits.
#define EXPECT_NULL_DEREF_DEATH(stmt) EXPECT_DEATH(stmt, "SEGV on unknown address")
// Its handler is also the one that reports stack overflows (libsigsegv is not put under a
// handler that was there first, barrier/handler.cpp).
#define EXPECT_STACK_OVERFLOW_DEATH(stmt) EXPECT_DEATH(stmt, "AddressSanitizer: stack-overflow")
#else
#define EXPECT_NULL_DEREF_DEATH(stmt) EXPECT_EXIT(stmt, ::testing::KilledBySignal(SIGSEGV), "")
// Reported by libsigsegv's handler under ours, then the default death.
#define EXPECT_STACK_OVERFLOW_DEATH(stmt) \
  EXPECT_EXIT(stmt, ::testing::KilledBySignal(SIGSEGV), "weakgc: stack overflow in the mutator")
#endif

TEST_F(BarrierDeathTest, ClientNullDereferenceStillDiesOfSigsegv) {
  EXPECT_NULL_DEREF_DEATH({
    auto a = small_arena();
    if (!a) _exit(3);
    null_store();
    _exit(0);
  });
}

__attribute__((noinline)) void null_during_marking_child() {
  auto a = small_arena();
  weakgc::Pool* ams = nullptr;
  if (!a || a->create_pool(weakgc::PoolClass::kAMS, &wgtest::kGraphFormat, &ams) != Status::kOk)
    _exit(3);
  static void* root[1];
  weakgc::RootId id;
  if (a->alloc(ams, 64, &root[0]) != Status::kOk || a->register_root(root, 1, &id) != Status::kOk)
    _exit(3);
  a->start_cycle();
  if (a->stats().pages_protected == 0) _exit(4);
  null_store();
  _exit(0);
}

// The same during marking, with protected pages in the arena.
TEST_F(BarrierDeathTest, ClientNullDereferenceDuringMarkingStillDiesOfSigsegv) {
  EXPECT_NULL_DEREF_DEATH(null_during_marking_child());
}

volatile int g_depth_limit = -1;

__attribute__((noinline)) int recurse(int n) {
  volatile char pad[512];
  pad[n % 512] = static_cast<char>(n);
  if (n == g_depth_limit) return pad[0];
  return recurse(n + 1) + pad[n % 512];
}

__attribute__((noinline)) void overflow_child() {
  auto a = small_arena();
  if (!a) _exit(3);
  recurse(0);
  _exit(0);
}

TEST_F(BarrierDeathTest, StackOverflowIsReportedAsSuch) {
  EXPECT_STACK_OVERFLOW_DEATH(overflow_child());
}

// A format breaking the rule "never dereference another object's mutator address": its scan
// function reads the object named in word 1 directly, which faults while that object is grey.
void evil_scan(weakgc::ScanState&, void* obj, size_t, void*) {
  uintptr_t other = static_cast<uintptr_t*>(obj)[1];
  if (other != 0) (void)*reinterpret_cast<volatile uintptr_t*>(other);
}

__attribute__((noinline)) void self_fault_child() {
  auto a = small_arena();
  weakgc::Format evil{&evil_scan, nullptr};
  weakgc::Pool* bad = nullptr;
  weakgc::Pool* good = nullptr;
  if (!a || a->create_pool(weakgc::PoolClass::kAMS, &evil, &bad) != Status::kOk ||
      a->create_pool(weakgc::PoolClass::kAMS, &wgtest::kGraphFormat, &good) != Status::kOk)
    _exit(3);
  static void* roots[2];
  weakgc::RootId id;
  if (a->alloc(bad, 64, &roots[0]) != Status::kOk || a->alloc(good, 64, &roots[1]) != Status::kOk ||
      a->register_root(roots, 2, &id) != Status::kOk)
    _exit(3);
  static_cast<uintptr_t*>(roots[0])[1] = reinterpret_cast<uintptr_t>(roots[1]);
  a->start_cycle();  // both grey, their pages protected
  while (a->step(1000000)) {
  }
  _exit(0);  // not reached: the scan faults inside the collector
}

TEST_F(BarrierDeathTest, ScanFunctionTouchingAProtectedPageAbortsWithAMessage) {
  EXPECT_DEATH(self_fault_child(), "barrier fault inside the collector");
}

// ------------------------------------------------------------------ chaining

volatile sig_atomic_t g_hits = 0;
void* volatile g_fault_addr = nullptr;

void previous_handler(int, siginfo_t* si, void* ucv) {
  auto* uc = static_cast<ucontext_t*>(ucv);
  g_hits = g_hits + 1;
  g_fault_addr = si->si_addr;
  if (uc->uc_mcontext.gregs[REG_RIP] == reinterpret_cast<greg_t>(&wgc_test_load)) {
    // Emulate the load: it "reads" 0x1234, and execution resumes after it.
    uc->uc_mcontext.gregs[REG_RIP] = reinterpret_cast<greg_t>(&wgc_test_load_end[0]);
    uc->uc_mcontext.gregs[REG_RAX] = 0x1234;
    return;
  }
  _exit(5);  // a fault we did not expect
}

__attribute__((noinline)) void chained_child() {
  // Installed before the first arena exists (this child has none yet).
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = &previous_handler;
  sa.sa_flags = SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGSEGV, &sa, nullptr) != 0) _exit(10);
  void* guard = mmap(nullptr, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (guard == MAP_FAILED) _exit(11);
  auto a = small_arena();
  if (!a) _exit(12);
  struct sigaction cur;
  sigaction(SIGSEGV, nullptr, &cur);
  if (cur.sa_sigaction == &previous_handler) _exit(13);  // the arena's handler is on top now
  // A non-arena fault reaches the previous handler, with si_addr and a context it can change.
  uintptr_t v = wgc_test_load(guard);
  if (g_hits != 1) _exit(14);
  if (g_fault_addr != guard) _exit(15);
  if (v != 0x1234) _exit(16);
  // A barrier fault is the arena's: the previous handler does not see it.
  weakgc::Pool* ams = nullptr;
  static void* root[1];
  weakgc::RootId id;
  if (a->create_pool(weakgc::PoolClass::kAMS, &wgtest::kGraphFormat, &ams) != Status::kOk ||
      a->alloc(ams, 64, &root[0]) != Status::kOk || a->register_root(root, 1, &id) != Status::kOk)
    _exit(17);
  wgtest::store_word(reinterpret_cast<uintptr_t>(root[0]), 0, 99);
  a->start_cycle();
  if (wgtest::load_word(reinterpret_cast<uintptr_t>(root[0]), 0) != 99) _exit(18);
  if (a->stats().faults_scanned != 1) _exit(19);
  if (g_hits != 1) _exit(20);
  // And again after the barrier fault: still chained.
  if (wgc_test_load(guard) != 0x1234 || g_hits != 2) _exit(21);
  fprintf(stderr, "chained ok\n");
  _exit(42);
}

TEST_F(BarrierDeathTest, PreviouslyInstalledSigInfoHandlerStillGetsForeignFaults) {
  EXPECT_EXIT(chained_child(), ::testing::ExitedWithCode(42), "chained ok");
}

}  // namespace
