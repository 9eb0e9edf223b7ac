/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * KVM steal time: the nanoseconds a vCPU was runnable but not running
 * (the host scheduler ran something else), so that code timing itself
 * with the TSC can leave out time the host took.
 *
 * KVM advertises it in CPUID 0x40000001 EAX bit 5 (KVM_FEATURE_STEAL_TIME;
 * the KVM leaves start at 0x40000000, signature "KVMKVMKVM"). The guest
 * writes MSR_KVM_STEAL_TIME with the guest-physical address of a 64-byte
 * aligned per-CPU struct kvm_steal_time, bit 0 set to enable (the kernel
 * is identity-mapped: a kernel address is its guest-physical address).
 * KVM refuses the write (#GP, recovered through the fixup table) if the
 * feature is off or the host kernel has no scheduler statistics.
 *
 * KVM updates the struct each time it re-enters the vCPU after the vCPU
 * thread was scheduled (every KVM_RUN, so every user-space exit, and
 * after a host preemption), in arch/x86/kvm/x86.c record_steal_time():
 * version += 1 (odd), steal += the thread's run_delay since the last
 * update, version += 1 (even). The reader (Linux's kvm_steal_clock())
 * reads version, steal, version again and retries while the version is
 * odd or changed. KVM writes the struct only on the vCPU's own thread,
 * while the vCPU is not running, so a CPU reading its own struct never
 * sees it half-written: steal_ns_own is one load (the timed paths of the
 * verifier use it); steal_ns, with the loop, reads any CPU's. x86 does
 * not reorder loads with loads: compiler barriers are the rmb.
 *
 * A CPU that has not enabled it reads steal 0 forever: callers need no
 * branch, they just see no steal.
 */
#ifndef DMALAB_STEAL_H
#define DMALAB_STEAL_H

#include <stdbool.h>
#include <stdint.h>

#include "isr.h"

#define KVM_CPUID_SIGNATURE 0x40000000u
#define KVM_CPUID_FEATURES 0x40000001u
#define KVM_FEATURE_STEAL_TIME 5
#define MSR_KVM_STEAL_TIME 0x4b564d03u
#define KVM_MSR_ENABLED 1ull

struct kvm_steal_time {
	uint64_t steal;
	uint32_t version;
	uint32_t flags;
	uint8_t preempted;
	uint8_t u8_pad[3];
	uint32_t pad[11];
} __attribute__((aligned(64)));

_Static_assert(sizeof(struct kvm_steal_time) == 64, "kvm_steal_time layout");

/* One per CPU, written by KVM. */
extern struct kvm_steal_time steal_areas[MAX_CPUS];

/* Why steal time is or is not on for a CPU. */
enum steal_state {
	STEAL_OFF, /* not tried yet */
	STEAL_ON,
	STEAL_NO_KVM, /* no "KVMKVMKVM" hypervisor leaf */
	STEAL_NO_FEATURE, /* KVM_FEATURE_STEAL_TIME clear */
	STEAL_MSR_REFUSED, /* the MSR write raised #GP */
};

/*
 * Enables steal time on the calling CPU (interrupts may be on: it only
 * touches this CPU's state). Idempotent. Returns the resulting state.
 */
enum steal_state steal_enable(void);
/* CPU cpu's state (STEAL_OFF until steal_enable ran on it). */
enum steal_state steal_state(unsigned int cpu);
/* "on", "no KVM hypervisor leaf", ... */
const char *steal_state_name(enum steal_state s);

/* Steal time of CPU cpu in ns (0 where it is not enabled), any CPU. */
static inline uint64_t steal_ns(unsigned int cpu)
{
	volatile struct kvm_steal_time *st = &steal_areas[cpu];
	uint32_t v;
	uint64_t ns;

	do {
		v = st->version;
		__asm__ volatile("" ::: "memory");
		ns = st->steal;
		__asm__ volatile("" ::: "memory");
	} while ((v & 1) || v != st->version);
	return ns;
}

/* The calling CPU's steal time in ns; cpu must be the calling CPU. One
 * load: the hot path of the verifier's timing. */
static inline uint64_t steal_ns_own(unsigned int cpu)
{
	return *(volatile const uint64_t *)&steal_areas[cpu].steal;
}

/*
 * ns -> TSC ticks without a division: (ns * steal_tick_mult) >> 32, the
 * multiplier set by steal_enable from boot_info->tsc_khz (one 64x64->128
 * multiply, an integer instruction the emulator runs).
 */
extern uint64_t steal_tick_mult;

static inline uint64_t steal_ns_to_tsc(uint64_t ns)
{
	return (uint64_t)(((unsigned __int128)ns * steal_tick_mult) >> 32);
}

#endif
