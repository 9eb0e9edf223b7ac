// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/*
 * The verifier: always on, Driver Verifier style. Each violation prints
 * one line, `VERIFIER: <what> by <routine>` with the measured value, and
 * is counted by kind (the DMALAB-RESULT line carries the counts);
 * `verifier=strict` on the command line makes any violation fail the
 * scenario (wdm_verifier_strict, judged by the scenario at its end). Only
 * the first VERIFIER_PRINT_MAX of each kind are printed: each line costs
 * ~11 us per character here.
 *
 * Time limits. Windows' limits (ISR 25 us, DPC 100 us) are for native
 * code. Ring-0 code is emulated here, ~2,500 times slower, so the limits
 * are scaled by an emulation factor measured at wdm_init: a loop of
 * CALIB_ITERS `dec; jnz` pairs (2 * CALIB_ITERS instructions) is timed
 * with the TSC, interrupts off, best of CALIB_RUNS; factor = measured ns
 * per instruction / NATIVE_PS_PER_INSN (0.3 ns, a native estimate), at
 * least 1. The limit is then the same instruction budget as natively
 * (25 us = ~83,000 instructions). On hardware KVM the factor comes out 1.
 * `verifier.isr_us=` / `verifier.dpc_us=` set the native limits,
 * `verifier.factor=` overrides the measured factor (1 = limits in raw
 * TSC time).
 *
 * Race stress. `verifier.timer_dpc_delay_us=N` (default 0: off) makes the
 * DPC queue wait N us of TSC time, at DISPATCH_LEVEL with interrupts on,
 * whenever a timer expiry has queued a DPC, before it runs any: an
 * interrupt that comes meanwhile runs its ISR, whose DPC queues behind
 * the timer's. A driver's timer DPC then meets, at its start, the state
 * an ISR left for a DPC that has not run yet, a window that is otherwise
 * a few instructions wide (Driver Verifier's concurrency stress widens
 * windows the same way). The wait is no routine's time.
 *
 * Host preemption. The TSC is wall-clock time: a vCPU thread the host
 * deschedules mid-ISR made a 40 us ISR measure 42 ms. The timed paths
 * (interrupt.c, irql.c) read this CPU's KVM steal time (steal.h) just
 * outside both TSC stamps (steal, rdtsc ... rdtsc, steal) and pass the
 * delta here; a routine's own time is the TSC delta less the steal
 * converted to TSC ticks (clamped at 0). Outside, not inside: KVM adds a
 * preemption to the steal when it re-enters the vCPU, and here the host
 * preempts the vCPU preferably at an rdtsc: measured with a ring-0 loop
 * under load, a 4-16 ms gap in the TSC fell between an rdtsc and the
 * steal read next to it in 1-3 of 16 gaps, on either side. With the
 * reads inside, such a preemption was in the TSC delta but not in the
 * steal delta (2-3 of 60 loaded stress runs had an ISR violation with
 * "0 us stolen"); outside, it is in both, and the error is the other
 * way: a preemption right at a stamp but outside the routine is
 * subtracted too. So a true overrun can hide only behind a host
 * preemption at least as long landing on that instruction.
 *
 * The hot path is two steal reads (one load each: steal.h) and one
 * compare; the conversion (one multiply) and the report run only when
 * the TSC delta is above the limit or the longest own time so far (the
 * maxima of the result line are own times). Violation lines give both:
 * `ran N us (M us stolen by the host; limit L us)`, N the own time. wdm_verifier_init enables steal
 * time on the CPU that runs it (the BSP: the only CPU that runs WDM code;
 * another CPU reads steal 0); where the hypervisor does not offer it, it
 * says so once and durations include host preemption, as before.
 */
#include "cmdline.h"
#include "steal.h"
#include "wdm/internal.h"

#define VERIFIER_PRINT_MAX 4
#define CALIB_ITERS 500
#define CALIB_RUNS 3
#define NATIVE_PS_PER_INSN 300
#define DEFAULT_ISR_US 25
#define DEFAULT_DPC_US 100

