// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/*
 * The GDT, the per-CPU TSS and per-CPU data.
 *
 * The GDT is static data: null, kernel code 0x08 and data 0x10 (the same
 * descriptors as the VMM's entry GDT, so entry.S needs no segment
 * reload), user data 0x1b and user code 0x23 (DPL 3), then one 16-byte
 * TSS descriptor per CPU (a loaded TSS is marked busy, so CPUs cannot
 * share one). cpu_init fills this CPU's TSS descriptor (its base does not
 * fit an assembler constant), loads TR, and points GS at the per-CPU
 * block. The TSS gives RSP0 (set by user_enter to the current kernel
 * stack) and IST1, a small per-CPU stack for #DF.
 *
 * CR4.OSFXSR/OSXMMEXCPT are set so user-mode (CPL3, native) code may use
 * SSE; the kernel itself never does (check-insns.sh), so no SSE state is
 * ever saved or restored.
 */
#include "cpu.h"
#include "kernel.h"
#include "platform.h"

#define GDT_TSS_FIRST 5
#define DF_STACK_SIZE 4096

struct cpu cpus[MAX_CPUS];
static struct tss tss[MAX_CPUS];
static uint8_t df_stacks[MAX_CPUS][DF_STACK_SIZE] __attribute__((aligned(16)));
uint8_t kernel_stacks[MAX_CPUS][1u << KSTACK_SHIFT] __attribute__((aligned(16)));

static uint64_t gdt[GDT_TSS_FIRST + 2 * MAX_CPUS] __attribute__((aligned(16))) = {
	0,
	0x00af9a000000ffffull, /* 0x08 kernel code, 64-bit */
	0x00cf92000000ffffull, /* 0x10 kernel data */
	0x00cff2000000ffffull, /* 0x18 user data, DPL 3 */
	0x00affa000000ffffull, /* 0x20 user code, 64-bit, DPL 3 */
};

struct gdt_pointer {
	uint16_t limit;
	uint64_t base;
} __attribute__((packed));

const struct gdt_pointer gdt_pointer = { sizeof(gdt) - 1, (uint64_t)gdt };

void cpu_init(unsigned int index)
{
	struct cpu *c = &cpus[index];
	struct tss *t = &tss[index];
	uint64_t base = (uint64_t)t, limit = sizeof(*t) - 1;
	uint16_t sel = (uint16_t)(TSS_SEL0 + 16 * index);

	c->self = c;
	c->index = index;
	c->tss = t;
	t->iomap_base = sizeof(*t); /* no I/O bitmap: user port I/O faults */
	t->ist[0] = (uint64_t)&df_stacks[index][DF_STACK_SIZE];
	t->rsp[0] = (uint64_t)&kernel_stacks[index][1u << KSTACK_SHIFT];
	gdt[GDT_TSS_FIRST + 2 * index] = (limit & 0xffff) |
		((base & 0xffffff) << 16) | (0x89ull << 40) |
		(((limit >> 16) & 0xf) << 48) | (((base >> 24) & 0xff) << 56);
	gdt[GDT_TSS_FIRST + 2 * index + 1] = base >> 32;
	__asm__ volatile("ltr %0" : : "r"(sel) : "memory");
	wrmsr(MSR_GS_BASE, (uint64_t)c);
	write_cr4(read_cr4() | CR4_OSFXSR | CR4_OSXMMEXCPT);
}
