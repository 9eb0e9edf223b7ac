/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Trap frames, the interrupt vector table drivers register into, and the
 * exception fixup table.
 */
#ifndef DMALAB_TRAP_H
#define DMALAB_TRAP_H

#include <stdint.h>

/* Layout pushed by isr.S: the caller-saved GPRs (r11 lowest), vector,
 * error code, CPU frame. Callee-saved registers are not in the frame:
 * the C code below it preserves them. For an interrupt that woke
 * irq_idle_halt the GPR fields are reserved but not filled (the
 * interrupted code is inside a call: they hold nothing to keep). */
struct trap_frame {
	uint64_t r11, r10, r9, r8, rdi, rsi, rdx, rcx, rax;
	uint64_t vector, error;
	uint64_t rip, cs, rflags, rsp, ss;
};

typedef void (*irq_handler_t)(struct trap_frame *f, void *ctx);

/*
 * Register handler for vector (32-255; exceptions are not registrable).
 * The handler runs with interrupts off and must EOI the local APIC itself
 * if the vector came from it. Returns 0, or -1 if the vector is taken or
 * out of range.
 */
int irq_register(unsigned int vector, irq_handler_t handler, void *ctx);

/*
 * Register handler on a free vector of the device range (VEC_DEVICE_FIRST
 * to VEC_DEVICE_LAST), for MSI/MSI-X. Returns the vector, or -1 if none
 * is free.
 */
int irq_alloc(irq_handler_t handler, void *ctx);

/* Interrupts that arrived on a vector with no handler. */
extern uint64_t irq_unexpected_count;

/*
 * Idle until an interrupt: call with interrupts off; enables them, halts,
 * and returns with them off again once an interrupt (any) has been
 * handled. The cheap way to wait for an interrupt: one that wakes it
 * skips saving the caller-saved registers (isr.S), ~20 emulated
 * instructions fewer than one that lands in inline `sti; hlt`.
 */
void irq_idle_halt(void);

void trap_dispatch(struct trap_frame *f);

/*
 * Exception fixups: a CPL0 exception at `from` resumes at `to` instead of
 * being fatal, and is recorded in this_cpu()->last_trap. For deliberate
 * probes (the self-test) and later for safe user-memory access.
 */
#define EX_TABLE(from, to)                                     \
	".pushsection .ex_table, \"a\"\n\t.balign 8\n\t.quad " \
	#from ", " #to "\n\t.popsection\n\t"

/* "#DE", "NMI", ... for vector < 32. */
const char *exception_mnemonic(unsigned int vector);

#endif
