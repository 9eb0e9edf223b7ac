// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/*
 * The I/O manager's IRPs: their pool and stack locations, IoCallDriver,
 * IoCompleteRequest with completion routines, kernel-built DEVICE_CONTROL
 * IRPs, and the end-of-run check for IRPs never completed. (StartIo and
 * cancellation: startio.c; driver and device objects: driver.c.)
 *
 * IRPs come from a fixed pool (the kernel heap has no free) kept as a
 * FIFO free list, so a freed IRP is reused as late as possible: a driver
 * that completes an IRP twice, or touches it after completion, meets a
 * FREE IRP, not someone else's. Each IRP carries its METHOD_BUFFERED
 * system buffer (WDM_SYSTEM_BUFFER_SIZE bytes) and one MDL for direct
 * I/O. When an IRP is freed its IoStatus is snapshotted; if it differs
 * when the IRP is next allocated (or at the end of the scenario), a
 * driver wrote to it after completion: a verifier violation.
 *
 * IoCompleteRequest walks the stack locations upward as Windows does:
 * PendingReturned from each location's SL_PENDING_RETURNED, the
 * location's completion routine called if its invoke flags match the
 * status (success, error, cancel), called with the device object of the
 * location above (NULL at the top), STATUS_MORE_PROCESSING_REQUIRED
 * stops the walk and hands the IRP back to that routine's owner. The
 * final stage (no APC here: it runs in the completing context, DPC or
 * not; user memory is always mapped) copies a METHOD_BUFFERED output
 * back, fills the caller's IO_STATUS_BLOCK or user request, sets the
 * event and frees the IRP.
 */
#include "heap.h"
#include "wdm/internal.h"

#define IRP_POOL 48

static PIRP irp_pool;
static LIST_ENTRY irp_free;
static uint32_t irp_next_id;

static const char *dispatch_name(UCHAR major)
{
	switch (major) {
	case IRP_MJ_CREATE:
		return "DispatchCreate";
	case IRP_MJ_CLOSE:
		return "DispatchClose";
	case IRP_MJ_CLEANUP:
		return "DispatchCleanup";
	case IRP_MJ_DEVICE_CONTROL:
		return "DispatchDeviceControl";
	default:
		return "Dispatch";
	}
}

void wdm_iomgr_init(void)
{
	unsigned int i;

	InitializeListHead(&irp_free);
	irp_pool = kmalloc(sizeof(IRP) * IRP_POOL);
	if (!irp_pool)
		return;
	for (i = 0; i < IRP_POOL; i++)
		InsertTailList(&irp_free, &irp_pool[i].Priv.Link);
}

static void check_snapshot(PIRP Irp)
{
	if (Irp->IoStatus.Status != Irp->Priv.Snapshot.Status ||
	    Irp->IoStatus.Information != Irp->Priv.Snapshot.Information) {
		const char *prev = wdm_enter(wdm_cpu(), Irp->Priv.Owner);

		wdm_violation(WDM_V_IRP_AFTER,
			      "IRP touched after completion irp=%p id=%u (IoStatus 0x%x/%lu, completed as 0x%x/%lu)",
			      (void *)Irp, Irp->Priv.Id,
			      (uint32_t)Irp->IoStatus.Status,
			      Irp->IoStatus.Information,
			      (uint32_t)Irp->Priv.Snapshot.Status,
			      Irp->Priv.Snapshot.Information);
		wdm_cpu()->routine = prev;
		Irp->Priv.Snapshot = Irp->IoStatus;
	}
}

