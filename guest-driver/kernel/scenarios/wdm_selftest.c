// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/*
 * wdm-selftest: the WDM layer's semantics, one named check per line
 * (`wdm-selftest: <name> ok (<figures>)` or `... FAIL <detail>`), then
 * the verifier's summary and one DMALAB-RESULT line with the counters.
 *
 * Kernel-side checks (this file, at PASSIVE_LEVEL in the scenario's
 * context): IRQL raise/lower and DPC drain order, double
 * KeInsertQueueDpc, a DPC targeted at CPU 1 and KeFlushQueuedDpcs (with
 * --cpus 2; skipped, and said so, with one CPU), spin lock and KeSynchronizeExecution IRQLs, the
 * message ISR with its MessageId, KeSetTimer firing its DPC,
 * KeCancelTimer, KeWaitForSingleObject's timeout, a kernel IRP with a
 * completion routine (STATUS_PENDING, the event, the routine called once
 * with the final status). Then the user program (user/wdm_selftest_app.c)
 * opens the loopback driver and checks DeviceIoControl, overlapped
 * depth, cancellation, StartIo order, wait timeouts, the watchdog and
 * close.
 *
 * Bug mode: `testdrv.bug=NAME` (wdm/testdrv/testdrv.h) loads the driver
 * with a deliberate bug and runs a short user program instead; the one
 * check is that the verifier reported the matching kind. Exit status:
 * 0 if every check passed and (without verifier=strict) whatever the
 * verifier reported; 1 if a check failed, or with verifier=strict if the
 * verifier reported anything.
 */
#include "check.h"
#include "cmdline.h"
#include "kernel.h"
#include "lapic.h"
#include "platform.h"
#include "scenarios/scenario.h"
#include "smp.h"
#include "user.h"
#include "user/wdm_selftest.h"
#include "wdm/testdrv/testdrv.h"
#include "wdm/wdm_end.h"

static struct checklist cl = { .tag = "wdm-selftest" };

/* ---- DPC order and IRQL ---- */

static struct {
	char order[8];
	unsigned int n;
	KIRQL irql;
} dpc_log;

static void log_dpc(PKDPC Dpc, PVOID Context, PVOID a1, PVOID a2)
{
	(void)Dpc, (void)a1, (void)a2;
	if (dpc_log.n < sizeof(dpc_log.order) - 1)
		dpc_log.order[dpc_log.n++] = (char)(uintptr_t)Context;
	dpc_log.irql = KeGetCurrentIrql();
}

static void check_irql_dpc_order(void)
{
	KDPC a, b;
	KIRQL old, old2, at_raise, at_dirql;
	unsigned int before_lower;
	bool if_dirql;

	KeInitializeDpc(&a, log_dpc, (PVOID)'A');
	KeInitializeDpc(&b, log_dpc, (PVOID)'B');
	dpc_log.n = 0;
	KeRaiseIrql(DISPATCH_LEVEL, &old);
	at_raise = KeGetCurrentIrql();
	KeInsertQueueDpc(&a, NULL, NULL);
	KeInsertQueueDpc(&b, NULL, NULL);
	KeRaiseIrql(3, &old2);
	at_dirql = KeGetCurrentIrql();
	if_dirql = (read_rflags() & RFLAGS_IF) != 0;
	KeLowerIrql(old2);
	before_lower = dpc_log.n;
	KeLowerIrql(old);
	dpc_log.order[dpc_log.n] = 0;
	check(&cl, "irql-dpc-order",
	       old == PASSIVE_LEVEL && at_raise == DISPATCH_LEVEL &&
		       at_dirql == 3 && !if_dirql && before_lower == 0 &&
		       dpc_log.n == 2 && dpc_log.order[0] == 'A' &&
		       dpc_log.order[1] == 'B' &&
		       dpc_log.irql == DISPATCH_LEVEL &&
		       KeGetCurrentIrql() == PASSIVE_LEVEL,
	       "raised %u->%u->%u (IF %s at DIRQL), %u DPCs ran before lowering, order %s at IRQL %u",
	       old, at_raise, at_dirql, if_dirql ? "on" : "off", before_lower,
	       dpc_log.order, dpc_log.irql);
}

static void check_double_insert(void)
{
	KDPC d;
	KIRQL old;
	BOOLEAN first, second;

	KeInitializeDpc(&d, log_dpc, (PVOID)'D');
	dpc_log.n = 0;
	KeRaiseIrql(DISPATCH_LEVEL, &old);
	first = KeInsertQueueDpc(&d, NULL, NULL);
	second = KeInsertQueueDpc(&d, NULL, NULL);
	KeLowerIrql(old);
	check(&cl, "dpc-double-insert", first && !second && dpc_log.n == 1,
	       "first %u, second %u, ran %u time(s)", first, second, dpc_log.n);
}

