// Tests of emulate/ beyond the differential test (docs/design/emulate.md, "Tests"): declines,
// the decode cache, statistics, and real faults on a PROT_NONE page caught by a SIGSEGV handler.
// Instruction bytes come from GNU as (the top-level asm block below), never hand-encoded.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "emulate/emulate.hpp"
#include "emulate_malloc_count.hpp"

namespace emu = weakgc::detail::emu;

// Each snippet: a label, the instruction, an end label. Referenced as emu_snip_<name>.
#define EMU_SNIPPETS(X)                                     \
  X(add_mr, "add QWORD PTR [rbx], rcx")                     \
  X(xchg, "xchg QWORD PTR [rbx], rcx")                      \
  X(lock_add, "lock add DWORD PTR [rbx], 1")                \
  X(lock_cmpxchg, "lock cmpxchg QWORD PTR [rbx], rcx")      \
  X(cmpxchg, "cmpxchg QWORD PTR [rbx], rcx")                \
  X(fs_mov, "mov rax, QWORD PTR fs:[rbx]")                  \
  X(gs_mov, "mov rax, QWORD PTR gs:0x28")                   \
  X(push_m, "push QWORD PTR [rbx]")                         \
  X(movsq, "movsq")                                         \
  X(rep_movsb, "rep movsb")                                 \
  X(mov_sreg, "mov WORD PTR [rbx], es")                     \
  X(vex_ymm_load, "vmovdqu ymm1, YMMWORD PTR [rbx]")        \
  X(vex_ymm_store, "vmovdqu YMMWORD PTR [rbx], ymm1")       \
  X(evex_store, "vmovups XMMWORD PTR [rbx]{k1}, xmm1")      \
  X(xrelease_mov, "xrelease mov QWORD PTR [rbx], rcx")      \
  X(movnti, "movnti QWORD PTR [rbx], rcx")                  \
  X(eip_rel, "mov eax, DWORD PTR [eip+0x10]")               \
  X(mov_rr, "mov rax, rbx")                                 \
  X(mov_load, "mov rax, QWORD PTR [rbx+8]")                 \
  X(mov_load32, "mov ecx, DWORD PTR [rbx+8]")               \
  X(long_load, "mov rax, QWORD PTR [rbx+rcx*4+0x12345678]") \
  X(movdqa_load, "movdqa xmm2, XMMWORD PTR [rbx]")          \
  X(cmp_rip, "cmp QWORD PTR [rip+0x100], rcx")

#define EMU_DECLARE(name, text) extern "C" const uint8_t emu_snip_##name[], emu_snip_##name##_end[];
EMU_SNIPPETS(EMU_DECLARE)
#define EMU_ASM(name, text)                                                          \
  ".globl emu_snip_" #name "\n.hidden emu_snip_" #name "\nemu_snip_" #name ": " text \
  "\n.globl emu_snip_" #name "_end\n.hidden emu_snip_" #name "_end\nemu_snip_" #name "_end: nop\n"
asm(".pushsection .rodata.emu_snippets, \"a\"\n.intel_syntax noprefix\n" EMU_SNIPPETS(
    EMU_ASM) ".att_syntax prefix\n.popsection\n");

namespace {

struct Snippet {
  const uint8_t* code;
  size_t len;
};
#define EMU_SNIP(name)                                                            \
  Snippet {                                                                       \
    emu_snip_##name, static_cast<size_t>(emu_snip_##name##_end - emu_snip_##name) \
  }

class Emulate : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { ASSERT_TRUE(emu::init()); }
};

emu::RegisterFile regs_with(uint64_t rbx) {
  emu::RegisterFile r{};
  r.gpr[emu::kRbx] = rbx;
  r.rflags = 0x202;
  return r;
}

// Decodes a snippet with rbx = 0x1000 and the fault at rbx.
emu::Decline decline_of(Snippet s) {
  emu::RegisterFile r = regs_with(0x1000);
  return emu::decode(s.code, s.len, r, 0x1000).decline;
}

