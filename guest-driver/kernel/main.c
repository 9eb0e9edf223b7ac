// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/*
 * kernel_main: the BSP's boot path, from _start to the scenario.
 *
 * Ring-0 code is emulated on this platform (~0.75 us per instruction, an
 * exit ~11 us), so the path to READY is kept to ~1,200 instructions and
 * 69 exits, most of them the PCI scan (docs/platform.md): no .bss
 * clearing (RAM is zero at entry), a static IDT and GDT, the LAPIC timer
 * calibrated in the background of the boot itself, no output. Order: validate the boot info, this CPU's TSS/GS, LAPIC (start
 * calibration), command line, heap, user image, PCI scan, start the
 * tick, READY (port 0xF8), wait (bounded) for the APs, print what the
 * boot found (nothing is formatted before READY), the scenario,
 * SCENARIO_END, exit through port 0xF4 with the scenario's status.
 *
 * READY does not wait for the APs: they park themselves in parallel and
 * need ~30 emulated instructions, but when their vCPU threads run is up to
 * the host (measured up to ~9 ms on a loaded 2-core host). The bounded
 * wait still happens before any scenario runs.
 */
#include "cmdline.h"
#include "cpu.h"
#include "heap.h"
#include "kernel.h"
#include "lapic.h"
#include "pci.h"
#include "platform.h"
#include "scenarios/scenario.h"
#include "smp.h"
#include "user.h"

#define DEFAULT_SCENARIO "hello"

const struct dmalab_boot_info *boot_info;
uint64_t boot_entry_tsc, boot_ready_tsc;

void kernel_exit(unsigned int status)
{
	outb(DMALAB_PORT_DEBUG_EXIT, (uint8_t)(status > 255 ? 255 : status));
	for (;;)
		__asm__ volatile("cli; hlt");
}

void marker(uint32_t value)
{
	outl(DMALAB_PORT_MARKER, value);
}

uint64_t tsc_to_us(uint64_t cycles)
{
	uint64_t khz = boot_info ? boot_info->tsc_khz : 0;

	return khz ? cycles * 1000 / khz : 0;
}

static bool boot_info_ok(const struct dmalab_boot_info *bi)
{
	return bi->magic == DMALAB_BOOT_MAGIC &&
	       bi->version == DMALAB_BOOT_VERSION &&
	       bi->size >= sizeof(*bi);
}

static void __noreturn boot_fail(const char *what)
{
	kprintf("boot: %s\n", what);
	kernel_exit(DMALAB_EXIT_BAD_BOOT_INFO);
}

static const struct scenario *choose_scenario(void)
{
	const char *name = DEFAULT_SCENARIO;
	size_t len = sizeof(DEFAULT_SCENARIO) - 1;
	const struct scenario *s;

	cmdline_get("scenario", &name, &len);
	s = scenario_find(name, len);
	if (!s) {
		char known[128];

		scenario_names(known, sizeof(known));
		kprintf("unknown scenario '%.*s'; known scenarios: %s\n",
			(int)len, name, known);
		kernel_exit(DMALAB_EXIT_UNKNOWN_SCENARIO);
	}
	return s;
}

/* What the boot found, printed after READY: formatting costs ~10-20 us per
 * character of emulated CPL0 code, too much for the boot path. */
static void boot_report(uint32_t online)
{
	cmdline_report_unknown();
	pci_print();
	kinfo("cpus: %u online\n", online);
	kinfo("boot: ready %lu us after kernel entry (guest TSC)\n",
	      tsc_to_us(boot_ready_tsc - boot_entry_tsc));
}

void __noreturn kernel_main(const struct dmalab_boot_info *bi);

void kernel_main(const struct dmalab_boot_info *bi)
{
	const struct scenario *s;
	const char *v;
	size_t vlen;
	uint32_t online;
	int status;

	if (!boot_info_ok(bi))
		boot_fail("bad boot info (magic, version or size)");
	console_init(bi);
	boot_info = bi;
	cpu_init(0);
	lapic_enable();
	lapic_calibrate_begin();
	smp_bsp_online();

	cmdline_parse((const char *)bi->cmdline_addr,
		      bi->cmdline_len > DMALAB_BOOT_MAX_CMDLINE ?
			      DMALAB_BOOT_MAX_CMDLINE : bi->cmdline_len);
	console_set_quiet(cmdline_get("quiet", &v, &vlen));
	if (heap_init())
		boot_fail("no RAM region in the memory map holds the kernel");
	if (user_init())
		boot_fail("cannot map the user image");
	pci_scan();
	s = choose_scenario();

	lapic_timer_start();
	irq_enable();
	boot_ready_tsc = rdtsc();
	marker(DMALAB_MARKER_READY);
	online = smp_wait_online();
	boot_report(online);

	status = s->run();
	marker(DMALAB_MARKER_SCENARIO_END);
	kernel_exit((unsigned int)status);
}
