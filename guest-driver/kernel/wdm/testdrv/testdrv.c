// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/*
 * testdrv: a loopback driver with the full WDM structure of a DMA
 * driver, over a software "device", to prove the WDM layer before the
 * DMA device exists.
 *
 *   DriverEntry: IoCreateDevice("\Device\testdrv"), dispatch routines,
 *     DriverStartIo, IoInitializeDpcRequest(DpcForIsr), two message
 *     interrupts (IoConnectInterruptEx, message-based), the device
 *     latency timer and the watchdog timer with their DPCs.
 *   DispatchDeviceControl: checks the request, IoMarkIrpPending,
 *     IoStartPacket with a cancel routine, STATUS_PENDING.
 *   StartIo: clears the cancel routine, stamps the StartIo sequence
 *     number, "programs the device" under KeSynchronizeExecution (copies
 *     the data into the device's buffer), arms the watchdog and starts
 *     the device (at once, or after delay_ms through the latency timer).
 *   The device finishing = setting its status register and sending
 *     message 0 (a self-IPI on that message's vector: what the MSI-X
 *     write of the real device will do).
 *   ISR (message 0): reads and acknowledges the status, IoRequestDpc.
 *   DpcForIsr: claims the request from the device, cancels the watchdog,
 *     copies the device buffer back inverted (system buffer, or the MDL
 *     for METHOD_OUT_DIRECT), IoCompleteRequest, IoStartNextPacket.
 *   Watchdog DPC: the device never interrupted: claims the request,
 *     completes it with STATUS_IO_TIMEOUT, starts the next.
 *   Cancel routine: a queued IRP is removed from the device queue and
 *     completed with STATUS_CANCELLED; the one the device holds is left
 *     to finish.
 *
 * Claiming: the device's current request (hw_irp) is taken under the
 * interrupt spin lock (KeSynchronizeExecution), so exactly one of
 * DpcForIsr and the watchdog completes it.
 */
#include "cpu.h"
#include "kernel.h"
#include "lapic.h"
#include "platform.h"
#include "steal.h"
#include "wdm/testdrv/testdrv.h"
#include "wdm/wdm_end.h"

#define HW_DONE 1u

struct testdrv_ext {
	PDEVICE_OBJECT dev;
	PIO_INTERRUPT_MESSAGE_INFO msi;
	KTIMER latency_timer;
	KDPC latency_dpc;
	KTIMER watchdog;
	KDPC watchdog_dpc;
	KSPIN_LOCK lock;
	KEVENT never; /* the irql bug waits on it */
	uint64_t seq;
	/* The device: status register, buffer, the request it holds. */
	volatile uint32_t hw_status;
	uint32_t hw_len;
	uint8_t hw_buf[TESTDRV_MAX_DATA];
	PIRP hw_irp;
};

const char *const testdrv_bug_names[TESTDRV_BUG_COUNT] = {
	[TESTDRV_BUG_NONE] = "none",
	[TESTDRV_BUG_DOUBLE_COMPLETE] = "double-complete",
	[TESTDRV_BUG_IRQL] = "irql",
	[TESTDRV_BUG_LEAK] = "leak",
	[TESTDRV_BUG_SLOW_ISR] = "slow-isr",
	[TESTDRV_BUG_SLOW_DPC] = "slow-dpc",
	[TESTDRV_BUG_SPINLOCK] = "spinlock",
	[TESTDRV_BUG_TOUCH] = "touch-after",
};

const char *const testdrv_bug_kinds[TESTDRV_BUG_COUNT] = {
	[TESTDRV_BUG_NONE] = "",
	[TESTDRV_BUG_DOUBLE_COMPLETE] = "irp_double_complete",
	[TESTDRV_BUG_IRQL] = "irql",
	[TESTDRV_BUG_LEAK] = "irp_not_completed",
	[TESTDRV_BUG_SLOW_ISR] = "isr_time",
	[TESTDRV_BUG_SLOW_DPC] = "dpc_time",
	[TESTDRV_BUG_SPINLOCK] = "spinlock",
	[TESTDRV_BUG_TOUCH] = "irp_after_complete",
};

struct testdrv_counters testdrv_counters;
static enum testdrv_bug bug;
static PDEVICE_OBJECT the_device;

/* Busy for `cycles` TSC cycles of the CPU's own time: the host's steal
 * time does not count, as the verifier measures (the slow-isr and
 * slow-dpc bugs must exceed the limit however loaded the host is). */
static void spin_cycles(uint64_t cycles)
{
	unsigned int cpu = this_cpu()->index;
	uint64_t s0 = steal_ns_own(cpu), t0 = rdtsc();

	while (rdtsc() - t0 < cycles + steal_ns_to_tsc(steal_ns_own(cpu) - s0))
		cpu_relax();
}

static NTSTATUS complete_now(PIRP Irp, NTSTATUS st, ULONG_PTR info)
{
	Irp->IoStatus.Status = st;
	Irp->IoStatus.Information = info;
	IoCompleteRequest(Irp, IO_NO_INCREMENT);
	return st;
}

static NTSTATUS testdrv_create_close(PDEVICE_OBJECT DeviceObject, PIRP Irp)
{
	(void)DeviceObject;
	return complete_now(Irp, STATUS_SUCCESS, 0);
}

static void testdrv_cancel(PDEVICE_OBJECT DeviceObject, PIRP Irp)
{
	if (Irp == DeviceObject->CurrentIrp) {
		/* The device has it (StartIo clears the routine first, so
		 * this is the window before it did): let it finish. */
		IoReleaseCancelSpinLock(Irp->CancelIrql);
		return;
	}
	KeRemoveEntryDeviceQueue(&DeviceObject->DeviceQueue,
				 &Irp->Tail.Overlay.DeviceQueueEntry);
	IoReleaseCancelSpinLock(Irp->CancelIrql);
	testdrv_counters.cancelled++;
	complete_now(Irp, STATUS_CANCELLED, 0);
}

static NTSTATUS testdrv_device_control(PDEVICE_OBJECT DeviceObject, PIRP Irp)
{
	PIO_STACK_LOCATION s = IoGetCurrentIrpStackLocation(Irp);
	ULONG code = s->Parameters.DeviceIoControl.IoControlCode;
	ULONG in = s->Parameters.DeviceIoControl.InputBufferLength;
	ULONG out = s->Parameters.DeviceIoControl.OutputBufferLength;
	const struct testdrv_req *r = Irp->AssociatedIrp.SystemBuffer;

	if (code != IOCTL_TESTDRV_LOOPBACK && code != IOCTL_TESTDRV_DIRECT)
		return complete_now(Irp, STATUS_INVALID_DEVICE_REQUEST, 0);
	if (in < sizeof(*r) || r->len > TESTDRV_MAX_DATA)
		return complete_now(Irp, STATUS_INVALID_PARAMETER, 0);
	if ((code == IOCTL_TESTDRV_LOOPBACK && out < sizeof(*r)) ||
	    (code == IOCTL_TESTDRV_DIRECT &&
	     (!Irp->MdlAddress || MmGetMdlByteCount(Irp->MdlAddress) < r->len)))
		return complete_now(Irp, STATUS_BUFFER_TOO_SMALL, 0);
	IoMarkIrpPending(Irp);
	IoStartPacket(DeviceObject, Irp, NULL, testdrv_cancel);
	return STATUS_PENDING;
}

/* ---- The device ---- */

static void device_interrupt(struct testdrv_ext *x)
{
	x->hw_status |= HW_DONE;
	lapic_self_ipi((uint8_t)x->msi->MessageInfo[0].Vector);
}

static void testdrv_latency_dpc(PKDPC Dpc, PVOID Context, PVOID a1, PVOID a2)
{
	struct testdrv_ext *x = Context;

	(void)Dpc, (void)a1, (void)a2;
	device_interrupt(x);
}

struct program_ctx {
	struct testdrv_ext *x;
	PIRP irp;
	const struct testdrv_req *req;
};

static BOOLEAN program_device(PVOID Context)
{
	struct program_ctx *p = Context;

	testdrv_counters.irql_in_sync = KeGetCurrentIrql();
	testdrv_counters.if_in_sync = (read_rflags() & RFLAGS_IF) != 0;
	p->x->hw_irp = p->irp;
	p->x->hw_len = p->req->len;
	memcpy(p->x->hw_buf, p->req->data, p->req->len);
	return TRUE;
}

/* Take the device's request away from it (one taker wins). */
static BOOLEAN claim_device(PVOID Context)
{
	struct program_ctx *p = Context;

	p->irp = p->x->hw_irp;
	p->x->hw_irp = NULL;
	return p->irp != NULL;
}

static void testdrv_start_io(PDEVICE_OBJECT DeviceObject, PIRP Irp)
{
	struct testdrv_ext *x = DeviceObject->DeviceExtension;
	struct testdrv_req *r = Irp->AssociatedIrp.SystemBuffer;
	struct program_ctx p = { x, Irp, r };
	LARGE_INTEGER due;
	KIRQL old;

	IoAcquireCancelSpinLock(&old);
	IoSetCancelRoutine(Irp, NULL);
	IoReleaseCancelSpinLock(old);
	r->seq = ++x->seq;
	KeSynchronizeExecution(&x->msi->Interrupts[0], program_device, &p);
	due.QuadPart = -(LONGLONG)(r->delay_ms + TESTDRV_WATCHDOG_MS) * 10000;
	KeSetTimer(&x->watchdog, due, &x->watchdog_dpc);
	if (r->flags & TESTDRV_F_NO_INTERRUPT)
		return;
	if (!r->delay_ms) {
		device_interrupt(x);
		return;
	}
	due.QuadPart = -(LONGLONG)r->delay_ms * 10000;
	KeSetTimer(&x->latency_timer, due, &x->latency_dpc);
}

static BOOLEAN testdrv_isr(PKINTERRUPT Interrupt, PVOID ServiceContext,
			   ULONG MessageId)
{
	struct testdrv_ext *x = ServiceContext;
	uint32_t status;

	(void)Interrupt;
	if (MessageId < TESTDRV_MESSAGES)
		testdrv_counters.isr[MessageId]++;
	testdrv_counters.irql_in_isr = KeGetCurrentIrql();
	if (MessageId != 0)
		return TRUE; /* message 1: the error message, nothing to do */
	status = x->hw_status;
	if (!(status & HW_DONE))
		return FALSE;
	x->hw_status = 0; /* acknowledge */
	IoRequestDpc(x->dev, x->dev->CurrentIrp, (PVOID)(uintptr_t)status);
	if (bug == TESTDRV_BUG_SLOW_ISR) {
		uint64_t isr, dpc;

		wdm_time_limits(&isr, &dpc);
		spin_cycles(2 * isr);
	}
	return TRUE;
}

static void finish(struct testdrv_ext *x, PIRP irp)
{
	struct testdrv_req *r = irp->AssociatedIrp.SystemBuffer;
	PIO_STACK_LOCATION s = IoGetCurrentIrpStackLocation(irp);
	ULONG_PTR info;
	uint32_t i;

	KeAcquireSpinLockAtDpcLevel(&x->lock);
	if (bug == TESTDRV_BUG_SPINLOCK)
		KeAcquireSpinLockAtDpcLevel(&x->lock);
	if (s->Parameters.DeviceIoControl.IoControlCode == IOCTL_TESTDRV_DIRECT) {
		uint8_t *dst = (uint8_t *)MmGetMdlPhysicalAddress(irp->MdlAddress);

		for (i = 0; i < x->hw_len; i++)
			dst[i] = (uint8_t)~x->hw_buf[i];
		info = x->hw_len;
	} else {
		for (i = 0; i < x->hw_len; i++)
			r->data[i] = (uint8_t)~x->hw_buf[i];
		info = sizeof(*r);
	}
	if (bug == TESTDRV_BUG_SPINLOCK)
		KeReleaseSpinLockFromDpcLevel(&x->lock);
	KeReleaseSpinLockFromDpcLevel(&x->lock);
	if (bug == TESTDRV_BUG_LEAK)
		return;
	irp->IoStatus.Status = STATUS_SUCCESS;
	irp->IoStatus.Information = info;
	IoCompleteRequest(irp, IO_NO_INCREMENT);
	if (bug == TESTDRV_BUG_DOUBLE_COMPLETE)
		IoCompleteRequest(irp, IO_NO_INCREMENT);
	if (bug == TESTDRV_BUG_TOUCH)
		irp->IoStatus.Information = 0xdead;
}

static void testdrv_dpc_for_isr(PKDPC Dpc, PDEVICE_OBJECT DeviceObject,
				PIRP Irp, PVOID Context)
{
	struct testdrv_ext *x = DeviceObject->DeviceExtension;
	struct program_ctx p = { x, NULL, NULL };

	(void)Dpc, (void)Irp, (void)Context;
	testdrv_counters.dpc_for_isr++;
	if (!KeSynchronizeExecution(&x->msi->Interrupts[0], claim_device, &p))
		return; /* the watchdog got it first */
	KeCancelTimer(&x->watchdog);
	if (bug == TESTDRV_BUG_IRQL) {
		LARGE_INTEGER t = { .QuadPart = -10000 };

		KeWaitForSingleObject(&x->never, Executive, KernelMode, FALSE, &t);
	}
	if (bug == TESTDRV_BUG_SLOW_DPC) {
		uint64_t isr, dpc;

		wdm_time_limits(&isr, &dpc);
		spin_cycles(2 * dpc);
	}
	finish(x, p.irp);
	IoStartNextPacket(DeviceObject, TRUE);
}

static void testdrv_watchdog_dpc(PKDPC Dpc, PVOID Context, PVOID a1, PVOID a2)
{
	struct testdrv_ext *x = Context;
	struct program_ctx p = { x, NULL, NULL };

	(void)Dpc, (void)a1, (void)a2;
	if (!KeSynchronizeExecution(&x->msi->Interrupts[0], claim_device, &p))
		return; /* DpcForIsr got it */
	testdrv_counters.watchdog_fired++;
	complete_now(p.irp, STATUS_IO_TIMEOUT, 0);
	IoStartNextPacket(x->dev, TRUE);
}

static void testdrv_unload(PDRIVER_OBJECT DriverObject)
{
	PDEVICE_OBJECT dev = DriverObject->DeviceObject;
	struct testdrv_ext *x;

	if (!dev)
		return;
	x = dev->DeviceExtension;
	KeCancelTimer(&x->watchdog);
	KeCancelTimer(&x->latency_timer);
	IoDisconnectInterruptEx(x->msi);
	IoDeleteDevice(dev);
	the_device = NULL;
}

static NTSTATUS testdrv_entry(PDRIVER_OBJECT DriverObject,
			      const char *RegistryPath)
{
	IO_CONNECT_INTERRUPT_PARAMETERS ip = { 0 };
	PDEVICE_OBJECT dev;
	struct testdrv_ext *x;
	NTSTATUS st;
	unsigned int i;

	(void)RegistryPath;
	st = IoCreateDevice(DriverObject, sizeof(*x),
			    "\\Device\\" TESTDRV_DEVICE_NAME,
			    FILE_DEVICE_UNKNOWN, 0, FALSE, &dev);
	if (!NT_SUCCESS(st))
		return st;
	x = dev->DeviceExtension;
	x->dev = dev;
	DriverObject->MajorFunction[IRP_MJ_CREATE] = testdrv_create_close;
	DriverObject->MajorFunction[IRP_MJ_CLOSE] = testdrv_create_close;
	DriverObject->MajorFunction[IRP_MJ_CLEANUP] = testdrv_create_close;
	DriverObject->MajorFunction[IRP_MJ_DEVICE_CONTROL] =
		testdrv_device_control;
	DriverObject->DriverStartIo = testdrv_start_io;
	DriverObject->DriverUnload = testdrv_unload;
	IoInitializeDpcRequest(dev, testdrv_dpc_for_isr);
	KeInitializeTimer(&x->latency_timer);
	KeInitializeDpc(&x->latency_dpc, testdrv_latency_dpc, x);
	KeInitializeTimer(&x->watchdog);
	KeInitializeDpc(&x->watchdog_dpc, testdrv_watchdog_dpc, x);
	KeInitializeSpinLock(&x->lock);
	KeInitializeEvent(&x->never, NotificationEvent, FALSE);

	ip.Version = CONNECT_MESSAGE_BASED;
	ip.MessageBased.PhysicalDeviceObject = dev;
	ip.MessageBased.MessageServiceRoutine = testdrv_isr;
	ip.MessageBased.ServiceContext = x;
	ip.MessageBased.MessageCount = TESTDRV_MESSAGES;
	ip.MessageBased.ConnectionInfo = &x->msi;
	st = IoConnectInterruptEx(&ip);
	if (!NT_SUCCESS(st)) {
		IoDeleteDevice(dev);
		return st;
	}
	for (i = 0; i < TESTDRV_MESSAGES; i++)
		testdrv_counters.vector[i] = x->msi->MessageInfo[i].Vector;
	dev->Flags |= DO_DIRECT_IO;
	dev->Flags &= ~DO_DEVICE_INITIALIZING;
	the_device = dev;
	return STATUS_SUCCESS;
}

NTSTATUS testdrv_load(enum testdrv_bug b, PDRIVER_OBJECT *out)
{
	bug = b;
	return wdm_load_driver("testdrv", testdrv_entry, out);
}

PDEVICE_OBJECT testdrv_device(void)
{
	return the_device;
}

PKINTERRUPT testdrv_interrupt(unsigned int id)
{
	struct testdrv_ext *x = the_device->DeviceExtension;

	return &x->msi->Interrupts[id < TESTDRV_MESSAGES ? id : 0];
}
