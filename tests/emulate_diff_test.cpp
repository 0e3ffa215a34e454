// Differential test of emulate/ against the CPU (.test.diff in docs/design/emulate.md).
//
// Every case is one instruction assembled by GNU as from tests/emulate_gen.py's output (forms x
// registers x addressing modes x widths). Each round of a case draws a random register file
// (GPRs, RFLAGS arithmetic bits, XMM) and random memory around a random target, points the
// memory operand at the target, and runs the instruction twice through the trampoline emu_run:
//   1. natively, on a readable and writable test area;
//   2. on the same area made PROT_NONE: the CPU faults, a real SA_SIGINFO SIGSEGV handler takes
//      the ucontext and runs from_ucontext / emulate_at / to_ucontext against an RW alias of
//      the area (memfd mapped twice), and execution continues after the instruction.
// Then registers, defined RFLAGS bits, XMM registers, the RIP the emulator produced and the
// whole area must be identical. The fault address is the CPU's (si_addr), not a model's.
//
// Not a benchmark. Seeded: EMU_SEED=<n> reproduces a run; every failure prints the seed.
// Rounds per case: EMU_DIFF_ROUNDS (compile-time default, overridable by the environment).
#include <sys/mman.h>
#include <unistd.h>

#include <csignal>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>

#include <gtest/gtest.h>

#include "emulate/emulate.hpp"
#include "emulate_malloc_count.hpp"

#ifndef EMU_DIFF_ROUNDS
#define EMU_DIFF_ROUNDS 20
#endif

namespace emu = weakgc::detail::emu;

// The register state emu_run loads before and stores after the instruction.
struct State {
  uint64_t gpr[16];
  uint64_t rflags;
  uint64_t pad;
  alignas(16) uint8_t xmm[16][16];
};
static_assert(offsetof(State, rflags) == 128 && offsetof(State, xmm) == 144,
              "layout shared with emulate_gen.py");

// One generated case (emulate_gen.py writes the table).
struct Case {
  uint64_t start, end;
  const char* text;
  int64_t base, index, scale, disp, mode, fixed, align, flags, data, width, imm;
};

extern "C" {
extern const uint64_t emu_case_count;
extern const Case emu_cases[];
extern unsigned char emu_area_h[];
void emu_run(State* s, uint64_t code);
}

