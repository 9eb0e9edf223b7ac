// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
#include "benchstat.h"
#include "boot.h"
#include "kernel.h"

uint64_t select_kth(uint64_t *v, long n, long k)
{
	long l = 0, m = n - 1, i, j;
	uint64_t x, t;

	while (l < m) {
		x = v[k];
		i = l;
		j = m;
		do {
			while (v[i] < x)
				i++;
			while (x < v[j])
				j--;
			if (i <= j) {
				t = v[i];
				v[i] = v[j];
				v[j] = t;
				i++;
				j--;
			}
		} while (i <= j);
		if (j < k)
			l = i;
		if (k < i)
			m = j;
	}
	return v[k];
}

uint64_t tsc_to_ns(uint64_t cycles)
{
	uint64_t khz = boot_info ? boot_info->tsc_khz : 0;

	return khz ? cycles * 1000000 / khz : cycles;
}
