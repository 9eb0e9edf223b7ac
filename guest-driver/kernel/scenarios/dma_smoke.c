// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/*
 * dma-smoke: the DMA controller end to end through dmadev. Finds the
 * device, maps BAR0/BAR2, binds one MSI-X vector per channel plus the
 * error vector, brings every channel up, then checks by name:
 *
 *   probe        device found, ID register answers, BARs printed
 *   msix         table size = channels + 1, enable bit reads back
 *   channels-up  every channel IDLE after ENABLE
 *   copy-poll    4 KiB COPY without IOC, completion found by polling the
 *                ring (phase bit), data right, no completion interrupt
 *   copy-irq     4 KiB COPY with IOC, guest idles in sti;hlt until the
 *                MSI-X interrupt, then the record and the data
 *   fill         1000-byte FILL: byte k = pattern byte k mod 8, the byte
 *                after the end untouched
 *   multi-chan   one COPY on every channel at once, each channel's own
 *                vector fires, every destination right
 *   error-vector a len = 0 descriptor: record ERR_LEN, the error vector
 *                fires, INT_STATUS bit 31 set, the channel still IDLE and
 *                serving (a good copy after it)
 *   msix-mask    a masked vector sets its PBA bit and sends nothing; on
 *                unmask the interrupt arrives and the PBA bit clears
 *   ring-wrap    an 8-entry ring driven 3.5 times round in batches of 7
 *                (full ring, one kick each): records in order, phase bit
 *                flipping at every wrap, every destination right
 *   tail-reset   TAIL = RING_SIZE (register and shadow): channel ERROR
 *                with ERR_TAIL_RANGE and the error vector; CTRL.RESET and
 *                re-programming bring it back; a copy after it is right
 *   msix-dest-cpu (>= 2 CPUs) entry 0 re-programmed to APIC ID 1: a copy
 *                with IOC runs the handler on CPU 1 (per-CPU index and
 *                LAPIC ID read in the handler), exactly once; restored to
 *                APIC ID 0, the next one runs on CPU 0. With one CPU it
 *                is skipped (a line says so, not counted). The BSP waits
 *                in sti;hlt woken by its tick: the AP's interrupt does
 *                not wake it.
 *
 * Each check prints `dma-smoke: <check> ok (…)` or `… FAIL …`; the result
 * line counts them. Never assumes a completion is synchronous with the
 * doorbell (the --timing modes differ exactly there). Buffers stay small:
 * filling and checking cost ~3 us per 8 bytes of emulated CPL0 code.
 */
#include "check.h"
#include "cpu.h"
#include "dmadev.h"
#include "heap.h"
#include "kernel.h"
#include "lapic.h"
#include "platform.h"
#include "scenarios/scenario.h"
#include "smp.h"

#define TAG "dma-smoke"
#define RING_ENTRIES 64
#define COPY_LEN 4096
#define FILL_LEN 1000
#define MULTI_LEN 512
#define BUF_LEN (DMADEV_MAX_CHANNELS * MULTI_LEN) /* >= COPY_LEN */
#define TIMEOUT_MS 2000
/* How long a masked vector gets to (not) fire before we look. */
#define MASK_SETTLE_MS 20
/* msix-dest-cpu's target: CPU 1, whose APIC ID is its index (boot
 * protocol). */
#define AP_APIC 1u

/* cpu and apic are written before hits (x86 keeps store order), so
 * whoever sees the new count sees where the handler ran. */
struct vec_count {
	volatile uint64_t hits;
	volatile uint64_t vector;
	volatile uint32_t cpu; /* per-CPU index of the last handler run */
	volatile uint32_t apic; /* LAPIC ID register read in that run */
};

static struct dmadev dev;
static struct vec_count vec[DMADEV_MAX_VECTORS];
static struct checklist cl = { .tag = TAG };

static void on_msix(struct trap_frame *f, void *ctx)
{
	struct vec_count *v = ctx;

	v->cpu = this_cpu()->index;
	v->apic = lapic_id();
	v->vector = f->vector;
	v->hits++;
	lapic_eoi();
}

