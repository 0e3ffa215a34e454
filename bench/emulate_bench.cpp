// Cost of one barrier fault on a PROT_NONE page, per fault (docs/design/emulate.md, Measured):
//   BM_FaultBare      the handler only advances RIP past the known 3-byte load: the kernel's
//                     signal delivery and sigreturn, the floor under any emulation;
//   BM_FaultCacheHit  from_ucontext + emulate_at (decode cache hit) + to_ucontext;
//   BM_FaultCacheMiss from_ucontext + decode (Capstone) + emulate + to_ucontext: a miss.
// Benchmarks never assert.
#include <sys/mman.h>
#include <unistd.h>

#include <csignal>
#include <cstdint>
#include <cstring>

#include <benchmark/benchmark.h>

#include "emulate/emulate.hpp"

namespace emu = weakgc::detail::emu;

namespace {

enum class Mode { kBare, kCacheHit, kCacheMiss };
volatile Mode g_mode = Mode::kBare;
uint8_t* g_none = nullptr;  // PROT_NONE view
uint8_t* g_rw = nullptr;    // RW view of the same page

bool rd(void*, uint64_t a, void* out, size_t n) {
  memcpy(out, g_rw + (a - reinterpret_cast<uint64_t>(g_none)), n);
  return true;
}
bool wr(void*, uint64_t a, const void* in, size_t n) {
  memcpy(g_rw + (a - reinterpret_cast<uint64_t>(g_none)), in, n);
  return true;
}

void handler(int, siginfo_t* si, void* ctx) {
  auto* uc = static_cast<ucontext_t*>(ctx);
  if (g_mode == Mode::kBare) {
    uc->uc_mcontext.gregs[REG_RAX] = 0;
    uc->uc_mcontext.gregs[REG_RIP] += 3;  // movq (%rsi), %rax: 48 8b 06
    return;
  }
  emu::RegisterFile r;
  emu::from_ucontext(uc, &r);
  emu::MemoryAccessor mem{nullptr, rd, wr};
  auto code = reinterpret_cast<const uint8_t*>(r.rip);
  auto fault = reinterpret_cast<uint64_t>(si->si_addr);
  if (g_mode == Mode::kCacheHit) {
    if (emu::emulate_at(code, 15, &r, fault, mem, nullptr, nullptr) != emu::Decline::kNone) abort();
  } else {
    emu::Decoded d = emu::decode(code, 15, r, fault);
    if (emu::emulate(d, &r, mem, nullptr) != emu::Decline::kNone) abort();
  }
  emu::to_ucontext(r, uc);
}

void setup() {
  static bool done = false;
  if (done) return;
  done = true;
  emu::init();
  int fd = memfd_create("emu_bench", 0);
  if (fd < 0 || ftruncate(fd, 4096) != 0) abort();
  g_none = static_cast<uint8_t*>(mmap(nullptr, 4096, PROT_NONE, MAP_SHARED, fd, 0));
  g_rw = static_cast<uint8_t*>(mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
  close(fd);
  struct sigaction sa {};
  sa.sa_sigaction = handler;
  sa.sa_flags = SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGSEGV, &sa, nullptr);
}

void run(benchmark::State& state, Mode mode) {
  setup();
  g_mode = mode;
  const uint8_t* p = g_none + 64;
  for (auto _ : state) {
    uint64_t v;
    asm volatile("movq (%%rsi), %%rax" : "=a"(v) : "S"(p) : "memory");
    benchmark::DoNotOptimize(v);
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_FaultBare(benchmark::State& s) {
  run(s, Mode::kBare);
}
void BM_FaultCacheHit(benchmark::State& s) {
  run(s, Mode::kCacheHit);
}
void BM_FaultCacheMiss(benchmark::State& s) {
  run(s, Mode::kCacheMiss);
}
BENCHMARK(BM_FaultBare);
BENCHMARK(BM_FaultCacheHit);
BENCHMARK(BM_FaultCacheMiss);

}  // namespace

BENCHMARK_MAIN();
