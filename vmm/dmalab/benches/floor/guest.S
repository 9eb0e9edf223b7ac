/*
 * The floor guest: the least a guest can do for one doorbell -> MSI -> ISR
 * round trip. Assembled by gcc when the benchmark runs (floor/image.rs),
 * loaded at CODE_BASE, entered in 64-bit long mode at CPL0 by the host
 * (floor/vm.rs), which also built the GDT, page tables and IDT.
 *
 * First, unmeasured warm-up rounds (as irq-bench's eight). Then per
 * iteration, as the dmalab irq-bench scenario times it with the TSC:
 *   t0 = rdtsc; ring the doorbell (one MMIO write = one exit; the host
 *   calls KVM_SIGNAL_MSI on the vCPU thread); wait in cli/sti;hlt until the
 *   ISR has counted the interrupt; t1 = rdtsc; samples[i] = t1 - t0.
 * Then the same number of self-IPI rounds (an ICR write to the in-kernel
 * local APIC instead of the doorbell; no exit, no host thread): the bare
 * guest's own share of a round trip, as irq-bench's ipi_ns_p50 is the
 * dmalab guest's; ipi_samples[i] = t1 - t0.
 *
 * Fixed offsets (the host's IDT points at them; `.org` fails the assembly
 * if the code grows past one):
 *   0x000 entry   0x200 ISR of vector 0x40   0x240 spurious (vector 0xFF)
 *   0x400 + 16 * v: exception stub of vector v (0..31)
 *
 * Mailbox at 0x9000 (host <-> guest, u64 each): +0x00 iterations,
 * +0x08 interrupts counted by the ISR, +0x10 TSC at start, +0x18 TSC at
 * end, +0x20 IDTR image (limit u16, base u64), +0x30 samples address,
 * +0x38 warm-up rounds (at least 1), +0x40 self-IPI samples address.
 * Ports: 0xE0 done (value = interrupts counted), 0xE1 exception (vector).
 * Doorbell: 0xC000_0000 (unbacked: every write exits to the host).
 */
	.code64
	.text
	.globl	floor_start
floor_start:
	lidt	0x9020
	/* local APIC: software enable, spurious vector 0xFF */
	mov	$0xFEE000F0, %edi
	movl	(%rdi), %eax
	or	$0x1FF, %eax
	movl	%eax, (%rdi)

	mov	0x9000, %rbx		/* iterations left */
	mov	0x9030, %rdi		/* next sample slot */
	mov	$0xC0000000, %esi	/* doorbell */
	xor	%r12d, %r12d		/* doorbells rung */
	mov	0x9038, %rcx		/* warm-up rounds */
	sti
0:
	inc	%r12
	movl	%r12d, (%rsi)
4:
	cli
	cmp	%r12, 0x9008
	jae	5f
	sti
	hlt
	jmp	4b
5:
	sti
	dec	%rcx
	jnz	0b

	rdtsc
	shl	$32, %rdx
	or	%rdx, %rax
	mov	%rax, 0x9010
1:
	rdtsc
	shl	$32, %rdx
	or	%rdx, %rax
	mov	%rax, %r8		/* t0 */
	inc	%r12
	movl	%r12d, (%rsi)		/* doorbell: exit, host signals the MSI */
2:
	cli
	cmp	%r12, 0x9008
	jae	3f
	sti				/* the sti shadow covers hlt: no lost wake-up */
	hlt
	jmp	2b
3:
	sti
	rdtsc
	shl	$32, %rdx
	or	%rdx, %rax
	sub	%r8, %rax
	mov	%rax, (%rdi)		/* samples[i] = t1 - t0 */
	add	$8, %rdi
	dec	%rbx
	jnz	1b

	rdtsc
	shl	$32, %rdx
	or	%rdx, %rax
	mov	%rax, 0x9018

	mov	0x9000, %rbx		/* self-IPI rounds */
	mov	0x9040, %rdi
	mov	$0xFEE00300, %esi	/* ICR low */
6:
	rdtsc
	shl	$32, %rdx
	or	%rdx, %rax
	mov	%rax, %r8
	inc	%r12
	movl	$0x40040, (%rsi)	/* shorthand self, fixed, vector 0x40 */
7:
	cli
	cmp	%r12, 0x9008
	jae	8f
	sti
	hlt
	jmp	7b
8:
	sti
	rdtsc
	shl	$32, %rdx
	or	%rdx, %rax
	sub	%r8, %rax
	mov	%rax, (%rdi)
	add	$8, %rdi
	dec	%rbx
	jnz	6b
	mov	0x9008, %rax
	out	%eax, $0xE0
	jmp	.

	/* vector 0x40: count, EOI (xAPIC MMIO), return */
	.org	0x200
	push	%rax
	incq	0x9008
	mov	$0xFEE000B0, %eax
	movl	$0, (%rax)
	pop	%rax
	iretq

	/* vector 0xFF: spurious, no EOI */
	.org	0x240
	iretq

	/* exceptions: report the vector, stop */
	.org	0x400
	.set	vec, 0
	.rept	32
	.balign	16
	mov	$vec, %eax
	out	%eax, $0xE1
	jmp	.
	.set	vec, vec + 1
	.endr
