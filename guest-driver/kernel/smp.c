// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/*
 * All vCPUs start at _start at once (no INIT/SIPI, boot protocol). An AP
 * (RSI != 0) gets its own kernel stack and the IDT in entry.S, then here
 * its TSS/GS, its local APIC, its KVM steal time (steal.h: the verifier
 * times an ISR that runs here), counts itself online with one `lock xadd`
 * and parks in `sti; hlt` (a spinning CPL0 loop would be
 * emulated here, and an interrupt is only noticed ~1 ms late while CPL0
 * spins). APs get work only by interrupts: a device message the WDM
 * layer targeted at them (wdm.isr_cpu), a DPC's IPI (wdm/irql.c).
 *
 * The BSP waits for the count with a bound measured in TSC time; the APs
 * have normally finished long before, as the BSP's own init is longer.
 */
#include "cpu.h"
#include "kernel.h"
#include "lapic.h"
#include "platform.h"
#include "smp.h"
#include "steal.h"

#define SMP_WAIT_MS 200

volatile uint32_t cpus_online;

void __noreturn ap_main(const struct dmalab_boot_info *bi, uint64_t index);

void ap_main(const struct dmalab_boot_info *bi, uint64_t index)
{
	(void)bi;
	cpu_init((unsigned int)index);
	lapic_enable();
	steal_enable();
	__atomic_fetch_add(&cpus_online, 1, __ATOMIC_SEQ_CST);
	for (;;)
		irq_enable_and_halt();
}

void smp_bsp_online(void)
{
	__atomic_fetch_add(&cpus_online, 1, __ATOMIC_SEQ_CST);
}

uint32_t smp_wait_online(void)
{
	uint32_t want = boot_info->cpu_count;
	uint64_t khz = boot_info->tsc_khz ? boot_info->tsc_khz : 3000000;
	uint64_t start = rdtsc();

	while (cpus_online < want && rdtsc() - start < SMP_WAIT_MS * khz)
		cpu_relax();
	return cpus_online;
}
