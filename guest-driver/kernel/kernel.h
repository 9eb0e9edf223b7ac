/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * What every kernel file uses: the console and formatted output, exit
 * through the debug port, the boot info, linker symbols, small string
 * helpers. Freestanding: only the compiler's own headers.
 */
#ifndef DMALAB_KERNEL_H
#define DMALAB_KERNEL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "boot.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define ALIGN_UP(x, a) (((x) + (a) - 1) & ~((uint64_t)(a) - 1))
#define BIT(n) (1ul << (n))
#define __noreturn __attribute__((noreturn))
#define __printf(a, b) __attribute__((format(printf, a, b)))

/* Linker symbols (kernel.ld). */
extern char _kernel_start[], _kernel_end[], _user_start[], _user_end[], _end[];

/* The boot info the VMM passed (valid after kernel_main's checks). */
extern const struct dmalab_boot_info *boot_info;
/* BSP TSC at _start, and at READY. */
extern uint64_t boot_entry_tsc, boot_ready_tsc;

/* console.c */
void console_init(const struct dmalab_boot_info *bi);
void console_write(const char *buf, size_t len);
void console_set_quiet(bool quiet);
bool console_quiet(void);

/* format.c: %s %c %d %u %x %p with l/ll, 0-padding and width. */
size_t kvsnprintf(char *buf, size_t size, const char *fmt, va_list ap);
size_t ksnprintf(char *buf, size_t size, const char *fmt, ...) __printf(3, 4);
/* Always printed: results, errors. One console write (one exit) per call. */
void kprintf(const char *fmt, ...) __printf(1, 2);
/* Suppressed by the `quiet` command-line word. */
void kinfo(const char *fmt, ...) __printf(1, 2);

/* main.c */
void __noreturn kernel_exit(unsigned int status);
void marker(uint32_t value);

/* string.c: small and CPL0-cheap (rep movsb / rep stosb / repe cmpsb). */
void *memcpy(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
size_t memchr_len(const char *s, char c, size_t n);
bool str_eq_n(const char *a, size_t alen, const char *b);

/* TSC conversions using boot_info->tsc_khz (0 if unknown). */
uint64_t tsc_to_us(uint64_t cycles);

#endif
