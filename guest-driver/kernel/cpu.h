/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Per-CPU state, reached through GS (GS base = &cpus[i], first field
 * points to itself), the GDT and the per-CPU TSS.
 */
#ifndef DMALAB_CPU_H
#define DMALAB_CPU_H

#include <stdint.h>

#include "isr.h"

/* The last exception recovered through the fixup table (trap.c). */
struct trap_record {
	uint64_t vector;
	uint64_t error;
	uint64_t rip;
	uint64_t cr2;
	uint64_t count;
};

/* Where user_enter saved the kernel context (usermode.S relies on the
 * offsets of the first two fields). */
struct user_context {
	uint64_t kernel_rsp;
	void *rsp0_slot; /* &tss->rsp[0]: unaligned (packed TSS), x86 does not mind */
};

struct tss {
	uint32_t reserved0;
	uint64_t rsp[3];
	uint64_t reserved1;
	uint64_t ist[7];
	uint64_t reserved2;
	uint16_t reserved3;
	uint16_t iomap_base;
} __attribute__((packed));

struct cpu {
	struct cpu *self; /* %gs:0 */
	uint32_t index;
	uint32_t apic_id; /* its local APIC's ID (lapic_enable) */
	/* %gs:16: its WDM record (wdm/internal.h), whose first byte is the
	 * IRQL: wdm/wdm.h reads both inline. */
	void *wdm;
	struct tss *tss;
	struct user_context *user; /* running user program, or NULL */
	struct trap_record last_trap;
};

extern struct cpu cpus[MAX_CPUS];

static inline struct cpu *this_cpu(void)
{
	struct cpu *c;

	__asm__ volatile("mov %%gs:0, %0" : "=r"(c));
	return c;
}

/* Load this CPU's TSS and GS base; enable SSE for user mode. */
void cpu_init(unsigned int index);

#endif
