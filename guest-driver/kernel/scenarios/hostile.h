/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The hostile scenario's shared state and its guard (hostile_guard.c):
 * the random source, the sanitized values and writes that keep the
 * hostile guest from killing itself, and the repairs.
 */
#ifndef DMALAB_SCENARIOS_HOSTILE_H
#define DMALAB_SCENARIOS_HOSTILE_H

#include <stdbool.h>
#include <stdint.h>

#include "dmadev.h"

#define ARENA_SLACK 4096 /* random offsets of ring bases */
#define SCRATCH_LEN 65536
#define CFG_MSI_END 0x68

struct hostile {
	struct dmadev dev;
	uint64_t rng;
	int cv; /* catch-all vector */
	uint64_t ram_end;
	uint64_t win_base, win_end;
	uint8_t *desc_arena, *comp_arena, *scratch;
	uint64_t *shadows; /* one 8-byte shadow per channel */
	uint64_t arena_len; /* ARENA_SLACK + max_ring * 32 */
	/* RING_BASE as last set, relative to desc_arena. */
	uint64_t ring_base[DMADEV_MAX_CHANNELS];
	uint32_t ring_size[DMADEV_MAX_CHANNELS];
	uint32_t tail[DMADEV_MAX_CHANNELS];
	uint64_t flrs; /* FLR writes issued (each followed by a repair) */
	uint64_t bad_before_resets; /* BAD_ACCESS read before each reset */
};

extern struct hostile hst;

/* xorshift64*; hg_below(n) is in [0, n). */
uint64_t hg_rnd(void);
uint64_t hg_below(uint64_t n);
bool hg_overlaps(uint64_t off, unsigned int size, uint64_t lo, uint64_t hi);

/* Where the registers are: BAR inside the window, re-read after moves;
 * hg_target() gives the page an op on BAR n goes to and which sanitizers
 * apply there. */
bool hg_in_window(uint64_t bar);
void hg_reread_bars(void);
uint64_t hg_target(unsigned int n, bool *regs, bool *table);
void hg_mmio_write(uint64_t a, unsigned int size, uint64_t v);
uint64_t hg_mmio_read(uint64_t a, unsigned int size);

/* Sanitized values. */
uint64_t hg_addr_outside(void);
uint64_t hg_ring_base_value(unsigned int c, bool comp);
uint32_t hg_ring_size_value(void);
void hg_random_desc(struct dma_desc *d);
/* Sanitized raw writes: true if hg_regs_sanitize handled the write. */
bool hg_regs_sanitize(uint64_t page, uint64_t off, unsigned int size);
/* v (a write of size bytes at off) with its bytes that land in
 * [field, field + flen) replaced by those of fval. */
uint64_t hg_splice(uint64_t v, uint64_t off, unsigned int size,
		   uint64_t field, unsigned int flen, uint32_t fval);
void hg_table_write(uint64_t page, uint64_t off, unsigned int size, uint64_t v);
unsigned int hg_random_size(uint64_t *off, uint64_t limit);

/* Repairs. */
void hg_note_bad_access(void);
void hg_program_table(void);
void hg_repair(void);
void hg_repair_after_flr(void);

#endif
