#!/usr/bin/env python3
"""Generates the differential-test instruction set for tests/emulate_diff_test.cpp.

Writes one GNU as source (Intel syntax) holding, for every case, the instruction under test
assembled by `as` (never hand-encoded) followed by `jmp emu_return`, a table describing how to
point its memory operand into a test area, and the native-execution trampoline `emu_run`.

Deterministic: a fixed seed, so the build is reproducible. Usage: emulate_gen.py <out.s>
"""
import random
import sys

SEED = 0x5EED_E1A7
AREA_L = 0x30000000  # fixed low area: absolute, moffs and 32-bit (0x67) addressing
AREA_PAGES = 4       # targets lie in pages 1..2 of an area
STATE_XMM = 144      # offsetof(State, xmm)
STATE_FLAGS = 128    # offsetof(State, rflags)

R64 = "rax rcx rdx rbx rsp rbp rsi rdi r8 r9 r10 r11 r12 r13 r14 r15".split()
R32 = "eax ecx edx ebx esp ebp esi edi r8d r9d r10d r11d r12d r13d r14d r15d".split()
R16 = "ax cx dx bx sp bp si di r8w r9w r10w r11w r12w r13w r14w r15w".split()
R8 = "al cl dl bl spl bpl sil dil r8b r9b r10b r11b r12b r13b r14b r15b".split()
HIGH8 = "ah ch dh bh".split()
REGS = {1: R8, 2: R16, 4: R32, 8: R64}
PTR = {1: "BYTE PTR", 2: "WORD PTR", 4: "DWORD PTR", 8: "QWORD PTR", 16: "XMMWORD PTR"}

# Case flags, mirrored in emulate_diff_test.cpp.
F_ADDR32 = 1      # 0x67 addressing
F_AF_UNDEF = 2    # test: AF undefined
F_COMPARE = 4     # cmp/test: inject equal / near values

# Address modes (Case.mode).
M_REG, M_RIP, M_ABS = 0, 1, 2


class Case:
    def __init__(self, text, width, data, flags=0, base=-1, index=-1, scale=1, disp=0,
                 mode=M_REG, fixed=0, align=1, imm=0):
        self.__dict__.update(locals())
        del self.__dict__["self"]


def disp_str(d):
    if d == 0:
        return ""
    return f"+{d:#x}" if d > 0 else f"-{-d:#x}"


def gen_address(rng, width, align, legacy_only):
    """Returns (operand text, fields) for a random addressing mode. For aligned forms the
    displacement is a multiple of the alignment, so some register values reach an aligned
    target whatever the scale."""
    bases = list(range(8)) if legacy_only else list(range(16))
    indexes = [i for i in bases if i != 4]
    kind = rng.choices(["base", "bdisp8", "bdisp32", "sib", "nobase", "rip", "abs", "a32"],
                       weights=[3, 3, 2, 6, 2, 2, 1, 3])[0]
    f = dict(base=-1, index=-1, scale=1, disp=0, mode=M_REG, fixed=0, flags=0)
    if kind in ("rip", "abs"):
        off = rng.randrange(4096, 8192 + 4096 - 16)
        off -= off % align
        f["fixed"] = off
        if kind == "rip":
            f["mode"] = M_RIP
            return f"{PTR[width]} [rip + emu_area_h + {off:#x}]", f
        f["mode"] = M_ABS
        return f"{PTR[width]} ds:{AREA_L + off:#x}", f
    names = R64
    if kind == "a32":
        f["flags"] |= F_ADDR32
        names = R32
        kind = rng.choice(["base", "bdisp8", "sib", "nobase"])
    if kind == "base":
        b = rng.choice(bases)
        f["base"] = b
        return f"{PTR[width]} [{names[b]}]", f
    if kind in ("bdisp8", "bdisp32"):
        b = rng.choice(bases)
        d = rng.randint(-128, 127) if kind == "bdisp8" else rng.choice(
            [rng.randint(-0x80000000, 0x7FFFFFFF), rng.randint(128, 0x10000),
             -rng.randint(129, 0x10000)])
        d -= d % align
        f.update(base=b, disp=d)
        return f"{PTR[width]} [{names[b]}{disp_str(d)}]", f
    s = rng.choice([1, 2, 4, 8])
    i = rng.choice(indexes)
    d = rng.choice([0, rng.randint(-128, 127), rng.randint(-0x8000, 0x8000)])
    if kind == "nobase":
        d = rng.randint(-0x8000, 0x8000)
    d -= d % align
    if kind == "nobase":
        f.update(index=i, scale=s, disp=d)
        # GAS needs a displacement to pick the no-base SIB form; "+0x0" forces disp32 = 0.
        return f"{PTR[width]} [{names[i]}*{s}{disp_str(d) or '+0x0'}]", f
    b = rng.choice(bases)
    f.update(base=b, index=i, scale=s, disp=d)
    return f"{PTR[width]} [{names[b]}+{names[i]}*{s}{disp_str(d)}]", f


