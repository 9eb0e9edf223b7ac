/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The IDT, all 256 gates, as assembler constants (ISR_BASE is fixed by
 * the linker script), so no instruction builds it at boot: each CPU only
 * runs lidt. Interrupt gates (IF cleared on entry), kernel CS. Vector 3
 * (#BP) has DPL 3: int3 from user mode is the system-call gate. #DF runs
 * on IST1 (a per-CPU stack set in the TSS by cpu.c), so a kernel stack
 * overflow still reports instead of triple-faulting.
 */
#include "isr.h"

.macro gate v
	.word	(ISR_BASE + (\v) * ISR_STUB_SIZE) & 0xffff
	.word	KERNEL_CS
	.if (\v) == VEC_DF
	.byte	1
	.else
	.byte	0
	.endif
	.if (\v) == VEC_SYSCALL
	.byte	0xee			/* present, DPL 3, interrupt gate */
	.else
	.byte	0x8e			/* present, DPL 0, interrupt gate */
	.endif
	.word	((ISR_BASE + (\v) * ISR_STUB_SIZE) >> 16) & 0xffff
	.long	0
	.long	0
.endm

	.section .rodata.idt, "a", @progbits
	.balign 16
idt:
	.set vec, 0
	.rept 256
	gate	vec
	.set vec, vec + 1
	.endr
idt_end:

	.balign 8
	.word	0, 0, 0
	.globl idt_pointer
idt_pointer:
	.word	idt_end - idt - 1
	.quad	idt

	.section .note.GNU-stack, "", @progbits