static struct dma_desc desc(uint8_t op, uint64_t src, uint64_t dst,
			    uint32_t len, uint8_t flags, uint64_t cookie)
{
	struct dma_desc d = { .src = src, .dst = dst, .len = len, .op = op,
			      .flags = flags, .cookie = cookie };

	return d;
}

/* Post one descriptor, kick, wait for its record by polling. */
static bool run_one(struct dmadev_chan *ch, const struct dma_desc *d,
		    struct dma_comp *c)
{
	if (dmadev_chan_post(ch, d))
		return false;
	dmadev_chan_kick(ch);
	return dmadev_poll_wait(ch, c, TIMEOUT_MS);
}

static bool comp_ok(const struct dma_comp *c, uint64_t cookie, uint32_t len)
{
	return c->status == DMA_ST_OK && c->cookie == cookie &&
	       c->bytes_done == len;
}

static void check_msix(void)
{
	uint32_t ctl = dmadev_cfg_read(&dev, DMA_CFG_MSIX_CTRL, 2);
	unsigned int i;
	bool bound = true;

	for (i = 0; i < dev.nvec; i++)
		bound &= dmadev_msix_bind(&dev, i, on_msix, &vec[i]) >= 0;
	dmadev_msix_enable(&dev, true);
	ctl = dmadev_cfg_read(&dev, DMA_CFG_MSIX_CTRL, 2);
	check(&cl, "msix", bound && DMA_MSIX_CTRL_SIZE(ctl) == dev.nvec &&
			       (ctl & DMA_MSIX_CTRL_ENABLE),
	       "%u vectors 0x%x-0x%x, control 0x%x", dev.nvec, dev.vector[0],
	       dev.vector[dev.nvec - 1], ctl);
}

static void check_channels_up(void)
{
	unsigned int c;
	int err = 0;

	for (c = 0; c < dev.channels && !err; c++)
		err = dmadev_chan_init(&dev, c, RING_ENTRIES);
	if (err)
		check(&cl, "channels-up", false, "channel %u: error %d", c - 1, err);
	else
		check(&cl, "channels-up", true, "%u channels, %u-entry rings",
		       dev.channels, RING_ENTRIES);
}

/* Returns false if no record came at all: the device does not progress
 * (e.g. stepped timing with nobody stepping), the rest would only time
 * out one by one. */
static bool check_copy_poll(uint8_t *src, uint8_t *dst)
{
	struct dmadev_chan *ch = &dev.chan[0];
	uint64_t hits = vec[0].hits, t0;
	struct dma_desc d = desc(DMA_OP_COPY, (uint64_t)src, (uint64_t)dst,
				 COPY_LEN, 0, 0x1001);
	struct dma_comp c = { 0 };
	bool done;

	dmadev_pattern(src, COPY_LEN, 1);
	t0 = rdtsc();
	done = run_one(ch, &d, &c);
	t0 = rdtsc() - t0;
	if (!done) {
		check(&cl, "copy-poll", false, "no record after %lu us",
		       tsc_to_us(t0));
		return false;
	}
	check(&cl, "copy-poll", comp_ok(&c, 0x1001, COPY_LEN) && c.index == 0 &&
				    c.channel == 0 &&
				    dmadev_pattern_ok(dst, COPY_LEN, 1) &&
				    vec[0].hits == hits,
	       "status %s bytes %u, %lu us doorbell to record, %lu irqs",
	       dmadev_status_name(c.status), c.bytes_done, tsc_to_us(t0),
	       vec[0].hits - hits);
	return done;
}