def imm_for(rng, width, sign_ext32=True):
    lo, hi = {1: (-128, 255), 2: (-32768, 65535), 4: (-2**31, 2**32 - 1), 8: (-2**31, 2**31 - 1)}[width]
    v = rng.choice([0, 1, -1, 0x7F, -0x80, 0x80, rng.randint(lo, hi), rng.randint(-128, 127)])
    return max(lo, min(hi, v))


def forms():
    """(template, mem width, data kind, flags, align). Data kinds: ('gpr', w) | ('xmm',) | ('imm',)."""
    out = []
    for w in (1, 2, 4, 8):
        out.append(("mov {r}, {m}", w, ("gpr", w), 0, 1))
        out.append(("mov {m}, {r}", w, ("gpr", w), 0, 1))
        out.append(("mov {m}, {i}", w, ("imm",), 0, 1))
        out.append(("cmp {m}, {r}", w, ("gpr", w), F_COMPARE, 1))
        out.append(("cmp {r}, {m}", w, ("gpr", w), F_COMPARE, 1))
        out.append(("cmp {m}, {i}", w, ("imm",), F_COMPARE, 1))
        out.append(("test {m}, {r}", w, ("gpr", w), F_COMPARE | F_AF_UNDEF, 1))
        out.append(("test {m}, {i}", w, ("imm",), F_COMPARE | F_AF_UNDEF, 1))
    for rw in (2, 4, 8):
        out.append(("movzx {r}, {m}", 1, ("gpr", rw), 0, 1))
        out.append(("movsx {r}, {m}", 1, ("gpr", rw), 0, 1))
    for rw in (4, 8):
        out.append(("movzx {r}, {m}", 2, ("gpr", rw), 0, 1))
        out.append(("movsx {r}, {m}", 2, ("gpr", rw), 0, 1))
    out.append(("movsxd {r}, {m}", 4, ("gpr", 8), 0, 1))
    for mn, w, al in (("movdqu", 16, 1), ("movups", 16, 1), ("movupd", 16, 1),
                      ("movdqa", 16, 16), ("movaps", 16, 16), ("movapd", 16, 16),
                      ("movq", 8, 1), ("movsd", 8, 1), ("movd", 4, 1), ("movss", 4, 1),
                      ("movlps", 8, 1), ("movhps", 8, 1), ("movlpd", 8, 1), ("movhpd", 8, 1)):
        out.append((mn + " {x}, {m}", w, ("xmm",), 0, al))
        out.append((mn + " {m}, {x}", w, ("xmm",), 0, al))
    for mn, w, al in (("vmovdqu", 16, 1), ("vmovups", 16, 1), ("vmovupd", 16, 1),
                      ("vmovdqa", 16, 16), ("vmovaps", 16, 16), ("vmovapd", 16, 16),
                      ("vmovq", 8, 1), ("vmovsd", 8, 1), ("vmovd", 4, 1), ("vmovss", 4, 1)):
        out.append((mn + " {m}, {x}", w, ("xmm",), 0, al))
        out.append((mn + " {x}, {m}", w, ("xmm",), 0, al))  # VEX loads zero the upper bits
    return out


