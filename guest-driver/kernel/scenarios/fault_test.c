// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/*
 * fault-test: divide by zero at CPL0, so the exception path is tested end
 * to end: #DE -> isr.S -> trap_dispatch -> the EXCEPTION line -> exit 3.
 * The operands are volatile so gcc keeps the division.
 */
#include "kernel.h"
#include "scenarios/scenario.h"

int scenario_fault_test(void)
{
	volatile uint64_t dividend = 1, divisor = 0;
	volatile uint64_t quotient;

	kinfo("fault-test: dividing by zero in the kernel\n");
	quotient = dividend / divisor;
	kprintf("DMALAB-RESULT {\"scenario\":\"fault-test\",\"status\":\"fail\",\"error\":\"no #DE, quotient %lu\"}\n",
		(uint64_t)quotient);
	return DMALAB_EXIT_FAIL;
}
