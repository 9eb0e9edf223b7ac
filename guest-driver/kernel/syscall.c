// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/*
 * The system-call table. isr.S's syscall_entry calls syscall_table[RAX]
 * for int3 from CPL3 (abi.h), with interrupts off (interrupt gate) and
 * the arguments in place. Each call is a function of up to five
 * arguments; the result goes back in RAX. Every pointer a
 * user program passes is checked against the user-accessible ranges
 * (user.c) before the kernel touches it: a bad one is -EFAULT, never a
 * kernel fault. The calls: exit, console write, ticks, TSC frequency
 * (here), and the Windows-style I/O calls of the WDM layer, open,
 * DeviceIoControl, wait, cancel and close (wdm/usercall.c,
 * wdm/wdm_syscall.h).
 */
#include "abi.h"
#include "kernel.h"
#include "lapic.h"
#include "syscall.h"
#include "user.h"
#include "wdm/wdm_syscall.h"

uint64_t syscall_count;

static int64_t sys_exit(uint64_t status, uint64_t a1, uint64_t a2,
			uint64_t a3, uint64_t a4)
{
	(void)a1, (void)a2, (void)a3, (void)a4;
	user_exit_current((int64_t)status);
}

static int64_t sys_write(uint64_t buf, uint64_t len, uint64_t a2,
			 uint64_t a3, uint64_t a4)
{
	(void)a2, (void)a3, (void)a4;
	if (!user_range_ok(buf, len))
		return -SYS_EFAULT;
	console_write((const char *)buf, len);
	return (int64_t)len;
}

static int64_t sys_get_ticks(uint64_t a0, uint64_t a1, uint64_t a2,
			     uint64_t a3, uint64_t a4)
{
	(void)a0, (void)a1, (void)a2, (void)a3, (void)a4;
	return (int64_t)lapic_ticks;
}

static int64_t sys_tsc_khz(uint64_t a0, uint64_t a1, uint64_t a2,
			   uint64_t a3, uint64_t a4)
{
	(void)a0, (void)a1, (void)a2, (void)a3, (void)a4;
	return (int64_t)boot_info->tsc_khz;
}

const syscall_fn syscall_table[SYS_COUNT] = {
	[SYS_EXIT] = sys_exit,
	[SYS_WRITE] = sys_write,
	[SYS_GET_TICKS] = sys_get_ticks,
	[SYS_TSC_KHZ] = sys_tsc_khz,
	[SYS_WDM_OPEN] = sys_wdm_open,
	[SYS_WDM_IOCTL] = sys_wdm_ioctl,
	[SYS_WDM_WAIT] = sys_wdm_wait,
	[SYS_WDM_CANCEL] = sys_wdm_cancel,
	[SYS_WDM_CLOSE] = sys_wdm_close,
};
