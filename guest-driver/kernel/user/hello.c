// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/*
 * The hello scenario's user program: one write system call, exit 0.
 */
#include "user/ulib.h"

int64_t u_hello_main(uint64_t arg);

int64_t u_hello_main(uint64_t arg)
{
	static const char msg[] = "hello from user mode\n";

	(void)arg;
	if (u_write(msg, sizeof(msg) - 1) != sizeof(msg) - 1)
		return 1;
	return 0;
}
