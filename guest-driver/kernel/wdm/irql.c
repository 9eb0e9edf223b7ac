// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/*
 * IRQL, the DPC queue and spin locks.
 *
 * The IRQL is a per-CPU number; the hardware side of it is the interrupt
 * flag: above DISPATCH_LEVEL IF=0 (so a device ISR, and anything raised
 * to a device IRQL, runs with every maskable interrupt masked), at or
 * below DISPATCH_LEVEL IF=1. With one device there is no priority
 * between device IRQLs to model; the numbers still follow Windows x64
 * (IRQL = vector >> 4) so KeGetCurrentIrql inside an ISR is its DIRQL.
 * The LAPIC TPR is not used: every TPR write would be one more emulated
 * instruction on every raise and lower.
 *
 * DPCs sit on the per-CPU queue (FIFO: KeInsertQueueDpc appends; no DPC
 * importance), the queuing CPU's or, for a DPC given a target with
 * KeSetTargetProcessorDpc, the target's. Each queue has a lock taken with
 * interrupts off (dpc_lock); queueing on another CPU sends it an IPI
 * (VEC_DPC_IPI) whose exit runs the DPC there, as Windows does for a DPC
 * of high importance, so a targeted DPC waits for no tick. Timers expire
 * on CPU 0 only (its tick), so their DPCs run there unless targeted.
 * They run at DISPATCH_LEVEL with interrupts on, when the
 * IRQL falls below DISPATCH_LEVEL: in KeLowerIrql / KeReleaseSpinLock,
 * in KeInsertQueueDpc itself when called below DISPATCH_LEVEL with
 * interrupts on, and when an interrupt that arrived below DISPATCH_LEVEL
 * exits
 * (trap.c calls irq_exit_hook after every handled interrupt; it is NULL
 * until wdm_init, so other scenarios pay two instructions). The drain
 * runs with the IRQL at DISPATCH_LEVEL, so an interrupt arriving during
 * it (IF is on) queues its DPC but does not start a nested drain: the
 * stack grows by at most one interrupt frame, the loop picks the DPC up.
 *
 * Spin locks are real locks (lock cmpxchg) holding owner CPU + 1, so the
 * verifier can name misuse instead of deadlocking: a recursive acquire
 * is reported and counted as a nesting level (0x100 per level), a
 * release by a non-owner or of a free lock is reported and ignored.
 */
#include "isr.h"
#include "smp.h"
#include "trap.h"
#include "wdm/internal.h"

struct wdm_cpu wdm_cpus[MAX_CPUS];
WDM_TRACE_CALLBACK *wdm_trace_callback;
PVOID wdm_trace_context;

void WdmSetTraceCallback(WDM_TRACE_CALLBACK *Callback, PVOID Context)
{
	wdm_trace_callback = NULL; /* never the new routine with the old context */
	wdm_trace_context = Context;
	wdm_trace_callback = Callback;
}

static void run_dpc(struct wdm_cpu *c, PKDPC d, PVOID a1, PVOID a2)
{
	const char *prev = wdm_enter(c, d->Name);
	uint32_t locks = c->locks_held;
	unsigned int cpu = wdm_cpu_index();
	uint64_t steal0, t0, stolen, dt;

	wdm_trace(WdmTraceDpc, FALSE, d, 0, 0, 0);
	steal0 = steal_ns_own(cpu);
	t0 = rdtsc();
	d->DeferredRoutine(d, d->DeferredContext, a1, a2);
	dt = rdtsc() - t0;
	stolen = steal_ns_own(cpu) - steal0; /* brackets the stamps: verifier.c */
	wdm_trace(WdmTraceDpc, TRUE, d, 0, dt, stolen);
	wdm_stats.dpcs_run++;
	c->dpcs_run++;
	if (__builtin_expect(dt > wdm_dpc_check_cycles, 0))
		wdm_dpc_timed(dt, stolen);
	if (c->irql != DISPATCH_LEVEL) {
		wdm_violation(WDM_V_IRQL, "DPC returned at IRQL %u, not DISPATCH_LEVEL",
			      c->irql);
		c->irql = DISPATCH_LEVEL;
		irq_enable();
	}
	if (c->locks_held != locks)
		wdm_violation(WDM_V_SPINLOCK, "DPC returned holding %u spin lock(s)",
			      c->locks_held - locks);
	c->routine = prev;
}

/* Interrupts off, IRQL below DISPATCH_LEVEL: run every queued DPC at
 * DISPATCH_LEVEL, then return to the old IRQL, interrupts off. */
