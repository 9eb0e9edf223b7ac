/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The local APIC (xAPIC, MMIO at 0xFEE00000, KVM's in-kernel irqchip) and
 * its periodic timer, the kernel's tick.
 */
#ifndef DMALAB_LAPIC_H
#define DMALAB_LAPIC_H

#include <stdint.h>

#define LAPIC_TIMER_HZ 1000

/* Enable this CPU's local APIC (spurious vector, software enable). */
void lapic_enable(void);
/* BSP: start the calibration run of the timer (masked, one-shot). */
void lapic_calibrate_begin(void);
/* BSP: measure the calibration run against the TSC, start the periodic
 * tick on VEC_TIMER. Interrupts must still be off. */
void lapic_timer_start(void);
void lapic_eoi(void);
uint32_t lapic_id(void);
/* Send vector to this CPU (ICR, destination shorthand self). */
void lapic_self_ipi(uint8_t vector);
/* Send vector to the CPU whose local APIC ID is apic_id (fixed delivery,
 * physical destination). */
void lapic_send_ipi(uint32_t apic_id, uint8_t vector);

/* Ticks since lapic_timer_start (BSP timer). */
extern volatile uint64_t lapic_ticks;
/* Those of them that interrupted user-mode (CPL3) code. */
extern volatile uint64_t lapic_ticks_user;
/* Timer input clock measured at boot, in counts per millisecond. */
extern uint64_t lapic_counts_per_ms;

#endif
