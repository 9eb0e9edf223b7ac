// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/*
 * The message ISR and DpcForIsr of the DMA driver, and the
 * SynchCritSection routines through which DISPATCH-level code reaches
 * the state it shares with the ISR (struct dmadrv_isr_shared).
 *
 * ISR, channel message c: under MSI-X the cause is in memory, so
 * "read and acknowledge the cause" is reading the completion ring: the
 * ISR keeps its own cursor in it and steps over every record that
 * carries the expected phase bit. No register is read or written (with
 * markers=1 one TRACE_MARKER write, an exit). If no new record is there
 * the interrupt is not ours (spurious, duplicated, or its record is
 * missing): counted, FALSE. Otherwise the ISR stamps the TSC, notes that
 * a DPC is pending and requests the channel's DpcForIsr. The cursor is
 * the ISR's, not the DPC's consume index, which moves under the channel
 * lock that the ISR never takes; the DPC only sets the cursor back to
 * its index when the ring restarts (channel reset) or the watchdog
 * consumed records whose interrupts were lost.
 *
 * ISR, error message: the cause is the global INT_STATUS bit 31 (one
 * read, one W1C write: the error path may afford two exits, and it is
 * also what the MSI fallback would do for every cause). Not set: not
 * ours, FALSE. Set (or all ones: the device is gone, noted for the DPCs):
 * every channel gets its DPC, which finds the record with the error
 * status, or nothing on an idle channel (a channel that stopped without
 * a record is caught by the watchdog).
 *
 * DpcForIsr: first, in a SynchCritSection routine (KeSynchronizeExecution),
 * takes what the ISR left: clears dpc_pending, the ISR's TSC stamp and a
 * removal the error ISR saw. Then it takes the channel lock, consumes
 * every new record and acts on each one (dmadrv_drain): the transfer in
 * flight finished -> the next transfer of the IRP, or the IRP is done;
 * short -> the rest; recoverable error -> reset if stopped, retry; fatal
 * -> fail. Once it has posted a new transfer it stops: that record comes
 * with its own interrupt (even in instant mode, where it is already
 * written when the doorbell write returns), so every transfer takes the
 * interrupt path and a lost interrupt is always the watchdog's to find.
 * It then drops the lock, starts the next IRP (IoStartNextPacket) and
 * completes the finished one.
 */
#include "dmadrv/dmadrv.h"
#include "kernel.h"
#include "platform.h"

/* Step the ISR's cursor over the new records of x's ring; how many. */
static unsigned int isr_new_records(struct dmadrv_chan *x,
				    struct dmadrv_isr_shared *s)
{
	const struct dmadev_chan *ch = x->ch;
	unsigned int n = 0;

	IRQL_REQUIRES_MIN(DISPATCH_LEVEL + 1);
	while (n < ch->size &&
	       (ch->comp[s->head].flags & DMA_COMP_PHASE) == s->phase) {
		n++;
		if (++s->head == ch->size) {
			s->head = 0;
			s->phase ^= 1;
		}
	}
	return n;
}

/* Interrupt lock held. */
static void isr_request_dpc(struct dmadrv_chan *x, struct dmadrv_isr_shared *s)
{
	IRQL_REQUIRES_MIN(DISPATCH_LEVEL + 1);
	s->dpc_pending = true;
	IoRequestDpc(x->dev, NULL, NULL);
}

BOOLEAN dmadrv_isr(PKINTERRUPT Interrupt, PVOID ServiceContext, ULONG MessageId)
{
	struct dmadrv *d = ServiceContext;
	unsigned int i;
	uint32_t s;

	IRQL_REQUIRES_MIN(DISPATCH_LEVEL + 1);
	(void)Interrupt;
	if (MessageId < d->channels) {
		struct dmadrv_chan *x = d->chan[MessageId];
		struct dmadrv_isr_shared *sh = dmadrv_isr_state(x);

		if (d->params.markers)
			dmadev_marker(&d->dev, DMA_MARK_ISR, x->index, sh->tag);
		d->stats.isrs++;
		if (!isr_new_records(x, sh)) {
			d->stats.spurious++;
			return FALSE;
		}
		sh->isr_tsc = rdtsc();
		isr_request_dpc(x, sh);
		return TRUE;
	}
	d->stats.error_isrs++;
	s = dmadev_read32(&d->dev, DMA_REG_INT_STATUS);
	if (s == DMADRV_ALL_ONES) {
		dmadrv_isr_dev(d)->removed = true;
	} else if (!(s & DMA_INT_ERROR)) {
		d->stats.spurious++;
		return FALSE;
	} else {
		dmadev_write32(&d->dev, DMA_REG_INT_STATUS, DMA_INT_ERROR);
	}
	for (i = 0; i < d->channels; i++)
		isr_request_dpc(d->chan[i], dmadrv_isr_state(d->chan[i]));
	return TRUE;
}

