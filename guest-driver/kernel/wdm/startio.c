// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/*
 * Start I/O: device queues (KDEVICE_QUEUE), IoStartPacket /
 * IoStartNextPacket calling the driver's DriverStartIo one IRP at a time,
 * and cancellation (the global cancel spin lock, IoCancelIrp).
 *
 * IoStartPacket runs at DISPATCH_LEVEL and takes the cancel spin lock
 * when given a cancel routine, as Windows does, so a queued IRP is
 * cancellable until IoStartNextPacket dequeues it. A cancel routine runs
 * with that lock held and must release it with
 * IoReleaseCancelSpinLock(Irp->CancelIrql). An IRP whose Cancel flag is
 * already set when IoStartPacket queues it is cancelled at once.
 * StartIo may call IoStartNextPacket (from its DpcForIsr): the recursion
 * depth is bounded by the queue, and on this platform each level is one
 * IRP the device finished synchronously.
 */
#include "wdm/internal.h"

static KSPIN_LOCK cancel_lock;

void KeInitializeDeviceQueue(PKDEVICE_QUEUE DeviceQueue)
{
	InitializeListHead(&DeviceQueue->DeviceListHead);
	KeInitializeSpinLock(&DeviceQueue->Lock);
	DeviceQueue->Busy = FALSE;
}

BOOLEAN KeInsertDeviceQueue(PKDEVICE_QUEUE DeviceQueue,
			    PKDEVICE_QUEUE_ENTRY Entry)
{
	BOOLEAN queued = FALSE;

	KeAcquireSpinLockAtDpcLevel(&DeviceQueue->Lock);
	if (!DeviceQueue->Busy) {
		DeviceQueue->Busy = TRUE;
	} else {
		InsertTailList(&DeviceQueue->DeviceListHead,
			       &Entry->DeviceListEntry);
		Entry->Inserted = TRUE;
		queued = TRUE;
	}
	KeReleaseSpinLockFromDpcLevel(&DeviceQueue->Lock);
	return queued;
}

PKDEVICE_QUEUE_ENTRY KeRemoveDeviceQueue(PKDEVICE_QUEUE DeviceQueue)
{
	PKDEVICE_QUEUE_ENTRY e = NULL;

	KeAcquireSpinLockAtDpcLevel(&DeviceQueue->Lock);
	if (IsListEmpty(&DeviceQueue->DeviceListHead)) {
		DeviceQueue->Busy = FALSE;
	} else {
		e = CONTAINING_RECORD(RemoveHeadList(&DeviceQueue->DeviceListHead),
				      KDEVICE_QUEUE_ENTRY, DeviceListEntry);
		e->Inserted = FALSE;
	}
	KeReleaseSpinLockFromDpcLevel(&DeviceQueue->Lock);
	return e;
}

BOOLEAN KeRemoveEntryDeviceQueue(PKDEVICE_QUEUE DeviceQueue,
				 PKDEVICE_QUEUE_ENTRY Entry)
{
	BOOLEAN was;
	KIRQL old;

	KeAcquireSpinLock(&DeviceQueue->Lock, &old);
	was = Entry->Inserted;
	if (was) {
		RemoveEntryList(&Entry->DeviceListEntry);
		Entry->Inserted = FALSE;
	}
	KeReleaseSpinLock(&DeviceQueue->Lock, old);
	return was;
}

void IoAcquireCancelSpinLock(PKIRQL Irql)
{
	KeAcquireSpinLock(&cancel_lock, Irql);
}

void IoReleaseCancelSpinLock(KIRQL Irql)
{
	KeReleaseSpinLock(&cancel_lock, Irql);
}

static void call_cancel(PDRIVER_CANCEL routine, PIRP Irp)
{
	struct wdm_cpu *c = wdm_cpu();
	const char *prev = wdm_enter(c, "CancelRoutine");

	routine(IoGetCurrentIrpStackLocation(Irp)->DeviceObject, Irp);
	c->routine = prev;
}

