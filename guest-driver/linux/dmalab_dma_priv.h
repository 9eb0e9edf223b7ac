/* SPDX-License-Identifier: GPL-2.0-only OR BSD-3-Clause */
/*
 * dmalab_dma internals, shared by the PCI part (dmalab_dma_main.c), the
 * channel part (dmalab_dma_chan.c) and the KUnit suite.
 *
 * One transaction (a virt-dma descriptor) is on the hardware per channel
 * at a time, as one hardware descriptor per chunk of at most MAX_XFER
 * bytes, posted one after the other. That keeps the dmaengine promise that
 * cookies complete in order while the driver retries a failed chunk or
 * reprograms the rest of a short one, and it makes every chunk take the
 * interrupt path, so a lost interrupt is always the watchdog's to find.
 *
 * Locking: all channel state below the "vc.lock" line is protected by
 * vc.lock, taken with spin_lock_irqsave (dmaengine clients may prepare and
 * issue from hard IRQ context). The ISRs take no lock: they count, mark
 * and schedule the channel tasklet. The doorbell is the exception: a post
 * under vc.lock only records it in ch->db, and whoever dropped the lock
 * rings it (dmalab_chan_ring), so the TAIL write runs with interrupts
 * enabled where the caller's context allows.
 */
#ifndef DMALAB_DMA_PRIV_H
#define DMALAB_DMA_PRIV_H

#include <linux/atomic.h>
#include <linux/interrupt.h>
#include <linux/pci.h>
#include <linux/timer.h>

#include "virt-dma.h"
#include "dmalab_dma.h"
#include "dmalab_dma_regs.h"

#define DMALAB_MAX_CHANNELS	16
#define DMALAB_RING_ENTRIES	16
#define DMALAB_FAILED_COOKIES	16
#define DMALAB_CHECK_STATE	0

/* ch->db: the doorbell owed after vc.lock is dropped (dmalab_chan_ring). */
#define DMALAB_DB_OWED		BIT_ULL(63)
#define DMALAB_DB_GEN		GENMASK_ULL(62, 32)	/* resets, for races */
#define DMALAB_DB_TAIL		GENMASK_ULL(31, 0)

struct dmalab_dev;

/* One dmaengine transaction: memcpy (COPY) or memset (FILL). */
struct dmalab_desc {
	struct virt_dma_desc vd;
	u8 op;
	u64 src;		/* COPY: source address; FILL: the pattern */
	dma_addr_t dst;
	size_t len;
	size_t done;		/* bytes moved by completed chunks */
	unsigned int tries;	/* posts of the current chunk beyond the first */
};

struct dmalab_chan {
	struct virt_dma_chan vc;
	struct dmalab_dev *dd;
	unsigned int index;
	void __iomem *regs;		/* this channel's register block */
	struct tasklet_struct task;	/* consumes completion records */
	struct timer_list watchdog;

	/* Coherent memory: ring, completion ring, shadow; one allocation. */
	struct dmalab_hw_desc *ring;
	struct dmalab_hw_comp *comp;
	struct dmalab_hw_shadow *shadow;
	dma_addr_t ring_dma, comp_dma, shadow_dma;

	/*
	 * Bit DMALAB_CHECK_STATE, set by the error ISR: the tasklet reads
	 * the channel state.
	 */
	unsigned long isr_flags;
	/* Written under vc.lock, claimed without it (cmpxchg). */
	u64 db;

	/* --- vc.lock --- */
	u32 tail;		/* next free ring slot */
	u32 comp_head;		/* next completion record to consume */
	u8 phase;		/* expected PHASE of the record at comp_head */
	bool dead;		/* reset failed: fail all work */
	u32 db_gen;		/* channel resets, DMALAB_DB_GEN of db */
	struct dmalab_desc *active;	/* transaction on the hardware */
	u64 hw_cookie;		/* cookie of the chunk in flight; 0: none */
	u64 next_cookie;
	u32 max_xfer;		/* chunk limit: MAX_XFER (the tests lower it) */
	u32 chunk;		/* length of the chunk in flight */
	unsigned long posted;	/* jiffies when the chunk was posted */
	u64 wd_seen;		/* chunk whose record the watchdog saw ready */
	u64 stale_records;	/* records for no chunk in flight */
	dma_cookie_t failed[DMALAB_FAILED_COOKIES]; /* for tx_status */
	unsigned int nfailed;
};

struct dmalab_dev {
	struct dma_device dma;
	struct pci_dev *pdev;
	void __iomem *regs;		/* BAR0 */
	struct list_head node;		/* in the list of bound devices */
	unsigned int channels;
	u32 caps;
	u32 max_xfer;			/* bytes per hardware descriptor */
	u32 ring_entries;
	unsigned int nvec;		/* channels + 1 under MSI-X, else 1 */
	bool msix;
	bool removed;			/* reads returned all ones */
	bool stopping;			/* remove() began: post nothing */
	struct dmalab_chan chan[DMALAB_MAX_CHANNELS];
};

extern atomic64_t dmalab_stats[DMALAB_DMA_NR_COUNTERS];

/* Tunables (module parameters, dmalab_dma.<name>= on the command line). */
extern unsigned int dmalab_watchdog_ms;
extern unsigned int dmalab_timeout_ms;
extern unsigned int dmalab_max_retries;
extern bool dmalab_markers;

static inline struct dmalab_chan *to_dmalab_chan(struct dma_chan *c)
{
	return container_of(c, struct dmalab_chan, vc.chan);
}

static inline struct dmalab_desc *to_dmalab_desc(struct virt_dma_desc *vd)
{
	return container_of(vd, struct dmalab_desc, vd);
}

static inline void dmalab_count(enum dmalab_dma_counter counter)
{
	atomic64_inc(&dmalab_stats[counter]);
}

/* dmalab_dma_chan.c: the hardware side; vc.lock held unless noted. */
void dmalab_marker(struct dmalab_chan *ch, unsigned int kind);
bool dmalab_chan_usable(struct dmalab_chan *ch);
int dmalab_chan_hw_init(struct dmalab_chan *ch);	/* or in probe */
int dmalab_chan_reset(struct dmalab_chan *ch);
void dmalab_chan_start_next(struct dmalab_chan *ch);
void dmalab_chan_fail_all(struct dmalab_chan *ch);
void dmalab_chan_ring(struct dmalab_chan *ch);	/* vc.lock not held */
void dmalab_chan_tasklet(struct tasklet_struct *t);
void dmalab_chan_watchdog(struct timer_list *t);
irqreturn_t dmalab_chan_isr(int irq, void *data);
irqreturn_t dmalab_error_isr(int irq, void *data);
irqreturn_t dmalab_msi_isr(int irq, void *data);

/* dmalab_dma_ops.c: the dmaengine side, and a channel in probe/remove. */
void dmalab_dma_ops_init(struct dmalab_dev *dd);
int dmalab_chan_setup(struct dmalab_dev *dd, unsigned int index);
void dmalab_chan_stop_hw(struct dmalab_chan *ch);
void dmalab_chan_quiesce(struct dmalab_chan *ch);
void dmalab_chan_abort_all(struct dmalab_chan *ch);

/* dmalab_dma_main.c: for the KUnit suite */
bool dmalab_dma_chan_filter(struct dma_chan *chan, void *param);

#endif
