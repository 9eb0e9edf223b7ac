/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * System-call dispatch (numbers and ABI in abi.h).
 */
#ifndef DMALAB_SYSCALL_H
#define DMALAB_SYSCALL_H

#include "trap.h"

void syscall_dispatch(struct trap_frame *f);

/* System calls handled since boot (the self-test reads it). */
extern uint64_t syscall_count;

#endif
