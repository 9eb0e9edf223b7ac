//! The Linux guest's command line: the VMM's defaults, then `--cmdline`
//! (appended, so a word given there wins where the kernel takes the last
//! value, as it does for `console=`, `lpj=` and `clearcpuid=`).
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
//! - `lpj=` — the guest TSC's cycles per jiffy (KVM's TSC frequency over
//!   the image's `HZ=250`), so the delay loop is not calibrated by emulated
//!   spinning (a kernel with another HZ gets delays off by the ratio);
//! - `rodata=off` — write-protecting kernel data splits the direct map
//!   page by page at ring 0 (seconds here);
//! - `mitigations=off` — a GenuineIntel CPUID of unknown model makes the
//!   kernel assume every speculation bug and add work to each entry.

use super::cpuid::LINUX_CLEARED;
use super::host::Ring0;

/// On every host.
pub const CONSOLE: &str = "console=ttyS0";

/// The early parameter of the guest image's patch that skips
/// `int3_selftest()`.
pub const SKIP_INT3_SELFTEST: &str = "int3_selftest=off";

/// `CONFIG_HZ` of the guest image (`images/linux/`), which `lpj=` is
/// computed for.
pub const GUEST_HZ: u64 = 250;

/// The longest `lpj=` word (`u64::MAX` digits), for checking the length of
/// a command line before the TSC frequency is known.
pub const LPJ_WORD_MAX: usize = "lpj=".len() + 20 + 1;

/// The VMM's part of the command line on a `ring0` host, without `lpj=`
/// (see [`lpj_word`]).
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

/// `lpj=N` for a TSC of `tsc_khz` on an emulated host; None elsewhere or
/// when the frequency is unknown.
pub fn lpj_word(ring0: Ring0, tsc_khz: u32) -> Option<String> {
    if ring0 != Ring0::Emulated || tsc_khz == 0 {
        return None;
    }
    Some(format!("lpj={}", u64::from(tsc_khz) * 1000 / GUEST_HZ))
}

/// The full command line: `defaults`, `lpj`, then the user's words.
pub fn compose(defaults: &[String], lpj: Option<&str>, user: &str) -> String {
    let mut words: Vec<&str> = defaults.iter().map(String::as_str).collect();
    words.extend(lpj);
    words.extend(user.split_whitespace());
    words.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hardware_hosts_get_only_the_console() {
        let d = defaults(Ring0::Hardware);
        assert_eq!(compose(&d, None, " quiet  "), "console=ttyS0 quiet");
        assert_eq!(lpj_word(Ring0::Hardware, 2_000_000), None);
    }

    #[test]
    fn emulated_hosts_get_the_workarounds_then_the_user_words() {
        let d = defaults(Ring0::Emulated);
        let lpj = lpj_word(Ring0::Emulated, 2_450_000).unwrap();
        assert_eq!(lpj, "lpj=9800000");
        assert!(lpj.len() <= LPJ_WORD_MAX);
        let line = compose(&d, Some(&lpj), "dmatest.iterations=5");
        assert_eq!(
            line,
            "console=ttyS0 clearcpuid=59,151,154,158,288,306,308 int3_selftest=off rodata=off \
             mitigations=off lpj=9800000 dmatest.iterations=5"
        );
        assert_eq!(lpj_word(Ring0::Emulated, 0), None);
    }
}
