// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/*
 * demo: what `dmalab run` shows by default. Eight COPY requests of
 * different sizes (the first 192 KiB: three transfers) one at a time on
 * channel 0, one console line each, with markers=1 so a --trace file
 * shows ISR entry, DPC entry, IRP completion and watchdog markers beside
 * the device's own events. With tests/plans/demo.toml (the interrupt of
 * descriptor 3 dropped) the watchdog timer DPC finds that completion and
 * the run still passes; the result line's watchdog_recoveries says so.
 * Defaults: irps=8 depth=1 requesters=1 max_bytes=196608.
 */
#include "dmadrv/dmadrv.h"
#include "user/dma_io.h"

int scenario_demo(void)
{
	static const struct dmadrv_scenario s = {
		.name = "demo", .ops = DMA_IO_COPY, .irps = 8, .depth = 1,
		.requesters = 1, .max_bytes = 192 << 10, .markers = true,
		.verbose = true,
	};

	return dmadrv_run_scenario(&s);
}
