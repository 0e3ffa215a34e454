/* wgtest_call_with_clean_registers(void (*f)(void*), void* ctx): calls f(ctx) with the
   callee-saved registers (rbx, rbp, r12-r15) zeroed, their values parked in a static buffer.
   Conservative stack scanning rightly treats a caller's callee-saved registers as roots; a test
   that wants "nothing unreachable survives" uses this so that a stale object address left in one
   of them by earlier code (and pushed by some callee's prologue) cannot pin an object. The buffer
   is not a root. Not reentrant: single-threaded tests only. */
  .bss
  .align 16
wgtest_saved_registers:
  .zero 48

  .text
  .globl wgtest_call_with_clean_registers
  .type wgtest_call_with_clean_registers, @function
wgtest_call_with_clean_registers:
  mov %rbx, wgtest_saved_registers+0(%rip)
  mov %rbp, wgtest_saved_registers+8(%rip)
  mov %r12, wgtest_saved_registers+16(%rip)
  mov %r13, wgtest_saved_registers+24(%rip)
  mov %r14, wgtest_saved_registers+32(%rip)
  mov %r15, wgtest_saved_registers+40(%rip)
  xor %ebx, %ebx
  xor %ebp, %ebp
  xor %r12d, %r12d
  xor %r13d, %r13d
  xor %r14d, %r14d
  xor %r15d, %r15d
  mov %rdi, %rax
  mov %rsi, %rdi
  sub $8, %rsp            /* entry rsp = 8 mod 16; the call needs 0 mod 16 */
  call *%rax
  add $8, %rsp
  mov wgtest_saved_registers+0(%rip), %rbx
  mov wgtest_saved_registers+8(%rip), %rbp
  mov wgtest_saved_registers+16(%rip), %r12
  mov wgtest_saved_registers+24(%rip), %r13
  mov wgtest_saved_registers+32(%rip), %r14
  mov wgtest_saved_registers+40(%rip), %r15
  ret
  .size wgtest_call_with_clean_registers, .-wgtest_call_with_clean_registers

/* uintptr_t wgtest_call_holding_in_r13(uintptr_t value, void (*f)(void*), void* ctx): calls
   f(ctx) with `value` in r13 and every other callee-saved register zeroed, then returns what r13
   holds afterwards. The caller's registers are parked in the static buffer (not a root), so while
   f runs `value` exists only in r13 — or wherever f's callees push r13. */
  .bss
  .align 16
wgtest_saved_registers_2:
  .zero 48

  .text
  .globl wgtest_call_holding_in_r13
  .type wgtest_call_holding_in_r13, @function
wgtest_call_holding_in_r13:
  mov %rbx, wgtest_saved_registers_2+0(%rip)
  mov %rbp, wgtest_saved_registers_2+8(%rip)
  mov %r12, wgtest_saved_registers_2+16(%rip)
  mov %r13, wgtest_saved_registers_2+24(%rip)
  mov %r14, wgtest_saved_registers_2+32(%rip)
  mov %r15, wgtest_saved_registers_2+40(%rip)
  xor %ebx, %ebx
  xor %ebp, %ebp
  xor %r12d, %r12d
  xor %r14d, %r14d
  xor %r15d, %r15d
  mov %rdi, %r13
  xor %edi, %edi          /* the argument registers must not keep `value` either */
  mov %rsi, %rax
  mov %rdx, %rdi
  xor %esi, %esi
  xor %edx, %edx
  sub $8, %rsp
  call *%rax
  add $8, %rsp
  mov %r13, %rax
  mov wgtest_saved_registers_2+0(%rip), %rbx
  mov wgtest_saved_registers_2+8(%rip), %rbp
  mov wgtest_saved_registers_2+16(%rip), %r12
  mov wgtest_saved_registers_2+24(%rip), %r13
  mov wgtest_saved_registers_2+32(%rip), %r14
  mov wgtest_saved_registers_2+40(%rip), %r15
  ret
  .size wgtest_call_holding_in_r13, .-wgtest_call_holding_in_r13
  .section .note.GNU-stack,"",@progbits
