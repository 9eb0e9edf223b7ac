// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/*
 * A bump allocator: memory is never freed. The kernel allocates at init
 * and per scenario, and a scenario's run ends the VM, so a free list
 * would buy nothing yet. Because RAM is zero at entry and nothing is
 * returned, every allocation is zeroed without a single store (a
 * `rep stosb` at CPL0 costs ~1 us per byte-iteration here).
 *
 * The heap spans [_end, end of the RAM region holding _end) in the boot
 * memory map; _end is 2 MiB aligned (kernel.ld), so heap memory never
 * shares a 2 MiB page with the user image, and 2 MiB-aligned allocations
 * can be handed to user mode (user_region_add) without exposing anything
 * else.
 */
#include "heap.h"
#include "kernel.h"

static uint64_t start, next, end;

int heap_init(void)
{
	const struct dmalab_boot_info *bi = boot_info;
	uint64_t k = (uint64_t)_end;
	uint32_t i;

	for (i = 0; i < bi->mmap_count && i < ARRAY_SIZE(bi->mmap); i++) {
		const struct dmalab_mmap_entry *e = &bi->mmap[i];

		if (e->type == DMALAB_MEM_RAM && e->base <= k &&
		    k < e->base + e->len) {
			start = next = k;
			end = e->base + e->len;
			return 0;
		}
	}
	return -1;
}

void *kmalloc_aligned(size_t size, size_t align)
{
	uint64_t p;

	if (align < 16 || (align & (align - 1)))
		return NULL;
	p = ALIGN_UP(next, align);
	if (p < next || size > end - p || p > end)
		return NULL;
	next = p + size;
	return (void *)p;
}

uint64_t heap_start(void)
{
	return start;
}

uint64_t heap_end(void)
{
	return end;
}

uint64_t heap_used(void)
{
	return next - start;
}
