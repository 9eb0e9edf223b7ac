// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/*
 * The hostile scenario's guard: random values that are hostile to the
 * device and the VMM but not to the guest itself, so that a dead guest
 * always means a VMM or device bug.
 *
 * The rules, and how each is kept:
 * - No interrupt on vectors 0-31 or on the timer: every MSI-X entry's and
 *   the MSI capability's message data is always our catch-all vector (a
 *   registered handler that counts and EOIs). Any write that touches an
 *   entry's data or control dword, or the MSI capability, first rewrites
 *   the data to that vector; the data bytes of the write itself are
 *   replaced. Addresses stay garbage (any destination ID, high dword).
 *   After an FLR (data resets to 0) the table is reprogrammed before
 *   anything else runs.
 * - No DMA write into memory the kernel uses: the device writes guest
 *   memory only through completion records (COMP_BASE) and descriptor
 *   destinations. COMP_BASE is only ever a sanitized value (inside a
 *   dedicated completion arena sized for the largest ring at any
 *   offset, or outside RAM); RING_BASE only points into a descriptor
 *   arena that holds nothing but zeros (len 0: ERR_LEN) and descriptors
 *   this file wrote, whose destinations lie in a scratch buffer or
 *   outside RAM (or straddle the top of RAM, whose last pages the bump
 *   heap never reaches). Raw register writes that touch RING_BASE,
 *   RING_SIZE or COMP_BASE of any channel are turned into sanitized 8-byte
 *   writes. SHADOW_BASE may be anything: the device only reads it.
 * - No access that faults the guest: MMIO goes to where BAR0/BAR2 really
 *   are (read back after every config write that may move them) when that
 *   is inside the PCI window, else to an undecoded window address. Both
 *   sanitizers apply when the two BARs overlap or neither is mapped.
 * - The LAPIC is never touched; conf1 accesses to other functions never
 *   select our device.
 */
#include "kernel.h"
#include "scenarios/hostile.h"

uint64_t hg_rnd(void)
{
	hst.rng ^= hst.rng >> 12;
	hst.rng ^= hst.rng << 25;
	hst.rng ^= hst.rng >> 27;
	return hst.rng * 0x2545f4914f6cdd1dull;
}

uint64_t hg_below(uint64_t n)
{
	return n ? hg_rnd() % n : 0;
}

bool hg_overlaps(uint64_t off, unsigned int size, uint64_t lo,
		     uint64_t hi)
{
	return off < hi && off + size > lo;
}

/* --- Where the device's registers are ---------------------------------- */

bool hg_in_window(uint64_t bar)
{
	return bar >= hst.win_base && bar <= hst.win_end - DMADEV_BAR_SIZE &&
	       !(bar & (DMADEV_BAR_SIZE - 1));
}

void hg_reread_bars(void)
{
	hst.dev.bar0 = dmadev_bar_read(&hst.dev, 0);
	hst.dev.bar2 = dmadev_bar_read(&hst.dev, 2);
}

/* The page MMIO ops of bar n go to, and which sanitizers apply to it. */
uint64_t hg_target(unsigned int n, bool *regs, bool *table)
{
	uint64_t b0 = hst.dev.bar0, b2 = hst.dev.bar2;
	bool ok0 = hg_in_window(b0), ok2 = hg_in_window(b2);
	uint64_t t = n == 0 ? b0 : b2;

	/* Not decoded (unless a BAR moved there): mid-window. */
	if (!(n == 0 ? ok0 : ok2))
		t = hst.win_base + ((hst.win_end - hst.win_base) / 2 &
				  ~(DMADEV_BAR_SIZE - 1));
	*regs = t == b0 || !(t == b2);
	*table = t == b2 || !(t == b0);
	return t;
}

void hg_mmio_write(uint64_t a, unsigned int size, uint64_t v)
{
	if (size == 1)
		*(volatile uint8_t *)a = (uint8_t)v;
	else if (size == 2)
		*(volatile uint16_t *)a = (uint16_t)v;
	else if (size == 4)
		*(volatile uint32_t *)a = (uint32_t)v;
	else
		*(volatile uint64_t *)a = v;
}

