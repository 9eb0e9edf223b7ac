// SPDX-License-Identifier: GPL-2.0-only OR BSD-3-Clause
/*
 * dmalab_dma channels, the hardware side: posting chunks, the interrupt
 * handlers, the completion tasklet, recovery and the watchdog. The
 * dmaengine operations are in dmalab_dma_ops.c.
 *
 * Submission: a client's transaction waits on the virt-dma lists until
 * issue_pending; the channel takes the first issued one as `active` and
 * posts its first chunk (one hardware descriptor, IOC set, a fresh 64-bit
 * cookie): descriptor and tail shadow in memory, then one TAIL write, the
 * only register access of the hot path.
 *
 * The TAIL write happens after vc.lock is dropped (dmalab_chan_ring), with
 * interrupts enabled: where ring 0 is emulated (docs/platform.md), an MSI
 * that the doorbell's exit makes pending while the vCPU runs with
 * interrupts off was measured to reach the ISR only tens of ms later, if
 * at all before the watchdog (49 of 49 transfers of a boot completed by
 * the watchdog; with the doorbell rung after the unlock, 1 of 49). The
 * post leaves the tail in ch->db with a reset generation; the ringer
 * claims it with cmpxchg, writes TAIL, and if a reset came in between
 * (its TAIL may have reached the fresh channel) resets again under
 * vc.lock and posts the chunk in flight anew. The check after the write
 * cannot tell a reset just before it from one just after (an interrupt
 * taken at the doorbell, e.g. a fatal error's): that costs one more reset
 * and a repost, never a stale descriptor, since a reset zeroes the ring.
 *
 * Completion: the channel's MSI-X vector needs no acknowledge, so the ISR
 * only counts and schedules the channel tasklet. The tasklet consumes the
 * completion ring by phase bit (no register read), hands the consumed
 * index back through the shadow, and acts on the record of the chunk in
 * flight: all done -> the transaction completes (vchan_cookie_complete,
 * whose tasklet calls the client's callback with the dmaengine_result)
 * and the next issued one starts; short -> the rest is posted as a new
 * chunk; an engine error (ERR_DMA, ERR_FETCH, ERR_HALTED, ABORTED) -> the
 * channel is reset if it stopped and the chunk is retried up to
 * max_retries times, unless the error was fatal; an address error
 * (ERR_SRC, ERR_DST) fails the transaction at once (READ_FAILED,
 * WRITE_FAILED). Once it has posted a chunk the tasklet stops: that
 * chunk's record comes with its own interrupt.
 *
 * Errors: the error vector's ISR reads and clears INT_STATUS (the error
 * path may afford the two exits) and schedules every channel's tasklet
 * with check_state set; a channel in state ERROR without a record (the
 * record itself could not be written) is reset there.
 *
 * Watchdog, a timer per channel armed while a chunk is in flight
 * (watchdog_ms): a record still unclaimed a whole period after it was
 * first seen lost its interrupt and is handled here (watchdog_recoveries);
 * no record after timeout_ms means a hang or a lost record: the channel
 * is reset and the chunk retried, or the transaction fails (ABORTED).
 * Exactly once: record, tasklet and watchdog meet on hw_cookie under
 * vc.lock; whoever consumes the record or resets the channel clears it.
 *
 * Surprise removal: a register read of all ones marks the device removed;
 * the active and every issued transaction then end with DMA_TRANS_ABORTED
 * and later ones end so as soon as they are issued.
 */
#include <linux/bitfield.h>
#include <linux/dmaengine.h>
#include <linux/io-64-nonatomic-lo-hi.h>
#include <linux/jiffies.h>
#include <linux/module.h>
#include <linux/slab.h>

#include "dmalab_dma_priv.h"

unsigned int dmalab_watchdog_ms = 20;
module_param_named(watchdog_ms, dmalab_watchdog_ms, uint, 0644);
MODULE_PARM_DESC(watchdog_ms, "Watchdog period per busy channel in ms (default 20)");

