/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Named checks for scenarios that test a list of things: one console line
 * per check, `<tag>: <name> ok (<detail>)` or `<tag>: <name> FAIL
 * (<detail>)` (no parentheses when the detail is empty), counted so the
 * scenario's result line can say how many ran and failed. Host tests match
 * these lines.
 */
#ifndef DMALAB_CHECK_H
#define DMALAB_CHECK_H

#include <stdbool.h>

#include "kernel.h"

struct checklist {
	const char *tag; /* the scenario's name, the line's prefix */
	unsigned int checks;
	unsigned int failed;
};

void __printf(4, 5) check(struct checklist *cl, const char *name, bool ok,
			  const char *fmt, ...);

#endif