const char *const wdm_violation_names[WDM_V_COUNT] = {
	[WDM_V_IRQL] = "irql",
	[WDM_V_ISR_TIME] = "isr_time",
	[WDM_V_DPC_TIME] = "dpc_time",
	[WDM_V_IRP_DOUBLE] = "irp_double_complete",
	[WDM_V_IRP_LEAK] = "irp_not_completed",
	[WDM_V_IRP_AFTER] = "irp_after_complete",
	[WDM_V_SPINLOCK] = "spinlock",
	[WDM_V_INTERRUPT_LOCK] = "interrupt_lock",
};

uint64_t wdm_violations[WDM_V_COUNT];
uint64_t wdm_isr_limit_cycles, wdm_dpc_limit_cycles;
uint64_t wdm_timer_dpc_delay_cycles;
/* min(limit, longest own time so far): 0 until the first one is timed */
uint64_t wdm_isr_check_cycles, wdm_dpc_check_cycles;

static uint64_t isr_us = DEFAULT_ISR_US, dpc_us = DEFAULT_DPC_US;
static uint64_t factor, calib_ps_per_insn;
static bool strict;
static enum steal_state steal;
/* Steal time at init (ns), the most subtracted from one routine (TSC). */
static uint64_t steal_at_init, max_stolen_cycles;

static uint64_t parse_u64(const char *s, size_t n, uint64_t dflt)
{
	uint64_t v = 0;
	size_t i;

	if (!n)
		return dflt;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return dflt;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	return v;
}

static uint64_t key_u64(const char *key, size_t klen, uint64_t dflt)
{
	const char *v;
	size_t n;

	if (!cmdline_get_n(key, klen, &v, &n))
		return dflt;
	return parse_u64(v, n, dflt);
}

/* TSC cycles for 2 * CALIB_ITERS emulated instructions, best of a few. */
static uint64_t calibrate(void)
{
	uint64_t best = UINT64_MAX, flags = wdm_irq_save();
	unsigned int r;

	for (r = 0; r < CALIB_RUNS; r++) {
		uint64_t n = CALIB_ITERS, t0 = rdtsc(), dt;

		__asm__ volatile("1: dec %0\n\tjnz 1b" : "+r"(n) : : "cc");
		dt = rdtsc() - t0;
		if (dt < best)
			best = dt;
	}
	wdm_irq_restore(flags);
	return best;
}

