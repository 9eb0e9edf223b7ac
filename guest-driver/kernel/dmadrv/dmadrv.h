/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * dmadrv: the WDM-style driver for the dmalab DMA controller
 * (docs/dma-driver.md). Shared declarations of its routines, split by
 * file as a Windows driver is:
 *
 *   driver.c    DriverEntry, AddDevice (one device object per channel),
 *               StartDevice (probe, MSI-X messages, channel rings), Unload,
 *               the dmadrv.* parameters
 *   dispatch.c  DispatchCreate/Close/Cleanup, DispatchDeviceControl, the
 *               cancel routine for queued IRPs
 *   startio.c   DriverStartIo, programming one transfer, ending an IRP
 *   isr_dpc.c   the message ISR, DpcForIsr, completion-record handling
 *               (reprogram, retry, fail)
 *   watchdog.c  the CustomTimerDpc watchdog (lost interrupts, hangs)
 *
 * Why one device object per channel: StartIo serialises one IRP per
 * device object, and a channel is the unit of the engine that runs one
 * request at a time (its own ring, vector, status). A device object per
 * channel gives each channel its own StartIo queue and DpcForIsr, the
 * way a multi-port serial or multi-queue storage driver exposes one
 * device per port, and requests to different channels run in parallel.
 *
 * Locking: each channel's state (the IRP it holds, the transfer in
 * flight, its rings) is under the channel's spin lock, taken at
 * DISPATCH_LEVEL by StartIo, DpcForIsr and the watchdog DPC. The ISR
 * never touches it. What the ISR shares with them is apart, in struct
 * dmadrv_isr_shared (per channel) and struct dmadrv_isr_dev: touched
 * only holding the interrupt spin lock (in the ISR, or at DISPATCH_LEVEL
 * in a SynchCritSection routine run by KeSynchronizeExecution), and only
 * through dmadrv_isr_state / dmadrv_isr_dev, which ask the verifier to
 * check that the lock is held (an `interrupt_lock` violation otherwise).
 * The ISR's own counters (isrs, error_isrs, spurious) are written by the
 * ISR alone and read once the interrupt is disconnected.
 *
 * CPUs: the DpcForIsr and the watchdog DPC are targeted at the CPU that
 * loaded the driver (KeSetTargetProcessorDpc), the one that runs the I/O
 * manager here; the ISR runs where the interrupt affinity policy sends
 * the messages (wdm.isr_cpu, docs/wdm.md), so with wdm.isr_cpu=1 the ISR
 * runs on CPU 1 while StartIo and the DPCs run on CPU 0.
 *
 * Every routine's first statement is its IRQL annotation
 * (IRQL_REQUIRES..., wdm/wdm.h), checked by the verifier at entry.
 */
#ifndef DMALAB_DMADRV_H
#define DMALAB_DMADRV_H

#include "dmadev.h"
#include "dmadrv/dmadrv_ioctl.h"
#include "wdm/wdm.h"

#ifndef STATUS_IO_DEVICE_ERROR
#define STATUS_IO_DEVICE_ERROR ((NTSTATUS)DMADRV_STATUS_IO_DEVICE_ERROR)
#endif
#ifndef STATUS_DEVICE_HARDWARE_ERROR
#define STATUS_DEVICE_HARDWARE_ERROR \
	((NTSTATUS)DMADRV_STATUS_DEVICE_HARDWARE_ERROR)
#endif
#ifndef STATUS_DEVICE_REMOVED
#define STATUS_DEVICE_REMOVED ((NTSTATUS)DMADRV_STATUS_DEVICE_REMOVED)
#endif

/* Channel ERROR_CODE values the driver tells apart (spec 5.2). */
#define DMADRV_CHERR_DMA_FATAL 7
/* A register read of a removed device. */
#define DMADRV_ALL_ONES 0xffffffffu

/* Channels the driver uses: one message each plus the error message. */
#define DMADRV_MAX_CHANNELS (WDM_MAX_MESSAGES - 1)
/* Descriptor ring entries per channel: one transfer is in flight per
 * channel, the rest is headroom for records the device writes on abort. */
#define DMADRV_RING_ENTRIES 16
/* ISR->DPC latency and DPC duration samples kept (irp-bench). */
#define DMADRV_SAMPLES 4096

/* Deliberate bugs for the verifier's tests (dmadrv.bug=NAME). */
enum dmadrv_bug {
	DMADRV_BUG_NONE,
	DMADRV_BUG_DOUBLE_COMPLETE, /* DpcForIsr completes an IRP twice */
	DMADRV_BUG_IRQL, /* DpcForIsr calls a PASSIVE-only wait */
	/* DpcForIsr touches ISR-shared state without the interrupt lock */
	DMADRV_BUG_ISR_STATE,
	DMADRV_BUG_COUNT
};

