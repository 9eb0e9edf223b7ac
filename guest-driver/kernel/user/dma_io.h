/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The DMA driver's test application (user/dma_io.c), shared with the
 * kernel side of its scenarios (dmadrv/harness.c), which fills
 * u_dma_params before user_run and reads u_dma_result after it.
 */
#ifndef DMALAB_USER_DMA_IO_H
#define DMALAB_USER_DMA_IO_H

#include <stdint.h>

enum dma_io_ops {
	DMA_IO_COPY = 1, /* every request a COPY */
	DMA_IO_FILL = 2, /* every request a FILL */
	DMA_IO_MIXED = 3, /* each request COPY or FILL at random */
};

/* Requests in flight at most: the I/O manager keeps 48 records. */
#define DMA_IO_MAX_INFLIGHT 32

struct dma_user_params {
	uint64_t base, size; /* the user-accessible data region */
	uint64_t seed;
	uint64_t max_bytes; /* largest request */
	uint64_t max_xfer; /* the driver's transfer size (for sizing) */
	uint32_t channels; /* devices dmadrv0 ... */
	uint32_t requesters; /* handles, channel = requester % channels */
	uint32_t depth; /* requests in flight per requester */
	uint32_t irps; /* requests in all */
	uint32_t ops; /* enum dma_io_ops */
	uint32_t verbose; /* one console line per request (demo) */
	uint32_t wait_ms; /* a request not done after this is lost */
	uint32_t cancel_every; /* CancelIoEx every n-th request if pending */
};

struct dma_user_result {
	uint64_t submitted; /* DeviceIoControl calls */
	uint64_t ok; /* ended with STATUS_SUCCESS, data verified */
	uint64_t failed; /* ended with an error status (cancelled too) */
	uint64_t cancelled; /* ended with STATUS_CANCELLED */
	uint64_t cancel_calls; /* CancelIoEx on a pending request */
	uint64_t cancel_hits; /* ... that found a cancel routine */
	uint64_t bad_data; /* succeeded but the data or guards are wrong */
	uint64_t bad_info; /* bytes returned != requested on success */
	uint64_t lost; /* wait timed out: never ended */
	uint64_t bad_overlapped; /* OVERLAPPED disagrees with the wait */
	uint64_t multi_transfer; /* requests longer than max_xfer */
	uint64_t bytes; /* moved by successful requests */
	uint64_t max_inflight;
	uint64_t first_fail_status; /* NTSTATUS (low 32 bits) */
	uint64_t first_fail_request; /* its number, 1-based */
	uint64_t open_failed;
	uint64_t cycles; /* TSC from first submit to last completion */
};

extern struct dma_user_params u_dma_params;
extern struct dma_user_result u_dma_result;

/* Runs the requests u_dma_params describes; results in u_dma_result.
 * Returns 0, or 1 if a device could not be opened. */
int64_t u_dma_io_main(uint64_t arg);

#endif
