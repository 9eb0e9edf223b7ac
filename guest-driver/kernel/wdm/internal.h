/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * What the files of the WDM layer share and drivers do not see: per-CPU
 * state (IRQL, DPC queue, the driver routine running), the counters of
 * the DMALAB-RESULT line, the verifier's entry points.
 */
#ifndef DMALAB_WDM_INTERNAL_H
#define DMALAB_WDM_INTERNAL_H

#include "cpu.h"
#include "kernel.h"
#include "lapic.h"
#include "platform.h"
#include "steal.h"
#include "wdm/wdm.h"

struct wdm_cpu {
	KIRQL irql;
	uint32_t locks_held; /* spin locks this CPU holds */
	LIST_ENTRY dpcs; /* this CPU's DPC queue, under dpc_lock */
	/* Taken with interrupts off by whoever changes the queue: this CPU,
	 * or another one queueing a DPC targeted here. */
	volatile uint32_t dpc_lock;
	PKDPC volatile dpc_running; /* for KeFlushQueuedDpcs */
	uint64_t isrs_run, dpcs_run; /* on this CPU (the verifier's summary) */
	const char *routine; /* the driver routine running, for reports */
};

extern struct wdm_cpu wdm_cpus[MAX_CPUS];

/* What wdm.h's inline readers assume. */
_Static_assert(offsetof(struct cpu, index) == WDM_GS_CPU_INDEX, "cpu index");
_Static_assert(offsetof(struct cpu, wdm) == WDM_GS_WDM_RECORD, "cpu wdm");
_Static_assert(offsetof(struct wdm_cpu, irql) == 0, "irql first");

/* This CPU's index. Not this_cpu(), whose %gs load is a volatile asm
 * that gcc repeats at every use: the GS base of a running CPU never
 * changes (no migration; kernel code never runs on the user GS), so here
 * gcc may merge the loads within a function. Every one of them is an
 * emulated instruction (~0.4 us). */
static inline unsigned int wdm_cpu_index(void)
{
	const struct cpu *self;

	__asm__("mov %%gs:0, %0" : "=r"(self));
	return self->index;
}

static inline struct wdm_cpu *wdm_cpu(void)
{
	return &wdm_cpus[wdm_cpu_index()];
}

/* Enter a driver routine (for reports); returns the previous name. */
static inline const char *wdm_enter(struct wdm_cpu *c, const char *name)
{
	const char *prev = c->routine;

	c->routine = name;
	return prev;
}

static inline uint64_t wdm_irq_save(void)
{
	uint64_t flags = read_rflags();

	irq_disable();
	return flags;
}

static inline void wdm_irq_restore(uint64_t flags)
{
	if (flags & RFLAGS_IF)
		irq_enable();
}

/*
 * Zeroing and copying by quadwords: a string instruction costs about as
 * much per iteration as an instruction here (docs/platform.md), so
 * string.c's byte-wise rep stosb / rep movsb cost 8 times more on IRP-
 * sized objects. n is in bytes; the tail is done bytewise.
 */
static inline void wdm_zero(void *p, size_t n)
{
	size_t q = n >> 3, r = n & 7;

	__asm__ volatile("rep stosq" : "+D"(p), "+c"(q) : "a"(0ul) : "memory");
	__asm__ volatile("rep stosb" : "+D"(p), "+c"(r) : "a"(0ul) : "memory");
}

static inline void wdm_copy(void *dst, const void *src, size_t n)
{
	size_t q = n >> 3, r = n & 7;

	__asm__ volatile("rep movsq"
			 : "+D"(dst), "+S"(src), "+c"(q)
			 :
			 : "memory");
	__asm__ volatile("rep movsb"
			 : "+D"(dst), "+S"(src), "+c"(r)
			 :
			 : "memory");
}

struct wdm_stats {
	uint64_t irps_allocated;
	uint64_t irps_started; /* DriverStartIo calls */
	uint64_t irps_completed;
	uint64_t irps_cancelled; /* completed with STATUS_CANCELLED */
	uint64_t irps_outstanding;
	uint64_t irps_max_outstanding;
	uint64_t dpcs_run;
	uint64_t dpcs_requeued; /* KeInsertQueueDpc that returned FALSE */
	uint64_t isrs;
	uint64_t timers_fired;
	uint64_t completion_routines;
	uint64_t max_isr_cycles;
	uint64_t max_dpc_cycles;
};

extern struct wdm_stats wdm_stats;

/* irql.c: set up per-CPU state and the trap.c exit hook. */
void wdm_irql_init(void);
/* trap.c calls this after every handled interrupt (vectors 32-255),
 * interrupts off: expires timers, drains DPCs below DISPATCH_LEVEL. */
void wdm_irq_exit(void);
/* trap.c's hook (NULL until wdm_init). */
extern void (*irq_exit_hook)(void);
/* The spin-lock primitive (no IRQL change): misuse is reported, a lock
 * this CPU already holds is nested instead of deadlocking. fn names the
 * caller in reports. */
void wdm_lock_acquire(struct wdm_cpu *c, PKSPIN_LOCK l, const char *fn);
void wdm_lock_release(struct wdm_cpu *c, PKSPIN_LOCK l, const char *fn);

