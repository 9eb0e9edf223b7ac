// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/*
 * user-fault: a CPL3 program touches kernel memory, so the user-mode
 * exception path is tested: #PF from CPL3 -> the same EXCEPTION line as a
 * kernel fault, with cpl=3 -> exit 3 (a user fault ends the run; the
 * kernel does not kill just the program).
 */
#include "kernel.h"
#include "scenarios/scenario.h"
#include "user.h"

int64_t u_fault_main(uint64_t arg);

int scenario_user_fault(void)
{
	int64_t status;

	kinfo("user-fault: a user program reads kernel memory\n");
	status = user_run(u_fault_main, (uint64_t)_kernel_start);
	kprintf("DMALAB-RESULT {\"scenario\":\"user-fault\",\"status\":\"fail\",\"error\":\"no #PF, user status %ld\"}\n",
		status);
	return DMALAB_EXIT_FAIL;
}