TEST_F(Emulate, DeclinesWhatItDoesNotEmulate) {
  EXPECT_EQ(decline_of(EMU_SNIP(add_mr)), emu::Decline::kUnsupported);
  EXPECT_EQ(decline_of(EMU_SNIP(xchg)), emu::Decline::kUnsupported);
  EXPECT_EQ(decline_of(EMU_SNIP(cmpxchg)), emu::Decline::kUnsupported);
  EXPECT_EQ(decline_of(EMU_SNIP(push_m)), emu::Decline::kUnsupported);
  EXPECT_EQ(decline_of(EMU_SNIP(movsq)), emu::Decline::kUnsupported);
  EXPECT_EQ(decline_of(EMU_SNIP(rep_movsb)), emu::Decline::kUnsupported);
  EXPECT_EQ(decline_of(EMU_SNIP(mov_sreg)), emu::Decline::kUnsupported);
  EXPECT_EQ(decline_of(EMU_SNIP(vex_ymm_load)), emu::Decline::kUnsupported);
  EXPECT_EQ(decline_of(EMU_SNIP(vex_ymm_store)), emu::Decline::kUnsupported);
  EXPECT_EQ(decline_of(EMU_SNIP(evex_store)), emu::Decline::kUnsupported);
  EXPECT_EQ(decline_of(EMU_SNIP(xrelease_mov)), emu::Decline::kUnsupported);
  EXPECT_EQ(decline_of(EMU_SNIP(movnti)), emu::Decline::kUnsupported);
  EXPECT_EQ(decline_of(EMU_SNIP(eip_rel)), emu::Decline::kUnsupported);
  EXPECT_EQ(decline_of(EMU_SNIP(mov_rr)), emu::Decline::kNoMemoryOperand);
}

TEST_F(Emulate, DeclinesLockAndSegmentPrefixes) {
  EXPECT_EQ(decline_of(EMU_SNIP(lock_add)), emu::Decline::kLockPrefix);
  EXPECT_EQ(decline_of(EMU_SNIP(lock_cmpxchg)), emu::Decline::kLockPrefix);
  EXPECT_EQ(decline_of(EMU_SNIP(fs_mov)), emu::Decline::kSegmentPrefix);
  EXPECT_EQ(decline_of(EMU_SNIP(gs_mov)), emu::Decline::kSegmentPrefix);
}

TEST_F(Emulate, DeclinesAnEffectiveAddressOtherThanTheFault) {
  Snippet s = EMU_SNIP(mov_load);  // [rbx+8]
  emu::RegisterFile r = regs_with(0x1000);
  EXPECT_EQ(emu::decode(s.code, s.len, r, 0x1008).decline, emu::Decline::kNone);
  EXPECT_EQ(emu::decode(s.code, s.len, r, 0x1000).decline, emu::Decline::kAddressMismatch);
  EXPECT_EQ(emu::decode(s.code, s.len, r, 0x1009).decline, emu::Decline::kAddressMismatch);
  Snippet rip = EMU_SNIP(cmp_rip);  // relative to the next instruction
  r.rip = 0x400000;
  emu::Decoded d = emu::decode(rip.code, rip.len, r, 0x400000 + rip.len + 0x100);
  EXPECT_EQ(d.decline, emu::Decline::kNone);
  EXPECT_EQ(d.direction, emu::Direction::kCompare);
}

TEST_F(Emulate, DeclinesMisalignedAlignedSseMoves) {
  Snippet s = EMU_SNIP(movdqa_load);
  EXPECT_EQ(emu::decode(s.code, s.len, regs_with(0x1000), 0x1000).decline, emu::Decline::kNone);
  EXPECT_EQ(emu::decode(s.code, s.len, regs_with(0x1008), 0x1008).decline,
            emu::Decline::kUnsupported);
}

TEST_F(Emulate, NeverEmulatesTruncatedBytes) {
  Snippet s = EMU_SNIP(long_load);
  emu::RegisterFile r = regs_with(0x1000);
  for (size_t len = 0; len < s.len; ++len) {
    emu::Decline d = emu::decode(s.code, len, r, 0x1000 + 0x12345678).decline;
    EXPECT_TRUE(d == emu::Decline::kTruncated || d == emu::Decline::kDecodeFailed)
        << len << " bytes: " << emu::decline_name(d);
  }
  EXPECT_EQ(emu::decode(s.code, s.len, r, 0x1000 + 0x12345678).decline, emu::Decline::kNone);
}

