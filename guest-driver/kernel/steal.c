// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/*
 * KVM steal time: enabling it per CPU (the protocol and the reader are in
 * steal.h). CPUID is fine at CPL0 for the KVM leaves (kvm-probe: g_cpuid
 * reads the "KVMKVMKVM" signature); only the feature bits of the native
 * leaves cannot be trusted here (docs/platform.md). The MSR write is
 * guarded by the fixup table: KVM answers #GP when the feature is off
 * for the guest or the host kernel keeps no scheduler statistics.
 */
#include "cpu.h"
#include "kernel.h"
#include "platform.h"
#include "steal.h"
#include "trap.h"

struct kvm_steal_time steal_areas[MAX_CPUS];
uint64_t steal_tick_mult;

static enum steal_state states[MAX_CPUS];

static void cpuid(uint32_t leaf, uint32_t *a, uint32_t *b, uint32_t *c,
		  uint32_t *d)
{
	__asm__ volatile("cpuid"
			 : "=a"(*a), "=b"(*b), "=c"(*c), "=d"(*d)
			 : "a"(leaf), "c"(0));
}

/* wrmsr that survives #GP: false if the CPU refused it. */
static bool wrmsr_safe(uint32_t msr, uint64_t v)
{
	struct trap_record *r = &this_cpu()->last_trap;
	uint64_t before = r->count;

	__asm__ volatile("1: wrmsr\n\t"
			 "2:\n\t" EX_TABLE(1b, 2b)
			 :
			 : "c"(msr), "a"((uint32_t)v),
			   "d"((uint32_t)(v >> 32))
			 : "memory");
	return r->count == before;
}

static bool kvm_signature(void)
{
	uint32_t max, b, c, d;

	cpuid(KVM_CPUID_SIGNATURE, &max, &b, &c, &d);
	/* "KVMKVMKVM\0\0\0" in EBX, ECX, EDX */
	/* max 0: old KVM, which means KVM_CPUID_FEATURES (as Linux reads it) */
	return b == 0x4b4d564b && c == 0x564b4d56 && d == 0x4d &&
	       (max == 0 || max >= KVM_CPUID_FEATURES);
}

enum steal_state steal_enable(void)
{
	unsigned int cpu = this_cpu()->index;
	uint32_t a, b, c, d;

	if (states[cpu] == STEAL_ON)
		return STEAL_ON;
	if (!kvm_signature())
		return states[cpu] = STEAL_NO_KVM;
	cpuid(KVM_CPUID_FEATURES, &a, &b, &c, &d);
	if (!(a & BIT(KVM_FEATURE_STEAL_TIME)))
		return states[cpu] = STEAL_NO_FEATURE;
	/* 2^32 * khz / 1e6: ticks per ns in 32.32 fixed point */
	steal_tick_mult = ((uint64_t)boot_info->tsc_khz << 32) / 1000000;
	if (!wrmsr_safe(MSR_KVM_STEAL_TIME,
			(uint64_t)&steal_areas[cpu] | KVM_MSR_ENABLED))
		return states[cpu] = STEAL_MSR_REFUSED;
	return states[cpu] = STEAL_ON;
}

enum steal_state steal_state(unsigned int cpu)
{
	return cpu < MAX_CPUS ? states[cpu] : STEAL_OFF;
}

const char *steal_state_name(enum steal_state s)
{
	switch (s) {
	case STEAL_ON:
		return "on";
	case STEAL_NO_KVM:
		return "no KVM hypervisor leaf";
	case STEAL_NO_FEATURE:
		return "KVM_FEATURE_STEAL_TIME not offered";
	case STEAL_MSR_REFUSED:
		return "MSR_KVM_STEAL_TIME write refused (#GP)";
	case STEAL_OFF:
		break;
	}
	return "not enabled";
}
