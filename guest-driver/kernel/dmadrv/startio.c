// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/*
 * DriverStartIo and the transfer machinery it shares with the DPCs.
 *
 * An IRP is cut into transfers of at most dmadrv.max_xfer bytes (the
 * driver's MaximumTransferLength, as a Windows DMA adapter's map
 * registers bound one transfer). One transfer per channel is in flight
 * at a time: StartIo posts the first, DpcForIsr posts the next one when
 * a record says the last one finished (or moved only part of its bytes:
 * a short transfer continues where it stopped). Each descriptor carries
 * a fresh cookie, so a record that does not name the transfer in flight
 * (stale, or left over from before a reset) is ignored.
 *
 * Ending an IRP is two steps: dmadrv_finish (under the channel lock)
 * detaches it and records its status; dmadrv_end_irp (lock dropped)
 * starts the next IRP with IoStartNextPacket and then completes this
 * one, the order Windows' documentation gives for a DpcForIsr so the
 * device is busy again as early as possible.
 *
 * Recovery: a recoverable error (ERR_DMA, ERR_FETCH, ERR_HALTED, an
 * aborted or hung transfer) resets the channel if it stopped and posts
 * the same transfer again, at most dmadrv.retries times per IRP; then
 * the IRP fails with STATUS_IO_DEVICE_ERROR (or STATUS_IO_TIMEOUT after
 * hangs). A fatal DMA error (channel ERROR with ERR_DMA_FATAL) resets
 * the channel and fails the IRP with STATUS_DEVICE_HARDWARE_ERROR; a
 * device that reads all ones fails it with STATUS_DEVICE_REMOVED, and
 * every later IRP too, at once; a channel that does not come back up
 * after a reset fails it with STATUS_DEVICE_HARDWARE_ERROR.
 */
#include "dmadrv/dmadrv.h"
#include "lapic.h"
#include "platform.h"

void dmadrv_marker(struct dmadrv_chan *x, unsigned int kind)
{
	IRQL_REQUIRES(DISPATCH_LEVEL);
	if (kind == DMA_MARK_WATCHDOG)
		x->watchdog_marked = true;
	dmadev_marker(&x->drv->dev, kind, x->index, (unsigned int)x->tag);
}

/* The routines mark their own begin (after the IRP's tag is known);
 * the kernel's dispatch calls this around them, so it writes the ends,
 * with the time the kernel measured, and StartIo's begin. The timer DPC
 * ends with a marker only when it acted (a periodic look that finds
 * nothing to do stays out of the trace: when it runs is host time). */
void dmadrv_trace(PVOID Context, WDM_TRACE_ROUTINE Routine, BOOLEAN End,
		  PVOID Object, ULONG Id, ULONG OwnUs)
{
	struct dmadrv *d = Context;
	/* Whole µs, at least 1 (0 is "left out" to the host). */
	unsigned int i, kind = 0, us = OwnUs < 0xffff ? OwnUs + !OwnUs : 0xffff;
	struct dmadrv_chan *x = NULL;

	for (i = 0; i < d->channels && !x; i++) {
		struct dmadrv_chan *c = d->chan[i];

		if (!c)
			continue;
		if (Routine == WdmTraceIsr && Id == i)
			kind = DMA_MARK_ISR;
		else if (Routine == WdmTraceDpc && Object == &c->dev->Dpc)
			kind = DMA_MARK_DPC;
		else if (Routine == WdmTraceDpc && Object == &c->watchdog_dpc &&
			 c->watchdog_marked)
			kind = DMA_MARK_WATCHDOG;
		else if (Routine == WdmTraceStartIo && Object == c->dev)
			kind = DMA_MARK_START_IO;
		else
			continue;
		x = c;
	}
	if (!x)
		return;
	if (!End) {
		if (kind == DMA_MARK_START_IO)
			dmadev_marker(&d->dev, kind, x->index, 0);
		return;
	}
	if (kind == DMA_MARK_WATCHDOG)
		x->watchdog_marked = false;
	dmadev_marker(&d->dev, kind | DMA_MARK_END, x->index, us);
}

/* Byte k of the result is byte (k + s) % 8 of p. */
static uint64_t rotate_pattern(uint64_t p, uint64_t s)
{
	unsigned int bits = (unsigned int)(s & 7) * 8;

	return bits ? p >> bits | p << (64 - bits) : p;
}

void dmadrv_program(struct dmadrv_chan *x)
{
	struct dmadrv *d = x->drv;
	uint64_t left = x->len - x->done;
	uint32_t max = d->params.max_xfer & ~7u;
	struct dma_desc desc;

	IRQL_REQUIRES(DISPATCH_LEVEL);
	x->chunk = left > max ? max : (uint32_t)left;
	desc.src = x->op == DMA_OP_COPY ? x->src + x->done :
					  rotate_pattern(x->pattern, x->done);
	desc.dst = x->dst + x->done;
	desc.len = x->chunk;
	desc.op = x->op;
	desc.flags = DMA_DESC_IOC;
	desc.reserved = 0;
	desc.cookie = ++d->next_cookie;
	if (dmadev_chan_post(x->ch, &desc)) {
		/* Records the device never wrote (missing completions) hold
		 * the ring: start it afresh. */
		if (!dmadrv_reset_channel(x) || dmadev_chan_post(x->ch, &desc)) {
			dmadrv_finish(x, dmadrv_dead_status(d));
			return;
		}
	}
	x->cookie = desc.cookie;
	x->posted_tick = lapic_ticks;
	d->stats.transfers++;
	dmadrv_arm_watchdog(x);
	if (d->stats.sampling)
		d->stats.last_kick = rdtsc();
	dmadev_chan_kick(x->ch);
}