// Accessor over a plain buffer standing for the address range [base, base + size).
struct Buffer {
  uint64_t base;
  uint8_t bytes[64];
  static bool read(void* ctx, uint64_t a, void* out, size_t n) {
    auto* b = static_cast<Buffer*>(ctx);
    if (a < b->base || a + n > b->base + sizeof b->bytes) return false;
    memcpy(out, b->bytes + (a - b->base), n);
    return true;
  }
  static bool write(void* ctx, uint64_t a, const void* in, size_t n) {
    auto* b = static_cast<Buffer*>(ctx);
    if (a < b->base || a + n > b->base + sizeof b->bytes) return false;
    memcpy(b->bytes + (a - b->base), in, n);
    return true;
  }
  emu::MemoryAccessor accessor() { return {this, read, write}; }
};

TEST_F(Emulate, EmulatesALoadAndReportsTheAccess) {
  Snippet s = EMU_SNIP(mov_load);
  Buffer buf{0x1000, {}};
  uint64_t v = 0x1122334455667788;
  memcpy(buf.bytes + 8, &v, 8);
  emu::RegisterFile r = regs_with(0x1000);
  r.rip = 0x5000;
  emu::Decoded d;
  emu::Access acc;
  ASSERT_EQ(emu::emulate_at(s.code, s.len, &r, 0x1008, buf.accessor(), &d, &acc),
            emu::Decline::kNone);
  EXPECT_EQ(r.gpr[emu::kRax], v);
  EXPECT_EQ(r.rip, 0x5000 + s.len);
  EXPECT_EQ(acc.address, 0x1008u);
  EXPECT_EQ(acc.width, 8);
  EXPECT_EQ(acc.direction, emu::Direction::kLoad);
  EXPECT_EQ(acc.value[0], v);
}

TEST_F(Emulate, LeavesRegistersAloneWhenTheAccessorRefuses) {
  Snippet s = EMU_SNIP(mov_load);
  Buffer buf{0x9000, {}};  // does not cover 0x1008
  emu::RegisterFile r = regs_with(0x1000);
  r.gpr[emu::kRax] = 42;
  emu::RegisterFile before = r;
  emu::Access acc;
  EXPECT_EQ(emu::emulate_at(s.code, s.len, &r, 0x1008, buf.accessor(), nullptr, &acc),
            emu::Decline::kAccessorFailed);
  EXPECT_EQ(memcmp(&r, &before, sizeof r), 0);
}

TEST_F(Emulate, CacheHitRevalidatesBytesAndAddress) {
  // Code in a writable buffer at a fixed "RIP": the same RIP first holds a 64-bit load, then
  // (patched) a 32-bit load; then the registers move so the cached address no longer matches.
  Snippet a = EMU_SNIP(mov_load), b = EMU_SNIP(mov_load32);
  uint8_t code[16] = {};
  Buffer buf{0x1000, {}};
  uint64_t v = 0xaabbccdd11223344;
  memcpy(buf.bytes + 8, &v, 8);
  memcpy(code, a.code, a.len);
  emu::RegisterFile r = regs_with(0x1000);
  r.rip = 0x777000;
  r.gpr[emu::kRcx] = ~0ull;
  ASSERT_EQ(emu::emulate_at(code, 15, &r, 0x1008, buf.accessor(), nullptr, nullptr),
            emu::Decline::kNone);
  EXPECT_EQ(r.gpr[emu::kRax], v);
  memcpy(code, b.code, b.len);
  r.rip = 0x777000;
  ASSERT_EQ(emu::emulate_at(code, 15, &r, 0x1008, buf.accessor(), nullptr, nullptr),
            emu::Decline::kNone);
  EXPECT_EQ(r.gpr[emu::kRcx], v & 0xffffffff);
  EXPECT_EQ(r.rip, 0x777000 + b.len);
  r.rip = 0x777000;
  r.gpr[emu::kRbx] = 0x1010;  // now [rbx+8] = 0x1018
  EXPECT_EQ(emu::emulate_at(code, 15, &r, 0x1008, buf.accessor(), nullptr, nullptr),
            emu::Decline::kAddressMismatch);
}

