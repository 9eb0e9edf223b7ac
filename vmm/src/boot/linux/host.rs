//! Whether this host's KVM runs guest ring-0 code in its instruction
//! emulator (`docs/platform.md`), which decides the Linux guest's CPUID
//! masking and the command-line parts only such hosts need.
//!
//! The test, in order:
//! 1. `DMALAB_RING0=emulated|hardware` in the environment decides (for a
//!    host the next two get wrong, and for tests);
//! 2. `/sys/module/kvm_pvm` exists: KVM's PVM backend, a software nested
//!    hypervisor, is loaded (this machine);
//! 3. the host CPU's flags in `/proc/cpuinfo` lack both `vmx` and `svm`:
//!    a working `/dev/kvm` without hardware virtualisation is a software
//!    one.
//!
//! Otherwise ring 0 runs on hardware (kvm_intel / kvm_amd).

use std::path::Path;

/// How guest ring-0 code runs on this host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ring0 {
    /// Hardware virtualisation (VMX or SVM): a stock kernel runs as is.
    Hardware,
    /// KVM's instruction emulator runs it: the Linux guest gets the
    /// workarounds of `docs/linux-guest.md`.
    Emulated,
}

/// The environment variable that overrides the detection.
pub const OVERRIDE_VAR: &str = "DMALAB_RING0";

impl Ring0 {
    /// Detects this host (see the module header).
    pub fn detect() -> Self {
        if let Some(forced) = std::env::var(OVERRIDE_VAR)
            .ok()
            .and_then(|v| Self::parse(&v))
        {
            return forced;
        }
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        Self::decide(Path::new("/sys/module/kvm_pvm").exists(), &cpuinfo)
    }

    /// `emulated` or `hardware`.
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim() {
            "emulated" => Some(Self::Emulated),
            "hardware" => Some(Self::Hardware),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Hardware => "hardware",
            Self::Emulated => "emulated",
        }
    }

    fn decide(pvm_loaded: bool, cpuinfo: &str) -> Self {
        if pvm_loaded {
            return Self::Emulated;
        }
        let flags = cpuinfo
            .lines()
            .find(|l| l.starts_with("flags"))
            .and_then(|l| l.split_once(':'))
            .map_or("", |(_, f)| f);
        if flags.split_whitespace().any(|f| f == "vmx" || f == "svm") {
            Self::Hardware
        } else {
            Self::Emulated
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pvm_or_missing_vmx_svm_means_emulated() {
        let amd = "processor\t: 0\nflags\t\t: fpu sse2 svm lm\n";
        let intel = "flags\t\t: fpu vmx lm\n";
        let plain = "flags\t\t: fpu sse2 hypervisor lm\n";
        assert_eq!(Ring0::decide(false, amd), Ring0::Hardware);
        assert_eq!(Ring0::decide(false, intel), Ring0::Hardware);
        assert_eq!(Ring0::decide(false, plain), Ring0::Emulated);
        assert_eq!(Ring0::decide(true, amd), Ring0::Emulated);
        assert_eq!(Ring0::decide(false, ""), Ring0::Emulated);
        assert_eq!(Ring0::parse(" hardware\n"), Some(Ring0::Hardware));
        assert_eq!(Ring0::parse("fast"), None);
    }
}
