/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The kernel heap: a bump allocator over [_end, end of that RAM region).
 */
#ifndef DMALAB_HEAP_H
#define DMALAB_HEAP_H

#include <stddef.h>
#include <stdint.h>

/* Find the RAM region that holds _end in the boot memory map. 0 or -1. */
int heap_init(void);
/* size bytes aligned to align (a power of two, at least 16); zeroed
 * (never-used RAM is zero at entry); NULL when exhausted. */
void *kmalloc_aligned(size_t size, size_t align);
static inline void *kmalloc(size_t size)
{
	return kmalloc_aligned(size, 16);
}

uint64_t heap_start(void);
uint64_t heap_end(void);
uint64_t heap_used(void);

#endif
