// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/*
 * DriverEntry, AddDevice, StartDevice and Unload of the DMA driver.
 *
 * There is no Plug and Play manager in the dmalab kernel, so DriverEntry
 * plays its part: it finds the controller in the PCI scan (the "PDO"),
 * calls dmadrv_add_device (one device object per channel,
 * "\Device\dmadrv<c>") and dmadrv_start_device (what IRP_MN_START_DEVICE
 * does on Windows with the translated resources: map the BARs, connect
 * the message interrupts, program the MSI-X table, bring the rings up).
 *
 * Messages: one per channel (MessageId = channel) plus the error message
 * (MessageId = channels), connected with IoConnectInterruptEx
 * (CONNECT_MESSAGE_BASED); table entry i gets MessageInfo[i]'s address
 * (the CPU the affinity policy chose) and data. All messages share one
 * interrupt spin lock. The DpcForIsr and the watchdog DPC of each
 * channel are targeted at the CPU that runs DriverEntry.
 *
 * Unload, the order PLX9x5x and Linux's ioat_stop follow: disconnect the
 * interrupt and stop the hardware (mask the messages, reset the
 * channels), so no ISR can queue a DPC again; then cancel the watchdog
 * timers, remove the queued DPCs and flush the ones running
 * (KeFlushQueuedDpcs); then complete what is outstanding (the IRP a
 * channel holds, then each queued one through StartIo, all with
 * STATUS_DEVICE_REMOVED); then delete the device objects.
 *
 * Parameters (command line, docs/dma-driver.md): dmadrv.retries,
 * dmadrv.watchdog_ms, dmadrv.timeout_ms, dmadrv.max_xfer, dmadrv.bug,
 * markers. They are read once, at load.
 */
#include "cmdline.h"
#include "dmadrv/dmadrv.h"
#include "kernel.h"

struct dmadrv dmadrv;

const char *const dmadrv_bug_names[DMADRV_BUG_COUNT] = {
	[DMADRV_BUG_NONE] = "none",
	[DMADRV_BUG_DOUBLE_COMPLETE] = "double-complete",
	[DMADRV_BUG_IRQL] = "irql",
	[DMADRV_BUG_ISR_STATE] = "isr-state",
};

static KSPIN_LOCK interrupt_lock;

static enum dmadrv_bug bug_from_cmdline(bool *bad)
{
	const char *v;
	size_t n;
	unsigned int i;

	IRQL_REQUIRES(PASSIVE_LEVEL);
	*bad = false;
	if (!cmdline_get("dmadrv.bug", &v, &n))
		return DMADRV_BUG_NONE;
	for (i = 0; i < DMADRV_BUG_COUNT; i++)
		if (str_eq_n(v, n, dmadrv_bug_names[i]))
			return (enum dmadrv_bug)i;
	*bad = true;
	return DMADRV_BUG_NONE;
}

bool dmadrv_bad_bug(void)
{
	bool bad;

	IRQL_REQUIRES(PASSIVE_LEVEL);
	bug_from_cmdline(&bad);
	return bad;
}

static uint32_t param(uint64_t v, uint64_t lo, uint64_t hi, uint32_t dflt)
{
	return v >= lo && v <= hi ? (uint32_t)v : dflt;
}

static bool markers_dflt;

static void read_params(struct dmadrv_params *p)
{
	bool bad;

	IRQL_REQUIRES(PASSIVE_LEVEL);
	p->retries = param(dmadev_arg_u64("dmadrv.retries", 3), 0, 100, 3);
	p->watchdog_ms =
		param(dmadev_arg_u64("dmadrv.watchdog_ms", 10), 1, 60000, 10);
	p->timeout_ms =
		param(dmadev_arg_u64("dmadrv.timeout_ms", 100), 1, 600000, 100);
	p->max_xfer = param(dmadev_arg_u64("dmadrv.max_xfer", 65536), 8,
			    DMADRV_MAX_REQUEST, 65536);
	p->markers = dmadev_arg_u64("markers", markers_dflt) != 0;
	p->bug = bug_from_cmdline(&bad);
}

