/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The loopback test driver's IOCTLs, shared by the driver and the user
 * programs that open "testdrv" (no kernel symbols: user code includes
 * it too).
 */
#ifndef DMALAB_TESTDRV_IOCTL_H
#define DMALAB_TESTDRV_IOCTL_H

#include <stdint.h>

#define TESTDRV_DEVICE_NAME "testdrv"
#define TESTDRV_MAX_DATA 64

/* CTL_CODE(FILE_DEVICE_UNKNOWN, 0x801 / 0x802, METHOD_BUFFERED /
 * METHOD_OUT_DIRECT, FILE_ANY_ACCESS), spelled out for user code. */
#define IOCTL_TESTDRV_LOOPBACK ((0x22u << 16) | (0x801u << 2) | 0u)
#define IOCTL_TESTDRV_DIRECT ((0x22u << 16) | (0x802u << 2) | 2u)

/* The "device" never interrupts: the watchdog timer completes the
 * request with STATUS_IO_TIMEOUT. */
#define TESTDRV_F_NO_INTERRUPT 1u

/*
 * Input of both IOCTLs. LOOPBACK returns the same structure with seq =
 * the StartIo order number (1, 2, ...) and data[i] = ~data[i], after the
 * "device" held it for delay_ms; Information = sizeof header + len.
 * DIRECT writes ~data[0..len) into the output buffer (through the MDL's
 * physical address); Information = len.
 */
struct testdrv_req {
	uint32_t delay_ms; /* device latency, 0 = interrupt at once */
	uint32_t flags;
	uint32_t len; /* bytes of data used, <= TESTDRV_MAX_DATA */
	uint32_t reserved;
	uint64_t seq; /* out */
	uint8_t data[TESTDRV_MAX_DATA];
};

#define TESTDRV_WATCHDOG_MS 100

#endif