void dmadrv_finish(struct dmadrv_chan *x, NTSTATUS status)
{
	IRQL_REQUIRES(DISPATCH_LEVEL);
	x->end_irp = x->irp;
	x->end_status = status;
	x->end_info = NT_SUCCESS(status) ? x->len : x->done;
	x->end_tag = x->tag;
	x->irp = NULL;
	x->cookie = 0;
}

NTSTATUS dmadrv_dead_status(const struct dmadrv *d)
{
	IRQL_REQUIRES(DISPATCH_LEVEL);
	return d->removed ? STATUS_DEVICE_REMOVED : STATUS_DEVICE_HARDWARE_ERROR;
}

bool dmadrv_reset_channel(struct dmadrv_chan *x)
{
	struct dmadrv *d = x->drv;
	bool up;

	IRQL_REQUIRES(DISPATCH_LEVEL);
	x->cookie = 0;
	if (dmadev_chan_read32(x->ch, DMA_CH_STATUS) == DMADRV_ALL_ONES) {
		d->removed = true;
		return false;
	}
	d->stats.resets++;
	up = dmadev_chan_reset(x->ch) == 0;
	/* The ring starts again at entry 0: so does the ISR's cursor. */
	dmadrv_sync_isr_cursor(x);
	return up;
}

void dmadrv_retry_or_fail(struct dmadrv_chan *x, NTSTATUS status)
{
	struct dmadrv *d = x->drv;

	IRQL_REQUIRES(DISPATCH_LEVEL);
	if (d->removed) {
		dmadrv_finish(x, STATUS_DEVICE_REMOVED);
		return;
	}
	if (x->irp_retries >= d->params.retries) {
		dmadrv_finish(x, status);
		return;
	}
	x->irp_retries++;
	d->stats.retries++;
	dmadrv_program(x);
}

static void count_end(struct dmadrv_stats *s, NTSTATUS st)
{
	IRQL_REQUIRES(DISPATCH_LEVEL);
	if (NT_SUCCESS(st)) {
		s->irps_ok++;
		return;
	}
	s->irps_failed++;
	if (!s->first_fail_status)
		s->first_fail_status = (uint32_t)st;
	if (st == STATUS_DEVICE_HARDWARE_ERROR)
		s->fail_hw++;
	else if (st == STATUS_IO_DEVICE_ERROR)
		s->fail_io++;
	else if (st == STATUS_IO_TIMEOUT)
		s->fail_timeout++;
	else if (st == STATUS_DEVICE_REMOVED)
		s->fail_removed++;
	else
		s->fail_param++;
}

void dmadrv_end_irp(struct dmadrv_chan *x, bool from_dpc)
{
	struct dmadrv *d = x->drv;
	PIRP irp = x->end_irp;
	NTSTATUS st = x->end_status;

	IRQL_REQUIRES(DISPATCH_LEVEL);
	if (!irp)
		return;
	x->end_irp = NULL;
	count_end(&d->stats, st);
	if (d->params.markers)
		dmadev_marker(&d->dev, DMA_MARK_IRP, x->index,
			      (unsigned int)x->end_tag);
	irp->IoStatus.Status = st;
	irp->IoStatus.Information = x->end_info;
	if (d->stats.sampling && from_dpc)
		d->stats.last_end_in = rdtsc();
	x->starting_from_dpc = from_dpc;
	IoStartNextPacket(x->dev, TRUE);
	x->starting_from_dpc = false;
	IoCompleteRequest(irp, IO_NO_INCREMENT);
	if (d->stats.sampling && from_dpc)
		d->stats.last_end_out = rdtsc();
	if (from_dpc && d->params.bug == DMADRV_BUG_DOUBLE_COMPLETE)
		IoCompleteRequest(irp, IO_NO_INCREMENT);
}

void dmadrv_start_io(PDEVICE_OBJECT DeviceObject, PIRP Irp)
{
	struct dmadrv_chan *x = DeviceObject->DeviceExtension;
	struct dmadrv *d = x->drv;
	const struct dmadrv_xfer *r = Irp->AssociatedIrp.SystemBuffer;
	PIO_STACK_LOCATION s = IoGetCurrentIrpStackLocation(Irp);
	PHYSICAL_ADDRESS base = MmGetMdlPhysicalAddress(Irp->MdlAddress);
	KIRQL old;

	IRQL_REQUIRES(DISPATCH_LEVEL);
	if (d->stats.sampling)
		d->stats.last_startio = rdtsc();
	IoAcquireCancelSpinLock(&old);
	IoSetCancelRoutine(Irp, NULL);
	IoReleaseCancelSpinLock(old);

	KeAcquireSpinLockAtDpcLevel(&x->lock);
	d->stats.irps++;
	if (x->starting_from_dpc)
		d->stats.started_from_dpc++;
	x->irp = Irp;
	x->op = s->Parameters.DeviceIoControl.IoControlCode == IOCTL_DMADRV_COPY ?
			DMA_OP_COPY : DMA_OP_FILL;
	x->src = base + r->src_off;
	x->dst = base + r->dst_off;
	x->len = r->len;
	x->pattern = r->pattern;
	x->tag = r->tag;
	x->done = 0;
	x->irp_retries = 0;
	if (d->params.markers) {
		dmadrv_sync_isr_tag(x);
		dmadrv_marker(x, DMA_MARK_START);
	}
	if (d->removed || x->stopping)
		dmadrv_finish(x, STATUS_DEVICE_REMOVED);
	else
		dmadrv_program(x);
	KeReleaseSpinLockFromDpcLevel(&x->lock);
	dmadrv_end_irp(x, false);
}