/* AddDevice: one device object per channel. */
static NTSTATUS dmadrv_add_device(PDRIVER_OBJECT DriverObject,
				  struct dmadrv *d, unsigned int c)
{
	char name[32];
	PDEVICE_OBJECT dev;
	struct dmadrv_chan *x;
	NTSTATUS st;

	IRQL_REQUIRES(PASSIVE_LEVEL);
	ksnprintf(name, sizeof(name), "\\Device\\" DMADRV_DEVICE_PREFIX "%u", c);
	st = IoCreateDevice(DriverObject, sizeof(*x), name, FILE_DEVICE_UNKNOWN,
			    0, FALSE, &dev);
	if (!NT_SUCCESS(st))
		return st;
	x = dev->DeviceExtension;
	x->drv = d;
	x->dev = dev;
	x->index = c;
	x->ch = &d->dev.chan[c];
	KeInitializeSpinLock(&x->lock);
	KeInitializeTimer(&x->watchdog);
	KeInitializeDpc(&x->watchdog_dpc, dmadrv_watchdog_dpc, x);
	IoInitializeDpcRequest(dev, dmadrv_dpc_for_isr);
	/* The I/O manager runs on this CPU: the DPCs that call it too,
	 * wherever the interrupts are sent. */
	KeSetTargetProcessorDpc(&x->watchdog_dpc,
				(CHAR)KeGetCurrentProcessorNumber());
	KeSetTargetProcessorDpc(&dev->Dpc, (CHAR)KeGetCurrentProcessorNumber());
	dev->Flags |= DO_DIRECT_IO;
	d->chan[c] = x;
	return STATUS_SUCCESS;
}

/* MSI-X table entry <- a message's address (its destination APIC ID in
 * bits 19:12) and data. */
static void program_message(struct dmadrv *d, unsigned int entry,
			    const IO_INTERRUPT_MESSAGE_INFO_ENTRY *m)
{
	IRQL_REQUIRES(PASSIVE_LEVEL);
	dmadev_msix_program_to(&d->dev, entry, (int)m->MessageData,
			       (uint32_t)(m->MessageAddress >> 12) & 0xff, false);
}

/* StartDevice: interrupts, MSI-X table, channel rings. */
static NTSTATUS dmadrv_start_device(struct dmadrv *d)
{
	IO_CONNECT_INTERRUPT_PARAMETERS ip = { 0 };
	unsigned int i;
	NTSTATUS st;

	IRQL_REQUIRES(PASSIVE_LEVEL);
	KeInitializeSpinLock(&interrupt_lock);
	ip.Version = CONNECT_MESSAGE_BASED;
	ip.MessageBased.PhysicalDeviceObject = d->chan[0]->dev;
	ip.MessageBased.MessageServiceRoutine = dmadrv_isr;
	ip.MessageBased.ServiceContext = d;
	ip.MessageBased.SpinLock = &interrupt_lock;
	ip.MessageBased.MessageCount = d->channels + 1;
	ip.MessageBased.ConnectionInfo = &d->msi;
	ip.MessageBased.ConnectionContext = &d->interrupt;
	st = IoConnectInterruptEx(&ip);
	if (!NT_SUCCESS(st))
		return st;
	/* Table entry i = message i; entry `channels` is the device's error
	 * vector, our last message. */
	for (i = 0; i <= d->channels; i++)
		program_message(d, i < d->channels ? i : d->dev.channels,
				&d->msi->MessageInfo[i]);
	dmadev_msix_enable(&d->dev, true);
	for (i = 0; i < d->channels; i++) {
		struct dmadrv_chan *x = d->chan[i];
		KIRQL old;

		if (dmadev_chan_init(&d->dev, i, DMADRV_RING_ENTRIES))
			return STATUS_DEVICE_HARDWARE_ERROR;
		KeAcquireSpinLock(&x->lock, &old);
		dmadrv_sync_isr_cursor(x);
		KeReleaseSpinLock(&x->lock, old);
	}
	return STATUS_SUCCESS;
}

