// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/*
 * stress: two requesters per channel, four requests in flight each
 * (depth 32 with the default four channels), COPY and FILL mixed at
 * random, up to 128 KiB each: every channel's StartIo queue is deep,
 * all channels are busy at once, and the DpcForIsr starts most IRPs.
 * Defaults: irps=400 depth=4 requesters=2 x channels max_bytes=131072.
 */
#include "dmadrv/dmadrv.h"
#include "user/dma_io.h"

int scenario_stress(void)
{
	static const struct dmadrv_scenario s = {
		.name = "stress", .ops = DMA_IO_MIXED, .irps = 400, .depth = 4,
		.requesters = 0, .max_bytes = 128 << 10,
	};

	return dmadrv_run_scenario(&s);
}
