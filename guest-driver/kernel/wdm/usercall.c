// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/*
 * The user-mode API of the I/O manager, as a Windows test program sees
 * it: open a device by name (a handle), DeviceIoControl synchronous or
 * overlapped, wait for an overlapped request (GetOverlappedResultEx
 * with a timeout), cancel one (CancelIoEx), close (cancels what is
 * still outstanding on the handle, then IRP_MJ_CLEANUP and
 * IRP_MJ_CLOSE).
 *
 * Buffers: METHOD_BUFFERED (input copied into the IRP's system buffer,
 * output copied back at completion: small control structures, at most
 * WDM_SYSTEM_BUFFER_SIZE bytes each way) and METHOD_IN_DIRECT /
 * METHOD_OUT_DIRECT (input buffered, the output buffer described by
 * Irp->MdlAddress: no copy; its PhysicalAddress is the user address,
 * because the VMM identity-maps guest RAM and user buffers live in it,
 * which is what the DMA driver programs). METHOD_NEITHER is refused.
 * Every user pointer and length is checked with user_range_ok before the
 * IRP is built; user regions are never unmapped, so completion may write
 * to them later from a DPC (Windows would use an APC in the thread).
 *
 * Each request has a record in a fixed pool (struct wdm_request): the
 * completion event and status the waiter reads, the user OVERLAPPED
 * address that names it. A synchronous call waits at most
 * SYNC_TIMEOUT_MS and then returns STATUS_IO_TIMEOUT, leaving the record
 * to the late completion (the verifier reports an IRP never completed).
 *
 * System calls enter with interrupts off (interrupt gate); these run at
 * PASSIVE_LEVEL with interrupts on, as Windows system services do, and
 * turn them off again before returning to isr.S (which swaps GS back).
 */
#include "user.h"
#include "wdm/internal.h"
#include "wdm/wdm_abi.h"
#include "wdm/wdm_syscall.h"

#define MAX_FILES 8
#define MAX_REQUESTS 48
#define SYNC_TIMEOUT_MS 5000
#define CLOSE_WAIT_MS 500
#define MAX_NAME 31

static FILE_OBJECT files[MAX_FILES];
static struct wdm_request requests[MAX_REQUESTS];
static LIST_ENTRY file_irps[MAX_FILES]; /* outstanding IRPs per file */

static void sys_enter(void)
{
	irq_enable();
}

static int64_t sys_leave(int64_t ret)
{
	struct wdm_cpu *c = wdm_cpu();

	if (c->irql != PASSIVE_LEVEL) {
		wdm_violation(WDM_V_IRQL, "system call returns at IRQL %u",
			      c->irql);
		KeLowerIrql(PASSIVE_LEVEL);
	}
	irq_disable();
	return ret;
}

static struct wdm_request *request_alloc(void)
{
	unsigned int i;
	uint64_t flags = wdm_irq_save();

	for (i = 0; i < MAX_REQUESTS; i++) {
		if (!requests[i].InUse) {
			wdm_zero(&requests[i], sizeof(requests[i]));
			requests[i].InUse = true;
			KeInitializeEvent(&requests[i].Done, NotificationEvent,
					  FALSE);
			wdm_irq_restore(flags);
			return &requests[i];
		}
	}
	wdm_irq_restore(flags);
	return NULL;
}

static void request_free(struct wdm_request *r)
{
	r->InUse = false;
}

static PFILE_OBJECT file_of(uint64_t handle)
{
	if (handle < 1 || handle > MAX_FILES || !files[handle - 1].InUse)
		return NULL;
	return &files[handle - 1];
}

