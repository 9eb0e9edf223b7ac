// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/*
 * hostile: a guest that attacks the DMA controller and the VMM with random
 * register values, config-space writes, descriptors, ring indices, MSI-X
 * table garbage and BAR moves, then proves the device still serves.
 *
 * Command line: ops=N (default 10000), seed=S (xorshift64*, default 1).
 * Every op is one or a few exits (~11 us each here) plus ~100-200
 * emulated instructions of its own: 10,000 ops take ~1-3 s.
 *
 * What the guest must NOT do to itself (so that a dead guest always means
 * a VMM or device bug), and how each rule is kept:
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
 * At the end: restore BARs + command, read BAD_ACCESS and the channel
 * states, FLR, set everything up again and do one checked copy with an
 * interrupt; `hostile: recovery …` and the result line report it.
 */
#include "dmadev.h"
#include "heap.h"
#include "kernel.h"
#include "lapic.h"
#include "platform.h"
#include "scenarios/scenario.h"

#define TAG "hostile"
#define DEFAULT_OPS 10000
#define MAX_OPS 10000000
#define ARENA_SLACK 4096 /* random offsets of ring bases */
#define SCRATCH_LEN 65536
#define SHADOWS_LEN 4096
#define RECOVERY_LEN 4096
#define TIMEOUT_MS 2000
#define CFG_MSI_END 0x68

enum op_kind {
	OP_REG_WRITE,
	OP_REG_READ,
	OP_TABLE_WRITE,
	OP_CFG_WRITE,
	OP_CFG_READ,
	OP_POST,
	OP_CHAN_SETUP,
	OP_INDICES,
	OP_MSIX_ENTRY,
	OP_BAR_MOVE,
	OP_OTHER_FN,
	OP_REPAIR,
	OP_RESET,
	OP_KINDS,
};

static const char *const op_names[OP_KINDS] = {
	"reg-write", "reg-read", "table-write", "cfg-write", "cfg-read",
	"post", "chan-setup", "indices", "msix-entry", "bar-move",
	"other-fn", "repair", "reset",
};

/* Cumulative weights out of 256, in enum order. */
static const uint8_t op_weight[OP_KINDS] = {
	60, 20, 22, 20, 8, 50, 14, 16, 12, 10, 6, 14, 4,
};

struct hostile {
	struct dmadev dev;
	uint64_t rng;
	int cv; /* catch-all vector */
	uint64_t ram_end;
	uint64_t win_base, win_end;
	uint8_t *desc_arena, *comp_arena, *scratch;
	uint64_t *shadows; /* one 8-byte shadow per channel */
	uint64_t arena_len; /* ARENA_SLACK + max_ring * 32 */
	uint64_t ring_base[DMADEV_MAX_CHANNELS]; /* as last set, arena-relative */
	uint32_t ring_size[DMADEV_MAX_CHANNELS];
	uint32_t tail[DMADEV_MAX_CHANNELS];
	uint64_t count[OP_KINDS];
	uint64_t flrs; /* FLR writes issued (each followed by a repair) */
	uint64_t bad_before_resets; /* BAD_ACCESS read before each reset */
};

static struct hostile h;
static volatile uint64_t cv_hits;

static void on_any(struct trap_frame *f, void *ctx)
{
	(void)f;
	(void)ctx;
	__atomic_fetch_add(&cv_hits, 1, __ATOMIC_RELAXED);
	lapic_eoi();
}

static uint64_t rnd(void)
{
	h.rng ^= h.rng >> 12;
	h.rng ^= h.rng << 25;
	h.rng ^= h.rng >> 27;
	return h.rng * 0x2545f4914f6cdd1dull;
}

static uint64_t below(uint64_t n)
{
	return n ? rnd() % n : 0;
}

static bool overlaps(uint64_t off, unsigned int size, uint64_t lo,
		     uint64_t hi)
{
	return off < hi && off + size > lo;
}

/* --- Where the device's registers are ---------------------------------- */

static bool in_window(uint64_t bar)
{
	return bar >= h.win_base && bar <= h.win_end - DMADEV_BAR_SIZE &&
	       !(bar & (DMADEV_BAR_SIZE - 1));
}

