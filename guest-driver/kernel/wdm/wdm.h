/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * wdm.h: the slice of the Windows Driver Model a DMA driver of this kind
 * uses, with Windows' documented names and semantics (docs/wdm.md says
 * what is modelled and what is not). Drivers include only this header.
 *
 * IRQL: PASSIVE_LEVEL 0, APC_LEVEL 1 (a number only: no APCs here),
 * DISPATCH_LEVEL 2, device IRQLs 3-14 (vector >> 4, as on Windows x64),
 * HIGH_LEVEL 15. Above DISPATCH_LEVEL maskable interrupts are off (IF=0);
 * at DISPATCH_LEVEL and below they are on. The DPC queue is drained when
 * the IRQL drops below DISPATCH_LEVEL (KeLowerIrql, KeReleaseSpinLock,
 * and the exit of any interrupt that arrived below DISPATCH_LEVEL).
 *
 * Times are Windows units: 100 ns, negative = relative. The clock is the
 * 1 kHz LAPIC tick, so timers and wait timeouts have 1 ms resolution and
 * are rounded up to whole ticks.
 *
 * Driver routines may not be named in a Windows binary, but the verifier
 * wants names: KeInitializeDpc, IoInitializeDpcRequest and
 * IoConnectInterruptEx are macros that record the routine's C name.
 *
 * This file: types, NTSTATUS, lists, IRQL, spin locks, DPCs, events,
 * timers, waits. wdm/wdm_io.h (included at the end): IRPs, device and
 * driver objects, StartIo, cancellation, message interrupts, IOCTL codes.
 */
#ifndef DMALAB_WDM_H
#define DMALAB_WDM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef int8_t CHAR;
typedef uint8_t UCHAR;
typedef uint8_t BOOLEAN;
typedef uint16_t USHORT;
typedef uint32_t ULONG;
typedef int32_t LONG;
typedef uint64_t ULONG64;
typedef uint64_t ULONG_PTR;
typedef int64_t LONGLONG;
typedef void VOID;
typedef void *PVOID;
typedef int32_t NTSTATUS;
typedef UCHAR KIRQL;
typedef KIRQL *PKIRQL;
typedef uint64_t KAFFINITY;
typedef union {
	LONGLONG QuadPart;
} LARGE_INTEGER, *PLARGE_INTEGER;
typedef uint64_t PHYSICAL_ADDRESS; /* guest-physical */

#define TRUE 1
#define FALSE 0

/* NTSTATUS values (ntstatus.h). */
#define STATUS_SUCCESS ((NTSTATUS)0x00000000)
#define STATUS_TIMEOUT ((NTSTATUS)0x00000102)
#define STATUS_PENDING ((NTSTATUS)0x00000103)
#define STATUS_UNSUCCESSFUL ((NTSTATUS)0xC0000001)
#define STATUS_INVALID_PARAMETER ((NTSTATUS)0xC000000D)
#define STATUS_INVALID_DEVICE_REQUEST ((NTSTATUS)0xC0000010)
#define STATUS_MORE_PROCESSING_REQUIRED ((NTSTATUS)0xC0000016)
#define STATUS_ACCESS_VIOLATION ((NTSTATUS)0xC0000005)
#define STATUS_INSUFFICIENT_RESOURCES ((NTSTATUS)0xC000009A)
#define STATUS_NO_SUCH_DEVICE ((NTSTATUS)0xC000000E)
#define STATUS_INVALID_HANDLE ((NTSTATUS)0xC0000008)
#define STATUS_BUFFER_TOO_SMALL ((NTSTATUS)0xC0000023)
#define STATUS_CANCELLED ((NTSTATUS)0xC0000120)
#define STATUS_NOT_FOUND ((NTSTATUS)0xC0000225)
#define STATUS_IO_TIMEOUT ((NTSTATUS)0xC00000B5)
#define STATUS_CONTINUE_COMPLETION STATUS_SUCCESS
#define NT_SUCCESS(s) ((NTSTATUS)(s) >= 0)

#define PASSIVE_LEVEL 0
#define APC_LEVEL 1
#define DISPATCH_LEVEL 2
#define HIGH_LEVEL 15

#define IO_NO_INCREMENT 0

/* ---- Lists (the usual doubly linked LIST_ENTRY) ---- */
typedef struct _LIST_ENTRY {
	struct _LIST_ENTRY *Flink, *Blink;
} LIST_ENTRY, *PLIST_ENTRY;

#define CONTAINING_RECORD(addr, type, field) \
	((type *)((char *)(addr) - offsetof(type, field)))

static inline void InitializeListHead(PLIST_ENTRY h)
{
	h->Flink = h->Blink = h;
}

static inline BOOLEAN IsListEmpty(const LIST_ENTRY *h)
{
	return h->Flink == h;
}