TEST_F(Emulate, CountsDeclinesByMnemonic) {
  Snippet s = EMU_SNIP(xchg);
  emu::RegisterFile r = regs_with(0x1000);
  Buffer buf{0x1000, {}};
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(emu::emulate_at(s.code, s.len, &r, 0x1000, buf.accessor(), nullptr, nullptr),
              emu::Decline::kUnsupported);
  }
  emu::MnemonicCount counts[8];
  size_t n = emu::declined_by_mnemonic(counts, 8);
  bool found = false;
  for (size_t i = 0; i < n; ++i) {
    if (std::string(emu::mnemonic_name(counts[i].mnemonic)) == "xchg") {
      found = true;
      EXPECT_GE(counts[i].count, 3u);
    }
    if (i > 0) {
      EXPECT_GE(counts[i - 1].count, counts[i].count);
    }
  }
  EXPECT_TRUE(found);
}

TEST_F(Emulate, ConcurrentThreadsShareTheCacheAndHandlePool) {
  Snippet a = EMU_SNIP(mov_load), b = EMU_SNIP(mov_load32);
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&, t] {
      Buffer buf{0x1000, {}};
      uint64_t v = 0x0102030405060708ull * (t + 1);
      memcpy(buf.bytes + 8, &v, 8);
      for (int i = 0; i < 20000; ++i) {
        Snippet s = (i + t) % 2 ? a : b;
        emu::RegisterFile r = regs_with(0x1000);
        r.rip = 0x100000 + 64 * (i % 64) + (s.code == a.code ? 0 : 8);
        if (emu::emulate_at(s.code, s.len, &r, 0x1008, buf.accessor(), nullptr, nullptr) !=
                emu::Decline::kNone ||
            (s.code == a.code ? r.gpr[emu::kRax] != v : r.gpr[emu::kRcx] != (v & 0xffffffff)))
          wrong.fetch_add(1);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
}

// --- End to end: real faults on a PROT_NONE view of a memfd, emulated through its RW view. ---

struct Views {
  uint8_t* none = nullptr;  // PROT_NONE: what the "mutator" touches
  uint8_t* rw = nullptr;    // the same pages, read-write: what the accessor touches
  size_t size = 4096;
};
Views g_views;
std::atomic<int> g_faults{0};
std::atomic<bool> g_use_cache{true};
std::atomic<bool> g_fallback_dies{false};

bool views_read(void*, uint64_t a, void* out, size_t n) {
  auto lo = reinterpret_cast<uint64_t>(g_views.none);
  if (a < lo || a + n > lo + g_views.size) return false;
  memcpy(out, g_views.rw + (a - lo), n);
  return true;
}
bool views_write(void*, uint64_t a, const void* in, size_t n) {
  auto lo = reinterpret_cast<uint64_t>(g_views.none);
  if (a < lo || a + n > lo + g_views.size) return false;
  memcpy(g_views.rw + (a - lo), in, n);
  return true;
}

void e2e_handler(int, siginfo_t* si, void* ctx) {
  auto* uc = static_cast<ucontext_t*>(ctx);
  g_faults.fetch_add(1, std::memory_order_relaxed);
  emu::RegisterFile r;
  emu::from_ucontext(uc, &r);
  emu::MemoryAccessor mem{nullptr, views_read, views_write};
  auto fault = reinterpret_cast<uint64_t>(si->si_addr);
  auto code = reinterpret_cast<const uint8_t*>(r.rip);
  emu::Decline res;
  if (g_use_cache.load(std::memory_order_relaxed)) {
    res = emu::emulate_at(code, 15, &r, fault, mem, nullptr, nullptr);
  } else {
    emu::Decoded d = emu::decode(code, 15, r, fault);
    res = d.decline == emu::Decline::kNone ? emu::emulate(d, &r, mem, nullptr) : d.decline;
  }
  if (res == emu::Decline::kNone) {
    emu::to_ucontext(r, uc);
    return;
  }
  // The fallback: here, the default action (the death test expects it).
  signal(SIGSEGV, SIG_DFL);
}

class EmulateFault : public Emulate {
 protected:
  static void SetUpTestSuite() {
    Emulate::SetUpTestSuite();
    int fd = memfd_create("emu_e2e", 0);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(ftruncate(fd, 4096), 0);
    g_views.none = static_cast<uint8_t*>(mmap(nullptr, 4096, PROT_NONE, MAP_SHARED, fd, 0));
    g_views.rw =
        static_cast<uint8_t*>(mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
    close(fd);
    ASSERT_NE(g_views.none, MAP_FAILED);
    ASSERT_NE(g_views.rw, MAP_FAILED);
    static uint8_t altstack[64 * 1024];
    stack_t ss{};
    ss.ss_sp = altstack;
    ss.ss_size = sizeof altstack;
    ASSERT_EQ(sigaltstack(&ss, nullptr), 0);
    struct sigaction sa {};
    sa.sa_sigaction = e2e_handler;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    ASSERT_EQ(sigaction(SIGSEGV, &sa, &old_), 0);
  }
  static void TearDownTestSuite() { sigaction(SIGSEGV, &old_, nullptr); }
  static struct sigaction old_;
};
struct sigaction EmulateFault::old_;

// The protection of the mapping holding `p`, from /proc/self/maps ("---s", "rw-s", ...).
std::string protection_of(const void* p) {
  FILE* f = fopen("/proc/self/maps", "r");
  char line[512];
  std::string prot;
  auto a = reinterpret_cast<uint64_t>(p);
  while (f != nullptr && fgets(line, sizeof line, f) != nullptr) {
    unsigned long lo, hi;
    char perms[8];
    if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) == 3 && a >= lo && a < hi) prot = perms;
  }
  if (f != nullptr) fclose(f);
  return prot;
}

