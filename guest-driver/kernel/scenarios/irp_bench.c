// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/*
 * irp-bench: the IRP round trip through the DMA driver, from a
 * kernel-mode caller, as the [wiring] irq-bench measures the raw
 * interrupt round trip.
 *
 * Depth 1: IoBuildDeviceIoControlRequest (a 64-byte COPY on channel 0,
 * METHOD_OUT_DIRECT into a kernel buffer; built outside the measured
 * span), then TSC, IoCallDriver, KeWaitForSingleObject on the IRP's
 * event (the caller idles in `sti; hlt`, as irq-bench does), TSC: the
 * span is IoCallDriver -> dispatch -> IoStartPacket -> StartIo (descriptor,
 * doorbell) -> MSI-X -> ISR -> DpcForIsr -> IoStartNextPacket ->
 * IoCompleteRequest -> event -> the caller running again.
 *
 * Depth 32: 32 IRPs built, then at DISPATCH_LEVEL (so no DPC runs in
 * between) 32 IoCallDriver calls spread over the channels, IRQL lowered,
 * all 32 waited for; per IRP the span from its IoCallDriver to its
 * completion routine, and IRPs/s over the rounds (first IoCallDriver to
 * last completion).
 *
 * Depth 1 is also split by the driver's stamps (sampling mode): submit
 * (IoCallDriver to the doorbell write), device_isr (doorbell write to
 * the ISR's stamp: exit, device, MSI-X, interrupt entry, trampoline),
 * isr_dpc, dpc (DpcForIsr: records, IoStartNextPacket,
 * IoCompleteRequest, completion routine, event), wake (DPC exit to the
 * caller running: interrupt exit, the wait's return).
 *
 * Both phases: the driver samples ISR->DPC latency (TSC at ISR entry's
 * IoRequestDpc to DpcForIsr entry) and DpcForIsr duration, p50/p99.
 * Percentiles by selection after the run, nothing but TSC reads and
 * stores on the measured path. Command line: iters=N (default 1000 per
 * phase, rounded down to whole rounds of 32 for depth 32).
 */
#include "benchstat.h"
#include "dmadrv/dmadrv.h"
#include "heap.h"
#include "kernel.h"
#include "platform.h"
#include "scenarios/scenario.h"
#include "wdm/wdm_end.h"

#define TAG "irp-bench"
#define DEFAULT_ITERS 1000
#define MAX_ITERS 100000
#define WARMUP 8
#define DEPTH 32
#define AREA 256 /* per request: source at 0, destination at 128 */
#define XFER 64

struct bench_req {
	KEVENT event;
	IO_STATUS_BLOCK iosb;
	struct dmadrv_xfer x;
	uint64_t t0, t1;
};

static struct bench_req req[DEPTH];
static uint8_t *area;

/* p50 and p99 of v[0..n) in ns (rearranges v). */
static void pct(uint64_t *v, uint64_t n, uint64_t *p50, uint64_t *p99)
{
	*p50 = n ? tsc_to_ns(select_kth(v, (long)n, (long)(n / 2))) : 0;
	*p99 = n ? tsc_to_ns(select_kth(v, (long)n, (long)(n * 99 / 100))) : 0;
}

static NTSTATUS on_complete(PDEVICE_OBJECT DeviceObject, PIRP Irp,
			    PVOID Context)
{
	struct bench_req *r = Context;

	(void)DeviceObject, (void)Irp;
	r->t1 = rdtsc();
	return STATUS_CONTINUE_COMPLETION;
}

static PIRP build(unsigned int i, uint64_t tag)
{
	struct bench_req *r = &req[i];
	PDEVICE_OBJECT dev = dmadrv.chan[i % dmadrv.channels]->dev;
	PIRP irp;

	r->x.src_off = 0;
	r->x.dst_off = 128;
	r->x.len = XFER;
	r->x.pattern = 0;
	r->x.tag = tag;
	r->iosb.Status = STATUS_PENDING;
	KeInitializeEvent(&r->event, NotificationEvent, FALSE);
	irp = IoBuildDeviceIoControlRequest(IOCTL_DMADRV_COPY, dev, &r->x,
					    sizeof(r->x), area + i * AREA, AREA,
					    FALSE, &r->event, &r->iosb);
	if (irp)
		IoSetCompletionRoutine(irp, on_complete, r, TRUE, TRUE, TRUE);
	return irp;
}

static bool wait_done(struct bench_req *r)
{
	LARGE_INTEGER limit = { .QuadPart = -1000 * 10000 }; /* 1 s */

	return KeWaitForSingleObject(&r->event, Executive, KernelMode, FALSE,
				     &limit) == STATUS_SUCCESS &&
	       r->iosb.Status == STATUS_SUCCESS;
}

static int fail(const char *why, uint64_t i)
{
	kprintf(TAG ": FAIL %s (IRP %lu)\n", why, i);
	kprintf("DMALAB-RESULT {\"scenario\":\"irp-bench\",\"status\":\"fail\",\"reason\":\"%s\",\"irp\":%lu}\n",
		why, i);
	return DMALAB_EXIT_FAIL;
}

/* Where a depth-1 round trip goes: IoCallDriver -> doorbell write,
 * doorbell -> ISR (device, MSI-X, interrupt entry, trampoline), ISR ->
 * DpcForIsr, DpcForIsr, DPC exit -> the caller running. */
enum {
	SEG_SUBMIT, SEG_DEVICE, SEG_ISR_DPC, SEG_DPC, SEG_WAKE,
	/* Finer: submit = to_startio + startio; dpc = dpc_drv +
	 * dpc_complete (IoStartNextPacket + IoCompleteRequest). */
	SEG_TO_STARTIO, SEG_STARTIO, SEG_DPC_DRV, SEG_DPC_COMPLETE, SEGS
};
static const char *const seg_names[SEGS] = {
	"submit", "device_isr", "isr_dpc", "dpc", "wake",
	"to_startio", "startio", "dpc_driver", "dpc_complete",
};
static uint64_t *seg[SEGS];

/* Depth 1: returns 0 or the failing iteration + 1. */
static uint64_t depth1(uint64_t iters, uint64_t *rt)
{
	const struct dmadrv_stats *s = &dmadrv.stats;
	uint64_t i, t0, t1, k;
	PIRP irp;

	for (i = 0; i < WARMUP + iters; i++) {
		irp = build(0, i);
		if (!irp)
			return i + 1;
		t0 = rdtsc();
		IoCallDriver(dmadrv.chan[0]->dev, irp);
		if (!wait_done(&req[0]))
			return i + 1;
		t1 = rdtsc();
		if (i < WARMUP)
			continue;
		k = i - WARMUP;
		rt[k] = t1 - t0;
		seg[SEG_SUBMIT][k] = s->last_kick - t0;
		seg[SEG_DEVICE][k] = s->last_isr - s->last_kick;
		seg[SEG_ISR_DPC][k] = s->last_dpc_in - s->last_isr;
		seg[SEG_DPC][k] = s->last_dpc_out - s->last_dpc_in;
		seg[SEG_WAKE][k] = t1 - s->last_dpc_out;
		seg[SEG_TO_STARTIO][k] = s->last_startio - t0;
		seg[SEG_STARTIO][k] = s->last_kick - s->last_startio;
		seg[SEG_DPC_COMPLETE][k] = s->last_end_out - s->last_end_in;
		seg[SEG_DPC_DRV][k] = seg[SEG_DPC][k] - seg[SEG_DPC_COMPLETE][k];
	}
	return 0;
}

/* Depth 32: per-IRP spans into lat[], total busy cycles into *busy. */
static uint64_t depth32(uint64_t rounds, uint64_t *lat, uint64_t *busy)
{
	PIRP irps[DEPTH];
	uint64_t r, first, last;
	unsigned int i;
	KIRQL old;

	*busy = 0;
	for (r = 0; r < rounds; r++) {
		for (i = 0; i < DEPTH; i++) {
			irps[i] = build(i, r * DEPTH + i);
			if (!irps[i])
				return r * DEPTH + i + 1;
		}
		KeRaiseIrql(DISPATCH_LEVEL, &old);
		first = rdtsc();
		for (i = 0; i < DEPTH; i++) {
			req[i].t0 = rdtsc();
			IoCallDriver(dmadrv.chan[i % dmadrv.channels]->dev, irps[i]);
		}
		KeLowerIrql(old);
		last = first;
		for (i = 0; i < DEPTH; i++) {
			if (!wait_done(&req[i]))
				return r * DEPTH + i + 1;
			lat[r * DEPTH + i] = req[i].t1 - req[i].t0;
			if (req[i].t1 > last)
				last = req[i].t1;
		}
		*busy += last - first;
	}
	return 0;
}

static void take_samples(uint64_t out[4])
{
	struct dmadrv_stats *s = &dmadrv.stats;

	pct(s->isr_to_dpc, s->nsamples, &out[0], &out[1]);
	pct(s->dpc_cycles, s->nsamples, &out[2], &out[3]);
	s->nsamples = 0;
}

int scenario_irp_bench(void)
{
	uint64_t iters = dmadev_arg_u64("iters", DEFAULT_ITERS), rounds, n32;
	uint64_t *rt, *lat, d1[4], d32[4], busy, total, bad, i;
	uint64_t rt50, rt99, rtmin = ~0ull, l50, l99, seg50[SEGS], seg99[SEGS];
	struct dmadrv_stats *s = &dmadrv.stats;
	char line[1536], segs[400];
	PDRIVER_OBJECT drv;
	NTSTATUS st;
	size_t n;

	if (iters < DEPTH || iters > MAX_ITERS)
		iters = DEFAULT_ITERS;
	rounds = iters / DEPTH;
	n32 = rounds * DEPTH;
	rt = kmalloc_aligned(iters * sizeof(*rt), 64);
	lat = kmalloc_aligned(n32 * sizeof(*lat), 64);
	area = kmalloc_aligned(DEPTH * AREA, 64);
	s->isr_to_dpc = kmalloc_aligned(DMADRV_SAMPLES * sizeof(uint64_t), 64);
	s->dpc_cycles = kmalloc_aligned(DMADRV_SAMPLES * sizeof(uint64_t), 64);
	for (i = 0; i < SEGS; i++) {
		seg[i] = kmalloc_aligned(iters * sizeof(uint64_t), 64);
		if (!seg[i])
			return fail("out of memory", 0);
	}
	if (!rt || !lat || !area || !s->isr_to_dpc || !s->dpc_cycles)
		return fail("out of memory", 0);
	irq_enable();
	wdm_init();
	st = dmadrv_load(&drv, false);
	if (!NT_SUCCESS(st))
		return fail("DriverEntry failed", 0);
	dmadev_print(&dmadrv.dev);

	s->sampling = true;
	bad = depth1(iters, rt);
	if (bad)
		return fail("depth-1 IRP failed or timed out", bad - 1);
	take_samples(d1);
	total = 0;
	for (i = 0; i < iters; i++) {
		total += rt[i];
		rtmin = rt[i] < rtmin ? rt[i] : rtmin;
	}
	pct(rt, iters, &rt50, &rt99);
	for (i = 0; i < SEGS; i++)
		pct(seg[i], iters, &seg50[i], &seg99[i]);
	bad = depth32(rounds, lat, &busy);
	if (bad)
		return fail("depth-32 IRP failed or timed out", bad - 1);
	take_samples(d32);
	pct(lat, n32, &l50, &l99);
	s->sampling = false;
	wdm_unload_driver(drv);
	if (wdm_finish())
		return fail("verifier violations", 0);

	kprintf(TAG ": depth 1: %lu IRPs, round trip p50 %lu ns p99 %lu ns min %lu ns; ISR->DPC p50 %lu ns p99 %lu ns; DPC p50 %lu ns p99 %lu ns\n",
		iters, rt50, rt99, tsc_to_ns(rtmin), d1[0], d1[1], d1[2], d1[3]);
	kprintf(TAG ": depth 32: %lu IRPs, %lu IRPs/s, IoCallDriver->completion p50 %lu ns p99 %lu ns; ISR->DPC p50 %lu ns p99 %lu ns; DPC p50 %lu ns p99 %lu ns\n",
		n32, busy ? n32 * boot_info->tsc_khz * 1000 / busy : 0, l50, l99,
		d32[0], d32[1], d32[2], d32[3]);
	n = 0;
	for (i = 0; i < SEGS; i++)
		n += ksnprintf(segs + n, sizeof(segs) - n, ",\"seg_%s_ns_p50\":%lu",
			       seg_names[i], seg50[i]);
	n = ksnprintf(line, sizeof(line), TAG ": depth 1 p50 by segment (ns):");
	for (i = 0; i < SEGS; i++)
		n += ksnprintf(line + n, sizeof(line) - n, " %s %lu", seg_names[i],
			       seg50[i]);
	n += ksnprintf(line + n, sizeof(line) - n, "\n");
	console_write(line, n < sizeof(line) ? n : sizeof(line) - 1);
	n = ksnprintf(line, sizeof(line),
		      "DMALAB-RESULT {\"scenario\":\"irp-bench\",\"status\":\"pass\",\"iters\":%lu,\"tsc_khz\":%lu,\"d1_rt_ns_p50\":%lu,\"d1_rt_ns_p99\":%lu,\"d1_rt_ns_min\":%lu,\"d1_irps_per_sec\":%lu,\"d1_isr_dpc_ns_p50\":%lu,\"d1_isr_dpc_ns_p99\":%lu,\"d1_dpc_ns_p50\":%lu,\"d1_dpc_ns_p99\":%lu,\"d32_irps\":%lu,\"d32_irps_per_sec\":%lu,\"d32_lat_ns_p50\":%lu,\"d32_lat_ns_p99\":%lu,\"d32_isr_dpc_ns_p50\":%lu,\"d32_isr_dpc_ns_p99\":%lu,\"d32_dpc_ns_p50\":%lu,\"d32_dpc_ns_p99\":%lu,\"transfers\":%lu,\"drv_isrs\":%lu,\"drv_dpcs\":%lu,\"started_from_dpc\":%lu,\"spurious\":%lu%s}\n",
		      iters, boot_info->tsc_khz, rt50, rt99, tsc_to_ns(rtmin),
		      total ? iters * boot_info->tsc_khz * 1000 / total : 0,
		      d1[0], d1[1], d1[2], d1[3], n32,
		      busy ? n32 * boot_info->tsc_khz * 1000 / busy : 0, l50,
		      l99, d32[0], d32[1], d32[2], d32[3], s->transfers,
		      s->isrs, s->dpcs, s->started_from_dpc, s->spurious, segs);
	console_write(line, n < sizeof(line) ? n : sizeof(line) - 1);
	return DMALAB_EXIT_PASS;
}