static struct {
	volatile uint32_t runs;
	volatile ULONG cpu;
	volatile KIRQL irql;
} target_log;

static void target_dpc(PKDPC Dpc, PVOID Context, PVOID a1, PVOID a2)
{
	(void)Dpc, (void)Context, (void)a1, (void)a2;
	target_log.cpu = KeGetCurrentProcessorNumber();
	target_log.irql = KeGetCurrentIrql();
	target_log.runs++;
}

/* A DPC targeted at CPU 1 runs there (woken by the IPI), at
 * DISPATCH_LEVEL, and KeFlushQueuedDpcs returns only once it has run. */
static void check_targeted_dpc(void)
{
	KDPC d;
	BOOLEAN queued;

	if (cpus_online < 2) {
		kprintf("wdm-selftest: dpc-target skipped (1 CPU; needs --cpus 2)\n");
		return;
	}
	KeInitializeDpc(&d, target_dpc, NULL);
	KeSetTargetProcessorDpc(&d, 1);
	queued = KeInsertQueueDpc(&d, NULL, NULL);
	KeFlushQueuedDpcs();
	check(&cl, "dpc-target", queued && target_log.runs == 1 &&
		       target_log.cpu == 1 && target_log.irql == DISPATCH_LEVEL,
	       "queued %u, ran %u time(s) on CPU %u at IRQL %u before KeFlushQueuedDpcs returned",
	       queued, target_log.runs, target_log.cpu, target_log.irql);
}

/* Queued at PASSIVE_LEVEL, a DPC runs before KeInsertQueueDpc returns. */
static void check_dpc_at_passive(void)
{
	KDPC d;
	BOOLEAN queued;

	KeInitializeDpc(&d, log_dpc, (PVOID)'P');
	dpc_log.n = 0;
	queued = KeInsertQueueDpc(&d, NULL, NULL);
	check(&cl, "dpc-at-passive", queued && dpc_log.n == 1 &&
		       dpc_log.irql == DISPATCH_LEVEL &&
		       KeGetCurrentIrql() == PASSIVE_LEVEL,
	       "queued %u, ran %u time(s) before the call returned, at IRQL %u",
	       queued, dpc_log.n, dpc_log.irql);
}

static BOOLEAN sync_probe(PVOID ctx)
{
	KIRQL *irql = ctx;

	irql[0] = KeGetCurrentIrql();
	irql[1] = (read_rflags() & RFLAGS_IF) != 0;
	return TRUE;
}

static void check_spinlock(void)
{
	PKINTERRUPT in = testdrv_interrupt(0);
	KSPIN_LOCK l;
	KIRQL old, held, after, sync[2] = { 0, 1 };
	BOOLEAN r;

	KeInitializeSpinLock(&l);
	KeAcquireSpinLock(&l, &old);
	held = KeGetCurrentIrql();
	KeReleaseSpinLock(&l, old);
	after = KeGetCurrentIrql();
	r = KeSynchronizeExecution(in, sync_probe, sync);
	check(&cl, "spinlock-irql",
	       held == DISPATCH_LEVEL && after == PASSIVE_LEVEL && l == 0 && r &&
		       sync[0] == in->SynchronizeIrql && !sync[1] &&
		       in->SpinLock == 0,
	       "KeAcquireSpinLock at %u, released to %u; KeSynchronizeExecution at %u (SynchronizeIrql %u, IF %s)",
	       held, after, sync[0], in->SynchronizeIrql, sync[1] ? "on" : "off");
}

/* Message 1 of the driver, by self-IPI on its vector: the ISR must see
 * MessageId 1 at that message's DIRQL. */
static void check_message_isr(void)
{
	PKINTERRUPT in = testdrv_interrupt(1);
	uint64_t before = testdrv_counters.isr[1], start = lapic_ticks;

	lapic_self_ipi((uint8_t)in->Vector);
	while (testdrv_counters.isr[1] == before && lapic_ticks < start + 5)
		irq_enable_and_halt();
	check(&cl, "message-isr",
	       testdrv_counters.isr[1] == before + 1 && testdrv_counters.isr[0] == 0 &&
		       testdrv_counters.irql_in_isr == in->Irql &&
		       in->Irql == in->Vector >> 4,
	       "vectors 0x%x/0x%x, message 1 hits %lu, ISR at IRQL %u (DIRQL %u)",
	       testdrv_counters.vector[0], testdrv_counters.vector[1],
	       testdrv_counters.isr[1] - before, testdrv_counters.irql_in_isr,
	       in->Irql);
}

