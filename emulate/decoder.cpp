// The decoder: the only file of weakgc that includes Capstone (STYLE.md). It turns instruction
// bytes into a Decoded form (form.hpp) and knows nothing of registers or fault addresses.
//
// Signal safety (.req.signal-safe, docs/design/emulate.md), from measured facts about
// Capstone 4.0.2:
//   - cs_disasm() mallocs; cs_disasm_iter() into a cs_malloc()'ed buffer allocates nothing but
//     calls vsnprintf twice. CS_OPT_MEM routes malloc/calloc/realloc/free/vsnprintf to
//     sigsafe_alloc.cpp (a static arena and a vsnprintf that writes ""), so even a Capstone path
//     we did not measure cannot reach libc's allocator from a handler.
//   - The first decode of some forms sorts a static table with libc qsort, which mallocs behind
//     CS_OPT_MEM: decoder_init() warms every handle up with those forms (.inv.warm).
//   - A handle is not re-entrant: a fixed pool of kHandles handles, each guarded by an atomic
//     flag. A fault takes a free one and never waits; with none free it declines
//     (kDecodeFailed, transient) — nested or concurrent faults beyond the pool fall back.
// CS_OPT_MEM is process-global: any other Capstone user in the process gets these hooks too.
#include <capstone/capstone.h>

#include <atomic>
#include <cstring>
#include <mutex>

#include "emulate/form.hpp"
#include "emulate/sigsafe_alloc.hpp"