static void reread_bars(void)
{
	h.dev.bar0 = dmadev_bar_read(&h.dev, 0);
	h.dev.bar2 = dmadev_bar_read(&h.dev, 2);
}

/* The page MMIO ops of bar n go to, and which sanitizers apply to it. */
static uint64_t target(unsigned int n, bool *regs, bool *table)
{
	uint64_t b0 = h.dev.bar0, b2 = h.dev.bar2;
	bool ok0 = in_window(b0), ok2 = in_window(b2);
	uint64_t t = n == 0 ? b0 : b2;

	/* Not decoded (unless a BAR moved there): mid-window. */
	if (!(n == 0 ? ok0 : ok2))
		t = h.win_base + ((h.win_end - h.win_base) / 2 &
				  ~(DMADEV_BAR_SIZE - 1));
	*regs = t == b0 || !(t == b2);
	*table = t == b2 || !(t == b0);
	return t;
}

static void mmio_write(uint64_t a, unsigned int size, uint64_t v)
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

static uint64_t mmio_read(uint64_t a, unsigned int size)
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
static uint64_t addr_outside(void)
{
	switch (below(5)) {
	case 0:
		return h.ram_end + below(65536);
	case 1:
		return rnd() | 1ull << 40;
	case 2:
		return DMA_MSI_ADDR_BASE + below(4096);
	case 3:
		return h.win_base + below(h.win_end - h.win_base);
	default:
		return ~0ull - below(4096);
	}
}

static uint64_t ring_base_value(unsigned int c, bool comp)
{
	uint8_t *arena = comp ? h.comp_arena : h.desc_arena;
	uint64_t off = below(4) ? (c * 64 * 64) % ARENA_SLACK :
				  below(ARENA_SLACK);

	if (!below(5))
		return addr_outside();
	if (!comp)
		h.ring_base[c] = off;
	return (uint64_t)arena + off;
}

static uint32_t ring_size_value(void)
{
	uint32_t v;

	switch (below(4)) {
	case 0:
		return (uint32_t)rnd();
	case 1:
		return (uint32_t)below(8);
	default:
		v = 2u << below(16);
		return v > h.dev.max_ring ? h.dev.max_ring : v;
	}
}

/* A descriptor whose every write lands in scratch, outside RAM, or in the
 * last (never allocated) bytes of RAM. */
static void random_desc(struct dma_desc *d)
{
	static const uint32_t lens[] = { 0, 1, 8, 64, 4096, 65536 };
	uint64_t off;

	d->op = below(4) ? (uint8_t)below(2) : (uint8_t)rnd();
	d->flags = (uint8_t)(below(4) ? below(4) : rnd());
	d->reserved = (uint16_t)rnd();
	d->cookie = rnd();
	switch (below(5)) {
	case 0:
		d->len = (uint32_t)rnd();
		break;
	case 1:
		d->len = h.dev.max_xfer + (uint32_t)below(4096);
		break;
	case 2:
		d->len = lens[below(ARRAY_SIZE(lens))];
		break;
	default:
		d->len = 1 + (uint32_t)below(SCRATCH_LEN);
	}
	switch (below(4)) {
	case 0:
		d->src = rnd() % h.ram_end;
		break;
	case 1:
		d->src = addr_outside();
		break;
	default:
		d->src = (uint64_t)h.scratch + below(SCRATCH_LEN);
	}
	if (d->len <= SCRATCH_LEN && below(4)) {
		off = below(SCRATCH_LEN - d->len + 1);
		d->dst = (uint64_t)h.scratch + off;
	} else if (d->len > 1 && d->len <= 4096 && below(2)) {
		d->dst = h.ram_end - 1 - below(d->len - 1); /* straddles */
	} else {
		d->dst = addr_outside();
	}
}

/* --- Sanitizing raw writes ------------------------------------------ */

/* A BAR0 write touching RING_BASE, RING_SIZE or COMP_BASE of a channel
 * becomes a sanitized write to that register. Returns true if handled. */
