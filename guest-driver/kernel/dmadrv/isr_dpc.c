// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/*
 * The message ISR and DpcForIsr of the DMA driver.
 *
 * ISR, channel message c: under MSI-X the cause is in memory, so
 * "read and acknowledge the cause" is one load: the completion record at
 * the channel's consume index carries the expected phase bit or not.
 * No register is read or written (with markers=1 one TRACE_MARKER write,
 * an exit). If nothing new is there the interrupt is not ours (spurious,
 * duplicated, or its record is missing): counted, FALSE. Otherwise the
 * ISR stamps the TSC and requests the channel's DpcForIsr.
 *
 * ISR, error message: the cause is the global INT_STATUS bit 31 (one
 * read, one W1C write: the error path may afford two exits, and it is
 * also what the MSI fallback would do for every cause). Not set: not
 * ours, FALSE. Set: every channel holding an IRP gets its DPC, which
 * finds the record with the error status (a channel that stopped
 * without one is caught by the watchdog).
 *
 * DpcForIsr: takes the channel lock, consumes every new record and acts
 * on each one (dmadrv_drain): the transfer in flight finished -> the
 * next transfer of the IRP, or the IRP is done; short -> the rest;
 * recoverable error -> reset if stopped, retry; fatal -> fail. Once it
 * has posted a new transfer it stops: that record comes with its own
 * interrupt (even in instant mode, where it is already written when the
 * doorbell write returns), so every transfer takes the interrupt path
 * and a lost interrupt is always the watchdog's to find. It then
 * drops the lock, starts the next IRP (IoStartNextPacket) and completes
 * the finished one.
 */
#include "dmadrv/dmadrv.h"
#include "kernel.h"
#include "platform.h"

BOOLEAN dmadrv_isr(PKINTERRUPT Interrupt, PVOID ServiceContext, ULONG MessageId)
{
	struct dmadrv *d = ServiceContext;
	unsigned int i;
	uint32_t s;

	(void)Interrupt;
	if (MessageId < d->channels) {
		struct dmadrv_chan *x = d->chan[MessageId];

		if (d->params.markers)
			dmadrv_marker(x, DMA_MARK_ISR);
		d->stats.isrs++;
		if (!dmadrv_record_ready(x)) {
			d->stats.spurious++;
			return FALSE;
		}
		x->isr_tsc = rdtsc();
		x->dpc_pending = true;
		IoRequestDpc(x->dev, x->dev->CurrentIrp, NULL);
		return TRUE;
	}
	d->stats.error_isrs++;
	s = dmadev_read32(&d->dev, DMA_REG_INT_STATUS);
	if (s == DMADRV_ALL_ONES) {
		d->removed = true;
	} else if (!(s & DMA_INT_ERROR)) {
		d->stats.spurious++;
		return FALSE;
	} else {
		dmadev_write32(&d->dev, DMA_REG_INT_STATUS, DMA_INT_ERROR);
	}
	for (i = 0; i < d->channels; i++) {
		struct dmadrv_chan *x = d->chan[i];

		if (x->irp) {
			x->dpc_pending = true;
			IoRequestDpc(x->dev, x->dev->CurrentIrp, NULL);
		}
	}
	return TRUE;
}

/* A recoverable-looking error: reset the channel if it stopped, then
 * retry; a fatal DMA error fails the IRP. */
static void recover(struct dmadrv_chan *x)
{
	uint32_t code = 0, st = dmadev_chan_state(x->ch, &code);

	if (st == DMADRV_ALL_ONES) {
		x->drv->removed = true;
		dmadrv_finish(x, STATUS_DEVICE_REMOVED);
		return;
	}
	if (DMA_STATE(st) == DMA_STATE_ERROR || DMA_STATE(st) == DMA_STATE_HALTED) {
		if (!dmadrv_reset_channel(x)) {
			dmadrv_finish(x, dmadrv_dead_status(x->drv));
			return;
		}
		if (code == DMADRV_CHERR_DMA_FATAL) {
			dmadrv_finish(x, STATUS_DEVICE_HARDWARE_ERROR);
			return;
		}
	}
	dmadrv_retry_or_fail(x, STATUS_IO_DEVICE_ERROR);
}

