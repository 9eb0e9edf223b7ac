//! The WDM-style DMA driver (`guest-driver/kernel/dmadrv/`) on KVM, where
//! a campaign scenario (`tests/scenarios/`, judged by the oracle) cannot
//! say it: the device's counters against the driver's, inequalities on
//! counters that depend on timing, the verifier's catches of planted bugs
//! and a bad command line, cancellation, and the driver's markers in the
//! device trace. The driver's behaviour under each fault kind is in the
//! scenarios. Each test boots the built-in guest with one of the driver's
//! scenarios and, where needed, a fault plan from `tests/plans/`. `--timing instant` keeps them fast and
//! deterministic, except where a fault needs real device time (a latency
//! spike): there `realtime`.
//!
//! Every run must end with every request ended exactly once
//! (`counts_agree`, nothing lost), the data of every successful request
//! verified at CPL3, and no verifier violation, unless a test says
//! otherwise.

mod common;
#[path = "common/scenario.rs"]
mod scenario;

use std::time::Duration;

use common::kvm_usable;
use scenario::{run_scenario, ScenarioRun};

const LIMIT: Duration = Duration::from_secs(120);

fn run(test: &str, scenario: &str, plan: Option<&str>, timing: &str, cmdline: &str) -> ScenarioRun {
    run_scenario(test, scenario, plan, timing, cmdline, LIMIT)
}

/// Every request ended once, the counts agree, nothing is wrong.
fn assert_clean(r: &ScenarioRun, exit: i32) {
    assert_eq!(r.run.code(), exit, "{}", r.run);
    assert!(r.flag("counts_agree"), "{}", r.run);
    for field in [
        "lost",
        "bad_overlapped",
        "bad_data",
        "bad_info",
        "violations",
    ] {
        assert_eq!(r.num(field), 0, "{field}\n{}", r.run);
    }
    assert_eq!(
        r.num("requests"),
        r.num("ok") + r.num("failed"),
        "{}",
        r.run
    );
}

#[test]
fn copy_multi_transfer_irps_are_reprogrammed_by_the_dpc() {
    let test = "copy_multi_transfer_irps_are_reprogrammed_by_the_dpc";
    if !kvm_usable(test) {
        return;
    }
    let r = run(test, "copy", None, "instant", "");
    assert_clean(&r, 0);
    assert_eq!(r.text("status"), "pass", "{}", r.run);
    assert_eq!(r.num("ok"), 64, "{}", r.run);
    assert!(r.num("multi_transfer_requests") > 0, "{}", r.run);
    // More descriptors than IRPs: the DpcForIsr posted the later ones.
    assert_eq!(
        r.num("transfers"),
        r.num("drv_irps") + r.num("reprograms"),
        "{}",
        r.run
    );
    assert!(r.num("reprograms") > 0, "{}", r.run);
    assert_eq!(r.report.device.descriptors, r.num("transfers"), "{}", r.run);
    for field in [
        "retries",
        "resets",
        "watchdog_recoveries",
        "watchdog_timeouts",
        "irps_failed",
    ] {
        assert_eq!(r.num(field), 0, "{field}\n{}", r.run);
    }
}

#[test]
fn the_next_irp_is_started_from_the_dpc() {
    let test = "the_next_irp_is_started_from_the_dpc";
    if !kvm_usable(test) {
        return;
    }
    // A slow device (2 ms per descriptor): IRPs queue behind StartIo.
    let r = run(test, "stress", Some("slow-device"), "realtime", "irps=96");
    assert_clean(&r, 0);
    assert_eq!(r.num("ok"), 96, "{}", r.run);
    assert!(r.num("started_from_dpc") > 0, "{}", r.run);
    assert!(r.num("max_inflight") > 1, "{}", r.run);
    assert!(r.num("irps_max_outstanding") > 1, "{}", r.run);
}

#[test]
fn stress_and_fill_pass_on_every_channel() {
    let test = "stress_and_fill_pass_on_every_channel";
    if !kvm_usable(test) {
        return;
    }
    let r = run(test, "stress", None, "instant", "");
    assert_clean(&r, 0);
    assert_eq!(r.num("ok"), 400, "{}", r.run);
    let r = run(test, "fill", None, "instant", "");
    assert_clean(&r, 0);
    assert_eq!(r.num("ok"), 48, "{}", r.run);
}

#[test]
fn the_verifier_catches_a_double_completion() {
    let test = "the_verifier_catches_a_double_completion";
    if !kvm_usable(test) {
        return;
    }
    let cmd = "dmadrv.bug=double-complete irps=4";
    let r = run(test, "copy", None, "instant", cmd);
    assert_eq!(r.run.code(), 0, "{}", r.run);
    assert!(
        r.run.stdout.contains("VERIFIER: IRP completed twice"),
        "{}",
        r.run
    );
    assert!(r.run.stdout.contains("by dmadrv_dpc_for_isr"), "{}", r.run);
    assert!(r.num("v_irp_double_complete") > 0, "{}", r.run);
    let strict = run(
        test,
        "copy",
        None,
        "instant",
        &format!("{cmd} verifier=strict"),
    );
    assert_eq!(strict.run.code(), 1, "{}", strict.run);
    assert_eq!(strict.text("status"), "fail", "{}", strict.run);
}

