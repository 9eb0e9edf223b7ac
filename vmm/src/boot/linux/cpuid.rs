//! The CPUID a Linux guest gets.
//!
//! On hardware-virtualised KVM: what KVM supports, with the APIC IDs fixed
//! per vCPU, exactly as the dmalab guest gets it.
//!
//! Where ring-0 code runs in KVM's instruction emulator (`host.rs`), a
//! stock kernel must not see instructions the emulator cannot run, or it
//! uses them through alternatives and static keys. The table below hides
//! them; but measured on this project's PVM host (a probe guest running
//! `cpuid` at CPL0 with this table, 2026-12-04), only leaf 0 (the vendor)
//! and the bits KVM emulates itself (leaf 1 x2APIC and TSC-deadline) follow
//! the table: every other feature bit of leaves 1, 7 and 0x8000_0001, and
//! leaf 0xD, read as the host's. So there the command line's `clearcpuid=`
//! (`cmdline.rs`) does the hiding, and the table's masks serve KVMs that
//! honour them. What the table sets:
//! - vendor `GenuineIntel`: with an AMD vendor 6.1 takes the FXSAVE-leak
//!   workaround (`fnclex; emms; fild`, x87 the emulator fails on);
//! - leaf 1 ECX: MONITOR (idle by `hlt`, not `mwait`), PCID, x2APIC (its
//!   EOI is an emulated `wrmsr`, ~7 µs more per interrupt), MOVBE, POPCNT
//!   (`hweight`), AES, XSAVE/OSXSAVE (`xgetbv`, `xsave`, `xrstor`), AVX, F16C,
//!   RDRAND, FMA, TSC-deadline;
//! - leaf 7: FSGSBASE, BMI1/2, HLE/RTM, AVX2, INVPCID, RDSEED, ADX, SMAP
//!   (`clac`/`stac` in every entry), every AVX-512 bit, SHA; ECX: PKU,
//!   WAITPKG, GFNI, VAES, VPCLMULQDQ, LA57, RDPID; EDX: SERIALIZE (used by
//!   `sync_core`), the AVX-512 extras;
//! - leaf 0x8000_0001: ABM/LZCNT, SSE4A, XOP, FMA4, TBM, MWAITX; EDX:
//!   RDTSCP (`rdtsc_ordered` prefers it);
//! - leaf 0xD (XSAVE state) is dropped.
//!
//! The kernel still needs FPU, CX8, CMOV, FXSR, SSE and SSE2 (its
//! required-features check), which stay.

use kvm_bindings::{kvm_cpuid_entry2, CpuId};

use super::host::Ring0;
use crate::boot::cpu::vcpu_cpuid;

/// "GenuineIntel" in EBX, EDX, ECX of leaf 0.
const INTEL_EBX: u32 = u32::from_le_bytes(*b"Genu");
const INTEL_EDX: u32 = u32::from_le_bytes(*b"ineI");
const INTEL_ECX: u32 = u32::from_le_bytes(*b"ntel");

const fn bits(list: &[u32]) -> u32 {
    let mut mask = 0;
    let mut i = 0;
    while i < list.len() {
        mask |= 1 << list[i];
        i += 1;
    }
    mask
}

/// Leaf 1 ECX bits hidden (see the module header).
pub const LEAF1_ECX_HIDDEN: u32 = bits(&[3, 12, 17, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30]);
/// Leaf 7.0 EBX, ECX, EDX bits hidden.
pub const LEAF7_EBX_HIDDEN: u32 = bits(&[
    0, 3, 4, 5, 8, 10, 11, 16, 17, 18, 19, 20, 21, 26, 27, 28, 29, 30, 31,
]);
pub const LEAF7_ECX_HIDDEN: u32 = bits(&[1, 3, 4, 5, 6, 8, 9, 10, 11, 12, 14, 16, 22]);
pub const LEAF7_EDX_HIDDEN: u32 = bits(&[2, 3, 8, 14, 23]);
/// Leaf 0x8000_0001 ECX and EDX bits hidden.
pub const EXT1_ECX_HIDDEN: u32 = bits(&[5, 6, 11, 16, 21, 29]);
pub const EXT1_EDX_HIDDEN: u32 = bits(&[27]);