void wdm_request_complete(PIRP Irp)
{
	struct wdm_request *r = Irp->Priv.Request;

	r->Iosb = Irp->IoStatus;
	if (Irp->Priv.Method == METHOD_BUFFERED && Irp->Priv.UserOutput &&
	    !(Irp->IoStatus.Status & 0x80000000)) {
		ULONG_PTR n = Irp->IoStatus.Information;

		if (n > Irp->Priv.OutputLength)
			n = Irp->Priv.OutputLength;
		wdm_copy(Irp->Priv.UserOutput, Irp->Priv.Buffer, n);
	}
	if (r->UserOverlapped) {
		struct u_overlapped *ov = (void *)r->UserOverlapped;

		ov->Internal = (uint64_t)(int64_t)r->Iosb.Status;
		ov->InternalHigh = r->Iosb.Information;
	}
	RemoveEntryList(&Irp->Priv.Link);
	r->Irp = NULL;
	KeSetEvent(&r->Done, IO_NO_INCREMENT, FALSE);
	if (r->Orphan)
		request_free(r);
}

/* Build a user IRP for file f; NULL if the pools are exhausted. */
static PIRP user_irp(PFILE_OBJECT f, struct wdm_request *r, UCHAR major)
{
	PIRP irp = IoAllocateIrp(f->DeviceObject->StackSize, FALSE);
	PIO_STACK_LOCATION s;
	uint64_t flags;

	if (!irp)
		return NULL;
	irp->RequestorMode = UserMode;
	irp->AssociatedIrp.SystemBuffer = irp->Priv.Buffer;
	irp->Priv.Request = r;
	irp->Priv.File = f;
	r->Irp = irp;
	r->File = f;
	s = IoGetNextIrpStackLocation(irp);
	s->MajorFunction = major;
	s->FileObject = f;
	flags = wdm_irq_save();
	InsertTailList(&file_irps[f - files], &irp->Priv.Link);
	wdm_irq_restore(flags);
	return irp;
}

/* Wait for r (at most ms), return its status; frees r unless it timed
 * out (then it is left to the late completion). */
static NTSTATUS wait_request(struct wdm_request *r, uint64_t ms)
{
	LARGE_INTEGER t = { .QuadPart = -(LONGLONG)(ms * 10000) };
	uint64_t flags;

	if (KeWaitForSingleObject(&r->Done, Executive, KernelMode, FALSE,
				  ms == U_WDM_INFINITE ? NULL : &t) ==
	    STATUS_TIMEOUT) {
		flags = wdm_irq_save();
		if (r->Irp)
			r->Orphan = true;
		wdm_irq_restore(flags);
		if (r->Orphan)
			return STATUS_IO_TIMEOUT;
	}
	request_free(r);
	return r->Iosb.Status; /* the record is static: still readable */
}

static NTSTATUS send_simple(PFILE_OBJECT f, UCHAR major)
{
	struct wdm_request *r = request_alloc();
	PIRP irp;

	if (!r)
		return STATUS_INSUFFICIENT_RESOURCES;
	irp = user_irp(f, r, major);
	if (!irp) {
		request_free(r);
		return STATUS_INSUFFICIENT_RESOURCES;
	}
	IoCallDriver(f->DeviceObject, irp);
	return wait_request(r, SYNC_TIMEOUT_MS);
}

int64_t sys_wdm_open(uint64_t name, uint64_t len, uint64_t a2, uint64_t a3,
		     uint64_t a4)
{
	PDEVICE_OBJECT dev;
	unsigned int i;
	NTSTATUS st;

	(void)a2, (void)a3, (void)a4;
	if (!len || len > MAX_NAME || !user_range_ok(name, len))
		return STATUS_ACCESS_VIOLATION;
	sys_enter();
	dev = wdm_find_device((const char *)name, len);
	if (!dev)
		return sys_leave(STATUS_NO_SUCH_DEVICE);
	for (i = 0; i < MAX_FILES && files[i].InUse; i++)
		;
	if (i == MAX_FILES)
		return sys_leave(STATUS_INSUFFICIENT_RESOURCES);
	wdm_zero(&files[i], sizeof(files[i]));
	files[i].InUse = TRUE;
	files[i].DeviceObject = dev;
	files[i].Handle = i + 1;
	InitializeListHead(&file_irps[i]);
	st = send_simple(&files[i], IRP_MJ_CREATE);
	if (!NT_SUCCESS(st)) {
		files[i].InUse = FALSE;
		return sys_leave(st);
	}
	return sys_leave(i + 1);
}

