/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* Every line here must be rejected by check-insns.sh (test-check-insns.sh
 * counts them: one instruction per line between the markers). */
	.text
	.code64
bad_begin:
	int3
	int	$0x80
	int1
	rdtscp
	popcnt	%rax, %rbx
	crc32	%eax, %ebx
	lzcnt	%rax, %rbx
	andn	%rax, %rbx, %rcx
	bextr	%rax, %rbx, %rcx
	blsi	%rax, %rbx
	blsmsk	%rax, %rbx
	blsr	%rax, %rbx
	bzhi	%rax, %rbx, %rcx
	pdep	%rax, %rbx, %rcx
	pext	%rax, %rbx, %rcx
	mulx	%rax, %rbx, %rcx
	rorx	$3, %rax, %rbx
	sarx	%rax, %rbx, %rcx
	shlx	%rax, %rbx, %rcx
	shrx	%rax, %rbx, %rcx
	movbe	(%rax), %rbx
	cmpxchg16b (%rax)
	xgetbv
	xsetbv
	xsave	(%rax)
	xrstor	(%rax)
	xsaveopt (%rax)
	fxsave	(%rax)
	fxrstor	(%rax)
	ldmxcsr	(%rax)
	stmxcsr	(%rax)
	movnti	%rax, (%rbx)
	emms
	pxor	%xmm0, %xmm1
	movq	%xmm0, %rax
	movdqa	(%rax), %xmm2
	addps	%xmm1, %xmm2
	paddq	%mm0, %mm1
	vzeroupper
	vpxor	%ymm0, %ymm1, %ymm2
	fld1
	fstp	%st(1)
	fninit
	fwait
	.byte	0x06	/* push %es: invalid in 64-bit mode, objdump says (bad) */
bad_end:

	.section .note.GNU-stack, "", @progbits