static void check_copy_irq(uint8_t *src, uint8_t *dst)
{
	struct dmadev_chan *ch = &dev.chan[0];
	uint64_t hits = vec[0].hits, t0;
	struct dma_desc d = desc(DMA_OP_COPY, (uint64_t)src, (uint64_t)dst,
				 COPY_LEN, DMA_DESC_IOC, 0x1002);
	struct dma_comp c = { 0 };
	bool irq, rec;

	dmadev_pattern(src, COPY_LEN, 2);
	t0 = rdtsc();
	dmadev_chan_post(ch, &d);
	dmadev_chan_kick(ch);
	irq = dmadev_wait_count(&vec[0].hits, hits + 1, TIMEOUT_MS);
	t0 = rdtsc() - t0;
	/* The interrupt follows the write-back: the record is there. */
	rec = dmadev_chan_poll(ch, &c);
	check(&cl, "copy-irq", irq && rec && comp_ok(&c, 0x1002, COPY_LEN) &&
				   vec[0].vector == (uint64_t)dev.vector[0] &&
				   dmadev_pattern_ok(dst, COPY_LEN, 2),
	       "irq %s on 0x%lx, record %s status %s, %lu us doorbell to irq",
	       irq ? "seen" : "missing", vec[0].vector,
	       rec ? "seen" : "missing", dmadev_status_name(c.status),
	       tsc_to_us(t0));
}

static void check_fill(uint8_t *dst)
{
	static const uint64_t pat = 0x0123456789abcdefull;
	struct dma_desc d = desc(DMA_OP_FILL, pat, (uint64_t)dst, FILL_LEN, 0,
				 0x1003);
	struct dma_comp c = { 0 };
	bool done, data = true;
	unsigned int k;

	dst[FILL_LEN] = 0x5a;
	done = run_one(&dev.chan[0], &d, &c);
	for (k = 0; k < FILL_LEN && data; k++)
		data = dst[k] == (uint8_t)(pat >> (8 * (k % 8)));
	check(&cl, "fill", done && comp_ok(&c, 0x1003, FILL_LEN) && data &&
			       dst[FILL_LEN] == 0x5a,
	       "%s status %s bytes %u, %s at byte %u, guard 0x%x",
	       done ? "record" : "no record", dmadev_status_name(c.status),
	       c.bytes_done, data ? "pattern right" : "wrong", k,
	       dst[FILL_LEN]);
}

static void check_multi(uint8_t *src, uint8_t *dst)
{
	uint64_t hits[DMADEV_MAX_CHANNELS];
	struct dma_comp c;
	unsigned int i, got = 0, irqs = 0, good = 0;

	for (i = 0; i < dev.channels; i++) {
		struct dma_desc d = desc(DMA_OP_COPY,
					 (uint64_t)src + i * MULTI_LEN,
					 (uint64_t)dst + i * MULTI_LEN,
					 MULTI_LEN, DMA_DESC_IOC, 0x2000 + i);

		dmadev_pattern(src + i * MULTI_LEN, MULTI_LEN, 100 + i);
		hits[i] = vec[i].hits;
		dmadev_chan_post(&dev.chan[i], &d);
	}
	for (i = 0; i < dev.channels; i++)
		dmadev_chan_kick(&dev.chan[i]);
	for (i = 0; i < dev.channels; i++) {
		irqs += dmadev_wait_count(&vec[i].hits, hits[i] + 1,
					  TIMEOUT_MS) &&
			vec[i].vector == (uint64_t)dev.vector[i];
		if (!dmadev_poll_wait(&dev.chan[i], &c, TIMEOUT_MS))
			continue;
		got++;
		good += comp_ok(&c, 0x2000 + i, MULTI_LEN) && c.channel == i &&
			dmadev_pattern_ok(dst + i * MULTI_LEN, MULTI_LEN,
					  100 + i);
	}
	check(&cl, "multi-chan", irqs == dev.channels && good == dev.channels,
	       "%u channels: %u own-vector irqs, %u records, %u right",
	       dev.channels, irqs, got, good);
}

