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
 * At the end: restore BARs + command, read BAD_ACCESS and the channel
 * states, FLR, set everything up again and do one checked copy with an
 * interrupt; `hostile: recovery …` and the result line report it.
 */
#include "dmadev.h"
#include "heap.h"
#include "kernel.h"
#include "lapic.h"
#include "platform.h"
#include "scenarios/hostile.h"
#include "scenarios/scenario.h"

#define TAG "hostile"
#define DEFAULT_OPS 10000
#define MAX_OPS 10000000
#define SHADOWS_LEN 4096
#define RECOVERY_LEN 4096
#define TIMEOUT_MS 2000

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

struct hostile hst;
static uint64_t op_count[OP_KINDS];
static volatile uint64_t cv_hits;

static void on_any(struct trap_frame *f, void *ctx)
{
	(void)f;
	(void)ctx;
	__atomic_fetch_add(&cv_hits, 1, __ATOMIC_RELAXED);
	lapic_eoi();
}

/* --- Ops ------------------------------------------------------------ */

static void op_reg_write(void)
{
	bool regs, table;
	uint64_t page = hg_target(0, &regs, &table), off, v = hg_rnd();
	unsigned int size = hg_random_size(&off, DMADEV_BAR_SIZE);

	if (regs && hg_regs_sanitize(page, off, size))
		return;
	if (table)
		hg_table_write(page, off, size, v);
	else
		hg_mmio_write(page + off, size, v);
}

static void op_reg_read(void)
{
	bool regs, table;
	unsigned int n = (unsigned int)hg_below(2) * 2;
	uint64_t page = hg_target(n, &regs, &table), off;
	unsigned int size = hg_random_size(&off, DMADEV_BAR_SIZE);

	(void)hg_mmio_read(page + off, size);
}

static void op_table_write(void)
{
	bool regs, table;
	uint64_t page = hg_target(2, &regs, &table), off, v = hg_rnd();
	/* Mostly the table itself, sometimes anywhere in the BAR. */
	uint64_t limit = hg_below(4) ? 16 * hst.dev.nvec + 16 : DMADEV_BAR_SIZE;
	unsigned int size = hg_random_size(&off, limit);

	if (regs && hg_regs_sanitize(page, off, size))
		return;
	hg_table_write(page, off, size, v);
}

static void op_cfg_write(void)
{
	uint64_t off;
	unsigned int size = hg_random_size(&off, 256);
	uint32_t v = (uint32_t)hg_rnd();
	bool flr = false;

	if (hg_overlaps(off, size, DMA_CFG_MSI, CFG_MSI_END)) {
		dmadev_cfg_write(&hst.dev, DMA_CFG_MSI_DATA, 2,
				 (uint32_t)hst.cv);
		v = (uint32_t)hg_splice(v, off, size, DMA_CFG_MSI_DATA, 4,
					(uint32_t)hst.cv);
	}
	if (hg_overlaps(off, size, DMA_CFG_AF_CTRL, DMA_CFG_AF_CTRL + 1))
		flr = (v >> (8 * (DMA_CFG_AF_CTRL - off))) & DMA_AF_CTRL_FLR;
	if (flr)
		hg_note_bad_access();
	dmadev_cfg_write(&hst.dev, (unsigned int)off, size, v);
	if (flr)
		hg_repair_after_flr();
	else if (hg_overlaps(off, size, DMA_CFG_BAR0, DMA_CFG_BAR0 + 24))
		hg_reread_bars();
}

static void op_cfg_read(void)
{
	uint64_t off;
	unsigned int size = hg_random_size(&off, 256);

	(void)dmadev_cfg_read(&hst.dev, (unsigned int)off, size);
}

/* Up to four sanitized descriptors at the channel's believed tail, then a
 * doorbell: shadow + TAIL, TAIL only, or shadow only. */
