/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The user side of the WDM layer: what user programs pass to the
 * DeviceIoControl-style system calls (abi.h SYS_WDM_*), shared by
 * user/ulib.h and wdm/usercall.c. Results are NTSTATUS values
 * sign-extended to 64 bits (negative = error), except SYS_WDM_OPEN,
 * which returns a handle (> 0) or a negative NTSTATUS.
 */
#ifndef DMALAB_WDM_ABI_H
#define DMALAB_WDM_ABI_H

#include <stdint.h>

/* OVERLAPPED: Internal = NTSTATUS (STATUS_PENDING while in flight),
 * InternalHigh = bytes returned. The address is the request's token. */
struct u_overlapped {
	uint64_t Internal;
	uint64_t InternalHigh;
};

struct u_ioctl_args {
	uint64_t handle;
	uint32_t code; /* CTL_CODE: METHOD_BUFFERED or METHOD_*_DIRECT */
	uint32_t in_len; /* at most WDM_SYSTEM_BUFFER_SIZE (256) */
	uint64_t in;
	uint64_t out;
	uint32_t out_len; /* buffered: at most 256; direct: any */
	uint32_t reserved;
	uint64_t overlapped; /* struct u_overlapped *, 0 = synchronous */
	uint64_t bytes_returned; /* out: synchronous calls */
};

/* SYS_WDM_WAIT timeout meaning "forever". */
#define U_WDM_INFINITE UINT64_MAX

#endif