unsigned int dmalab_timeout_ms = 200;
module_param_named(timeout_ms, dmalab_timeout_ms, uint, 0644);
MODULE_PARM_DESC(timeout_ms, "A chunk without a record this long is hung (default 200)");

unsigned int dmalab_max_retries = 3;
module_param_named(max_retries, dmalab_max_retries, uint, 0644);
MODULE_PARM_DESC(max_retries, "Retries of a failed chunk before the transaction fails (default 3)");

bool dmalab_markers;
module_param_named(markers, dmalab_markers, bool, 0644);
MODULE_PARM_DESC(markers, "Write TRACE_MARKER at ISR, tasklet, completion, watchdog (default off)");

void dmalab_marker(struct dmalab_chan *ch, unsigned int kind)
{
	if (dmalab_markers)
		writel(DMALAB_MARKER(kind, ch->index, (u32)READ_ONCE(ch->hw_cookie)),
		       ch->dd->regs + DMALAB_REG_TRACE_MARKER);
}

bool dmalab_chan_usable(struct dmalab_chan *ch)
{
	return !READ_ONCE(ch->dd->removed) && !ch->dd->stopping && !ch->dead;
}

static void dmalab_arm_watchdog(struct dmalab_chan *ch)
{
	if (!timer_pending(&ch->watchdog))
		mod_timer(&ch->watchdog,
			  jiffies + msecs_to_jiffies(dmalab_watchdog_ms));
}

/*
 * Reset the channel, zero its rings and shadow, program the rings and
 * enable it. Returns 0, -ENODEV if the device reads all ones,
 * -EIO if the channel came up in ERROR. Probe, or vc.lock held.
 */
int dmalab_chan_hw_init(struct dmalab_chan *ch)
{
	struct dmalab_dev *dd = ch->dd;
	u32 n = dd->ring_entries;
	u32 status;

	writel(DMALAB_CTRL_RESET, ch->regs + DMALAB_CH_CTRL);
	/* A stale doorbell (dmalab_chan_ring) then fetches len 0: ERR_LEN. */
	memset(ch->ring, 0, n * sizeof(*ch->ring));
	memset(ch->comp, 0, n * sizeof(*ch->comp));
	memset(ch->shadow, 0, sizeof(*ch->shadow));
	ch->tail = 0;
	ch->comp_head = 0;
	ch->phase = 1;
	ch->hw_cookie = 0;
	ch->wd_seen = 0;
	ch->db_gen++;
	WRITE_ONCE(ch->db, FIELD_PREP(DMALAB_DB_GEN, ch->db_gen));

	writeq(ch->ring_dma, ch->regs + DMALAB_CH_RING_BASE);
	writel(n, ch->regs + DMALAB_CH_RING_SIZE);
	writeq(ch->comp_dma, ch->regs + DMALAB_CH_COMP_BASE);
	writeq(ch->shadow_dma, ch->regs + DMALAB_CH_SHADOW_BASE);
	writel(DMALAB_CTRL_ENABLE, ch->regs + DMALAB_CH_CTRL);

	status = readl(ch->regs + DMALAB_CH_STATUS);
	if (status == DMALAB_ALL_ONES) {
		WRITE_ONCE(dd->removed, true);
		return -ENODEV;
	}
	if (FIELD_GET(DMALAB_STATUS_STATE, status) == DMALAB_STATE_ERROR) {
		dev_err(&dd->pdev->dev, "channel %u: enable failed, error code %u\n",
			ch->index, readl(ch->regs + DMALAB_CH_ERROR_CODE));
		return -EIO;
	}
	return 0;
}

/*
 * A reset the driver decided on: counted; a channel that does not come
 * back is dead. vc.lock held.
 */
int dmalab_chan_reset(struct dmalab_chan *ch)
{
	int ret;

	dmalab_count(DMALAB_DMA_RESETS);
	ret = dmalab_chan_hw_init(ch);
	if (ret == -EIO)
		ch->dead = true;
	return ret;
}

