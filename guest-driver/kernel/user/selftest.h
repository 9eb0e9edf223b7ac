/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * What the self-test's user programs (user/selftest_cpl3.c) report back
 * to the kernel side (scenarios/selftest.c). The kernel reads
 * u_selftest_result directly: user memory is kernel-readable.
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

#define U_SELFTEST_IRQ_MS 20 /* how long the interrupt probe spins */
#define U_SELFTEST_GAP_NS 2000 /* a longer rdtsc gap is an interruption */

struct u_selftest_result {
	uint64_t syscall_cycles; /* TSC cycles for U_SELFTEST_SYSCALLS calls */
	uint64_t simd_cycles; /* TSC cycles for the popcnt + SSE2 pass */
	uint64_t popcount;
	uint64_t xor_fold;
	uint64_t irq_ticks; /* timer ticks while the probe spun */
	uint64_t irq_gaps; /* interruptions the probe saw */
	uint64_t irq_gap_cycles; /* their total length */
	uint64_t irq_gap_median; /* robust against host preemption */
};

extern struct u_selftest_result u_selftest_result;

/* arg: boot_info->tsc_khz, which SYS_TSC_KHZ must return. */
int64_t u_selftest_syscall_main(uint64_t arg);
/* arg: a user-accessible buffer of U_SELFTEST_SIMD_BYTES (16-aligned). */
int64_t u_selftest_simd_main(uint64_t arg);

/* arg: boot_info->tsc_khz. Spins at CPL3 for U_SELFTEST_IRQ_MS reading
 * the TSC; every gap is time spent in the kernel (or the host). */
int64_t u_selftest_irq_main(uint64_t arg);

/* The fill pattern: x[i] = (i + 1) * seed, xor-shifted. */
static inline uint64_t u_selftest_pattern(uint64_t i)
{
	uint64_t x = (i + 1) * U_SELFTEST_SEED;

	return x ^ (x >> 29);
}

#endif