namespace {

constexpr int64_t kFlagAddr32 = 1, kFlagAfUndefined = 2, kFlagCompare = 4;  // emulate_gen.py
constexpr int64_t kModeReg = 0, kModeRip = 1, kModeAbs = 2;
constexpr uint64_t kAreaLow = 0x30000000;  // emulate_gen.py AREA_L
constexpr size_t kAreaBytes = 4 * 4096;
constexpr uint64_t kArithFlags = 0x8d5;  // CF PF AF ZF SF OF
constexpr uint64_t kAF = 0x10;

struct Area {
  uint8_t* view = nullptr;   // the addresses instructions use; PROT_NONE while emulating
  uint8_t* alias = nullptr;  // RW view of the same memfd pages, used by the accessor
  uint8_t init[kAreaBytes];  // the memory every run of a case starts from
  uint8_t after[kAreaBytes];
};
Area g_area[2];  // 0: fixed low area (absolute, moffs, 0x67), 1: emu_area_h (RIP-relative)

// Handler state: written by the SIGSEGV handler, read by the test between runs.
struct HandlerState {
  volatile bool armed = false;
  volatile int faults = 0;
  volatile emu::Decline decline = emu::Decline::kNone;
  volatile uint64_t rip_after = 0;
  volatile uint64_t expected_end = 0;
  volatile uint64_t handler_mallocs = 0;
  Area* area = nullptr;
};
HandlerState g_handler;

bool area_read(void*, uint64_t addr, void* out, size_t len) {
  for (Area& a : g_area) {
    auto lo = reinterpret_cast<uint64_t>(a.view);
    if (addr >= lo && addr + len <= lo + kAreaBytes) {
      memcpy(out, a.alias + (addr - lo), len);
      return true;
    }
  }
  return false;
}

bool area_write(void*, uint64_t addr, const void* in, size_t len) {
  for (Area& a : g_area) {
    auto lo = reinterpret_cast<uint64_t>(a.view);
    if (addr >= lo && addr + len <= lo + kAreaBytes) {
      memcpy(a.alias + (addr - lo), in, len);
      return true;
    }
  }
  return false;
}

void on_segv(int, siginfo_t* si, void* ctx) {
  auto* uc = static_cast<ucontext_t*>(ctx);
  auto addr = reinterpret_cast<uint64_t>(si->si_addr);
  Area* a = g_handler.area;
  auto lo = reinterpret_cast<uint64_t>(a ? a->view : nullptr);
  if (!g_handler.armed || a == nullptr || addr < lo || addr >= lo + kAreaBytes) {
    signal(SIGSEGV, SIG_DFL);  // not ours: the re-executed access crashes with a core
    return;
  }
  uint64_t m0 = emu_test::malloc_calls();
  g_handler.faults = g_handler.faults + 1;
  emu::RegisterFile r;
  emu::from_ucontext(uc, &r);
  emu::MemoryAccessor mem{nullptr, area_read, area_write};
  emu::Decoded d;
  emu::Access acc;
  emu::Decline res =
      emu::emulate_at(reinterpret_cast<const uint8_t*>(r.rip), 15, &r, addr, mem, &d, &acc);
  g_handler.decline = res;
  if (res != emu::Decline::kNone) {
    mprotect(a->view, kAreaBytes, PROT_READ | PROT_WRITE);  // run it natively: a mismatch
  } else {
    g_handler.rip_after = r.rip;
    r.rip = g_handler.expected_end;  // keep control flow sane even if RIP was wrong (reported)
    emu::to_ucontext(r, uc);
  }
  g_handler.handler_mallocs = g_handler.handler_mallocs + (emu_test::malloc_calls() - m0);
}

uint64_t interesting(std::mt19937_64& rng) {
  switch (rng() % 10) {
    case 0:
      return 0;
    case 1:
      return rng() % 4;
    case 2:
      return -(rng() % 4);
    case 3:
      return uint64_t{0x80} << (8 * (rng() % 8));
    case 4:
      return (uint64_t{1} << (rng() % 64)) - 1;
    case 5:
      return rng() & 0xff;
    default:
      return rng();
  }
}

void map_area(Area* a, void* at) {
  int fd = memfd_create("emu_area", 0);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(ftruncate(fd, kAreaBytes), 0);
  int fixed = at == emu_area_h ? MAP_FIXED : MAP_FIXED_NOREPLACE;
  void* v = mmap(at, kAreaBytes, PROT_READ | PROT_WRITE, MAP_SHARED | fixed, fd, 0);
  ASSERT_EQ(v, at);
  void* w = mmap(nullptr, kAreaBytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ASSERT_NE(w, MAP_FAILED);
  close(fd);
  a->view = static_cast<uint8_t*>(v);
  a->alias = static_cast<uint8_t*>(w);
}

class EmulateDiff : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ASSERT_TRUE(emu::init());
    map_area(&g_area[0], reinterpret_cast<void*>(kAreaLow));
    map_area(&g_area[1], emu_area_h);
    static uint8_t altstack[64 * 1024];
    stack_t ss{};
    ss.ss_sp = altstack;
    ss.ss_size = sizeof altstack;
    ASSERT_EQ(sigaltstack(&ss, nullptr), 0);  // the case's rsp may point anywhere
    struct sigaction sa {};
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    ASSERT_EQ(sigaction(SIGSEGV, &sa, &old_), 0);
  }
  static void TearDownTestSuite() {
    sigaction(SIGSEGV, &old_, nullptr);
    stack_t ss{};
    ss.ss_flags = SS_DISABLE;
    sigaltstack(&ss, nullptr);
  }
  static struct sigaction old_;
};
struct sigaction EmulateDiff::old_;