uint64_t hg_mmio_read(uint64_t a, unsigned int size)
{
	if (size == 1)
		return *(volatile uint8_t *)a;
	if (size == 2)
		return *(volatile uint16_t *)a;
	if (size == 4)
		return *(volatile uint32_t *)a;
	return *(volatile uint64_t *)a;
}

/* --- Sanitized values --------------------------------------------------- */

/* An address the device cannot reach as RAM. */
uint64_t hg_addr_outside(void)
{
	switch (hg_below(5)) {
	case 0:
		return hst.ram_end + hg_below(65536);
	case 1:
		return hg_rnd() | 1ull << 40;
	case 2:
		return DMA_MSI_ADDR_BASE + hg_below(4096);
	case 3:
		return hst.win_base + hg_below(hst.win_end - hst.win_base);
	default:
		return ~0ull - hg_below(4096);
	}
}

uint64_t hg_ring_base_value(unsigned int c, bool comp)
{
	uint8_t *arena = comp ? hst.comp_arena : hst.desc_arena;
	uint64_t off = hg_below(4) ? (c * 64 * 64) % ARENA_SLACK :
				  hg_below(ARENA_SLACK);

	if (!hg_below(5))
		return hg_addr_outside();
	if (!comp)
		hst.ring_base[c] = off;
	return (uint64_t)arena + off;
}

uint32_t hg_ring_size_value(void)
{
	uint32_t v;

	switch (hg_below(4)) {
	case 0:
		return (uint32_t)hg_rnd();
	case 1:
		return (uint32_t)hg_below(8);
	default:
		v = 2u << hg_below(16);
		return v > hst.dev.max_ring ? hst.dev.max_ring : v;
	}
}

/* A descriptor whose every write lands in scratch, outside RAM, or in the
 * last (never allocated) bytes of RAM. */
void hg_random_desc(struct dma_desc *d)
{
	static const uint32_t lens[] = { 0, 1, 8, 64, 4096, 65536 };
	uint64_t off;

	d->op = hg_below(4) ? (uint8_t)hg_below(2) : (uint8_t)hg_rnd();
	d->flags = (uint8_t)(hg_below(4) ? hg_below(4) : hg_rnd());
	d->reserved = (uint16_t)hg_rnd();
	d->cookie = hg_rnd();
	switch (hg_below(5)) {
	case 0:
		d->len = (uint32_t)hg_rnd();
		break;
	case 1:
		d->len = hst.dev.max_xfer + (uint32_t)hg_below(4096);
		break;
	case 2:
		d->len = lens[hg_below(ARRAY_SIZE(lens))];
		break;
	default:
		d->len = 1 + (uint32_t)hg_below(SCRATCH_LEN);
	}
	switch (hg_below(4)) {
	case 0:
		d->src = hg_rnd() % hst.ram_end;
		break;
	case 1:
		d->src = hg_addr_outside();
		break;
	default:
		d->src = (uint64_t)hst.scratch + hg_below(SCRATCH_LEN);
	}
	if (d->len <= SCRATCH_LEN && hg_below(4)) {
		off = hg_below(SCRATCH_LEN - d->len + 1);
		d->dst = (uint64_t)hst.scratch + off;
	} else if (d->len > 1 && d->len <= 4096 && hg_below(2)) {
		d->dst = hst.ram_end - 1 - hg_below(d->len - 1); /* straddles */
	} else {
		d->dst = hg_addr_outside();
	}
}

/* --- Sanitizing raw writes ------------------------------------------ */

/* A BAR0 write touching RING_BASE, RING_SIZE or COMP_BASE of a channel
 * becomes a sanitized write to that register. Returns true if handled. */
