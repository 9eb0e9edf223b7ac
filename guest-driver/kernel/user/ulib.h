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

#endif
