// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/*
 * copy: COPY requests of random sizes (1 byte ... 256 KiB, the first one
 * 256 KiB; the driver's transfers are 64 KiB, so most requests take
 * several transfers, each reprogrammed by the DpcForIsr) on channel 0,
 * four in flight, data verified at CPL3. Defaults: irps=64 depth=4
 * requesters=1 max_bytes=262144 (dmadrv/harness.c).
 */
#include "dmadrv/dmadrv.h"
#include "user/dma_io.h"

int scenario_copy(void)
{
	static const struct dmadrv_scenario s = {
		.name = "copy", .ops = DMA_IO_COPY, .irps = 64, .depth = 4,
		.requesters = 1, .max_bytes = 256 << 10,
	};

	return dmadrv_run_scenario(&s);
}
