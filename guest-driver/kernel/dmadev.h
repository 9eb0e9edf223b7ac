/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * dmadev: a small library for the dmalab DMA controller (PCI 1234:DA1A,
 * docs/device-spec.md), shared by the scenarios and the WDM-style driver;
 * implemented in dma_hw.c (direct access to the hardware, as opposed to
 * the driver in dmadrv/).
 *
 * What it does and does not do:
 * - dmadev_probe() finds the function in the boot-time bus scan
 *   (pci_functions[]), reads the BARs the VMM pre-assigned (BAR0 registers,
 *   BAR2 MSI-X table + PBA, both 64-bit), assigns them if they read 0 (after
 *   an FLR), enables memory space + bus master and reads CAPS/MAX_XFER.
 * - MSI-X: dmadev_msix_bind() takes a vector from irq_alloc() for one table
 *   entry and programs it (address = this CPU's LAPIC, data = vector);
 *   entry i < channels is channel i's completion vector, entry `channels`
 *   the error vector. Handlers run with interrupts off and must EOI
 *   (lapic_eoi()); the device needs no acknowledge.
 * - Channels: the rings and the tail shadow come from the heap (zeroed, so
 *   the completion ring starts with phase 0 everywhere and the driver's
 *   expected phase starts at 1). Posting writes descriptors only;
 *   dmadev_chan_kick() publishes the tail (shadow first, then the TAIL
 *   register: the one exit per batch). Completions are consumed by phase bit
 *   without any register read; the consumed index goes back through the
 *   shadow's comp_head.
 * - No locking: one caller per channel at a time. The WDM driver adds its
 *   own spin lock around post/kick/poll.
 *
 * Costs on this platform (docs/platform.md): every register access is an
 * exit (~11 us), every config access two; every CPL0 instruction ~0.75 us.
 * Hot paths (post, kick, poll) touch one register at most.
 */
#ifndef DMALAB_DMADEV_H
#define DMALAB_DMADEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "trap.h"

#define DMADEV_VENDOR 0x1234
#define DMADEV_DEVICE 0xda1a
#define DMADEV_MAX_CHANNELS 16
#define DMADEV_MAX_VECTORS (DMADEV_MAX_CHANNELS + 1)
#define DMADEV_BAR_SIZE 0x1000ull
/* Where the VMM places the BARs (the [wiring] contract); used when the
 * guest has to assign them itself, e.g. after an FLR. */
#define DMADEV_BAR0_DEFAULT 0xc0000000ull
#define DMADEV_BAR2_DEFAULT 0xc0001000ull

/* Config space (spec 2.1-2.4). */
#define DMA_CFG_ID 0x00
#define DMA_CFG_COMMAND 0x04
#define DMA_CMD_MEMORY (1u << 1)
#define DMA_CMD_BUS_MASTER (1u << 2)
#define DMA_CFG_STATUS 0x06
#define DMA_CFG_CLASS_REV 0x08
#define DMA_CFG_BAR0 0x10
#define DMA_CFG_BAR2 0x18
#define DMA_CFG_MSIX 0x40
#define DMA_CFG_MSIX_CTRL 0x42
#define DMA_MSIX_CTRL_SIZE(c) (((c) & 0x7ff) + 1) /* table entries */
#define DMA_MSIX_CTRL_MASKALL (1u << 14)
#define DMA_MSIX_CTRL_ENABLE (1u << 15)
#define DMA_CFG_MSI 0x50
#define DMA_CFG_MSI_DATA 0x5c
#define DMA_CFG_AF_CTRL 0x6c
#define DMA_AF_CTRL_FLR (1u << 0)

/* BAR0 global registers (spec 3.1). */
#define DMA_REG_ID 0x000
#define DMA_ID_VALUE 0x4c414d44u /* "DMAL" */
#define DMA_REG_VERSION 0x004
#define DMA_REG_CAPS 0x008
#define DMA_CAPS_CHANNELS(c) ((c) & 0xff)
#define DMA_CAPS_RING_LOG2(c) (((c) >> 8) & 0xff)
#define DMA_REG_MAX_XFER 0x00c
#define DMA_REG_GCTRL 0x010
#define DMA_GCTRL_RESET (1u << 0)
#define DMA_REG_CLOCK_MHZ 0x014
#define DMA_REG_INT_STATUS 0x018
#define DMA_INT_ERROR (1u << 31)
#define DMA_REG_INT_MASK 0x01c
#define DMA_REG_CYCLE 0x020
#define DMA_REG_TRACE_MARKER 0x028
#define DMA_REG_BAD_ACCESS 0x02c

/* Channel block c at 0x100 + 0x80 * c (spec 3.2). */
#define DMA_CHAN_BASE(c) (0x100u + 0x80u * (c))
#define DMA_CH_RING_BASE 0x00
#define DMA_CH_RING_SIZE 0x08
#define DMA_CH_HEAD 0x0c
#define DMA_CH_TAIL 0x10
#define DMA_CH_CTRL 0x14
#define DMA_CTRL_ENABLE (1u << 0)
#define DMA_CTRL_ABORT (1u << 1)
#define DMA_CTRL_RESET (1u << 2)
#define DMA_CH_STATUS 0x18
#define DMA_STATE(s) ((s) & 3)
#define DMA_STATE_IDLE 0
#define DMA_STATE_BUSY 1
#define DMA_STATE_HALTED 2
#define DMA_STATE_ERROR 3
#define DMA_STATUS_COMP_FULL (1u << 4)
#define DMA_CH_ERROR_CODE 0x1c
#define DMA_CH_COMP_BASE 0x20
#define DMA_CH_COMP_HEAD 0x28
#define DMA_CH_COMP_TAIL 0x2c
#define DMA_CH_COALESCE_COUNT 0x30
#define DMA_CH_COALESCE_TIME 0x34
#define DMA_CH_SHADOW_BASE 0x38
#define DMA_CH_COMPLETED 0x40
#define DMA_CH_SIZE 0x80

/* BAR2: MSI-X table (16 bytes per entry) and PBA. */
#define DMA_MSIX_ENTRY(i) (16u * (i))
#define DMA_MSIX_ADDR_LO 0x0
#define DMA_MSIX_ADDR_HI 0x4
#define DMA_MSIX_DATA 0x8
#define DMA_MSIX_VCTRL 0xc
#define DMA_MSIX_VCTRL_MASK (1u << 0)
#define DMA_MSIX_PBA 0x800
#define DMA_MSI_ADDR_BASE 0xfee00000u

/* Descriptor ops, flags; completion status (spec 4, 5). */
#define DMA_OP_COPY 0
#define DMA_OP_FILL 1
#define DMA_DESC_IOC (1u << 0)
#define DMA_DESC_FENCE (1u << 1)
#define DMA_COMP_PHASE (1u << 0)

enum dma_comp_status {
	DMA_ST_OK = 0,
	DMA_ST_SHORT = 1,
	DMA_ST_ERR_SRC = 2,
	DMA_ST_ERR_DST = 3,
	DMA_ST_ERR_LEN = 4,
	DMA_ST_ERR_OP = 5,
	DMA_ST_ERR_DMA = 6,
	DMA_ST_ABORTED = 7,
	DMA_ST_ERR_FETCH = 8,
	DMA_ST_ERR_HALTED = 9,
};

/* ERROR_CODE values: why a channel is in state ERROR (spec 5.2). */
enum dma_chan_error {
	DMA_ERR_RING_ALIGN = 1,
	DMA_ERR_RING_SIZE = 2,
	DMA_ERR_RING_ADDR = 3,
	DMA_ERR_TAIL_RANGE = 4,
	DMA_ERR_COMP_HEAD_RANGE = 5,
	DMA_ERR_FETCH = 6,
	DMA_ERR_DMA_FATAL = 7,
	DMA_ERR_HALT = 8,
	DMA_ERR_NO_BUS_MASTER = 9,
	DMA_ERR_COMP_WRITE = 10,
};

/* TRACE_MARKER kinds (bits 31:24; the host's decoder is
 * device-model/src/trace/marker.rs). A routine's begin carries the IRP's
 * tag; its end, the kind | DMA_MARK_END, carries its own guest time in
 * microseconds (1 at least, 0xffff at most). */
#define DMA_MARK_ISR 1
#define DMA_MARK_DPC 2
#define DMA_MARK_IRP 3
#define DMA_MARK_WATCHDOG 4 /* the timer DPC acts on the channel */
#define DMA_MARK_START 5 /* StartIo begins an IRP: IRP start -> completion */
#define DMA_MARK_START_IO 6
#define DMA_MARK_END 0x80

struct dma_desc {
	uint64_t src; /* COPY: source; FILL: the 8-byte pattern */
	uint64_t dst;
	uint32_t len;
	uint8_t op;
	uint8_t flags;
	uint16_t reserved;
	uint64_t cookie;
};

struct dma_comp {
	uint64_t cookie;
	uint32_t bytes_done;
	uint16_t status;
	uint8_t flags; /* DMA_COMP_PHASE */
	uint8_t channel;
	uint64_t timestamp;
	uint32_t seq;
	uint16_t index;
	uint16_t reserved;
};

struct dma_shadow {
	uint32_t tail;
	uint32_t comp_head;
};

_Static_assert(sizeof(struct dma_desc) == 32, "descriptor layout");
_Static_assert(sizeof(struct dma_comp) == 32, "completion layout");

struct dmadev;

struct dmadev_chan {
	struct dmadev *dev;
	unsigned int index;
	uint32_t size; /* entries, power of two */
	struct dma_desc *ring;
	volatile struct dma_comp *comp;
	volatile struct dma_shadow *shadow;
	uint32_t tail; /* next free descriptor slot (driver's copy) */
	uint32_t comp_head; /* next completion to consume */
	uint8_t phase; /* expected PHASE of the record at comp_head */
};

struct dmadev {
	uint8_t bus, slot, fn;
	uint16_t vendor, device;
	uint64_t bar0, bar2; /* guest-physical = virtual (identity map) */
	uint32_t caps;
	unsigned int channels;
	uint32_t max_ring; /* entries */
	uint32_t max_xfer; /* bytes */
	unsigned int nvec; /* MSI-X entries: channels + 1 */
	int vector[DMADEV_MAX_VECTORS]; /* IDT vector per entry, 0 = none */
	struct dmadev_chan chan[DMADEV_MAX_CHANNELS];
};

/* --- Discovery and PCI ------------------------------------------------ */

/*
 * Find the controller in pci_functions[], assign BARs (the contract's
 * defaults) if they read 0, lie outside the PCI window or overlap,
 * enable memory space + bus master, check the ID register, read CAPS and
 * MAX_XFER. Returns 0, -1 if there is no such function, -2 if its
 * registers do not answer (ID register wrong).
 */
int dmadev_probe(struct dmadev *d);
/* Print `dma: BB:DD.F 1234:da1a bar0=0x… bar2=0x… channels=N`. */
void dmadev_print(const struct dmadev *d);

/* Config space of the function, any 1/2/4-byte access (conf1: two
 * exits). Unaligned accesses are passed through as given (the device
 * ignores them; the hostile scenario uses that). */
uint32_t dmadev_cfg_read(const struct dmadev *d, unsigned int off,
			 unsigned int size);
void dmadev_cfg_write(const struct dmadev *d, unsigned int off,
		      unsigned int size, uint32_t v);
/* 64-bit memory BAR n (0 or 2): read, or write both halves (low first). */
uint64_t dmadev_bar_read(const struct dmadev *d, unsigned int n);
void dmadev_bar_write(const struct dmadev *d, unsigned int n, uint64_t addr);
/* Move the BARs (both inside the PCI window, not overlapping), update d,
 * and set memory space + bus master. */
void dmadev_set_bars(struct dmadev *d, uint64_t bar0, uint64_t bar2);
/* Function-level reset (AF capability). Afterwards the BARs are 0, the
 * command register 0 and MSI-X off: call dmadev_set_bars and set MSI-X up
 * again. The heap rings of the channels stay allocated. */
void dmadev_flr(struct dmadev *d);

/* --- Registers -------------------------------------------------------- */

static inline uint32_t dmadev_read32(const struct dmadev *d, unsigned int off)
{
	return *(volatile uint32_t *)(d->bar0 + off);
}

static inline void dmadev_write32(const struct dmadev *d, unsigned int off,
				  uint32_t v)
{
	*(volatile uint32_t *)(d->bar0 + off) = v;
}

/* One 8-byte access: one exit for a 64-bit register. */
static inline uint64_t dmadev_read64(const struct dmadev *d, unsigned int off)
{
	return *(volatile uint64_t *)(d->bar0 + off);
}

static inline void dmadev_write64(const struct dmadev *d, unsigned int off,
				  uint64_t v)
{
	*(volatile uint64_t *)(d->bar0 + off) = v;
}

static inline uint32_t dmadev_chan_read32(const struct dmadev_chan *ch,
					  unsigned int off)
{
	return dmadev_read32(ch->dev, DMA_CHAN_BASE(ch->index) + off);
}

static inline void dmadev_chan_write32(const struct dmadev_chan *ch,
				       unsigned int off, uint32_t v)
{
	dmadev_write32(ch->dev, DMA_CHAN_BASE(ch->index) + off, v);
}

/* Device reset through GCTRL (config space untouched). Channels must be
 * set up again (dmadev_chan_restart). */
void dmadev_global_reset(struct dmadev *d);
/* A TRACE_MARKER write: kind DMA_MARK_*, channel, 16-bit tag. */
void dmadev_marker(const struct dmadev *d, unsigned int kind,
		   unsigned int channel, unsigned int tag);

/* --- MSI-X ------------------------------------------------------------ */

/* Program entry i: address of this CPU's LAPIC, data = vector, masked or
 * not. Does not allocate anything. */
void dmadev_msix_program(struct dmadev *d, unsigned int entry, int vector,
			 bool masked);
/* The same with the destination APIC ID given (xAPIC: 8 bits, physical
 * destination mode): the message goes to that CPU's local APIC. */
void dmadev_msix_program_to(struct dmadev *d, unsigned int entry, int vector,
			    uint32_t apic_id, bool masked);
/* irq_alloc(handler, ctx) and program entry i (unmasked) with it. Returns
 * the vector or -1. */
int dmadev_msix_bind(struct dmadev *d, unsigned int entry,
		     irq_handler_t handler, void *ctx);
void dmadev_msix_mask(struct dmadev *d, unsigned int entry, bool masked);
/* MSI-X enable bit (function mask cleared). */
void dmadev_msix_enable(struct dmadev *d, bool on);
/* The PBA bit of entry i. */
bool dmadev_msix_pending(const struct dmadev *d, unsigned int entry);

/* --- Channels --------------------------------------------------------- */

/*
 * Allocate channel c's rings (entries descriptors, a power of two, 2 ...
 * max_ring) and shadow from the heap, program them, enable the channel.
 * Returns 0, -1 if out of memory or bad arguments, or the channel's
 * ERROR_CODE (> 0) if it did not come up IDLE.
 */
int dmadev_chan_init(struct dmadev *d, unsigned int c, uint32_t entries);
/* After CTRL.RESET, GCTRL.RESET or an FLR: zero the completion ring, reset
 * the driver's indices and phase, program the registers again, enable.
 * Returns 0 or the ERROR_CODE. Outstanding descriptors are lost. */
int dmadev_chan_restart(struct dmadev_chan *ch);
/* CTRL.RESET then dmadev_chan_restart. */
int dmadev_chan_reset(struct dmadev_chan *ch);
/* CTRL.ABORT: in-flight work completes as ABORTED; the channel halts. */
void dmadev_chan_abort(struct dmadev_chan *ch);
/* Free descriptor slots (one slot always stays empty). */
uint32_t dmadev_chan_space(const struct dmadev_chan *ch);
/* Copy *desc into the ring at the driver's tail. -1 if the ring is full.
 * Nothing is visible to the device until dmadev_chan_kick. */
int dmadev_chan_post(struct dmadev_chan *ch, const struct dma_desc *desc);
/* Publish the tail: shadow (tail, comp_head), then the TAIL register. */
void dmadev_chan_kick(struct dmadev_chan *ch);
/* Consume the next completion if its phase says it is new: copy it to
 * *out, advance (flip the phase on wrap), hand the index back through the
 * shadow. false if nothing new. No register access. */
bool dmadev_chan_poll(struct dmadev_chan *ch, struct dma_comp *out);
/* Read the channel STATUS and ERROR_CODE (two exits). */
uint32_t dmadev_chan_state(const struct dmadev_chan *ch, uint32_t *error_code);

/* --- Helpers for scenarios -------------------------------------------- */

/* Name of a completion status ("OK", "ERR_LEN", ...). */
const char *dmadev_status_name(unsigned int status);
/* Fill len bytes (multiple of 8, 8-aligned) with a pattern from seed;
 * check one. A multiply and a store (or compare) per 8 bytes: ~3 us per
 * 8 bytes at CPL0 here, so scenarios keep checked buffers to a few KiB. */
void dmadev_pattern(void *buf, size_t len, uint64_t seed);
bool dmadev_pattern_ok(const void *buf, size_t len, uint64_t seed);

/* The command-line value of key as a decimal or 0x number, or dflt if
 * absent or malformed. key must be a string literal. */
uint64_t dmadev_arg_u64_n(const char *key, size_t klen, uint64_t dflt);
#define dmadev_arg_u64(key, dflt) \
	dmadev_arg_u64_n("" key, sizeof(key) - 1, dflt)

/* Wait with `sti; hlt` until *count >= target or timeout_ms ticks pass.
 * Returns whether the count was reached. Call with interrupts enabled. */
bool dmadev_wait_count(const volatile uint64_t *count, uint64_t target,
		       uint64_t timeout_ms);
/* Spin (no halt) on dmadev_chan_poll until a record comes or timeout_ms
 * ticks pass. */
bool dmadev_poll_wait(struct dmadev_chan *ch, struct dma_comp *out,
		      uint64_t timeout_ms);

#endif
