// SPDX-License-Identifier: GPL-2.0-only OR BSD-3-Clause
/*
 * dmalab_dma channels, the dmaengine side: prepare, issue, status with
 * residue, terminate and synchronize; and a channel's life in probe and
 * remove. The work on the hardware is in dmalab_dma_chan.c.
 *
 * terminate_all resets the channel when a chunk is on the hardware (a
 * reset discards it without a record, so its buffers are free when the
 * call returns) and drops every queued transaction without a callback, as
 * dmaengine clients expect; synchronize waits for the completion tasklet
 * and the callbacks. tx_status reports DMA_ERROR for the last
 * DMALAB_FAILED_COOKIES transactions that ended with an error (dmatest
 * counts those as failures without comparing buffers).
 */
#include <linux/bitfield.h>
#include <linux/dmaengine.h>
#include <linux/slab.h>

#include "dmalab_dma_priv.h"

static struct dma_async_tx_descriptor *
dmalab_prep(struct dma_chan *c, u8 op, u64 src, dma_addr_t dst, size_t len,
	    unsigned long flags)
{
	struct dmalab_chan *ch = to_dmalab_chan(c);
	struct dmalab_desc *d;

	if (!len)
		return NULL;
	d = kzalloc(sizeof(*d), GFP_NOWAIT);
	if (!d)
		return NULL;
	d->op = op;
	d->src = src;
	d->dst = dst;
	d->len = len;
	return vchan_tx_prep(&ch->vc, &d->vd, flags);
}

static struct dma_async_tx_descriptor *
dmalab_prep_memcpy(struct dma_chan *c, dma_addr_t dst, dma_addr_t src,
		   size_t len, unsigned long flags)
{
	return dmalab_prep(c, DMALAB_OP_COPY, src, dst, len, flags);
}

/* FILL repeats an 8-byte pattern; memset's byte repeated eight times. */
static struct dma_async_tx_descriptor *
dmalab_prep_memset(struct dma_chan *c, dma_addr_t dst, int value, size_t len,
		   unsigned long flags)
{
	return dmalab_prep(c, DMALAB_OP_FILL, 0x0101010101010101ULL * (u8)value,
			   dst, len, flags);
}

static void dmalab_issue_pending(struct dma_chan *c)
{
	struct dmalab_chan *ch = to_dmalab_chan(c);
	unsigned long flags;

	spin_lock_irqsave(&ch->vc.lock, flags);
	if (vchan_issue_pending(&ch->vc) && !ch->active)
		dmalab_chan_start_next(ch);
	spin_unlock_irqrestore(&ch->vc.lock, flags);
	dmalab_chan_ring(ch);
}

static size_t dmalab_residue(struct dmalab_chan *ch, dma_cookie_t cookie)
{
	struct virt_dma_desc *vd;

	if (ch->active && ch->active->vd.tx.cookie == cookie)
		return ch->active->len - ch->active->done;
	vd = vchan_find_desc(&ch->vc, cookie);
	if (vd)
		return to_dmalab_desc(vd)->len;
	list_for_each_entry(vd, &ch->vc.desc_submitted, node)
		if (vd->tx.cookie == cookie)
			return to_dmalab_desc(vd)->len;
	return 0;
}

static bool dmalab_cookie_failed(struct dmalab_chan *ch, dma_cookie_t cookie)
{
	unsigned int i, n = min_t(unsigned int, ch->nfailed, DMALAB_FAILED_COOKIES);

	for (i = 0; i < n; i++)
		if (ch->failed[i] == cookie)
			return true;
	return false;
}

/*
 * DMA_COMPLETE, or DMA_ERROR for one of the last DMALAB_FAILED_COOKIES
 * transactions that ended with an error; in progress: the residue is the
 * length less the chunks completed (segment granularity).
 */
static enum dma_status dmalab_tx_status(struct dma_chan *c, dma_cookie_t cookie,
					struct dma_tx_state *state)
{
	struct dmalab_chan *ch = to_dmalab_chan(c);
	unsigned long flags;
	enum dma_status ret;

	ret = dma_cookie_status(c, cookie, state);
	spin_lock_irqsave(&ch->vc.lock, flags);
	if (ret == DMA_COMPLETE) {
		if (dmalab_cookie_failed(ch, cookie))
			ret = DMA_ERROR;
	} else if (state) {
		dma_set_residue(state, dmalab_residue(ch, cookie));
	}
	spin_unlock_irqrestore(&ch->vc.lock, flags);
	return ret;
}

/*
 * Stop the transaction on the hardware (a channel reset discards it
 * without a record) and drop everything queued, without callbacks.
 */
static int dmalab_terminate_all(struct dma_chan *c)
{
	struct dmalab_chan *ch = to_dmalab_chan(c);
	unsigned long flags;
	LIST_HEAD(head);

	spin_lock_irqsave(&ch->vc.lock, flags);
	if (ch->active) {
		if (ch->hw_cookie && dmalab_chan_usable(ch))
			dmalab_chan_reset(ch);
		ch->hw_cookie = 0;
		vchan_terminate_vdesc(&ch->active->vd);
		ch->active = NULL;
	}
	vchan_get_all_descriptors(&ch->vc, &head);
	spin_unlock_irqrestore(&ch->vc.lock, flags);
	vchan_dma_desc_free_list(&ch->vc, &head);
	return 0;
}

