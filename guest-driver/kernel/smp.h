/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Application processors: bring-up accounting and parking.
 */
#ifndef DMALAB_SMP_H
#define DMALAB_SMP_H

#include <stdint.h>

/* CPUs that finished their init (the BSP counts itself). */
extern volatile uint32_t cpus_online;

/* BSP: count itself online. */
void smp_bsp_online(void);
/* BSP: wait (bounded by SMP_WAIT_MS of TSC time) for boot_info->cpu_count
 * CPUs to be online; returns the number online. */
uint32_t smp_wait_online(void);

#endif
