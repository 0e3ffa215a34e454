// Cost of a page-scan barrier fault against a bare SIGSEGV round trip, measured side by side in
// one process (DESIGN.md §9). Not a test: it never asserts.
//
// Each round touches `pages` (default 1024) protected pages once each, one load per page; the
// time of the touch loop divided by the pages is the cost of one fault as the mutator sees it
// (kernel delivery, handler, sigreturn, the restarted load).
//
//   bare-skip      a PROT_NONE page in a mapping of our own; the handler (installed in place of
//                  weakgc's for the measurement, same flags SA_SIGINFO|SA_ONSTACK|SA_NODEFER)
//                  advances RIP past the 3-byte load: the signal round trip alone
//   bare-mprotect  PROT_NONE pages of our own; the handler mprotects the faulting page RW and
//                  returns, the load runs again: the round trip plus one mprotect (what a
//                  minimal page-protection barrier must do)
//   weakgc-1obj    a weakgc arena during marking: one grey 4 KiB object per page (size class
//                  4096: one cell per page), each named by an exact root. The fault scans that
//                  one object and update_protection() unprotects the page
//   weakgc-64obj   the same with 64 grey 64-byte objects per page (each with two references to
//                  neighbours on its page): the fault scans a full page
// For the weakgc variants the same cycle's grey pages are also scanned without any fault, by
// arena.step() (the collector scans them through its own view and unprotects them in coalesced
// runs): "step" is the time per page of the cycle's remaining work (marking, weak phase, sweep)
// when nothing was touched, "fault+rest" the time per page of the touch loop plus the remaining
// work after it. Their difference is what the barrier adds per page over collector-side
// scanning. "handler" is the time spent inside weakgc's fault handler (Stats::fault_pauses).
//
// Usage: barrier_bench [pages [rounds [reps]]]
#include <signal.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "weakgc/gc.hpp"

namespace {

constexpr size_t kPage = 4096;

uint64_t now_ns() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

// A load the skip handler can step over: `movq (%rdi), %rax` is 3 bytes (48 8b 07).
inline void load_rdi(const void* p) {
  asm volatile("movq (%%rdi), %%rax" : : "D"(p) : "rax", "memory");
}
constexpr int kLoadLength = 3;

inline void load_word(const void* p) {
  (void)*static_cast<const volatile uintptr_t*>(p);
}

// ---------------------------------------------------------------------------------- bare

void skip_handler(int, siginfo_t*, void* ucv) {
  auto* uc = static_cast<ucontext_t*>(ucv);
  uc->uc_mcontext.gregs[REG_RIP] += kLoadLength;
}

void unprotect_handler(int, siginfo_t* si, void*) {
  int saved = errno;
  uintptr_t page = reinterpret_cast<uintptr_t>(si->si_addr) & ~(kPage - 1);
  if (mprotect(reinterpret_cast<void*>(page), kPage, PROT_READ | PROT_WRITE) != 0) _exit(3);
  errno = saved;
}

// Installs `h` as the SIGSEGV action (with weakgc's flags) for the object's lifetime, then puts
// the previous action (weakgc's barrier) back.
class ScopedHandler {
 public:
  explicit ScopedHandler(void (*h)(int, siginfo_t*, void*)) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = h;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &saved_);
  }
  ~ScopedHandler() { sigaction(SIGSEGV, &saved_, nullptr); }

 private:
  struct sigaction saved_;
};