/// Linux's `X86_FEATURE_*` numbers (word * 32 + bit) that the command
/// line's `clearcpuid=` clears where ring 0 is emulated, each for an
/// instruction the kernel would run at ring 0 that the emulator fails on
/// (measured here: `xrstor` in the FPU set-up with XSAVE left on; the
/// others as the QEMU feasibility probe and `docs/platform.md` found). Clearing
/// XSAVE also clears AVX and everything built on it (cpuid-deps.c).
pub const LINUX_CLEARED: [(u32, &str); 7] = [
    (32 + 27, "rdtscp"),
    (4 * 32 + 23, "popcnt"),
    (4 * 32 + 26, "xsave"),
    (4 * 32 + 30, "rdrand"),
    (9 * 32, "fsgsbase"),
    (9 * 32 + 18, "rdseed"),
    (9 * 32 + 20, "smap"),
];

/// Leaf 0x15, "TSC and core crystal clock": the crystal is KVM's local
/// APIC timer clock, 1 GHz (one bus cycle per ns), and the TSC runs at
/// crystal × EBX / EAX. Linux 6.1 reads the TSC frequency from it
/// (`native_calibrate_tsc`, GenuineIntel only) instead of calibrating
/// against the PIT, which fails where ring 0 is emulated (the TSC is then
/// marked unstable and every `udelay` becomes an emulated spin loop), and
/// takes the crystal as the APIC timer's period, so the APIC timer is not
/// calibrated either.
pub const LEAF_TSC_CRYSTAL: u32 = 0x15;
const APIC_TIMER_HZ: u32 = 1_000_000_000;
const APIC_TIMER_KHZ: u64 = 1_000_000;

/// The leaf 0x15 entry for a TSC of `tsc_khz`. The kernel computes
/// `crystal_khz * EBX / EAX` in 32 bits, so EBX stays at most
/// `u32::MAX / crystal_khz` (4294): the ratio is the closest with that
/// numerator, within 0.03 % of `tsc_khz`.
pub fn tsc_leaf(tsc_khz: u32) -> kvm_cpuid_entry2 {
    let max_numerator = u64::from(u32::MAX) / APIC_TIMER_KHZ;
    let khz = u64::from(tsc_khz.max(1));
    // EAX / EBX = crystal / TSC; the largest EAX whose EBX fits.
    let denominator = (max_numerator * APIC_TIMER_KHZ / khz).max(1);
    let numerator =
        ((khz * denominator + APIC_TIMER_KHZ / 2) / APIC_TIMER_KHZ).clamp(1, max_numerator);
    kvm_cpuid_entry2 {
        function: LEAF_TSC_CRYSTAL,
        eax: u32::try_from(denominator).unwrap_or(u32::MAX),
        ebx: u32::try_from(numerator).unwrap_or(1),
        ecx: APIC_TIMER_HZ,
        ..Default::default()
    }
}