static inline void InsertTailList(PLIST_ENTRY h, PLIST_ENTRY e)
{
	e->Flink = h;
	e->Blink = h->Blink;
	h->Blink->Flink = e;
	h->Blink = e;
}

static inline BOOLEAN RemoveEntryList(PLIST_ENTRY e)
{
	e->Blink->Flink = e->Flink;
	e->Flink->Blink = e->Blink;
	e->Flink = e->Blink = e;
	return IsListEmpty(e);
}

static inline PLIST_ENTRY RemoveHeadList(PLIST_ENTRY h)
{
	PLIST_ENTRY e = h->Flink;

	RemoveEntryList(e);
	return e;
}

/* ---- IRQL ---- */
KIRQL KeGetCurrentIrql(void);
/* NewIrql below the current IRQL is a verifier violation. */
void KeRaiseIrql(KIRQL NewIrql, PKIRQL OldIrql);
/* NewIrql above the current IRQL is a verifier violation. Drains the DPC
 * queue when going below DISPATCH_LEVEL. */
void KeLowerIrql(KIRQL NewIrql);
KIRQL KeRaiseIrqlToDpcLevel(void);

/*
 * IRQL annotations: the first statement of every driver routine states
 * the IRQL it runs at, as SAL's _IRQL_requires_max_(l), _IRQL_requires_(l)
 * and _IRQL_requires_min_(l) do for Windows' static analysis. Here they
 * are checked at run time: a routine entered outside its range is an
 * `irql` violation naming it, so an annotation cannot lie.
 */
void wdm_irql_entry_violation(const char *routine, KIRQL irql, KIRQL min,
			      KIRQL max);

/* This CPU's index and IRQL, read inline: the per-CPU record at %gs:0
 * holds the index at offset 8 and, at offset 16, a pointer to the WDM
 * layer's record, whose first byte is the IRQL (cpu.h; wdm/internal.h
 * checks the offsets). One or two loads, no call: every instruction is
 * emulated here. */
#define WDM_GS_CPU_INDEX 8
#define WDM_GS_WDM_RECORD 16
static inline uint32_t wdm_this_cpu(void)
{
	uint32_t index;

	__asm__("movl %%gs:8, %0" : "=r"(index));
	return index;
}

static inline KIRQL wdm_this_irql(void)
{
	const volatile KIRQL *irql;

	__asm__("movq %%gs:16, %0" : "=r"(irql));
	return *irql;
}

static inline void wdm_irql_entry(const char *routine, KIRQL min, KIRQL max)
{
	KIRQL irql = wdm_this_irql();

	if (__builtin_expect(irql < min || irql > max, 0))
		wdm_irql_entry_violation(routine, irql, min, max);
}
#define IRQL_REQUIRES_MAX(irql) wdm_irql_entry(__func__, PASSIVE_LEVEL, (irql))
#define IRQL_REQUIRES(irql) wdm_irql_entry(__func__, (irql), (irql))
#define IRQL_REQUIRES_MIN(irql) wdm_irql_entry(__func__, (irql), HIGH_LEVEL)

/* ---- Spin locks ---- */
typedef ULONG_PTR KSPIN_LOCK, *PKSPIN_LOCK; /* 0 free, else owner CPU + 1 */

void KeInitializeSpinLock(PKSPIN_LOCK SpinLock);
/* IRQL <= DISPATCH_LEVEL; raises to DISPATCH_LEVEL. */
void KeAcquireSpinLock(PKSPIN_LOCK SpinLock, PKIRQL OldIrql);
void KeReleaseSpinLock(PKSPIN_LOCK SpinLock, KIRQL NewIrql);
/* IRQL == DISPATCH_LEVEL (or above). */
void KeAcquireSpinLockAtDpcLevel(PKSPIN_LOCK SpinLock);
void KeReleaseSpinLockFromDpcLevel(PKSPIN_LOCK SpinLock);

/* ---- DPCs ---- */
struct _KDPC;
typedef void KDEFERRED_ROUTINE(struct _KDPC *Dpc, PVOID DeferredContext,
			       PVOID SystemArgument1, PVOID SystemArgument2);
typedef KDEFERRED_ROUTINE *PKDEFERRED_ROUTINE;

typedef struct _KDPC {
	LIST_ENTRY DpcListEntry;
	PKDEFERRED_ROUTINE DeferredRoutine;
	PVOID DeferredContext;
	PVOID SystemArgument1;
	PVOID SystemArgument2;
	volatile BOOLEAN Inserted;
	UCHAR TargetCpu; /* KeSetTargetProcessorDpc: CPU + 1; 0: the queuing CPU */
	UCHAR QueuedOn; /* the CPU whose queue holds it, while Inserted */
	const char *Name; /* the routine's name, for the verifier */
} KDPC, *PKDPC;