static bool regs_sanitize(uint64_t page, uint64_t off, unsigned int size)
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
	if (overlaps(rel, size, DMA_CH_RING_BASE, DMA_CH_RING_BASE + 8)) {
		mmio_write(page + DMA_CHAN_BASE(c) + DMA_CH_RING_BASE, 8,
			   ring_base_value(c, false));
		return true;
	}
	if (overlaps(rel, size, DMA_CH_RING_SIZE, DMA_CH_RING_SIZE + 4)) {
		mmio_write(page + DMA_CHAN_BASE(c) + DMA_CH_RING_SIZE, 4,
			   ring_size_value());
		return true;
	}
	if (overlaps(rel, size, DMA_CH_COMP_BASE, DMA_CH_COMP_BASE + 8)) {
		mmio_write(page + DMA_CHAN_BASE(c) + DMA_CH_COMP_BASE, 8,
			   ring_base_value(c, true));
		return true;
	}
	return false;
}

/* A BAR2 write touching an entry's data or control: data := our vector
 * first; the write goes ahead with its data bytes replaced. */
static void table_write(uint64_t page, uint64_t off, unsigned int size,
			uint64_t v)
{
	uint64_t e = off & ~15ull, i;

	if (off >= DMA_MSIX_PBA || !overlaps(off & 15, size, 8, 16)) {
		mmio_write(page + off, size, v);
		return;
	}
	mmio_write(page + e + DMA_MSIX_DATA, 4, (uint32_t)h.cv);
	if (off + size > e + 16)
		mmio_write(page + e + 16 + DMA_MSIX_DATA, 4, (uint32_t)h.cv);
	/* Replace the bytes of v that land on a data dword. */
	for (i = 0; i < size; i++) {
		uint64_t b = (off + i) & 15;

		if (b >= 8 && b < 12) {
			v &= ~(0xffull << (8 * i));
			v |= (uint64_t)(((uint32_t)h.cv >> (8 * (b - 8))) & 0xff)
			     << (8 * i);
		}
	}
	mmio_write(page + off, size, v);
}

static unsigned int random_size(uint64_t *off, uint64_t limit)
{
	static const uint8_t sizes[] = { 1, 2, 4, 4, 4, 8, 8 };
	unsigned int size = sizes[below(ARRAY_SIZE(sizes))];

	*off = below(limit);
	if (below(8))
		*off &= ~(uint64_t)(size - 1); /* mostly aligned */
	if (*off + size > limit)
		*off = limit - size;
	return size;
}

/* --- Repair --------------------------------------------------------- */

/* Before a reset clears it: add BAD_ACCESS to the total (if BAR0 decodes:
 * all ones means it does not). */
static void note_bad_access(void)
{
	uint32_t v;

	if (!in_window(h.dev.bar0) || h.dev.bar0 == h.dev.bar2)
		return;
	v = dmadev_read32(&h.dev, DMA_REG_BAD_ACCESS);
	if (v != ~0u)
		h.bad_before_resets += v;
}

static void program_table(void)
{
	unsigned int i;

	for (i = 0; i < h.dev.nvec; i++)
		dmadev_msix_program(&h.dev, i, h.cv, below(4) == 0);
	dmadev_cfg_write(&h.dev, DMA_CFG_MSI_DATA, 2, (uint32_t)h.cv);
	dmadev_msix_enable(&h.dev, true);
}

/* BARs to the contract's addresses, memory space + bus master. */
static void repair(void)
{
	dmadev_set_bars(&h.dev, DMADEV_BAR0_DEFAULT, DMADEV_BAR2_DEFAULT);
}

/* After an FLR: the table data is 0 again; nothing runs before this. */
static void repair_after_flr(void)
{
	h.flrs++;
	repair();
	program_table();
}

/* --- Ops ------------------------------------------------------------ */

static void op_reg_write(void)
{
	bool regs, table;
	uint64_t page = target(0, &regs, &table), off, v = rnd();
	unsigned int size = random_size(&off, DMADEV_BAR_SIZE);

	if (regs && regs_sanitize(page, off, size))
		return;
	if (table)
		table_write(page, off, size, v);
	else
		mmio_write(page + off, size, v);
}