static void op_post(void)
{
	unsigned int c = (unsigned int)hg_below(hst.dev.channels), k, n;
	uint32_t size = hst.ring_size[c] ? hst.ring_size[c] : 2;
	struct dma_desc d;
	bool regs, table;
	uint64_t page = hg_target(0, &regs, &table), slot, *w;
	const uint64_t *q = (const uint64_t *)&d;

	n = 1 + (unsigned int)hg_below(4);
	for (k = 0; k < n; k++) {
		slot = hst.ring_base[c] + 32ull * hst.tail[c];
		if (slot + 32 > hst.arena_len)
			break;
		hg_random_desc(&d);
		w = (uint64_t *)(hst.desc_arena + slot);
		w[0] = q[0];
		w[1] = q[1];
		w[2] = q[2];
		w[3] = q[3];
		hst.tail[c] = (hst.tail[c] + 1) & (size - 1);
	}
	/* comp_head: 0 (consumed nothing), in range, or garbage. */
	hst.shadows[c] = (uint64_t)hst.tail[c];
	if (!hg_below(2))
		hst.shadows[c] |= (hg_below(2) ? hg_below(size) : hg_rnd())
				  << 32;
	if (hg_below(8))
		hg_mmio_write(page + DMA_CHAN_BASE(c) + DMA_CH_TAIL, 4,
			      hst.tail[c]);
}

/* The sane set-up sequence with random parameters. */
static void op_chan_setup(void)
{
	unsigned int c = (unsigned int)hg_below(hst.dev.channels);
	bool regs, table;
	uint64_t ch = hg_target(0, &regs, &table) + DMA_CHAN_BASE(c);
	uint32_t size = hg_ring_size_value();

	hg_mmio_write(ch + DMA_CH_CTRL, 4, DMA_CTRL_RESET);
	hg_mmio_write(ch + DMA_CH_RING_BASE, 8, hg_ring_base_value(c, false));
	hg_mmio_write(ch + DMA_CH_RING_SIZE, 4, size);
	hg_mmio_write(ch + DMA_CH_COMP_BASE, 8, hg_ring_base_value(c, true));
	hg_mmio_write(ch + DMA_CH_SHADOW_BASE, 8,
		   hg_below(4) ? (uint64_t)&hst.shadows[c] : hg_rnd());
	if (hg_below(2))
		hg_mmio_write(ch + DMA_CH_COALESCE_COUNT, 4,
			      (uint32_t)hg_below(8));
	if (!hg_below(4))
		hg_mmio_write(ch + DMA_CH_COALESCE_TIME, 4,
			      (uint32_t)hg_below(100000));
	hg_mmio_write(ch + DMA_CH_CTRL, 4, DMA_CTRL_ENABLE);
	hst.ring_size[c] = size >= 2 && size <= hst.dev.max_ring &&
			 !(size & (size - 1)) ? size : 0;
	hst.tail[c] = 0;
	hst.shadows[c] = 0;
}

/* Garbage ring indices: TAIL, COMP_HEAD, shadow. */
static void op_indices(void)
{
	unsigned int c = (unsigned int)hg_below(hst.dev.channels);
	bool regs, table;
	uint64_t ch = hg_target(0, &regs, &table) + DMA_CHAN_BASE(c);
	uint32_t v = (uint32_t)(hg_below(2) ? hg_rnd() : hg_below(8192));

	switch (hg_below(4)) {
	case 0:
		hg_mmio_write(ch + DMA_CH_TAIL, 4, v);
		break;
	case 1:
		hg_mmio_write(ch + DMA_CH_COMP_HEAD, 4, v);
		break;
	case 2:
		hst.shadows[c] = hg_rnd();
		hg_mmio_write(ch + DMA_CH_TAIL, 4, (uint32_t)hst.shadows[c]);
		break;
	default:
		hst.shadows[c] = (uint64_t)v << (hg_below(2) * 32);
		hg_mmio_write(ch + DMA_CH_CTRL, 4, (uint32_t)hg_below(8));
	}
}

/* A whole entry of garbage (data: our vector), or the function mask and
 * enable bits. */