static void check_error_vector(uint8_t *src, uint8_t *dst)
{
	unsigned int c_idx = dev.channels > 1 ? 1 : 0;
	struct dmadev_chan *ch = &dev.chan[c_idx];
	struct vec_count *err = &vec[dev.channels];
	uint64_t hits = err->hits;
	struct dma_desc bad = desc(DMA_OP_COPY, (uint64_t)src, (uint64_t)dst, 0,
				   DMA_DESC_IOC, 0x3001);
	struct dma_desc good = desc(DMA_OP_COPY, (uint64_t)src, (uint64_t)dst,
				    256, 0, 0x3002);
	struct dma_comp c = { 0 }, c2 = { 0 };
	bool rec, irq, rec2 = false;
	uint32_t ist, st, code;

	dmadev_write32(&dev, DMA_REG_INT_STATUS, ~0u); /* W1C: start clean */
	rec = run_one(ch, &bad, &c);
	irq = dmadev_wait_count(&err->hits, hits + 1, TIMEOUT_MS);
	ist = dmadev_read32(&dev, DMA_REG_INT_STATUS);
	st = dmadev_chan_state(ch, &code);
	dmadev_pattern(src, 256, 3);
	rec2 = run_one(ch, &good, &c2);
	check(&cl, "error-vector",
	       rec && c.status == DMA_ST_ERR_LEN && c.cookie == 0x3001 && irq &&
		       err->vector == (uint64_t)dev.vector[dev.channels] &&
		       (ist & DMA_INT_ERROR) &&
		       DMA_STATE(st) == DMA_STATE_IDLE && rec2 &&
		       comp_ok(&c2, 0x3002, 256) &&
		       dmadev_pattern_ok(dst, 256, 3),
	       "ch%u len 0: status %s, error irq %s, INT_STATUS 0x%x, state %u code %u, next copy %s",
	       c_idx, dmadev_status_name(c.status), irq ? "seen" : "missing",
	       ist, DMA_STATE(st), code,
	       rec2 && c2.status == DMA_ST_OK ? "ok" : "failed");
}

static void check_msix_mask(uint8_t *src, uint8_t *dst)
{
	struct dmadev_chan *ch = &dev.chan[0];
	uint64_t hits, start;
	struct dma_desc d = desc(DMA_OP_COPY, (uint64_t)src, (uint64_t)dst, 256,
				 DMA_DESC_IOC, 0x4001);
	struct dma_comp c = { 0 };
	bool rec, pending = false, delivered, cleared;
	uint64_t while_masked;

	dmadev_msix_mask(&dev, 0, true);
	hits = vec[0].hits;
	dmadev_pattern(src, 256, 4);
	rec = run_one(ch, &d, &c);
	/* The vector fires irq_latency after the write-back: wait for the
	 * PBA bit (one exit per look), then give a wrongly sent message
	 * time to show up. */
	start = lapic_ticks;
	while (rec && !(pending = dmadev_msix_pending(&dev, 0)) &&
	       lapic_ticks - start < TIMEOUT_MS)
		cpu_relax();
	dmadev_wait_count(&vec[0].hits, hits + 1, MASK_SETTLE_MS);
	while_masked = vec[0].hits - hits;
	dmadev_msix_mask(&dev, 0, false);
	delivered = dmadev_wait_count(&vec[0].hits, hits + 1, TIMEOUT_MS);
	cleared = !dmadev_msix_pending(&dev, 0);
	check(&cl, "msix-mask",
	       rec && comp_ok(&c, 0x4001, 256) && pending && !while_masked &&
		       delivered && vec[0].hits - hits == 1 && cleared,
	       "record %s, PBA %s while masked, %lu irqs while masked, %s on unmask, PBA %s after",
	       rec ? "seen" : "missing", pending ? "set" : "clear",
	       while_masked, delivered ? "delivered" : "not delivered",
	       cleared ? "clear" : "set");
}