struct Bare {
  char* mem = nullptr;
  size_t pages = 0;
  explicit Bare(size_t n) : pages(n) {
    mem = static_cast<char*>(
        mmap(nullptr, n * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    if (mem == MAP_FAILED) std::abort();
    memset(mem, 1, n * kPage);  // commit the pages: faults are protection faults only
  }
  ~Bare() { munmap(mem, pages * kPage); }

  // ns per fault: the handler steps over the load; the page stays PROT_NONE.
  double skip_round() {
    mprotect(mem, kPage, PROT_NONE);
    ScopedHandler h(&skip_handler);
    uint64_t t0 = now_ns();
    for (size_t i = 0; i < pages; ++i) load_rdi(mem);
    uint64_t t1 = now_ns();
    mprotect(mem, kPage, PROT_READ | PROT_WRITE);
    return static_cast<double>(t1 - t0) / static_cast<double>(pages);
  }
  // ns per fault: the handler unprotects the page; the load runs again.
  double mprotect_round() {
    mprotect(mem, pages * kPage, PROT_NONE);
    ScopedHandler h(&unprotect_handler);
    uint64_t t0 = now_ns();
    for (size_t i = 0; i < pages; ++i) load_word(mem + i * kPage);
    uint64_t t1 = now_ns();
    return static_cast<double>(t1 - t0) / static_cast<double>(pages);
  }
};

// -------------------------------------------------------------------------------- weakgc

struct Big : weakgc::GcObject {
  weakgc::Ref<Big> a;
  char pad[4096 - 16] = {};
  void trace(weakgc::Visitor& v) const override { v.visit(a); }
};
static_assert(sizeof(Big) == 4096);

struct Small : weakgc::GcObject {
  weakgc::Ref<Small> a;
  weakgc::Ref<Small> b;
  uint64_t payload[5] = {};
  void trace(weakgc::Visitor& v) const override {
    v.visit(a);
    v.visit(b);
  }
};
static_assert(sizeof(Small) == 64);

struct WeakgcPages {
  std::unique_ptr<weakgc::Arena> arena;
  std::vector<void*> roots;  // exact roots: every object that is grey at each flip
  std::vector<char*> touch;  // one address per page to load from
  size_t pages = 0;

  WeakgcPages(size_t n, bool full_page) : pages(n) {
    weakgc::ArenaOptions o;
    o.incremental = 1;
    o.trigger_bytes = size_t{1} << 40;  // cycles only when this benchmark starts them
    arena = std::make_unique<weakgc::Arena>(o);
    if (!full_page) {
      for (size_t i = 0; i < n; ++i) {
        Big* b = weakgc::make<Big>(*arena);
        roots.push_back(b);
        touch.push_back(reinterpret_cast<char*>(b) + 64);
      }
    } else {
      std::vector<Small*> objs;
      for (size_t i = 0; i < n * 64; ++i) objs.push_back(weakgc::make<Small>(*arena));
      for (size_t i = 0; i < objs.size(); ++i) {
        size_t page0 = i / 64 * 64;
        objs[i]->a = objs[page0 + (i + 1) % 64];
        objs[i]->b = objs[page0 + (i + 7) % 64];
        roots.push_back(objs[i]);
        if (i % 64 == 0) touch.push_back(reinterpret_cast<char*>(objs[i]) + 24);
      }
    }
    weakgc::RootId id;
    (void)arena->register_root(roots.data(), roots.size(), &id);
    arena->collect();
  }

  // Finishes the cycle in progress with explicit steps; returns the time taken.
  uint64_t finish() {
    uint64_t t0 = now_ns();
    while (arena->step(1'000'000'000)) {
    }
    return now_ns() - t0;
  }

  struct Round {
    double fault_ns;    // touch loop, per page
    double handler_ns;  // inside weakgc's handler, per fault
    double rest_ns;     // remaining cycle work after the touches, per page
    double step_ns;     // the whole cycle's work by step() with no touch, per page
    uint64_t faults;
  };

  Round round() {
    Round r{};
    // Collector-side: flip, then let step() scan the grey pages.
    arena->start_cycle();
    r.step_ns = static_cast<double>(finish()) / static_cast<double>(pages);
    // Barrier-side: flip, touch every page (one fault each), then finish.
    weakgc::Stats s0 = arena->stats();
    arena->start_cycle();
    uint64_t t0 = now_ns();
    for (char* p : touch) load_word(p);
    uint64_t t1 = now_ns();
    weakgc::Stats s1 = arena->stats();
    r.rest_ns = static_cast<double>(finish()) / static_cast<double>(pages);
    r.fault_ns = static_cast<double>(t1 - t0) / static_cast<double>(pages);
    r.faults = s1.fault_pauses.count - s0.fault_pauses.count;
    r.handler_ns = r.faults == 0
                       ? 0
                       : static_cast<double>(s1.fault_pauses.total_ns - s0.fault_pauses.total_ns) /
                             static_cast<double>(r.faults);
    return r;
  }
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  size_t pages = argc > 1 ? static_cast<size_t>(std::max(16L, atol(argv[1]))) : 1024;
  int rounds = argc > 2 ? std::max(1, atoi(argv[2])) : 20;
  int reps = argc > 3 ? std::max(1, atoi(argv[3])) : 3;

  // The arenas first: weakgc's barrier is the process's SIGSEGV handler from here on, and the
  // bare measurements swap it out only around their own loops.
  WeakgcPages one(pages, false);
  WeakgcPages full(pages, true);
  Bare bare(pages);
  std::printf(
      "barrier_bench: %zu pages x %d rounds, %d repetitions (median of per-repetition "
      "medians)\n",
      pages, rounds, reps);

  std::vector<double> skip, mprot, f1, h1, r1, s1, f64, h64, r64, s64;
  uint64_t faults1 = 0, faults64 = 0;
  for (int rep = 0; rep < reps; ++rep) {
    std::vector<double> a, b, c, d, e, f, g, h, i, j;
    for (int k = 0; k < rounds; ++k) {
      // Interleave the four variants round by round so drift affects them alike.
      a.push_back(bare.skip_round());
      b.push_back(bare.mprotect_round());
      WeakgcPages::Round x = one.round();
      c.push_back(x.fault_ns);
      d.push_back(x.handler_ns);
      e.push_back(x.rest_ns);
      f.push_back(x.step_ns);
      faults1 += x.faults;
      WeakgcPages::Round y = full.round();
      g.push_back(y.fault_ns);
      h.push_back(y.handler_ns);
      i.push_back(y.rest_ns);
      j.push_back(y.step_ns);
      faults64 += y.faults;
    }
    skip.push_back(median(a));
    mprot.push_back(median(b));
    f1.push_back(median(c));
    h1.push_back(median(d));
    r1.push_back(median(e));
    s1.push_back(median(f));
    f64.push_back(median(g));
    h64.push_back(median(h));
    r64.push_back(median(i));
    s64.push_back(median(j));
    std::printf(
        "  rep %d: bare-skip %.0f ns, bare-mprotect %.0f ns, weakgc-1obj %.0f ns "
        "(handler %.0f), weakgc-64obj %.0f ns (handler %.0f)\n",
        rep + 1, skip.back(), mprot.back(), f1.back(), h1.back(), f64.back(), h64.back());
  }
  double ms = median(skip), mm = median(mprot), m1 = median(f1), mh1 = median(h1), mr1 = median(r1),
         ms1 = median(s1), m64 = median(f64), mh64 = median(h64), mr64 = median(r64),
         ms64 = median(s64);
  std::printf("faults taken: weakgc-1obj %llu, weakgc-64obj %llu (expected %llu each)\n",
              static_cast<unsigned long long>(faults1), static_cast<unsigned long long>(faults64),
              static_cast<unsigned long long>(pages) * static_cast<unsigned long long>(rounds) *
                  static_cast<unsigned long long>(reps));
  std::printf("\n%-15s %10s %10s %12s %12s %14s\n", "variant", "ns/fault", "handler", "vs skip",
              "vs mprotect", "step ns/page");
  std::printf("%-15s %10.0f %10s %12s %12s %14s\n", "bare-skip", ms, "-", "1.00", "-", "-");
  std::printf("%-15s %10.0f %10s %12.2f %12s %14s\n", "bare-mprotect", mm, "-", mm / ms, "1.00",
              "-");
  std::printf("%-15s %10.0f %10.0f %12.2f %12.2f %14.0f\n", "weakgc-1obj", m1, mh1, m1 / ms,
              m1 / mm, ms1);
  std::printf("%-15s %10.0f %10.0f %12.2f %12.2f %14.0f\n", "weakgc-64obj", m64, mh64, m64 / ms,
              m64 / mm, ms64);
  std::printf(
      "barrier overhead per page over collector-side scanning ((fault + rest) - step): "
      "1obj %.0f ns, 64obj %.0f ns\n",
      m1 + mr1 - ms1, m64 + mr64 - ms64);
  std::printf(
      "RESULT barrier_bench bare_skip_ns=%.0f bare_mprotect_ns=%.0f weakgc_1obj_ns=%.0f "
      "weakgc_64obj_ns=%.0f handler_1obj_ns=%.0f handler_64obj_ns=%.0f "
      "1obj/mprotect=%.2f 64obj/mprotect=%.2f 1obj/skip=%.2f\n",
      ms, mm, m1, m64, mh1, mh64, m1 / mm, m64 / mm, m1 / ms);
  return 0;
}