TEST_F(EmulateFault, LoadsStoresAndComparesThroughAProtectedPage) {
  auto* slot = reinterpret_cast<uint64_t*>(g_views.none + 64);
  auto* rw_slot = reinterpret_cast<uint64_t*>(g_views.rw + 64);
  *rw_slot = 0x1122334455667788;
  int f0 = g_faults.load();

  uint64_t v;
  asm volatile("movq %1, %0" : "=r"(v) : "m"(*slot));
  EXPECT_EQ(v, 0x1122334455667788u);

  asm volatile("movq %1, %0" : "=m"(slot[1]) : "r"(uint64_t{0xfeedface}) : "memory");
  EXPECT_EQ(rw_slot[1], 0xfeedfaceu);

  uint8_t eq;
  asm volatile("cmpq %2, %1\n\tsete %0"
               : "=q"(eq)
               : "m"(*slot), "r"(uint64_t{0x1122334455667788})
               : "cc");
  EXPECT_EQ(eq, 1);

  uint32_t lo;
  asm volatile("movl %1, %0" : "=r"(lo) : "m"(*reinterpret_cast<uint32_t*>(slot)));
  EXPECT_EQ(lo, 0x55667788u);

  alignas(16) uint8_t out[16];
  memcpy(g_views.rw + 128, "0123456789abcdef", 16);
  asm volatile("movdqu %1, %%xmm3\n\tmovdqu %%xmm3, %0"
               : "=m"(out)
               : "m"(*(g_views.none + 128))
               : "xmm3");
  EXPECT_EQ(memcmp(out, "0123456789abcdef", 16), 0);

  EXPECT_EQ(g_faults.load() - f0, 5);
  EXPECT_EQ(protection_of(slot).substr(0, 3), "---");  // the page stays protected
  asm volatile("movq %1, %0" : "=r"(v) : "m"(*slot));  // and faults again
  EXPECT_EQ(g_faults.load() - f0, 6);
}

