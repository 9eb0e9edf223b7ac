/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * User mode (CPL3): running a user program, user-accessible memory.
 */
#ifndef DMALAB_USER_H
#define DMALAB_USER_H

#include <stdbool.h>
#include <stdint.h>

#include "kernel.h"

/* A user program's main, linked into the user image (user/). */
typedef int64_t (*user_main_t)(uint64_t arg);

/* Map the user image (kernel.ld: [_user_start, _user_end)) for CPL3. */
int user_init(void);

/*
 * Run main(arg) at CPL3 on the user stack until it returns or calls
 * SYS_EXIT; returns its exit status. BSP only, one program at a time.
 */
int64_t user_run(user_main_t main, uint64_t arg);

/* Ends the running user program (from a system call). */
void __noreturn user_exit_current(int64_t status);

/* Make a heap range (2 MiB aligned) user-accessible, e.g. a scenario's
 * data buffers. Returns 0 or -1. */
int user_region_add(uint64_t base, uint64_t len);

/* Does [addr, addr + len) lie inside one user-accessible region? */
bool user_range_ok(uint64_t addr, uint64_t len);

#endif