def main():
    rng = random.Random(SEED)
    cases = []
    for tmpl, w, data, flags, align in forms():
        if data[0] == "gpr":
            rw = data[1]
            regs = [(n, i) for i, n in enumerate(REGS[rw])]
            if rw == 1:
                regs += [(n, 16 + i) for i, n in enumerate(HIGH8)]
        elif data[0] == "xmm":
            regs = [(f"xmm{i}", 32 + i) for i in range(16)]
        else:
            regs = [(None, -1)] * 16
        for name, num in regs:
            for _ in range(4):
                legacy = 16 <= num < 20
                m, f = gen_address(rng, w, align, legacy)
                imm = imm_for(rng, w) if data[0] == "imm" else 0
                text = tmpl.format(r=name, x=name, m=m, i=imm)
                cases.append(Case(text, w, num, flags | f.pop("flags"), align=align, imm=imm, **f))
        if tmpl.startswith("mov ") and data[0] == "gpr":  # moffs: movabs al/ax/eax/rax
            acc = REGS[w][0]
            off = rng.randrange(4096, 8192 + 4096 - 16)
            m = f"{PTR[w]} ds:{AREA_L + off:#x}"
            text = "movabs " + tmpl.replace("mov ", "").format(r=acc, m=m)
            cases.append(Case(text, w, 0, flags, mode=M_ABS, fixed=off))

    o = []
    o.append("# Generated by tests/emulate_gen.py; do not edit.")
    o.append(".intel_syntax noprefix")
    o.append(".section .note.GNU-stack,\"\",@progbits")
    o.append(".bss")
    o.append(".balign 4096")
    o.append(".globl emu_area_h")
    o.append(".hidden emu_area_h")
    o.append(f"emu_area_h: .zero {4096 * AREA_PAGES}")
    o.append(".balign 8")
    for v in ("emu_saved_rsp", "emu_state_ptr", "emu_target", "emu_tmp"):
        o.append(f"{v}: .zero 8")
    o.append(".text")
    o.append(".globl emu_run")
    o.append(".hidden emu_run")
    o.append("emu_run:")
    o += ["  push " + r for r in ("rbx", "rbp", "r12", "r13", "r14", "r15")]
    o.append("  mov [rip+emu_saved_rsp], rsp")
    o.append("  mov [rip+emu_state_ptr], rdi")
    o.append("  mov [rip+emu_target], rsi")
    o += [f"  movdqu xmm{i}, [rdi+{STATE_XMM + 16 * i}]" for i in range(16)]
    o.append(f"  push QWORD PTR [rdi+{STATE_FLAGS}]")
    o.append("  popfq")
    o += [f"  mov {R64[i]}, [rdi+{8 * i}]" for i in range(16) if i != 7]
    o.append("  mov rdi, [rdi+56]")
    o.append("  jmp QWORD PTR [rip+emu_target]")
    o.append(".globl emu_return")
    o.append(".hidden emu_return")
    o.append("emu_return:")
    o.append("  mov [rip+emu_tmp], rax")
    o.append("  mov rax, [rip+emu_state_ptr]")
    o += [f"  mov [rax+{8 * i}], {R64[i]}" for i in range(1, 16)]
    o.append("  mov rcx, [rip+emu_tmp]")
    o.append("  mov [rax], rcx")
    o.append("  mov rsp, [rip+emu_saved_rsp]")
    o.append("  pushfq")
    o.append("  pop rcx")
    o.append(f"  mov [rax+{STATE_FLAGS}], rcx")
    o += [f"  movdqu [rax+{STATE_XMM + 16 * i}], xmm{i}" for i in range(16)]
    o.append("  push 0x202")
    o.append("  popfq")
    o += ["  pop " + r for r in ("r15", "r14", "r13", "r12", "rbp", "rbx")]
    o.append("  ret")
    for n, c in enumerate(cases):
        o.append(f"emu_case_{n}: {c.text}")
        o.append(f"emu_case_{n}_end: jmp emu_return")
    o.append(".section .rodata")
    for n, c in enumerate(cases):
        o.append(f"emu_text_{n}: .asciz \"{c.text}\"")
    o.append(".data")
    o.append(".balign 8")
    o.append(".globl emu_case_count")
    o.append(".hidden emu_case_count")
    o.append(f"emu_case_count: .quad {len(cases)}")
    o.append(".globl emu_cases")
    o.append(".hidden emu_cases")
    o.append("emu_cases:")
    for n, c in enumerate(cases):
        o.append(f"  .quad emu_case_{n}, emu_case_{n}_end, emu_text_{n}, {c.base}, {c.index}, "
                 f"{c.scale}, {c.disp}, {c.mode}, {c.fixed}, {c.align}, {c.flags}, {c.data}, "
                 f"{c.width}, {c.imm}")
    with open(sys.argv[1], "w") as f:
        f.write("\n".join(o) + "\n")


if __name__ == "__main__":
    main()