static void op_reg_read(void)
{
	bool regs, table;
	uint64_t page = target((unsigned int)below(2) * 2, &regs, &table), off;
	unsigned int size = random_size(&off, DMADEV_BAR_SIZE);

	(void)mmio_read(page + off, size);
}

static void op_table_write(void)
{
	bool regs, table;
	uint64_t page = target(2, &regs, &table), off, v = rnd();
	unsigned int size = random_size(&off, below(4) ? 16 * h.dev.nvec + 16 :
							 DMADEV_BAR_SIZE);

	if (regs && regs_sanitize(page, off, size))
		return;
	table_write(page, off, size, v);
}

static void op_cfg_write(void)
{
	uint64_t off;
	unsigned int size = random_size(&off, 256);
	uint32_t v = (uint32_t)rnd();
	unsigned int i;
	bool flr = false;

	if (overlaps(off, size, DMA_CFG_MSI, CFG_MSI_END)) {
		dmadev_cfg_write(&h.dev, DMA_CFG_MSI_DATA, 2, (uint32_t)h.cv);
		for (i = 0; i < size && i < 4; i++)
			if (off + i >= DMA_CFG_MSI_DATA &&
			    off + i < DMA_CFG_MSI_DATA + 4)
				v = (v & ~(0xffu << (8 * i))) |
				    ((((uint32_t)h.cv >> (8 * (off + i - DMA_CFG_MSI_DATA))) & 0xff)
				     << (8 * i));
	}
	if (overlaps(off, size, DMA_CFG_AF_CTRL, DMA_CFG_AF_CTRL + 1))
		flr = (v >> (8 * (DMA_CFG_AF_CTRL - off))) & DMA_AF_CTRL_FLR;
	if (flr)
		note_bad_access();
	dmadev_cfg_write(&h.dev, (unsigned int)off, size, v);
	if (flr)
		repair_after_flr();
	else if (overlaps(off, size, DMA_CFG_BAR0, DMA_CFG_BAR0 + 24))
		reread_bars();
}

static void op_cfg_read(void)
{
	uint64_t off;
	unsigned int size = random_size(&off, 256);

	(void)dmadev_cfg_read(&h.dev, (unsigned int)off, size);
}

/* Up to four sanitized descriptors at the channel's believed tail, then a
 * doorbell: shadow + TAIL, TAIL only, or shadow only. */
static void op_post(void)
{
	unsigned int c = (unsigned int)below(h.dev.channels), k, n;
	uint32_t size = h.ring_size[c] ? h.ring_size[c] : 2;
	struct dma_desc d;
	bool regs, table;
	uint64_t page = target(0, &regs, &table), slot, *w;
	const uint64_t *q = (const uint64_t *)&d;

	n = 1 + (unsigned int)below(4);
	for (k = 0; k < n; k++) {
		slot = h.ring_base[c] + 32ull * h.tail[c];
		if (slot + 32 > h.arena_len)
			break;
		random_desc(&d);
		w = (uint64_t *)(h.desc_arena + slot);
		w[0] = q[0];
		w[1] = q[1];
		w[2] = q[2];
		w[3] = q[3];
		h.tail[c] = (h.tail[c] + 1) & (size - 1);
	}
	/* comp_head: 0 (consumed nothing), in range, or garbage. */
	h.shadows[c] = (uint64_t)h.tail[c];
	if (!below(2))
		h.shadows[c] |= (below(2) ? below(size) : rnd()) << 32;
	if (below(8))
		mmio_write(page + DMA_CHAN_BASE(c) + DMA_CH_TAIL, 4, h.tail[c]);
}

