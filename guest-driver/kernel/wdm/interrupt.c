// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/*
 * Message-signalled interrupt objects (IoConnectInterruptEx,
 * CONNECT_MESSAGE_BASED).
 *
 * Each message gets its own vector from the device range (irq_alloc) and
 * its own KINTERRUPT, whose IRQL is vector >> 4 (Windows x64). The
 * message info handed back holds, per message, the MSI-X table values a
 * driver programs: address 0xFEE00000 | (LAPIC id << 12) (fixed
 * delivery, physical destination) and data = the vector. The destination
 * is the interrupt affinity policy's CPU: `wdm.isr_cpu=N` on the command
 * line (Windows reads it from the device's registry key, "Interrupt
 * Management\Affinity Policy"); without it, the CPU that connects.
 * TargetProcessorSet says which one.
 *
 * Reports name the ISR "<driver>!MessageServiceRoutine" (the driver of
 * PhysicalDeviceObject): the routine's own name is not in the
 * parameters.
 *
 * The trap.c handler for such a vector (message_isr) runs with
 * interrupts off: it sets the IRQL to the message's DIRQL, takes the
 * interrupt spin lock (the per-message one, or the driver's common lock),
 * calls the message service routine with its MessageId (read under the
 * lock: IoDisconnectInterruptEx clears it, then takes each lock once, so
 * no ISR runs after it returns), times it with
 * the TSC for the verifier (less the CPU's steal time read at both ends:
 * the time the host did not run the vCPU is not the routine's), EOIs the
 * LAPIC (the ISR returning FALSE is counted, not an error: MSI-X is never
 * shared) and restores the IRQL.
 * The DPCs it queued run when trap.c's exit hook sees the IRQL below
 * DISPATCH_LEVEL.
 */
#include "cmdline.h"
#include "heap.h"
#include "smp.h"
#include "trap.h"
#include "wdm/internal.h"

static uint64_t isr_false_count;

static void message_isr(struct trap_frame *f, void *ctx)
{
	PKINTERRUPT in = ctx;
	struct wdm_cpu *c = wdm_cpu();
	KIRQL old = c->irql;
	const char *prev;
	uint32_t locks;
	unsigned int cpu;
	uint64_t t0, dt, steal0, stolen;

	PKMESSAGE_SERVICE_ROUTINE isr;

	(void)f;
	prev = wdm_enter(c, in->Name);
	c->irql = in->Irql;
	cpu = wdm_cpu_index(); /* the load wdm_cpu() made */
	wdm_trace(WdmTraceIsr, FALSE, in, in->MessageId, 0, 0);
	steal0 = steal_ns_own(cpu); /* steal brackets the stamps: verifier.c */
	t0 = rdtsc();
	wdm_lock_acquire(c, in->ActualLock, "interrupt dispatch");
	isr = in->MessageServiceRoutine;
	if (!isr) { /* disconnected */
		wdm_lock_release(c, in->ActualLock, "interrupt dispatch");
		lapic_eoi();
		c->irql = old;
		c->routine = prev;
		return;
	}
	locks = c->locks_held;
	if (!isr(in, in->ServiceContext, in->MessageId))
		isr_false_count++;
	dt = rdtsc() - t0;
	stolen = steal_ns_own(cpu) - steal0;
	wdm_trace(WdmTraceIsr, TRUE, in, in->MessageId, dt, stolen);
	if (c->locks_held != locks)
		wdm_violation(WDM_V_SPINLOCK, "ISR returned holding %u spin lock(s)",
			      c->locks_held - locks);
	wdm_lock_release(c, in->ActualLock, "interrupt dispatch");
	in->Count++;
	wdm_stats.isrs++;
	c->isrs_run++;
	if (__builtin_expect(dt > wdm_isr_check_cycles, 0))
		wdm_isr_timed(in->MessageId, dt, stolen);
	if (c->irql != in->Irql)
		wdm_violation(WDM_V_IRQL, "ISR returned at IRQL %u, not its DIRQL %u",
			      c->irql, in->Irql);
	lapic_eoi();
	c->irql = old;
	c->routine = prev;
}

/* The affinity policy: wdm.isr_cpu=N if CPU N is online, else this CPU. */
static unsigned int isr_cpu(void)
{
	const char *v;
	size_t len, i;
	uint64_t n = 0;

	if (!cmdline_get("wdm.isr_cpu", &v, &len))
		return wdm_cpu_index();
	for (i = 0; i < len && v[i] >= '0' && v[i] <= '9' && n < MAX_CPUS; i++)
		n = n * 10 + (uint64_t)(v[i] - '0');
	if (!len || i < len || n >= cpus_online) {
		kprintf("wdm: wdm.isr_cpu=%.*s names no online CPU (%u online): interrupts go to CPU %u\n",
			(int)len, v, cpus_online, wdm_cpu_index());
		return wdm_cpu_index();
	}
	return (unsigned int)n;
}

NTSTATUS wdm_connect_interrupt(PIO_CONNECT_INTERRUPT_PARAMETERS Parameters,
			       const char *name)
{
	PIO_INTERRUPT_MESSAGE_INFO info;
	ULONG n, i;
	KIRQL sync = 0;
	unsigned int cpu;

	wdm_check_irql("IoConnectInterruptEx", PASSIVE_LEVEL);
	n = Parameters->MessageBased.MessageCount;
	if (Parameters->Version != CONNECT_MESSAGE_BASED || !n ||
	    n > WDM_MAX_MESSAGES ||
	    !Parameters->MessageBased.MessageServiceRoutine ||
	    !Parameters->MessageBased.ConnectionInfo)
		return STATUS_INVALID_PARAMETER;
	info = kmalloc(sizeof(*info));
	if (!info)
		return STATUS_INSUFFICIENT_RESOURCES;
	info->MessageCount = n;
	cpu = isr_cpu();
	if (Parameters->MessageBased.PhysicalDeviceObject) {
		char *s = kmalloc(48);

		if (s) {
			ksnprintf(s, 48, "%s!%s",
				  Parameters->MessageBased.PhysicalDeviceObject
					  ->DriverObject->Name,
				  name);
			name = s;
		}
	}
	for (i = 0; i < n; i++) {
		PKINTERRUPT in = &info->Interrupts[i];
		int v;

		in->MessageServiceRoutine =
			Parameters->MessageBased.MessageServiceRoutine;
		in->ServiceContext = Parameters->MessageBased.ServiceContext;
		in->MessageId = i;
		in->Name = name;
		in->ActualLock = Parameters->MessageBased.SpinLock ?
					 Parameters->MessageBased.SpinLock :
					 &in->SpinLock;
		v = irq_alloc(message_isr, in);
		if (v < 0) {
			/* Vectors already taken stay registered but inert. */
			while (i--)
				info->Interrupts[i].MessageServiceRoutine = NULL;
			return STATUS_INSUFFICIENT_RESOURCES;
		}
		in->Vector = (ULONG)v;
		in->Irql = (KIRQL)(v >> 4);
		if (in->Irql > sync)
			sync = in->Irql;
		info->MessageInfo[i].Vector = (ULONG)v;
		info->MessageInfo[i].Irql = in->Irql;
		info->MessageInfo[i].MessageData = (ULONG)v;
		info->MessageInfo[i].MessageAddress =
			0xfee00000ull | ((uint64_t)cpus[cpu].apic_id << 12);
		info->MessageInfo[i].TargetProcessorSet = 1ull << cpu;
	}
	if (Parameters->MessageBased.SynchronizeIrql > sync)
		sync = Parameters->MessageBased.SynchronizeIrql;
	info->UnifiedIrql = sync;
	for (i = 0; i < n; i++)
		info->Interrupts[i].SynchronizeIrql = sync;
	*Parameters->MessageBased.ConnectionInfo = info;
	if (Parameters->MessageBased.ConnectionContext)
		*Parameters->MessageBased.ConnectionContext = &info->Interrupts[0];
	return STATUS_SUCCESS;
}

void IoDisconnectInterruptEx(PIO_INTERRUPT_MESSAGE_INFO Info)
{
	ULONG i;

	wdm_check_irql("IoDisconnectInterruptEx", PASSIVE_LEVEL);
	for (i = 0; i < Info->MessageCount; i++) {
		PKINTERRUPT in = &Info->Interrupts[i];
		KIRQL old;

		/* An ISR running on another CPU holds the lock until it
		 * returns; one that starts later finds no routine. */
		old = KeAcquireInterruptSpinLock(in);
		in->MessageServiceRoutine = NULL;
		KeReleaseInterruptSpinLock(in, old);
	}
}

void wdm_interrupt_lock_violation(const char *what)
{
	wdm_violation(WDM_V_INTERRUPT_LOCK,
		      "%s touched without the interrupt spin lock (IRQL %u)",
		      what, KeGetCurrentIrql());
}
