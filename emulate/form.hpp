// The module-internal vocabulary of a decoded access form (Decoded::op, Decoded::flags) and the
// entry points of decoder.cpp, the one file that sees Capstone.
//
// A form is a pure function of the instruction bytes (64-bit mode has no other decoding state),
// so it may be cached by RIP and shared between threads (.inv.form-pure in
// docs/design/emulate.md). What depends on the registers — the effective address and the
// alignment of aligned SSE moves — is checked afresh on every fault by check_access().
#pragma once

#include <cstddef>
#include <cstdint>

#include "emulate/emulate.hpp"

namespace weakgc::detail::emu {

// Decoded::op. Every form makes exactly one explicit memory access of Decoded::width bytes.
enum Op : uint8_t {
  kOpNone,
  kOpLoad,        // gpr[reg] <- extend(m), written with reg_width partial-register rules
  kOpStoreReg,    // m <- gpr[reg]
  kOpStoreImm,    // m <- imm
  kOpCmpMemReg,   // flags <- m - gpr[reg]
  kOpCmpRegMem,   // flags <- gpr[reg] - m
  kOpCmpMemImm,   // flags <- m - imm
  kOpTestMemReg,  // flags <- m & gpr[reg]
  kOpTestMemImm,  // flags <- m & imm
  kOpXmmLoad,     // xmm[reg] bytes [offset, offset + width) <- m (kFlagZeroUpper: rest <- 0)
  kOpXmmStore,    // m <- xmm[reg] bytes [offset, offset + width)
  kOpCount
};

// Decoded::flags.
enum FormFlag : uint8_t {
  kFlagHighByte = 1 << 0,      // the register operand is ah/ch/dh/bh: reg is rax..rbx, bits 15:8
  kFlagAddr32 = 1 << 1,        // 0x67: the effective address is computed modulo 2^32
  kFlagAlign16 = 1 << 2,       // movdqa/movaps/movapd: a misaligned address would #GP, decline
  kFlagSignExtend = 1 << 3,    // movsx/movsxd
  kFlagZeroUpper = 1 << 4,     // movq/movd/movss/movsd load: the rest of the xmm register is zeroed
  kFlagHighHalf = 1 << 5,      // movhps/movhpd: the xmm bytes are [8, 16)
  kFlagTransient = 1 << 6,     // the decline does not follow from the bytes (no free handle)
  kFlagZeroVecUpper = 1 << 7,  // VEX load: bits 255 and up of the ymm/zmm register are zeroed
};

// Decoded::base / index value meaning "no register".
inline constexpr uint8_t kNoReg = 0xff;

// Longest x86 instruction.
inline constexpr size_t kMaxInsnLength = 15;

// Size of the decline-by-mnemonic table; decoder.cpp asserts Capstone's X86_INS_ENDING fits.
inline constexpr size_t kMnemonicSlots = 2048;

// Capstone set-up (CS_OPT_MEM routing, handle pool, warm-up). Not signal-safe; idempotent.
bool decoder_init();

// Reads where the XSAVE standard format keeps the upper halves of the vector registers (CPUID
// leaf 0xD); called by decoder_init. Not signal-safe; idempotent.
void vector_state_init();
// Whether a VEX load can be emulated: the CPU saves AVX state with XSAVE, at a known offset.
// signal-safe after vector_state_init().
bool vex_loads_supported();

// Decodes the form of the instruction at `code` (at most `len` readable bytes): op, operands,
// length, width, mnemonic, or a decline that follows from the bytes alone. Does not look at
// registers or the fault address. signal-safe after decoder_init().
Decoded decode_form(const uint8_t* code, size_t len);

// Capstone's name of an instruction id, or "?" . Not signal-safe.
const char* decoder_mnemonic_name(uint16_t mnemonic);

}  // namespace weakgc::detail::emu
