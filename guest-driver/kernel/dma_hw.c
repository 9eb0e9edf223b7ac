// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/*
 * The dmadev library: discovery, MSI-X and channel handling for the
 * dmalab DMA controller, by direct register access (docs/device-spec.md;
 * API and conventions in dmadev.h).
 *
 * Design notes:
 * - Exits are the cost here (~11 us each, two per config access), so the
 *   library uses one 8-byte access for each 64-bit register and for each
 *   half of an MSI-X entry, never reads a register on the submit or
 *   completion path, and touches config space only in probe, BAR moves,
 *   FLR and MSI-X enable.
 * - Descriptors and completion records are copied as four quadwords, not
 *   by struct assignment: gcc would call memcpy, a 32-iteration
 *   `rep movsb` that costs ~30 us of emulated CPL0 time.
 * - The completion record is read flags first: x86 keeps loads in order,
 *   so a compiler barrier after the phase test is enough to see the
 *   record the device wrote before it set the phase.
 * - Nothing here trusts the device beyond the ID check: a wrong BAR or a
 *   removed device reads all ones, and callers see state ERROR / phase
 *   mismatch, never a fault in the guest.
 */
#include "cmdline.h"
#include "dmadev.h"
#include "heap.h"
#include "kernel.h"
#include "lapic.h"
#include "pci.h"
#include "platform.h"

#define PCI_CONF_ADDR 0xcf8
#define PCI_CONF_DATA 0xcfc
#define PCI_CONF_ENABLE 0x80000000u
#define PCI_BAR_MEM_MASK (~0xfull)