/* ---- Timers and waits ---- */

static struct {
	KEVENT event;
	unsigned int runs;
	uint64_t tick;
} timer_log;

static void timer_dpc(PKDPC Dpc, PVOID Context, PVOID a1, PVOID a2)
{
	(void)Dpc, (void)Context, (void)a2;
	timer_log.runs++;
	timer_log.tick = (uint64_t)a1;
	KeSetEvent(&timer_log.event, IO_NO_INCREMENT, FALSE);
}

static uint64_t ms_since(uint64_t tsc)
{
	return tsc_to_us(rdtsc() - tsc) / 1000;
}

static void check_timer_fires(void)
{
	KTIMER t;
	KDPC d;
	LARGE_INTEGER due = { .QuadPart = -3 * 10000 }; /* 3 ms */
	LARGE_INTEGER limit = { .QuadPart = -1000 * 10000 };
	uint64_t t0 = rdtsc(), ms;
	NTSTATUS st;
	BOOLEAN was;

	KeInitializeTimer(&t);
	KeInitializeDpc(&d, timer_dpc, NULL);
	KeInitializeEvent(&timer_log.event, SynchronizationEvent, FALSE);
	timer_log.runs = 0;
	was = KeSetTimer(&t, due, &d);
	st = KeWaitForSingleObject(&timer_log.event, Executive, KernelMode,
				   FALSE, &limit);
	ms = ms_since(t0);
	check(&cl, "timer-dpc",
	       !was && st == STATUS_SUCCESS && timer_log.runs == 1 &&
		       KeReadStateTimer(&t) && ms >= 2 && ms < 1000 &&
		       !KeReadStateEvent(&timer_log.event),
	       "KeSetTimer 3 ms: DPC ran %u time(s) after %lu ms, timer signalled %u, wait 0x%x",
	       timer_log.runs, ms, KeReadStateTimer(&t), (uint32_t)st);
}

static void check_timer_cancel_and_wait_timeout(void)
{
	KTIMER t;
	KDPC d;
	LARGE_INTEGER due = { .QuadPart = -5 * 10000 }; /* 5 ms */
	LARGE_INTEGER wait = { .QuadPart = -10 * 10000 }; /* 10 ms */
	LARGE_INTEGER zero = { .QuadPart = 0 };
	BOOLEAN c1, c2;
	NTSTATUS st, poll;
	uint64_t t0, ms;

	KeInitializeTimer(&t);
	KeInitializeDpc(&d, timer_dpc, NULL);
	KeInitializeEvent(&timer_log.event, NotificationEvent, FALSE);
	timer_log.runs = 0;
	KeSetTimer(&t, due, &d);
	c1 = KeCancelTimer(&t);
	t0 = rdtsc();
	st = KeWaitForSingleObject(&timer_log.event, Executive, KernelMode,
				   FALSE, &wait);
	ms = ms_since(t0);
	c2 = KeCancelTimer(&t);
	check(&cl, "timer-cancel", c1 && !c2 && timer_log.runs == 0 &&
		       !KeReadStateTimer(&t),
	       "KeCancelTimer %u then %u, DPC ran %u time(s) in %lu ms", c1,
	       c2, timer_log.runs, ms);
	KeSetEvent(&timer_log.event, IO_NO_INCREMENT, FALSE);
	poll = KeWaitForSingleObject(&timer_log.event, Executive, KernelMode,
				     FALSE, &zero);
	check(&cl, "wait-timeout", st == STATUS_TIMEOUT && ms >= 9 && ms < 1000 &&
		       poll == STATUS_SUCCESS &&
		       KeReadStateEvent(&timer_log.event),
	       "10 ms wait: 0x%x after %lu ms; notification event polled: 0x%x, stays signalled",
	       (uint32_t)st, ms, (uint32_t)poll);
}

/* ---- A kernel IRP with a completion routine ---- */

static struct {
	unsigned int calls;
	NTSTATUS status;
	BOOLEAN pending_returned;
	void *ctx;
} completion_log;

static NTSTATUS on_complete(PDEVICE_OBJECT DeviceObject, PIRP Irp,
			    PVOID Context)
{
	(void)DeviceObject;
	completion_log.calls++;
	completion_log.status = Irp->IoStatus.Status;
	completion_log.pending_returned = Irp->PendingReturned;
	completion_log.ctx = Context;
	return STATUS_CONTINUE_COMPLETION;
}