// A VEX.128 load writes the xmm register and zeroes everything above it (bits 255:128 of the
// ymm register, and 511:256 of the zmm register with AVX-512), state that lives in the XSAVE
// area of the signal frame, not in RegisterFile: the emulation must clear it there too.
TEST_F(EmulateFault, VexLoadZeroesTheUpperHalvesOfItsRegister) {
  if (!__builtin_cpu_supports("avx")) GTEST_SKIP() << "no AVX";
  memcpy(g_views.rw + 640, "0123456789abcdef", 16);
  alignas(16) uint8_t pattern[16];
  memset(pattern, 0xab, sizeof pattern);
  alignas(16) uint8_t lo[16], hi[16];
  const uint8_t zero[16] = {};
  int f0 = g_faults.load();
  asm volatile(
      "vmovdqu %2, %%xmm3\n\t"
      "vinsertf128 $1, %%xmm3, %%ymm3, %%ymm3\n\t"  // bits 255:128 of ymm3 non-zero
      "vmovdqu %3, %%xmm3\n\t"                      // faults: emulated
      "vmovdqu %%xmm3, %0\n\t"
      "vextractf128 $1, %%ymm3, %1\n\t"
      : "=m"(lo), "=m"(hi)
      : "m"(pattern), "m"(*reinterpret_cast<const uint8_t(*)[16]>(g_views.none + 640))
      : "xmm3");
  EXPECT_EQ(g_faults.load() - f0, 1);
  EXPECT_EQ(memcmp(lo, "0123456789abcdef", 16), 0);
  EXPECT_EQ(memcmp(hi, zero, 16), 0) << "bits 255:128 survived the emulated VEX load";

  // vmovq: bits 127:64 are zeroed as well.
  asm volatile(
      "vmovdqu %2, %%xmm3\n\t"
      "vinsertf128 $1, %%xmm3, %%ymm3, %%ymm3\n\t"
      "vmovq %3, %%xmm3\n\t"  // faults: emulated
      "vmovdqu %%xmm3, %0\n\t"
      "vextractf128 $1, %%ymm3, %1\n\t"
      : "=m"(lo), "=m"(hi)
      : "m"(pattern), "m"(*reinterpret_cast<const uint64_t*>(g_views.none + 640))
      : "xmm3");
  EXPECT_EQ(g_faults.load() - f0, 2);
  EXPECT_EQ(memcmp(lo, "01234567", 8), 0);
  EXPECT_EQ(memcmp(lo + 8, zero, 8), 0);
  EXPECT_EQ(memcmp(hi, zero, 16), 0);

  if (!__builtin_cpu_supports("avx512f")) return;
  alignas(32) uint8_t top[32];
  asm volatile(
      "vmovdqu %1, %%xmm3\n\t"
      "vinsertf128 $1, %%xmm3, %%ymm3, %%ymm3\n\t"
      "vinserti64x4 $1, %%ymm3, %%zmm3, %%zmm3\n\t"  // bits 511:256 of zmm3 non-zero
      "vmovdqu %2, %%xmm3\n\t"                       // faults: emulated
      "vextracti64x4 $1, %%zmm3, %%ymm4\n\t"
      "vmovdqu %%ymm4, %0\n\t"
      "vzeroupper\n\t"
      : "=m"(top)
      : "m"(pattern), "m"(*reinterpret_cast<const uint8_t(*)[16]>(g_views.none + 640))
      : "xmm3", "xmm4");
  EXPECT_EQ(g_faults.load() - f0, 3);
  EXPECT_EQ(memcmp(top, zero, 16), 0) << "bits 511:256 survived the emulated VEX load";
  EXPECT_EQ(memcmp(top + 16, zero, 16), 0);
}

TEST_F(EmulateFault, TheFaultPathDoesNotAllocate) {
  if (!emu_test::malloc_counting_available()) GTEST_SKIP() << "allocator owned by the sanitizer";
  auto* slot = reinterpret_cast<uint64_t*>(g_views.none + 256);
  auto* rw_slot = reinterpret_cast<uint64_t*>(g_views.rw + 256);
  uint64_t sum = 0, expect = 0;
  int f0 = g_faults.load();
  uint64_t m0 = emu_test::malloc_calls();
  {
    void* volatile p = malloc(16);  // the counter works
    free(p);
  }
  ASSERT_EQ(emu_test::malloc_calls() - m0, 2u);
  m0 = emu_test::malloc_calls();
  for (uint64_t i = 0; i < 10000; ++i) {
    g_use_cache.store(i % 2 == 0);  // cache hits and full decodes alike
    *rw_slot = i;
    uint64_t v;
    asm volatile("movq %1, %0" : "=r"(v) : "m"(*slot));
    sum += v;
    expect += i;
  }
  uint64_t m1 = emu_test::malloc_calls();
  g_use_cache.store(true);
  EXPECT_EQ(m1 - m0, 0u);
  EXPECT_EQ(sum, expect);
  EXPECT_EQ(g_faults.load() - f0, 10000);
}

TEST_F(EmulateFault, DeclinedInstructionFallsBack) {
  // xchg is not emulated: the handler's fallback (here the default action) runs.
  EXPECT_EXIT(
      {
        auto* slot = reinterpret_cast<uint64_t*>(g_views.none + 512);
        uint64_t v = 1;
        asm volatile("xchgq %0, %1" : "+r"(v), "+m"(*slot));
      },
      ::testing::KilledBySignal(SIGSEGV), "");
}

}  // namespace
