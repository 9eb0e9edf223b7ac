// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/*
 * Bringing the WDM layer up, and what a scenario does at its end: the
 * verifier's end-of-run checks and the counters of the DMALAB-RESULT
 * line. wdm_init is idempotent; it costs the verifier's calibration
 * loop (~3,000 emulated instructions, ~2 ms here) and the IRP pool.
 */
#include "wdm/internal.h"
#include "wdm/wdm_end.h"

struct wdm_stats wdm_stats;
static bool initialised;

void wdm_init(void)
{
	if (initialised)
		return;
	initialised = true;
	wdm_irql_init();
	wdm_timers_init();
	wdm_verifier_init();
	wdm_iomgr_init();
	wdm_usercall_init();
}

uint64_t wdm_finish(void)
{
	wdm_iomgr_check_leaks();
	wdm_verifier_summary();
	return wdm_violation_total();
}

bool wdm_strict(void)
{
	return wdm_verifier_strict();
}

size_t wdm_result_fields(char *buf, size_t size)
{
	const struct wdm_stats *s = &wdm_stats;
	size_t n;
	unsigned int i;

	n = ksnprintf(buf, size,
		      "\"irps_started\":%lu,\"irps_completed\":%lu,\"irps_cancelled\":%lu,\"irps_max_outstanding\":%lu,\"dpcs_run\":%lu,\"isrs\":%lu,\"timers_fired\":%lu,\"completion_routines\":%lu,\"max_isr_us\":%lu,\"max_dpc_us\":%lu,\"violations\":%lu",
		      s->irps_started, s->irps_completed, s->irps_cancelled,
		      s->irps_max_outstanding, s->dpcs_run, s->isrs,
		      s->timers_fired, s->completion_routines,
		      tsc_to_us(s->max_isr_cycles), tsc_to_us(s->max_dpc_cycles),
		      wdm_violation_total());
	for (i = 0; i < WDM_V_COUNT; i++)
		if (wdm_violations[i] && n < size)
			n += ksnprintf(buf + n, size - n, ",\"v_%s\":%lu",
				       wdm_violation_names[i], wdm_violations[i]);
	return n;
}

uint64_t wdm_violation_count(const char *kind, size_t len)
{
	unsigned int i;

	for (i = 0; i < WDM_V_COUNT; i++)
		if (str_eq_n(kind, len, wdm_violation_names[i]))
			return wdm_violations[i];
	return 0;
}

void wdm_time_limits(uint64_t *isr_cycles, uint64_t *dpc_cycles)
{
	*isr_cycles = wdm_isr_limit_cycles;
	*dpc_cycles = wdm_dpc_limit_cycles;
}
