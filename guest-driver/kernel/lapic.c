// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/*
 * Local APIC in xAPIC mode: MMIO, not x2APIC MSRs (an x2APIC EOI wrmsr is
 * emulated here and costs ~7 us more per interrupt, docs/platform.md).
 * The page at 0xFEE00000 is mapped uncached by the VMM's page tables.
 *
 * Timer rate: 1 kHz (LAPIC_TIMER_HZ). Timeouts and timer DPCs get 1 ms
 * resolution, which matches the ~1 ms latency with which this platform
 * notices an interrupt while CPL0 spins, keeps a fault campaign's
 * watchdog recoveries short, and lets the self-test's timer check finish
 * in ~10 ms. The price, measured by selftest's user-irq check: a tick
 * that interrupts CPL3 code costs ~63 us here (median; delivery into the
 * emulator, ~45 emulated instructions, iretq), i.e. ~6% of a CPU while
 * user code runs; in `sti; hlt` idle it only costs host time. At 100 Hz
 * it would be 0.6%: change LAPIC_TIMER_HZ if bulk CPL3 work ever matters
 * more than timeout resolution.
 *
 * Calibration is free: lapic_calibrate_begin starts a masked one-shot
 * count early in boot, lapic_timer_start reads how far it got and
 * compares with the TSC (boot_info->tsc_khz) just before READY, so the
 * boot path never waits for it. Without tsc_khz we assume KVM's default
 * APIC bus clock, 1 GHz (divide by 1: 1,000,000 counts per ms).
 */
#include "cpu.h"
#include "isr.h"
#include "kernel.h"
#include "lapic.h"
#include "platform.h"
#include "trap.h"

#define LAPIC_BASE 0xfee00000ul
#define LAPIC_ID 0x20
#define LAPIC_EOI 0xb0
#define LAPIC_SVR 0xf0
#define LAPIC_SVR_ENABLE (1u << 8)
#define LAPIC_ICR_LOW 0x300
#define LAPIC_ICR_HIGH 0x310 /* destination APIC ID in bits 31:24 */
#define LAPIC_ICR_SELF (1u << 18) /* destination shorthand: self */
#define LAPIC_LVT_TIMER 0x320
#define LAPIC_LVT_MASKED (1u << 16)
#define LAPIC_LVT_PERIODIC (1u << 17)
#define LAPIC_TIMER_INIT 0x380
#define LAPIC_TIMER_CUR 0x390
#define LAPIC_TIMER_DIV 0x3e0
#define LAPIC_TIMER_DIV_1 0xb
#define KVM_DEFAULT_COUNTS_PER_MS 1000000ull

volatile uint64_t lapic_ticks;
volatile uint64_t lapic_ticks_user;
uint64_t lapic_counts_per_ms;
static uint64_t calib_tsc;

static inline void lapic_write(uint32_t reg, uint32_t v)
{
	mmio_write32(LAPIC_BASE + reg, v);
}

static inline uint32_t lapic_read(uint32_t reg)
{
	return mmio_read32(LAPIC_BASE + reg);
}

void lapic_enable(void)
{
	lapic_write(LAPIC_SVR, LAPIC_SVR_ENABLE | VEC_SPURIOUS);
	this_cpu()->apic_id = lapic_id();
}

void lapic_eoi(void)
{
	lapic_write(LAPIC_EOI, 0);
}

uint32_t lapic_id(void)
{
	return lapic_read(LAPIC_ID) >> 24;
}

void lapic_self_ipi(uint8_t vector)
{
	lapic_write(LAPIC_ICR_LOW, LAPIC_ICR_SELF | vector);
}

void lapic_send_ipi(uint32_t apic_id, uint8_t vector)
{
	lapic_write(LAPIC_ICR_HIGH, apic_id << 24);
	lapic_write(LAPIC_ICR_LOW, vector); /* fixed, physical, edge */
}

static void timer_tick(struct trap_frame *f, void *ctx)
{
	(void)ctx;
	lapic_ticks++;
	if (f->cs & 3)
		lapic_ticks_user++;
	lapic_eoi();
}

void lapic_calibrate_begin(void)
{
	lapic_write(LAPIC_TIMER_DIV, LAPIC_TIMER_DIV_1);
	lapic_write(LAPIC_LVT_TIMER, LAPIC_LVT_MASKED | VEC_TIMER);
	calib_tsc = rdtsc();
	lapic_write(LAPIC_TIMER_INIT, 0xffffffffu);
}

void lapic_timer_start(void)
{
	uint32_t cur = lapic_read(LAPIC_TIMER_CUR);
	uint64_t tsc = rdtsc() - calib_tsc;
	uint64_t counts = 0xffffffffull - cur;
	uint64_t khz = boot_info->tsc_khz;
	uint64_t per_ms = KVM_DEFAULT_COUNTS_PER_MS;

	/* Need a measurable interval (>= ~20 us of TSC) and a sane result. */
	if (khz && cur && tsc > khz / 50) {
		per_ms = counts * khz / tsc;
		if (per_ms < 1000 || per_ms > 100 * KVM_DEFAULT_COUNTS_PER_MS)
			per_ms = KVM_DEFAULT_COUNTS_PER_MS;
	}
	lapic_counts_per_ms = per_ms;
	irq_register(VEC_TIMER, timer_tick, NULL);
	lapic_write(LAPIC_TIMER_INIT, 0);
	lapic_write(LAPIC_LVT_TIMER, LAPIC_LVT_PERIODIC | VEC_TIMER);
	lapic_write(LAPIC_TIMER_INIT,
		    (uint32_t)(per_ms * 1000 / LAPIC_TIMER_HZ));
}