/* Post the next chunk of the active transaction and ring the doorbell. */
static void dmalab_chan_post(struct dmalab_chan *ch)
{
	struct dmalab_desc *d = ch->active;
	struct dmalab_hw_desc *hw = &ch->ring[ch->tail];
	u32 chunk = min_t(size_t, d->len - d->done, ch->max_xfer);

	ch->hw_cookie = ++ch->next_cookie;
	ch->chunk = chunk;
	hw->src = cpu_to_le64(d->op == DMALAB_OP_COPY ? d->src + d->done : d->src);
	hw->dst = cpu_to_le64(d->dst + d->done);
	hw->len = cpu_to_le32(chunk);
	hw->op = d->op;
	hw->flags = DMALAB_DESC_IOC;
	hw->reserved = 0;
	hw->cookie = cpu_to_le64(ch->hw_cookie);

	ch->tail = (ch->tail + 1) & (ch->dd->ring_entries - 1);
	WRITE_ONCE(ch->shadow->tail, cpu_to_le32(ch->tail));
	WRITE_ONCE(ch->shadow->comp_head, cpu_to_le32(ch->comp_head));
	ch->posted = jiffies;
	ch->wd_seen = 0;
	WRITE_ONCE(ch->db, DMALAB_DB_OWED | FIELD_PREP(DMALAB_DB_GEN, ch->db_gen) |
		   ch->tail);
	dmalab_arm_watchdog(ch);
}

/*
 * Ring the doorbell a post left owed. Called after dropping vc.lock; the
 * cmpxchg (a full barrier) orders the descriptor and shadow stores before
 * the TAIL write.
 */
void dmalab_chan_ring(struct dmalab_chan *ch)
{
	unsigned long flags;
	u64 v;

	for (;;) {
		v = READ_ONCE(ch->db);
		if (!(v & DMALAB_DB_OWED) ||
		    cmpxchg(&ch->db, v, v & ~DMALAB_DB_OWED) != v)
			return;
		writel(FIELD_GET(DMALAB_DB_TAIL, v), ch->regs + DMALAB_CH_TAIL);
		if (likely(!((READ_ONCE(ch->db) ^ v) & DMALAB_DB_GEN)))
			return;

		/* A reset came between the claim and the TAIL write. */
		spin_lock_irqsave(&ch->vc.lock, flags);
		if (!dmalab_chan_usable(ch))
			writel(DMALAB_CTRL_RESET, ch->regs + DMALAB_CH_CTRL);
		else if (dmalab_chan_reset(ch))
			dmalab_chan_fail_all(ch);
		else if (ch->active)
			dmalab_chan_post(ch);
		spin_unlock_irqrestore(&ch->vc.lock, flags);
	}
}

/*
 * End one transaction with a result; its callback runs from the vchan
 * tasklet. vc.lock held.
 */
static void dmalab_desc_end(struct dmalab_chan *ch, struct dmalab_desc *d,
			    enum dmaengine_tx_result result)
{
		d->vd.tx_result.result = result;
	d->vd.tx_result.residue = d->len - d->done;
	dmalab_count(DMALAB_DMA_COMPLETIONS);
	if (result != DMA_TRANS_NOERROR) {
		dmalab_count(DMALAB_DMA_ERRORS_REPORTED);
		ch->failed[ch->nfailed++ % DMALAB_FAILED_COOKIES] = d->vd.tx.cookie;
	}
	vchan_cookie_complete(&d->vd);
}

/* Start issued transactions until one is on the hardware. */
void dmalab_chan_start_next(struct dmalab_chan *ch)
{
	struct virt_dma_desc *vd;

	while (!ch->active && (vd = vchan_next_desc(&ch->vc))) {
		list_del(&vd->node);
		if (!dmalab_chan_usable(ch)) {
			dmalab_desc_end(ch, to_dmalab_desc(vd), DMA_TRANS_ABORTED);
			continue;
		}
		ch->active = to_dmalab_desc(vd);
		dmalab_chan_post(ch);
	}
}