static inline void queue_lock(struct wdm_cpu *c)
{
	while (__atomic_exchange_n(&c->dpc_lock, 1, __ATOMIC_ACQUIRE))
		cpu_relax();
}

static inline void queue_unlock(struct wdm_cpu *c)
{
	__atomic_store_n(&c->dpc_lock, 0, __ATOMIC_RELEASE);
}

static void dpc_drain(struct wdm_cpu *c, bool timer_dpcs)
{
	KIRQL old = c->irql;

	c->irql = DISPATCH_LEVEL;
	if (timer_dpcs && wdm_timer_dpc_delay_cycles) {
		/* verifier.timer_dpc_delay_us: interrupts taken meanwhile
		 * queue their DPCs behind the timer's. */
		uint64_t until = rdtsc() + wdm_timer_dpc_delay_cycles;

		irq_enable();
		while (rdtsc() < until)
			cpu_relax();
		irq_disable();
	}
	for (;;) {
		PKDPC d;
		PVOID a1, a2;

		queue_lock(c);
		if (IsListEmpty(&c->dpcs)) {
			queue_unlock(c);
			break;
		}
		/* dpc_running before the removal: KeFlushQueuedDpcs on
		 * another CPU reads the list, then dpc_running (x86 keeps
		 * stores in order), and must never see neither. */
		d = CONTAINING_RECORD(c->dpcs.Flink, KDPC, DpcListEntry);
		c->dpc_running = d;
		RemoveEntryList(&d->DpcListEntry);
		a1 = d->SystemArgument1;
		a2 = d->SystemArgument2;
		d->Inserted = FALSE;
		queue_unlock(c);
		irq_enable();
		run_dpc(c, d, a1, a2);
		irq_disable();
		c->dpc_running = NULL;
	}
	c->irql = old;
}

void wdm_irq_exit(void)
{
	struct wdm_cpu *c = wdm_cpu();

	unsigned int timer_dpcs = 0;

	if (lapic_ticks >= wdm_next_timer_tick && c == wdm_cpus)
		timer_dpcs = wdm_timers_expire();
	if (c->irql < DISPATCH_LEVEL && !IsListEmpty(&c->dpcs))
		dpc_drain(c, timer_dpcs > 0);
}

/* The IPI only interrupts: its exit (wdm_irq_exit) runs the queue. */
static void dpc_ipi(struct trap_frame *f, void *ctx)
{
	(void)f, (void)ctx;
	lapic_eoi();
}

void wdm_irql_init(void)
{
	unsigned int i;

	for (i = 0; i < MAX_CPUS; i++) {
		InitializeListHead(&wdm_cpus[i].dpcs);
		cpus[i].wdm = &wdm_cpus[i];
	}
	irq_register(VEC_DPC_IPI, dpc_ipi, NULL);
	irq_exit_hook = wdm_irq_exit;
}

void wdm_irql_entry_violation(const char *routine, KIRQL irql, KIRQL min,
			      KIRQL max)
{
	wdm_violation(WDM_V_IRQL, "%s entered at IRQL %u (annotated %u..%u)",
		      routine, irql, min, max);
}

KIRQL KeGetCurrentIrql(void)
{
	return wdm_cpu()->irql;
}

void KeRaiseIrql(KIRQL NewIrql, PKIRQL OldIrql)
{
	struct wdm_cpu *c = wdm_cpu();

	*OldIrql = c->irql;
	if (NewIrql < c->irql) {
		wdm_violation(WDM_V_IRQL, "KeRaiseIrql to %u below the current IRQL %u",
			      NewIrql, c->irql);
		return;
	}
	if (NewIrql > DISPATCH_LEVEL)
		irq_disable();
	c->irql = NewIrql;
}

KIRQL KeRaiseIrqlToDpcLevel(void)
{
	KIRQL old;

	KeRaiseIrql(DISPATCH_LEVEL, &old);
	return old;
}

/* KeLowerIrql's drain, entered by a tail call so that the common path
 * (nothing queued) keeps no stack frame. */
static __attribute__((noinline)) void drain_and_enable(struct wdm_cpu *c)
{
	dpc_drain(c, false);
	irq_enable();
}

void KeLowerIrql(KIRQL NewIrql)
{
	struct wdm_cpu *c = wdm_cpu();

	if (NewIrql > c->irql) {
		wdm_violation(WDM_V_IRQL, "KeLowerIrql to %u above the current IRQL %u",
			      NewIrql, c->irql);
		return;
	}
	irq_disable();
	c->irql = NewIrql;
	if (NewIrql < DISPATCH_LEVEL && !IsListEmpty(&c->dpcs)) {
		drain_and_enable(c);
		return;
	}
	if (NewIrql <= DISPATCH_LEVEL)
		irq_enable();
}