/* The sane set-up sequence with random parameters. */
static void op_chan_setup(void)
{
	unsigned int c = (unsigned int)below(h.dev.channels);
	bool regs, table;
	uint64_t ch = target(0, &regs, &table) + DMA_CHAN_BASE(c);
	uint32_t size = ring_size_value();

	mmio_write(ch + DMA_CH_CTRL, 4, DMA_CTRL_RESET);
	mmio_write(ch + DMA_CH_RING_BASE, 8, ring_base_value(c, false));
	mmio_write(ch + DMA_CH_RING_SIZE, 4, size);
	mmio_write(ch + DMA_CH_COMP_BASE, 8, ring_base_value(c, true));
	mmio_write(ch + DMA_CH_SHADOW_BASE, 8,
		   below(4) ? (uint64_t)&h.shadows[c] : rnd());
	if (below(2))
		mmio_write(ch + DMA_CH_COALESCE_COUNT, 4, (uint32_t)below(8));
	if (!below(4))
		mmio_write(ch + DMA_CH_COALESCE_TIME, 4, (uint32_t)below(100000));
	mmio_write(ch + DMA_CH_CTRL, 4, DMA_CTRL_ENABLE);
	h.ring_size[c] = size >= 2 && size <= h.dev.max_ring &&
			 !(size & (size - 1)) ? size : 0;
	h.tail[c] = 0;
	h.shadows[c] = 0;
}

/* Garbage ring indices: TAIL, COMP_HEAD, shadow. */
static void op_indices(void)
{
	unsigned int c = (unsigned int)below(h.dev.channels);
	bool regs, table;
	uint64_t ch = target(0, &regs, &table) + DMA_CHAN_BASE(c);
	uint32_t v = below(2) ? (uint32_t)rnd() : (uint32_t)below(8192);

	switch (below(4)) {
	case 0:
		mmio_write(ch + DMA_CH_TAIL, 4, v);
		break;
	case 1:
		mmio_write(ch + DMA_CH_COMP_HEAD, 4, v);
		break;
	case 2:
		h.shadows[c] = rnd();
		mmio_write(ch + DMA_CH_TAIL, 4, (uint32_t)h.shadows[c]);
		break;
	default:
		h.shadows[c] = (uint64_t)v << (below(2) * 32);
		mmio_write(ch + DMA_CH_CTRL, 4, (uint32_t)below(8));
	}
}

/* A whole entry of garbage (data: our vector), or the function mask and
 * enable bits. */
static void op_msix_entry(void)
{
	bool regs, table;
	uint64_t page = target(2, &regs, &table);
	uint64_t e = 16 * below(h.dev.nvec + 2);
	uint64_t addr = below(2) ? DMA_MSI_ADDR_BASE | below(256) << 12 : rnd();

	if (!below(4)) {
		dmadev_cfg_write(&h.dev, DMA_CFG_MSIX_CTRL, 2, (uint32_t)rnd());
		return;
	}
	if (e >= DMA_MSIX_PBA)
		return;
	table_write(page, e + DMA_MSIX_DATA, 8,
		    (uint64_t)h.cv | below(2) << 32);
	if (regs && regs_sanitize(page, e, 8))
		return;
	mmio_write(page + e, 8, addr);
}

static void op_bar_move(void)
{
	unsigned int n = (unsigned int)below(2) * 2;
	uint64_t span = h.win_end - h.win_base, v;

	switch (below(6)) {
	case 0:
		v = h.win_base + (below(span) & ~(DMADEV_BAR_SIZE - 1));
		break;
	case 1:
		v = n == 0 ? h.dev.bar2 : h.dev.bar0; /* overlap the other */
		break;
	case 2:
		v = rnd();
		break;
	case 3:
		v = 0;
		break;
	case 4:
		v = h.win_end - DMADEV_BAR_SIZE + below(2) * DMADEV_BAR_SIZE;
		break;
	default:
		v = h.win_base + below(span);
	}
	if (below(4))
		dmadev_bar_write(&h.dev, n, v);
	else
		dmadev_cfg_write(&h.dev, DMA_CFG_BAR0 + 4 * n + 4 * below(2), 4,
				 (uint32_t)v);
	reread_bars();
}