static void dmalab_chan_finish(struct dmalab_chan *ch,
			       enum dmaengine_tx_result result)
{
	struct dmalab_desc *d = ch->active;

	dmalab_marker(ch, DMALAB_MARK_COMPLETE);
	ch->active = NULL;
	ch->hw_cookie = 0;
	dmalab_desc_end(ch, d, result);
	dmalab_chan_start_next(ch);
}

/* The device is gone or the channel dead: end all issued work. */
void dmalab_chan_fail_all(struct dmalab_chan *ch)
{
	struct virt_dma_desc *vd;

	ch->hw_cookie = 0;
	if (ch->active) {
		dmalab_desc_end(ch, ch->active, DMA_TRANS_ABORTED);
		ch->active = NULL;
	}
	while ((vd = vchan_next_desc(&ch->vc))) {
		list_del(&vd->node);
		dmalab_desc_end(ch, to_dmalab_desc(vd), DMA_TRANS_ABORTED);
	}
}

static void dmalab_chan_retry_or_fail(struct dmalab_chan *ch,
				      enum dmaengine_tx_result result)
{
	struct dmalab_desc *d = ch->active;

	ch->hw_cookie = 0;
	if (!dmalab_chan_usable(ch)) {
		dmalab_chan_fail_all(ch);
		return;
	}
	if (d->tries < dmalab_max_retries) {
		d->tries++;
		dmalab_count(DMALAB_DMA_RETRIES);
		dmalab_chan_post(ch);
		return;
	}
	dmalab_chan_finish(ch, result);
}

/* Reads STATUS: false (and everything failed) if the device is gone. */
static bool dmalab_chan_read_state(struct dmalab_chan *ch, u32 *state)
{
	u32 status = readl(ch->regs + DMALAB_CH_STATUS);

	if (status == DMALAB_ALL_ONES) {
		WRITE_ONCE(ch->dd->removed, true);
		dmalab_chan_fail_all(ch);
		return false;
	}
	*state = FIELD_GET(DMALAB_STATUS_STATE, status);
	return true;
}

/*
 * The chunk ended with an engine error: leave ERROR or HALTED by a reset,
 * then retry, unless the error was fatal.
 */
static void dmalab_chan_recover(struct dmalab_chan *ch,
				enum dmaengine_tx_result result)
{
	u32 state, code;

	ch->hw_cookie = 0;
	if (!dmalab_chan_read_state(ch, &state))
		return;
	if (state == DMALAB_STATE_ERROR || state == DMALAB_STATE_HALTED) {
		code = readl(ch->regs + DMALAB_CH_ERROR_CODE);
		if (dmalab_chan_reset(ch)) {
			dmalab_chan_fail_all(ch);
			return;
		}
		if (code == DMALAB_ERR_DMA_FATAL) {
			dmalab_chan_finish(ch, result);
			return;
		}
	}
	dmalab_chan_retry_or_fail(ch, result);
}

