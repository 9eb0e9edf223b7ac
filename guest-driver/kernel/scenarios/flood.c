// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/*
 * flood: the most work the device spec allows, posted on every channel at
 * once. Every channel gets a ring of the maximum size (CAPS) holding
 * RING_SIZE - 1 COPY descriptors of MAX_XFER bytes each, every one with
 * IOC; then every TAIL is written. With the defaults (4 channels, 4096
 * entries, 16 MiB) that is 4 x 4095 x 16 MiB = 256 GiB of copying for
 * doorbells that are each one legal register write.
 *
 * All descriptors copy the same MAX_XFER buffer onto itself: the data is
 * not checked, only the VMM's behaviour matters (it must stay responsive
 * and end the run by --timeout). The guest then waits in sti;hlt, counting
 * interrupts and completion records, and reports if the device ever
 * finishes (hours on any host).
 *
 * Command line: channels=N (default: all), entries=N (default: the
 * maximum ring), len=N (default: MAX_XFER); smaller values make a
 * flood that finishes, for checking the scenario itself.
 */
#include "dmadev.h"
#include "heap.h"
#include "kernel.h"
#include "lapic.h"
#include "platform.h"
#include "scenarios/scenario.h"

#define TAG "flood"
#define WAIT_SLICE_MS 1000

static struct dmadev dev;
static volatile uint64_t irqs;

static void on_msix(struct trap_frame *f, void *ctx)
{
	(void)f;
	(void)ctx;
	__atomic_fetch_add(&irqs, 1, __ATOMIC_RELAXED);
	lapic_eoi();
}

static int result(const char *status, uint64_t posted, uint64_t done)
{
	kprintf("DMALAB-RESULT {\"scenario\":\"flood\",\"status\":\"%s\",\"posted\":%lu,\"completions\":%lu,\"interrupts\":%lu}\n",
		status, posted, done, irqs);
	return status[0] == 'p' ? DMALAB_EXIT_PASS : DMALAB_EXIT_FAIL;
}

/*
 * Fills channel ch's ring with size - 1 descriptors of len bytes, IOC
 * each, cookie = index, straight into the ring: four stores per entry.
 * (Through dmadev_chan_post the 16,380 posts cost ~1.5 s of emulated CPL0
 * code here; this loop ~0.1 s.) The ring is fresh, so the driver's tail
 * is the count.
 */
static uint64_t post_all(struct dmadev_chan *ch, uint64_t buf, uint32_t len)
{
	uint64_t word2 = len | (uint64_t)DMA_OP_COPY << 32 |
			 (uint64_t)DMA_DESC_IOC << 40;
	uint64_t n = ch->size - 1, i;
	volatile uint64_t *r = (volatile uint64_t *)ch->ring;

	for (i = 0; i < n; i++, r += 4) {
		r[0] = buf;
		r[1] = buf;
		r[2] = word2;
		r[3] = i;
	}
	ch->tail = (uint32_t)n;
	return n;
}

int scenario_flood(void)
{
	uint64_t channels, entries, len, posted = 0, done = 0, buf, t0;
	uint64_t t_init = 0, t_post = 0;
	struct dma_comp rec;
	unsigned int c, i;

	if (dmadev_probe(&dev)) {
		kprintf(TAG ": FAIL device not found or not answering\n");
		return result("fail", 0, 0);
	}
	channels = dmadev_arg_u64("channels", dev.channels);
	entries = dmadev_arg_u64("entries", dev.max_ring);
	len = dmadev_arg_u64("len", dev.max_xfer);
	if (!channels || channels > dev.channels)
		channels = dev.channels;
	if (entries < 2 || entries > dev.max_ring || (entries & (entries - 1)))
		entries = dev.max_ring;
	if (!len || len > dev.max_xfer)
		len = dev.max_xfer;
	buf = (uint64_t)kmalloc_aligned(len, 4096);
	if (!buf) {
		kprintf(TAG ": FAIL no memory for a %lu-byte buffer\n", len);
		return result("fail", 0, 0);
	}
	for (i = 0; i < dev.nvec; i++)
		if (dmadev_msix_bind(&dev, i, on_msix, NULL) < 0) {
			kprintf(TAG ": FAIL no vector for MSI-X entry %u\n", i);
			return result("fail", 0, 0);
		}
	dmadev_msix_enable(&dev, true);
	for (c = 0; c < channels; c++) {
		t0 = rdtsc();
		if (dmadev_chan_init(&dev, c, (uint32_t)entries)) {
			kprintf(TAG ": FAIL channel %u did not come up\n", c);
			return result("fail", posted, 0);
		}
		t_init += rdtsc() - t0;
		t0 = rdtsc();
		posted += post_all(&dev.chan[c], buf, (uint32_t)len);
		t_post += rdtsc() - t0;
	}
	kprintf(TAG ": %lu descriptors of %lu bytes posted on %lu channels (%lu MiB; set-up %lu ms, posting %lu ms); ringing\n",
		posted, len, channels, posted * len >> 20,
		tsc_to_us(t_init) / 1000, tsc_to_us(t_post) / 1000);
	for (c = 0; c < channels; c++)
		dmadev_chan_kick(&dev.chan[c]);
	kprintf(TAG ": every doorbell rung\n");
	while (done < posted) {
		dmadev_wait_count(&irqs, irqs + 1, WAIT_SLICE_MS);
		for (c = 0; c < channels; c++)
			while (dmadev_chan_poll(&dev.chan[c], &rec))
				done++;
	}
	return result("pass", posted, done);
}
