//! The timeout guarantee: whatever the guest asks of the device, `dmalab run
//! --timeout S` ends within S + 1 s with exit status 73, the timeout line
//! and a register dump (S + W + 1 s when the line says its threads waited
//! W s for a busy host's CPU), and the campaign's per-scenario timeout holds the
//! same way. The guest is the `flood` scenario: every channel's ring full
//! of maximum-length descriptors (4 × 4095 × 16 MiB = 256 GiB of copying),
//! every doorbell rung.

mod common;

use std::time::Duration;

use common::{kvm_usable, run_dmalab, Scratch};

/// `--timeout` of each run.
const TIMEOUT_S: u64 = 3;
/// What the guarantee allows beyond it (the spawn of the process included).
const SLACK: Duration = Duration::from_secs(1);
/// When the harness gives up on a child that ignored its timeout.
const KILL_AFTER: Duration = Duration::from_secs(30);

/// The timeout line's extension for time the run's threads waited for a
/// host CPU (`(+W s its threads waited …)`), zero if there was none.
fn waited(stderr: &str) -> Duration {
    let head = format!("dmalab: timeout: the guest did not exit within {TIMEOUT_S}.0 s");
    let line = stderr
        .lines()
        .find(|l| l.starts_with(&head))
        .unwrap_or_else(|| panic!("timeout line\n{stderr}"));
    match line[head.len()..].strip_prefix(" (+") {
        None => {
            assert_eq!(&line[head.len()..], "; stopped it", "{stderr}");
            Duration::ZERO
        }
        Some(rest) => {
            let (secs, tail) = rest.split_once(" s ").expect("(+W s …)");
            assert_eq!(
                tail, "its threads waited for a host CPU); stopped it",
                "{stderr}"
            );
            let w = Duration::from_secs_f64(secs.parse().expect("seconds"));
            assert!(
                w <= Duration::from_secs(TIMEOUT_S) + Duration::from_millis(50),
                "{stderr}"
            );
            w
        }
    }
}

fn assert_clean_timeout(run: &common::Run, what: &str) {
    assert_eq!(run.code(), 73, "{what}\n{run}");
    // The line rounds the extension to 0.1 s.
    let allowed =
        Duration::from_secs(TIMEOUT_S) + waited(&run.stderr) + SLACK + Duration::from_millis(50);
    assert!(
        run.elapsed <= allowed,
        "{what}: exited after {:?}, more than {allowed:?}\n{run}",
        run.elapsed
    );
    assert!(
        run.stderr.contains("vCPU 0 registers:"),
        "{what}: dump\n{run}"
    );
    assert!(
        !run.stderr.contains("did not stop"),
        "{what}: a vCPU hung\n{run}"
    );
    assert!(!run.stderr.contains("panicked"), "{what}\n{run}");
    assert!(
        run.stderr.contains("dmalab: device: "),
        "{what}: summary\n{run}"
    );
    assert!(
        run.stdout
            .contains("flood: 16380 descriptors of 16777216 bytes posted"),
        "{what}: the guest posted the maximum\n{run}"
    );
}

#[test]
fn a_flooded_device_ends_by_the_timeout_in_every_timing_mode_and_doorbell_path() {
    if !kvm_usable("a_flooded_device_ends_by_the_timeout_in_every_timing_mode_and_doorbell_path") {
        return;
    }
    let timeout = TIMEOUT_S.to_string();
    for timing in ["instant", "realtime", "stepped"] {
        for doorbell in ["exit", "ioeventfd"] {
            let run = run_dmalab(
                &[
                    "run",
                    "--scenario",
                    "flood",
                    "--timing",
                    timing,
                    "--doorbell",
                    doorbell,
                    "--timeout",
                    &timeout,
                ],
                KILL_AFTER,
            );
            assert_clean_timeout(&run, &format!("{timing}/{doorbell}"));
        }
    }
}

#[test]
fn the_campaign_reports_a_flooded_scenario_as_timed_out_by_its_timeout() {
    if !kvm_usable("the_campaign_reports_a_flooded_scenario_as_timed_out_by_its_timeout") {
        return;
    }
    let scratch = Scratch::new("campaign-flood");
    let file = scratch.file(
        "flood.toml",
        format!(
            "description = \"the maximum work on every channel\"\n\
             workload = \"flood\"\nseed = 1\ntimeout = {TIMEOUT_S}\n\
             [expect]\nfields = {{ }}\n"
        )
        .as_bytes(),
    );
    let out = scratch.path().join("out");
    let run = run_dmalab(
        &[
            "campaign",
            file.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        KILL_AFTER,
    );
    assert_eq!(run.code(), 1, "the scenario fails\n{run}");
    let child = std::fs::read_to_string(out.join("flood.stderr.txt")).unwrap_or_default();
    assert!(
        run.elapsed <= Duration::from_secs(TIMEOUT_S) + waited(&child) + 2 * SLACK,
        "the campaign took {:?}\n{run}",
        run.elapsed
    );
    let all = format!("{}{}", run.stdout, run.stderr);
    assert!(
        all.contains("timeout: the guest did not exit (exit 73)"),
        "{run}"
    );
}
