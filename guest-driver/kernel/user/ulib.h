/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The user-mode (CPL3) library: system-call wrappers (abi.h) and small
 * helpers. User code runs natively on every platform and may use SSE.
 */
#ifndef DMALAB_ULIB_H
#define DMALAB_ULIB_H

#include <stddef.h>
#include <stdint.h>

#include "abi.h"
#include "wdm/wdm_abi.h"

static inline int64_t u_syscall(uint64_t nr, uint64_t a0, uint64_t a1)
{
	register uint64_t rdi __asm__("rdi") = a0;
	register uint64_t rsi __asm__("rsi") = a1;
	int64_t ret;

	__asm__ volatile("int3"
			 : "=a"(ret), "+r"(rdi), "+r"(rsi)
			 : "a"(nr)
			 : "rcx", "rdx", "r8", "r9", "r10", "r11", "memory");
	return ret;
}

static inline uint64_t u_rdtsc(void)
{
	uint32_t lo, hi;

	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}

__attribute__((noreturn)) void u_exit(int64_t status);
int64_t u_write(const char *buf, size_t len);
int64_t u_puts(const char *s); /* no newline added */
uint64_t u_get_ticks(void);
uint64_t u_tsc_khz(void);

/* The WDM I/O manager (wdm/wdm_abi.h): Windows-style device access.
 * Results are NTSTATUS values sign-extended (negative = error). */
int64_t u_open_device(const char *name, size_t len); /* handle > 0 */
int64_t u_device_io_control(struct u_ioctl_args *args);
/* GetOverlappedResultEx: ms = U_WDM_INFINITE waits forever. */
int64_t u_wait_overlapped(struct u_overlapped *ov, uint64_t ms);
int64_t u_cancel_io(int64_t handle, struct u_overlapped *ov);
int64_t u_close(int64_t handle);

#endif
