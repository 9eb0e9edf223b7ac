/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Scenarios: what the command line's scenario=NAME runs after READY.
 */
#ifndef DMALAB_SCENARIO_H
#define DMALAB_SCENARIO_H

#include <stddef.h>

struct scenario {
	const char *name;
	/* Prints its DMALAB-RESULT line; returns the exit status. */
	int (*run)(void);
};

const struct scenario *scenario_find(const char *name, size_t len);
/* Space-separated names of all scenarios, for error messages. */
void scenario_names(char *buf, size_t size);

int scenario_hello(void);
int scenario_fault_test(void);
int scenario_selftest(void);
int scenario_user_fault(void);

#endif