static void op_msix_entry(void)
{
	bool regs, table;
	uint64_t page = hg_target(2, &regs, &table);
	uint64_t e = 16 * hg_below(hst.dev.nvec + 2);
	uint64_t addr = hg_below(2) ? DMA_MSI_ADDR_BASE | hg_below(256) << 12 :
				      hg_rnd();

	if (!hg_below(4)) {
		dmadev_cfg_write(&hst.dev, DMA_CFG_MSIX_CTRL, 2,
				 (uint32_t)hg_rnd());
		return;
	}
	if (e >= DMA_MSIX_PBA)
		return;
	hg_table_write(page, e + DMA_MSIX_DATA, 8,
		    (uint64_t)hst.cv | hg_below(2) << 32);
	if (regs && hg_regs_sanitize(page, e, 8))
		return;
	hg_mmio_write(page + e, 8, addr);
}

static void op_bar_move(void)
{
	unsigned int n = (unsigned int)hg_below(2) * 2;
	uint64_t span = hst.win_end - hst.win_base, v;

	switch (hg_below(6)) {
	case 0:
		v = hst.win_base + (hg_below(span) & ~(DMADEV_BAR_SIZE - 1));
		break;
	case 1:
		/* Overlap the other BAR. */
		v = n == 0 ? hst.dev.bar2 : hst.dev.bar0;
		break;
	case 2:
		v = hg_rnd();
		break;
	case 3:
		v = 0;
		break;
	case 4:
		/* The last page of the window, or just past it. */
		v = hst.win_end - DMADEV_BAR_SIZE +
		    hg_below(2) * DMADEV_BAR_SIZE;
		break;
	default:
		v = hst.win_base + hg_below(span);
	}
	if (hg_below(4)) {
		dmadev_bar_write(&hst.dev, n, v);
	} else {
		/* One half only. */
		n = DMA_CFG_BAR0 + 4 * n + 4 * (unsigned int)hg_below(2);
		dmadev_cfg_write(&hst.dev, n, 4, (uint32_t)v);
	}
	hg_reread_bars();
}

/* conf1 garbage for functions that are not ours. */
static void op_other_fn(void)
{
	uint32_t a = (uint32_t)hg_rnd();
	uint32_t ours = (uint32_t)hst.dev.bus << 16 |
			(uint32_t)hst.dev.slot << 11 |
			(uint32_t)hst.dev.fn << 8;

	/* Ours with or without the enable bit (in case a VMM ignores it). */
	if ((a & 0x00ffff00u) == ours)
		a ^= 1u << 11;
	outl(0xcf8, a);
	if (hg_below(2))
		outl(0xcfc, (uint32_t)hg_rnd());
	else
		(void)inl(0xcfc);
}

static void op_reset(void)
{
	bool regs, table;
	uint64_t page = hg_target(0, &regs, &table);

	hg_note_bad_access();
	if (hg_below(2)) {
		hg_mmio_write(page + DMA_REG_GCTRL, 4, DMA_GCTRL_RESET);
		return;
	}
	dmadev_flr(&hst.dev);
	hg_repair_after_flr();
}

static void run_op(void)
{
	unsigned int r = (unsigned int)hg_below(256), k, acc = 0;

	for (k = 0; k < OP_KINDS - 1; k++) {
		acc += op_weight[k];
		if (r < acc)
			break;
	}
	op_count[k]++;
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
	case OP_REPAIR: hg_repair(); break;
	default: op_reset(); break;
	}
}

/* --- Set-up and the end ---------------------------------------------- */

static int setup(void)
{
	const struct dmalab_boot_info *bi = boot_info;
	unsigned int c;

	hst.ram_end = heap_end();
	hst.win_base = bi->pci_mmio_base;
	hst.win_end = bi->pci_mmio_base + bi->pci_mmio_size;
	hst.arena_len = ARENA_SLACK + 32ull * hst.dev.max_ring;
	hst.desc_arena = kmalloc_aligned(hst.arena_len, 4096);
	hst.comp_arena = kmalloc_aligned(hst.arena_len, 4096);
	hst.scratch = kmalloc_aligned(SCRATCH_LEN, 4096);
	hst.shadows = kmalloc_aligned(SHADOWS_LEN, 4096);
	hst.cv = irq_alloc(on_any, NULL);
	if (!hst.desc_arena || !hst.comp_arena || !hst.scratch ||
	    !hst.shadows || hst.cv < 0 || hst.win_end <= hst.win_base)
		return -1;
	for (c = 0; c < hst.dev.channels; c++)
		hst.ring_base[c] = (c * 64 * 64) % ARENA_SLACK;
	hg_program_table();
	return 0;
}