/* Act on one record. Returns true if a chunk was posted. vc.lock held. */
static bool dmalab_chan_handle(struct dmalab_chan *ch,
			       const struct dmalab_hw_comp *c)
{
	u64 cookie = le64_to_cpu(c->cookie);
	u16 status = le16_to_cpu(c->status);
	struct dmalab_desc *d = ch->active;
	u32 bytes;

	if (!d || !ch->hw_cookie ||
	    (cookie != ch->hw_cookie &&
	     !(cookie == 0 && status == DMALAB_ST_ERR_FETCH))) {
		ch->stale_records++;
		return false;
	}
	ch->hw_cookie = 0;
	switch (status) {
	case DMALAB_ST_OK:
	case DMALAB_ST_SHORT:
		bytes = min(le32_to_cpu(c->bytes_done), ch->chunk);
		if (!bytes) {
			dmalab_chan_retry_or_fail(ch, DMA_TRANS_READ_FAILED);
			break;
		}
		d->done += bytes;
		if (d->done >= d->len)
			dmalab_chan_finish(ch, DMA_TRANS_NOERROR);
		else
			dmalab_chan_post(ch);
		break;
	case DMALAB_ST_ERR_DST:
		dmalab_chan_finish(ch, DMA_TRANS_WRITE_FAILED);
		break;
	case DMALAB_ST_ERR_DMA:
	case DMALAB_ST_ERR_FETCH:
	case DMALAB_ST_ERR_HALTED:
		dmalab_chan_recover(ch, DMA_TRANS_READ_FAILED);
		break;
	case DMALAB_ST_ABORTED:
		dmalab_chan_recover(ch, DMA_TRANS_ABORTED);
		break;
	default:
		/*
		 * ERR_SRC, and ERR_LEN/ERR_OP, which the driver never asks
		 * for: the device cannot read what it was given.
		 */
		dmalab_chan_finish(ch, DMA_TRANS_READ_FAILED);
		break;
	}
	return ch->hw_cookie != 0;
}

static bool dmalab_record_ready(struct dmalab_chan *ch)
{
	u8 flags = READ_ONCE(ch->comp[ch->comp_head].flags);

	return (flags & DMALAB_COMP_PHASE) == ch->phase;
}

/* Consume new records until one posts a chunk. vc.lock held. */
static unsigned int dmalab_chan_drain(struct dmalab_chan *ch)
{
	struct dmalab_hw_comp c;
	unsigned int n = 0;

	while (dmalab_record_ready(ch)) {
		dma_rmb();	/* the record's fields after its phase bit */
		c = ch->comp[ch->comp_head];
		ch->comp_head = (ch->comp_head + 1) & (ch->dd->ring_entries - 1);
		if (!ch->comp_head)
			ch->phase ^= 1;
		WRITE_ONCE(ch->shadow->comp_head, cpu_to_le32(ch->comp_head));
		n++;
		if (dmalab_chan_handle(ch, &c))
			break;
	}
	return n;
}

/* After an error message: a channel in ERROR that wrote no record. */
static void dmalab_chan_check_state(struct dmalab_chan *ch)
{
	u32 state;

	if (!dmalab_chan_read_state(ch, &state) || state != DMALAB_STATE_ERROR)
		return;
	dmalab_chan_recover(ch, DMA_TRANS_READ_FAILED);
}

void dmalab_chan_tasklet(struct tasklet_struct *t)
{
	struct dmalab_chan *ch = from_tasklet(ch, t, task);
	bool check = test_and_clear_bit(DMALAB_CHECK_STATE, &ch->isr_flags);
	unsigned long flags;
	unsigned int n;

	spin_lock_irqsave(&ch->vc.lock, flags);
	dmalab_marker(ch, DMALAB_MARK_TASKLET);
	if (READ_ONCE(ch->dd->removed)) {
		dmalab_chan_fail_all(ch);
	} else {
		n = dmalab_chan_drain(ch);
		if (check && !n && ch->hw_cookie)
			dmalab_chan_check_state(ch);
	}
	spin_unlock_irqrestore(&ch->vc.lock, flags);
	dmalab_chan_ring(ch);
}

