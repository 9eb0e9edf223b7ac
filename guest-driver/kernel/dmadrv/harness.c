// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/*
 * The kernel side of the DMA driver's scenarios (copy, fill, stress,
 * demo): load the driver, give the test application (user/dma_io.c) a
 * data region and its parameters, run it at CPL3, unload, and judge.
 *
 * Pass = the application ran, every request it submitted ended exactly
 * once (none lost, OVERLAPPED consistent), every successful request's
 * data verified, the driver's own counts agree (IRPs it completed ==
 * requests ended: ok == driver ok, failed == driver failed + rejected +
 * cancelled), and no verifier violation. Requests may fail (a fault plan
 * can make them): they are reported, with the first failing status, and
 * the host's tests decide whether that was expected.
 *
 * Bug mode (dmadrv.bug=NAME): the check is instead that the verifier
 * reported the matching kind; the exit status is 0 unless
 * verifier=strict, as in wdm-selftest.
 *
 * Command line: irps=N, depth=N, requesters=N, max_bytes=N, seed=N
 * override the scenario's defaults; cancel_every=N cancels every N-th
 * request that is still pending.
 */
#include "dmadrv/dmadrv.h"
#include "heap.h"
#include "platform.h"
#include "kernel.h"
#include "scenarios/scenario.h"
#include "user.h"
#include "user/dma_io.h"
#include "wdm/wdm_end.h"

#define REGION_ALIGN (2ull << 20)
#define WAIT_MS 10000

static const char *const bug_kinds[DMADRV_BUG_COUNT] = {
	[DMADRV_BUG_NONE] = "",
	[DMADRV_BUG_DOUBLE_COMPLETE] = "irp_double_complete",
	[DMADRV_BUG_IRQL] = "irql",
	[DMADRV_BUG_ISR_STATE] = "interrupt_lock",
};

static int fail_early(const char *name, const char *why, uint32_t st)
{
	kprintf("%s: FAIL %s (0x%x)\n", name, why, st);
	kprintf("DMALAB-RESULT {\"scenario\":\"%s\",\"status\":\"fail\",\"error\":\"%s\",\"ntstatus\":\"0x%x\"}\n",
		name, why, st);
	return DMALAB_EXIT_FAIL;
}

static uint32_t clamp(uint64_t v, uint64_t lo, uint64_t hi)
{
	return (uint32_t)(v < lo ? lo : v > hi ? hi : v);
}

static void set_params(const struct dmadrv_scenario *s,
		       struct dma_user_params *p)
{
	uint32_t req = s->requesters ? s->requesters : 2 * dmadrv.channels;

	p->channels = dmadrv.channels;
	p->requesters = clamp(dmadev_arg_u64("requesters", req), 1,
			      DMA_IO_MAX_INFLIGHT);
	p->depth = clamp(dmadev_arg_u64("depth", s->depth), 1,
			 DMA_IO_MAX_INFLIGHT / p->requesters);
	p->irps = clamp(dmadev_arg_u64("irps", s->irps), 1, 1000000);
	p->max_bytes = clamp(dmadev_arg_u64("max_bytes", s->max_bytes), 1,
			     DMADRV_MAX_REQUEST);
	p->seed = dmadev_arg_u64("seed", 1);
	p->max_xfer = dmadrv.params.max_xfer;
	p->ops = s->ops;
	p->verbose = s->verbose;
	p->wait_ms = WAIT_MS;
	p->cancel_every = clamp(dmadev_arg_u64("cancel_every", 0), 0, 1000000);
}

