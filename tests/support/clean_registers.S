/* Test support for conservative stack scanning. Single-threaded tests only (static buffer). */
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