int64_t sys_wdm_ioctl(uint64_t args, uint64_t a1, uint64_t a2, uint64_t a3,
		      uint64_t a4)
{
	struct u_ioctl_args a;
	struct wdm_request *r;
	PFILE_OBJECT f;
	PIO_STACK_LOCATION s;
	ULONG method;
	PIRP irp;
	NTSTATUS st;

	(void)a1, (void)a2, (void)a3, (void)a4;
	if (!user_range_ok(args, sizeof(a)))
		return STATUS_ACCESS_VIOLATION;
	wdm_copy(&a, (void *)args, sizeof(a));
	f = file_of(a.handle);
	if (!f)
		return STATUS_INVALID_HANDLE;
	method = IoControlMethod(a.code);
	if ((a.in_len && !user_range_ok(a.in, a.in_len)) ||
	    (a.out_len && !user_range_ok(a.out, a.out_len)) ||
	    (a.overlapped &&
	     !user_range_ok(a.overlapped, sizeof(struct u_overlapped))))
		return STATUS_ACCESS_VIOLATION;
	if (method == METHOD_NEITHER || a.in_len > WDM_SYSTEM_BUFFER_SIZE ||
	    (method == METHOD_BUFFERED && a.out_len > WDM_SYSTEM_BUFFER_SIZE))
		return STATUS_INVALID_PARAMETER;
	sys_enter();
	r = request_alloc();
	if (!r)
		return sys_leave(STATUS_INSUFFICIENT_RESOURCES);
	irp = user_irp(f, r, IRP_MJ_DEVICE_CONTROL);
	if (!irp) {
		request_free(r);
		return sys_leave(STATUS_INSUFFICIENT_RESOURCES);
	}
	irp->UserBuffer = (PVOID)a.out;
	irp->Priv.Method = method;
	irp->Priv.OutputLength = a.out_len;
	if (a.in_len)
		wdm_copy(irp->Priv.Buffer, (void *)a.in, a.in_len);
	if (method == METHOD_BUFFERED) {
		irp->Priv.UserOutput = (PVOID)a.out;
	} else if (a.out_len) {
		irp->Priv.Mdl.StartVa = (PVOID)a.out;
		irp->Priv.Mdl.PhysicalAddress = a.out; /* identity map */
		irp->Priv.Mdl.ByteCount = a.out_len;
		irp->MdlAddress = &irp->Priv.Mdl;
	}
	s = IoGetNextIrpStackLocation(irp);
	s->Parameters.DeviceIoControl.IoControlCode = a.code;
	s->Parameters.DeviceIoControl.InputBufferLength = a.in_len;
	s->Parameters.DeviceIoControl.OutputBufferLength = a.out_len;
	if (a.overlapped) {
		struct u_overlapped *ov = (void *)a.overlapped;

		ov->Internal = (uint64_t)(int64_t)STATUS_PENDING;
		ov->InternalHigh = 0;
		r->UserOverlapped = a.overlapped;
		IoCallDriver(f->DeviceObject, irp);
		if (r->Irp)
			return sys_leave(STATUS_PENDING);
		/* Completed already: the OVERLAPPED holds the result, the
		 * record is not needed (a later wait reads the OVERLAPPED). */
		st = r->Iosb.Status;
		request_free(r);
		return sys_leave(st);
	}
	IoCallDriver(f->DeviceObject, irp);
	st = wait_request(r, SYNC_TIMEOUT_MS);
	((struct u_ioctl_args *)args)->bytes_returned =
		st == STATUS_IO_TIMEOUT ? 0 : r->Iosb.Information;
	return sys_leave(st);
}

static struct wdm_request *request_of(uint64_t ov)
{
	unsigned int i;

	for (i = 0; i < MAX_REQUESTS; i++)
		if (requests[i].InUse && !requests[i].Orphan &&
		    requests[i].UserOverlapped == ov)
			return &requests[i];
	return NULL;
}

