/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The loopback test driver, kernel side: loading it, and what the
 * wdm-selftest scenario reads of it.
 */
#ifndef DMALAB_TESTDRV_H
#define DMALAB_TESTDRV_H

#include "wdm/testdrv/testdrv_ioctl.h"
#include "wdm/wdm.h"

#define TESTDRV_MESSAGES 2

/* Deliberate bugs for the verifier's tests (command line
 * testdrv.bug=NAME): each is in DpcForIsr unless said otherwise. */
enum testdrv_bug {
	TESTDRV_BUG_NONE,
	TESTDRV_BUG_DOUBLE_COMPLETE, /* double-complete */
	TESTDRV_BUG_IRQL, /* irql: a wait with a timeout at DISPATCH_LEVEL */
	TESTDRV_BUG_LEAK, /* leak: the IRP is never completed */
	TESTDRV_BUG_SLOW_ISR, /* slow-isr: the ISR spins 2x its limit */
	TESTDRV_BUG_SLOW_DPC, /* slow-dpc: the DPC spins 2x its limit */
	TESTDRV_BUG_SPINLOCK, /* spinlock: acquires its lock twice */
	TESTDRV_BUG_TOUCH, /* touch-after: writes IoStatus after completion */
	TESTDRV_BUG_COUNT
};

/* Command-line name of each bug, and the verifier kind it must raise. */
extern const char *const testdrv_bug_names[TESTDRV_BUG_COUNT];
extern const char *const testdrv_bug_kinds[TESTDRV_BUG_COUNT];

struct testdrv_counters {
	uint64_t isr[TESTDRV_MESSAGES]; /* per MessageId */
	uint64_t dpc_for_isr;
	uint64_t watchdog_fired;
	uint64_t cancelled; /* by the cancel routine */
	ULONG vector[TESTDRV_MESSAGES];
	KIRQL irql_in_isr; /* KeGetCurrentIrql in the last ISR */
	KIRQL irql_in_sync; /* in the last KeSynchronizeExecution routine */
	bool if_in_sync; /* interrupts were on in it (must not be) */
};

extern struct testdrv_counters testdrv_counters;

/* Load the driver (DriverEntry: device "\Device\testdrv", two MSI-X-style
 * messages, DPCs, timers). bug is set before DriverEntry. */
NTSTATUS testdrv_load(enum testdrv_bug bug, PDRIVER_OBJECT *out);
PDEVICE_OBJECT testdrv_device(void);
/* The interrupt object of message id (0 or 1). */
PKINTERRUPT testdrv_interrupt(unsigned int id);

#endif
