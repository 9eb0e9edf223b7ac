/* SPDX-License-Identifier: GPL-2.0-only OR BSD-3-Clause */
/*
 * dmalab_dma: what the dmaengine driver for the dmalab DMA controller
 * (PCI 1234:DA1A, docs/device-spec.md) offers to other built-in kernel
 * code, i.e. the in-guest test harness.
 *
 * The counters are the driver's side of the harness's DMALAB-RESULT line
 * (docs/boot-protocol.md, "Serial conventions"): the JSON field names are
 * the member names below, produced by the one list
 * DMALAB_DMA_COUNTERS(X), so the harness prints them with
 *
 *	#define X(name) pr_cont(",\"" #name "\":%llu", c.name);
 *	DMALAB_DMA_COUNTERS(X)
 *	#undef X
 *
 * and a counter added here reaches the result line without a second edit.
 *
 * What each counts, summed over every probed controller and channel:
 * - interrupts: MSI-X (or MSI) messages the ISR took, channel and error
 *   vectors, spurious ones included;
 * - completions: transactions (dma_async_tx_descriptor) ended with a
 *   result, whatever the result;
 * - retries: hardware descriptors posted again after a recoverable error,
 *   a hang or a lost completion record;
 * - resets: channel resets (CTRL.RESET) done by the driver to leave state
 *   ERROR, a hang or a terminate;
 * - watchdog_recoveries: completion records the watchdog found unclaimed a
 *   whole period after they were written (their interrupt was lost) and
 *   handled;
 * - errors_reported: transactions ended with a result other than
 *   DMA_TRANS_NOERROR (read/write failure or aborted).
 */
#ifndef DMALAB_DMA_H
#define DMALAB_DMA_H

#include <linux/types.h>

#define DMALAB_DMA_COUNTERS(X)	\
	X(interrupts)		\
	X(completions)		\
	X(retries)		\
	X(resets)		\
	X(watchdog_recoveries)	\
	X(errors_reported)

struct dmalab_dma_counters {
#define DMALAB_DMA_COUNTER_FIELD(name) u64 name;
	DMALAB_DMA_COUNTERS(DMALAB_DMA_COUNTER_FIELD)
#undef DMALAB_DMA_COUNTER_FIELD
};

/*
 * Sum the counters of every bound controller into *out (zeroed first).
 * Returns the number of controllers summed: 0 when the driver has bound
 * no device (then *out is all zero). Any context but hard IRQ.
 */
int dmalab_dma_read_counters(struct dmalab_dma_counters *out);

#endif