/* FLR, set up again, one copy with an interrupt. */
static bool recover(char *detail, size_t len)
{
	uint8_t *src = hst.scratch, *dst = hst.scratch + RECOVERY_LEN;
	struct dma_desc d = { .src = (uint64_t)src, .dst = (uint64_t)dst,
			      .len = RECOVERY_LEN, .op = DMA_OP_COPY,
			      .flags = DMA_DESC_IOC, .cookie = 0xfeed };
	struct dma_comp c = { 0 };
	uint64_t hits;
	uint32_t id;
	int err;
	bool irq, rec;

	dmadev_flr(&hst.dev);
	hg_repair();
	id = dmadev_read32(&hst.dev, DMA_REG_ID);
	for (err = 0; err < (int)hst.dev.nvec; err++)
		dmadev_msix_program(&hst.dev, (unsigned int)err, hst.cv, false);
	dmadev_cfg_write(&hst.dev, DMA_CFG_MSI_DATA, 2, (uint32_t)hst.cv);
	dmadev_msix_enable(&hst.dev, true);
	err = dmadev_chan_init(&hst.dev, 0, 16);
	dmadev_pattern(src, RECOVERY_LEN, 0x600d);
	hits = cv_hits;
	irq = rec = false;
	if (!err && !dmadev_chan_post(&hst.dev.chan[0], &d)) {
		dmadev_chan_kick(&hst.dev.chan[0]);
		irq = dmadev_wait_count(&cv_hits, hits + 1, TIMEOUT_MS);
		rec = dmadev_poll_wait(&hst.dev.chan[0], &c, TIMEOUT_MS);
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
		status, ops, seed, bad, cv_hits, hst.flrs);
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
	hst.rng = seed ? seed : 1;
	r = dmadev_probe(&hst.dev);
	if (r) {
		kprintf(TAG ": FAIL %s\n", r == -1 ? "device not found" :
						     "device does not answer");
		return result("fail", 0, seed, 0);
	}
	dmadev_print(&hst.dev);
	if (setup()) {
		kprintf(TAG ": FAIL set-up (memory, vector or PCI window)\n");
		return result("fail", 0, seed, 0);
	}
	t0 = rdtsc();
	for (i = 0; i < ops; i++)
		run_op();
	t0 = rdtsc() - t0;
	kinfo(TAG ": %lu ops in %lu ms, %lu interrupts on the catch-all vector 0x%x\n",
	      ops, tsc_to_us(t0) / 1000, cv_hits, hst.cv);
	{
		char line[240];
		size_t n = 0;

		for (c = 0; c < OP_KINDS && n < sizeof(line); c++)
			n += ksnprintf(line + n, sizeof(line) - n, " %s=%lu",
				       op_names[c], op_count[c]);
		kinfo(TAG ": ops%s\n", line);
	}

	hg_repair();
	bad = dmadev_read32(&hst.dev, DMA_REG_BAD_ACCESS);
	if (bad == ~0u) {
		kprintf(TAG ": registers read all ones: the device is gone\n");
		bad = 0;
	}
	for (c = 0; c < hst.dev.channels; c++)
		st[c] = dmadev_chan_state(&hst.dev.chan[c], &code[c]);
	for (c = 0; c < hst.dev.channels; c++)
		kinfo(TAG ": channel %u state %u error %u\n", c,
		      DMA_STATE(st[c]), code[c]);
	kprintf(TAG ": BAD_ACCESS %u now, %lu with the counts read before resets, INT_STATUS 0x%x, %lu FLRs\n",
		bad, bad + hst.bad_before_resets,
		dmadev_read32(&hst.dev, DMA_REG_INT_STATUS), hst.flrs);

	ok = recover(detail, sizeof(detail));
	kprintf(TAG ": recovery %s (%s)\n", ok ? "ok" : "FAIL", detail);
	return result(ok ? "pass" : "fail", ops, seed,
		      bad + hst.bad_before_resets);
}