#[test]
fn the_verifier_catches_a_passive_only_call_at_dispatch_level() {
    let test = "the_verifier_catches_a_passive_only_call_at_dispatch_level";
    if !kvm_usable(test) {
        return;
    }
    let cmd = "dmadrv.bug=irql irps=4";
    let r = run(test, "copy", None, "instant", cmd);
    assert_eq!(r.run.code(), 0, "{}", r.run);
    assert!(
        r.run.stdout.contains(
            "VERIFIER: KeWaitForSingleObject called at IRQL 2 (max 1) by dmadrv_dpc_for_isr"
        ),
        "{}",
        r.run
    );
    assert!(r.num("v_irql") > 0, "{}", r.run);
    let strict = run(
        test,
        "copy",
        None,
        "instant",
        &format!("{cmd} verifier=strict"),
    );
    assert_eq!(strict.run.code(), 1, "{}", strict.run);
}

#[test]
fn a_clean_run_reports_no_violation_and_a_bad_bug_name_fails() {
    let test = "a_clean_run_reports_no_violation_and_a_bad_bug_name_fails";
    if !kvm_usable(test) {
        return;
    }
    let r = run(test, "copy", None, "instant", "irps=4 verifier=strict");
    assert_clean(&r, 0);
    assert!(r.flag("strict"), "{}", r.run);
    let bad = run(test, "copy", None, "instant", "dmadrv.bug=nonsense");
    assert_eq!(bad.run.code(), 1, "{}", bad.run);
    assert!(bad.run.stdout.contains("unknown dmadrv.bug"), "{}", bad.run);
}

#[test]
fn queued_irps_are_cancelled_and_the_one_in_the_device_finishes() {
    let test = "queued_irps_are_cancelled_and_the_one_in_the_device_finishes";
    if !kvm_usable(test) {
        return;
    }
    // A slow device keeps IRPs queued behind StartIo; every 5th request
    // still pending is cancelled (CancelIoEx) right after submission.
    let r = run(
        test,
        "stress",
        Some("slow-device"),
        "realtime",
        "irps=96 cancel_every=5",
    );
    assert_clean(&r, 0);
    let calls = r.num("cancel_calls");
    let hits = r.num("cancel_hits");
    assert!(calls > 0 && hits > 0, "{}", r.run);
    // A cancel that found the routine ended its IRP STATUS_CANCELLED
    // through the driver's cancel routine; the others finished normally.
    assert_eq!(r.num("cancelled"), hits, "{}", r.run);
    assert_eq!(r.num("irps_cancelled_queued"), hits, "{}", r.run);
    assert_eq!(r.num("failed"), hits, "{}", r.run);
    assert_eq!(r.num("ok"), 96 - hits, "{}", r.run);
    assert_eq!(r.num("irps_failed"), 0, "{}", r.run);
}

#[test]
fn markers_put_the_driver_timeline_in_the_device_trace() {
    let test = "markers_put_the_driver_timeline_in_the_device_trace";
    if !kvm_usable(test) {
        return;
    }
    let scratch = common::Scratch::new(test);
    let trace = scratch.path().join("trace.json");
    let plan = scenario::plan("demo");
    let run = common::run_dmalab(
        &[
            "run",
            "--scenario",
            "demo",
            "--timing",
            "instant",
            "--faults",
            plan.to_str().expect("utf-8 path"),
            "--trace",
            trace.to_str().expect("utf-8 path"),
        ],
        LIMIT,
    );
    assert_eq!(run.code(), 0, "{run}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&trace).expect("trace file"))
            .expect("trace JSON");
    let count = |name: &str| {
        json["traceEvents"]
            .as_array()
            .map_or(0, |a| a.iter().filter(|e| e["name"] == name).count())
    };
    let irp_ends = json["traceEvents"].as_array().map_or(0, |a| {
        a.iter()
            .filter(|e| e["cat"] == "irp" && e["ph"] == "e")
            .count()
    });
    // 8 requests, 15 transfers, one interrupt dropped (descriptor 3).
    assert_eq!(irp_ends, 8, "{run}");
    assert_eq!(count("ISR"), 14, "{run}");
    assert_eq!(count("DpcForIsr"), 14, "{run}");
    assert!(count("timer DPC") >= 1, "{run}");
}

/// A run that times out says where the driver was: the guest's state
/// block read by the VMM (each CPU's IRQL and routine, IRPs outstanding).
/// Stepped time with no client: the driver's requests never complete,
/// and its watchdog DPC keeps trying to reset the channel.
#[test]
fn a_timeout_says_where_the_driver_was() {
    if !kvm_usable("a_timeout_says_where_the_driver_was") {
        return;
    }
    let run = common::run_dmalab(
        &[
            "run",
            "--scenario",
            "copy",
            "--timing",
            "stepped",
            "--timeout",
            "2",
        ],
        LIMIT,
    );
    assert_eq!(run.code(), 73, "{run}");
    let state = run
        .stderr
        .lines()
        .find_map(|l| l.strip_prefix("dmalab: guest state: "))
        .unwrap_or_else(|| panic!("no guest state line\n{run}"));
    let (irps, cpus) = state
        .split_once(" IRPs outstanding; ")
        .expect("IRPs, then CPUs");
    let irps: u32 = irps.parse().expect("a count");
    assert!(
        irps >= 1,
        "requests were posted and never completed: {state}"
    );
    assert!(
        cpus.starts_with("cpu0 at ") && cpus.contains("_LEVEL"),
        "{state}"
    );
}
