// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/*
 * irq-bench: the doorbell → MSI-X → ISR round trip, queue depth 1.
 *
 * Each round posts one 64-byte COPY with IOC on channel 0, stamps the TSC,
 * rings the doorbell (shadow + TAIL write), idles in irq_idle_halt (the
 * kernel's `sti; hlt`, trap.h) until the ISR (which only counts and EOIs)
 * has run, and stamps again: that span is
 * the round trip of the [wiring] contract. The completion record is
 * consumed and checked after the second stamp, outside the measured span.
 * Eight unmeasured warm-up rounds come first.
 *
 * Kernel mode on purpose: the ISR path is kernel anyway, and a CPL3 loop
 * would add a system call (~26 us here) per round. The samples go to a
 * heap array; the median is found after the loop by quickselect (O(n),
 * ~40 emulated instructions per element here, not a sort), so nothing but
 * the two rdtsc and a store sits on the hot path.
 *
 * Two extra figures separate the costs, each from up to 500 rounds of its
 * own after the main loop: kick_ns_p50, the doorbell alone (shadow store
 * + TAIL write: one exit in --doorbell exit mode, none with ioeventfd;
 * the same rounds, with a TSC stamp after the kick), and ipi_ns_p50, the
 * same wait on a LAPIC self-IPI instead of the device: the guest's own
 * share of a round trip, with no VMM or device in it. The doorbell is not
 * stamped inside the main loop's rounds: a stamp there is five more
 * emulated instructions (~2 us) in every measured round trip, which the
 * floor's loop does not have.
 *
 * Command line: iters=N (default 2000, 1 ... 1000000).
 */
#include "benchstat.h"
#include "dmadev.h"
#include "heap.h"
#include "kernel.h"
#include "lapic.h"
#include "platform.h"
#include "scenarios/scenario.h"
#include "trap.h"

#define TAG "irq-bench"
#define DEFAULT_ITERS 2000
#define MAX_ITERS 1000000
#define WARMUP 8
#define XFER 64
#define RING_ENTRIES 16
#define ROUND_TIMEOUT_MS 1000
#define IPI_ROUNDS 500
#define KICK_ROUNDS 500

static struct dmadev dev;
static volatile uint64_t irq_hits;
static volatile uint64_t err_hits;
static volatile uint64_t ipi_hits;

/* One memory-destination increment: gcc turns `volatile x++` into a
 * load, an add and a store, three emulated instructions. */
static inline void count_hit(volatile uint64_t *c)
{
	__asm__ volatile("incq %0" : "+m"(*c));
}

static void on_complete(struct trap_frame *f, void *ctx)
{
	(void)f;
	(void)ctx;
	count_hit(&irq_hits);
	lapic_eoi();
}

static void on_ipi(struct trap_frame *f, void *ctx)
{
	(void)f;
	(void)ctx;
	count_hit(&ipi_hits);
	lapic_eoi();
}

static void on_error(struct trap_frame *f, void *ctx)
{
	(void)f;
	(void)ctx;
	err_hits++;
	lapic_eoi();
}

/* Called with interrupts off since before the interrupt was triggered
 * (so *count cannot have moved yet): idle in irq_idle_halt until *count
 * moves from before, or ROUND_TIMEOUT_MS of LAPIC ticks from start.
 * Returns with interrupts on; the caller checks *count (after its TSC
 * stamp: nothing but the wake-up check sits between the ISR and it). */
static inline void wait_for(const volatile uint64_t *count, uint64_t before,
			    uint64_t start)
{
	for (;;) {
		irq_idle_halt();
		if (__builtin_expect(*count != before, 1))
			break;
		if (lapic_ticks - start >= ROUND_TIMEOUT_MS)
			break;
	}
	irq_enable();
}

/* One round: the cycles from before the doorbell to back from the wait
 * (stamp_kick false) or to just after the doorbell (true); 0 on a
 * timeout or a bad record. Inlined into its two callers, so the main
 * loop's rounds carry no test of stamp_kick. */
static inline __attribute__((always_inline)) uint64_t
ring_and_wait(struct dmadev_chan *ch, const struct dma_desc *d,
	      bool stamp_kick)
{
	uint64_t before = irq_hits, start = lapic_ticks, t0, tk = 0, t1;
	struct dma_comp c;

	dmadev_chan_post(ch, d);
	/* Interrupts off until the wait's halt: the ISR cannot land inside
	 * the doorbell's own span. */
	irq_disable();
	t0 = rdtsc();
	dmadev_chan_kick(ch);
	if (stamp_kick)
		tk = rdtsc();
	wait_for(&irq_hits, before, start);
	t1 = rdtsc();
	if (irq_hits == before || !dmadev_poll_wait(ch, &c, ROUND_TIMEOUT_MS) ||
	    c.status != DMA_ST_OK || c.cookie != d->cookie)
		return 0;
	t1 = stamp_kick ? tk : t1;
	return t1 - t0 ? t1 - t0 : 1;
}

static uint64_t round_trip(struct dmadev_chan *ch, const struct dma_desc *d)
{
	return ring_and_wait(ch, d, false);
}

/* The doorbell write alone (shadow + TAIL write), in a complete round. */
static uint64_t kick_round(struct dmadev_chan *ch, const struct dma_desc *d)
{
	return ring_and_wait(ch, d, true);
}

/* The guest's own interrupt path, for comparison: self-IPI → the same
 * kind of ISR → back in the loop. Fills v[0..n), returns false on a
 * timeout. */
static bool ipi_baseline(uint64_t *v, uint64_t n)
{
	int vec = irq_alloc(on_ipi, NULL);
	uint64_t i, before, start, t0, t1;

	if (vec < 0)
		return false;
	for (i = 0; i < n; i++) {
		before = ipi_hits;
		start = lapic_ticks;
		irq_disable();
		t0 = rdtsc();
		lapic_self_ipi((uint8_t)vec);
		wait_for(&ipi_hits, before, start);
		t1 = rdtsc();
		if (ipi_hits == before)
			return false;
		v[i] = t1 - t0;
	}
	return true;
}

static int fail(const char *why, uint64_t iter)
{
	kprintf(TAG ": FAIL %s (round %lu)\n", why, iter);
	kprintf("DMALAB-RESULT {\"scenario\":\"irq-bench\",\"status\":\"fail\",\"reason\":\"%s\",\"round\":%lu}\n",
		why, iter);
	return DMALAB_EXIT_FAIL;
}

int scenario_irq_bench(void)
{
	uint64_t iters = dmadev_arg_u64("iters", DEFAULT_ITERS);
	uint8_t *buf = kmalloc_aligned(2 * XFER, 64);
	uint64_t *rt, i, total, mn = ~0ull, mx = 0, p50, kick50, ipi50;
	uint64_t ipi_n, kick_n;
	struct dma_desc d = { 0 };
	struct dmadev_chan *ch;
	int r;

	if (iters < 1 || iters > MAX_ITERS)
		iters = DEFAULT_ITERS;
	rt = kmalloc_aligned(iters * sizeof(*rt), 64);
	r = dmadev_probe(&dev);
	if (r)
		return fail(r == -1 ? "device not found" :
				      "device does not answer", 0);
	if (!buf || !rt)
		return fail("out of memory", 0);
	dmadev_print(&dev);
	if (dmadev_msix_bind(&dev, 0, on_complete, NULL) < 0 ||
	    dmadev_msix_bind(&dev, dev.channels, on_error, NULL) < 0)
		return fail("no free interrupt vector", 0);
	dmadev_msix_enable(&dev, true);
	if (dmadev_chan_init(&dev, 0, RING_ENTRIES))
		return fail("channel 0 did not come up", 0);
	ch = &dev.chan[0];

	dmadev_pattern(buf, XFER, 7);
	d.src = (uint64_t)buf;
	d.dst = (uint64_t)buf + XFER;
	d.len = XFER;
	d.op = DMA_OP_COPY;
	d.flags = DMA_DESC_IOC;
	for (i = 0; i < WARMUP; i++) {
		d.cookie = ~i;
		if (!round_trip(ch, &d))
			return fail("warm-up round timed out or failed", i);
	}
	total = rdtsc();
	for (i = 0; i < iters; i++) {
		d.cookie = i;
		rt[i] = round_trip(ch, &d);
		if (!rt[i])
			return fail("round timed out or failed", i);
	}
	total = rdtsc() - total;
	if (!dmadev_pattern_ok(buf + XFER, XFER, 7))
		return fail("copied data wrong", iters);
	if (err_hits)
		return fail("error vector fired", iters);
	for (i = 0; i < iters; i++) {
		mn = rt[i] < mn ? rt[i] : mn;
		mx = rt[i] > mx ? rt[i] : mx;
	}
	p50 = select_kth(rt, (long)iters, (long)(iters / 2));
	kick_n = iters < KICK_ROUNDS ? iters : KICK_ROUNDS;
	for (i = 0; i < kick_n; i++) {
		d.cookie = iters + i;
		rt[i] = kick_round(ch, &d);
		if (!rt[i])
			return fail("doorbell round timed out or failed", i);
	}
	if (!dmadev_pattern_ok(buf + XFER, XFER, 7))
		return fail("copied data wrong", iters + kick_n);
	kick50 = select_kth(rt, (long)kick_n, (long)(kick_n / 2));
	ipi_n = iters < IPI_ROUNDS ? iters : IPI_ROUNDS;
	if (!ipi_baseline(rt, ipi_n))
		return fail("self-IPI baseline timed out", 0);
	ipi50 = select_kth(rt, (long)ipi_n, (long)(ipi_n / 2));
	kprintf(TAG ": %lu round trips, p50 %lu ns, min %lu ns, max %lu ns; doorbell write p50 %lu ns; self-IPI round trip p50 %lu ns\n",
		iters, tsc_to_ns(p50), tsc_to_ns(mn), tsc_to_ns(mx), tsc_to_ns(kick50),
		tsc_to_ns(ipi50));
	kprintf("DMALAB-RESULT {\"scenario\":\"irq-bench\",\"status\":\"pass\",\"iters\":%lu,\"tsc_khz\":%lu,\"cycles_total\":%lu,\"rt_ns_p50\":%lu,\"rt_ns_min\":%lu,\"rt_ns_max\":%lu,\"rt_per_sec\":%lu,\"kick_ns_p50\":%lu,\"ipi_ns_p50\":%lu}\n",
		iters, boot_info->tsc_khz, total, tsc_to_ns(p50), tsc_to_ns(mn),
		tsc_to_ns(mx),
		total ? iters * boot_info->tsc_khz * 1000 / total : 0,
		tsc_to_ns(kick50), tsc_to_ns(ipi50));
	return DMALAB_EXIT_PASS;
}
