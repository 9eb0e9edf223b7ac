//! Unit tests of `oracle.rs`: each invariant caught on a result line.

use super::*;
use crate::scenario::Scenario;
use serde_json::json;
use std::path::Path;

fn scenario(expect: &str) -> Scenario {
    let text = format!("workload = \"copy\"\n[expect]\n{expect}");
    Scenario::parse(&text, Path::new("t.toml"), "t").unwrap()
}

/// The result line of `copy irps=4` with one dropped interrupt.
fn clean_result() -> Value {
    json!({
        "status": "pass", "requests": 4, "ok": 4, "failed": 0, "bad_data": 0,
        "bad_info": 0, "lost": 0, "bad_overlapped": 0, "counts_agree": true,
        "violations": 0, "drv_irps": 4, "transfers": 10, "reprograms": 6, "retries": 0,
        "resets": 0, "watchdog_recoveries": 0, "watchdog_timeouts": 0,
        "short_transfers": 0, "rec_short": 0, "rec_err_dma": 0, "rec_err_fetch": 0,
        "rec_err_halted": 0, "rec_err_other": 0, "irps_failed": 0, "fail_hw": 0,
        "fail_io": 0, "fail_timeout": 0, "fail_removed": 0, "fail_param": 0,
    })
}

/// An outcome whose device dropped the interrupts the plan dropped.
fn outcome(exit: i32, result: Value, faults: Value) -> Outcome {
    let mut report = RunReport {
        exit_status: u8::try_from(exit).unwrap(),
        result: Some(ResultLine::parse(&result.to_string())),
        ..RunReport::default()
    };
    report.device.faults = serde_json::from_value(faults).unwrap();
    report.device.fault_counts = report
        .device
        .faults
        .iter()
        .map(|(kind, seqs)| (kind.clone(), seqs.len() as u64))
        .collect();
    report.device.interrupts_dropped = report.faults("drop-interrupt").len() as u64;
    Outcome {
        exit: Some(exit),
        console: String::new(),
        stderr: String::new(),
        report: Some(report),
    }
}

#[test]
fn a_clean_run_passes_and_expectations_are_checked() {
    let s = scenario(
        "fields = { watchdog_recoveries = 1 }\nfaults = { \"drop-interrupt\" = 1 }\n\
         relations = [\"watchdog_recoveries == faults.drop-interrupt\"]\n",
    );
    let mut r = clean_result();
    r["watchdog_recoveries"] = json!(1);
    let o = outcome(0, r.clone(), json!({ "drop-interrupt": [3] }));
    assert_eq!(check(&s, &o), Vec::<String>::new());
    let o = outcome(0, r, json!({ "drop-interrupt": [3, 5] }));
    let bad = check(&s, &o);
    assert_eq!(bad.len(), 2, "{bad:?}");
    assert!(
        bad[0].contains("faults.drop-interrupt = 2, expected 1"),
        "{bad:?}"
    );
    assert!(bad[1].contains("relation watchdog_recoveries == faults.drop-interrupt fails"));
}