PIRP IoAllocateIrp(CHAR StackSize, BOOLEAN ChargeQuota)
{
	uint64_t flags;
	PIRP irp = NULL;

	(void)ChargeQuota;
	if (StackSize < 1 || StackSize > WDM_IRP_STACK_SIZE)
		return NULL;
	flags = wdm_irq_save();
	if (!IsListEmpty(&irp_free)) {
		irp = CONTAINING_RECORD(RemoveHeadList(&irp_free), IRP, Priv.Link);
		check_snapshot(irp);
		wdm_stats.irps_allocated++;
		if (++wdm_stats.irps_outstanding > wdm_stats.irps_max_outstanding)
			wdm_stats.irps_max_outstanding = wdm_stats.irps_outstanding;
	}
	wdm_irq_restore(flags);
	if (!irp)
		return NULL;
	wdm_zero(irp, offsetof(IRP, Priv));
	wdm_zero(&irp->Priv, offsetof(struct wdm_irp_private, Buffer));
	InitializeListHead(&irp->Priv.Link);
	irp->Priv.State = WDM_IRP_ACTIVE;
	irp->Priv.Id = ++irp_next_id;
	irp->StackCount = StackSize;
	irp->CurrentLocation = (CHAR)(StackSize + 1);
	irp->Tail.Overlay.CurrentStackLocation = &irp->Stack[(int)StackSize];
	return irp;
}

static void irp_release(PIRP Irp)
{
	uint64_t flags = wdm_irq_save();

	if (Irp->Priv.State == WDM_IRP_ACTIVE)
		wdm_stats.irps_outstanding--;
	Irp->Priv.State = WDM_IRP_FREE;
	Irp->Priv.Snapshot = Irp->IoStatus;
	InsertTailList(&irp_free, &Irp->Priv.Link);
	wdm_irq_restore(flags);
}

/* Is the IRP still the driver's to use? Reports it if not. */
bool wdm_irp_live(PIRP Irp, const char *fn)
{
	if (Irp->Priv.State == WDM_IRP_ACTIVE)
		return true;
	wdm_violation(WDM_V_IRP_AFTER, "IRP touched after completion irp=%p id=%u in %s",
		      (void *)Irp, Irp->Priv.Id, fn);
	return false;
}

void IoFreeIrp(PIRP Irp)
{
	if (wdm_irp_live(Irp, "IoFreeIrp"))
		irp_release(Irp);
}

void IoMarkIrpPending(PIRP Irp)
{
	if (wdm_irp_live(Irp, "IoMarkIrpPending"))
		IoGetCurrentIrpStackLocation(Irp)->Control |= SL_PENDING_RETURNED;
}

void IoSetCompletionRoutine(PIRP Irp, PIO_COMPLETION_ROUTINE Routine,
			    PVOID Context, BOOLEAN InvokeOnSuccess,
			    BOOLEAN InvokeOnError, BOOLEAN InvokeOnCancel)
{
	PIO_STACK_LOCATION s = IoGetNextIrpStackLocation(Irp);

	s->CompletionRoutine = Routine;
	s->Context = Context;
	s->Control = (UCHAR)((InvokeOnSuccess ? SL_INVOKE_ON_SUCCESS : 0) |
			     (InvokeOnError ? SL_INVOKE_ON_ERROR : 0) |
			     (InvokeOnCancel ? SL_INVOKE_ON_CANCEL : 0));
}

PDRIVER_CANCEL IoSetCancelRoutine(PIRP Irp, PDRIVER_CANCEL CancelRoutine)
{
	return __atomic_exchange_n(&Irp->CancelRoutine, CancelRoutine,
				   __ATOMIC_SEQ_CST);
}


NTSTATUS IoCallDriver(PDEVICE_OBJECT DeviceObject, PIRP Irp)
{
	struct wdm_cpu *c = wdm_cpu();
	PIO_STACK_LOCATION s;
	const char *name, *prev;
	NTSTATUS st;

	wdm_check_irql("IoCallDriver", DISPATCH_LEVEL);
	if (!wdm_irp_live(Irp, "IoCallDriver"))
		return STATUS_INVALID_PARAMETER;
	if (Irp->CurrentLocation <= 1) {
		wdm_violation(WDM_V_IRQL, "IoCallDriver: no stack location left in irp=%p",
			      (void *)Irp);
		Irp->IoStatus.Status = STATUS_INVALID_PARAMETER;
		IoCompleteRequest(Irp, IO_NO_INCREMENT);
		return STATUS_INVALID_PARAMETER;
	}
	Irp->CurrentLocation--;
	s = --Irp->Tail.Overlay.CurrentStackLocation;
	s->DeviceObject = DeviceObject;
	name = dispatch_name(s->MajorFunction);
	Irp->Priv.Owner = name;
	prev = wdm_enter(c, name);
	st = DeviceObject->DriverObject->MajorFunction[s->MajorFunction](
		DeviceObject, Irp);
	c->routine = prev;
	return st;
}

