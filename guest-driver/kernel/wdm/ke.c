// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/*
 * Dispatcher objects: events and timers, and KeWaitForSingleObject.
 *
 * The clock is the BSP's 1 kHz LAPIC tick (lapic_ticks). A relative
 * time of t (100 ns units) becomes ceil(t / 10000) ticks from now, so a
 * timer or a wait timeout expires 0-1 ms early at worst, like a Windows
 * timer with a 1 ms clock; absolute times count 100 ns units since boot.
 * Set timers sit on one unsorted list (a driver has a handful), under
 * timer_lock with interrupts off (any CPU may set or cancel a timer;
 * expiry runs on CPU 0, whose tick is the clock);
 * wdm_next_timer_tick caches the earliest due tick so the interrupt exit
 * hook costs one comparison when nothing is due. Expiry signals the timer
 * and queues its DPC (SystemArgument1/2 = the tick, as the low/high
 * parts of the expiry time would be on Windows).
 *
 * There is one thread (the scenario, or the user program's system call),
 * so a wait is a loop of `sti; hlt` until the object is signalled by an
 * interrupt or a DPC, or the deadline tick passes. Waiting with a
 * non-zero timeout above APC_LEVEL is a verifier violation, and the wait
 * then degrades to a poll instead of hanging the CPU.
 */
#include "wdm/internal.h"

#define TIMER_TYPE_BASE 8 /* Header.Type of a timer: 8 + TIMER_TYPE */

static LIST_ENTRY timers;
static volatile uint32_t timer_lock;
volatile uint64_t wdm_next_timer_tick = UINT64_MAX;

/* Interrupts off. */
static inline void timers_lock(void)
{
	while (__atomic_exchange_n(&timer_lock, 1, __ATOMIC_ACQUIRE))
		cpu_relax();
}

static inline void timers_unlock(void)
{
	__atomic_store_n(&timer_lock, 0, __ATOMIC_RELEASE);
}

void wdm_timers_init(void)
{
	InitializeListHead(&timers);
}

uint64_t wdm_ticks_from_due(LARGE_INTEGER due)
{
	uint64_t now = lapic_ticks;

	if (due.QuadPart <= 0) {
		uint64_t t = (uint64_t)(-due.QuadPart);

		return now + (t + 9999) / 10000;
	}
	return (uint64_t)due.QuadPart / 10000;
}

static void recompute_next(void)
{
	PLIST_ENTRY e;
	uint64_t next = UINT64_MAX;

	for (e = timers.Flink; e != &timers; e = e->Flink) {
		PKTIMER t = CONTAINING_RECORD(e, KTIMER, TimerListEntry);

		if (t->DueTick < next)
			next = t->DueTick;
	}
	wdm_next_timer_tick = next;
}

unsigned int wdm_timers_expire(void)
{
	uint64_t now = lapic_ticks;
	unsigned int dpcs = 0;
	PLIST_ENTRY e;

	timers_lock();
	e = timers.Flink;
	while (e != &timers) {
		PKTIMER t = CONTAINING_RECORD(e, KTIMER, TimerListEntry);

		e = e->Flink;
		if (t->DueTick > now)
			continue;
		RemoveEntryList(&t->TimerListEntry);
		t->Inserted = FALSE;
		t->Header.SignalState = 1;
		wdm_stats.timers_fired++;
		if (t->Dpc && KeInsertQueueDpc(t->Dpc, (PVOID)now, NULL))
			dpcs++;
	}
	recompute_next();
	timers_unlock();
	return dpcs;
}

void KeInitializeEvent(PKEVENT Event, EVENT_TYPE Type, BOOLEAN State)
{
	Event->Header.Type = (UCHAR)Type;
	Event->Header.SignalState = State ? 1 : 0;
}

LONG KeSetEvent(PKEVENT Event, LONG Increment, BOOLEAN Wait)
{
	(void)Increment;
	wdm_check_irql("KeSetEvent", Wait ? APC_LEVEL : DISPATCH_LEVEL);
	return __atomic_exchange_n(&Event->Header.SignalState, 1,
				   __ATOMIC_SEQ_CST);
}

void KeClearEvent(PKEVENT Event)
{
	Event->Header.SignalState = 0;
}

LONG KeReadStateEvent(PKEVENT Event)
{
	return Event->Header.SignalState;
}

void KeInitializeTimerEx(PKTIMER Timer, TIMER_TYPE Type)
{
	Timer->Header.Type = (UCHAR)(TIMER_TYPE_BASE + Type);
	Timer->Header.SignalState = 0;
	Timer->DueTick = 0;
	InitializeListHead(&Timer->TimerListEntry);
	Timer->Dpc = NULL;
	Timer->Inserted = FALSE;
}

void KeInitializeTimer(PKTIMER Timer)
{
	KeInitializeTimerEx(Timer, NotificationTimer);
}

BOOLEAN KeSetTimer(PKTIMER Timer, LARGE_INTEGER DueTime, PKDPC Dpc)
{
	uint64_t flags;
	BOOLEAN was;

	wdm_check_irql("KeSetTimer", DISPATCH_LEVEL);
	flags = wdm_irq_save();
	timers_lock();
	was = Timer->Inserted;
	if (was)
		RemoveEntryList(&Timer->TimerListEntry);
	Timer->Header.SignalState = 0;
	Timer->Dpc = Dpc;
	Timer->DueTick = wdm_ticks_from_due(DueTime);
	Timer->Inserted = TRUE;
	InsertTailList(&timers, &Timer->TimerListEntry);
	if (Timer->DueTick < wdm_next_timer_tick)
		wdm_next_timer_tick = Timer->DueTick;
	timers_unlock();
	wdm_irq_restore(flags);
	return was;
}

BOOLEAN KeCancelTimer(PKTIMER Timer)
{
	uint64_t flags;
	BOOLEAN was;

	wdm_check_irql("KeCancelTimer", DISPATCH_LEVEL);
	flags = wdm_irq_save();
	timers_lock();
	was = Timer->Inserted;
	if (was) {
		RemoveEntryList(&Timer->TimerListEntry);
		Timer->Inserted = FALSE;
		recompute_next();
	}
	timers_unlock();
	wdm_irq_restore(flags);
	return was;
}

BOOLEAN KeReadStateTimer(PKTIMER Timer)
{
	return Timer->Header.SignalState != 0;
}

void KeQuerySystemTime(PLARGE_INTEGER CurrentTime)
{
	CurrentTime->QuadPart = (LONGLONG)(lapic_ticks * 10000);
}

/* Interrupts off. Consume the signal of a synchronization object. */
static bool try_acquire(DISPATCHER_HEADER *h)
{
	if (!h->SignalState)
		return false;
	if ((h->Type & 7) == SynchronizationEvent)
		h->SignalState = 0;
	return true;
}

NTSTATUS KeWaitForSingleObject(PVOID Object, KWAIT_REASON WaitReason,
			       KPROCESSOR_MODE WaitMode, BOOLEAN Alertable,
			       PLARGE_INTEGER Timeout)
{
	DISPATCHER_HEADER *h = Object;
	bool poll = Timeout && Timeout->QuadPart == 0;
	uint64_t deadline = Timeout ? wdm_ticks_from_due(*Timeout) : UINT64_MAX;
	uint64_t flags;

	(void)WaitReason, (void)WaitMode, (void)Alertable;
	if (!poll && wdm_check_irql("KeWaitForSingleObject", APC_LEVEL) > APC_LEVEL)
		poll = true;
	flags = read_rflags();
	for (;;) {
		irq_disable();
		if (try_acquire(h)) {
			wdm_irq_restore(flags);
			return STATUS_SUCCESS;
		}
		if (poll || lapic_ticks >= deadline) {
			wdm_irq_restore(flags);
			return STATUS_TIMEOUT;
		}
		irq_enable_and_halt();
	}
}
