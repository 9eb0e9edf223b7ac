/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The DMA driver's IOCTLs, shared by the driver and the user programs
 * that open it (no kernel symbols: user code includes this too).
 *
 * One device object per DMA channel: channel c is "\Device\dmadrv<c>",
 * opened by user code as "dmadrv<c>".
 *
 * Both IOCTLs are METHOD_OUT_DIRECT: the input buffer carries a small
 * struct dmadrv_xfer (buffered), the output buffer is the data, described
 * by the IRP's MDL. A copy moves bytes between two ranges of that one
 * buffer (src_off -> dst_off), so the driver only ever programs the
 * device with addresses inside a range the I/O manager has checked.
 * IoStatus.Information is the number of bytes moved (len on success).
 */
#ifndef DMALAB_DMADRV_IOCTL_H
#define DMALAB_DMADRV_IOCTL_H

#include <stdint.h>

#define DMADRV_DEVICE_PREFIX "dmadrv"

/* CTL_CODE(FILE_DEVICE_UNKNOWN, 0x900 / 0x901, METHOD_OUT_DIRECT,
 * FILE_ANY_ACCESS), spelled out for user code. */
#define IOCTL_DMADRV_COPY ((0x22u << 16) | (0x900u << 2) | 2u)
#define IOCTL_DMADRV_FILL ((0x22u << 16) | (0x901u << 2) | 2u)

/* Largest request: 64 MiB (the driver splits it into transfers of at
 * most dmadrv.max_xfer bytes). */
#define DMADRV_MAX_REQUEST (64u << 20)

struct dmadrv_xfer {
	uint64_t src_off; /* COPY: source offset in the output buffer */
	uint64_t dst_off; /* destination offset in the output buffer */
	uint64_t len; /* bytes, 1 ... DMADRV_MAX_REQUEST */
	uint64_t pattern; /* FILL: byte k of dst = byte k % 8 of this */
	uint64_t tag; /* the caller's request number (trace markers) */
};

/* NTSTATUS values the driver completes with (besides STATUS_SUCCESS,
 * STATUS_INVALID_PARAMETER, STATUS_CANCELLED, STATUS_IO_TIMEOUT). */
#define DMADRV_STATUS_IO_DEVICE_ERROR 0xC0000185u /* retries exhausted */
#define DMADRV_STATUS_DEVICE_HARDWARE_ERROR 0xC0000186u /* fatal DMA error */
#define DMADRV_STATUS_DEVICE_REMOVED 0xC00002B6u /* device gone */

#endif
