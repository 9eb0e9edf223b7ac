/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * System-call dispatch (numbers and ABI in abi.h).
 */
#ifndef DMALAB_SYSCALL_H
#define DMALAB_SYSCALL_H

#include <stdint.h>

#include "abi.h"

typedef int64_t (*syscall_fn)(uint64_t a0, uint64_t a1, uint64_t a2,
			      uint64_t a3, uint64_t a4);

/* Indexed by RAX in isr.S's syscall_entry; every slot must be set. */
extern const syscall_fn syscall_table[SYS_COUNT];

/* System calls entered since boot (the self-test reads it). */
extern uint64_t syscall_count;

#endif
