/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The 256 interrupt entry stubs and the common trap path.
 *
 * Stub v sits at ISR_BASE + 16 * v (the linker script pins isr_stubs and
 * checks the total size), pushes a zero error code if the CPU pushed
 * none, pushes v and jumps to isr_common. isr_common swaps GS when it
 * came from CPL3 (the kernel's per-CPU base lives in KERNEL_GS_BASE while
 * user code runs), saves the GPRs into a struct trap_frame (trap.h) and
 * calls trap_dispatch. No SSE state is saved: the kernel never touches
 * it (check-insns.sh), so user-mode SSE registers survive a trap.
 */
#include "isr.h"

	.section .text.isr, "ax", @progbits
	.code64
	.globl isr_stubs
	.balign ISR_STUB_SIZE
isr_stubs:
	.set vec, 0
	.rept 256
	.balign ISR_STUB_SIZE
	.if (vec == 8) || (vec == 10) || (vec == 11) || (vec == 12) || (vec == 13) || (vec == 14) || (vec == 17) || (vec == 21) || (vec == 29) || (vec == 30)
	.else
	pushq	$0
	.endif
	pushq	$vec
	jmp	isr_common
	.set vec, vec + 1
	.endr
	.balign ISR_STUB_SIZE
	.globl isr_stubs_end
isr_stubs_end:

isr_common:
	testb	$3, 24(%rsp)		/* saved CS: from user mode? */
	jz	1f
	swapgs
1:	push	%rax
	push	%rbx
	push	%rcx
	push	%rdx
	push	%rsi
	push	%rdi
	push	%rbp
	push	%r8
	push	%r9
	push	%r10
	push	%r11
	push	%r12
	push	%r13
	push	%r14
	push	%r15
	cld
	mov	%rsp, %rdi
	call	trap_dispatch
	pop	%r15
	pop	%r14
	pop	%r13
	pop	%r12
	pop	%r11
	pop	%r10
	pop	%r9
	pop	%r8
	pop	%rbp
	pop	%rdi
	pop	%rsi
	pop	%rdx
	pop	%rcx
	pop	%rbx
	pop	%rax
	testb	$3, 24(%rsp)
	jz	2f
	swapgs
2:	add	$16, %rsp		/* vector and error code */
	iretq

	.section .note.GNU-stack, "", @progbits