#[test]
fn universal_invariants_catch_each_breach() {
    let s = scenario("");
    let with = |key: &str, v: Value| {
        let mut r = clean_result();
        r[key] = v;
        check(&s, &outcome(0, r, json!({})))
    };
    assert!(with("lost", json!(1))[0].contains("never ended"));
    assert!(with("counts_agree", json!(false))[0].contains("counts disagree"));
    assert!(with("violations", json!(2))[0].contains("verifier violation"));
    assert!(with("ok", json!(3))[0].contains("requests (4) != ok + failed"));
    let bad = with("bad_data", json!(1));
    assert!(
        bad.iter()
            .any(|b| b.contains("without an injected corruption")),
        "{bad:?}"
    );
    let bad = with("irps_failed", json!(1));
    assert!(
        bad[0].starts_with("irps_failed = 1 but none of faults.dma-error + "),
        "{bad:?}"
    );
    assert!(bad[1].contains("irps_failed (1) != fail_hw + "), "{bad:?}");
    let bad = with("fail_removed", json!(1));
    assert!(
        bad[0].contains("fail_removed = 1 but none of faults.surprise-removal"),
        "{bad:?}"
    );
    let bad = with("transfers", json!(11));
    assert!(
        bad[0].contains("transfers (11) != drv_irps + reprograms + retries (10)"),
        "{bad:?}"
    );
    let bad = with("watchdog_recoveries", json!(1));
    assert!(
        bad[0].contains("watchdog_recoveries <= faults.drop-interrupt"),
        "{bad:?}"
    );
    assert!(bad[1].contains("device dropped (0)"), "{bad:?}");
    assert!(
        with("short_transfers", json!(1))[0].contains("short_transfers <= faults.short-transfer")
    );
    let o = Outcome {
        exit: Some(3),
        console: "EXCEPTION #PF vector=14\n".into(),
        stderr: String::new(),
        report: None,
    };
    let bad = check(&s, &o);
    assert!(
        bad[0].contains("exit 3") && bad[1].contains("EXCEPTION #PF"),
        "{bad:?}"
    );
    let o = Outcome {
        exit: None,
        ..Outcome::default()
    };
    assert!(check(&s, &o)[0].contains("killed"));
    let o = outcome(73, clean_result(), json!({}));
    assert!(check(&s, &o)[0].contains("timeout"));
}

#[test]
fn a_reported_corruption_passes_only_where_it_was_injected_and_expected() {
    let mut r = clean_result();
    r["status"] = json!("fail");
    r["ok"] = json!(3);
    r["bad_data"] = json!(1);
    let s = scenario("exit = 1\nstatus = \"fail\"\n");
    assert!(check(&s, &outcome(1, r.clone(), json!({ "corrupt-data": [4] }))).is_empty());
    let bad = check(&s, &outcome(1, r, json!({})));
    assert!(bad[0].contains("without an injected corruption"), "{bad:?}");
}

#[test]
fn a_surprise_removal_may_time_out_every_channel_once() {
    let s = scenario("");
    let mut r = clean_result();
    r["watchdog_timeouts"] = json!(4);
    r["transfers"] = json!(8);
    assert!(check(
        &s,
        &outcome(0, r.clone(), json!({ "surprise-removal": [5] }))
    )
    .is_empty());
    r["watchdog_timeouts"] = json!(5);
    let bad = check(&s, &outcome(0, r, json!({ "surprise-removal": [5] })));
    assert_eq!(bad.len(), 1, "{bad:?}");
    assert!(
        bad[0].contains("4 × faults.surprise-removal fails: 5 vs 4"),
        "{bad:?}"
    );
}

#[test]
fn an_exact_field_replaces_the_universal_check() {
    let mut r = clean_result();
    r["violations"] = json!(1);
    let s = scenario("fields = { violations = 1 }\n");
    assert!(check(&s, &outcome(0, r, json!({}))).is_empty());
}

#[test]
fn the_oracle_names_only_real_fields_and_fault_kinds() {
    use device_model::fault::FaultEffect;
    use dmalab_protocol::result::is_driver_field;
    let kinds = FaultEffect::KIND_NAMES;
    for b in BOUNDS {
        assert!(
            is_driver_field(b.field),
            "bound on unknown field {}",
            b.field
        );
        for k in b.kinds {
            assert!(
                kinds.contains(k),
                "bound {} names unknown kind {k}",
                b.field
            );
        }
    }
    for (field, causes, _) in CAUSES {
        assert!(is_driver_field(field), "cause of unknown field {field}");
        for k in *causes {
            assert!(kinds.contains(k), "{field} names unknown kind {k}");
        }
    }
    for field in clean_result().as_object().unwrap().keys() {
        assert!(
            is_driver_field(field),
            "test line has unknown field {field}"
        );
    }
}

