//! The Linux guest on KVM: `images/linux/build.sh` builds the kernel
//! (Debian's linux-source-6.1 with the dmaengine driver, dmatest, KUnit and
//! the in-guest harness built in; the last line it prints is the vmlinux
//! path), once per test binary, and each test boots it with
//! `dmalab run --kernel <vmlinux>`, with or without a fault plan, and reads
//! the harness's `DMALAB-RESULT` line (typed: `dmalab_protocol::linux`)
//! and the VMM's `--report`.
//!
//! The boots take the whole machine's attention where ring 0 is emulated
//! (~15 s each on a quiet host), so they run one at a time. `DMALAB_LINUX_VMLINUX=PATH`
//! boots a kernel built elsewhere instead of running the build script.
//! Without /dev/kvm every test prints a SKIPPED line (a failure under
//! `DMALAB_REQUIRE_KVM=1` or `CI=true`).

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use dmalab_protocol::linux::{Dmatest, Kunit, LinuxResult, PANIC_ERROR};
use dmalab_protocol::report::RunReport;
use dmalab_protocol::status;

use common::{kvm_usable, run_dmalab, Run, Scratch};

/// A hard limit per boot. A boot takes ~15 s on a quiet 2-core host with
/// an emulated ring 0, and up to ~100 s measured with the load average at
/// 12 (other builds).
const LIMIT: Duration = Duration::from_secs(300);
/// `--timeout` of the VMM (the kernel ends itself well before).
const VM_TIMEOUT: &str = "240";

/// Only one Linux VM at a time.
static ONE_VM: Mutex<()> = Mutex::new(());

