// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/*
 * The guest owns the VMM's page tables after entry (boot protocol): PML4
 * at boot_info->pml4_addr, then PDPT and page directories of 2 MiB pages,
 * identity mapped. User mode needs U/S set at every level of the walk;
 * the rest of memory stays supervisor-only (U/S is the AND of all levels).
 * The tables are reached through the identity map, so a table address is
 * also a pointer. Entries are only ever OR-ed, never rebuilt, and the walk
 * refuses anything that is not a present 2 MiB mapping.
 */
#include "kernel.h"
#include "paging.h"
#include "platform.h"

#define PTE_P BIT(0)
#define PTE_US BIT(2)
#define PTE_PS BIT(7)
#define PTE_ADDR 0x000ffffffffff000ull

static uint64_t *table_entry(uint64_t table, unsigned int index)
{
	return (uint64_t *)(table & PTE_ADDR) + index;
}

static uint64_t *pde_of(uint64_t addr, uint64_t **pml4e, uint64_t **pdpte)
{
	uint64_t *e4 = table_entry(boot_info->pml4_addr, (addr >> 39) & 511);
	uint64_t *e3, *e2;

	if (!(*e4 & PTE_P))
		return NULL;
	e3 = table_entry(*e4, (addr >> 30) & 511);
	if (!(*e3 & PTE_P) || (*e3 & PTE_PS))
		return NULL;
	e2 = table_entry(*e3, (addr >> 21) & 511);
	if (!(*e2 & PTE_P) || !(*e2 & PTE_PS))
		return NULL;
	*pml4e = e4;
	*pdpte = e3;
	return e2;
}

int paging_mark_user(uint64_t base, uint64_t len)
{
	uint64_t a, *e4, *e3, *e2;

	if ((base | len) & (PAGE_2M - 1) || !len || base + len < base)
		return -1;
	for (a = base; a < base + len; a += PAGE_2M)
		if (!pde_of(a, &e4, &e3))
			return -1;
	for (a = base; a < base + len; a += PAGE_2M) {
		e2 = pde_of(a, &e4, &e3);
		*e4 |= PTE_US;
		*e3 |= PTE_US;
		*e2 |= PTE_US;
	}
	write_cr3(read_cr3());
	return 0;
}