static void start_io(PDEVICE_OBJECT DeviceObject, PIRP Irp)
{
	struct wdm_cpu *c = wdm_cpu();
	const char *prev = wdm_enter(c, "DriverStartIo");
	unsigned int cpu;
	uint64_t steal0, t0;

	Irp->Priv.Owner = "DriverStartIo";
	wdm_stats.irps_started++;
	if (__builtin_expect(!wdm_trace_callback, 1)) {
		/* Not timed by the verifier: no stamps unless traced. */
		DeviceObject->DriverObject->DriverStartIo(DeviceObject, Irp);
		c->routine = prev;
		return;
	}
	cpu = wdm_cpu_index();
	wdm_trace(WdmTraceStartIo, FALSE, DeviceObject, 0, 0, 0);
	steal0 = steal_ns_own(cpu);
	t0 = rdtsc();
	DeviceObject->DriverObject->DriverStartIo(DeviceObject, Irp);
	wdm_trace(WdmTraceStartIo, TRUE, DeviceObject, 0, rdtsc() - t0,
		  steal_ns_own(cpu) - steal0);
	c->routine = prev;
}

void IoStartPacket(PDEVICE_OBJECT DeviceObject, PIRP Irp, ULONG *Key,
		   PDRIVER_CANCEL CancelFunction)
{
	KIRQL old, cancel_irql = DISPATCH_LEVEL;

	(void)Key;
	wdm_check_irql("IoStartPacket", DISPATCH_LEVEL);
	if (!wdm_irp_live(Irp, "IoStartPacket"))
		return;
	KeRaiseIrql(DISPATCH_LEVEL, &old);
	if (CancelFunction) {
		IoAcquireCancelSpinLock(&cancel_irql);
		Irp->CancelRoutine = CancelFunction;
	}
	if (!KeInsertDeviceQueue(&DeviceObject->DeviceQueue,
				 &Irp->Tail.Overlay.DeviceQueueEntry)) {
		DeviceObject->CurrentIrp = Irp;
		if (CancelFunction)
			IoReleaseCancelSpinLock(cancel_irql);
		start_io(DeviceObject, Irp);
	} else if (CancelFunction) {
		PDRIVER_CANCEL routine = NULL;

		/* Cancelled before it was queued: cancel it now. */
		if (Irp->Cancel)
			routine = IoSetCancelRoutine(Irp, NULL);
		if (routine) {
			Irp->CancelIrql = cancel_irql;
			call_cancel(routine, Irp);
		} else {
			IoReleaseCancelSpinLock(cancel_irql);
		}
	}
	KeLowerIrql(old);
}

void IoStartNextPacket(PDEVICE_OBJECT DeviceObject, BOOLEAN Cancelable)
{
	PKDEVICE_QUEUE_ENTRY e;
	KIRQL cancel_irql = DISPATCH_LEVEL;

	if (wdm_check_irql("IoStartNextPacket", DISPATCH_LEVEL) < DISPATCH_LEVEL)
		wdm_violation(WDM_V_IRQL, "IoStartNextPacket called below DISPATCH_LEVEL");
	if (Cancelable)
		IoAcquireCancelSpinLock(&cancel_irql);
	DeviceObject->CurrentIrp = NULL;
	e = KeRemoveDeviceQueue(&DeviceObject->DeviceQueue);
	if (e) {
		PIRP irp = CONTAINING_RECORD(e, IRP, Tail.Overlay.DeviceQueueEntry);

		DeviceObject->CurrentIrp = irp;
		if (Cancelable)
			IoReleaseCancelSpinLock(cancel_irql);
		start_io(DeviceObject, irp);
	} else if (Cancelable) {
		IoReleaseCancelSpinLock(cancel_irql);
	}
}

BOOLEAN IoCancelIrp(PIRP Irp)
{
	PDRIVER_CANCEL routine;
	KIRQL irql;

	wdm_check_irql("IoCancelIrp", DISPATCH_LEVEL);
	if (!wdm_irp_live(Irp, "IoCancelIrp"))
		return FALSE;
	IoAcquireCancelSpinLock(&irql);
	Irp->Cancel = TRUE;
	routine = IoSetCancelRoutine(Irp, NULL);
	if (!routine) {
		IoReleaseCancelSpinLock(irql);
		return FALSE;
	}
	Irp->CancelIrql = irql;
	call_cancel(routine, Irp);
	return TRUE;
}
