// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/*
 * clock-agree: the guest's TSC and the device clock advance at the same
 * rate (meant for --timing realtime, where device time is host time), so a
 * watchdog period in a driver and a latency in the model mean the same
 * microseconds. Two checks, each comparing the device's CYCLE register
 * (converted with CLOCK_MHZ) with the TSC (converted with the boot
 * protocol's tsc_khz) over the same span:
 *
 *   idle-window  the guest spins WINDOW_MS on its TSC between two reads
 *   device-work  WORK_DESCS back-to-back WORK_LEN copies on channel 0,
 *                from before the doorbell to the last record (polled):
 *                milliseconds of modelled device work
 *
 * Each CYCLE read is bracketed by two TSC reads: the MMIO exit can take
 * from tens of µs to milliseconds on a loaded host (the vCPU thread
 * preempted, the device lock held by a copy). If the clocks run at the
 * same rate, the device span lies between the inner and the outer TSC
 * span; it agrees when it does, widened by 2 % + SLACK_US. The copies' data is not checked (filling buffers at ring 0
 * costs ~3 µs per 8 bytes here): dma-smoke checks data.
 */
#include "boot.h"
#include "check.h"
#include "dmadev.h"
#include "heap.h"
#include "kernel.h"
#include "platform.h"
#include "scenarios/scenario.h"

#define TAG "clock-agree"
#define WINDOW_MS 20
#define WORK_LEN (4u << 20)
#define WORK_DESCS 8
#define RING_ENTRIES 16
#define TIMEOUT_MS 5000
#define SLACK_US 50

static struct dmadev dev;
static struct checklist cl = { .tag = TAG };
static uint64_t window_tsc_us, window_dev_us, work_tsc_us, work_dev_us;

/* A CYCLE read between two TSC reads. */
struct stamp {
	uint64_t before, cycle, after;
};

static struct stamp stamp(void)
{
	struct stamp s;

	s.before = rdtsc();
	s.cycle = dmadev_read64(&dev, DMA_REG_CYCLE);
	s.after = rdtsc();
	return s;
}

static uint64_t cycles_to_us(uint64_t cycles)
{
	uint64_t mhz = dmadev_read32(&dev, DMA_REG_CLOCK_MHZ);

	return mhz ? cycles / mhz : 0;
}

/* Sets *tsc_us (the inner span) and *dev_us; whether they agree. */
static bool agree(struct stamp a, struct stamp b, uint64_t *tsc_us,
		  uint64_t *dev_us)
{
	uint64_t inner = tsc_to_us(b.before - a.after);
	uint64_t outer = tsc_to_us(b.after - a.before);
	uint64_t widen = outer / 50 + SLACK_US;

	*tsc_us = inner;
	*dev_us = cycles_to_us(b.cycle - a.cycle);
	return inner > 0 && *dev_us + widen >= inner && *dev_us <= outer + widen;
}

static void check_idle_window(void)
{
	struct stamp a = stamp(), b;
	bool same;
	uint64_t khz = boot_info ? boot_info->tsc_khz : 0;

	while (khz && rdtsc() - a.after < khz * WINDOW_MS)
		;
	b = stamp();
	same = agree(a, b, &window_tsc_us, &window_dev_us);
	check(&cl, "idle-window", same,
	      "TSC %lu us, device %lu us", window_tsc_us, window_dev_us);
}

static void check_device_work(uint8_t *src, uint8_t *dst)
{
	struct dmadev_chan *ch = &dev.chan[0];
	struct dma_desc d = { .src = (uint64_t)src, .dst = (uint64_t)dst,
			      .len = WORK_LEN, .op = DMA_OP_COPY };
	struct dma_comp c = { 0 };
	struct stamp a, b;
	unsigned int i, ok = 0;
	bool same;

	for (i = 0; i < WORK_DESCS; i++) {
		d.cookie = 0x2000 + i;
		if (dmadev_chan_post(ch, &d))
			break;
	}
	a = stamp();
	dmadev_chan_kick(ch);
	for (i = 0; i < WORK_DESCS; i++)
		if (dmadev_poll_wait(ch, &c, TIMEOUT_MS) &&
		    c.status == DMA_ST_OK && c.bytes_done == WORK_LEN)
			ok++;
	b = stamp();
	same = agree(a, b, &work_tsc_us, &work_dev_us);
	check(&cl, "device-work", same && ok == WORK_DESCS,
	      "%u of %u %u-byte copies, TSC %lu us, device %lu us", ok,
	      WORK_DESCS, WORK_LEN, work_tsc_us, work_dev_us);
}

static int result(void)
{
	kprintf("DMALAB-RESULT {\"scenario\":\"clock-agree\",\"status\":\"%s\",\"checks\":%u,\"failed\":%u,"
		"\"window_tsc_us\":%lu,\"window_device_us\":%lu,\"work_tsc_us\":%lu,\"work_device_us\":%lu}\n",
		cl.failed ? "fail" : "pass", cl.checks, cl.failed,
		window_tsc_us, window_dev_us, work_tsc_us, work_dev_us);
	return cl.failed ? DMALAB_EXIT_FAIL : DMALAB_EXIT_PASS;
}

int scenario_clock_agree(void)
{
	uint8_t *src = kmalloc_aligned(WORK_LEN, 4096);
	uint8_t *dst = kmalloc_aligned(WORK_LEN, 4096);
	int r = dmadev_probe(&dev);

	check(&cl, "probe",
	      r == 0 && dev.channels > 0 && src && dst && boot_info &&
		      boot_info->tsc_khz,
	      "%s", r ? "device not found" : "found");
	if (cl.failed)
		return result();
	r = dmadev_chan_init(&dev, 0, RING_ENTRIES);
	check(&cl, "channel-up", r == 0, "error %d", r);
	if (cl.failed)
		return result();
	check_idle_window();
	check_device_work(src, dst);
	return result();
}