/* conf1 garbage for functions that are not ours. */
static void op_other_fn(void)
{
	uint32_t a = (uint32_t)rnd();
	uint32_t ours = 0x80000000u | (uint32_t)h.dev.bus << 16 |
			(uint32_t)h.dev.slot << 11 | (uint32_t)h.dev.fn << 8;

	if ((a & 0x80ffff00u) == ours)
		a ^= 1u << 11;
	outl(0xcf8, a);
	if (below(2))
		outl(0xcfc, (uint32_t)rnd());
	else
		(void)inl(0xcfc);
}

static void op_reset(void)
{
	bool regs, table;
	uint64_t page = target(0, &regs, &table);

	note_bad_access();
	if (below(2)) {
		mmio_write(page + DMA_REG_GCTRL, 4, DMA_GCTRL_RESET);
		return;
	}
	dmadev_flr(&h.dev);
	repair_after_flr();
}

static void run_op(void)
{
	unsigned int r = (unsigned int)below(256), k, acc = 0;

	for (k = 0; k < OP_KINDS - 1; k++) {
		acc += op_weight[k];
		if (r < acc)
			break;
	}
	h.count[k]++;
	switch (k) {
	case OP_REG_WRITE: op_reg_write(); break;
	case OP_REG_READ: op_reg_read(); break;
	case OP_TABLE_WRITE: op_table_write(); break;
	case OP_CFG_WRITE: op_cfg_write(); break;
	case OP_CFG_READ: op_cfg_read(); break;
	case OP_POST: op_post(); break;
	case OP_CHAN_SETUP: op_chan_setup(); break;
	case OP_INDICES: op_indices(); break;
	case OP_MSIX_ENTRY: op_msix_entry(); break;
	case OP_BAR_MOVE: op_bar_move(); break;
	case OP_OTHER_FN: op_other_fn(); break;
	case OP_REPAIR: repair(); break;
	default: op_reset(); break;
	}
}

/* --- Set-up and the end ---------------------------------------------- */

static int setup(void)
{
	const struct dmalab_boot_info *bi = boot_info;
	unsigned int c;

	h.ram_end = heap_end();
	h.win_base = bi->pci_mmio_base;
	h.win_end = bi->pci_mmio_base + bi->pci_mmio_size;
	h.arena_len = ARENA_SLACK + 32ull * h.dev.max_ring;
	h.desc_arena = kmalloc_aligned(h.arena_len, 4096);
	h.comp_arena = kmalloc_aligned(h.arena_len, 4096);
	h.scratch = kmalloc_aligned(SCRATCH_LEN, 4096);
	h.shadows = kmalloc_aligned(SHADOWS_LEN, 4096);
	h.cv = irq_alloc(on_any, NULL);
	if (!h.desc_arena || !h.comp_arena || !h.scratch || !h.shadows ||
	    h.cv < 0 || h.win_end <= h.win_base)
		return -1;
	for (c = 0; c < h.dev.channels; c++)
		h.ring_base[c] = (c * 64 * 64) % ARENA_SLACK;
	program_table();
	return 0;
}

/* FLR, set up again, one copy with an interrupt. */
static bool recover(char *detail, size_t len)
{
	uint8_t *src = h.scratch, *dst = h.scratch + RECOVERY_LEN;
	struct dma_desc d = { .src = (uint64_t)src, .dst = (uint64_t)dst,
			      .len = RECOVERY_LEN, .op = DMA_OP_COPY,
			      .flags = DMA_DESC_IOC, .cookie = 0xfeed };
	struct dma_comp c = { 0 };
	uint64_t hits;
	uint32_t id;
	int err;
	bool irq, rec;

	dmadev_flr(&h.dev);
	repair();
	id = dmadev_read32(&h.dev, DMA_REG_ID);
	for (err = 0; err < (int)h.dev.nvec; err++)
		dmadev_msix_program(&h.dev, (unsigned int)err, h.cv, false);
	dmadev_cfg_write(&h.dev, DMA_CFG_MSI_DATA, 2, (uint32_t)h.cv);
	dmadev_msix_enable(&h.dev, true);
	err = dmadev_chan_init(&h.dev, 0, 16);
	dmadev_pattern(src, RECOVERY_LEN, 0x600d);
	hits = cv_hits;
	irq = rec = false;
	if (!err && !dmadev_chan_post(&h.dev.chan[0], &d)) {
		dmadev_chan_kick(&h.dev.chan[0]);
		irq = dmadev_wait_count(&cv_hits, hits + 1, TIMEOUT_MS);
		rec = dmadev_poll_wait(&h.dev.chan[0], &c, TIMEOUT_MS);
	}
	ksnprintf(detail, len,
		  "ID 0x%x, channel 0 %s, irq %s, record %s status %s bytes %u",
		  id, err ? "failed" : "up", irq ? "seen" : "missing",
		  rec ? "seen" : "missing", dmadev_status_name(c.status),
		  c.bytes_done);
	return id == DMA_ID_VALUE && !err && irq && rec &&
	       c.status == DMA_ST_OK && c.cookie == 0xfeed &&
	       c.bytes_done == RECOVERY_LEN &&
	       dmadev_pattern_ok(dst, RECOVERY_LEN, 0x600d);
}