/* ke.c */
void wdm_timers_init(void);
/* Interrupts off: queue the DPCs of the timers due at this tick. */
/* Expires due timers; how many timer DPCs it queued. */
unsigned int wdm_timers_expire(void);
extern volatile uint64_t wdm_next_timer_tick;
uint64_t wdm_ticks_from_due(LARGE_INTEGER due);

/* verifier.c */
enum wdm_violation {
	WDM_V_IRQL, /* a routine called above its allowed IRQL */
	WDM_V_ISR_TIME, /* ISR longer than verifier.isr_us */
	WDM_V_DPC_TIME, /* DPC longer than verifier.dpc_us */
	WDM_V_IRP_DOUBLE, /* IRP completed twice */
	WDM_V_IRP_LEAK, /* IRP never completed by the end */
	WDM_V_IRP_AFTER, /* IRP touched after completion */
	WDM_V_SPINLOCK, /* spin-lock misuse */
	/* state shared with an ISR touched without the interrupt lock */
	WDM_V_INTERRUPT_LOCK,
	WDM_V_COUNT
};

extern const char *const wdm_violation_names[WDM_V_COUNT];
extern uint64_t wdm_violations[WDM_V_COUNT];

void wdm_verifier_init(void);
/* Prints `VERIFIER: <message> by <routine>` (the first few of each
 * kind) and counts it. */
void wdm_violation(enum wdm_violation kind, const char *fmt, ...)
	__printf(2, 3);
/* Reports "<fn> called at IRQL <irql> (max <max>)"; returns irql. */
KIRQL wdm_irql_violation(const char *fn, KIRQL irql, KIRQL max);

/* Violation if the current IRQL is above max. Returns the IRQL. Inline:
 * it runs on every I/O manager and Ke entry, and a call costs emulated
 * instructions (~0.4 us each here) of its own. */
static inline KIRQL wdm_check_irql(const char *fn, KIRQL max)
{
	KIRQL irql = wdm_cpu()->irql;

	if (__builtin_expect(irql > max, 0))
		wdm_irql_violation(fn, irql, max);
	return irql;
}
/* Thresholds in TSC cycles (scaled, docs/wdm.md). */
extern uint64_t wdm_isr_limit_cycles, wdm_dpc_limit_cycles;
/* verifier.timer_dpc_delay_us in TSC cycles (0: off): how long the DPC
 * queue waits, at DISPATCH_LEVEL with interrupts on, after a timer
 * expiry queued a DPC (verifier.c). */
extern uint64_t wdm_timer_dpc_delay_cycles;
/*
 * A routine timed over TSC cycles dt, during which the host stole
 * stolen_ns of the CPU's steal time (steal.h): the routine's own time is
 * dt minus the steal. The caller has seen dt above wdm_isr_check_cycles /
 * wdm_dpc_check_cycles (the lower of the limit and the longest own time
 * so far: one compare on the hot path); these update that maximum with
 * the own time and report it if it is over the limit. Out of line: the
 * ns -> TSC conversion and the report stay off the hot path.
 */
extern uint64_t wdm_isr_check_cycles, wdm_dpc_check_cycles;
void wdm_isr_timed(ULONG MessageId, uint64_t dt, uint64_t stolen_ns);

/* The dispatch trace hook (WdmSetTraceCallback), NULL when off. */
extern WDM_TRACE_CALLBACK *wdm_trace_callback;
extern PVOID wdm_trace_context;
static inline void wdm_trace(WDM_TRACE_ROUTINE r, BOOLEAN end, PVOID obj,
			     ULONG id, uint64_t dt, uint64_t stolen_ns)
{
	uint64_t us, stolen_us = stolen_ns / 1000;

	if (__builtin_expect(!wdm_trace_callback, 1))
		return;
	us = end ? tsc_to_us(dt) : 0;
	us = us > stolen_us ? us - stolen_us : 0;
	wdm_trace_callback(wdm_trace_context, r, end, obj, id,
			   (ULONG)(us < 0xffffffff ? us : 0xffffffff));
}
void wdm_dpc_timed(uint64_t dt, uint64_t stolen_ns);
uint64_t wdm_violation_total(void);
bool wdm_verifier_strict(void);
/* Prints the verifier's summary lines. */
void wdm_verifier_summary(void);

/* iomgr.c */
void wdm_iomgr_init(void);
PDEVICE_OBJECT wdm_find_device(const char *name, size_t len);
/* End of a scenario: IRPs never completed are violations. */
void wdm_iomgr_check_leaks(void);
/* Is the IRP still live (not completed)? Reports it if not. */
bool wdm_irp_live(PIRP Irp, const char *fn);
/* IRP states (Priv.State). */
enum { WDM_IRP_FREE, WDM_IRP_ACTIVE, WDM_IRP_COMPLETED };

/* usercall.c: the user-visible request records. */
struct wdm_request {
	KEVENT Done;
	IO_STATUS_BLOCK Iosb;
	uint64_t UserOverlapped; /* user address, 0 if synchronous */
	PIRP Irp; /* while in flight */
	PFILE_OBJECT File;
	bool InUse;
	bool Orphan; /* its waiter gave up: freed at completion */
};
void wdm_request_complete(PIRP Irp);
void wdm_usercall_init(void);

/* The whole layer: call once before any driver is loaded. */
void wdm_init(void);

#endif
