// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/*
 * The self-test's user programs (CPL3, native on every platform).
 *
 * u_selftest_syscall_main: round trips through the int3 gate, timed with
 * rdtsc (fine at CPL3), and the gate's error paths (a kernel pointer to
 * SYS_WRITE is -EFAULT, an unknown number -ENOSYS).
 *
 * u_selftest_irq_main: interrupts reach CPL3 code and return to it: a
 * native rdtsc loop sees each timer tick as a gap, whose length is what
 * one tick costs (emulated entry, handler, EOI, iretq).
 *
 * u_selftest_simd_main: the bulk work a scenario does at CPL3 — fill a
 * 1 MiB buffer, then popcnt and SSE2 (pxor) over it — checked against a
 * general-register reference. The instructions KVM's emulator cannot run
 * at CPL0 must work here, natively and fast.
 */
#include "user/selftest.h"
#include "user/ulib.h"

struct u_selftest_result u_selftest_result;

int64_t u_selftest_syscall_main(uint64_t arg)
{
	uint64_t t0, t1, ticks0, ticks;
	unsigned int i;

	ticks0 = u_get_ticks();
	t0 = u_rdtsc();
	for (i = 0; i < U_SELFTEST_SYSCALLS; i++) {
		ticks = u_get_ticks();
		if (ticks < ticks0)
			return U_ST_BAD_TICKS;
	}
	t1 = u_rdtsc();
	u_selftest_result.syscall_cycles = t1 - t0;
	if (u_tsc_khz() != arg)
		return U_ST_BAD_TSC_KHZ;
	/* 0x100000 is kernel text: not a user range. */
	if (u_write((const char *)0x100000, 4) != -SYS_EFAULT)
		return U_ST_NO_EFAULT;
	if (u_syscall(0x7fff, 0, 0) != -SYS_ENOSYS)
		return U_ST_NO_ENOSYS;
	return 0;
}

#define MAX_GAPS 256

int64_t u_selftest_irq_main(uint64_t arg)
{
	uint64_t gap = arg * U_SELFTEST_GAP_NS / 1000000;
	uint64_t t, prev, end, ticks0, gaps[MAX_GAPS];
	unsigned int n = 0, i, j;

	ticks0 = u_get_ticks();
	prev = u_rdtsc();
	end = prev + arg * U_SELFTEST_IRQ_MS;
	while (prev < end) {
		t = u_rdtsc();
		if (t - prev > gap) {
			u_selftest_result.irq_gaps++;
			u_selftest_result.irq_gap_cycles += t - prev;
			if (n < MAX_GAPS)
				gaps[n++] = t - prev;
		}
		prev = t;
	}
	u_selftest_result.irq_ticks = u_get_ticks() - ticks0;
	for (i = 1; i < n; i++) /* insertion sort, natively: n <= 256 */
		for (j = i; j && gaps[j - 1] > gaps[j]; j--) {
			t = gaps[j];
			gaps[j] = gaps[j - 1];
			gaps[j - 1] = t;
		}
	u_selftest_result.irq_gap_median = n ? gaps[n / 2] : 0;
	return 0;
}

static uint64_t popcount_ref(uint64_t x)
{
	x = x - ((x >> 1) & 0x5555555555555555ull);
	x = (x & 0x3333333333333333ull) + ((x >> 2) & 0x3333333333333333ull);
	x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0full;
	return (x * 0x0101010101010101ull) >> 56;
}

int64_t u_selftest_simd_main(uint64_t arg)
{
	volatile uint64_t *buf = (volatile uint64_t *)arg;
	const size_t n = U_SELFTEST_SIMD_BYTES / 8;
	const volatile uint64_t *p = buf;
	uint64_t pop, pop_ref = 0, xr = 0, x[2], t, t0, t1;
	size_t i;

	for (i = 0; i < n; i++)
		buf[i] = u_selftest_pattern(i);

	t0 = u_rdtsc();
	__asm__ volatile("pxor %%xmm0, %%xmm0\n\t"
			 "xor %[pop], %[pop]\n"
			 "1:\n\t"
			 "popcnt (%[p]), %[t]\n\t"
			 "add %[t], %[pop]\n\t"
			 "popcnt 8(%[p]), %[t]\n\t"
			 "add %[t], %[pop]\n\t"
			 "pxor (%[p]), %%xmm0\n\t"
			 "add $16, %[p]\n\t"
			 "cmp %[e], %[p]\n\t"
			 "jb 1b\n\t"
			 "movdqu %%xmm0, (%[x])"
			 : [pop] "=&r"(pop), [t] "=&r"(t), [p] "+r"(p)
			 : [e] "r"(buf + n), [x] "r"(x)
			 : "xmm0", "memory", "cc");
	t1 = u_rdtsc();

	for (i = 0; i < n; i++) {
		pop_ref += popcount_ref(buf[i]);
		xr ^= buf[i];
	}
	u_selftest_result.simd_cycles = t1 - t0;
	u_selftest_result.popcount = pop;
	u_selftest_result.xor_fold = x[0] ^ x[1];
	if (pop != pop_ref)
		return U_ST_POPCNT_MISMATCH;
	if ((x[0] ^ x[1]) != xr)
		return U_ST_XOR_MISMATCH;
	return 0;
}