static int result(const char *status, uint64_t ops, uint64_t seed,
		  uint64_t bad)
{
	kprintf("DMALAB-RESULT {\"scenario\":\"hostile\",\"status\":\"%s\",\"ops\":%lu,\"seed\":%lu,\"bad_access\":%lu,\"interrupts\":%lu,\"flrs\":%lu}\n",
		status, ops, seed, bad, cv_hits, h.flrs);
	return status[0] == 'p' ? DMALAB_EXIT_PASS : DMALAB_EXIT_FAIL;
}

int scenario_hostile(void)
{
	uint64_t ops = dmadev_arg_u64("ops", DEFAULT_OPS);
	uint64_t seed = dmadev_arg_u64("seed", 1), i, t0;
	char detail[160];
	uint32_t bad, st[DMADEV_MAX_CHANNELS], code[DMADEV_MAX_CHANNELS];
	unsigned int c;
	bool ok;
	int r;

	if (ops > MAX_OPS)
		ops = DEFAULT_OPS;
	h.rng = seed ? seed : 1;
	r = dmadev_probe(&h.dev);
	if (r) {
		kprintf(TAG ": FAIL %s\n", r == -1 ? "device not found" :
						     "device does not answer");
		return result("fail", 0, seed, 0);
	}
	dmadev_print(&h.dev);
	if (setup()) {
		kprintf(TAG ": FAIL set-up (memory, vector or PCI window)\n");
		return result("fail", 0, seed, 0);
	}
	t0 = rdtsc();
	for (i = 0; i < ops; i++)
		run_op();
	t0 = rdtsc() - t0;
	kinfo(TAG ": %lu ops in %lu ms, %lu interrupts on the catch-all vector 0x%x\n",
	      ops, tsc_to_us(t0) / 1000, cv_hits, h.cv);
	{
		char line[240];
		size_t n = 0;

		for (c = 0; c < OP_KINDS && n < sizeof(line); c++)
			n += ksnprintf(line + n, sizeof(line) - n, " %s=%lu",
				       op_names[c], h.count[c]);
		kinfo(TAG ": ops%s\n", line);
	}

	repair();
	bad = dmadev_read32(&h.dev, DMA_REG_BAD_ACCESS);
	for (c = 0; c < h.dev.channels; c++)
		st[c] = dmadev_chan_state(&h.dev.chan[c], &code[c]);
	for (c = 0; c < h.dev.channels; c++)
		kinfo(TAG ": channel %u state %u error %u\n", c,
		      DMA_STATE(st[c]), code[c]);
	kprintf(TAG ": BAD_ACCESS %u now, %lu with the counts read before resets, INT_STATUS 0x%x, %lu FLRs\n",
		bad, bad + h.bad_before_resets,
		dmadev_read32(&h.dev, DMA_REG_INT_STATUS), h.flrs);

	ok = recover(detail, sizeof(detail));
	kprintf(TAG ": recovery %s (%s)\n", ok ? "ok" : "FAIL", detail);
	return result(ok ? "pass" : "fail", ops, seed,
		      bad + h.bad_before_resets);
}
