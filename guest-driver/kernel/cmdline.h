/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The kernel command line: space-separated key=value words.
 */
#ifndef DMALAB_CMDLINE_H
#define DMALAB_CMDLINE_H

#include <stdbool.h>
#include <stddef.h>

/* Split the boot command line into words; report unknown keys. */
void cmdline_parse(const char *s, size_t len);
/* The value of the last `key=...` (a bare word has an empty value). */
bool cmdline_get(const char *key, const char **val, size_t *vlen);

#endif
