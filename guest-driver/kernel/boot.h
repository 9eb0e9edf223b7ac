/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The VMM <-> guest contract of docs/boot-protocol.md: the boot info
 * structure, the debug-exit and marker ports, and the exit statuses.
 * Both sides implement that page; a change there changes this file.
 */
#ifndef DMALAB_BOOT_H
#define DMALAB_BOOT_H

#include <stdint.h>

#define DMALAB_BOOT_MAGIC 0x544f4f424c414d44ULL /* "DMALBOOT" */
#define DMALAB_BOOT_VERSION 1

enum dmalab_mem_type {
	DMALAB_MEM_RAM = 1,
	DMALAB_MEM_RESERVED = 2,
	DMALAB_MEM_MMIO = 3,
};

struct dmalab_mmap_entry {
	uint64_t base;
	uint64_t len;
	uint32_t type;
	uint32_t reserved;
};

struct dmalab_boot_info {
	uint64_t magic;
	uint32_t version;
	uint32_t size;
	uint64_t cmdline_addr;
	uint32_t cmdline_len;
	uint32_t cpu_count;
	uint64_t tsc_khz;
	uint64_t pml4_addr;
	uint64_t mp_table_addr;
	uint64_t pci_mmio_base;
	uint64_t pci_mmio_size;
	uint32_t mmap_count;
	uint32_t flags;
	struct dmalab_mmap_entry mmap[32];
};

_Static_assert(sizeof(struct dmalab_mmap_entry) == 24, "mmap entry layout");
_Static_assert(sizeof(struct dmalab_boot_info) == 848, "boot info layout");

#define DMALAB_BOOT_F_FAST_CONSOLE (1u << 0)
#define DMALAB_BOOT_MAX_CMDLINE 4095

/* Ports, guest -> VMM. */
#define DMALAB_PORT_DEBUG_EXIT 0xf4
#define DMALAB_PORT_MARKER 0xf8
#define DMALAB_MARKER_READY 1
#define DMALAB_MARKER_SCENARIO_END 2

/* Exit statuses the guest reports through the debug-exit port. */
#define DMALAB_EXIT_PASS 0
#define DMALAB_EXIT_FAIL 1
#define DMALAB_EXIT_EXCEPTION 3
#define DMALAB_EXIT_UNKNOWN_SCENARIO 4
#define DMALAB_EXIT_SELFTEST_FAIL 5
/* 6-63: other guest-reported statuses. */
#define DMALAB_EXIT_BAD_BOOT_INFO 6

#endif