static void check_ring_wrap(uint8_t *src, uint8_t *dst)
{
	enum { ENTRIES = 8, BATCH = ENTRIES - 1, BATCHES = 4, LEN = 64 };
	unsigned int c_idx = dev.channels - 1, b, k, in_order = 0, right = 0;
	struct dmadev_chan *ch = &dev.chan[c_idx];
	struct dma_comp c;
	int err = dmadev_chan_init(&dev, c_idx, ENTRIES);

	dmadev_pattern(src, BATCH * LEN, 5);
	for (b = 0; b < BATCHES && !err; b++) {
		for (k = 0; k < BATCH; k++) {
			struct dma_desc d = desc(DMA_OP_COPY,
						 (uint64_t)src + k * LEN,
						 (uint64_t)dst + k * LEN, LEN,
						 0, 0x5000 + b * BATCH + k);

			err |= dmadev_chan_post(ch, &d);
		}
		err |= dmadev_chan_space(ch) != 0; /* the ring is full */
		memset(dst, 0, BATCH * LEN);
		dmadev_chan_kick(ch);
		for (k = 0; k < BATCH; k++) {
			if (!dmadev_poll_wait(ch, &c, TIMEOUT_MS))
				break;
			in_order += c.cookie == 0x5000 + b * BATCH + k &&
				    c.status == DMA_ST_OK &&
				    c.index == (b * BATCH + k) % ENTRIES;
		}
		right += dmadev_pattern_ok(dst, BATCH * LEN, 5);
	}
	check(&cl, "ring-wrap", !err && in_order == BATCHES * BATCH &&
				    right == BATCHES,
	       "ch%u: %u of %u records in order, %u of %u batches right, phase now %u",
	       c_idx, in_order, BATCHES * BATCH, right, BATCHES, ch->phase);
}

static void check_tail_reset(uint8_t *src, uint8_t *dst)
{
	unsigned int c_idx = dev.channels > 2 ? 2 : 0;
	struct dmadev_chan *ch = &dev.chan[c_idx];
	struct vec_count *err = &vec[dev.channels];
	uint64_t hits = err->hits;
	struct dma_desc good = desc(DMA_OP_COPY, (uint64_t)src, (uint64_t)dst,
				    512, DMA_DESC_IOC, 0x6001);
	struct dma_comp c = { 0 };
	uint32_t st, code, st2 = ~0u;
	bool irq, rec = false;
	int r;

	ch->shadow->tail = ch->size;
	__asm__ volatile("" ::: "memory");
	dmadev_chan_write32(ch, DMA_CH_TAIL, ch->size);
	irq = dmadev_wait_count(&err->hits, hits + 1, TIMEOUT_MS);
	st = dmadev_chan_state(ch, &code);
	r = dmadev_chan_reset(ch);
	if (!r) {
		st2 = dmadev_chan_state(ch, NULL);
		dmadev_pattern(src, 512, 6);
		rec = run_one(ch, &good, &c);
	}
	check(&cl, "tail-reset",
	       irq && DMA_STATE(st) == DMA_STATE_ERROR &&
		       code == DMA_ERR_TAIL_RANGE && !r &&
		       DMA_STATE(st2) == DMA_STATE_IDLE && rec &&
		       comp_ok(&c, 0x6001, 512) && c.index == 0 &&
		       dmadev_pattern_ok(dst, 512, 6),
	       "ch%u: error irq %s, state %u code %u; after reset state %u, copy %s",
	       c_idx, irq ? "seen" : "missing", DMA_STATE(st), code,
	       DMA_STATE(st2), rec && c.status == DMA_ST_OK ? "ok" : "failed");
}

/* Channel 0's entry 0 sent to apic_id, one copy with IOC: whether exactly
 * one interrupt came (none more within MASK_SETTLE_MS) and the record is
 * right; where it ran is left in vec[0]. */
static bool irq_to_apic(uint32_t apic_id, uint8_t *src, uint8_t *dst,
			uint64_t cookie, uint64_t *irqs)
{
	struct dmadev_chan *ch = &dev.chan[0];
	uint64_t hits = vec[0].hits;
	struct dma_desc d = desc(DMA_OP_COPY, (uint64_t)src, (uint64_t)dst, 256,
				 DMA_DESC_IOC, cookie);
	struct dma_comp c = { 0 };
	bool irq, rec;

	dmadev_msix_program_to(&dev, 0, dev.vector[0], apic_id, false);
	vec[0].cpu = vec[0].apic = ~0u;
	dmadev_pattern(src, 256, cookie);
	dmadev_chan_post(ch, &d);
	dmadev_chan_kick(ch);
	irq = dmadev_wait_count(&vec[0].hits, hits + 1, TIMEOUT_MS);
	/* A second message (or a duplicate on another CPU) would show here. */
	if (irq)
		dmadev_wait_count(&vec[0].hits, hits + 2, MASK_SETTLE_MS);
	rec = dmadev_poll_wait(ch, &c, TIMEOUT_MS);
	*irqs = vec[0].hits - hits;
	return irq && *irqs == 1 && rec && comp_ok(&c, cookie, 256) &&
	       vec[0].vector == (uint64_t)dev.vector[0] &&
	       dmadev_pattern_ok(dst, 256, cookie);
}

