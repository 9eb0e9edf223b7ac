// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/*
 * The scenario table. A new scenario is a file in scenarios/ (its kernel
 * side) plus, usually, a user program in user/, and one line here.
 */
#include "kernel.h"
#include "scenarios/scenario.h"

int scenario_wdm_selftest(void); /* scenarios/wdm_selftest.c */

/* The DMA controller's scenarios (dma_hw.c, dmadev.h). */
int scenario_dma_smoke(void);
int scenario_clock_agree(void);
int scenario_hostile(void);
int scenario_flood(void);
int scenario_irq_bench(void);

/* The WDM-style DMA driver's scenarios (dmadrv/). */
int scenario_copy(void);
int scenario_fill(void);
int scenario_stress(void);
int scenario_demo(void);
int scenario_irp_bench(void);

static const struct scenario scenarios[] = {
	{ "dma-smoke", scenario_dma_smoke },
	{ "clock-agree", scenario_clock_agree },
	{ "hostile", scenario_hostile },
	{ "flood", scenario_flood },
	{ "irq-bench", scenario_irq_bench },
	{ "hello", scenario_hello },
	{ "fault-test", scenario_fault_test },
	{ "selftest", scenario_selftest },
	{ "user-fault", scenario_user_fault },
	{ "wdm-selftest", scenario_wdm_selftest },
	{ "copy", scenario_copy },
	{ "fill", scenario_fill },
	{ "stress", scenario_stress },
	{ "demo", scenario_demo },
	{ "irp-bench", scenario_irp_bench },
};

const struct scenario *scenario_find(const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(scenarios); i++)
		if (str_eq_n(name, len, scenarios[i].name))
			return &scenarios[i];
	return NULL;
}

void scenario_names(char *buf, size_t size)
{
	size_t i, n = 0;

	if (!size)
		return;
	buf[0] = '\0';
	for (i = 0; i < ARRAY_SIZE(scenarios); i++)
		n += ksnprintf(buf + (n < size ? n : size),
			       n < size ? size - n : 0, "%s%s",
			       i ? " " : "", scenarios[i].name);
}
