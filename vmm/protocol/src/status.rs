//! Exit statuses. `dmalab run` exits with the guest's own status (0–63,
//! written to the debug-exit port) or one of the VMM's (64 and up);
//! `dmalab campaign` exits 0, [`CAMPAIGN_FAILED`] or [`USAGE`]. The table
//! users read is in the README ("Exit statuses and error lines").

/// The guest reported success.
pub const PASS: u8 = 0;
/// The guest's scenario failed.
pub const GUEST_FAIL: u8 = 1;
/// A guest kernel exception (the guest prints an `EXCEPTION` line).
pub const GUEST_EXCEPTION: u8 = 3;
/// The Linux guest's kernel panicked: the harness's panic notifier printed
/// a `DMALAB-RESULT` line with the message and wrote this status
/// (`guest-driver/linux/harness/dmalab_harness.c`). The dmalab guest uses
/// 4–6 for statuses of its own.
pub const LINUX_PANIC: u8 = 7;
/// Highest status a guest can ask for.
pub const GUEST_MAX: u8 = 63;
/// Bad arguments, memory size, missing or non-ELF kernel, bad plan or
/// scenario file.
pub const USAGE: u8 = 64;
/// No /dev/kvm, no permission, or a KVM capability missing.
pub const KVM_UNAVAILABLE: u8 = 69;
/// Internal VMM error.
pub const INTERNAL: u8 = 70;
/// Guest triple fault (KVM_EXIT_SHUTDOWN).
pub const TRIPLE_FAULT: u8 = 71;
/// KVM internal error, e.g. an instruction the emulator cannot run.
pub const KVM_INTERNAL: u8 = 72;
/// Stopped by SIGINT (Ctrl-C) or SIGTERM: 128 + the signal's number, as a
/// shell reports it; the summary, `--trace` and `--report` are written
/// first and the control socket removed.
pub const SIGINT: u8 = 130;
pub const SIGTERM: u8 = 143;
/// The guest did not exit within `--timeout`.
pub const TIMEOUT: u8 = 73;

/// `dmalab campaign`: at least one scenario failed.
pub const CAMPAIGN_FAILED: u8 = GUEST_FAIL;

/// What a `dmalab run` exit status says went wrong outside the guest's
/// scenario, or `None` for a status the guest's scenario chose.
pub fn failure(code: i32) -> Option<&'static str> {
    let Ok(code) = u8::try_from(code) else {
        return Some("not a dmalab exit status");
    };
    Some(match code {
        GUEST_EXCEPTION => "guest exception",
        LINUX_PANIC => "Linux guest kernel panic",
        USAGE => "dmalab rejected the run's arguments",
        KVM_UNAVAILABLE => "KVM unavailable",
        INTERNAL => "VMM internal error",
        TRIPLE_FAULT => "guest triple fault",
        KVM_INTERNAL => "KVM internal error",
        TIMEOUT => "timeout: the guest did not exit",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vmm_statuses_are_failures_and_guest_statuses_are_not() {
        for code in [3, 7, 64, 69, 70, 71, 72, 73, -1, 300] {
            assert!(failure(code).is_some(), "{code}");
        }
        for code in [0, 1, 4, 5, 63] {
            assert_eq!(failure(code), None, "{code}");
        }
    }
}
