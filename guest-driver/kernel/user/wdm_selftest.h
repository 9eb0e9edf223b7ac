/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * What the wdm-selftest user program (user/wdm_selftest_app.c) reports back
 * to the kernel side (scenarios/wdm_selftest.c), which reads it directly
 * and prints one line per check.
 */
#ifndef DMALAB_USER_WDM_SELFTEST_H
#define DMALAB_USER_WDM_SELFTEST_H

#include <stdint.h>

enum u_wdm_check {
	U_WDM_OPEN, /* open "testdrv" gives a handle, an unknown name fails */
	U_WDM_SYNC, /* synchronous buffered loopback */
	U_WDM_DIRECT, /* METHOD_OUT_DIRECT into a user buffer */
	U_WDM_BAD_POINTER, /* kernel pointer -> STATUS_ACCESS_VIOLATION */
	U_WDM_OVERLAPPED, /* several IRPs in flight at once */
	U_WDM_CANCEL, /* a queued IRP cancelled -> STATUS_CANCELLED */
	U_WDM_ORDER, /* StartIo order = submission order minus the cancelled */
	U_WDM_WAIT_TIMEOUT, /* wait with a timeout on a slow request */
	U_WDM_WATCHDOG, /* no interrupt -> watchdog -> STATUS_IO_TIMEOUT */
	U_WDM_CLOSE, /* close cancels what is outstanding */
	U_WDM_LATENCY, /* synchronous IOCTL round trips: timed, not judged */
	U_WDM_IMMEDIATE, /* overlapped request completed within the call */
	U_WDM_CHECKS
};

struct u_wdm_result {
	uint64_t done[U_WDM_CHECKS]; /* 1 if the check ran */
	uint64_t ok[U_WDM_CHECKS];
	uint64_t a[U_WDM_CHECKS]; /* figures for the report */
	uint64_t b[U_WDM_CHECKS];
};

extern struct u_wdm_result u_wdm_result;

/* arg 0: every check; arg 1: bug mode (one overlapped loopback, waited
 * for at most 300 ms, then close). Returns 0 (results in u_wdm_result). */
int64_t u_wdm_selftest_main(uint64_t arg);

#endif