static void check_completion_routine(PDEVICE_OBJECT dev)
{
	static struct testdrv_req in, out;
	LARGE_INTEGER limit = { .QuadPart = -1000 * 10000 };
	IO_STATUS_BLOCK iosb = { STATUS_UNSUCCESSFUL, 0 };
	KEVENT ev;
	PIRP irp;
	NTSTATUS st, wst;
	unsigned int i;
	bool data_ok = true;

	in.delay_ms = 2;
	in.len = 16;
	for (i = 0; i < in.len; i++)
		in.data[i] = (uint8_t)(i * 3);
	KeInitializeEvent(&ev, NotificationEvent, FALSE);
	irp = IoBuildDeviceIoControlRequest(IOCTL_TESTDRV_LOOPBACK, dev, &in,
					    sizeof(in), &out, sizeof(out),
					    FALSE, &ev, &iosb);
	if (!irp) {
		check(&cl, "completion-routine", false, "IoBuildDeviceIoControlRequest failed");
		return;
	}
	completion_log.calls = 0;
	IoSetCompletionRoutine(irp, on_complete, &completion_log, TRUE, TRUE,
			       TRUE);
	st = IoCallDriver(dev, irp);
	wst = KeWaitForSingleObject(&ev, Executive, KernelMode, FALSE, &limit);
	for (i = 0; i < in.len; i++)
		if ((out.data[i] ^ in.data[i]) != 0xff)
			data_ok = false;
	check(&cl, "pending-event-wait",
	       st == STATUS_PENDING && wst == STATUS_SUCCESS &&
		       iosb.Status == STATUS_SUCCESS &&
		       iosb.Information == sizeof(out) && data_ok,
	       "IoCallDriver 0x%x, event wait 0x%x, IoStatus 0x%x/%lu, data %s",
	       (uint32_t)st, (uint32_t)wst, (uint32_t)iosb.Status,
	       iosb.Information, data_ok ? "inverted" : "wrong");
	check(&cl, "completion-routine",
	       completion_log.calls == 1 && completion_log.status == STATUS_SUCCESS &&
		       completion_log.pending_returned &&
		       completion_log.ctx == &completion_log,
	       "called %u time(s), status 0x%x, PendingReturned %u",
	       completion_log.calls, (uint32_t)completion_log.status,
	       completion_log.pending_returned);
}

/* ---- The user program's checks ---- */

static const char *const user_check_names[U_WDM_CHECKS] = {
	[U_WDM_OPEN] = "user-open",
	[U_WDM_SYNC] = "ioctl-sync-buffered",
	[U_WDM_DIRECT] = "ioctl-direct",
	[U_WDM_BAD_POINTER] = "ioctl-bad-pointer",
	[U_WDM_OVERLAPPED] = "overlapped-depth",
	[U_WDM_CANCEL] = "cancel-queued-irp",
	[U_WDM_ORDER] = "startio-order",
	[U_WDM_WAIT_TIMEOUT] = "overlapped-wait-timeout",
	[U_WDM_WATCHDOG] = "watchdog-timer-dpc",
	[U_WDM_CLOSE] = "close-cancels",
	[U_WDM_LATENCY] = "ioctl-latency",
	[U_WDM_IMMEDIATE] = "overlapped-immediate",
};

/* What the user program's two figures of each check are: a label, and
 * whether it is an NTSTATUS (printed 0x%x) or a number. */
static const struct {
	const char *a, *b;
	bool a_status, b_status;
} user_figures[U_WDM_CHECKS] = {
	[U_WDM_OPEN] = { "handle", "unknown name", false, true },
	[U_WDM_SYNC] = { "status", "bytes", true, false },
	[U_WDM_DIRECT] = { "status", "bytes", true, false },
	[U_WDM_BAD_POINTER] = { "status", "bytes", true, false },
	[U_WDM_OVERLAPPED] = { "pending at once", "submitted", false, false },
	[U_WDM_CANCEL] = { "CancelIoEx", "wait", true, true },
	[U_WDM_ORDER] = { "StartIo seq of 1st/2nd/4th (x 10^6/10^3/1)", "wait of 1st", false, true },
	[U_WDM_WAIT_TIMEOUT] = { "ms until the 5 ms wait timed out", "final wait", false, true },
	[U_WDM_WATCHDOG] = { "status", "ms", true, false },
	[U_WDM_CLOSE] = { "request in the device", "queued request", true, true },
	[U_WDM_LATENCY] = { "us per synchronous 8-byte loopback", "succeeded of 8", false, false },
	[U_WDM_IMMEDIATE] = { "DeviceIoControl", "wait", true, true },
};