namespace weakgc::detail::emu {
namespace {

static_assert(X86_INS_ENDING <= kMnemonicSlots, "decline table too small for Capstone's ids");

constexpr int kHandles = 8;

struct Slot {
  std::atomic_flag busy = ATOMIC_FLAG_INIT;
  csh handle = 0;
  cs_insn* insn = nullptr;
};

Slot g_slots[kHandles];
std::atomic<bool> g_ready{false};
std::mutex g_init_mutex;

void* CAPSTONE_API hook_malloc(size_t n) {
  return sigsafe::alloc(n);
}
void* CAPSTONE_API hook_calloc(size_t n, size_t s) {
  return sigsafe::zalloc(n, s);
}
void* CAPSTONE_API hook_realloc(void* p, size_t n) {
  return sigsafe::resize(p, n);
}
void CAPSTONE_API hook_free(void* p) {
  sigsafe::release(p);
}
int CAPSTONE_API hook_vsnprintf(char* s, size_t n, const char* f, va_list ap) {
  return sigsafe::format_nothing(s, n, f, ap);
}

// Decoded once per handle by decoder_init(). Measured on Capstone 4.0.2: the first decode of
// any instruction sorts the static implicit-register table with libc qsort (which mallocs); no
// later decode calls qsort, and of 2 million random byte strings only the VIA `xstore` form
// allocates (a strdup, freed again, served by the arena). The list covers the forms we emulate.
// Byte strings as GNU as encodes them; the first byte is the length.
const uint8_t kWarmUp[][16] = {
    {10, 0x48, 0xa1, 0, 0x10, 0, 0x30, 0, 0, 0, 0},  // movabs rax, [0x30001000]
    {3, 0x48, 0x8b, 0x00},                           // mov rax, [rax]
    {4, 0x48, 0x0f, 0xb6, 0x00},                     // movzx rax, byte ptr [rax]
    {4, 0x48, 0x83, 0x38, 0xff},                     // cmp qword ptr [rax], -1
    {4, 0xf3, 0x0f, 0x6f, 0x00},                     // movdqu xmm0, [rax]
    {4, 0xf3, 0x0f, 0x7e, 0x08},                     // movq xmm1, [rax]
    {6, 0xc4, 0x41, 0x7a, 0x7f, 0x4d, 0x00},         // vmovdqu [r13], xmm9
    {5, 0x67, 0x8b, 0x44, 0x8b, 0x08},               // mov eax, [ebx+ecx*4+8]
};

bool open_slot(Slot* s) {
  if (cs_open(CS_ARCH_X86, CS_MODE_64, &s->handle) != CS_ERR_OK) return false;
  cs_option(s->handle, CS_OPT_DETAIL, CS_OPT_ON);
  s->insn = cs_malloc(s->handle);
  if (s->insn == nullptr) return false;
  for (const auto& w : kWarmUp) {
    const uint8_t* code = w + 1;
    size_t size = w[0];
    uint64_t addr = 0;
    cs_disasm_iter(s->handle, &code, &size, &addr, s->insn);
  }
  return true;
}

// Takes a free handle without waiting, or returns nullptr. signal-safe.
Slot* acquire_slot() {
  for (Slot& s : g_slots) {
    if (!s.busy.test_and_set(std::memory_order_acquire)) return &s;
  }
  return nullptr;
}

void release_slot(Slot* s) {
  s->busy.clear(std::memory_order_release);
}

struct GprReg {
  uint8_t num;   // hardware number, kNoReg if not a general register
  uint8_t size;  // bytes
  bool high;     // ah/ch/dh/bh
};

GprReg map_gpr(x86_reg r) {
  switch (r) {
#define R(cs, n, sz) \
  case X86_REG_##cs: \
    return {n, sz, false};
    R(RAX, 0, 8)
    R(RCX, 1, 8)
    R(RDX, 2, 8)
    R(RBX, 3, 8) R(RSP, 4, 8) R(RBP, 5, 8) R(RSI, 6, 8) R(RDI, 7, 8) R(R8, 8, 8) R(R9, 9, 8)
        R(R10, 10, 8) R(R11, 11, 8) R(R12, 12, 8) R(R13, 13, 8) R(R14, 14, 8) R(R15, 15, 8) R(
            EAX, 0, 4) R(ECX, 1, 4) R(EDX, 2, 4) R(EBX, 3, 4) R(ESP, 4, 4) R(EBP, 5, 4) R(ESI, 6, 4)
            R(EDI, 7, 4) R(R8D, 8, 4) R(R9D, 9, 4) R(R10D, 10, 4) R(R11D, 11, 4) R(R12D, 12, 4)
                R(R13D, 13, 4) R(R14D, 14, 4) R(R15D, 15, 4) R(AX, 0, 2) R(CX, 1, 2) R(DX, 2, 2)
                    R(BX, 3, 2) R(SP, 4, 2) R(BP, 5, 2) R(SI, 6, 2) R(DI, 7, 2) R(R8W, 8, 2)
                        R(R9W, 9, 2) R(R10W, 10, 2) R(R11W, 11, 2) R(R12W, 12, 2) R(R13W, 13, 2)
                            R(R14W, 14, 2) R(R15W, 15, 2) R(AL, 0, 1) R(CL, 1, 1) R(DL, 2, 1)
                                R(BL, 3, 1) R(SPL, 4, 1) R(BPL, 5, 1) R(SIL, 6, 1) R(DIL, 7, 1)
                                    R(R8B, 8, 1) R(R9B, 9, 1) R(R10B, 10, 1) R(R11B, 11, 1)
                                        R(R12B, 12, 1) R(R13B, 13, 1) R(R14B, 14, 1) R(R15B, 15, 1)
#undef R
                                            case X86_REG_AH : return {0, 1, true};
    case X86_REG_CH:
      return {1, 1, true};
    case X86_REG_DH:
      return {2, 1, true};
    case X86_REG_BH:
      return {3, 1, true};
    default:
      return {kNoReg, 0, false};
  }
}

// xmm0..xmm15, or kNoReg (ymm, zmm, xmm16+, mmx: not in the register file or not 128-bit).
uint8_t map_xmm(x86_reg r) {
  if (r >= X86_REG_XMM0 && r <= X86_REG_XMM15) return static_cast<uint8_t>(r - X86_REG_XMM0);
  return kNoReg;
}

// Legacy prefixes as the hardware sees them, counted from the raw bytes rather than from
// Capstone's one-per-group summary, so that repeated or conflicting prefixes are declined.
struct Prefixes {
  int lock = 0, fs_gs = 0, rep = 0;
  bool evex = false;
};

Prefixes scan_prefixes(const uint8_t* code, size_t len) {
  Prefixes p;
  size_t i = 0;
  for (; i < len; ++i) {
    uint8_t b = code[i];
    if (b == 0xf0)
      ++p.lock;
    else if (b == 0x64 || b == 0x65)
      ++p.fs_gs;
    else if (b == 0xf2 || b == 0xf3)
      ++p.rep;
    else if (b == 0x66 || b == 0x67 || b == 0x2e || b == 0x36 || b == 0x3e || b == 0x26)
      continue;
    else
      break;
  }
  if (i < len && (code[i] & 0xf0) == 0x40) ++i;  // REX
  // 0x62 is BOUND outside 64-bit mode; in 64-bit mode it always starts EVEX (opmasks, xmm16+).
  p.evex = i < len && code[i] == 0x62;
  return p;
}

enum class Family {
  kNone,
  kMov,
  kExtend,
  kCmp,
  kTest,
  kSse16,
  kSseAligned,
  kSseLow,
  kSseHalf,
  kVexStore,
  kVexAlignedStore
};

Family family_of(unsigned id, bool* sign_extend, bool* high_half) {
  *sign_extend = false;
  *high_half = false;
  switch (id) {
    case X86_INS_MOV:
    case X86_INS_MOVABS:
      return Family::kMov;  // moffs forms; movabs r64, imm64 has no memory
    case X86_INS_MOVZX:
      return Family::kExtend;
    case X86_INS_MOVSX:
    case X86_INS_MOVSXD:
      *sign_extend = true;
      return Family::kExtend;
    case X86_INS_CMP:
      return Family::kCmp;
    case X86_INS_TEST:
      return Family::kTest;
    case X86_INS_MOVDQU:
    case X86_INS_MOVUPS:
    case X86_INS_MOVUPD:
      return Family::kSse16;
    case X86_INS_MOVDQA:
    case X86_INS_MOVAPS:
    case X86_INS_MOVAPD:
      return Family::kSseAligned;
    case X86_INS_MOVQ:
    case X86_INS_MOVD:
    case X86_INS_MOVSS:
    case X86_INS_MOVSD:
      return Family::kSseLow;  // MOVSD is also the string op: two mem operands
    case X86_INS_MOVHPS:
    case X86_INS_MOVHPD:
      *high_half = true;
      return Family::kSseHalf;
    case X86_INS_MOVLPS:
    case X86_INS_MOVLPD:
      return Family::kSseHalf;
    case X86_INS_VMOVDQU:
    case X86_INS_VMOVUPS:
    case X86_INS_VMOVUPD:
    case X86_INS_VMOVQ:
    case X86_INS_VMOVD:
    case X86_INS_VMOVSS:
    case X86_INS_VMOVSD:
      return Family::kVexStore;
    case X86_INS_VMOVDQA:
    case X86_INS_VMOVAPS:
    case X86_INS_VMOVAPD:
      return Family::kVexAlignedStore;
    default:
      return Family::kNone;
  }
}

Decoded unsupported(Decoded d) {
  d.decline = Decline::kUnsupported;
  return d;
}

// Reads the immediate from the instruction bytes, sign-extended from its encoded size.
bool read_imm(const cs_x86& x, const uint8_t* code, size_t length, int64_t* out) {
  size_t off = x.encoding.imm_offset, size = x.encoding.imm_size;
  if (off == 0 || off + size != length) return false;
  switch (size) {
    case 1:
      *out = static_cast<int8_t>(code[off]);
      return true;
    case 2: {
      int16_t v;
      memcpy(&v, code + off, 2);
      *out = v;
      return true;
    }
    case 4: {
      int32_t v;
      memcpy(&v, code + off, 4);
      *out = v;
      return true;
    }
    default:
      return false;
  }
}

// Classifies a decoded instruction. `mem` is its single memory operand, `other` the other one.
Decoded classify(Decoded d, const cs_insn& insn, const uint8_t* code, const Prefixes& p) {
  const cs_x86& x = insn.detail->x86;
  bool sign = false, high_half = false;
  Family fam = family_of(insn.id, &sign, &high_half);
  if (fam == Family::kNone) return unsupported(d);
  if (x.op_count != 2) return unsupported(d);  // e.g. 3-operand VEX loads, string moves

  int mem_i = -1, mems = 0;
  for (int i = 0; i < x.op_count; ++i) {
    if (x.operands[i].type == X86_OP_MEM) {
      mem_i = i;
      ++mems;
    }
  }
  if (mems == 0) {
    d.decline = Decline::kNoMemoryOperand;
    return d;
  }
  if (mems != 1) return unsupported(d);
  const cs_x86_op& mem = x.operands[mem_i];
  const cs_x86_op& other = x.operands[1 - mem_i];
  bool store = mem_i == 0;

  // Addressing.
  if (mem.mem.segment == X86_REG_FS || mem.mem.segment == X86_REG_GS) {
    d.decline = Decline::kSegmentPrefix;
    return d;
  }
  if (x.addr_size == 4)
    d.flags |= kFlagAddr32;
  else if (x.addr_size != 8)
    return unsupported(d);
  if (mem.mem.base == X86_REG_RIP) {
    d.rip_relative = true;
  } else if (mem.mem.base == X86_REG_EIP) {
    return unsupported(d);  // EIP-relative: code above 4 GiB, never ours
  } else if (mem.mem.base != X86_REG_INVALID) {
    GprReg b = map_gpr(mem.mem.base);
    if (b.num == kNoReg || b.high || b.size != x.addr_size) return unsupported(d);
    d.base = b.num;
  }
  if (mem.mem.index != X86_REG_INVALID && mem.mem.index != X86_REG_RIZ &&
      mem.mem.index != X86_REG_EIZ) {
    GprReg ix = map_gpr(mem.mem.index);
    if (ix.num == kNoReg || ix.high || ix.size != x.addr_size) return unsupported(d);
    if (mem.mem.scale != 1 && mem.mem.scale != 2 && mem.mem.scale != 4 && mem.mem.scale != 8)
      return unsupported(d);
    d.index = ix.num;
    d.scale = static_cast<uint8_t>(mem.mem.scale);
  }
  d.disp = mem.mem.disp;
  d.width = mem.size;

  // Integer forms.
  if (fam == Family::kMov || fam == Family::kExtend || fam == Family::kCmp ||
      fam == Family::kTest) {
    if (p.rep != 0) return unsupported(d);  // XACQUIRE/XRELEASE/REP: not plain accesses
    if (d.width != 1 && d.width != 2 && d.width != 4 && d.width != 8) return unsupported(d);
    if (other.type == X86_OP_IMM) {
      if (!store || fam == Family::kExtend) return unsupported(d);
      if (!read_imm(x, code, d.length, &d.imm)) return unsupported(d);
      d.op = fam == Family::kMov ? kOpStoreImm : fam == Family::kCmp ? kOpCmpMemImm : kOpTestMemImm;
      d.direction = fam == Family::kMov ? Direction::kStore : Direction::kCompare;
      return d;
    }
    if (other.type != X86_OP_REG) return unsupported(d);
    GprReg r = map_gpr(other.reg);
    if (r.num == kNoReg) return unsupported(d);  // segment, control, debug registers
    d.reg = r.num;
    if (r.high) d.flags |= kFlagHighByte;
    switch (fam) {
      case Family::kMov:
        if (r.size != d.width) return unsupported(d);
        d.op = store ? kOpStoreReg : kOpLoad;
        d.direction = store ? Direction::kStore : Direction::kLoad;
        d.reg_width = r.size;
        return d;
      case Family::kExtend:
        if (store || r.size < d.width || r.high) return unsupported(d);
        d.op = kOpLoad;
        d.direction = Direction::kLoad;
        d.reg_width = r.size;
        if (sign) d.flags |= kFlagSignExtend;
        return d;
      case Family::kCmp:
        if (r.size != d.width) return unsupported(d);
        d.op = store ? kOpCmpMemReg : kOpCmpRegMem;
        d.direction = Direction::kCompare;
        return d;
      default:  // kTest: commutative, either operand order
        if (r.size != d.width) return unsupported(d);
        d.op = kOpTestMemReg;
        d.direction = Direction::kCompare;
        return d;
    }
  }

  // SSE / AVX forms: the other operand must be xmm0..15.
  if (other.type != X86_OP_REG) return unsupported(d);
  uint8_t xr = map_xmm(other.reg);
  if (xr == kNoReg) return unsupported(d);
  if (p.rep > 1) return unsupported(d);
  d.reg = xr;
  d.direction = store ? Direction::kStore : Direction::kLoad;
  d.op = store ? kOpXmmStore : kOpXmmLoad;
  switch (fam) {
    case Family::kSseAligned:
    case Family::kVexAlignedStore:
      d.flags |= kFlagAlign16;
      [[fallthrough]];
    case Family::kSse16:
    case Family::kVexStore:
      if (fam == Family::kVexStore || fam == Family::kVexAlignedStore) {
        // A VEX.128 load also zeroes bits 255 and up of the ymm/zmm register, which live in the
        // XSAVE area: to_ucontext clears them there (kFlagZeroVecUpper), so loads are emulated
        // only where that layout is known. Stores only read the xmm register.
        if (d.width != 16 && d.width != 8 && d.width != 4) return unsupported(d);
        if (d.width != 16 && (d.flags & kFlagAlign16)) return unsupported(d);
        if (!store) {
          if (!vex_loads_supported()) return unsupported(d);
          d.flags |= kFlagZeroVecUpper;
          if (d.width != 16) d.flags |= kFlagZeroUpper;  // vmovq/vmovd/vmovss/vmovsd
        }
        return d;
      }
      if (d.width != 16) return unsupported(d);
      return d;
    case Family::kSseLow:
      if (d.width != 4 && d.width != 8) return unsupported(d);
      if (!store) d.flags |= kFlagZeroUpper;
      return d;
    case Family::kSseHalf:
      if (d.width != 8) return unsupported(d);
      if (high_half) d.flags |= kFlagHighHalf;
      return d;
    default:
      return unsupported(d);
  }
}

}  // namespace

bool decoder_init() {
  if (g_ready.load(std::memory_order_acquire)) return true;
  vector_state_init();
  std::lock_guard<std::mutex> lock(g_init_mutex);
  if (g_ready.load(std::memory_order_relaxed)) return true;
  static cs_opt_mem mem = {hook_malloc, hook_calloc, hook_realloc, hook_free, hook_vsnprintf};
  if (cs_option(0, CS_OPT_MEM, reinterpret_cast<size_t>(&mem)) != CS_ERR_OK) return false;
  for (Slot& s : g_slots) {
    if (!open_slot(&s)) return false;
  }
  g_ready.store(true, std::memory_order_release);
  return true;
}

Decoded decode_form(const uint8_t* code, size_t len) {
  Decoded d;
  if (len == 0) {
    d.decline = Decline::kTruncated;
    return d;
  }
  if (len > kMaxInsnLength) len = kMaxInsnLength;
  if (!g_ready.load(std::memory_order_acquire)) {
    d.decline = Decline::kDecodeFailed;
    d.flags = kFlagTransient;
    return d;
  }
  Slot* s = acquire_slot();
  if (s == nullptr) {
    d.decline = Decline::kDecodeFailed;
    d.flags = kFlagTransient;
    return d;
  }
  const uint8_t* c = code;
  size_t size = len;
  uint64_t addr = 0;
  if (!cs_disasm_iter(s->handle, &c, &size, &addr, s->insn)) {
    release_slot(s);
    // An x86 instruction is never a proper prefix of another, so a failure on fewer than 15
    // bytes may be a cut-off instruction; either way nothing is emulated.
    d.decline = len < kMaxInsnLength ? Decline::kTruncated : Decline::kDecodeFailed;
    return d;
  }
  const cs_insn& insn = *s->insn;
  d.length = static_cast<uint8_t>(insn.size);
  d.mnemonic = static_cast<uint16_t>(insn.id);
  Prefixes p = scan_prefixes(code, d.length);
  if (p.lock != 0) {
    d.decline = Decline::kLockPrefix;
  } else if (p.fs_gs != 0) {
    d.decline = Decline::kSegmentPrefix;
  } else if (p.evex) {
    d.decline = Decline::kUnsupported;
  } else {
    d = classify(d, insn, code, p);
  }
  release_slot(s);
  return d;
}

const char* decoder_mnemonic_name(uint16_t mnemonic) {
  if (!g_ready.load(std::memory_order_acquire)) return "?";
  const char* n = cs_insn_name(g_slots[0].handle, mnemonic);
  return n != nullptr ? n : "?";
}

}  // namespace weakgc::detail::emu