// Picks the target and sets the addressing registers so that the case's memory operand
// addresses it. Returns the target.
uint64_t place_operand(const Case& c, State* s, std::mt19937_64& rng, Area** area) {
  if (c.mode == kModeRip) {
    *area = &g_area[1];
    return reinterpret_cast<uint64_t>(g_area[1].view) + c.fixed;
  }
  if (c.mode == kModeAbs) {
    *area = &g_area[0];
    return kAreaLow + c.fixed;
  }
  bool a32 = (c.flags & kFlagAddr32) != 0;
  *area = a32 ? &g_area[0] : &g_area[rng() & 1];
  uint64_t lo = reinterpret_cast<uint64_t>((*area)->view);
  uint64_t t = lo + 4096 + rng() % (8192 - 16);
  t -= t % c.align;
  uint64_t mask = a32 ? 0xffffffffu : ~uint64_t{0};
  auto junk_hi = [&](uint64_t v) { return a32 ? (v & mask) | (rng() << 32) : v; };
  auto disp = static_cast<uint64_t>(c.disp);
  auto scale = static_cast<uint64_t>(c.scale);
  if (c.base >= 0 && c.base == c.index) {
    // base + base*scale + disp = t: t - disp must be a multiple of 1 + scale.
    for (int i = 0; i < 16 && (t - disp) % (1 + scale) != 0; ++i) t += c.align;
    s->gpr[c.base] = junk_hi((t - disp) / (1 + scale));
  } else if (c.index >= 0 && c.base < 0) {
    for (int i = 0; i < 16 && (t - disp) % scale != 0; ++i) t += c.align;
    s->gpr[c.index] = junk_hi((t - disp) / scale);
  } else if (c.index >= 0) {
    uint64_t iv =
        a32 ? rng() % 256 : static_cast<uint64_t>(static_cast<int64_t>(rng() % 256) - 128);
    s->gpr[c.index] = junk_hi(iv);
    s->gpr[c.base] = junk_hi((t - iv * scale - disp) & mask);
  } else if (c.base >= 0) {
    s->gpr[c.base] = junk_hi((t - disp) & mask);
  }
  return t;
}

std::string describe(const Case& c, size_t n, int round, uint64_t seed) {
  char buf[256];
  snprintf(buf, sizeof buf, "case %zu round %d \"%s\" (EMU_SEED=%llu)", n, round, c.text,
           static_cast<unsigned long long>(seed));
  return buf;
}