/// `outcome` with a complete fault log: `(seq, kind, fatal)` per fault.
fn logged(result: Value, faults: &[(u64, &str, Option<bool>)]) -> Outcome {
    let mut o = outcome(0, result, json!({}));
    let report = o.report.as_mut().unwrap();
    for (seq, kind, fatal) in faults {
        report
            .device
            .fault_log
            .push(dmalab_protocol::report::FaultEntry {
                seq: *seq,
                kind: (*kind).into(),
                fatal: *fatal,
                ..Default::default()
            });
        *report
            .device
            .fault_counts
            .entry((*kind).into())
            .or_default() += 1;
        report
            .device
            .faults
            .entry((*kind).into())
            .or_default()
            .push(*seq);
    }
    o
}

#[test]
fn a_fatal_error_must_fail_its_irp_and_never_be_retried() {
    let s = scenario("");
    let mut r = clean_result();
    // Correct: fails with STATUS_DEVICE_HARDWARE_ERROR after a reset.
    for (k, v) in [
        ("fail_hw", 1),
        ("irps_failed", 1),
        ("resets", 1),
        ("ok", 3),
        ("failed", 1),
    ] {
        r[k] = json!(v);
    }
    let fatal = [(2, "dma-error", Some(true))];
    assert_eq!(check(&s, &logged(r.clone(), &fatal)), Vec::<String>::new());
    // Retried as if recoverable, and the IRP succeeded.
    let mut wrong = clean_result();
    wrong["retries"] = json!(1);
    wrong["resets"] = json!(1);
    wrong["transfers"] = json!(11);
    let bad = check(&s, &logged(wrong.clone(), &fatal));
    assert!(
        bad.iter().any(|v| v.contains("a fatal error was retried")),
        "{bad:?}"
    );
    assert!(
        bad.iter()
            .any(|v| v.contains("did not fail its IRP") && v.contains("{2}")),
        "{bad:?}"
    );
    // The same counters for a recoverable error are right.
    let recoverable = [(2, "dma-error", Some(false))];
    assert_eq!(
        check(&s, &logged(wrong, &recoverable)),
        Vec::<String>::new()
    );
    // A hardware error for a recoverable fault is wrong.
    let bad = check(&s, &logged(r, &recoverable));
    assert!(
        bad.iter().any(|v| v.contains("without a fatal error")),
        "{bad:?}"
    );
}

#[test]
fn an_irp_failed_before_its_retries_is_caught() {
    let s = scenario("");
    let mut r = clean_result();
    for (k, v) in [
        ("fail_io", 1),
        ("irps_failed", 1),
        ("retries", 1),
        ("ok", 3),
        ("failed", 1),
        ("transfers", 11),
    ] {
        r[k] = json!(v);
    }
    let two = [(2, "dma-error", Some(false)), (3, "dma-error", Some(false))];
    let bad = check(&s, &logged(r, &two));
    assert!(
        bad.iter().any(|v| v.contains("before its 3 retries")),
        "{bad:?}"
    );
}

#[test]
fn a_cancellation_ends_its_irp_exactly_once() {
    let s = scenario("");
    let mut r = clean_result();
    for (k, v) in [
        ("cancel_calls", 2),
        ("cancel_hits", 1),
        ("cancelled", 1),
        ("irps_cancelled", 1),
        ("irps_cancelled_queued", 1),
    ] {
        r[k] = json!(v);
    }
    r["ok"] = json!(3);
    r["failed"] = json!(1);
    assert_eq!(check(&s, &logged(r.clone(), &[])), Vec::<String>::new());
    r["irps_cancelled"] = json!(2);
    let bad = check(&s, &logged(r, &[]));
    assert!(
        bad.iter()
            .any(|v| v.contains("exactly once with STATUS_CANCELLED")),
        "{bad:?}"
    );
}
