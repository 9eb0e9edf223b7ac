// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/*
 * memcpy/memset/memcmp for the kernel (gcc may emit calls to the first
 * two for struct copies). Each is one string instruction: at CPL0 every
 * instruction is emulated (~0.75 us), so one `rep movsb` beats any
 * unrolled loop here, and on hardware KVM it is the fast path anyway.
 * Large copies do not belong at CPL0 at all: a 4 KiB rep movsb costs
 * 4.5 ms in the emulator. Bulk work runs in user mode.
 */
#include "kernel.h"

void *memcpy(void *dst, const void *src, size_t n)
{
	void *d = dst;

	__asm__ volatile("rep movsb"
			 : "+D"(d), "+S"(src), "+c"(n)
			 :
			 : "memory");
	return dst;
}

void *memset(void *dst, int c, size_t n)
{
	void *d = dst;

	__asm__ volatile("rep stosb" : "+D"(d), "+c"(n) : "a"(c) : "memory");
	return dst;
}

int memcmp(const void *a, const void *b, size_t n)
{
	const unsigned char *pa = a, *pb = b;

	if (!n)
		return 0;
	__asm__ volatile("repe cmpsb"
			 : "+S"(pa), "+D"(pb), "+c"(n)
			 :
			 : "memory", "cc");
	return (int)pa[-1] - (int)pb[-1];
}

/* One repne scasb (~1 us per byte at CPL0 here, a C loop ~3-4 us). */
size_t strlen(const char *s)
{
	const char *p = s;
	size_t n = (size_t)-1;

	__asm__ volatile("repne scasb"
			 : "+D"(p), "+c"(n)
			 : "a"(0)
			 : "memory", "cc");
	return (size_t)(p - s) - 1;
}

/* Index of the first c in s[0..n), or n. One repne scasb. */
size_t memchr_len(const char *s, char c, size_t n)
{
	const char *p = s;
	size_t left = n;

	if (!n)
		return 0;
	__asm__ volatile("repne scasb"
			 : "+D"(p), "+c"(left)
			 : "a"(c)
			 : "memory", "cc");
	return p[-1] == c ? (size_t)(p - s) - 1 : n;
}

/* Does the counted string a equal the NUL-terminated b? */
bool str_eq_n(const char *a, size_t alen, const char *b)
{
	size_t i;

	for (i = 0; i < alen; i++)
		if (a[i] != b[i])
			return false;
	return b[alen] == '\0';
}