TEST_F(EmulateDiff, MatchesTheCpuOnEveryForm) {
  uint64_t seed = 0x5eed;
  if (const char* e = getenv("EMU_SEED")) seed = strtoull(e, nullptr, 0);
  int rounds = EMU_DIFF_ROUNDS;
  if (const char* e = getenv("EMU_DIFF_ROUNDS")) rounds = atoi(e);
  bool strict_af = getenv("EMU_STRICT_AF") != nullptr;
  std::mt19937_64 rng(seed);
  size_t count = emu_case_count, failures = 0, ran = 0;
  uint64_t mallocs_before = g_handler.handler_mallocs;

  for (int round = 0; round < rounds && failures < 20; ++round) {
    for (size_t n = 0; n < count && failures < 20; ++n) {
      const Case& c = emu_cases[n];
      State s0;
      for (auto& g : s0.gpr) g = interesting(rng);
      s0.gpr[4] = rng();  // rsp: anything; signals run on the alternate stack
      s0.rflags = 0x202 | (rng() & kArithFlags);
      for (auto& x : s0.xmm)
        for (auto& b : x) b = static_cast<uint8_t>(rng());
      Area* area = nullptr;
      uint64_t t = place_operand(c, &s0, rng, &area);
      size_t off = t - reinterpret_cast<uint64_t>(area->view);
      for (size_t i = off - 16; i < off + 32; ++i) area->init[i] = static_cast<uint8_t>(rng());
      if ((c.flags & kFlagCompare) != 0 && rng() % 3 == 0) {
        // Equal or adjacent values, so ZF, CF and the borrow paths are exercised.
        uint64_t v = c.data < 0     ? static_cast<uint64_t>(c.imm)
                     : c.data >= 16 ? s0.gpr[c.data - 16] >> 8
                                    : s0.gpr[c.data];
        v += rng() % 3 - 1;
        memcpy(area->init + off, &v, static_cast<size_t>(c.width));
      }

      // 1. Native.
      memcpy(area->alias, area->init, kAreaBytes);
      State native = s0;
      emu_run(&native, c.start);
      memcpy(area->after, area->alias, kAreaBytes);

      // 2. Faulting and emulated.
      memcpy(area->alias, area->init, kAreaBytes);
      State emulated = s0;
      g_handler.area = area;
      g_handler.faults = 0;
      g_handler.decline = emu::Decline::kNone;
      g_handler.rip_after = 0;
      g_handler.expected_end = c.end;
      ASSERT_EQ(mprotect(area->view, kAreaBytes, PROT_NONE), 0);
      g_handler.armed = true;
      emu_run(&emulated, c.start);
      g_handler.armed = false;
      ASSERT_EQ(mprotect(area->view, kAreaBytes, PROT_READ | PROT_WRITE), 0);
      ++ran;

      std::string what;
      if (g_handler.faults != 1) what += " faults=" + std::to_string(g_handler.faults);
      if (g_handler.decline != emu::Decline::kNone)
        what += std::string(" declined=") + emu::decline_name(g_handler.decline);
      else if (g_handler.rip_after != c.end)
        what += " rip off by " + std::to_string(int64_t(g_handler.rip_after - c.end));
      for (int i = 0; i < 16; ++i) {
        if (native.gpr[i] != emulated.gpr[i]) {
          char b[96];
          snprintf(b, sizeof b, " gpr%d cpu=%#llx emu=%#llx", i,
                   static_cast<unsigned long long>(native.gpr[i]),
                   static_cast<unsigned long long>(emulated.gpr[i]));
          what += b;
        }
      }
      uint64_t fmask = kArithFlags;
      if ((c.flags & kFlagAfUndefined) != 0 && !strict_af) fmask &= ~kAF;
      if ((native.rflags & fmask) != (emulated.rflags & fmask)) {
        char b[96];
        snprintf(b, sizeof b, " rflags cpu=%#llx emu=%#llx",
                 static_cast<unsigned long long>(native.rflags & kArithFlags),
                 static_cast<unsigned long long>(emulated.rflags & kArithFlags));
        what += b;
      }
      for (int i = 0; i < 16; ++i)
        if (memcmp(native.xmm[i], emulated.xmm[i], 16) != 0) what += " xmm" + std::to_string(i);
      if (memcmp(area->after, area->alias, kAreaBytes) != 0) what += " memory";
      if (!what.empty()) {
        ++failures;
        ADD_FAILURE() << describe(c, n, round, seed) << ":" << what;
      }
    }
  }
  printf("emulate differential: %zu cases (%zu forms x %d rounds), seed %llu\n", ran, count, rounds,
         static_cast<unsigned long long>(seed));
  EXPECT_EQ(failures, 0u) << "EMU_SEED=" << seed;
  if (rounds == EMU_DIFF_ROUNDS) {  // the registered counts: >= 100k by default, >= 1M stress
    EXPECT_GE(ran, EMU_DIFF_ROUNDS >= 200 ? size_t{1000000} : size_t{100000});
  }
  if (emu_test::malloc_counting_available()) {
    EXPECT_EQ(g_handler.handler_mallocs - mallocs_before, 0u) << "the fault path allocated";
  }
}

// Every generated form also decodes without the cache, without allocating, to the length the
// assembler gave it.
TEST_F(EmulateDiff, EveryFormDecodesUncachedWithoutAllocating) {
  uint64_t m0 = emu_test::malloc_calls();
  size_t bad = 0;
  for (size_t n = 0; n < emu_case_count; ++n) {
    const Case& c = emu_cases[n];
    emu::RegisterFile r{};
    r.rip = c.start;
    // The fault address is wrong on purpose: a supported form answers kAddressMismatch.
    emu::Decoded d = emu::decode(reinterpret_cast<const uint8_t*>(c.start), 15, r, ~0ull - 12345);
    if (d.decline != emu::Decline::kAddressMismatch || d.length != c.end - c.start ||
        d.width != c.width) {
      if (++bad < 20)
        ADD_FAILURE() << c.text << ": " << emu::decline_name(d.decline) << " length "
                      << int(d.length) << " width " << int(d.width);
    }
  }
  EXPECT_EQ(bad, 0u);
  if (emu_test::malloc_counting_available()) {
    EXPECT_EQ(emu_test::malloc_calls() - m0, 0u);
  }
}

}  // namespace
