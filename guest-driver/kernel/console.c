// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/*
 * The serial console: COM1 at 0x3F8.
 *
 * With DMALAB_BOOT_F_FAST_CONSOLE (dmalab's UART is never busy) a whole
 * buffer goes out with one `rep outsb`, without polling LSR. On
 * hardware-virtualised KVM that is one exit per line; on this platform
 * KVM's instruction emulator runs the string PIO one byte per exit
 * (measured: io.count is 1, docs/platform.md), so a line costs ~11 us per
 * character and the boot path prints nothing before READY. Without the
 * flag (another VMM, a real UART model) each byte waits for THRE in the
 * line status register. The console takes no lock yet: only the BSP
 * prints; APs stay silent until the WDM layer brings spin locks.
 */
#include "kernel.h"
#include "platform.h"

#define COM1 0x3f8
#define UART_LSR 5
#define UART_LSR_THRE 0x20

static bool fast_console;
static bool quiet;

void console_init(const struct dmalab_boot_info *bi)
{
	fast_console = bi && (bi->flags & DMALAB_BOOT_F_FAST_CONSOLE);
}

void console_set_quiet(bool q)
{
	quiet = q;
}

bool console_quiet(void)
{
	return quiet;
}

void console_write(const char *buf, size_t len)
{
	size_t i;

	if (fast_console) {
		outsb(COM1, buf, len);
		return;
	}
	for (i = 0; i < len; i++) {
		while (!(inb(COM1 + UART_LSR) & UART_LSR_THRE))
			cpu_relax();
		outb(COM1, (uint8_t)buf[i]);
	}
}
