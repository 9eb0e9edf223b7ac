/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * What a scenario (kernel side) uses of the WDM layer besides wdm.h:
 * bring-up, the end-of-run checks, the result counters.
 */
#ifndef DMALAB_WDM_END_H
#define DMALAB_WDM_END_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Once, before any driver is loaded (idempotent). */
void wdm_init(void);
/* End of the scenario: IRPs never completed or touched after completion
 * are reported, then the verifier's summary lines. Returns the total
 * number of violations of the run. */
uint64_t wdm_finish(void);
/* verifier=strict: any violation fails the scenario. */
bool wdm_strict(void);
/* The counters as JSON fields (no braces) for DMALAB-RESULT. */
size_t wdm_result_fields(char *buf, size_t size);
/* Violations of one kind by its name (irql, isr_time, dpc_time,
 * irp_double_complete, irp_not_completed, irp_after_complete,
 * spinlock). */
uint64_t wdm_violation_count(const char *kind, size_t len);

/* The verifier's ISR and DPC limits in TSC cycles (after scaling). */
void wdm_time_limits(uint64_t *isr_cycles, uint64_t *dpc_cycles);

#endif