/// The CPUID table of vCPU `index` of a Linux guest on a `ring0` host
/// whose guest TSC runs at `tsc_khz` (0: unknown).
pub fn linux_cpuid(supported: &CpuId, index: u8, ring0: Ring0, tsc_khz: u32) -> CpuId {
    let cpuid = vcpu_cpuid(supported, index);
    if ring0 == Ring0::Hardware {
        return cpuid;
    }
    let mut entries: Vec<_> = cpuid
        .as_slice()
        .iter()
        .filter(|e| e.function != 0xd && e.function != LEAF_TSC_CRYSTAL)
        .map(|e| {
            let mut e = *e;
            match (e.function, e.index) {
                (0, _) => {
                    e.ebx = INTEL_EBX;
                    e.edx = INTEL_EDX;
                    e.ecx = INTEL_ECX;
                }
                (1, _) => e.ecx &= !LEAF1_ECX_HIDDEN,
                (7, 0) => {
                    e.ebx &= !LEAF7_EBX_HIDDEN;
                    e.ecx &= !LEAF7_ECX_HIDDEN;
                    e.edx &= !LEAF7_EDX_HIDDEN;
                }
                (0x8000_0001, _) => {
                    e.ecx &= !EXT1_ECX_HIDDEN;
                    e.edx &= !EXT1_EDX_HIDDEN;
                }
                _ => {}
            }
            e
        })
        .collect();
    let max_leaf = entries
        .iter()
        .find(|e| e.function == 0)
        .map_or(0, |e| e.eax);
    if tsc_khz != 0 && max_leaf >= LEAF_TSC_CRYSTAL {
        entries.push(tsc_leaf(tsc_khz));
    }
    // No more entries than KVM_GET_SUPPORTED_CPUID gave (leaf 0xD's
    // subleaves are gone), which fit: this cannot fail.
    CpuId::from_entries(&entries).unwrap_or(cpuid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host() -> CpuId {
        let e = |function, index, ebx, ecx, edx| kvm_cpuid_entry2 {
            function,
            index,
            ebx,
            ecx,
            edx,
            ..Default::default()
        };
        CpuId::from_entries(&[
            e(0, 0, u32::from_le_bytes(*b"Auth"), 0, 0),
            e(1, 0, 0, u32::MAX, u32::MAX),
            e(7, 0, u32::MAX, u32::MAX, u32::MAX),
            e(0xd, 0, 1, 1, 1),
            e(0x8000_0001, 0, 0, u32::MAX, u32::MAX),
        ])
        .unwrap()
    }

    #[test]
    fn emulated_hosts_get_intel_without_the_features_the_emulator_fails_on() {
        let c = linux_cpuid(&host(), 1, Ring0::Emulated, 0);
        let e = c.as_slice();
        assert_eq!(e.len(), 4, "leaf 0xD dropped");
        let vendor: Vec<u8> = [e[0].ebx, e[0].edx, e[0].ecx]
            .iter()
            .flat_map(|r| r.to_le_bytes())
            .collect();
        assert_eq!(vendor, b"GenuineIntel");
        assert_eq!(e[1].ecx & (1 << 23), 0, "POPCNT");
        assert_eq!(e[1].ecx & (1 << 26), 0, "XSAVE");
        assert_ne!(e[1].edx & (1 << 26), 0, "SSE2 stays");
        assert_eq!(e[1].ebx >> 24, 1, "APIC ID of vCPU 1");
        assert_eq!(e[2].ebx & (1 << 20), 0, "SMAP");
        assert_ne!(e[2].ebx & (1 << 7), 0, "SMEP stays");
        assert_eq!(e[3].edx & (1 << 27), 0, "RDTSCP");
        let numbers: Vec<u32> = LINUX_CLEARED.iter().map(|(n, _)| *n).collect();
        assert_eq!(numbers, [59, 151, 154, 158, 288, 306, 308]);
    }

    #[test]
    fn the_tsc_leaf_gives_the_frequency_without_32_bit_overflow() {
        for khz in [1_000_000u32, 2_596_098, 3_700_000, 800_000, 4_294_000] {
            let e = tsc_leaf(khz);
            // What Linux 6.1 computes, in its u32 arithmetic.
            let crystal_khz = e.ecx / 1000;
            let product = crystal_khz.checked_mul(e.ebx).expect("no overflow");
            let linux_khz = product / e.eax;
            let error = (f64::from(linux_khz) - f64::from(khz)).abs() / f64::from(khz);
            assert!(error < 3e-4, "{khz} kHz: Linux computes {linux_khz}");
        }
        let c = linux_cpuid(&host(), 0, Ring0::Emulated, 2_596_098);
        assert!(
            c.as_slice().iter().all(|e| e.function != LEAF_TSC_CRYSTAL),
            "max leaf 0 < 0x15"
        );
    }

    #[test]
    fn hardware_hosts_get_what_kvm_supports() {
        let c = linux_cpuid(&host(), 0, Ring0::Hardware, 2_000_000);
        assert_eq!(c.as_slice().len(), 5);
        assert_eq!(c.as_slice()[1].ecx, u32::MAX);
    }
}