/* Unload, step 3: end the IRP x holds and, through StartIo (which ends
 * each at once while stopping), every IRP still queued. */
static void end_outstanding(struct dmadrv_chan *x)
{
	KIRQL old;

	IRQL_REQUIRES(PASSIVE_LEVEL);
	KeAcquireSpinLock(&x->lock, &old);
	if (x->irp)
		dmadrv_finish(x, STATUS_DEVICE_REMOVED);
	KeReleaseSpinLockFromDpcLevel(&x->lock);
	dmadrv_end_irp(x, false);
	KeLowerIrql(old);
}

static DRIVER_UNLOAD dmadrv_unload;

static void dmadrv_unload(PDRIVER_OBJECT DriverObject)
{
	struct dmadrv *d = &dmadrv;
	unsigned int i;
	KIRQL old;

	IRQL_REQUIRES(PASSIVE_LEVEL);
	(void)DriverObject;
	/* 1. No interrupt, no ISR, the hardware stopped. */
	WdmSetTraceCallback(NULL, NULL);
	if (d->msi) {
		for (i = 0; i < d->dev.nvec; i++)
			dmadev_msix_mask(&d->dev, i, true);
		IoDisconnectInterruptEx(d->msi);
	}
	for (i = 0; i < d->channels; i++) {
		struct dmadrv_chan *x = d->chan[i];

		if (!x)
			continue;
		KeAcquireSpinLock(&x->lock, &old);
		x->stopping = true;
		if (!d->removed)
			dmadev_chan_write32(x->ch, DMA_CH_CTRL, DMA_CTRL_RESET);
		KeReleaseSpinLock(&x->lock, old);
	}
	/* 2. No timer, no DPC queued or running. */
	for (i = 0; i < d->channels; i++) {
		if (!d->chan[i])
			continue;
		KeCancelTimer(&d->chan[i]->watchdog);
		KeRemoveQueueDpc(&d->chan[i]->watchdog_dpc);
		KeRemoveQueueDpc(&d->chan[i]->dev->Dpc);
	}
	KeFlushQueuedDpcs();
	/* 3. No IRP left. 4. Free. */
	for (i = 0; i < d->channels; i++) {
		if (!d->chan[i])
			continue;
		end_outstanding(d->chan[i]);
		IoDeleteDevice(d->chan[i]->dev);
		d->chan[i] = NULL;
	}
	d->msi = NULL;
	d->interrupt = NULL;
}

static DRIVER_INITIALIZE dmadrv_driver_entry;

static NTSTATUS dmadrv_driver_entry(PDRIVER_OBJECT DriverObject,
				    const char *RegistryPath)
{
	struct dmadrv *d = &dmadrv;
	unsigned int i;
	NTSTATUS st;
	int r;

	IRQL_REQUIRES(PASSIVE_LEVEL);
	(void)RegistryPath;
	d->driver = DriverObject;
	read_params(&d->params);
	DriverObject->MajorFunction[IRP_MJ_CREATE] = dmadrv_dispatch_create_close;
	DriverObject->MajorFunction[IRP_MJ_CLOSE] = dmadrv_dispatch_create_close;
	DriverObject->MajorFunction[IRP_MJ_CLEANUP] = dmadrv_dispatch_create_close;
	DriverObject->MajorFunction[IRP_MJ_DEVICE_CONTROL] =
		dmadrv_dispatch_device_control;
	DriverObject->DriverStartIo = dmadrv_start_io;
	DriverObject->DriverUnload = dmadrv_unload;

	r = dmadev_probe(&d->dev);
	if (r)
		return STATUS_NO_SUCH_DEVICE;
	d->channels = d->dev.channels < DMADRV_MAX_CHANNELS ?
			      d->dev.channels : DMADRV_MAX_CHANNELS;
	if (!d->channels)
		return STATUS_NO_SUCH_DEVICE;
	if (d->params.max_xfer > d->dev.max_xfer)
		d->params.max_xfer = d->dev.max_xfer;
	for (i = 0; i < d->channels; i++) {
		st = dmadrv_add_device(DriverObject, d, i);
		if (!NT_SUCCESS(st))
			goto undo;
	}
	st = dmadrv_start_device(d);
	if (!NT_SUCCESS(st))
		goto undo;
	if (d->params.markers)
		WdmSetTraceCallback(dmadrv_trace, d);
	for (i = 0; i < d->channels; i++)
		d->chan[i]->dev->Flags &= ~DO_DEVICE_INITIALIZING;
	return STATUS_SUCCESS;
undo:
	dmadrv_unload(DriverObject);
	return st;
}