void wdm_initialize_dpc(PKDPC Dpc, PKDEFERRED_ROUTINE Routine, PVOID Context,
			const char *name)
{
	InitializeListHead(&Dpc->DpcListEntry);
	Dpc->DeferredRoutine = Routine;
	Dpc->DeferredContext = Context;
	Dpc->SystemArgument1 = Dpc->SystemArgument2 = NULL;
	Dpc->Inserted = FALSE;
	Dpc->Name = name;
}

BOOLEAN KeInsertQueueDpc(PKDPC Dpc, PVOID SystemArgument1,
			 PVOID SystemArgument2)
{
	uint64_t flags = wdm_irq_save();
	unsigned int me = wdm_cpu_index();
	unsigned int cpu = Dpc->TargetCpu ? Dpc->TargetCpu - 1u : me;
	struct wdm_cpu *c = &wdm_cpus[cpu];
	BOOLEAN queued = FALSE;

	queue_lock(c);
	if (Dpc->Inserted) {
		wdm_stats.dpcs_requeued++;
	} else {
		Dpc->Inserted = TRUE;
		Dpc->QueuedOn = (UCHAR)cpu;
		Dpc->SystemArgument1 = SystemArgument1;
		Dpc->SystemArgument2 = SystemArgument2;
		InsertTailList(&c->dpcs, &Dpc->DpcListEntry);
		queued = TRUE;
	}
	queue_unlock(c);
	/* Below DISPATCH_LEVEL in thread context the DPC runs at once, as
	 * Windows' DISPATCH software interrupt would make it. Not from an
	 * interrupt handler (IF off): the exit hook drains after it,
	 * outside timer-list walks. */
	if (queued && cpu != me)
		lapic_send_ipi(cpus[cpu].apic_id, VEC_DPC_IPI);
	else if (queued && c->irql < DISPATCH_LEVEL && (flags & RFLAGS_IF))
		dpc_drain(c, false);
	wdm_irq_restore(flags);
	return queued;
}

BOOLEAN KeRemoveQueueDpc(PKDPC Dpc)
{
	uint64_t flags = wdm_irq_save();
	struct wdm_cpu *c = &wdm_cpus[Dpc->QueuedOn];
	BOOLEAN was;

	queue_lock(c);
	was = Dpc->Inserted;
	if (was) {
		RemoveEntryList(&Dpc->DpcListEntry);
		Dpc->Inserted = FALSE;
	}
	queue_unlock(c);
	wdm_irq_restore(flags);
	return was;
}

ULONG KeGetCurrentProcessorNumber(void)
{
	return wdm_cpu_index();
}

void KeSetTargetProcessorDpc(PKDPC Dpc, CHAR Number)
{
	if (Number < 0 || (uint32_t)Number >= cpus_online) {
		kprintf("wdm: KeSetTargetProcessorDpc to CPU %d, %u online: the DPC stays on the queuing CPU\n",
			Number, cpus_online);
		return;
	}
	Dpc->TargetCpu = (UCHAR)(Number + 1);
}

void KeFlushQueuedDpcs(void)
{
	unsigned int i, me = wdm_cpu_index();
	uint64_t flags;

	wdm_check_irql("KeFlushQueuedDpcs", PASSIVE_LEVEL);
	flags = wdm_irq_save();
	if (!IsListEmpty(&wdm_cpus[me].dpcs))
		dpc_drain(&wdm_cpus[me], false);
	wdm_irq_restore(flags);
	for (i = 0; i < cpus_online; i++) {
		struct wdm_cpu *c = &wdm_cpus[i];

		if (i == me)
			continue;
		while (!IsListEmpty(&c->dpcs) || c->dpc_running)
			cpu_relax();
	}
}

void KeInitializeSpinLock(PKSPIN_LOCK SpinLock)
{
	*SpinLock = 0;
}

#define LOCK_OWNER_MASK 0xfful
#define LOCK_NEST 0x100ul

/*
 * Each lock operation has a fast path (the lock free on acquire, held
 * once by this CPU on release: one cmpxchg or store, the count) inlined
 * into the Ke* entry points, and the complete logic (spinning, the
 * recursion and ownership reports) out of line. The Ke* functions take
 * the CPU index once (wdm_cpu_index) and call nothing on their fast
 * paths, so they need no stack frame:
 * every instruction is emulated here (~0.4 us), and the IRP round trip
 * takes about ten lock operations.
 */