/* The last stage: give the result to whoever asked, free the IRP. */
static void complete_final(PIRP Irp)
{
	Irp->Priv.State = WDM_IRP_COMPLETED;
	wdm_stats.irps_completed++;
	if (Irp->IoStatus.Status == STATUS_CANCELLED)
		wdm_stats.irps_cancelled++;
	wdm_stats.irps_outstanding--;
	if (Irp->Priv.Request) {
		wdm_request_complete(Irp);
	} else if (Irp->UserIosb || Irp->UserEvent) {
		if (Irp->Priv.Method == METHOD_BUFFERED && Irp->UserBuffer &&
		    !(Irp->IoStatus.Status & 0x80000000)) {
			ULONG_PTR n = Irp->IoStatus.Information;

			if (n > Irp->Priv.OutputLength)
				n = Irp->Priv.OutputLength;
			wdm_copy(Irp->UserBuffer, Irp->AssociatedIrp.SystemBuffer, n);
		}
		if (Irp->UserIosb)
			*Irp->UserIosb = Irp->IoStatus;
		if (Irp->UserEvent)
			KeSetEvent(Irp->UserEvent, IO_NO_INCREMENT, FALSE);
	}
	irp_release(Irp);
}

void IoCompleteRequest(PIRP Irp, UCHAR PriorityBoost)
{
	struct wdm_cpu *c = wdm_cpu();

	(void)PriorityBoost;
	wdm_check_irql("IoCompleteRequest", DISPATCH_LEVEL);
	if (Irp->Priv.State != WDM_IRP_ACTIVE) {
		wdm_violation(WDM_V_IRP_DOUBLE, "IRP completed twice irp=%p id=%u (status 0x%x)",
			      (void *)Irp, Irp->Priv.Id,
			      (uint32_t)Irp->IoStatus.Status);
		return;
	}
	if (Irp->IoStatus.Status == STATUS_PENDING)
		wdm_violation(WDM_V_IRP_AFTER, "IRP completed with STATUS_PENDING irp=%p id=%u",
			      (void *)Irp, Irp->Priv.Id);
	if (Irp->CancelRoutine)
		wdm_violation(WDM_V_IRP_AFTER, "IRP completed with its cancel routine still set irp=%p id=%u",
			      (void *)Irp, Irp->Priv.Id);
	/* Reports about this IRP from now on name who completed it. */
	if (c->routine)
		Irp->Priv.Owner = c->routine;
	while (Irp->CurrentLocation <= Irp->StackCount) {
		PIO_STACK_LOCATION s = IoGetCurrentIrpStackLocation(Irp);
		PIO_COMPLETION_ROUTINE routine = s->CompletionRoutine;
		PVOID ctx = s->Context;
		NTSTATUS st = Irp->IoStatus.Status;
		UCHAR want = Irp->Cancel && st == STATUS_CANCELLED ?
				     SL_INVOKE_ON_CANCEL :
			     NT_SUCCESS(st) ? SL_INVOKE_ON_SUCCESS :
					      SL_INVOKE_ON_ERROR;
		bool call = routine && (s->Control & want);

		Irp->PendingReturned = (s->Control & SL_PENDING_RETURNED) != 0;
		wdm_zero(s, sizeof(*s));
		Irp->CurrentLocation++;
		Irp->Tail.Overlay.CurrentStackLocation++;
		if (call) {
			PDEVICE_OBJECT dev = Irp->CurrentLocation <= Irp->StackCount ?
				IoGetCurrentIrpStackLocation(Irp)->DeviceObject : NULL;
			const char *prev = wdm_enter(c, "CompletionRoutine");

			wdm_stats.completion_routines++;
			st = routine(dev, Irp, ctx);
			c->routine = prev;
			if (st == STATUS_MORE_PROCESSING_REQUIRED)
				return;
		} else if (Irp->PendingReturned &&
			   Irp->CurrentLocation <= Irp->StackCount) {
			IoGetCurrentIrpStackLocation(Irp)->Control |=
				SL_PENDING_RETURNED;
		}
	}
	complete_final(Irp);
}

