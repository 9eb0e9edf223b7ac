// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/*
 * Where the driver was, for the VMM to read when a run times out
 * (vmm/src/guest_state.rs): each CPU's IRQL and the driver routine it ran,
 * and the IRPs outstanding. The block describes the layouts it points
 * into (offsets, strides), so the VMM depends on this block alone, not on
 * struct wdm_cpu; it costs nothing at run time (the state it points to
 * is kept anyway). Layout version 1, every field little-endian:
 *
 *   0  u32 magic "DMGS"      4  u32 version (1)
 *   8  u32 cpus (array len)  12 u32 cpu_stride
 *   16 u32 irql_offset (u8)  20 u32 routine_offset (const char *, or 0)
 *   24 u64 cpu_array         32 u64 irps_outstanding (address of a u64)
 *   40 u64 cpus_online (address of a u32)
 */
#include <stddef.h>
#include <stdint.h>

#include "../smp.h"
#include "internal.h"

struct dmalab_guest_state {
	uint32_t magic;
	uint32_t version;
	uint32_t cpus;
	uint32_t cpu_stride;
	uint32_t irql_offset;
	uint32_t routine_offset;
	uint64_t cpu_array;
	uint64_t irps_outstanding;
	uint64_t cpus_online;
};

_Static_assert(sizeof(struct dmalab_guest_state) == 48, "layout version 1");

__attribute__((used)) const struct dmalab_guest_state dmalab_guest_state = {
	.magic = 0x53474d44, /* "DMGS" */
	.version = 1,
	.cpus = MAX_CPUS,
	.cpu_stride = sizeof(struct wdm_cpu),
	.irql_offset = offsetof(struct wdm_cpu, irql),
	.routine_offset = offsetof(struct wdm_cpu, routine),
	.cpu_array = (uint64_t)(uintptr_t)wdm_cpus,
	.irps_outstanding = (uint64_t)(uintptr_t)&wdm_stats.irps_outstanding,
	.cpus_online = (uint64_t)(uintptr_t)&cpus_online,
};