static inline uint16_t inw_port(uint16_t port)
{
	uint16_t v;

	__asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static void conf_select(const struct dmadev *d, unsigned int off)
{
	outl(PCI_CONF_ADDR, PCI_CONF_ENABLE | (uint32_t)d->bus << 16 |
				    (uint32_t)(d->slot & 31) << 11 |
				    (uint32_t)(d->fn & 7) << 8 | (off & 0xfc));
}

uint32_t dmadev_cfg_read(const struct dmadev *d, unsigned int off,
			 unsigned int size)
{
	uint16_t port = (uint16_t)(PCI_CONF_DATA + (off & 3));

	conf_select(d, off);
	if (size == 1)
		return inb(port);
	if (size == 2)
		return inw_port(port);
	return inl(port);
}

void dmadev_cfg_write(const struct dmadev *d, unsigned int off,
		      unsigned int size, uint32_t v)
{
	uint16_t port = (uint16_t)(PCI_CONF_DATA + (off & 3));

	conf_select(d, off);
	if (size == 1)
		outb(port, (uint8_t)v);
	else if (size == 2)
		outw(port, (uint16_t)v);
	else
		outl(port, v);
}

uint64_t dmadev_bar_read(const struct dmadev *d, unsigned int n)
{
	unsigned int off = DMA_CFG_BAR0 + 4 * n;
	uint64_t lo = dmadev_cfg_read(d, off, 4);
	uint64_t hi = dmadev_cfg_read(d, off + 4, 4);

	return (hi << 32 | lo) & PCI_BAR_MEM_MASK;
}

void dmadev_bar_write(const struct dmadev *d, unsigned int n, uint64_t addr)
{
	unsigned int off = DMA_CFG_BAR0 + 4 * n;

	dmadev_cfg_write(d, off, 4, (uint32_t)addr);
	dmadev_cfg_write(d, off + 4, 4, (uint32_t)(addr >> 32));
}

static void command_enable(const struct dmadev *d)
{
	uint32_t cmd = dmadev_cfg_read(d, DMA_CFG_COMMAND, 2);

	cmd |= DMA_CMD_MEMORY | DMA_CMD_BUS_MASTER;
	dmadev_cfg_write(d, DMA_CFG_COMMAND, 2, cmd);
}

void dmadev_set_bars(struct dmadev *d, uint64_t bar0, uint64_t bar2)
{
	dmadev_bar_write(d, 0, bar0);
	dmadev_bar_write(d, 2, bar2);
	d->bar0 = bar0;
	d->bar2 = bar2;
	command_enable(d);
}

void dmadev_flr(struct dmadev *d)
{
	dmadev_cfg_write(d, DMA_CFG_AF_CTRL, 1, DMA_AF_CTRL_FLR);
}

/* Inside the PCI MMIO window of the boot info, page aligned. */
static bool bar_usable(uint64_t bar)
{
	uint64_t base = boot_info->pci_mmio_base;
	uint64_t end = base + boot_info->pci_mmio_size;

	return bar >= base && end >= DMADEV_BAR_SIZE &&
	       bar <= end - DMADEV_BAR_SIZE && !(bar & (DMADEV_BAR_SIZE - 1));
}

int dmadev_probe(struct dmadev *d)
{
	const struct pci_function *p;
	unsigned int i;

	for (p = pci_functions; p < pci_functions + pci_function_count; p++)
		if (p->vendor == DMADEV_VENDOR && p->device == DMADEV_DEVICE)
			break;
	if (p == pci_functions + pci_function_count)
		return -1;
	d->bus = p->bus;
	d->slot = p->dev;
	d->fn = p->fn;
	d->vendor = p->vendor;
	d->device = p->device;
	d->bar0 = dmadev_bar_read(d, 0);
	d->bar2 = dmadev_bar_read(d, 2);
	/* Unassigned (0 after an FLR), outside the window (a removed device
	 * reads all ones) or overlapping: never dereference such a BAR. */
	if (!bar_usable(d->bar0) || !bar_usable(d->bar2) || d->bar0 == d->bar2)
		dmadev_set_bars(d, DMADEV_BAR0_DEFAULT, DMADEV_BAR2_DEFAULT);
	else
		command_enable(d);
	if (dmadev_read32(d, DMA_REG_ID) != DMA_ID_VALUE)
		return -2;
	d->caps = dmadev_read32(d, DMA_REG_CAPS);
	d->channels = DMA_CAPS_CHANNELS(d->caps);
	if (d->channels > DMADEV_MAX_CHANNELS)
		d->channels = DMADEV_MAX_CHANNELS;
	i = DMA_CAPS_RING_LOG2(d->caps);
	d->max_ring = 1u << (i > 16 ? 16 : i);
	d->max_xfer = dmadev_read32(d, DMA_REG_MAX_XFER);
	d->nvec = d->channels + 1;
	for (i = 0; i < d->channels; i++) {
		d->chan[i].dev = d;
		d->chan[i].index = i;
	}
	return 0;
}

void dmadev_print(const struct dmadev *d)
{
	kprintf("dma: %02x:%02x.%u %04x:%04x bar0=0x%lx bar2=0x%lx channels=%u\n",
		d->bus, d->slot, d->fn, d->vendor, d->device, d->bar0,
		d->bar2, d->channels);
}

void dmadev_global_reset(struct dmadev *d)
{
	dmadev_write32(d, DMA_REG_GCTRL, DMA_GCTRL_RESET);
}

void dmadev_marker(const struct dmadev *d, unsigned int kind,
		   unsigned int channel, unsigned int tag)
{
	dmadev_write32(d, DMA_REG_TRACE_MARKER,
		       (kind & 0xff) << 24 | (channel & 0xff) << 16 |
			       (tag & 0xffff));
}

/* --- MSI-X ------------------------------------------------------------ */

void dmadev_msix_program(struct dmadev *d, unsigned int entry, int vector,
			 bool masked)
{
	dmadev_msix_program_to(d, entry, vector, lapic_id(), masked);
}

void dmadev_msix_program_to(struct dmadev *d, unsigned int entry, int vector,
			    uint32_t apic_id, bool masked)
{
	volatile uint64_t *e =
		(volatile uint64_t *)(d->bar2 + DMA_MSIX_ENTRY(entry));
	uint64_t addr = DMA_MSI_ADDR_BASE | (uint64_t)(apic_id & 0xff) << 12;

	if (entry >= DMADEV_MAX_VECTORS)
		return;
	d->vector[entry] = vector;
	/* Mask first, so no message goes out half-programmed. */
	e[1] = (uint64_t)DMA_MSIX_VCTRL_MASK << 32 | (uint32_t)vector;
	e[0] = addr;
	if (!masked)
		e[1] = (uint32_t)vector;
}

int dmadev_msix_bind(struct dmadev *d, unsigned int entry,
		     irq_handler_t handler, void *ctx)
{
	int v;

	if (entry >= d->nvec)
		return -1;
	v = irq_alloc(handler, ctx);
	if (v < 0)
		return -1;
	dmadev_msix_program(d, entry, v, false);
	return v;
}

void dmadev_msix_mask(struct dmadev *d, unsigned int entry, bool masked)
{
	uint64_t a = d->bar2 + DMA_MSIX_ENTRY(entry) + DMA_MSIX_VCTRL;

	*(volatile uint32_t *)a = masked ? DMA_MSIX_VCTRL_MASK : 0;
}

void dmadev_msix_enable(struct dmadev *d, bool on)
{
	uint32_t ctl = dmadev_cfg_read(d, DMA_CFG_MSIX_CTRL, 2);

	ctl &= ~(DMA_MSIX_CTRL_ENABLE | DMA_MSIX_CTRL_MASKALL);
	if (on)
		ctl |= DMA_MSIX_CTRL_ENABLE;
	dmadev_cfg_write(d, DMA_CFG_MSIX_CTRL, 2, ctl);
}

bool dmadev_msix_pending(const struct dmadev *d, unsigned int entry)
{
	uint32_t w = *(volatile uint32_t *)(d->bar2 + DMA_MSIX_PBA +
					    4 * (entry / 32));

	return w & (1u << (entry % 32));
}

/* --- Channels --------------------------------------------------------- */

/* rep stosq: one emulated iteration per 8 bytes. */
static void zero_qwords(volatile void *p, size_t bytes)
{
	void *d = (void *)p;
	size_t n = bytes / 8;

	__asm__ volatile("rep stosq" : "+D"(d), "+c"(n) : "a"(0ul) : "memory");
}

static int chan_program(struct dmadev_chan *ch)
{
	uint32_t st, err;

	ch->tail = 0;
	ch->comp_head = 0;
	ch->phase = 1;
	ch->shadow->tail = 0;
	ch->shadow->comp_head = 0;
	dmadev_write64(ch->dev, DMA_CHAN_BASE(ch->index) + DMA_CH_RING_BASE,
		       (uint64_t)ch->ring);
	dmadev_chan_write32(ch, DMA_CH_RING_SIZE, ch->size);
	dmadev_write64(ch->dev, DMA_CHAN_BASE(ch->index) + DMA_CH_COMP_BASE,
		       (uint64_t)ch->comp);
	dmadev_write64(ch->dev, DMA_CHAN_BASE(ch->index) + DMA_CH_SHADOW_BASE,
		       (uint64_t)ch->shadow);
	dmadev_chan_write32(ch, DMA_CH_CTRL, DMA_CTRL_ENABLE);
	st = dmadev_chan_state(ch, &err);
	if (DMA_STATE(st) == DMA_STATE_IDLE)
		return 0;
	return err ? (int)err : 0xff;
}

int dmadev_chan_init(struct dmadev *d, unsigned int c, uint32_t entries)
{
	struct dmadev_chan *ch;

	if (c >= d->channels || entries < 2 || entries > d->max_ring ||
	    (entries & (entries - 1)))
		return -1;
	ch = &d->chan[c];
	ch->dev = d;
	ch->index = c;
	if (ch->size != entries) {
		ch->ring = kmalloc_aligned(entries * sizeof(*ch->ring), 64);
		ch->comp = kmalloc_aligned(entries * sizeof(*ch->comp), 64);
		ch->shadow = kmalloc_aligned(sizeof(struct dma_shadow), 64);
		if (!ch->ring || !ch->comp || !ch->shadow)
			return -1;
		ch->size = entries;
	} else {
		zero_qwords(ch->comp, entries * sizeof(struct dma_comp));
	}
	/* Whatever state an earlier user left the channel in. */
	dmadev_chan_write32(ch, DMA_CH_CTRL, DMA_CTRL_RESET);
	return chan_program(ch);
}

int dmadev_chan_restart(struct dmadev_chan *ch)
{
	zero_qwords(ch->comp, ch->size * sizeof(struct dma_comp));
	return chan_program(ch);
}

int dmadev_chan_reset(struct dmadev_chan *ch)
{
	dmadev_chan_write32(ch, DMA_CH_CTRL, DMA_CTRL_RESET);
	return dmadev_chan_restart(ch);
}

void dmadev_chan_abort(struct dmadev_chan *ch)
{
	dmadev_chan_write32(ch, DMA_CH_CTRL, DMA_CTRL_ABORT);
}

uint32_t dmadev_chan_space(const struct dmadev_chan *ch)
{
	return ch->size - 1 - ((ch->tail - ch->comp_head) & (ch->size - 1));
}

int dmadev_chan_post(struct dmadev_chan *ch, const struct dma_desc *desc)
{
	const uint64_t *s = (const uint64_t *)desc;
	uint64_t *r;

	if (!dmadev_chan_space(ch))
		return -1;
	r = (uint64_t *)&ch->ring[ch->tail];
	r[0] = s[0];
	r[1] = s[1];
	r[2] = s[2];
	r[3] = s[3];
	ch->tail = (ch->tail + 1) & (ch->size - 1);
	return 0;
}

/* The shadow's comp_head is not stored here: dmadev_chan_poll (the only
 * place comp_head moves) and chan_program (init, restart) keep it
 * current. Every instruction of a kick is emulated (~0.4 us each), in
 * the doorbell's latency. */
void dmadev_chan_kick(struct dmadev_chan *ch)
{
	uint32_t tail = ch->tail;

	ch->shadow->tail = tail;
	__asm__ volatile("" ::: "memory");
	dmadev_chan_write32(ch, DMA_CH_TAIL, tail);
}

bool dmadev_chan_poll(struct dmadev_chan *ch, struct dma_comp *out)
{
	volatile struct dma_comp *r = &ch->comp[ch->comp_head];
	const volatile uint64_t *s = (const volatile uint64_t *)r;
	uint64_t *o = (uint64_t *)out;

	if ((r->flags & DMA_COMP_PHASE) != ch->phase)
		return false;
	__asm__ volatile("" ::: "memory");
	o[0] = s[0];
	o[1] = s[1];
	o[2] = s[2];
	o[3] = s[3];
	if (++ch->comp_head == ch->size) {
		ch->comp_head = 0;
		ch->phase ^= 1;
	}
	ch->shadow->comp_head = ch->comp_head;
	return true;
}

uint32_t dmadev_chan_state(const struct dmadev_chan *ch, uint32_t *error_code)
{
	uint32_t st = dmadev_chan_read32(ch, DMA_CH_STATUS);

	if (error_code)
		*error_code = DMA_STATE(st) == DMA_STATE_ERROR ?
			dmadev_chan_read32(ch, DMA_CH_ERROR_CODE) : 0;
	return st;
}

/* --- Helpers ---------------------------------------------------------- */

const char *dmadev_status_name(unsigned int status)
{
	static const char names[][11] = {
		"OK", "SHORT", "ERR_SRC", "ERR_DST", "ERR_LEN",
		"ERR_OP", "ERR_DMA", "ABORTED", "ERR_FETCH", "ERR_HALTED",
	};

	return status < ARRAY_SIZE(names) ? names[status] : "?";
}

static inline uint64_t pattern_word(uint64_t seed, uint64_t i)
{
	return (seed + i) * 0x9e3779b97f4a7c15ull;
}

void dmadev_pattern(void *buf, size_t len, uint64_t seed)
{
	uint64_t *p = buf;
	size_t i;

	for (i = 0; i < len / 8; i++)
		p[i] = pattern_word(seed, i);
}

bool dmadev_pattern_ok(const void *buf, size_t len, uint64_t seed)
{
	const volatile uint64_t *p = buf;
	size_t i;

	for (i = 0; i < len / 8; i++)
		if (p[i] != pattern_word(seed, i))
			return false;
	return true;
}

uint64_t dmadev_arg_u64_n(const char *key, size_t klen, uint64_t dflt)
{
	const char *v;
	size_t n, i = 0;
	uint64_t x = 0, base = 10, digit;

	if (!cmdline_get_n(key, klen, &v, &n) || !n)
		return dflt;
	if (n > 2 && v[0] == '0' && (v[1] == 'x' || v[1] == 'X')) {
		base = 16;
		i = 2;
	}
	for (; i < n; i++) {
		char c = v[i];

		if (c >= '0' && c <= '9')
			digit = (uint64_t)(c - '0');
		else if (base == 16 && c >= 'a' && c <= 'f')
			digit = (uint64_t)(c - 'a' + 10);
		else if (base == 16 && c >= 'A' && c <= 'F')
			digit = (uint64_t)(c - 'A' + 10);
		else
			return dflt;
		x = x * base + digit;
	}
	return x;
}

bool dmadev_wait_count(const volatile uint64_t *count, uint64_t target,
		       uint64_t timeout_ms)
{
	uint64_t start = lapic_ticks;

	irq_disable();
	while (*count < target && lapic_ticks - start < timeout_ms) {
		irq_enable_and_halt();
		irq_disable();
	}
	irq_enable();
	return *count >= target;
}

bool dmadev_poll_wait(struct dmadev_chan *ch, struct dma_comp *out,
		      uint64_t timeout_ms)
{
	uint64_t start = lapic_ticks;

	while (!dmadev_chan_poll(ch, out)) {
		if (lapic_ticks - start >= timeout_ms)
			return false;
		cpu_relax();
	}
	return true;
}
