// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/*
 * fill: FILL requests of random sizes (up to 192 KiB) and random 8-byte
 * patterns at unaligned offsets on channel 0, two in flight; the
 * destination and its guard bytes are checked at CPL3. A fill that
 * continues after a short transfer starts mid-pattern: the driver
 * rotates the pattern (dmadrv/startio.c). Defaults: irps=48 depth=2
 * requesters=1 max_bytes=196608.
 */
#include "dmadrv/dmadrv.h"
#include "user/dma_io.h"

int scenario_fill(void)
{
	static const struct dmadrv_scenario s = {
		.name = "fill", .ops = DMA_IO_FILL, .irps = 48, .depth = 2,
		.requesters = 1, .max_bytes = 192 << 10,
	};

	return dmadrv_run_scenario(&s);
}
