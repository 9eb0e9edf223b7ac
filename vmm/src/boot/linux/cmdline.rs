//! The Linux guest's command line: the VMM's defaults, then `--cmdline`
//! (appended, so a word given there wins where the kernel takes the last
//! value, as it does for `console=` and `clearcpuid=`).
//!
//! Every host: `console=ttyS0` (COM1, which dmalab's stdout shows).
//!
//! Only where ring 0 is emulated (`host.rs`), each part earning its place
//! by a measured failure or cost on such a host (`docs/linux-guest.md`):
//! - `clearcpuid=59,151,154,158,288,306,308` (RDTSCP, POPCNT, XSAVE,
//!   RDRAND, FSGSBASE, RDSEED, SMAP by number: `X86_FEATURE_NAMES` is off
//!   in small configurations) — the CPUID table hides them too
//!   (`cpuid.rs`), but this platform's KVM shows the host's feature bits
//!   whatever the table says;
//! - `int3_selftest=off` — the guest image's patch skips
//!   `int3_selftest()`, whose `int3` the emulator cannot run (an unknown
//!   parameter is harmless on other kernels);
//! - `rodata=off` — write-protecting kernel data splits the direct map
//!   page by page at ring 0 (seconds here);
//! - `mitigations=off` — a GenuineIntel CPUID of unknown model makes the
//!   kernel assume every speculation bug and add work to each entry.
//!
//! No `lpj=`: the TSC frequency in CPUID leaf 0x15 (`cpuid.rs`) gives the
//! kernel its delay-loop value without calibration ("Calibrating delay loop
//! (skipped), value calculated using timer frequency"), for any `HZ`.

use super::cpuid::LINUX_CLEARED;
use super::host::Ring0;

/// On every host.
pub const CONSOLE: &str = "console=ttyS0";

/// The early parameter of the guest image's patch that skips
/// `int3_selftest()`.
pub const SKIP_INT3_SELFTEST: &str = "int3_selftest=off";

/// The VMM's part of the command line on a `ring0` host.
pub fn defaults(ring0: Ring0) -> Vec<String> {
    let mut words = vec![CONSOLE.to_string()];
    if ring0 == Ring0::Emulated {
        let numbers: Vec<String> = LINUX_CLEARED.iter().map(|(n, _)| n.to_string()).collect();
        words.push(format!("clearcpuid={}", numbers.join(",")));
        words.push(SKIP_INT3_SELFTEST.to_string());
        words.push("rodata=off".to_string());
        words.push("mitigations=off".to_string());
    }
    words
}

/// The full command line: `defaults`, then the user's words.
pub fn compose(defaults: &[String], user: &str) -> String {
    let mut words: Vec<&str> = defaults.iter().map(String::as_str).collect();
    words.extend(user.split_whitespace());
    words.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hardware_hosts_get_only_the_console() {
        let d = defaults(Ring0::Hardware);
        assert_eq!(compose(&d, " quiet  "), "console=ttyS0 quiet");
    }

    #[test]
    fn emulated_hosts_get_the_workarounds_then_the_user_words() {
        let d = defaults(Ring0::Emulated);
        let line = compose(&d, "dmatest.iterations=5");
        assert_eq!(
            line,
            "console=ttyS0 clearcpuid=59,151,154,158,288,306,308 int3_selftest=off rodata=off \
             mitigations=off dmatest.iterations=5"
        );
    }
}