int64_t sys_wdm_wait(uint64_t ov, uint64_t ms, uint64_t a2, uint64_t a3,
		     uint64_t a4)
{
	struct wdm_request *r;
	LARGE_INTEGER t = { .QuadPart = -(LONGLONG)(ms * 10000) };
	NTSTATUS st;

	(void)a2, (void)a3, (void)a4;
	if (!user_range_ok(ov, sizeof(struct u_overlapped)))
		return STATUS_ACCESS_VIOLATION;
	r = request_of(ov);
	if (!r) {
		/* Completed and collected (or never submitted): like
		 * GetOverlappedResult, the answer is in the OVERLAPPED. */
		NTSTATUS done = (NTSTATUS)((struct u_overlapped *)ov)->Internal;

		return done == STATUS_PENDING ? STATUS_NOT_FOUND : done;
	}
	sys_enter();
	st = KeWaitForSingleObject(&r->Done, Executive, KernelMode, FALSE,
				   ms == U_WDM_INFINITE ? NULL : &t);
	if (st == STATUS_TIMEOUT)
		return sys_leave(STATUS_TIMEOUT);
	request_free(r);
	return sys_leave(r->Iosb.Status);
}

int64_t sys_wdm_cancel(uint64_t handle, uint64_t ov, uint64_t a2,
		       uint64_t a3, uint64_t a4)
{
	struct wdm_request *r;
	BOOLEAN cancelled = FALSE;
	KIRQL old;

	(void)a2, (void)a3, (void)a4;
	if (!file_of(handle))
		return STATUS_INVALID_HANDLE;
	sys_enter();
	/* At DISPATCH_LEVEL no DPC can complete the IRP under our feet. */
	KeRaiseIrql(DISPATCH_LEVEL, &old);
	r = request_of(ov);
	if (r && r->Irp && r->File == file_of(handle))
		cancelled = IoCancelIrp(r->Irp);
	KeLowerIrql(old);
	return sys_leave(cancelled ? STATUS_SUCCESS : STATUS_NOT_FOUND);
}

int64_t sys_wdm_close(uint64_t handle, uint64_t a1, uint64_t a2, uint64_t a3,
		      uint64_t a4)
{
	PFILE_OBJECT f = file_of(handle);
	uint64_t deadline;
	PLIST_ENTRY e;
	KIRQL old;
	NTSTATUS st;

	(void)a1, (void)a2, (void)a3, (void)a4;
	if (!f)
		return STATUS_INVALID_HANDLE;
	sys_enter();
	KeRaiseIrql(DISPATCH_LEVEL, &old);
	/* A cancel may complete the IRP and unlink it: rescan each time,
	 * skipping those already cancelled. */
rescan:
	for (e = file_irps[f - files].Flink; e != &file_irps[f - files];
	     e = e->Flink) {
		PIRP irp = CONTAINING_RECORD(e, IRP, Priv.Link);

		if (!irp->Cancel) {
			IoCancelIrp(irp);
			goto rescan;
		}
	}
	KeLowerIrql(old);
	deadline = lapic_ticks + CLOSE_WAIT_MS;
	while (!IsListEmpty(&file_irps[f - files]) && lapic_ticks < deadline)
		irq_enable_and_halt();
	/* IRPs the driver still holds are detached (self-linked), so their
	 * late completion cannot touch the list the next open reuses. */
	irq_disable();
	while (!IsListEmpty(&file_irps[f - files]))
		RemoveHeadList(&file_irps[f - files]);
	irq_enable();
	st = send_simple(f, IRP_MJ_CLEANUP);
	if (NT_SUCCESS(st))
		st = send_simple(f, IRP_MJ_CLOSE);
	f->InUse = FALSE;
	return sys_leave(st);
}

void wdm_usercall_init(void)
{
	unsigned int i;

	for (i = 0; i < MAX_FILES; i++)
		InitializeListHead(&file_irps[i]);
}
