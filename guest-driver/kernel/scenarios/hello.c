// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/*
 * hello: the kernel runs a CPL3 program (user/hello.c) that prints
 * "hello from user mode" through SYS_WRITE and exits with 0 through
 * SYS_EXIT; the kernel reports the result.
 */
#include "kernel.h"
#include "scenarios/scenario.h"
#include "user.h"

int64_t u_hello_main(uint64_t arg);

int scenario_hello(void)
{
	int64_t status = user_run(u_hello_main, 0);

	if (status) {
		kprintf("DMALAB-RESULT {\"scenario\":\"hello\",\"status\":\"fail\",\"user_status\":%ld}\n",
			status);
		return DMALAB_EXIT_FAIL;
	}
	kprintf("DMALAB-RESULT {\"scenario\":\"hello\",\"status\":\"pass\"}\n");
	return DMALAB_EXIT_PASS;
}
