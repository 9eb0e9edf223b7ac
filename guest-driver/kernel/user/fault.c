// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/*
 * The user-fault scenario's program: read a supervisor-only address.
 */
#include "user/ulib.h"

int64_t u_fault_main(uint64_t arg);

int64_t u_fault_main(uint64_t arg)
{
	return (int64_t)*(volatile uint64_t *)arg;
}