bool hg_regs_sanitize(uint64_t page, uint64_t off, unsigned int size)
{
	unsigned int c;
	uint64_t rel;

	if (off < DMA_CHAN_BASE(0) || off >= DMA_CHAN_BASE(DMADEV_MAX_CHANNELS))
		return false;
	c = (unsigned int)((off - DMA_CHAN_BASE(0)) / DMA_CH_SIZE);
	rel = off - DMA_CHAN_BASE(c);
	/* Misaligned across two channel blocks: the device ignores it, and
	 * it could touch the next block's RING_BASE: not sent. */
	if (rel + size > DMA_CH_SIZE)
		return true;
	if (hg_overlaps(rel, size, DMA_CH_RING_BASE, DMA_CH_RING_BASE + 8)) {
		hg_mmio_write(page + DMA_CHAN_BASE(c) + DMA_CH_RING_BASE, 8,
			   hg_ring_base_value(c, false));
		return true;
	}
	if (hg_overlaps(rel, size, DMA_CH_RING_SIZE, DMA_CH_RING_SIZE + 4)) {
		hg_mmio_write(page + DMA_CHAN_BASE(c) + DMA_CH_RING_SIZE, 4,
			   hg_ring_size_value());
		return true;
	}
	if (hg_overlaps(rel, size, DMA_CH_COMP_BASE, DMA_CH_COMP_BASE + 8)) {
		hg_mmio_write(page + DMA_CHAN_BASE(c) + DMA_CH_COMP_BASE, 8,
			   hg_ring_base_value(c, true));
		return true;
	}
	return false;
}

uint64_t hg_splice(uint64_t v, uint64_t off, unsigned int size,
		   uint64_t field, unsigned int flen, uint32_t fval)
{
	unsigned int i;

	for (i = 0; i < size; i++) {
		uint64_t b = off + i;

		if (b < field || b >= field + flen)
			continue;
		v &= ~(0xffull << (8 * i));
		v |= (uint64_t)((fval >> (8 * (b - field))) & 0xff) << (8 * i);
	}
	return v;
}

/* A BAR2 write touching entry e's data or control dword: e's data := our
 * vector first; the write goes ahead with its data bytes replaced. (A
 * write of at most 8 bytes reaches one data dword at most: e's.) */
void hg_table_write(uint64_t page, uint64_t off, unsigned int size,
		    uint64_t v)
{
	uint64_t e = off & ~15ull;

	if (off < DMA_MSIX_PBA && hg_overlaps(off & 15, size, 8, 16)) {
		hg_mmio_write(page + e + DMA_MSIX_DATA, 4, (uint32_t)hst.cv);
		v = hg_splice(v, off, size, e + DMA_MSIX_DATA, 4,
			      (uint32_t)hst.cv);
	}
	hg_mmio_write(page + off, size, v);
}

unsigned int hg_random_size(uint64_t *off, uint64_t limit)
{
	static const uint8_t sizes[] = { 1, 2, 4, 4, 4, 8, 8 };
	unsigned int size = sizes[hg_below(ARRAY_SIZE(sizes))];

	*off = hg_below(limit);
	if (hg_below(8))
		*off &= ~(uint64_t)(size - 1); /* mostly aligned */
	if (*off + size > limit)
		*off = limit - size;
	return size;
}

/* --- Repair --------------------------------------------------------- */

/* Before a reset clears it: add BAD_ACCESS to the total (if BAR0 decodes:
 * all ones means it does not). */
void hg_note_bad_access(void)
{
	uint32_t v;

	if (!hg_in_window(hst.dev.bar0) || hst.dev.bar0 == hst.dev.bar2)
		return;
	v = dmadev_read32(&hst.dev, DMA_REG_BAD_ACCESS);
	if (v != ~0u)
		hst.bad_before_resets += v;
}

void hg_program_table(void)
{
	unsigned int i;

	for (i = 0; i < hst.dev.nvec; i++)
		dmadev_msix_program(&hst.dev, i, hst.cv, hg_below(4) == 0);
	dmadev_cfg_write(&hst.dev, DMA_CFG_MSI_DATA, 2, (uint32_t)hst.cv);
	dmadev_msix_enable(&hst.dev, true);
}

/* BARs to the contract's addresses, memory space + bus master. */
void hg_repair(void)
{
	dmadev_set_bars(&hst.dev, DMADEV_BAR0_DEFAULT, DMADEV_BAR2_DEFAULT);
}

/* After an FLR: the table data is 0 again; nothing runs before this. */
void hg_repair_after_flr(void)
{
	hst.flrs++;
	hg_repair();
	hg_program_table();
}