NTSTATUS dmadrv_load(PDRIVER_OBJECT *out, bool markers_default)
{
	IRQL_REQUIRES(PASSIVE_LEVEL);
	markers_dflt = markers_default;
	return wdm_load_driver("dmadrv", dmadrv_driver_entry, out);
}

size_t dmadrv_result_fields(char *buf, size_t size)
{
	const struct dmadrv_stats *s = &dmadrv.stats;
	size_t n;

	IRQL_REQUIRES(PASSIVE_LEVEL);
	n = ksnprintf(buf, size,
		      "\"drv_irps\":%lu,\"irps_ok\":%lu,\"irps_failed\":%lu,\"irps_rejected\":%lu,\"irps_cancelled_queued\":%lu,\"transfers\":%lu,\"reprograms\":%lu,\"short_transfers\":%lu,\"retries\":%lu,\"resets\":%lu,\"watchdog_recoveries\":%lu,\"watchdog_timeouts\":%lu,\"drv_isrs\":%lu,\"error_isrs\":%lu,\"spurious\":%lu,\"drv_dpcs\":%lu,\"stale_records\":%lu,\"started_from_dpc\":%lu,\"watchdog_took_queued\":%lu",
		      s->irps, s->irps_ok, s->irps_failed, s->irps_rejected,
		      s->irps_cancelled, s->transfers, s->reprograms,
		      s->short_transfers, s->retries, s->resets,
		      s->watchdog_recoveries, s->watchdog_timeouts, s->isrs,
		      s->error_isrs, s->spurious, s->dpcs, s->stale_records,
		      s->started_from_dpc, s->watchdog_took_queued);
	if (n < size)
		n += ksnprintf(buf + n, size - n,
			       ",\"rec_ok\":%lu,\"rec_short\":%lu,\"rec_err_dma\":%lu,\"rec_aborted\":%lu,\"rec_err_fetch\":%lu,\"rec_err_halted\":%lu,\"rec_err_other\":%lu,\"fail_hw\":%lu,\"fail_io\":%lu,\"fail_timeout\":%lu,\"fail_removed\":%lu,\"fail_param\":%lu,\"first_fail_status\":\"0x%x\"",
			       s->status[DMA_ST_OK], s->status[DMA_ST_SHORT],
			       s->status[DMA_ST_ERR_DMA],
			       s->status[DMA_ST_ABORTED],
			       s->status[DMA_ST_ERR_FETCH],
			       s->status[DMA_ST_ERR_HALTED],
			       s->status[DMA_ST_ERR_SRC] +
				       s->status[DMA_ST_ERR_DST] +
				       s->status[DMA_ST_ERR_LEN] +
				       s->status[DMA_ST_ERR_OP],
			       s->fail_hw, s->fail_io, s->fail_timeout,
			       s->fail_removed, s->fail_param,
			       s->first_fail_status);
	return n;
}