/* Driver parameters: command line dmadrv.KEY=N (docs/dma-driver.md). */
struct dmadrv_params {
	uint32_t retries; /* per IRP, recoverable errors and timeouts: 3 */
	uint32_t watchdog_ms; /* watchdog period: 10 */
	uint32_t timeout_ms; /* a transfer older than this is hung: 100 */
	uint32_t max_xfer; /* bytes per descriptor: 64 KiB */
	bool markers; /* markers=1: TRACE_MARKER writes */
	enum dmadrv_bug bug;
};

/* Counters, printed in each scenario's result line. */
struct dmadrv_stats {
	uint64_t irps; /* started by DriverStartIo */
	uint64_t irps_ok;
	uint64_t irps_failed; /* completed with an error status */
	uint64_t irps_cancelled; /* cancelled while queued */
	uint64_t irps_rejected; /* failed in DispatchDeviceControl */
	uint64_t transfers; /* descriptors posted */
	uint64_t reprograms; /* next transfer of a multi-transfer IRP */
	uint64_t short_transfers;
	uint64_t retries;
	uint64_t resets; /* channel resets */
	uint64_t watchdog_recoveries; /* records found by the watchdog */
	uint64_t watchdog_timeouts; /* transfers declared hung */
	uint64_t isrs; /* channel messages */
	uint64_t error_isrs; /* error message */
	uint64_t spurious; /* ISR returned FALSE */
	uint64_t dpcs; /* DpcForIsr runs */
	uint64_t stale_records; /* records with a cookie not in flight */
	/* records the watchdog drained while a DpcForIsr queued before it
	 * still waited: 0 unless the watchdog ignores a queued DPC */
	uint64_t watchdog_took_queued;
	uint64_t started_from_dpc; /* StartIo called from DpcForIsr */
	uint64_t status[10]; /* completion records by device status */
	uint64_t fail_hw, fail_io, fail_timeout, fail_removed, fail_param;
	uint32_t first_fail_status; /* NTSTATUS of the first failed IRP */
	/* irp-bench: TSC samples (when sampling is on). */
	bool sampling;
	uint32_t nsamples;
	uint64_t *isr_to_dpc; /* DMADRV_SAMPLES each */
	uint64_t *dpc_cycles;
	/* The last IRP's stamps (sampling only): doorbell write, ISR,
	 * DpcForIsr entry and exit. */
	uint64_t last_kick, last_isr, last_dpc_in, last_dpc_out;
	/* ... DriverStartIo entry, and around IoStartNextPacket +
	 * IoCompleteRequest in the DpcForIsr. */
	uint64_t last_startio, last_end_in, last_end_out;
};

struct dmadrv;

/* Channel state shared with the ISR (interrupt spin lock). */
struct dmadrv_isr_shared {
	/* An ISR requested the DpcForIsr and it has not started yet: the
	 * watchdog leaves the ring to it. */
	bool dpc_pending;
	uint64_t isr_tsc; /* last ISR that queued the DPC (sampling) */
	/* The ISR's cursor in the completion ring: the next record it has
	 * not seen, and that record's expected phase. It runs ahead of the
	 * DPC's consume index (dmadev's comp_head, channel lock) and is set
	 * back to it when the ring restarts (dmadrv_sync_isr_cursor). */
	uint32_t head;
	uint8_t phase;
	uint16_t tag; /* the IRP's tag, for the ISR's trace marker */
};

/* Device state shared with the ISR (interrupt spin lock). */
struct dmadrv_isr_dev {
	bool removed; /* the error ISR read all ones */
};

/* The device extension of channel c's device object. */
struct dmadrv_chan {
	struct dmadrv *drv;
	PDEVICE_OBJECT dev;
	struct dmadev_chan *ch;
	unsigned int index;
	KSPIN_LOCK lock;
	KTIMER watchdog;
	KDPC watchdog_dpc;
	bool watchdog_armed;
	bool watchdog_marked; /* this run of the timer DPC wrote its marker */
	bool starting_from_dpc;
	/* The IRP the channel holds, and its progress. */
	PIRP irp;
	uint8_t op; /* DMA_OP_COPY or DMA_OP_FILL */
	uint64_t src, dst, pattern, len, done, tag;
	uint32_t chunk; /* bytes of the transfer in flight */
	uint64_t cookie; /* of the descriptor in flight, 0 = none */
	uint64_t posted_tick;
	uint32_t irp_retries;
	/* The IRP to end once the lock is dropped. */
	PIRP end_irp;
	NTSTATUS end_status;
	uint64_t end_info;
	uint64_t end_tag;
	/* The watchdog saw this transfer's record unclaimed (cookie). */
	uint64_t watchdog_seen;
	bool stopping; /* unload: the watchdog re-arms no more */
	struct dmadrv_isr_shared isr; /* dmadrv_isr_state only */
};

