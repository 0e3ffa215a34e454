// x86-64 single-access emulator.
//
// Concept: given the bytes of a faulting instruction, the register file of the thread that
// faulted, the fault address and a memory accessor, decide whether the one memory access the
// instruction makes can be performed on the thread's behalf and, if so, perform it and produce
// the new register file (RIP advanced). This module knows nothing about the collector: the
// caller (barrier/) supplies the accessor, which reads and writes the collector's view.
//
// Valid call sequence (MPS's can-step / step split):
//   1. decode(...) -> Decoded       : no side effects, signal-safe, answers "cannot" with a reason
//   2. emulate(decoded, regs, mem)  : performs the access through `mem`, updates `regs`
// decode() checks that the instruction's effective address equals the fault address.
//
// Signal safety: every function here marked signal-safe allocates nothing, takes no lock and
// calls no libc function that is not async-signal-safe. Capstone is confined to decoder.cpp.
#pragma once

#include <cstddef>
#include <cstdint>

#include <ucontext.h>

namespace weakgc::detail::emu {

// General registers in the hardware encoding order (rax=0 .. r15=15).
enum Gpr : uint8_t {
  kRax,
  kRcx,
  kRdx,
  kRbx,
  kRsp,
  kRbp,
  kRsi,
  kRdi,
  kR8,
  kR9,
  kR10,
  kR11,
  kR12,
  kR13,
  kR14,
  kR15,
  kGprCount
};

// The state an emulated instruction may read or write.
struct RegisterFile {
  uint64_t gpr[kGprCount];
  uint64_t rip;
  uint64_t rflags;
  alignas(16) uint8_t xmm[16][16];
  // Registers whose bits 255 and up a VEX load zeroed (bit i: xmm i); applied to the saved
  // AVX / AVX-512 state by to_ucontext. Zero after from_ucontext.
  uint16_t zero_vec_upper = 0;
};

// Reads the register file out of a signal's ucontext (general registers, RIP, RFLAGS, XMM from
// the saved FP state). signal-safe.
void from_ucontext(const ucontext_t* uc, RegisterFile* out);
// Writes the register file back into a signal's ucontext. signal-safe.
void to_ucontext(const RegisterFile& regs, ucontext_t* uc);

// Memory accessor supplied by the caller: plain function pointers so the signal handler needs no
// allocation or virtual dispatch set-up. Each returns false if the access cannot be made.
struct MemoryAccessor {
  void* ctx;
  bool (*read)(void* ctx, uint64_t addr, void* out, size_t len);
  bool (*write)(void* ctx, uint64_t addr, const void* in, size_t len);
};

enum class Direction : uint8_t { kLoad, kStore, kCompare };

// Why an instruction cannot be emulated. kNone means it can.
enum class Decline : uint8_t {
  kNone,
  kDecodeFailed,     // Capstone could not decode the bytes
  kTruncated,        // fewer bytes available than the instruction needs
  kUnsupported,      // a mnemonic or operand form we do not emulate
  kAddressMismatch,  // the effective address differs from the fault address
  kSegmentPrefix,    // FS/GS segment override
  kLockPrefix,       // LOCK prefix (atomic read-modify-write)
  kNoMemoryOperand,  // the instruction has no memory operand
  kAccessorFailed,   // the memory accessor refused the access (emulate() only)
  kCount
};

// Printable name of a decline reason (static storage). signal-safe.
const char* decline_name(Decline d);

// The decoded form of one instruction, computed by decode(). Plain data: it can be cached by RIP
// and copied between threads. Fields are private to the module except those documented here.
struct Decoded {
  Decline decline = Decline::kNone;
  Direction direction = Direction::kLoad;
  uint8_t length = 0;     // instruction length in bytes
  uint8_t width = 0;      // bytes accessed in memory: 1, 2, 4, 8 or 16
  uint16_t mnemonic = 0;  // Capstone instruction id (for statistics by mnemonic)
  // Internal: the operation and its operands, filled by the decoder.
  uint8_t op = 0;
  uint8_t reg = 0;  // register operand (module-internal numbering)
  uint8_t base = 0xff, index = 0xff, scale = 1;
  bool rip_relative = false;
  int64_t disp = 0;
  int64_t imm = 0;
  uint8_t flags = 0;
  uint8_t reg_width = 0;  // bytes of the register operand written by a load (movzx/movsx widen)
};

// Result of an emulated access, for the caller (e.g. to grey the referent of a loaded slot).
struct Access {
  uint64_t address = 0;  // the effective address (== fault address)
  uint8_t width = 0;
  Direction direction = Direction::kLoad;
  uint64_t value[2] = {0, 0};  // for loads and compares: the bytes read from memory (little-endian)
};

// Decodes the instruction at `code` (at most `len` bytes readable) executed with `regs`, and
// decides whether its single memory access at `fault_addr` can be emulated. No side effects.
// signal-safe once init() has run on this thread's decoder slot.
Decoded decode(const uint8_t* code, size_t len, const RegisterFile& regs, uint64_t fault_addr);

// Computes the effective address of a decoded instruction under `regs`. signal-safe.
uint64_t effective_address(const Decoded& d, const RegisterFile& regs);

// Performs a decoded access through `mem`, updating `regs` (destination register, RFLAGS for
// cmp/test, RIP advanced by the instruction length). Returns kNone on success, otherwise the
// reason, in which case `regs` is unchanged. signal-safe.
Decline emulate(const Decoded& d, RegisterFile* regs, const MemoryAccessor& mem, Access* out);

// Convenience: decode + emulate in one call, consulting the decode cache. signal-safe.
Decline emulate_at(const uint8_t* code, size_t len, RegisterFile* regs, uint64_t fault_addr,
                   const MemoryAccessor& mem, Decoded* decoded, Access* out);

// Prepares the decoder (Capstone handles, CS_OPT_MEM routing, warm-up decode). Must be called
// before any signal handler that uses this module is installed; idempotent and thread-safe.
// Returns false if Capstone could not be initialised.
bool init();

// Statistics: number of declines by mnemonic id. Fills up to `cap` (mnemonic, count) pairs,
// most frequent first, and returns how many were written. Not signal-safe.
struct MnemonicCount {
  uint16_t mnemonic;
  uint64_t count;
};
size_t declined_by_mnemonic(MnemonicCount* out, size_t cap);
// Printable Capstone name of a mnemonic id ("mov", "cmp", ...). Not signal-safe.
const char* mnemonic_name(uint16_t mnemonic);

}  // namespace weakgc::detail::emu
