//! `--trace` of the WDM-style driver's stress scenario (400 requests) in
//! instant mode: the driver's markers are in it without being asked for
//! (ISR, DpcForIsr and StartIo as begin/end pairs, each IRP an async span
//! from StartIo to its completion), a descriptor's bursts are one span,
//! the file stays under 2 MB, and two runs write the same bytes; and a
//! realtime trace, whose routine ends carry the guest's own times.

mod common;

use std::time::Duration;

use common::{kvm_usable, Scratch};

const LIMIT: Duration = Duration::from_secs(120);

/// A 400-request stress trace's size limit.
const MAX_TRACE_BYTES: usize = 2 << 20;

#[test]
fn a_stress_trace_has_markers_coalesced_bursts_and_is_byte_identical() {
    let test = "a_stress_trace_has_markers_coalesced_bursts_and_is_byte_identical";
    if !kvm_usable(test) {
        return;
    }
    let scratch = Scratch::new("trace");
    // The two runs at once: two cores, half the wall time.
    let runs: Vec<_> = (0..2)
        .map(|i| {
            let path = scratch.path().join(format!("stress-{i}.json"));
            let handle = std::thread::spawn({
                let path = path.clone();
                move || {
                    common::run_dmalab(
                        &[
                            "run",
                            "--scenario",
                            "stress",
                            "--timing",
                            "instant",
                            "--trace",
                            path.to_str().unwrap(),
                        ],
                        LIMIT,
                    )
                }
            });
            (path, handle)
        })
        .collect();
    let mut traces = Vec::new();
    for (path, handle) in runs {
        let run = handle.join().expect("dmalab thread");
        assert_eq!(run.code(), 0, "{run}");
        assert!(run.stdout.contains("\"requests\":400"), "{run}");
        traces.push(std::fs::read(&path).expect("trace file"));
    }
    assert!(
        traces[0].len() < MAX_TRACE_BYTES,
        "{} bytes",
        traces[0].len()
    );
    assert!(traces[0] == traces[1], "two instant runs, two traces");
    let json: serde_json::Value = serde_json::from_slice(&traces[0]).expect("trace JSON");
    let events = json["traceEvents"].as_array().unwrap();
    let count = |name: &str| events.iter().filter(|e| e["name"] == name).count();
    let irp = |ph: &str| {
        events
            .iter()
            .filter(|e| e["cat"] == "irp" && e["ph"] == ph)
            .count()
    };
    assert_eq!((irp("b"), irp("e")), (400, 400), "an async span per IRP");
    assert!(count("ISR") >= 400 && count("DpcForIsr") >= 400);
    assert_eq!(count("StartIo"), 400);
    // Every routine's begin has its end on the same track, nested.
    let mut open: std::collections::HashMap<u64, Vec<&str>> = Default::default();
    for e in events {
        let tid = e["tid"].as_u64().unwrap_or(0);
        match e["ph"].as_str() {
            Some("B") => open
                .entry(tid)
                .or_default()
                .push(e["name"].as_str().unwrap()),
            Some("E") => {
                assert!(open.entry(tid).or_default().pop().is_some(), "{e}");
                // Instant timing: the guest's TSC times are left out.
                assert!(e["args"].get("guest_us").is_none(), "{e}");
            }
            _ => {}
        }
    }
    assert!(open.values().all(Vec::is_empty), "unended: {open:?}");
    let spans = count("bursts");
    let completions = events
        .iter()
        .filter(|e| e["ph"] == "e" && e["cat"] == "descriptor")
        .count();
    assert_eq!(spans, completions, "one burst span per descriptor");
    assert!(events
        .iter()
        .filter(|e| e["name"] == "bursts")
        .any(|e| e["args"]["bursts"].as_u64().unwrap_or(0) > 1));
}

#[test]
fn a_realtime_trace_carries_the_guests_own_routine_times() {
    let test = "a_realtime_trace_carries_the_guests_own_routine_times";
    if !kvm_usable(test) {
        return;
    }
    let scratch = Scratch::new("trace-rt");
    let path = scratch.path().join("copy.json");
    let run = common::run_dmalab(
        &[
            "run",
            "--scenario",
            "copy",
            "--timing",
            "realtime",
            "--trace",
            path.to_str().unwrap(),
        ],
        LIMIT,
    );
    assert_eq!(run.code(), 0, "{run}");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).expect("trace file")).expect("trace JSON");
    let events = json["traceEvents"].as_array().unwrap();
    let ends: Vec<&serde_json::Value> = events.iter().filter(|e| e["ph"] == "E").collect();
    let begins = events.iter().filter(|e| e["ph"] == "B").count();
    assert!(!ends.is_empty() && ends.len() == begins, "{begins} begins");
    // Every routine's end: the guest's TSC measure, at least 1 µs.
    assert!(
        ends.iter()
            .all(|e| e["args"]["guest_us"].as_u64().is_some_and(|us| us >= 1)),
        "{ends:?}"
    );
}