int dmadrv_run_scenario(const struct dmadrv_scenario *s)
{
	struct dma_user_params *p = &u_dma_params;
	struct dma_user_result *r = &u_dma_result;
	const struct dmadrv_stats *ds = &dmadrv.stats;
	char drv_fields[1024], wdm_fields[512], line[2048];
	PDRIVER_OBJECT drv;
	uint64_t per_slot, region_size, violations, caught = 0, ended;
	enum dmadrv_bug bug;
	int64_t ust;
	NTSTATUS st;
	bool pass, counts_ok;
	size_t n;
	void *region;

	if (dmadrv_bad_bug())
		return fail_early(s->name, "unknown dmadrv.bug (known: double-complete irql isr-state)", 0);
	irq_enable();
	wdm_init();
	st = dmadrv_load(&drv, s->markers);
	if (!NT_SUCCESS(st))
		return fail_early(s->name, "DriverEntry failed", (uint32_t)st);
	dmadev_print(&dmadrv.dev);
	bug = dmadrv.params.bug;
	set_params(s, p);
	per_slot = (2 * p->max_bytes + 256 + 63) & ~63ull;
	region_size = (per_slot * p->requesters * p->depth + REGION_ALIGN - 1) &
		      ~(REGION_ALIGN - 1);
	region = kmalloc_aligned(region_size, REGION_ALIGN);
	if (!region || user_region_add((uint64_t)region, region_size)) {
		wdm_unload_driver(drv);
		return fail_early(s->name, "no memory for the data region", 0);
	}
	p->base = (uint64_t)region;
	p->size = region_size;
	kprintf("%s: %u requests, %u requesters x depth %u on %u channels, up to %lu bytes each, transfers of %u bytes\n",
		s->name, p->irps, p->requesters, p->depth, p->channels,
		p->max_bytes, dmadrv.params.max_xfer);
	ust = user_run(u_dma_io_main, 0);
	wdm_unload_driver(drv);
	violations = wdm_finish();

	ended = r->ok + r->failed + r->bad_data + r->bad_info;
	counts_ok = ust == 0 && !r->lost && !r->bad_overlapped &&
		    ended == r->submitted && r->submitted == p->irps &&
		    r->ok + r->bad_data + r->bad_info == ds->irps_ok &&
		    r->failed == ds->irps_failed + ds->irps_rejected +
					 ds->irps_cancelled;
	if (bug != DMADRV_BUG_NONE) {
		const char *kind = bug_kinds[bug];

		caught = wdm_violation_count(kind, strlen(kind));
		pass = caught > 0 && !(wdm_strict() && violations);
	} else {
		pass = counts_ok && !r->bad_data && !r->bad_info && !violations;
	}
	if (s->verbose)
		kprintf("%s: %lu of %lu requests ok; driver: %lu IRPs, %lu transfers (%lu posted by the DpcForIsr), %lu retries, %lu channel resets, %lu lost interrupts recovered by the watchdog, %lu spurious interrupts ignored\n",
			s->name, r->ok, r->submitted, ds->irps, ds->transfers,
			ds->reprograms, ds->retries, ds->resets,
			ds->watchdog_recoveries, ds->spurious);
	dmadrv_result_fields(drv_fields, sizeof(drv_fields));
	wdm_result_fields(wdm_fields, sizeof(wdm_fields));
	n = ksnprintf(line, sizeof(line),
		      "DMALAB-RESULT {\"scenario\":\"%s\",\"status\":\"%s\",\"bug\":\"%s\",\"strict\":%s,\"caught\":%lu,\"user_status\":%ld,\"requests\":%lu,\"ok\":%lu,\"failed\":%lu,\"bad_data\":%lu,\"bad_info\":%lu,\"lost\":%lu,\"cancelled\":%lu,\"cancel_calls\":%lu,\"cancel_hits\":%lu,\"bad_overlapped\":%lu,\"counts_agree\":%s,\"multi_transfer_requests\":%lu,\"bytes\":%lu,\"max_inflight\":%lu,\"first_fail_request\":%lu,\"first_fail\":\"0x%lx\",\"cycles\":%lu,%s,%s}\n",
		      s->name, pass ? "pass" : "fail", dmadrv_bug_names[bug],
		      wdm_strict() ? "true" : "false", caught, ust, r->submitted,
		      r->ok, r->failed, r->bad_data, r->bad_info, r->lost,
		      r->cancelled, r->cancel_calls, r->cancel_hits,
		      r->bad_overlapped, counts_ok ? "true" : "false",
		      r->multi_transfer, r->bytes, r->max_inflight,
		      r->first_fail_request, r->first_fail_status, r->cycles,
		      drv_fields, wdm_fields);
	console_write(line, n < sizeof(line) ? n : sizeof(line) - 1);
	return pass ? DMALAB_EXIT_PASS : DMALAB_EXIT_FAIL;
}
