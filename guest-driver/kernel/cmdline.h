/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The kernel command line: space-separated key=value words.
 */
#ifndef DMALAB_CMDLINE_H
#define DMALAB_CMDLINE_H

#include <stdbool.h>
#include <stddef.h>

/* Split the boot command line into words. */
void cmdline_parse(const char *s, size_t len);
/* One line per word whose key the kernel does not know. */
void cmdline_report_unknown(void);
/* The value of the last `key=...` (a bare word has an empty value). */
bool cmdline_get_n(const char *key, size_t klen, const char **val,
		   size_t *vlen);
/* key must be a string literal (its length is taken at compile time). */
#define cmdline_get(key, val, vlen) \
	cmdline_get_n("" key, sizeof(key) - 1, val, vlen)

#endif
