/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* check-insns.sh must accept all of this: what the kernel uses at CPL0
 * (probe-verified), plus a .user.text section, which is exempt. */
	.text
	.code64
	ud2
	lock cmpxchg %rbx, (%rax)
	lock xadd %rbx, (%rax)
	rep movsb
	rep stosb
	repne scasb
	repe cmpsb
	rep outsb
	tzcnt	%rax, %rbx
	bsf	%rax, %rbx
	rdtsc
	swapgs
	iretq
	sti
	hlt
	lfence
	mfence
	pause
	div	%rcx
	fs movq (%rax), %rbx
	lea	(%rax,%rbx,8), %rcx

	.section .user.text, "ax", @progbits
	popcnt	%rax, %rbx
	pxor	%xmm0, %xmm1
	int3
	vzeroupper

	.section .note.GNU-stack, "", @progbits
