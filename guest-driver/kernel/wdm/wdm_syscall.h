/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The WDM system calls (abi.h SYS_WDM_*, user side in wdm/wdm_abi.h),
 * for syscall.c's table.
 */
#ifndef DMALAB_WDM_SYSCALL_H
#define DMALAB_WDM_SYSCALL_H

#include <stdint.h>

/* (name, len): a handle > 0, or a negative NTSTATUS. */
int64_t sys_wdm_open(uint64_t name, uint64_t len, uint64_t a2, uint64_t a3,
		     uint64_t a4);
/* (struct u_ioctl_args *): NTSTATUS; STATUS_PENDING if overlapped and in
 * flight. */
int64_t sys_wdm_ioctl(uint64_t args, uint64_t a1, uint64_t a2, uint64_t a3,
		      uint64_t a4);
/* (struct u_overlapped *, timeout ms or U_WDM_INFINITE): the request's
 * NTSTATUS, STATUS_TIMEOUT (still in flight); for a request already
 * collected, its OVERLAPPED's status; STATUS_NOT_FOUND if that is
 * STATUS_PENDING (no such request). */
int64_t sys_wdm_wait(uint64_t ov, uint64_t ms, uint64_t a2, uint64_t a3,
		     uint64_t a4);
/* (handle, struct u_overlapped *): STATUS_SUCCESS if a cancel routine
 * ran, else STATUS_NOT_FOUND. */
int64_t sys_wdm_cancel(uint64_t handle, uint64_t ov, uint64_t a2,
		       uint64_t a3, uint64_t a4);
/* (handle): cancels outstanding requests, cleanup, close. */
int64_t sys_wdm_close(uint64_t handle, uint64_t a1, uint64_t a2, uint64_t a3,
		      uint64_t a4);

#endif