/* SynchCritSection routines: run by KeSynchronizeExecution at the
 * interrupt's SynchronizeIrql, holding its spin lock. */
static KSYNCHRONIZE_ROUTINE sync_dpc_start, sync_isr_cursor, sync_dpc_pending,
	sync_isr_tag;

/* What the DpcForIsr takes from the ISR. */
struct dpc_start {
	struct dmadrv_chan *x;
	uint64_t isr_tsc;
	bool removed;
};

static BOOLEAN sync_dpc_start(PVOID Context)
{
	struct dpc_start *t = Context;
	struct dmadrv_isr_shared *s;

	IRQL_REQUIRES_MIN(DISPATCH_LEVEL + 1);
	s = dmadrv_isr_state(t->x);
	s->dpc_pending = false;
	t->isr_tsc = s->isr_tsc;
	s->isr_tsc = 0;
	t->removed = dmadrv_isr_dev(t->x->drv)->removed;
	return TRUE;
}

static BOOLEAN sync_isr_cursor(PVOID Context)
{
	struct dmadrv_chan *x = Context;
	struct dmadrv_isr_shared *s;

	IRQL_REQUIRES_MIN(DISPATCH_LEVEL + 1);
	s = dmadrv_isr_state(x);
	s->head = x->ch->comp_head;
	s->phase = x->ch->phase;
	return TRUE;
}

void dmadrv_sync_isr_cursor(struct dmadrv_chan *x)
{
	IRQL_REQUIRES(DISPATCH_LEVEL);
	KeSynchronizeExecution(x->drv->interrupt, sync_isr_cursor, x);
}

static BOOLEAN sync_dpc_pending(PVOID Context)
{
	IRQL_REQUIRES_MIN(DISPATCH_LEVEL + 1);
	return dmadrv_isr_state(Context)->dpc_pending;
}

bool dmadrv_dpc_pending(struct dmadrv_chan *x)
{
	IRQL_REQUIRES(DISPATCH_LEVEL);
	return KeSynchronizeExecution(x->drv->interrupt, sync_dpc_pending, x);
}

static BOOLEAN sync_isr_tag(PVOID Context)
{
	struct dmadrv_chan *x = Context;

	IRQL_REQUIRES_MIN(DISPATCH_LEVEL + 1);
	dmadrv_isr_state(x)->tag = (uint16_t)x->tag;
	return TRUE;
}

void dmadrv_sync_isr_tag(struct dmadrv_chan *x)
{
	IRQL_REQUIRES(DISPATCH_LEVEL);
	KeSynchronizeExecution(x->drv->interrupt, sync_isr_tag, x);
}

/* A recoverable-looking error: reset the channel if it stopped, then
 * retry; a fatal DMA error fails the IRP. */
static void recover(struct dmadrv_chan *x)
{
	uint32_t code = 0, st;

	IRQL_REQUIRES(DISPATCH_LEVEL);
	st = dmadev_chan_state(x->ch, &code);
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

	IRQL_REQUIRES(DISPATCH_LEVEL);
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

	IRQL_REQUIRES(DISPATCH_LEVEL);
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

	IRQL_REQUIRES(DISPATCH_LEVEL);
	return (ch->comp[ch->comp_head].flags & DMA_COMP_PHASE) == ch->phase;
}

void dmadrv_dpc_for_isr(PKDPC Dpc, PDEVICE_OBJECT DeviceObject, PIRP Irp,
			PVOID Context)
{
	struct dmadrv_chan *x = DeviceObject->DeviceExtension;
	struct dmadrv *d = x->drv;
	struct dmadrv_stats *s = &d->stats;
	struct dpc_start taken = { .x = x };
	uint64_t t0 = rdtsc();

	IRQL_REQUIRES(DISPATCH_LEVEL);
	(void)Dpc, (void)Irp, (void)Context;
	if (d->params.bug == DMADRV_BUG_ISR_STATE)
		/* The bug: ISR-shared state without the interrupt lock. */
		dmadrv_isr_state(x)->dpc_pending = false;
	KeSynchronizeExecution(d->interrupt, sync_dpc_start, &taken);
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
	if (taken.removed)
		d->removed = true;
	dmadrv_drain(x);
	KeReleaseSpinLockFromDpcLevel(&x->lock);
	dmadrv_end_irp(x, true);
	if (s->sampling && taken.isr_tsc) {
		s->last_isr = taken.isr_tsc;
		s->last_dpc_in = t0;
		s->last_dpc_out = rdtsc();
		if (s->nsamples < DMADRV_SAMPLES) {
			s->isr_to_dpc[s->nsamples] = t0 - taken.isr_tsc;
			s->dpc_cycles[s->nsamples] = s->last_dpc_out - t0;
			s->nsamples++;
		}
	}
}