static void check_msix_dest_cpu(uint8_t *src, uint8_t *dst)
{
	uint32_t bsp = lapic_id(), ap_cpu, ap_apic;
	uint64_t ap_irqs, bsp_irqs;
	bool to_ap, to_bsp;

	if (boot_info->cpu_count < 2) {
		kprintf(TAG ": msix-dest-cpu skipped (%u CPU; needs --cpus 2)\n",
			boot_info->cpu_count);
		return;
	}
	to_ap = irq_to_apic(AP_APIC, src, dst, 0x7001, &ap_irqs);
	ap_cpu = vec[0].cpu;
	ap_apic = vec[0].apic;
	to_bsp = irq_to_apic(bsp, src, dst, 0x7002, &bsp_irqs);
	check(&cl, "msix-dest-cpu",
	       to_ap && ap_cpu == AP_APIC && ap_apic == AP_APIC &&
		       to_bsp && vec[0].cpu == 0 && vec[0].apic == bsp,
	       "to APIC %u: %lu irq on cpu %d (apic %d); back to APIC %u: %lu irq on cpu %d (apic %d); %u CPUs online",
	       AP_APIC, ap_irqs, (int)ap_cpu, (int)ap_apic, bsp, bsp_irqs,
	       (int)vec[0].cpu, (int)vec[0].apic, cpus_online);
}

static int result(void)
{
	kprintf("DMALAB-RESULT {\"scenario\":\"dma-smoke\",\"status\":\"%s\",\"checks\":%u,\"failed\":%u,\"channels\":%u}\n",
		cl.failed ? "fail" : "pass", cl.checks, cl.failed, dev.channels);
	return cl.failed ? DMALAB_EXIT_FAIL : DMALAB_EXIT_PASS;
}

static void check_fill_dst(uint8_t *src, uint8_t *dst)
{
	(void)src;
	check_fill(dst);
}

/* Run after copy-poll proved the device completes work. */
static void (*const checks_after[])(uint8_t *src, uint8_t *dst) = {
	check_copy_irq, check_fill_dst, check_multi, check_error_vector,
	check_msix_mask, check_ring_wrap, check_tail_reset, check_msix_dest_cpu,
};

int scenario_dma_smoke(void)
{
	size_t i;
	uint8_t *src = kmalloc_aligned(BUF_LEN, 64);
	uint8_t *dst = kmalloc_aligned(BUF_LEN + 64, 64);
	int r = dmadev_probe(&dev);

	if (r == 0)
		dmadev_print(&dev);
	check(&cl, "probe", r == 0 && dev.channels > 0 && src && dst, "%s",
	       r == -1 ? "device not found" :
	       r == -2 ? "ID register does not answer" : "found");
	if (r || !dev.channels || !src || !dst)
		return result();
	check_msix();
	check_channels_up();
	if (cl.failed)
		return result();
	if (!check_copy_poll(src, dst)) {
		kprintf(TAG ": no completion within %u ms: the rest skipped\n",
			TIMEOUT_MS);
		return result();
	}
	for (i = 0; i < ARRAY_SIZE(checks_after); i++) {
		/* A device that is gone (surprise removal) reads all ones:
		 * stop instead of timing out check after check. */
		if (cl.failed && dmadev_read32(&dev, DMA_REG_ID) != DMA_ID_VALUE) {
			kprintf(TAG ": device no longer answers: the rest skipped\n");
			break;
		}
		checks_after[i](src, dst);
	}
	return result();
}
