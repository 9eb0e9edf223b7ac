/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Statistics for the benchmark scenarios (irq-bench, irp-bench): order
 * statistics over collected TSC samples, taken after the measured loop,
 * never on its hot path.
 */
#ifndef DMALAB_BENCHSTAT_H
#define DMALAB_BENCHSTAT_H

#include <stdint.h>

/* The k-th smallest of v[0..n) (0-based; rearranges v): Wirth's selection,
 * O(n) on average, no allocation. */
uint64_t select_kth(uint64_t *v, long n, long k);

/* TSC cycles to ns with the boot info's TSC frequency (cycles if unknown). */
uint64_t tsc_to_ns(uint64_t cycles);

#endif