void dmalab_chan_watchdog(struct timer_list *t)
{
	struct dmalab_chan *ch = from_timer(ch, t, watchdog);
	unsigned long flags;
	u64 cookie;
	u32 state;

	spin_lock_irqsave(&ch->vc.lock, flags);
	cookie = ch->hw_cookie;
	if (!cookie || ch->dd->stopping)
		goto out_unlock;
	dmalab_marker(ch, DMALAB_MARK_WATCHDOG);
	if (dmalab_record_ready(ch)) {
		if (ch->wd_seen == cookie) {
			dmalab_chan_drain(ch);
			if (ch->hw_cookie != cookie)
				dmalab_count(DMALAB_DMA_WATCHDOG_RECOVERIES);
		} else {
			ch->wd_seen = cookie;
		}
	} else if (time_after(jiffies, ch->posted +
			      msecs_to_jiffies(dmalab_timeout_ms))) {
		if (!dmalab_chan_read_state(ch, &state))
			goto out_unlock;
		dev_warn_ratelimited(&ch->dd->pdev->dev,
				     "channel %u: no completion in %u ms (state %u), resetting\n",
				     ch->index, dmalab_timeout_ms, state);
		if (dmalab_chan_reset(ch))
			dmalab_chan_fail_all(ch);
		else
			dmalab_chan_retry_or_fail(ch, DMA_TRANS_ABORTED);
	}
	if (ch->hw_cookie)
		dmalab_arm_watchdog(ch);
out_unlock:
	spin_unlock_irqrestore(&ch->vc.lock, flags);
	dmalab_chan_ring(ch);
}

/* INT_STATUS reads per MSI message at most (one per cause and one more). */
#define DMALAB_MSI_ROUNDS	(DMALAB_MAX_CHANNELS + 2)

irqreturn_t dmalab_chan_isr(int irq, void *data)
{
	struct dmalab_chan *ch = data;

	dmalab_count(DMALAB_DMA_INTERRUPTS);
	dmalab_marker(ch, DMALAB_MARK_ISR);
	tasklet_schedule(&ch->task);
	return IRQ_HANDLED;
}

static void dmalab_schedule_all(struct dmalab_dev *dd, u32 causes)
{
	unsigned int i;

	for (i = 0; i < dd->channels; i++) {
		if (causes & DMALAB_INT_ERROR)
			set_bit(DMALAB_CHECK_STATE, &dd->chan[i].isr_flags);
		else if (!(causes & BIT(i)))
			continue;
		tasklet_schedule(&dd->chan[i].task);
	}
}

/* The error vector (MSI-X entry `channels`). */
irqreturn_t dmalab_error_isr(int irq, void *data)
{
	struct dmalab_dev *dd = data;
	u32 causes;

	dmalab_count(DMALAB_DMA_INTERRUPTS);
	causes = readl(dd->regs + DMALAB_REG_INT_STATUS);
	if (!(causes & DMALAB_INT_ERROR))
		return IRQ_NONE;
	if (causes == DMALAB_ALL_ONES)
		WRITE_ONCE(dd->removed, true);
	else
		writel(DMALAB_INT_ERROR, dd->regs + DMALAB_REG_INT_STATUS);
	dmalab_schedule_all(dd, DMALAB_INT_ERROR);
	return IRQ_HANDLED;
}

/*
 * The one MSI message of the fallback: INT_STATUS says which causes. It is
 * read again after the clear until it reads 0: a cause that latched while
 * others were pending may bring no message of its own (measured: 6 of 50
 * transfers of a boot were left to the watchdog with a single read).
 */
irqreturn_t dmalab_msi_isr(int irq, void *data)
{
	struct dmalab_dev *dd = data;
	unsigned int rounds = 0;
	u32 causes, all = 0;

	dmalab_count(DMALAB_DMA_INTERRUPTS);
	while ((causes = readl(dd->regs + DMALAB_REG_INT_STATUS)) != 0 &&
	       rounds++ < DMALAB_MSI_ROUNDS) {
		if (causes == DMALAB_ALL_ONES) {
			WRITE_ONCE(dd->removed, true);
			all = DMALAB_INT_ERROR;
			break;
		}
		writel(causes, dd->regs + DMALAB_REG_INT_STATUS);
		all |= causes;
	}
	if (!all)
		return IRQ_NONE;
	dmalab_schedule_all(dd, all);
	return IRQ_HANDLED;
}
