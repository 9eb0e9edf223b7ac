/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The system-call ABI between user programs (user/) and the kernel.
 *
 * Gate: `int3` from CPL3 through the DPL-3 #BP gate (vector 3). Number in
 * RAX, arguments in RDI, RSI, RDX, R10, R8, result in RAX (negative =
 * -errno). RCX, RDX, RSI, RDI and R8-R11 are clobbered (the kernel's C
 * code may use them: saving them would cost emulated instructions);
 * RBX, RBP, RSP, R12-R15 and all SSE registers are preserved.
 */
#ifndef DMALAB_ABI_H
#define DMALAB_ABI_H

#define SYS_EXIT 0 /* (status): ends the user program, never returns */
#define SYS_WRITE 1 /* (buf, len): console, returns len */
#define SYS_GET_TICKS 2 /* (): timer ticks since boot (LAPIC_TIMER_HZ) */
#define SYS_TSC_KHZ 3 /* (): TSC frequency from the boot info, 0 if unknown */
/* The WDM I/O manager's user API (wdm/wdm_abi.h, wdm/usercall.c). */
#define SYS_WDM_OPEN 4 /* (name, len): handle > 0 or -NTSTATUS */
#define SYS_WDM_IOCTL 5 /* (struct u_ioctl_args *): NTSTATUS */
#define SYS_WDM_WAIT 6 /* (struct u_overlapped *, ms): NTSTATUS */
#define SYS_WDM_CANCEL 7 /* (handle, struct u_overlapped *): NTSTATUS */
#define SYS_WDM_CLOSE 8 /* (handle): NTSTATUS */
#define SYS_COUNT 9

#define SYS_EFAULT 14
#define SYS_EINVAL 22
#define SYS_ENOSYS 38

#endif
