// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/*
 * System-call wrappers for user programs. Every call is one int3 through
 * the DPL-3 #BP gate (abi.h): ~8 us round trip on this platform, so user
 * programs batch their work and call the kernel rarely.
 */
#include "user/ulib.h"

void u_exit(int64_t status)
{
	u_syscall(SYS_EXIT, (uint64_t)status, 0);
	for (;;)
		;
}

int64_t u_write(const char *buf, size_t len)
{
	return u_syscall(SYS_WRITE, (uint64_t)buf, len);
}

int64_t u_puts(const char *s)
{
	size_t n = 0;

	while (s[n])
		n++;
	return u_write(s, n);
}

uint64_t u_get_ticks(void)
{
	return (uint64_t)u_syscall(SYS_GET_TICKS, 0, 0);
}

uint64_t u_tsc_khz(void)
{
	return (uint64_t)u_syscall(SYS_TSC_KHZ, 0, 0);
}

int64_t u_open_device(const char *name, size_t len)
{
	return u_syscall(SYS_WDM_OPEN, (uint64_t)name, len);
}

int64_t u_device_io_control(struct u_ioctl_args *args)
{
	return u_syscall(SYS_WDM_IOCTL, (uint64_t)args, 0);
}

int64_t u_wait_overlapped(struct u_overlapped *ov, uint64_t ms)
{
	return u_syscall(SYS_WDM_WAIT, (uint64_t)ov, ms);
}

int64_t u_cancel_io(int64_t handle, struct u_overlapped *ov)
{
	return u_syscall(SYS_WDM_CANCEL, (uint64_t)handle, (uint64_t)ov);
}

int64_t u_close(int64_t handle)
{
	return u_syscall(SYS_WDM_CLOSE, (uint64_t)handle, 0);
}
