// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/*
 * Dispatch routines of the DMA driver: create/close/cleanup, and
 * DispatchDeviceControl, which checks a copy or fill request completely
 * (nothing the caller passes is trusted: offsets and lengths must lie
 * inside the output buffer the I/O manager described with the MDL,
 * without overflow; a copy's ranges must not overlap), marks it pending
 * and queues it with IoStartPacket. Bad requests are completed here with
 * STATUS_INVALID_PARAMETER / STATUS_BUFFER_TOO_SMALL /
 * STATUS_INVALID_DEVICE_REQUEST and never reach the device.
 *
 * The cancel routine is the classic StartIo one: a queued IRP is removed
 * from the device queue and completed with STATUS_CANCELLED; the IRP the
 * channel holds (CurrentIrp) is left to finish (DriverStartIo clears the
 * cancel routine before it programs the device).
 */
#include "dmadrv/dmadrv.h"

static NTSTATUS complete_now(PIRP Irp, NTSTATUS st)
{
	IRQL_REQUIRES_MAX(DISPATCH_LEVEL);
	Irp->IoStatus.Status = st;
	Irp->IoStatus.Information = 0;
	IoCompleteRequest(Irp, IO_NO_INCREMENT);
	return st;
}

NTSTATUS dmadrv_dispatch_create_close(PDEVICE_OBJECT DeviceObject, PIRP Irp)
{
	IRQL_REQUIRES(PASSIVE_LEVEL);
	(void)DeviceObject;
	return complete_now(Irp, STATUS_SUCCESS);
}

static DRIVER_CANCEL dmadrv_cancel;

static void dmadrv_cancel(PDEVICE_OBJECT DeviceObject, PIRP Irp)
{
	struct dmadrv_chan *x = DeviceObject->DeviceExtension;

	IRQL_REQUIRES(DISPATCH_LEVEL);
	if (Irp == DeviceObject->CurrentIrp) {
		IoReleaseCancelSpinLock(Irp->CancelIrql);
		return;
	}
	KeRemoveEntryDeviceQueue(&DeviceObject->DeviceQueue,
				 &Irp->Tail.Overlay.DeviceQueueEntry);
	IoReleaseCancelSpinLock(Irp->CancelIrql);
	x->drv->stats.irps_cancelled++;
	complete_now(Irp, STATUS_CANCELLED);
}

/* a + b <= limit, without overflow. */
static bool fits(uint64_t a, uint64_t b, uint64_t limit)
{
	return a <= limit && b <= limit - a;
}

static NTSTATUS check_request(PIRP Irp, ULONG code)
{
	PIO_STACK_LOCATION s = IoGetCurrentIrpStackLocation(Irp);
	const struct dmadrv_xfer *r = Irp->AssociatedIrp.SystemBuffer;
	uint64_t size;

	IRQL_REQUIRES_MAX(DISPATCH_LEVEL);
	if (code != IOCTL_DMADRV_COPY && code != IOCTL_DMADRV_FILL)
		return STATUS_INVALID_DEVICE_REQUEST;
	if (s->Parameters.DeviceIoControl.InputBufferLength < sizeof(*r) || !r)
		return STATUS_INVALID_PARAMETER;
	if (!Irp->MdlAddress)
		return STATUS_BUFFER_TOO_SMALL;
	size = MmGetMdlByteCount(Irp->MdlAddress);
	if (!r->len || r->len > DMADRV_MAX_REQUEST)
		return STATUS_INVALID_PARAMETER;
	if (!fits(r->dst_off, r->len, size))
		return STATUS_BUFFER_TOO_SMALL;
	if (code == IOCTL_DMADRV_COPY) {
		if (!fits(r->src_off, r->len, size))
			return STATUS_BUFFER_TOO_SMALL;
		if (r->src_off < r->dst_off + r->len &&
		    r->dst_off < r->src_off + r->len)
			return STATUS_INVALID_PARAMETER; /* overlap */
	}
	return STATUS_SUCCESS;
}

NTSTATUS dmadrv_dispatch_device_control(PDEVICE_OBJECT DeviceObject, PIRP Irp)
{
	struct dmadrv_chan *x = DeviceObject->DeviceExtension;
	PIO_STACK_LOCATION s = IoGetCurrentIrpStackLocation(Irp);
	NTSTATUS st;

	IRQL_REQUIRES_MAX(DISPATCH_LEVEL);
	st = check_request(Irp, s->Parameters.DeviceIoControl.IoControlCode);
	if (!NT_SUCCESS(st)) {
		x->drv->stats.irps_rejected++;
		return complete_now(Irp, st);
	}
	IoMarkIrpPending(Irp);
	IoStartPacket(DeviceObject, Irp, NULL, dmadrv_cancel);
	return STATUS_PENDING;
}
