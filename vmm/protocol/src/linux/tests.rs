use std::collections::BTreeSet;
use std::path::Path;

use super::*;
use crate::status;

const HARNESS: &str = "guest-driver/linux/harness/dmalab_harness.c";
const DRIVER: &str = "guest-driver/linux/dmalab_dma_main.c";

fn source(path: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    std::fs::read_to_string(root.join(path)).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// The JSON keys a C file prints: every `\"name\":` in a string literal,
/// and the `"name"` of every `json_uint(json, "name", …)` call.
fn c_keys(text: &str) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    let pieces: Vec<&str> = text.split("\\\":").collect();
    for piece in &pieces[..pieces.len() - 1] {
        if let Some(at) = piece.rfind("\\\"") {
            let name = &piece[at + 2..];
            if is_name(name) {
                keys.insert(name.to_string());
            }
        }
    }
    for call in text.split("json_uint(").skip(1) {
        // The definition `json_uint(struct seq_buf *json, const char *key, …)`
        // names no key.
        let Some(arg) = call.split(',').nth(1) else {
            continue;
        };
        let name = arg.trim().trim_matches('"');
        if arg.trim().starts_with('"') && is_name(name) {
            keys.insert(name.to_string());
        }
    }
    keys
}

/// The strings of `dmalab_dma_counter_names[…] = { … };`.
fn c_counter_names(text: &str) -> Vec<String> {
    let start = text
        .find("dmalab_dma_counter_names[DMALAB_DMA_NR_COUNTERS] = {")
        .unwrap_or_else(|| panic!("{DRIVER} defines no dmalab_dma_counter_names[]"));
    let body = &text[start..];
    let body = &body[..body.find("};").expect("the array ends")];
    body.split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// The value of `#define NAME value` in a C file.
fn c_define(text: &str, name: &str) -> Option<u8> {
    text.lines().find_map(|l| {
        let mut words = l.split_whitespace();
        (words.next() == Some("#define") && words.next() == Some(name))
            .then(|| words.next()?.parse().ok())
            .flatten()
    })
}

fn set(lists: &[&[&str]]) -> BTreeSet<String> {
    lists
        .iter()
        .flat_map(|l| l.iter().map(|f| f.to_string()))
        .collect()
}

fn agree(what: &str, c: &BTreeSet<String>, rust: &BTreeSet<String>) {
    let only_c: Vec<_> = c.difference(rust).collect();
    let only_rust: Vec<_> = rust.difference(c).collect();
    assert!(
        only_c.is_empty() && only_rust.is_empty(),
        "{what} and dmalab_protocol::linux disagree: only in C {only_c:?}, only in Rust {only_rust:?}"
    );
}

#[test]
fn the_harness_prints_exactly_the_fields_named_here() {
    let c = c_keys(&source(HARNESS));
    let rust = set(&[FIELDS, DMATEST_FIELDS, CHANNEL_FIELDS, KUNIT_FIELDS]);
    agree(HARNESS, &c, &rust);
}

#[test]
fn the_driver_counters_are_the_ones_named_here() {
    let c: Vec<String> = c_counter_names(&source(DRIVER));
    let rust: Vec<String> = COUNTERS.iter().map(|f| f.to_string()).collect();
    agree(
        DRIVER,
        &c.iter().cloned().collect(),
        &rust.iter().cloned().collect(),
    );
    assert_eq!(c, rust, "{DRIVER}: same names, another order");
}

#[test]
fn the_harness_exits_with_the_protocols_statuses() {
    let text = source(HARNESS);
    for (define, want) in [
        ("DMALAB_EXIT_PASS", status::PASS),
        ("DMALAB_EXIT_FAIL", status::GUEST_FAIL),
        ("DMALAB_EXIT_PANIC", status::LINUX_PANIC),
    ] {
        assert_eq!(
            c_define(&text, define),
            Some(want),
            "{HARNESS}: {define} is not dmalab_protocol::status's {want}"
        );
    }
    assert!(
        text.contains(&format!("\\\"error\\\":\\\"{PANIC_ERROR}\\\"")),
        "{HARNESS} does not print error \"{PANIC_ERROR}\" on a panic"
    );
}

/// A line with every field set, as JSON.
fn full() -> serde_json::Value {
    let channel = Channel {
        chan: "dma0chan0".into(),
        threads: 1,
        tests: 8,
        failures: 0,
        result: 0,
        finished: true,
    };
    let line = LinuxResult {
        scenario: "linux".into(),
        status: "pass".into(),
        error: Some("e".into()),
        panic: Some("p".into()),
        dmatest: Some(Dmatest {
            iterations: 8,
            threads: 1,
            buf_size: 256,
            channels: vec![channel],
            failures: 0,
            error: Some("timeout".into()),
        }),
        kunit: Some(Kunit {
            error: Some("no memory".into()),
            ..Kunit::default()
        }),
        controllers: Some(1),
        interrupts: Some(1),
        completions: Some(2),
        retries: Some(3),
        resets: Some(4),
        watchdog_recoveries: Some(5),
        errors_reported: Some(6),
    };
    serde_json::to_value(line).unwrap()
}

fn keys(v: &serde_json::Value) -> BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

#[test]
fn the_typed_line_has_exactly_the_listed_fields() {
    let v = full();
    assert_eq!(keys(&v), set(&[FIELDS, COUNTERS]));
    assert_eq!(keys(&v["dmatest"]), set(&[DMATEST_FIELDS]));
    assert_eq!(keys(&v["dmatest"]["channels"][0]), set(&[CHANNEL_FIELDS]));
    assert_eq!(keys(&v["kunit"]), set(&[KUNIT_FIELDS]));
    let back = LinuxResult::parse(&v.to_string()).unwrap();
    for name in COUNTERS {
        assert!(back.counter(name).is_some(), "{name}");
        assert!(is_field(name), "{name}");
    }
    assert!(is_field("dmatest.failures") && is_field("kunit.failed") && is_field("status"));
    assert!(!is_field("dmatest.chan") && !is_field("kunit.chan") && !is_field("failures"));
}

#[test]
fn the_harness_lines_parse() {
    let console = "noise\nDMALAB-RESULT {\"scenario\":\"linux\",\"dmatest\":{\"iterations\":8,\
        \"threads\":1,\"buf_size\":256,\"channels\":[{\"chan\":\"dma0chan0\",\"threads\":1,\
        \"tests\":8,\"failures\":0,\"result\":0,\"finished\":true}],\"failures\":0},\
        \"kunit\":{\"suites\":1,\"suites_passed\":1,\"suites_failed\":0,\"suites_skipped\":0,\
        \"cases\":12,\"passed\":12,\"failed\":0,\"skipped\":0},\"controllers\":1,\
        \"interrupts\":60,\"completions\":58,\"retries\":0,\"resets\":2,\
        \"watchdog_recoveries\":1,\"errors_reported\":2,\"status\":\"pass\"}\n";
    let r = LinuxResult::from_console(console).unwrap().unwrap();
    assert!(r.passed());
    assert_eq!(r.dmatest.as_ref().unwrap().channels[0].tests, 8);
    assert_eq!(r.kunit.as_ref().unwrap().cases, 12);
    assert_eq!(r.counter("watchdog_recoveries"), Some(1));

    let panic = "[ 1.0] DMALAB-RESULT {\"scenario\":\"linux\",\"status\":\"fail\",\
        \"error\":\"kernel panic\",\"panic\":\"dmalab.test_panic=1: a \\\"panic\\\"\"}";
    let r = LinuxResult::from_console(panic).unwrap().unwrap();
    assert!(!r.passed());
    assert_eq!(r.error.as_deref(), Some(PANIC_ERROR));
    assert_eq!(r.panic.as_deref(), Some("dmalab.test_panic=1: a \"panic\""));
    assert_eq!(r.dmatest, None);

    let renamed = "DMALAB-RESULT {\"scenario\":\"linux\",\"status\":\"pass\",\"interrupt\":3}";
    let e = LinuxResult::from_console(renamed).unwrap().unwrap_err();
    assert!(e.to_string().contains("unknown field `interrupt`"), "{e}");
    assert!(LinuxResult::from_console("no result here").is_none());
}
