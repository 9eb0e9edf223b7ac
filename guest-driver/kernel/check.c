// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
#include <stdarg.h>

#include "check.h"

void check(struct checklist *cl, const char *name, bool ok, const char *fmt, ...)
{
	char detail[160];
	va_list ap;

	va_start(ap, fmt);
	kvsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	cl->checks++;
	if (!ok)
		cl->failed++;
	if (detail[0])
		kprintf("%s: %s %s (%s)\n", cl->tag, name, ok ? "ok" : "FAIL", detail);
	else
		kprintf("%s: %s %s\n", cl->tag, name, ok ? "ok" : "FAIL");
}
