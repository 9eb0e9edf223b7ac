/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * _start: every vCPU enters here at the same time, in long mode, with
 * RDI = boot info, RSI = vCPU index (docs/boot-protocol.md).
 *
 * Each CPU moves to its own kernel stack (kernel_stacks in .bss, never
 * cleared: RAM is zero at entry), loads our GDT and the static IDT, and
 * goes to kernel_main (BSP) or ap_main (APs). Our GDT keeps the VMM's
 * selectors (0x08 code, 0x10 data) with the same descriptors, so the
 * segment registers need no reload here. The BSP's entry TSC is kept for
 * the boot-time figure.
 */
#include "isr.h"

	.section .text.entry, "ax", @progbits
	.code64
	.globl _start
_start:
	cmp	$MAX_CPUS, %rsi
	jae	halt_forever
	test	%rsi, %rsi
	jnz	1f
	rdtsc
	shl	$32, %rdx
	or	%rdx, %rax
	mov	%rax, boot_entry_tsc
1:	lea	1(%rsi), %rax
	shl	$KSTACK_SHIFT, %rax
	lea	kernel_stacks(%rax), %rsp
	lgdt	gdt_pointer
	lidt	idt_pointer
	xor	%ebp, %ebp
	test	%rsi, %rsi
	jnz	2f
	call	kernel_main
	jmp	halt_forever
2:	call	ap_main

	.globl halt_forever
halt_forever:
	cli
	hlt
	jmp	halt_forever

	.section .note.GNU-stack, "", @progbits
