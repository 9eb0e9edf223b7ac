/* SPDX-License-Identifier: GPL-2.0-only OR BSD-3-Clause */
/*
 * dmalab_dma: what the dmaengine driver for the dmalab DMA controller
 * (PCI 1234:DA1A, docs/device-spec.md) offers to other built-in kernel
 * code, i.e. the in-guest test harness.
 *
 * The counters are the driver's side of the harness's DMALAB-RESULT line
 * (docs/boot-protocol.md, "Serial conventions"). One list defines them:
 * enum dmalab_dma_counter, and dmalab_dma_counter_names[] gives each its
 * JSON field name, so the harness prints them with
 *
 *	u64 v[DMALAB_DMA_NR_COUNTERS];
 *
 *	dmalab_dma_read_counters(v);
 *	for (i = 0; i < DMALAB_DMA_NR_COUNTERS; i++)
 *		pr_cont(",\"%s\":%llu", dmalab_dma_counter_names[i], v[i]);
 *
 * and a counter added here reaches the result line without a second edit.
 *
 * What each counts, over every controller and channel the driver has
 * bound since boot (a controller unbound and bound again keeps counting):
 * - interrupts: MSI-X (or MSI) messages the ISR took, channel and error
 *   vectors, spurious ones included;
 * - completions: transactions (dma_async_tx_descriptor) ended with a
 *   result, whatever the result;
 * - retries: hardware descriptors posted again after a recoverable error,
 *   a hang or a lost completion record;
 * - resets: channel resets (CTRL.RESET) done by the driver to leave state
 *   ERROR, a hang or a terminate, and the one that follows a doorbell
 *   written while another reset happened (dmalab_dma_chan.c);
 * - watchdog_recoveries: completion records the watchdog found unclaimed a
 *   whole period after they were written (their interrupt was lost) and
 *   handled;
 * - errors_reported: transactions ended with a result other than
 *   DMA_TRANS_NOERROR (read/write failure or aborted).
 *
 * The KUnit suite "dmalab_dma" (CONFIG_DMALAB_DMA_KUNIT_TEST) takes a
 * channel no other client holds (its cases are skipped otherwise): dmatest
 * keeps the channels it ran on until they are released, which the harness
 * does before it runs KUnit.
 *
 * Command-line parameters (dmalab_dma.<name>=): watchdog_ms (20),
 * timeout_ms (200), max_retries (3), markers (0: 1 writes TRACE_MARKER at
 * ISR, tasklet, completion and watchdog runs), force_msi (0: 1 uses the
 * one-message MSI fallback, whose ISR reads and clears INT_STATUS).
 */
#ifndef DMALAB_DMA_H
#define DMALAB_DMA_H

#include <linux/types.h>

enum dmalab_dma_counter {
	DMALAB_DMA_INTERRUPTS,
	DMALAB_DMA_COMPLETIONS,
	DMALAB_DMA_RETRIES,
	DMALAB_DMA_RESETS,
	DMALAB_DMA_WATCHDOG_RECOVERIES,
	DMALAB_DMA_ERRORS_REPORTED,
	DMALAB_DMA_NR_COUNTERS
};

/* "interrupts", "completions", ...: the JSON field names, by counter. */
extern const char * const dmalab_dma_counter_names[DMALAB_DMA_NR_COUNTERS];

/*
 * Copy the counters into out[]. Returns the number of controllers bound
 * now (0: none; out[] then holds what earlier bindings counted, all zero
 * if there never was one). Any context.
 */
int dmalab_dma_read_counters(u64 out[DMALAB_DMA_NR_COUNTERS]);

#endif