void wdm_initialize_dpc(PKDPC Dpc, PKDEFERRED_ROUTINE Routine, PVOID Context,
			const char *name);
#define KeInitializeDpc(dpc, routine, ctx) \
	wdm_initialize_dpc(dpc, routine, ctx, #routine)
/* Any IRQL. FALSE if the DPC is already queued (it then runs once). A
 * DPC is queued on the CPU that calls this, or on its target CPU
 * (KeSetTargetProcessorDpc), which an IPI then interrupts. */
BOOLEAN KeInsertQueueDpc(PKDPC Dpc, PVOID SystemArgument1,
			 PVOID SystemArgument2);
/* TRUE if the DPC was queued and is no longer. */
BOOLEAN KeRemoveQueueDpc(PKDPC Dpc);
/* The index of the CPU that calls it. */
ULONG KeGetCurrentProcessorNumber(void);
/* Queue the DPC on CPU Number from now on (not while it is queued). */
void KeSetTargetProcessorDpc(PKDPC Dpc, CHAR Number);
/* PASSIVE_LEVEL. Returns once every DPC queued on any CPU before the
 * call has run to its end. */
void KeFlushQueuedDpcs(void);

/* ---- Dispatcher objects: events and timers ---- */
typedef enum { NotificationEvent, SynchronizationEvent } EVENT_TYPE;
typedef enum { NotificationTimer, SynchronizationTimer } TIMER_TYPE;
typedef enum { Executive } KWAIT_REASON;
typedef enum { KernelMode, UserMode } KPROCESSOR_MODE;

typedef struct _DISPATCHER_HEADER {
	UCHAR Type; /* EVENT_TYPE or TIMER_TYPE */
	volatile LONG SignalState;
} DISPATCHER_HEADER;

typedef struct _KEVENT {
	DISPATCHER_HEADER Header;
} KEVENT, *PKEVENT;

typedef struct _KTIMER {
	DISPATCHER_HEADER Header;
	uint64_t DueTick; /* LAPIC tick at which it expires */
	LIST_ENTRY TimerListEntry;
	PKDPC Dpc;
	BOOLEAN Inserted;
} KTIMER, *PKTIMER;

void KeInitializeEvent(PKEVENT Event, EVENT_TYPE Type, BOOLEAN State);
/* Returns the previous state. Wait must be FALSE here. */
LONG KeSetEvent(PKEVENT Event, LONG Increment, BOOLEAN Wait);
void KeClearEvent(PKEVENT Event);
LONG KeReadStateEvent(PKEVENT Event);

void KeInitializeTimer(PKTIMER Timer);
void KeInitializeTimerEx(PKTIMER Timer, TIMER_TYPE Type);
/* TRUE if the timer was already set (it is re-set). */
BOOLEAN KeSetTimer(PKTIMER Timer, LARGE_INTEGER DueTime, PKDPC Dpc);
/* TRUE if the timer was set. A DPC already queued by it still runs. */
BOOLEAN KeCancelTimer(PKTIMER Timer);
BOOLEAN KeReadStateTimer(PKTIMER Timer);

/* Object: a KEVENT or a KTIMER. Timeout NULL = forever; a zero timeout
 * polls (allowed at DISPATCH_LEVEL); any other wait needs IRQL <=
 * APC_LEVEL. STATUS_SUCCESS or STATUS_TIMEOUT. */
NTSTATUS KeWaitForSingleObject(PVOID Object, KWAIT_REASON WaitReason,
			       KPROCESSOR_MODE WaitMode, BOOLEAN Alertable,
			       PLARGE_INTEGER Timeout);

/* 100 ns units since boot, from the tick. */
void KeQuerySystemTime(PLARGE_INTEGER CurrentTime);

/* The dispatch trace hook (this kernel's slice of ETW's kernel events):
 * called around every ISR, DPC and DriverStartIo the kernel dispatches,
 * at the routine's IRQL, with End FALSE before it and TRUE after it.
 * Object is the KINTERRUPT (Id = its MessageId), the KDPC or the
 * DEVICE_OBJECT; OwnUs, at the end, is the routine's own time measured
 * with the TSC, steal time left out (0 at the begin). NULL turns it off. */
typedef enum _WDM_TRACE_ROUTINE {
	WdmTraceIsr,
	WdmTraceDpc,
	WdmTraceStartIo,
} WDM_TRACE_ROUTINE;
typedef void WDM_TRACE_CALLBACK(PVOID Context, WDM_TRACE_ROUTINE Routine,
				BOOLEAN End, PVOID Object, ULONG Id,
				ULONG OwnUs);
void WdmSetTraceCallback(WDM_TRACE_CALLBACK *Callback, PVOID Context);

/* The I/O manager, interrupts, IOCTL codes, drivers. */
#include "wdm/wdm_io.h"

#endif