/* The controller: one per driver. */
struct dmadrv {
	PDRIVER_OBJECT driver;
	struct dmadev dev;
	PIO_INTERRUPT_MESSAGE_INFO msi;
	PKINTERRUPT interrupt; /* message 0's; all share one spin lock */
	unsigned int channels;
	struct dmadrv_chan *chan[DMADRV_MAX_CHANNELS];
	uint64_t next_cookie;
	/* The device reads all ones: set once, under any channel's lock. */
	volatile bool removed;
	struct dmadrv_params params;
	struct dmadrv_stats stats;
	struct dmadrv_isr_dev isr; /* dmadrv_isr_dev only */
};

extern struct dmadrv dmadrv;
extern const char *const dmadrv_bug_names[DMADRV_BUG_COUNT];

/* The only ways to the ISR-shared state: the verifier checks that the
 * caller holds the interrupt spin lock. */
static inline struct dmadrv_isr_shared *dmadrv_isr_state(struct dmadrv_chan *x)
{
	wdm_verify_interrupt_lock(x->drv->interrupt, "ISR-shared channel state");
	return &x->isr;
}

static inline struct dmadrv_isr_dev *dmadrv_isr_dev(struct dmadrv *d)
{
	wdm_verify_interrupt_lock(d->interrupt, "ISR-shared device state");
	return &d->isr;
}

/* Load the driver (parameters from the command line; markers_default is
 * used when the command line has no markers= key). */
NTSTATUS dmadrv_load(PDRIVER_OBJECT *out, bool markers_default);
/* "dmadrv.bug" is set but names no bug. */
bool dmadrv_bad_bug(void);
/* The counters as JSON fields (no braces). */
size_t dmadrv_result_fields(char *buf, size_t size);

/* harness.c: the kernel side of the scenarios that run the test
 * application (user/dma_io.c) against the driver. */
struct dmadrv_scenario {
	const char *name;
	uint32_t ops; /* enum dma_io_ops */
	uint32_t irps, depth, requesters; /* defaults; 0 requesters = one
					   * per channel x2 */
	uint64_t max_bytes;
	bool markers, verbose;
};
int dmadrv_run_scenario(const struct dmadrv_scenario *s);

/* dispatch.c */
DRIVER_DISPATCH dmadrv_dispatch_create_close;
DRIVER_DISPATCH dmadrv_dispatch_device_control;

/* startio.c */
DRIVER_STARTIO dmadrv_start_io;
/* Post the next transfer of x's IRP (x->lock held). */
void dmadrv_program(struct dmadrv_chan *x);
/* Detach x's IRP with a final status (x->lock held); dmadrv_end_irp
 * then starts the next IRP and completes it (lock dropped). */
void dmadrv_finish(struct dmadrv_chan *x, NTSTATUS status);
void dmadrv_end_irp(struct dmadrv_chan *x, bool from_dpc);
/* Reset the channel after an error or a hang (x->lock held). Returns
 * false if the device is gone or the channel did not come back up. */
bool dmadrv_reset_channel(struct dmadrv_chan *x);
/* What an IRP ends with when the channel cannot run it: removed device
 * or a channel that stays down. */
NTSTATUS dmadrv_dead_status(const struct dmadrv *d);
/* Retry the transfer in flight, or fail the IRP with status once the
 * bound is reached (x->lock held). */
void dmadrv_retry_or_fail(struct dmadrv_chan *x, NTSTATUS status);
void dmadrv_marker(struct dmadrv_chan *x, unsigned int kind);
/* The kernel's dispatch trace hook (markers=1): the end markers of the
 * ISR, DpcForIsr and timer DPC, and StartIo's begin and end. */
WDM_TRACE_CALLBACK dmadrv_trace;

/* isr_dpc.c */
KMESSAGE_SERVICE_ROUTINE dmadrv_isr;
IO_DPC_ROUTINE dmadrv_dpc_for_isr;
/* Set the ISR's ring cursor to the DPC's consume index after the ring
 * restarted or the watchdog consumed records (x->lock held, DISPATCH). */
void dmadrv_sync_isr_cursor(struct dmadrv_chan *x);
/* The watchdog's question: is a DpcForIsr requested and not started? */
bool dmadrv_dpc_pending(struct dmadrv_chan *x);
/* Give the ISR the tag of x's IRP for its trace marker (markers=1). */
void dmadrv_sync_isr_tag(struct dmadrv_chan *x);
/* Consume every new completion record of x (x->lock held); returns how
 * many there were. */
unsigned int dmadrv_drain(struct dmadrv_chan *x);
/* The record at the consume index is new (phase bit): no register read. */
bool dmadrv_record_ready(const struct dmadrv_chan *x);

/* watchdog.c */
KDEFERRED_ROUTINE dmadrv_watchdog_dpc;
void dmadrv_arm_watchdog(struct dmadrv_chan *x);

#endif