PIRP IoBuildDeviceIoControlRequest(ULONG IoControlCode,
				   PDEVICE_OBJECT DeviceObject,
				   PVOID InputBuffer, ULONG InputBufferLength,
				   PVOID OutputBuffer,
				   ULONG OutputBufferLength,
				   BOOLEAN InternalDeviceIoControl,
				   PKEVENT Event,
				   PIO_STATUS_BLOCK IoStatusBlock)
{
	ULONG method = IoControlMethod(IoControlCode);
	PIO_STACK_LOCATION s;
	PIRP irp;

	if (method == METHOD_NEITHER || InputBufferLength > WDM_SYSTEM_BUFFER_SIZE ||
	    (method == METHOD_BUFFERED && OutputBufferLength > WDM_SYSTEM_BUFFER_SIZE))
		return NULL;
	irp = IoAllocateIrp(DeviceObject->StackSize, FALSE);
	if (!irp)
		return NULL;
	irp->RequestorMode = KernelMode;
	irp->UserIosb = IoStatusBlock;
	irp->UserEvent = Event;
	irp->UserBuffer = OutputBuffer;
	irp->AssociatedIrp.SystemBuffer = irp->Priv.Buffer;
	irp->Priv.Method = method;
	irp->Priv.OutputLength = OutputBufferLength;
	if (InputBufferLength)
		wdm_copy(irp->Priv.Buffer, InputBuffer, InputBufferLength);
	if (method != METHOD_BUFFERED && OutputBuffer) {
		irp->Priv.Mdl.StartVa = OutputBuffer;
		irp->Priv.Mdl.PhysicalAddress = (PHYSICAL_ADDRESS)OutputBuffer;
		irp->Priv.Mdl.ByteCount = OutputBufferLength;
		irp->MdlAddress = &irp->Priv.Mdl;
	}
	s = IoGetNextIrpStackLocation(irp);
	s->MajorFunction = InternalDeviceIoControl ?
				   IRP_MJ_INTERNAL_DEVICE_CONTROL :
				   IRP_MJ_DEVICE_CONTROL;
	s->Parameters.DeviceIoControl.IoControlCode = IoControlCode;
	s->Parameters.DeviceIoControl.InputBufferLength = InputBufferLength;
	s->Parameters.DeviceIoControl.OutputBufferLength = OutputBufferLength;
	return irp;
}

void wdm_iomgr_check_leaks(void)
{
	struct wdm_cpu *c = wdm_cpu();
	unsigned int i;

	if (!irp_pool)
		return;
	for (i = 0; i < IRP_POOL; i++) {
		PIRP irp = &irp_pool[i];
		const char *prev;

		if (irp->Priv.State == WDM_IRP_FREE) {
			check_snapshot(irp);
			continue;
		}
		prev = wdm_enter(c, irp->Priv.Owner);
		wdm_violation(WDM_V_IRP_LEAK,
			      "IRP never completed irp=%p id=%u ioctl=0x%x",
			      (void *)irp, irp->Priv.Id,
			      irp->Tail.Overlay.CurrentStackLocation >= irp->Stack &&
			      irp->CurrentLocation <= irp->StackCount ?
				      IoGetCurrentIrpStackLocation(irp)
					      ->Parameters.DeviceIoControl.IoControlCode :
				      0);
		c->routine = prev;
	}
}