static __attribute__((noinline, cold)) void
lock_acquire_slow(struct wdm_cpu *c, PKSPIN_LOCK l, const char *fn,
		  ULONG_PTR me)
{
	ULONG_PTR expected = 0;

	while (!__atomic_compare_exchange_n(l, &expected, me, false,
					    __ATOMIC_ACQUIRE,
					    __ATOMIC_RELAXED)) {
		if ((expected & LOCK_OWNER_MASK) == me) {
			wdm_violation(WDM_V_SPINLOCK,
				      "%s: spin lock %p already held by this CPU (deadlock)",
				      fn, (void *)l);
			*l += LOCK_NEST;
			c->locks_held++;
			return;
		}
		expected = 0;
		cpu_relax();
	}
	c->locks_held++;
}

static __attribute__((noinline, cold)) void
lock_release_slow(struct wdm_cpu *c, PKSPIN_LOCK l, const char *fn,
		  ULONG_PTR me)
{
	ULONG_PTR v = *l;

	if ((v & LOCK_OWNER_MASK) != me) {
		wdm_violation(WDM_V_SPINLOCK, "%s: spin lock %p %s", fn,
			      (void *)l, v ? "held by another CPU" : "not held");
		return;
	}
	if (v & ~LOCK_OWNER_MASK)
		*l = v - LOCK_NEST;
	else
		__atomic_store_n(l, 0, __ATOMIC_RELEASE);
	c->locks_held--;
}

static inline void lock_acquire(unsigned int cpu, PKSPIN_LOCK l,
				const char *fn)
{
	ULONG_PTR expected = 0;

	if (__builtin_expect(__atomic_compare_exchange_n(l, &expected,
							 cpu + 1ul, false,
							 __ATOMIC_ACQUIRE,
							 __ATOMIC_RELAXED),
			     1))
		wdm_cpus[cpu].locks_held++;
	else
		lock_acquire_slow(&wdm_cpus[cpu], l, fn, cpu + 1ul);
}

static inline void lock_release(unsigned int cpu, PKSPIN_LOCK l,
				const char *fn)
{
	if (__builtin_expect(*l == cpu + 1ul, 1)) {
		__atomic_store_n(l, 0, __ATOMIC_RELEASE);
		wdm_cpus[cpu].locks_held--;
	} else {
		lock_release_slow(&wdm_cpus[cpu], l, fn, cpu + 1ul);
	}
}

void wdm_lock_acquire(struct wdm_cpu *c, PKSPIN_LOCK l, const char *fn)
{
	lock_acquire((unsigned int)(c - wdm_cpus), l, fn);
}

void wdm_lock_release(struct wdm_cpu *c, PKSPIN_LOCK l, const char *fn)
{
	lock_release((unsigned int)(c - wdm_cpus), l, fn);
}

/* The misuse paths, out of line and entered by a tail call, so the fast
 * paths below keep no stack frame. */
static __attribute__((noinline, cold)) void
acquire_above_dispatch(unsigned int cpu, PKSPIN_LOCK l, PKIRQL OldIrql,
		       KIRQL irql)
{
	wdm_irql_violation("KeAcquireSpinLock", irql, DISPATCH_LEVEL);
	*OldIrql = irql;
	lock_acquire(cpu, l, "KeAcquireSpinLock");
}

static __attribute__((noinline, cold)) void
acquire_below_dpc_level(unsigned int cpu, PKSPIN_LOCK l)
{
	wdm_violation(WDM_V_SPINLOCK,
		      "KeAcquireSpinLockAtDpcLevel at IRQL %u (below DISPATCH_LEVEL)",
		      wdm_cpus[cpu].irql);
	lock_acquire(cpu, l, "KeAcquireSpinLockAtDpcLevel");
}

static __attribute__((noinline, cold)) void
release_below_dpc_level(unsigned int cpu, PKSPIN_LOCK l)
{
	wdm_violation(WDM_V_SPINLOCK,
		      "KeReleaseSpinLockFromDpcLevel at IRQL %u (below DISPATCH_LEVEL)",
		      wdm_cpus[cpu].irql);
	lock_release(cpu, l, "KeReleaseSpinLockFromDpcLevel");
}

void KeAcquireSpinLock(PKSPIN_LOCK SpinLock, PKIRQL OldIrql)
{
	unsigned int cpu = wdm_cpu_index();
	struct wdm_cpu *c = &wdm_cpus[cpu];
	KIRQL irql = c->irql;

	if (__builtin_expect(irql > DISPATCH_LEVEL, 0)) {
		acquire_above_dispatch(cpu, SpinLock, OldIrql, irql);
		return;
	}
	*OldIrql = irql;
	if (irql < DISPATCH_LEVEL)
		c->irql = DISPATCH_LEVEL; /* interrupts stay on */
	lock_acquire(cpu, SpinLock, "KeAcquireSpinLock");
}