/// The vmlinux to boot: built (or found in the cache) by
/// `images/linux/build.sh`, once for every test of this binary.
fn vmlinux() -> PathBuf {
    static IMAGE: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    IMAGE
        .get_or_init(|| {
            if let Some(path) = std::env::var_os("DMALAB_LINUX_VMLINUX") {
                return Ok(PathBuf::from(path));
            }
            let script =
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../images/linux/build.sh");
            let out = Command::new(&script)
                .output()
                .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
            let stdout = String::from_utf8_lossy(&out.stdout);
            if !out.status.success() {
                return Err(format!(
                    "{} failed ({}):\n{stdout}\n{}",
                    script.display(),
                    out.status,
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
            let path = stdout.lines().last().unwrap_or_default().trim();
            Ok(PathBuf::from(path))
        })
        .clone()
        .unwrap_or_else(|e| panic!("the Linux guest image: {e}"))
}

/// One boot of the Linux guest and what it reported.
struct Boot {
    run: Run,
    /// The harness's DMALAB-RESULT line.
    result: LinuxResult,
    /// The VMM's --report.
    report: Option<RunReport>,
}

impl Boot {
    /// A driver counter (`dmalab_protocol::linux::COUNTERS`).
    fn counter(&self, name: &str) -> u64 {
        self.result
            .counter(name)
            .unwrap_or_else(|| panic!("no counter {name} in the result\n{}", self.run))
    }

    fn dmatest(&self) -> &Dmatest {
        self.result
            .dmatest
            .as_ref()
            .unwrap_or_else(|| panic!("no dmatest totals in the result\n{}", self.run))
    }

    fn kunit(&self) -> &Kunit {
        self.result
            .kunit
            .as_ref()
            .unwrap_or_else(|| panic!("no KUnit totals in the result\n{}", self.run))
    }

    /// Sequence numbers of the descriptors the device applied `kind` to.
    fn faults(&self, kind: &str) -> Vec<u64> {
        self.report
            .as_ref()
            .map(|r| r.faults(kind).to_vec())
            .unwrap_or_default()
    }

    /// No oops, no BUG, no panic and no KVM trouble on the console.
    fn assert_no_oops(&self) {
        for bad in [
            "Oops",
            "BUG:",
            "Kernel panic",
            "WARNING:",
            "general protection",
        ] {
            assert!(!self.run.stdout.contains(bad), "{bad:?}\n{}", self.run);
        }
    }
}

/// Boots the image with `plan` (a file under tests/plans/ or a path) and
/// extra command-line words; `--timing instant`, seed `seed`.
fn boot(test: &str, plan: Option<PathBuf>, seed: u64, cmdline: &str) -> Boot {
    let image = vmlinux();
    let _one = ONE_VM.lock().unwrap_or_else(|e| e.into_inner());
    let scratch = Scratch::new(test);
    let report = scratch.path().join("report.json");
    let mut args: Vec<String> = vec![
        "run".into(),
        "--kernel".into(),
        image.display().to_string(),
        "--timing".into(),
        "instant".into(),
        "--seed".into(),
        seed.to_string(),
        "--timeout".into(),
        VM_TIMEOUT.into(),
        "--cmdline".into(),
        cmdline.into(),
        "--report".into(),
        report.display().to_string(),
    ];
    if let Some(plan) = plan {
        args.push("--faults".into());
        args.push(plan.display().to_string());
    }
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = run_dmalab(&argv, LIMIT);
    let result = match LinuxResult::from_console(&run.stdout) {
        Some(Ok(result)) => result,
        Some(Err(e)) => panic!("bad result line ({e})\n{run}"),
        None => panic!("no DMALAB-RESULT line\n{run}"),
    };
    let report = std::fs::read_to_string(&report)
        .ok()
        .and_then(|t| RunReport::from_json(&t).ok());
    Boot {
        run,
        result,
        report,
    }
}

fn plan(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/plans")
        .join(format!("{name}.toml"))
}

/// Fault runs leave KUnit out: its cases would meet the plan's faults.
const NO_KUNIT: &str = "dmalab.kunit=";

/// dmatest ran on all four channels, each with transfers that all
/// finished, and the sum of its failures is what the result says.
fn assert_dmatest_ran(b: &Boot) {
    let d = b.dmatest();
    assert_eq!(d.channels.len(), 4, "{}", b.run);
    for c in &d.channels {
        assert!(c.tests > 0, "{c:?}\n{}", b.run);
        assert!(c.finished, "{c:?}\n{}", b.run);
    }
    let failures: u32 = d.channels.iter().map(|c| c.failures).sum();
    assert_eq!(failures, d.failures, "{}", b.run);
}

#[test]
fn linux_boots_and_dmatest_and_kunit_pass() {
    let test = "linux_boots_and_dmatest_and_kunit_pass";
    if !kvm_usable(test) {
        return;
    }
    let b = boot(test, None, 0, "");
    assert_eq!(b.run.code(), 0, "{}", b.run);
    assert!(b.result.passed(), "{}", b.run);
    assert_dmatest_ran(&b);
    assert_eq!(b.dmatest().failures, 0, "{}", b.run);
    assert!(b.kunit().cases > 0, "{}", b.run);
    assert_eq!(b.kunit().failed, 0, "{}", b.run);
    assert_eq!(b.result.controllers, Some(1), "{}", b.run);
    assert!(b.counter("interrupts") > 0, "{}", b.run);
    assert!(b.counter("completions") > 0, "{}", b.run);
    b.assert_no_oops();
}

#[test]
fn a_dropped_interrupt_is_recovered_by_the_watchdog() {
    let test = "a_dropped_interrupt_is_recovered_by_the_watchdog";
    if !kvm_usable(test) {
        return;
    }
    let b = boot(test, Some(plan("lost-interrupt")), 1, NO_KUNIT);
    assert_eq!(b.faults("drop-interrupt"), [3], "{}", b.run);
    assert_eq!(b.run.code(), 0, "{}", b.run);
    assert_dmatest_ran(&b);
    assert_eq!(b.dmatest().failures, 0, "{}", b.run);
    assert!(b.counter("watchdog_recoveries") >= 1, "{}", b.run);
    assert_eq!(b.counter("errors_reported"), 0, "{}", b.run);
    b.assert_no_oops();
}

#[test]
fn a_fatal_dma_error_fails_the_transfer_it_hits() {
    let test = "a_fatal_dma_error_fails_the_transfer_it_hits";
    if !kvm_usable(test) {
        return;
    }
    let b = boot(test, Some(plan("dma-error-fatal")), 1, NO_KUNIT);
    assert_eq!(b.faults("dma-error"), [2], "{}", b.run);
    // The harness reports the failed transfer and ends the VM itself.
    assert_eq!(b.run.code(), i32::from(status::GUEST_FAIL), "{}", b.run);
    assert!(!b.result.passed(), "{}", b.run);
    assert_dmatest_ran(&b);
    assert!(b.dmatest().failures >= 1, "{}", b.run);
    assert!(b.counter("errors_reported") >= 1, "{}", b.run);
    assert!(b.counter("resets") >= 1, "{}", b.run);
    b.assert_no_oops();
}

#[test]
fn a_hung_channel_is_reset_and_the_transfer_retried() {
    let test = "a_hung_channel_is_reset_and_the_transfer_retried";
    if !kvm_usable(test) {
        return;
    }
    let b = boot(test, Some(plan("hang")), 1, NO_KUNIT);
    assert_eq!(b.faults("hang"), [2], "{}", b.run);
    assert_eq!(b.run.code(), 0, "{}", b.run);
    assert_dmatest_ran(&b);
    assert_eq!(b.dmatest().failures, 0, "{}", b.run);
    assert!(b.counter("resets") >= 1, "{}", b.run);
    assert!(b.counter("retries") >= 1, "{}", b.run);
    b.assert_no_oops();
}

/// The device disappears at the 5th descriptor.
const SURPRISE_REMOVAL: &str =
    "[[rule]]\nname = \"yanked\"\neffect = \"surprise-removal\"\nnth = 5\n";

#[test]
fn surprise_removal_fails_outstanding_transfers_and_the_vm_exits() {
    let test = "surprise_removal_fails_outstanding_transfers_and_the_vm_exits";
    if !kvm_usable(test) {
        return;
    }
    let scratch = Scratch::new("linux-surprise-plan");
    let plan = scratch.file("surprise.toml", SURPRISE_REMOVAL.as_bytes());
    let b = boot(test, Some(plan), 1, NO_KUNIT);
    assert_eq!(b.faults("surprise-removal"), [5], "{}", b.run);
    // Ended by the harness through the debug-exit port: not a timeout.
    assert_eq!(b.run.code(), i32::from(status::GUEST_FAIL), "{}", b.run);
    assert!(!b.result.passed(), "{}", b.run);
    assert!(b.dmatest().failures >= 1, "{}", b.run);
    assert!(b.counter("errors_reported") >= 1, "{}", b.run);
    b.assert_no_oops();
}

/// A plan of random drops: about one interrupt in five.
const RANDOM_DROPS: &str =
    "[[rule]]\nname = \"flaky\"\neffect = \"drop-interrupt\"\nprobability = 0.2\nmax_times = 6\n";

#[test]
fn the_same_seed_gives_the_same_fault_log() {
    let test = "the_same_seed_gives_the_same_fault_log";
    if !kvm_usable(test) {
        return;
    }
    let scratch = Scratch::new("linux-seed-plan");
    let plan = scratch.file("random.toml", RANDOM_DROPS.as_bytes());
    let first = boot(test, Some(plan.clone()), 42, NO_KUNIT);
    let second = boot(test, Some(plan), 42, NO_KUNIT);
    let log = |b: &Boot| b.report.as_ref().map(|r| r.device.faults.clone());
    assert!(!first.faults("drop-interrupt").is_empty(), "{}", first.run);
    assert_eq!(log(&first), log(&second), "{}\n{}", first.run, second.run);
    for b in [&first, &second] {
        assert_eq!(b.run.code(), 0, "{}", b.run);
        b.assert_no_oops();
    }
}

#[test]
fn a_kernel_panic_ends_the_run_at_once_with_its_message() {
    let test = "a_kernel_panic_ends_the_run_at_once_with_its_message";
    if !kvm_usable(test) {
        return;
    }
    let b = boot(test, None, 0, "dmalab.test_panic=1");
    assert_eq!(b.run.code(), i32::from(status::LINUX_PANIC), "{}", b.run);
    let message = "dmalab.test_panic=1: a panic on purpose";
    assert!(
        b.run
            .stdout
            .contains(&format!("Kernel panic - not syncing: {message}")),
        "{}",
        b.run
    );
    assert!(!b.result.passed(), "{}", b.run);
    assert_eq!(b.result.error.as_deref(), Some(PANIC_ERROR), "{}", b.run);
    // Exit 7 came through the debug-exit port: a panic that spun would
    // have ended at --timeout with 73.
    assert_eq!(b.result.panic.as_deref(), Some(message), "{}", b.run);
}