/* Returns true if it posted a new transfer. */
static bool handle_record(struct dmadrv_chan *x, const struct dma_comp *c)
{
	struct dmadrv_stats *s = &x->drv->stats;
	unsigned int st = c->status;
	uint32_t bytes;

	s->status[st < ARRAY_SIZE(s->status) ? st : DMA_ST_ERR_OP]++;
	if (!x->irp || !x->cookie ||
	    (c->cookie != x->cookie &&
	     !(c->cookie == 0 && st == DMA_ST_ERR_FETCH))) {
		s->stale_records++;
		return false;
	}
	x->cookie = 0;
	switch (st) {
	case DMA_ST_OK:
	case DMA_ST_SHORT:
		bytes = c->bytes_done < x->chunk ? c->bytes_done : x->chunk;
		if (bytes < x->chunk)
			s->short_transfers++;
		if (!bytes) {
			dmadrv_retry_or_fail(x, STATUS_IO_DEVICE_ERROR);
			return x->cookie != 0;
		}
		x->done += bytes;
		if (x->done >= x->len) {
			dmadrv_finish(x, STATUS_SUCCESS);
			return false;
		}
		s->reprograms++;
		dmadrv_program(x);
		return x->cookie != 0;
	case DMA_ST_ERR_DMA:
	case DMA_ST_ERR_FETCH:
	case DMA_ST_ERR_HALTED:
	case DMA_ST_ABORTED:
		recover(x);
		return x->cookie != 0;
	default:
		/* ERR_SRC/DST/LEN/OP: the request was checked, so the device
		 * disagrees with the driver about memory: do not retry. */
		dmadrv_finish(x, STATUS_INVALID_PARAMETER);
		return false;
	}
}

unsigned int dmadrv_drain(struct dmadrv_chan *x)
{
	struct dma_comp c;
	unsigned int n = 0;

	/* A new transfer's record belongs to its own interrupt: stop after
	 * posting one, so a lost interrupt is always noticed (watchdog)
	 * whatever the timing mode, and one DPC run does one step. */
	while (dmadev_chan_poll(x->ch, &c)) {
		n++;
		if (handle_record(x, &c))
			break;
	}
	return n;
}

bool dmadrv_record_ready(const struct dmadrv_chan *x)
{
	const struct dmadev_chan *ch = x->ch;

	return (ch->comp[ch->comp_head].flags & DMA_COMP_PHASE) == ch->phase;
}

void dmadrv_dpc_for_isr(PKDPC Dpc, PDEVICE_OBJECT DeviceObject, PIRP Irp,
			PVOID Context)
{
	struct dmadrv_chan *x = DeviceObject->DeviceExtension;
	struct dmadrv *d = x->drv;
	struct dmadrv_stats *s = &d->stats;
	uint64_t t0 = rdtsc(), isr = x->isr_tsc;

	(void)Dpc, (void)Irp, (void)Context;
	x->dpc_pending = false;
	s->dpcs++;
	if (d->params.markers)
		dmadrv_marker(x, DMA_MARK_DPC);
	if (d->params.bug == DMADRV_BUG_IRQL) {
		/* The bug: a wait with a timeout (PASSIVE/APC only) here,
		 * at DISPATCH_LEVEL. */
		LARGE_INTEGER t = { .QuadPart = -10000 };
		KEVENT never;

		KeInitializeEvent(&never, NotificationEvent, FALSE);
		KeWaitForSingleObject(&never, Executive, KernelMode, FALSE, &t);
	}
	KeAcquireSpinLockAtDpcLevel(&x->lock);
	dmadrv_drain(x);
	KeReleaseSpinLockFromDpcLevel(&x->lock);
	dmadrv_end_irp(x, true);
	if (s->sampling && isr) {
		s->last_isr = isr;
		s->last_dpc_in = t0;
		s->last_dpc_out = rdtsc();
		if (s->nsamples < DMADRV_SAMPLES) {
			s->isr_to_dpc[s->nsamples] = t0 - isr;
			s->dpc_cycles[s->nsamples] = s->last_dpc_out - t0;
			s->nsamples++;
		}
	}
	x->isr_tsc = 0;
}
