/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Kernel <-> user-mode switches (user.c drives them).
 *
 * user_enter(ctx, rip, rsp, arg0, arg1) saves the callee-saved registers
 * on the kernel stack, records that stack in ctx->kernel_rsp and in the
 * TSS's RSP0 (via ctx->rsp0_slot), so traps from user mode land just
 * below the saved context, clears the other registers, swaps to the user
 * GS base and irets to CPL3 with interrupts on. It "returns" only when
 * user_leave(ctx, status) (the exit system call, on that same stack)
 * restores the context: the trap frame of the exit call is dropped.
 */
#include "isr.h"

	.text
	.code64
	.globl user_enter
user_enter:
	push	%rbp
	push	%rbx
	push	%r12
	push	%r13
	push	%r14
	push	%r15
	mov	%rsp, 0(%rdi)		/* ctx->kernel_rsp */
	mov	8(%rdi), %rax		/* ctx->rsp0_slot */
	mov	%rsp, (%rax)
	pushq	$USER_DS		/* ss */
	push	%rdx			/* rsp */
	pushq	$0x202			/* rflags: IF */
	pushq	$USER_CS		/* cs */
	push	%rsi			/* rip */
	mov	%rcx, %rdi
	mov	%r8, %rsi
	xor	%eax, %eax
	xor	%ebx, %ebx
	xor	%ecx, %ecx
	xor	%edx, %edx
	xor	%ebp, %ebp
	xor	%r8d, %r8d
	xor	%r9d, %r9d
	xor	%r10d, %r10d
	xor	%r11d, %r11d
	xor	%r12d, %r12d
	xor	%r13d, %r13d
	xor	%r14d, %r14d
	xor	%r15d, %r15d
	swapgs
	iretq

	.globl user_leave
user_leave:
	mov	0(%rdi), %rsp
	mov	%rsi, %rax
	pop	%r15
	pop	%r14
	pop	%r13
	pop	%r12
	pop	%rbx
	pop	%rbp
	ret

	.section .note.GNU-stack, "", @progbits
