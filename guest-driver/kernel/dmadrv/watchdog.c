// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/*
 * The watchdog: a CustomTimerDpc per channel, armed while the channel
 * holds an IRP (every dmadrv.watchdog_ms, default 10 ms; it is armed by
 * the first transfer of an IRP and re-arms itself, so the submit path
 * sets the timer at most once per period).
 *
 * Each run, under the channel lock (and only when no DpcForIsr is
 * queued: an interrupt did come, the DPC will read the ring; that flag
 * is ISR-shared state, read in a SynchCritSection routine):
 * - it looks at the completion ring: a record for the transfer in
 *   flight that is still unclaimed at the next run (a whole period
 *   later: its interrupt was lost, not merely late; here an interrupt
 *   can lag ~1 ms behind the record while the vCPU runs emulated CPL0
 *   code) is handled exactly as the DpcForIsr would, and counted as a
 *   watchdog recovery;
 * - if nothing came and the transfer in flight is older than
 *   dmadrv.timeout_ms (default 100 ms), the channel is declared hung
 *   (or its record lost): reset, then the transfer is retried, or the
 *   IRP fails with STATUS_IO_TIMEOUT once the retry bound is reached;
 *   a device that reads all ones fails it with STATUS_DEVICE_REMOVED.
 * Exactly-once: the record, the DPC and the watchdog all meet on the
 * transfer's cookie under the channel lock; whoever consumes the record
 * or resets the channel first clears the cookie, the other finds
 * nothing to do.
 */
#include "dmadrv/dmadrv.h"
#include "lapic.h"

void dmadrv_arm_watchdog(struct dmadrv_chan *x)
{
	LARGE_INTEGER due;

	IRQL_REQUIRES(DISPATCH_LEVEL);
	if (x->watchdog_armed || x->stopping)
		return;
	due.QuadPart = -(LONGLONG)x->drv->params.watchdog_ms * 10000;
	KeSetTimer(&x->watchdog, due, &x->watchdog_dpc);
	x->watchdog_armed = true;
}

void dmadrv_watchdog_dpc(PKDPC Dpc, PVOID Context, PVOID SystemArgument1,
			 PVOID SystemArgument2)
{
	struct dmadrv_chan *x = Context;
	struct dmadrv *d = x->drv;
	uint64_t cookie;
	bool queued;

	IRQL_REQUIRES(DISPATCH_LEVEL);
	/* A DpcForIsr already queued when this run began (see below). */
	queued = dmadrv_dpc_pending(x);
	(void)Dpc, (void)SystemArgument1, (void)SystemArgument2;
	KeAcquireSpinLockAtDpcLevel(&x->lock);
	x->watchdog_armed = false;
	if (!x->irp || dmadrv_dpc_pending(x)) {
		/* Idle, or an interrupt came and its DpcForIsr is queued. */
		if (x->irp)
			dmadrv_arm_watchdog(x);
		KeReleaseSpinLockFromDpcLevel(&x->lock);
		return;
	}
	if (d->params.markers)
		dmadrv_marker(x, DMA_MARK_WATCHDOG);
	cookie = x->cookie;
	if (dmadrv_record_ready(x)) {
		if (x->watchdog_seen == cookie) {
			/* Records taken while the DpcForIsr queued for them
			 * waits (it was queued before this run and still is):
			 * its work, done here; never on one CPU, where the
			 * check above sees what `queued` saw. */
			if (dmadrv_drain(x) && queued && dmadrv_dpc_pending(x))
				d->stats.watchdog_took_queued++;
			/* Their interrupts were lost: the ISR's cursor is
			 * behind (a whole ring, after enough of them). */
			dmadrv_sync_isr_cursor(x);
			if (cookie && x->cookie != cookie)
				d->stats.watchdog_recoveries++;
		} else {
			x->watchdog_seen = cookie;
		}
	} else if (x->cookie &&
		   lapic_ticks - x->posted_tick >= d->params.timeout_ms) {
		d->stats.watchdog_timeouts++;
		if (!dmadrv_reset_channel(x))
			dmadrv_finish(x, dmadrv_dead_status(d));
		else
			dmadrv_retry_or_fail(x, STATUS_IO_TIMEOUT);
	}
	if (x->irp)
		dmadrv_arm_watchdog(x);
	KeReleaseSpinLockFromDpcLevel(&x->lock);
	dmadrv_end_irp(x, false);
}
