//! The one rule for tests that need /dev/kvm, shared by the VMM's in-crate
//! tests and the integration tests: when /dev/kvm cannot be opened
//! read-write, a test prints ONE line `SKIPPED: <test>: /dev/kvm unusable
//! (<reason>)` straight to fd 2 (the test harness captures `eprintln!`, so
//! it would be silent) and passes, unless `DMALAB_REQUIRE_KVM=1` or
//! `CI=true`, where it fails with the reason (CI runs on KVM runners).

use std::fs::OpenOptions;
use std::io::Write;

/// Whether a KVM test named `test` may run (see the module header).
pub fn kvm_usable(test: &str) -> bool {
    match OpenOptions::new().read(true).write(true).open("/dev/kvm") {
        Ok(_) => true,
        Err(e) => skip(test, &format!("/dev/kvm unusable ({e})")),
    }
}

/// The test running on this thread, as the test harness names it.
pub fn current_test() -> String {
    std::thread::current()
        .name()
        .unwrap_or("a KVM test")
        .to_string()
}

/// Skips `test` loudly, or panics where skipping is not allowed.
fn skip(test: &str, reason: &str) -> bool {
    if std::env::var("DMALAB_REQUIRE_KVM").as_deref() == Ok("1") {
        panic!("{test}: {reason}, and DMALAB_REQUIRE_KVM=1");
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{test}: {reason}, and CI=true (CI runs on KVM runners)");
    }
    let _ = writeln!(std::io::stderr(), "SKIPPED: {test}: {reason}");
    false
}