void wdm_verifier_init(void)
{
	const char *v;
	size_t n;
	uint64_t khz = boot_info->tsc_khz ? boot_info->tsc_khz : 1000000;
	uint64_t cycles = calibrate();

	/* ps per instruction = cycles * 1e9 / khz / insns */
	calib_ps_per_insn = cycles * 1000000000ull / khz / (2 * CALIB_ITERS);
	factor = calib_ps_per_insn / NATIVE_PS_PER_INSN;
	if (!factor)
		factor = 1;
	factor = key_u64("verifier.factor", 15, factor);
	isr_us = key_u64("verifier.isr_us", 15, DEFAULT_ISR_US);
	dpc_us = key_u64("verifier.dpc_us", 15, DEFAULT_DPC_US);
	wdm_isr_limit_cycles = isr_us * factor * khz / 1000;
	wdm_dpc_limit_cycles = dpc_us * factor * khz / 1000;
	wdm_timer_dpc_delay_cycles =
		key_u64("verifier.timer_dpc_delay_us", 27, 0) * khz / 1000;
	strict = cmdline_get("verifier", &v, &n) && str_eq_n(v, n, "strict");
	steal = steal_enable();
	if (steal == STEAL_ON)
		steal_at_init = steal_ns(this_cpu()->index);
	else
		kprintf("verifier: no steal time: durations include host preemption (%s)\n",
			steal_state_name(steal));
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/* The own time of a routine timed over dt with stolen_ns stolen; the
 * stolen TSC ticks in *stolen. */
static uint64_t own_cycles(uint64_t dt, uint64_t stolen_ns, uint64_t *stolen)
{
	*stolen = steal_ns_to_tsc(stolen_ns);
	if (*stolen > max_stolen_cycles)
		max_stolen_cycles = *stolen;
	return *stolen < dt ? dt - *stolen : 0;
}

void wdm_isr_timed(ULONG MessageId, uint64_t dt, uint64_t stolen_ns)
{
	uint64_t stolen, own = own_cycles(dt, stolen_ns, &stolen);

	if (own > wdm_stats.max_isr_cycles)
		wdm_stats.max_isr_cycles = own;
	wdm_isr_check_cycles = min_u64(wdm_stats.max_isr_cycles,
				       wdm_isr_limit_cycles);
	if (own <= wdm_isr_limit_cycles)
		return;
	if (steal == STEAL_ON)
		wdm_violation(WDM_V_ISR_TIME,
			      "ISR (message %u) ran %lu us (%lu us stolen by the host; limit %lu us)",
			      MessageId, tsc_to_us(own), tsc_to_us(stolen),
			      tsc_to_us(wdm_isr_limit_cycles));
	else
		wdm_violation(WDM_V_ISR_TIME,
			      "ISR (message %u) ran %lu us (limit %lu us)",
			      MessageId, tsc_to_us(own),
			      tsc_to_us(wdm_isr_limit_cycles));
}

void wdm_dpc_timed(uint64_t dt, uint64_t stolen_ns)
{
	uint64_t stolen, own = own_cycles(dt, stolen_ns, &stolen);

	if (own > wdm_stats.max_dpc_cycles)
		wdm_stats.max_dpc_cycles = own;
	wdm_dpc_check_cycles = min_u64(wdm_stats.max_dpc_cycles,
				       wdm_dpc_limit_cycles);
	if (own <= wdm_dpc_limit_cycles)
		return;
	if (steal == STEAL_ON)
		wdm_violation(WDM_V_DPC_TIME,
			      "DPC ran %lu us (%lu us stolen by the host; limit %lu us)",
			      tsc_to_us(own), tsc_to_us(stolen),
			      tsc_to_us(wdm_dpc_limit_cycles));
	else
		wdm_violation(WDM_V_DPC_TIME, "DPC ran %lu us (limit %lu us)",
			      tsc_to_us(own), tsc_to_us(wdm_dpc_limit_cycles));
}

bool wdm_verifier_strict(void)
{
	return strict;
}

void wdm_violation(enum wdm_violation kind, const char *fmt, ...)
{
	const char *who = wdm_cpu()->routine;
	char msg[160];
	va_list ap;

	if (wdm_violations[kind]++ >= VERIFIER_PRINT_MAX)
		return;
	va_start(ap, fmt);
	kvsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	kprintf("VERIFIER: %s by %s\n", msg, who ? who : "kernel");
}

KIRQL wdm_irql_violation(const char *fn, KIRQL irql, KIRQL max)
{
	wdm_violation(WDM_V_IRQL, "%s called at IRQL %u (max %u)", fn, irql,
		      max);
	return irql;
}

uint64_t wdm_violation_total(void)
{
	uint64_t t = 0;
	unsigned int i;

	for (i = 0; i < WDM_V_COUNT; i++)
		t += wdm_violations[i];
	return t;
}

void wdm_verifier_summary(void)
{
	unsigned int i;

	kprintf("verifier: %s, factor %lu (%lu ps per emulated instruction, native %u), isr limit %lu us native = %lu us here, dpc limit %lu us native = %lu us here\n",
		strict ? "strict" : "report", factor, calib_ps_per_insn,
		NATIVE_PS_PER_INSN, isr_us, tsc_to_us(wdm_isr_limit_cycles),
		dpc_us, tsc_to_us(wdm_dpc_limit_cycles));
	if (wdm_timer_dpc_delay_cycles)
		kprintf("verifier: timer DPCs delayed %lu us (race stress)\n",
			tsc_to_us(wdm_timer_dpc_delay_cycles));
	if (steal == STEAL_ON)
		kprintf("verifier: steal time on: %lu us stolen by the host since init, at most %lu us from one ISR/DPC (not counted in its time)\n",
			(steal_ns(this_cpu()->index) - steal_at_init) / 1000,
			tsc_to_us(max_stolen_cycles));
	for (i = 0; i < MAX_CPUS; i++)
		if (wdm_cpus[i].isrs_run || wdm_cpus[i].dpcs_run)
			kprintf("verifier: CPU %u ran %lu ISR(s) and %lu DPC(s)\n",
				i, wdm_cpus[i].isrs_run, wdm_cpus[i].dpcs_run);
	for (i = 0; i < WDM_V_COUNT; i++)
		if (wdm_violations[i])
			kprintf("verifier: %lu violation(s) of kind %s\n",
				wdm_violations[i], wdm_violation_names[i]);
}
