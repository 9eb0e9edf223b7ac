// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/*
 * A small printf: %s %c %d %u %x %p, the l and ll length modifiers, a
 * field width with optional 0-padding, a precision for %s (%.*s), %%.
 * Output lines are formatted into a stack buffer and written with one
 * console_write, so a line costs one exit; a longer output is cut at
 * PRINT_BUF bytes. Every character costs
 * emulated instructions at CPL0 (~5-10 us), so the boot path prints little.
 */
#include "kernel.h"

#define PRINT_BUF 256

struct out {
	char *buf;
	size_t size;
	size_t len;
};

static void put(struct out *o, char c)
{
	if (o->len + 1 < o->size)
		o->buf[o->len] = c;
	o->len++;
}

static void put_num(struct out *o, uint64_t v, unsigned int base, bool neg,
		    unsigned int width, char pad)
{
	char tmp[24];
	unsigned int n = 0;

	do {
		unsigned int d = (unsigned int)(v % base);

		tmp[n++] = (char)(d < 10 ? '0' + d : 'a' + d - 10);
		v /= base;
	} while (v);
	if (neg)
		tmp[n++] = '-';
	while (width > n) {
		put(o, pad);
		width--;
	}
	while (n)
		put(o, tmp[--n]);
}

size_t kvsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
	struct out o = { buf, size, 0 };
	const char *s;

	for (; *fmt; fmt++) {
		unsigned int width = 0, lng = 0;
		size_t prec = (size_t)-1;
		char pad = ' ';
		uint64_t u;
		int64_t i;

		if (*fmt != '%') {
			put(&o, *fmt);
			continue;
		}
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
			put(&o, '0');
			put(&o, 'x');
			put_num(&o, (uint64_t)va_arg(ap, void *), 16, false,
				width, pad);
			break;
		case 'c':
			put(&o, (char)va_arg(ap, int));
			break;
		case 's':
			s = va_arg(ap, const char *);
			if (!s)
				s = "(null)";
			while (*s && prec--)
				put(&o, *s++);
			break;
		case '%':
			put(&o, '%');
			break;
		case '\0':
			fmt--;
			break;
		default:
			put(&o, '%');
			put(&o, *fmt);
			break;
		}
	}
	if (size)
		buf[o.len < size ? o.len : size - 1] = '\0';
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