static void dmalab_synchronize(struct dma_chan *c)
{
	struct dmalab_chan *ch = to_dmalab_chan(c);

	tasklet_kill(&ch->task);
	vchan_synchronize(&ch->vc);
}

static void dmalab_free_chan_resources(struct dma_chan *c)
{
	struct dmalab_chan *ch = to_dmalab_chan(c);

	dmalab_terminate_all(c);
	dmalab_synchronize(c);
	vchan_free_chan_resources(&ch->vc);
}

static void dmalab_desc_free(struct virt_dma_desc *vd)
{
	kfree(to_dmalab_desc(vd));
}

void dmalab_dma_ops_init(struct dmalab_dev *dd)
{
	struct dma_device *dma = &dd->dma;

	dma_cap_set(DMA_MEMCPY, dma->cap_mask);
	dma->device_prep_dma_memcpy = dmalab_prep_memcpy;
	dma->copy_align = DMAENGINE_ALIGN_1_BYTE;
	if (dd->caps & DMALAB_CAPS_FILL) {
		dma_cap_set(DMA_MEMSET, dma->cap_mask);
		dma->device_prep_dma_memset = dmalab_prep_memset;
		dma->fill_align = DMAENGINE_ALIGN_1_BYTE;
	}
	dma->device_issue_pending = dmalab_issue_pending;
	dma->device_tx_status = dmalab_tx_status;
	dma->device_terminate_all = dmalab_terminate_all;
	dma->device_synchronize = dmalab_synchronize;
	dma->device_free_chan_resources = dmalab_free_chan_resources;
	dma->residue_granularity = DMA_RESIDUE_GRANULARITY_SEGMENT;
}

/* Coherent memory, virt-dma channel, tasklet, timer; then the hardware. */
int dmalab_chan_setup(struct dmalab_dev *dd, unsigned int index)
{
	struct dmalab_chan *ch = &dd->chan[index];
	size_t ring = dd->ring_entries * sizeof(*ch->ring);
	size_t comp = dd->ring_entries * sizeof(*ch->comp);
	dma_addr_t dma;
	void *mem;

	ch->dd = dd;
	ch->index = index;
	ch->regs = dd->regs + DMALAB_CHAN_REGS(index);
	ch->max_xfer = dd->max_xfer;
	/*
	 * Ring and completion ring 64-byte aligned, the shadow 8: the
	 * allocation is page aligned and both rings are multiples of 64.
	 */
	mem = dmam_alloc_coherent(&dd->pdev->dev, ring + comp + sizeof(*ch->shadow),
				  &dma, GFP_KERNEL);
	if (!mem)
		return -ENOMEM;
	ch->ring = mem;
	ch->ring_dma = dma;
	ch->comp = mem + ring;
	ch->comp_dma = dma + ring;
	ch->shadow = mem + ring + comp;
	ch->shadow_dma = dma + ring + comp;

	ch->vc.desc_free = dmalab_desc_free;
	vchan_init(&ch->vc, &dd->dma);
	tasklet_setup(&ch->task, dmalab_chan_tasklet);
	timer_setup(&ch->watchdog, dmalab_chan_watchdog, 0);
	return dmalab_chan_hw_init(ch);
}

/* remove(), first step: nothing more reaches the hardware. */
void dmalab_chan_stop_hw(struct dmalab_chan *ch)
{
	unsigned long flags;

	spin_lock_irqsave(&ch->vc.lock, flags);
	ch->dd->stopping = true;
	writel(DMALAB_CTRL_RESET, ch->regs + DMALAB_CH_CTRL);
	memset(ch->ring, 0, ch->dd->ring_entries * sizeof(*ch->ring));
	ch->db_gen++;
	WRITE_ONCE(ch->db, FIELD_PREP(DMALAB_DB_GEN, ch->db_gen));
	ch->hw_cookie = 0;
	spin_unlock_irqrestore(&ch->vc.lock, flags);
}

/* remove(), after the IRQs are freed: no timer or tasklet runs after. */
void dmalab_chan_quiesce(struct dmalab_chan *ch)
{
	del_timer_sync(&ch->watchdog);
	tasklet_kill(&ch->task);
}

/*
 * remove(), last step: outstanding transactions end ABORTED, their
 * callbacks have run when this returns.
 */
void dmalab_chan_abort_all(struct dmalab_chan *ch)
{
	unsigned long flags;

	spin_lock_irqsave(&ch->vc.lock, flags);
	vchan_issue_pending(&ch->vc);
	dmalab_chan_fail_all(ch);
	spin_unlock_irqrestore(&ch->vc.lock, flags);
	tasklet_kill(&ch->vc.task);
}
