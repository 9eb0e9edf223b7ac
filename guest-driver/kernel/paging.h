/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Edits to the VMM-built identity map (2 MiB pages, boot protocol).
 */
#ifndef DMALAB_PAGING_H
#define DMALAB_PAGING_H

#include <stdint.h>

#define PAGE_2M 0x200000ull

/*
 * Make [base, base + len) accessible from CPL3: sets U/S on the 2 MiB
 * page-directory entries covering it and on the PML4/PDPT entries above
 * them, then reloads CR3. base and len must be 2 MiB aligned and mapped.
 * Returns 0, or -1 (nothing changed) if the range is not.
 */
int paging_mark_user(uint64_t base, uint64_t len);

#endif