static void report_user(int64_t status)
{
	const struct u_wdm_result *r = &u_wdm_result;
	unsigned int i;

	for (i = 0; i < U_WDM_CHECKS; i++) {
		char a[24], b[24];

		if (!r->done[i]) {
			check(&cl, user_check_names[i], false,
			       "did not run (user status %ld)", status);
			continue;
		}
		ksnprintf(a, sizeof(a), user_figures[i].a_status ? "0x%lx" : "%lu",
			  user_figures[i].a_status ? (uint64_t)(uint32_t)r->a[i] : r->a[i]);
		ksnprintf(b, sizeof(b), user_figures[i].b_status ? "0x%lx" : "%lu",
			  user_figures[i].b_status ? (uint64_t)(uint32_t)r->b[i] : r->b[i]);
		check(&cl, user_check_names[i], r->ok[i], "%s %s, %s %s",
		       user_figures[i].a, a, user_figures[i].b, b);
	}
}

static enum testdrv_bug bug_from_cmdline(bool *bad)
{
	const char *v;
	size_t n;
	unsigned int i;

	*bad = false;
	if (!cmdline_get("testdrv.bug", &v, &n))
		return TESTDRV_BUG_NONE;
	for (i = 0; i < TESTDRV_BUG_COUNT; i++)
		if (str_eq_n(v, n, testdrv_bug_names[i]))
			return (enum testdrv_bug)i;
	*bad = true;
	return TESTDRV_BUG_NONE;
}

int scenario_wdm_selftest(void)
{
	char fields[512], line[768];
	PDRIVER_OBJECT drv;
	size_t n;
	enum testdrv_bug bug;
	uint64_t violations;
	int64_t ust;
	NTSTATUS st;
	bool bad, pass;

	bug = bug_from_cmdline(&bad);
	if (bad) {
		kprintf("wdm-selftest: unknown testdrv.bug; known: double-complete irql leak slow-isr slow-dpc spinlock touch-after\n");
		kprintf("DMALAB-RESULT {\"scenario\":\"wdm-selftest\",\"status\":\"fail\",\"error\":\"unknown testdrv.bug\"}\n");
		return DMALAB_EXIT_FAIL;
	}
	irq_enable();
	wdm_init();
	st = testdrv_load(bug, &drv);
	check(&cl, "driver-entry", NT_SUCCESS(st) && testdrv_device(),
	       "DriverEntry 0x%x", (uint32_t)st);
	if (!NT_SUCCESS(st))
		goto out;
	if (bug == TESTDRV_BUG_NONE) {
		check_irql_dpc_order();
		check_double_insert();
		check_dpc_at_passive();
		check_targeted_dpc();
		check_spinlock();
		check_message_isr();
		check_timer_fires();
		check_timer_cancel_and_wait_timeout();
		check_completion_routine(testdrv_device());
	}
	ust = user_run(u_wdm_selftest_main, bug != TESTDRV_BUG_NONE);
	if (bug == TESTDRV_BUG_NONE) {
		report_user(ust);
		check(&cl, "irql-after-user", KeGetCurrentIrql() == PASSIVE_LEVEL,
		       "IRQL %u", KeGetCurrentIrql());
	}
	wdm_unload_driver(drv);
out:
	violations = wdm_finish();
	if (bug != TESTDRV_BUG_NONE) {
		const char *kind = testdrv_bug_kinds[bug];
		uint64_t n = wdm_violation_count(kind, strlen(kind));

		check(&cl, "verifier-caught", n > 0, "testdrv.bug=%s: %lu %s violation(s)",
		       testdrv_bug_names[bug], n, kind);
	} else {
		check(&cl, "verifier-clean", violations == 0, "%lu violation(s)",
		       violations);
	}
	wdm_result_fields(fields, sizeof(fields));
	pass = !cl.failed && !(wdm_strict() && violations);
	/* Longer than kprintf's buffer: formatted here, one console write. */
	n = ksnprintf(line, sizeof(line), "DMALAB-RESULT {\"scenario\":\"wdm-selftest\",\"status\":\"%s\",\"bug\":\"%s\",\"strict\":%s,\"checks\":%u,\"failed\":%u,%s}\n",
		      pass ? "pass" : "fail", testdrv_bug_names[bug],
		      wdm_strict() ? "true" : "false", cl.checks, cl.failed, fields);
	console_write(line, n < sizeof(line) ? n : sizeof(line) - 1);
	return pass ? DMALAB_EXIT_PASS : DMALAB_EXIT_FAIL;
}