void KeReleaseSpinLock(PKSPIN_LOCK SpinLock, KIRQL NewIrql)
{
	lock_release(wdm_cpu_index(), SpinLock, "KeReleaseSpinLock");
	if (NewIrql > DISPATCH_LEVEL) {
		wdm_violation(WDM_V_SPINLOCK,
			      "KeReleaseSpinLock to IRQL %u above DISPATCH_LEVEL",
			      NewIrql);
		return;
	}
	KeLowerIrql(NewIrql);
}

void KeAcquireSpinLockAtDpcLevel(PKSPIN_LOCK SpinLock)
{
	unsigned int cpu = wdm_cpu_index();

	if (__builtin_expect(wdm_cpus[cpu].irql < DISPATCH_LEVEL, 0)) {
		acquire_below_dpc_level(cpu, SpinLock);
		return;
	}
	lock_acquire(cpu, SpinLock, "KeAcquireSpinLockAtDpcLevel");
}

void KeReleaseSpinLockFromDpcLevel(PKSPIN_LOCK SpinLock)
{
	unsigned int cpu = wdm_cpu_index();

	if (__builtin_expect(wdm_cpus[cpu].irql < DISPATCH_LEVEL, 0)) {
		release_below_dpc_level(cpu, SpinLock);
		return;
	}
	lock_release(cpu, SpinLock, "KeReleaseSpinLockFromDpcLevel");
}

/* Interrupt locks: raise to the interrupt's SynchronizeIrql (IF off). */
KIRQL KeAcquireInterruptSpinLock(PKINTERRUPT Interrupt)
{
	KIRQL old;

	KeRaiseIrql(Interrupt->SynchronizeIrql, &old);
	wdm_lock_acquire(wdm_cpu(), Interrupt->ActualLock,
		     "KeAcquireInterruptSpinLock");
	return old;
}

void KeReleaseInterruptSpinLock(PKINTERRUPT Interrupt, KIRQL OldIrql)
{
	wdm_lock_release(wdm_cpu(), Interrupt->ActualLock,
		     "KeReleaseInterruptSpinLock");
	KeLowerIrql(OldIrql);
}

/* Called above the interrupt's SynchronizeIrql: reported, then run as
 * KeAcquireInterruptSpinLock would (which reports the bad raise too). */
static __attribute__((noinline, cold)) BOOLEAN
synchronize_above(PKINTERRUPT Interrupt, PKSYNCHRONIZE_ROUTINE Routine,
		  PVOID Context, KIRQL irql)
{
	KIRQL old;
	BOOLEAN r;

	wdm_irql_violation("KeSynchronizeExecution", irql,
			   Interrupt->SynchronizeIrql);
	old = KeAcquireInterruptSpinLock(Interrupt);
	r = Routine(Context);
	KeReleaseInterruptSpinLock(Interrupt, old);
	return r;
}

/*
 * What KeAcquireInterruptSpinLock, the routine and
 * KeReleaseInterruptSpinLock do, with their fast paths inlined (no
 * KeRaiseIrql/KeLowerIrql calls): a DpcForIsr calls it once per run.
 * Back below DISPATCH_LEVEL it lowers through KeLowerIrql (DPC drain).
 */
BOOLEAN KeSynchronizeExecution(PKINTERRUPT Interrupt,
			       PKSYNCHRONIZE_ROUTINE SynchronizeRoutine,
			       PVOID SynchronizeContext)
{
	unsigned int cpu = wdm_cpu_index();
	struct wdm_cpu *c = &wdm_cpus[cpu];
	KIRQL old = c->irql;
	BOOLEAN r;

	if (__builtin_expect(old > Interrupt->SynchronizeIrql, 0))
		return synchronize_above(Interrupt, SynchronizeRoutine,
					 SynchronizeContext, old);
	irq_disable();
	c->irql = Interrupt->SynchronizeIrql;
	lock_acquire(cpu, Interrupt->ActualLock, "KeSynchronizeExecution");
	r = SynchronizeRoutine(SynchronizeContext);
	lock_release(cpu, Interrupt->ActualLock, "KeSynchronizeExecution");
	if (old < DISPATCH_LEVEL) {
		KeLowerIrql(old);
		return r;
	}
	c->irql = old;
	if (old == DISPATCH_LEVEL)
		irq_enable();
	return r;
}
