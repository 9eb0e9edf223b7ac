/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The 256 interrupt entry stubs and the common trap path.
 *
 * Stub v sits at ISR_BASE + 16 * v (the linker script pins isr_stubs and
 * checks the total size), pushes a zero error code if the CPU pushed
 * none, pushes v and jumps to isr_common. isr_common swaps GS when it
 * came from CPL3 (the kernel's per-CPU base lives in KERNEL_GS_BASE while
 * user code runs), saves the caller-saved GPRs into a struct trap_frame
 * (trap.h) and calls trap_dispatch. Callee-saved registers are left to
 * the C code, which preserves them: every instruction on this path is
 * emulated at ~0.75 us, so the frame holds only what C may clobber (9
 * registers, not 15). No SSE state is saved: the kernel never touches it
 * (check-insns.sh), so user-mode SSE registers survive a trap.
 *
 * Vector 3 (int3 from CPL3, the system-call gate) has its own short path,
 * syscall_entry: no frame, a direct call through syscall_table with the
 * arguments already in place (RDI, RSI, RDX; R10 moved to RCX; R8) and
 * the result left in RAX. The system-call ABI (abi.h) lets it clobber the
 * caller-saved registers, as `syscall` does on Linux. A round trip costs
 * ~20 emulated instructions instead of ~60.
 *
 * Vectors 32-255 (device, IPI, timer) have their own path, irq_entry: no
 * exception checks and no generic dispatch, the handler is called straight
 * from irq_handlers[v] / irq_ctx[v] (trap.c fills every slot, with
 * irq_unhandled where nothing is registered, so there is no NULL test),
 * and irq_exit_hook is only called when set. From kernel mode it is 35
 * emulated instructions around the handler (the generic path was 47).
 *
 * An interrupt that wakes irq_idle_halt (`sti; hlt; cli; ret`, a function
 * the C code calls to idle) takes a shorter one still: the interrupted
 * code is inside a call, so the caller-saved registers hold nothing the
 * C ABI lets it keep, and it runs at CPL0 on the kernel GS. irq_entry
 * recognises the saved RIP (irq_idle_resume, the `cli` after `hlt`: where
 * hlt resumes, and where a second pending interrupt lands after the first
 * iretq) and only reserves the trap_frame's GPR slots without filling
 * them: 14 instructions around the handler. The handler still gets a
 * complete frame for the fields that mean something at an idle wake-up
 * (vector, error 0, RIP, CS, RFLAGS, RSP, SS); the GPR fields then hold
 * stale stack contents.
 */
#include "abi.h"
#include "isr.h"

	.section .text.isr, "ax", @progbits
	.code64
	.globl isr_stubs
	.balign ISR_STUB_SIZE
isr_stubs:
	.set vec, 0
	.rept 256
	.balign ISR_STUB_SIZE
	.if vec == VEC_SYSCALL
	jmp	syscall_entry
	.elseif (vec == 8) || (vec == 10) || (vec == 11) || (vec == 12) || (vec == 13) || (vec == 14) || (vec == 17) || (vec == 21) || (vec == 29) || (vec == 30)
	.else
	pushq	$0
	.endif
	pushq	$vec
	.if vec < 32
	jmp	isr_common
	.else
	jmp	irq_entry
	.endif
	.set vec, vec + 1
	.endr
	.balign ISR_STUB_SIZE
	.globl isr_stubs_end
isr_stubs_end:

/* Vectors 32-255. The frame is the same struct trap_frame as isr_common's. */
irq_entry:
	cmpq	$irq_idle_resume, 16(%rsp)	/* saved RIP: woke the idle halt? */
	je	irq_idle_entry
	testb	$3, 24(%rsp)		/* saved CS: from user mode? */
	jnz	irq_from_user
irq_save:
	push	%rax
	push	%rcx
	push	%rdx
	push	%rsi
	push	%rdi
	push	%r8
	push	%r9
	push	%r10
	push	%r11
	mov	72(%rsp), %eax		/* vector */
	mov	%rsp, %rdi
	mov	irq_ctx(, %rax, 8), %rsi
	call	*irq_handlers(, %rax, 8)
	cmpq	$0, irq_exit_hook(%rip)
	jne	irq_hook
irq_restore:
	pop	%r11
	pop	%r10
	pop	%r9
	pop	%r8
	pop	%rdi
	pop	%rsi
	pop	%rdx
	pop	%rcx
	pop	%rax
	testb	$3, 24(%rsp)
	jnz	irq_to_user
	add	$16, %rsp		/* vector and error code */
	iretq
irq_from_user:
	swapgs
	cld				/* the kernel itself never sets DF */
	jmp	irq_save
irq_to_user:
	swapgs
	add	$16, %rsp
	iretq
irq_hook:
	mov	irq_exit_hook(%rip), %rax
	call	*%rax
	jmp	irq_restore

/* Woke irq_idle_halt: CPL0, kernel GS, caller-saved registers dead. */
irq_idle_entry:
	sub	$72, %rsp		/* the GPR slots of struct trap_frame */
	mov	72(%rsp), %eax
	mov	%rsp, %rdi
	mov	irq_ctx(, %rax, 8), %rsi
	call	*irq_handlers(, %rax, 8)
	cmpq	$0, irq_exit_hook(%rip)
	jne	irq_idle_hook
irq_idle_exit:
	add	$88, %rsp		/* GPR slots, vector, error code */
	iretq
irq_idle_hook:
	mov	irq_exit_hook(%rip), %rax
	call	*%rax
	jmp	irq_idle_exit

/* Exceptions (0-31). */
isr_common:
	testb	$3, 24(%rsp)		/* saved CS: from user mode? */
	jz	1f
	swapgs
1:	push	%rax
	push	%rcx
	push	%rdx
	push	%rsi
	push	%rdi
	push	%r8
	push	%r9
	push	%r10
	push	%r11
	cld
	mov	%rsp, %rdi
	call	trap_dispatch
	pop	%r11
	pop	%r10
	pop	%r9
	pop	%r8
	pop	%rdi
	pop	%rsi
	pop	%rdx
	pop	%rcx
	pop	%rax
	testb	$3, 24(%rsp)
	jz	2f
	swapgs
2:	add	$16, %rsp		/* vector and error code */
	iretq

/* int3: from CPL3 a system call; at CPL0 (never legitimate) a #BP. */
syscall_entry:
	testb	$3, 8(%rsp)		/* saved CS */
	jz	3f
	swapgs
	sub	$8, %rsp		/* 5-word CPU frame: realign for C */
	cld
	incq	syscall_count
	cmp	$SYS_COUNT, %rax
	jae	2f
	mov	%r10, %rcx
	call	*syscall_table(, %rax, 8)
1:	add	$8, %rsp
	swapgs
	iretq
2:	mov	$-SYS_ENOSYS, %rax
	jmp	1b
3:	pushq	$0
	pushq	$VEC_SYSCALL
	jmp	isr_common

/*
 * void irq_idle_halt(void): interrupts on, halt until an interrupt has been
 * handled, interrupts off again. Called with interrupts off, so nothing
 * can slip in between the caller's last check and the hlt (the sti shadow
 * covers it). irq_idle_resume must stay the instruction after hlt.
 */
	.text
	.globl irq_idle_halt
irq_idle_halt:
	sti
	hlt
irq_idle_resume:
	cli
	ret

	.section .note.GNU-stack, "", @progbits
