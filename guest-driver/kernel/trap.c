// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/*
 * trap_dispatch: where every interrupt and exception lands (isr.S).
 *
 * - #BP (int3) from CPL3 is the system-call gate; isr.S sends it straight
 *   to syscall_table and only a CPL0 int3 (a bug) arrives here.
 * - Exceptions (0-31): a CPL0 fault whose RIP is in the fixup table
 *   resumes at its fixup and is recorded; anything else prints the
 *   EXCEPTION line of docs/boot-protocol.md and exits with status 3.
 *   A user-mode (CPL3) fault is reported the same way for now.
 * - 32-255: the handler registered with irq_register (or irq_alloc, which
 *   hands out the device range for MSI/MSI-X), else irq_unhandled: counted
 *   as unexpected (and EOI'd, except the spurious vector). isr.S calls
 *   these straight from irq_handlers/irq_ctx (its irq_entry path), then
 *   irq_exit_hook if set; trap_dispatch only sees them if called by hand.
 *   Every slot always holds a handler (irq_unhandled when free), so the
 *   entry path needs no NULL test: two arrays, not an array of pairs, so
 *   it indexes both by vector * 8 without a shift.
 */
#include "cpu.h"
#include "isr.h"
#include "kernel.h"
#include "lapic.h"
#include "platform.h"
#include "trap.h"

struct ex_entry {
	uint64_t from;
	uint64_t to;
};

extern const struct ex_entry __ex_table_start[], __ex_table_end[];

static void irq_unhandled(struct trap_frame *f, void *ctx);

/* Read by isr.S (irq_entry). */
irq_handler_t irq_handlers[256] = { [0 ... 255] = irq_unhandled };
void *irq_ctx[256];
uint64_t irq_unexpected_count;
/* Called after every handled interrupt (32-255) when set, interrupts
 * off: the WDM layer's timer expiry and DPC drain (wdm/irql.c). */
void (*irq_exit_hook)(void);

static const char mnemonics[32][5] = {
	"#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM",
	"#DF", "#CSO", "#TS", "#NP", "#SS", "#GP", "#PF", "#R15",
	"#MF", "#AC", "#MC", "#XM", "#VE", "#CP", "#R22", "#R23",
	"#R24", "#R25", "#R26", "#R27", "#HV", "#VC", "#SX", "#R31",
};

const char *exception_mnemonic(unsigned int vector)
{
	return vector < 32 ? mnemonics[vector] : "#INT";
}

static void irq_unhandled(struct trap_frame *f, void *ctx)
{
	(void)ctx;
	irq_unexpected_count++;
	if (f->vector != VEC_SPURIOUS)
		lapic_eoi();
}

int irq_register(unsigned int vector, irq_handler_t handler, void *ctx)
{
	if (vector < 32 || vector > 255 || irq_handlers[vector] != irq_unhandled)
		return -1;
	if (!handler) /* as before: accepted, the vector stays free */
		return 0;
	irq_ctx[vector] = ctx;
	__asm__ volatile("" ::: "memory"); /* ctx before the handler */
	irq_handlers[vector] = handler;
	return 0;
}

int irq_alloc(irq_handler_t handler, void *ctx)
{
	unsigned int v;

	for (v = VEC_DEVICE_FIRST; v <= VEC_DEVICE_LAST; v++)
		if (!irq_register(v, handler, ctx))
			return (int)v;
	return -1;
}

static bool fixup(struct trap_frame *f, uint64_t cr2)
{
	const struct ex_entry *e;
	struct trap_record *r;

	for (e = __ex_table_start; e < __ex_table_end; e++) {
		if (e->from != f->rip)
			continue;
		r = &this_cpu()->last_trap;
		r->vector = f->vector;
		r->error = f->error;
		r->rip = f->rip;
		r->cr2 = cr2;
		r->count++;
		f->rip = e->to;
		return true;
	}
	return false;
}

static void __noreturn exception_fatal(struct trap_frame *f, uint64_t cr2)
{
	static uint32_t reporting;

	/* A fault while reporting one (or two CPUs at once): exit quietly. */
	if (__atomic_exchange_n(&reporting, 1, __ATOMIC_SEQ_CST))
		kernel_exit(DMALAB_EXIT_EXCEPTION);
	kprintf("EXCEPTION %s vector=%u error=0x%lx rip=0x%lx cr2=0x%lx cpl=%u\n",
		exception_mnemonic((unsigned int)f->vector),
		(unsigned int)f->vector, f->error, f->rip, cr2,
		(unsigned int)(f->cs & 3));
	kernel_exit(DMALAB_EXIT_EXCEPTION);
}

void trap_dispatch(struct trap_frame *f)
{
	uint64_t v = f->vector;

	if (v < 32) {
		uint64_t cr2 = read_cr2();

		if ((f->cs & 3) == 0 && fixup(f, cr2))
			return;
		exception_fatal(f, cr2);
	}
	irq_handlers[v & 0xff](f, irq_ctx[v & 0xff]);
	if (irq_exit_hook)
		irq_exit_hook();
}
