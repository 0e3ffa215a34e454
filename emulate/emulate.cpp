// Executing a decoded form on a register file; the ucontext bridge; the decode cache in front of
// the decoder; decline statistics. Sees only the module's own types, never Capstone.
//
// Requirements and invariants cited here (.req.*, .inv.*) are in docs/design/emulate.md.
#include <cpuid.h>

#include <atomic>
#include <cstring>

#include "emulate/decode_cache.hpp"
#include "emulate/emulate.hpp"
#include "emulate/form.hpp"

namespace weakgc::detail::emu {
namespace {

// RFLAGS bits written by cmp and test (.req.flags).
constexpr uint64_t kCF = 1 << 0, kPF = 1 << 2, kAF = 1 << 4, kZF = 1 << 6, kSF = 1 << 7,
                   kOF = 1 << 11;
constexpr uint64_t kArithFlags = kCF | kPF | kAF | kZF | kSF | kOF;

// Declines by mnemonic, counted by emulate_at(); relaxed: statistics only.
std::atomic<uint64_t> g_declines[kMnemonicSlots];

uint64_t width_mask(unsigned width) {
  return width >= 8 ? ~uint64_t{0} : (uint64_t{1} << (8 * width)) - 1;
}

uint64_t sign_extend(uint64_t v, unsigned width) {
  if (width >= 8) return v;
  unsigned shift = 64 - 8 * width;
  return static_cast<uint64_t>(static_cast<int64_t>(v << shift) >> shift);
}

// Reads a general register operand of `width` bytes (high: ah/ch/dh/bh).
uint64_t read_gpr(const RegisterFile& r, uint8_t reg, unsigned width, bool high) {
  if (high) return (r.gpr[reg] >> 8) & 0xff;
  return r.gpr[reg] & width_mask(width);
}

// Writes a general register operand with the hardware's partial-register rules (.req.partial):
// a 32-bit write zeroes bits 63:32, 8- and 16-bit writes keep the rest.
void write_gpr(RegisterFile* r, uint8_t reg, unsigned width, bool high, uint64_t v) {
  uint64_t& g = r->gpr[reg];
  if (high) {
    g = (g & ~uint64_t{0xff00}) | ((v & 0xff) << 8);
  } else if (width == 4) {
    g = v & 0xffffffffu;
  } else if (width == 8) {
    g = v;
  } else {
    uint64_t m = width_mask(width);
    g = (g & ~m) | (v & m);
  }
}

bool parity_even(uint64_t v) {
  return (__builtin_popcount(static_cast<unsigned>(v & 0xff)) & 1) == 0;
}

uint64_t flags_sub(uint64_t a, uint64_t b, unsigned width) {
  uint64_t m = width_mask(width);
  a &= m;
  b &= m;
  uint64_t res = (a - b) & m;
  uint64_t sign = uint64_t{1} << (8 * width - 1);
  uint64_t f = 0;
  if (a < b) f |= kCF;
  if (parity_even(res)) f |= kPF;
  if (((a ^ b ^ res) & 0x10) != 0) f |= kAF;
  if (res == 0) f |= kZF;
  if ((res & sign) != 0) f |= kSF;
  if (((a ^ b) & (a ^ res) & sign) != 0) f |= kOF;
  return f;
}

// test: CF = OF = 0; AF is architecturally undefined and cleared, as the CPUs we measured do.
uint64_t flags_and(uint64_t a, uint64_t b, unsigned width) {
  uint64_t m = width_mask(width);
  uint64_t res = a & b & m;
  uint64_t f = 0;
  if (parity_even(res)) f |= kPF;
  if (res == 0) f |= kZF;
  if ((res & (uint64_t{1} << (8 * width - 1))) != 0) f |= kSF;
  return f;
}

// Whether the decline follows from the instruction bytes alone, so the form may be cached.
bool cacheable(const Decoded& d) {
  if ((d.flags & kFlagTransient) != 0 || d.length == 0) return false;
  switch (d.decline) {
    case Decline::kNone:
    case Decline::kUnsupported:
    case Decline::kSegmentPrefix:
    case Decline::kLockPrefix:
    case Decline::kNoMemoryOperand:
      return true;
    default:
      return false;
  }
}

// The register-dependent half of decode(): .req.address-match and the alignment of aligned
// SSE moves (the CPU would raise #GP rather than access memory).
Decoded check_access(Decoded d, const RegisterFile& regs, uint64_t fault_addr) {
  if (d.decline != Decline::kNone) return d;
  uint64_t ea = effective_address(d, regs);
  if (ea != fault_addr)
    d.decline = Decline::kAddressMismatch;
  else if ((d.flags & kFlagAlign16) != 0 && (ea & 15) != 0)
    d.decline = Decline::kUnsupported;
  return d;
}

void count_decline(const Decoded& d) {
  if (d.decline != Decline::kNone && d.mnemonic != 0 && d.mnemonic < kMnemonicSlots)
    g_declines[d.mnemonic].fetch_add(1, std::memory_order_relaxed);
}

// The ucontext FP state: the fxsave image, followed (when the kernel saved with XSAVE, marked
// by FP_XSTATE_MAGIC1 in the fxsave image's software-reserved bytes) by the XSAVE header whose
// XSTATE_BV says whether the SSE component was saved at all (bit 1; clear = XMM in init state,
// i.e. zero, and the image bytes are stale).
constexpr uint32_t kXstateMagic1 = 0x46505853;  // "FPXS"
constexpr size_t kSwReservedOffset = 464;
constexpr size_t kXstateBvOffset = 512;
constexpr uint64_t kXstateSse = 1 << 1;

uint64_t* xstate_bv(const ucontext_t* uc) {
  auto* fp = reinterpret_cast<uint8_t*>(uc->uc_mcontext.fpregs);
  uint32_t magic;
  memcpy(&magic, fp + kSwReservedOffset, 4);
  if (magic != kXstateMagic1) return nullptr;
  return reinterpret_cast<uint64_t*>(fp + kXstateBvOffset);
}

// The XSAVE components holding the upper halves of vector registers 0..15, in the standard
// (non-compacted) format the kernel writes into signal frames: offsets from CPUID leaf 0xD.
//   AVX (bit 2): bits 255:128 of ymm0..15, 16 bytes each.
//   ZMM_Hi256 (bit 6): bits 511:256 of zmm0..15, 32 bytes each.
constexpr unsigned kXfeatureAvx = 2, kXfeatureZmmHi256 = 6;
std::atomic<uint32_t> g_off_avx{0}, g_off_zmm_hi256{0};  // 0: component absent
std::atomic<bool> g_vector_state_ready{false};

// Clears register i's part of component `bit` (at `offset`, `bytes` per register) in the
// signal frame, if the frame holds that component in a non-init state (in the init state it is
// zero already, and XRSTOR keeps it so).
void zero_component(const ucontext_t* uc, unsigned bit, uint32_t offset, size_t bytes, unsigned i) {
  if (offset == 0) return;
  auto* fp = reinterpret_cast<uint8_t*>(uc->uc_mcontext.fpregs);
  const uint64_t* bv = xstate_bv(uc);
  if (bv == nullptr || (*bv & (uint64_t{1} << bit)) == 0) return;
  // struct _fpx_sw_bytes (the fxsave image's software-reserved bytes): magic1, extended_size,
  // xfeatures, xstate_size. The component must be in the frame's feature set and size.
  uint64_t xfeatures;
  uint32_t xstate_size;
  memcpy(&xfeatures, fp + kSwReservedOffset + 8, 8);
  memcpy(&xstate_size, fp + kSwReservedOffset + 16, 4);
  if ((xfeatures & (uint64_t{1} << bit)) == 0 || offset + 16 * bytes > xstate_size) return;
  memset(fp + offset + i * bytes, 0, bytes);
}

}  // namespace

const char* decline_name(Decline d) {
  switch (d) {
    case Decline::kNone:
      return "none";
    case Decline::kDecodeFailed:
      return "decode-failed";
    case Decline::kTruncated:
      return "truncated";
    case Decline::kUnsupported:
      return "unsupported";
    case Decline::kAddressMismatch:
      return "address-mismatch";
    case Decline::kSegmentPrefix:
      return "segment-prefix";
    case Decline::kLockPrefix:
      return "lock-prefix";
    case Decline::kNoMemoryOperand:
      return "no-memory-operand";
    case Decline::kAccessorFailed:
      return "accessor-failed";
    case Decline::kCount:
      break;
  }
  return "?";
}

void from_ucontext(const ucontext_t* uc, RegisterFile* out) {
  const greg_t* g = uc->uc_mcontext.gregs;
  static constexpr int kMap[kGprCount] = {REG_RAX, REG_RCX, REG_RDX, REG_RBX, REG_RSP, REG_RBP,
                                          REG_RSI, REG_RDI, REG_R8,  REG_R9,  REG_R10, REG_R11,
                                          REG_R12, REG_R13, REG_R14, REG_R15};
  for (int i = 0; i < kGprCount; ++i) out->gpr[i] = static_cast<uint64_t>(g[kMap[i]]);
  out->rip = static_cast<uint64_t>(g[REG_RIP]);
  out->rflags = static_cast<uint64_t>(g[REG_EFL]);
  memset(out->xmm, 0, sizeof out->xmm);
  out->zero_vec_upper = 0;
  if (uc->uc_mcontext.fpregs == nullptr) return;
  const uint64_t* bv = xstate_bv(uc);
  if (bv != nullptr && (*bv & kXstateSse) == 0) return;  // init state: all zero
  memcpy(out->xmm, uc->uc_mcontext.fpregs->_xmm, sizeof out->xmm);
}

void to_ucontext(const RegisterFile& regs, ucontext_t* uc) {
  greg_t* g = uc->uc_mcontext.gregs;
  static constexpr int kMap[kGprCount] = {REG_RAX, REG_RCX, REG_RDX, REG_RBX, REG_RSP, REG_RBP,
                                          REG_RSI, REG_RDI, REG_R8,  REG_R9,  REG_R10, REG_R11,
                                          REG_R12, REG_R13, REG_R14, REG_R15};
  for (int i = 0; i < kGprCount; ++i) g[kMap[i]] = static_cast<greg_t>(regs.gpr[i]);
  g[REG_RIP] = static_cast<greg_t>(regs.rip);
  g[REG_EFL] = static_cast<greg_t>(regs.rflags);
  if (uc->uc_mcontext.fpregs == nullptr) return;
  memcpy(uc->uc_mcontext.fpregs->_xmm, regs.xmm, sizeof regs.xmm);
  // Mark the SSE component saved, else XRSTOR on sigreturn would reset XMM to zero.
  if (uint64_t* bv = xstate_bv(uc)) *bv |= kXstateSse;
  for (unsigned m = regs.zero_vec_upper; m != 0; m &= m - 1) {
    unsigned i = static_cast<unsigned>(__builtin_ctz(m));
    zero_component(uc, kXfeatureAvx, g_off_avx.load(std::memory_order_relaxed), 16, i);
    zero_component(uc, kXfeatureZmmHi256, g_off_zmm_hi256.load(std::memory_order_relaxed), 32, i);
  }
}

uint64_t effective_address(const Decoded& d, const RegisterFile& regs) {
  uint64_t ea = static_cast<uint64_t>(d.disp);
  if (d.rip_relative) ea += regs.rip + d.length;  // relative to the next instruction
  if (d.base < kGprCount) ea += regs.gpr[d.base];
  if (d.index < kGprCount) ea += regs.gpr[d.index] * d.scale;
  if ((d.flags & kFlagAddr32) != 0) ea &= 0xffffffffu;  // 0x67: modulo 2^32, zero-extended
  return ea;
}

Decoded decode(const uint8_t* code, size_t len, const RegisterFile& regs, uint64_t fault_addr) {
  return check_access(decode_form(code, len), regs, fault_addr);
}

Decline emulate(const Decoded& d, RegisterFile* regs, const MemoryAccessor& mem, Access* out) {
  if (d.decline != Decline::kNone) return d.decline;
  if (d.op == kOpNone || d.op >= kOpCount) return Decline::kUnsupported;
  uint64_t ea = effective_address(d, *regs);
  bool high = (d.flags & kFlagHighByte) != 0;
  uint8_t buf[16] = {};
  RegisterFile r = *regs;  // committed only on success: regs unchanged on failure
  uint64_t v = 0;

  switch (d.op) {
    case kOpStoreReg:
      v = read_gpr(r, d.reg, d.width, high);
      memcpy(buf, &v, 8);
      if (!mem.write(mem.ctx, ea, buf, d.width)) return Decline::kAccessorFailed;
      break;
    case kOpStoreImm:
      v = static_cast<uint64_t>(d.imm) & width_mask(d.width);
      memcpy(buf, &v, 8);
      if (!mem.write(mem.ctx, ea, buf, d.width)) return Decline::kAccessorFailed;
      break;
    case kOpXmmStore:
      memcpy(buf, r.xmm[d.reg] + ((d.flags & kFlagHighHalf) ? 8 : 0), d.width);
      if (!mem.write(mem.ctx, ea, buf, d.width)) return Decline::kAccessorFailed;
      break;
    default:  // every other form reads memory first
      if (!mem.read(mem.ctx, ea, buf, d.width)) return Decline::kAccessorFailed;
      memcpy(&v, buf, 8);
      v &= width_mask(d.width);
      break;
  }

  switch (d.op) {
    case kOpLoad: {
      uint64_t x = (d.flags & kFlagSignExtend) ? sign_extend(v, d.width) : v;
      write_gpr(&r, d.reg, d.reg_width, high, x);
      break;
    }
    case kOpCmpMemReg:
      r.rflags =
          (r.rflags & ~kArithFlags) | flags_sub(v, read_gpr(r, d.reg, d.width, high), d.width);
      break;
    case kOpCmpRegMem:
      r.rflags =
          (r.rflags & ~kArithFlags) | flags_sub(read_gpr(r, d.reg, d.width, high), v, d.width);
      break;
    case kOpCmpMemImm:
      r.rflags = (r.rflags & ~kArithFlags) | flags_sub(v, static_cast<uint64_t>(d.imm), d.width);
      break;
    case kOpTestMemReg:
      r.rflags =
          (r.rflags & ~kArithFlags) | flags_and(v, read_gpr(r, d.reg, d.width, high), d.width);
      break;
    case kOpTestMemImm:
      r.rflags = (r.rflags & ~kArithFlags) | flags_and(v, static_cast<uint64_t>(d.imm), d.width);
      break;
    case kOpXmmLoad:
      if ((d.flags & kFlagZeroVecUpper) != 0) r.zero_vec_upper |= uint16_t(1u << d.reg);
      if ((d.flags & kFlagZeroUpper) != 0) memset(r.xmm[d.reg], 0, 16);
      memcpy(r.xmm[d.reg] + ((d.flags & kFlagHighHalf) ? 8 : 0), buf, d.width);
      break;
    default:
      break;
  }
  r.rip += d.length;
  *regs = r;
  if (out != nullptr) {
    out->address = ea;
    out->width = d.width;
    out->direction = d.direction;
    memcpy(out->value, buf, sizeof out->value);  // loads/compares: read; stores: written
  }
  return Decline::kNone;
}

Decline emulate_at(const uint8_t* code, size_t len, RegisterFile* regs, uint64_t fault_addr,
                   const MemoryAccessor& mem, Decoded* decoded, Access* out) {
  Decoded d;
  if (!cache::lookup(regs->rip, code, len, &d)) {
    d = decode_form(code, len);
    if (cacheable(d)) cache::insert(regs->rip, code, d);
  }
  d = check_access(d, *regs, fault_addr);  // .inv.cache-validate: never trust a cached address
  Decline result = d.decline;
  if (result == Decline::kNone) result = emulate(d, regs, mem, out);
  if (decoded != nullptr) {
    *decoded = d;
    decoded->decline = result;
  }
  if (result != Decline::kNone) {
    Decoded counted = d;
    counted.decline = result;
    count_decline(counted);
  }
  return result;
}

bool init() {
  return decoder_init();
}

void vector_state_init() {
  if (g_vector_state_ready.load(std::memory_order_acquire)) return;
  unsigned a, b, c, d;
  uint32_t avx = 0, zmm = 0;
  // CPUID.1:ECX.OSXSAVE[27] and .AVX[28]: the OS saves AVX state with XSAVE.
  if (__get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 27)) && (c & (1u << 28)) &&
      __get_cpuid_count(0xD, 0, &a, &b, &c, &d)) {
    uint64_t supported = a | (uint64_t{d} << 32);
    if ((supported & (1u << kXfeatureAvx)) && __get_cpuid_count(0xD, kXfeatureAvx, &a, &b, &c, &d))
      avx = b;  // EBX: offset in the standard format
    if ((supported & (1u << kXfeatureZmmHi256)) &&
        __get_cpuid_count(0xD, kXfeatureZmmHi256, &a, &b, &c, &d))
      zmm = b;
  }
  g_off_avx.store(avx, std::memory_order_relaxed);
  g_off_zmm_hi256.store(zmm, std::memory_order_relaxed);
  g_vector_state_ready.store(true, std::memory_order_release);
}

bool vex_loads_supported() {
  return g_vector_state_ready.load(std::memory_order_acquire) &&
         g_off_avx.load(std::memory_order_relaxed) != 0;
}

size_t declined_by_mnemonic(MnemonicCount* out, size_t cap) {
  size_t n = 0;
  // Selection of the `cap` largest counts; the table is small and this is not a hot path.
  for (size_t id = 1; id < kMnemonicSlots; ++id) {
    uint64_t c = g_declines[id].load(std::memory_order_relaxed);
    if (c == 0) continue;
    size_t pos = n;
    while (pos > 0 && out[pos - 1].count < c) --pos;
    if (pos >= cap) continue;
    size_t last = n < cap ? n : cap - 1;
    for (size_t i = last; i > pos; --i) out[i] = out[i - 1];
    out[pos] = {static_cast<uint16_t>(id), c};
    if (n < cap) ++n;
  }
  return n;
}

const char* mnemonic_name(uint16_t mnemonic) {
  return decoder_mnemonic_name(mnemonic);
}

}  // namespace weakgc::detail::emu
