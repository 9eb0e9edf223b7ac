/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * What the self-test's user programs (user/selftest.c) report back to the
 * kernel (selftest.c). The kernel reads u_selftest_result directly: user
 * memory is kernel-readable.
 */
#ifndef DMALAB_USER_SELFTEST_H
#define DMALAB_USER_SELFTEST_H

#include <stdint.h>

#define U_SELFTEST_SYSCALLS 32
#define U_SELFTEST_SIMD_BYTES (1u << 20)
#define U_SELFTEST_SEED 0x9e3779b97f4a7c15ull

/* Exit statuses of the self-test programs: 0 = all good. */
#define U_ST_BAD_TICKS 1
#define U_ST_BAD_TSC_KHZ 2
#define U_ST_NO_EFAULT 3
#define U_ST_NO_ENOSYS 4
#define U_ST_POPCNT_MISMATCH 5
#define U_ST_XOR_MISMATCH 6

struct u_selftest_result {
	uint64_t syscall_cycles; /* TSC cycles for U_SELFTEST_SYSCALLS calls */
	uint64_t simd_cycles; /* TSC cycles for the popcnt + SSE2 pass */
	uint64_t popcount;
	uint64_t xor_fold;
};

extern struct u_selftest_result u_selftest_result;

/* arg: boot_info->tsc_khz, which SYS_TSC_KHZ must return. */
int64_t u_selftest_syscall_main(uint64_t arg);
/* arg: a user-accessible buffer of U_SELFTEST_SIMD_BYTES (16-aligned). */
int64_t u_selftest_simd_main(uint64_t arg);

/* The fill pattern: x[i] = (i + 1) * seed, xor-shifted. */
static inline uint64_t u_selftest_pattern(uint64_t i)
{
	uint64_t x = (i + 1) * U_SELFTEST_SEED;

	return x ^ (x >> 29);
}

#endif
