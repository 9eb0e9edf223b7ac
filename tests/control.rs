//! Control socket integration tests: pause and resume a running guest
//! (`docs/dma-device.md`, "The control socket"; `vmm/src/pause.rs`).
//!
//! Each test boots the built-in guest on KVM (skipping loudly without
//! /dev/kvm, failing with `DMALAB_REQUIRE_KVM=1`) and talks to it with the
//! protocol's own types.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use common::control::{Client, Vm};
use common::{kvm_usable, wait_until, Scratch};
use dmalab_protocol::control::{Answer, Line, Request, StepTo};

const LIMIT: Duration = Duration::from_secs(90);

fn socket(scratch: &Scratch) -> PathBuf {
    scratch.path().join("ctl.sock")
}

#[test]
fn a_paused_vm_stands_still_and_resumes_to_a_clean_pass() {
    if !kvm_usable("a_paused_vm_stands_still_and_resumes_to_a_clean_pass") {
        return;
    }
    let scratch = Scratch::new("ctl-pause");
    let sock = socket(&scratch);
    let mut vm = Vm::spawn(&[
        "run",
        "--scenario",
        "stress",
        "--cmdline",
        "irps=200",
        "--timeout",
        "60",
        "--control",
        sock.to_str().unwrap(),
    ]);
    let mut ctl = Client::connect(&sock);
    // The scenario's first line: requests are in flight from here on.
    vm.wait_for("stress:");
    assert!(matches!(ctl.ask(Request::Pause), Ok(Answer::Time { .. })));
    let before = ctl.status();
    assert!(before.paused, "{before:?}");
    assert_eq!(before.parked, before.vcpus, "{before:?}");
    thread::sleep(Duration::from_millis(100));
    let after = ctl.status();
    assert_eq!(after.now, before.now, "device time moved while paused");
    assert_eq!(after.next, before.next);
    assert!(after.paused_ms >= 100, "{after:?}");
    assert!(matches!(ctl.ask(Request::Resume), Ok(Answer::Time { .. })));
    let refused = ctl.ask(Request::Step {
        to: StepTo::Cycles(1),
    });
    assert!(
        refused.is_err(),
        "step in realtime, not paused: {refused:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let running = ctl.status();
        assert!(!running.paused, "{running:?}");
        if running.parked == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the vCPUs stay parked: {running:?}"
        );
        thread::sleep(Duration::from_millis(1));
    }
    drop(ctl);
    let (code, lines) = vm.finish();
    let result = lines
        .iter()
        .find_map(|l| l.strip_prefix("DMALAB-RESULT "))
        .unwrap_or_else(|| panic!("no result line: {lines:#?}"));
    let json: serde_json::Value = serde_json::from_str(result).unwrap();
    assert_eq!(code, 0, "{lines:#?}");
    assert_eq!(json["status"], "pass", "{json}");
    assert_eq!(
        json["violations"], 0,
        "the paused span was stolen time: {json}"
    );
}

/// Starts `dmalab run ARGS --control SOCK` and pauses it as soon as the
/// socket is up (before or just after the guest's first instructions).
fn paused_vm(scratch: &Scratch, args: &[&str]) -> (Vm, Client) {
    let sock = socket(scratch);
    let mut argv = vec![
        "run",
        "--timeout",
        "60",
        "--control",
        sock.to_str().unwrap(),
    ];
    argv.extend_from_slice(args);
    let vm = Vm::spawn(&argv);
    let mut ctl = Client::connect(&sock);
    ctl.ask(Request::Pause).expect("pause");
    (vm, ctl)
}

fn result_json(lines: &[String]) -> serde_json::Value {
    let result = lines
        .iter()
        .find_map(|l| l.strip_prefix("DMALAB-RESULT "))
        .unwrap_or_else(|| panic!("no result line: {lines:#?}"));
    serde_json::from_str(result).unwrap()
}

#[test]
fn a_dropped_interrupt_injected_by_hand_is_recovered_and_logged() {
    if !kvm_usable("a_dropped_interrupt_injected_by_hand_is_recovered_and_logged") {
        return;
    }
    let scratch = Scratch::new("ctl-inject");
    let report = scratch.path().join("report.json");
    let (vm, mut ctl) = paused_vm(
        &scratch,
        &["--scenario", "copy", "--report", report.to_str().unwrap()],
    );
    let injected = ctl.ask(Request::Inject {
        effect: "drop-interrupt".into(),
        channel: None,
    });
    assert_eq!(injected, Ok(Answer::Injected { rule: 0 }));
    ctl.ask(Request::Resume).expect("resume");
    drop(ctl);
    let (code, lines) = vm.finish();
    let json = result_json(&lines);
    assert_eq!(code, 0, "{lines:#?}");
    assert_eq!(json["status"], "pass", "{json}");
    assert!(
        json["watchdog_recoveries"].as_u64() >= Some(1),
        "the watchdog found the completion: {json}"
    );
    let text = std::fs::read_to_string(&report).unwrap();
    let report = dmalab_protocol::report::RunReport::from_json(&text).unwrap();
    assert_eq!(report.faults("drop-interrupt").len(), 1, "{text}");
    let seq = report.faults("drop-interrupt")[0];
    assert!(
        report.plan.contains(&format!("nth = {seq}")),
        "the report's plan replays it: {}",
        report.plan
    );
}

#[test]
fn stepping_to_the_next_completion_lands_on_one_and_watch_sees_the_driver() {
    if !kvm_usable("stepping_to_the_next_completion_lands_on_one_and_watch_sees_the_driver") {
        return;
    }
    let scratch = Scratch::new("ctl-step");
    let sock = socket(&scratch);
    let vm = Vm::spawn(&[
        "run",
        "--scenario",
        "copy",
        "--cmdline",
        "markers=1",
        "--timing",
        "stepped",
        "--timeout",
        "60",
        "--control",
        sock.to_str().unwrap(),
    ]);
    let mut ctl = Client::connect(&sock);
    assert_eq!(ctl.ask(Request::Watch), Ok(Answer::Done));
    // Step until the first completion: the step lands on it.
    let deadline = Instant::now() + LIMIT;
    loop {
        assert!(Instant::now() < deadline, "no completion");
        match ctl.ask(Request::Step {
            to: StepTo::Completion,
        }) {
            Ok(Answer::Time { now, .. }) => {
                // Events of this step arrive before the next reply.
                ctl.ask(Request::Now).unwrap();
                let last = ctl
                    .events
                    .iter()
                    .rev()
                    .find(|e| e.what == "completion")
                    .expect("a completion event");
                assert_eq!(last.cycle, now, "the step stopped at the completion");
                break;
            }
            Err(idle) if idle.contains("idle") => thread::sleep(Duration::from_millis(1)),
            other => panic!("{other:?}"),
        }
    }
    // Step on, watching, until the driver completed an IRP.
    while !ctl.events.iter().any(|e| e.what == "irp-complete") {
        assert!(
            Instant::now() < deadline,
            "no IRP completion: {:?}",
            ctl.events
        );
        // An error here only says the device is idle: the guest runs.
        let _ = ctl.ask(Request::Step { to: StepTo::Event });
        thread::sleep(Duration::from_micros(200));
    }
    // Wait for the DPC that completed the IRP to return.
    let irp_at = ctl
        .events
        .iter()
        .position(|e| e.what == "irp-complete")
        .unwrap();
    while !ctl.events[irp_at..].iter().any(|e| e.what == "dpc-end") {
        assert!(Instant::now() < deadline, "no DPC end: {:?}", ctl.events);
        let _ = ctl.ask(Request::Status);
        thread::sleep(Duration::from_millis(1));
    }
    let order: Vec<&str> = ctl
        .events
        .iter()
        .map(|e| e.what.as_str())
        .filter(|w| {
            [
                "completion",
                "msi-sent",
                "isr",
                "isr-end",
                "dpc",
                "irp-complete",
                "dpc-end",
            ]
            .contains(w)
        })
        .collect();
    let first = |w: &str| order.iter().position(|x| *x == w);
    let seq = [
        first("completion"),
        first("msi-sent"),
        first("isr"),
        first("isr-end"),
        first("dpc"),
        first("irp-complete"),
    ];
    let dpc_end = order.iter().rposition(|x| *x == "dpc-end");
    assert!(
        seq.iter().all(Option::is_some) && seq.windows(2).all(|w| w[0] < w[1]),
        "completion → MSI → ISR → its end → DPC → IRP completion: {order:?}"
    );
    assert!(
        seq[5] < dpc_end,
        "the IRP completes inside the DPC: {order:?}"
    );
    // Three clocks: device cycle, the same in ns (1 GHz), host time; and
    // the guest's own time on a routine's end.
    assert!(
        ctl.events.iter().all(|e| e.ns == e.cycle),
        "{:?}",
        ctl.events
    );
    assert!(ctl
        .events
        .iter()
        .filter(|e| e.what.ends_with("-end"))
        .all(|e| e.guest_us.is_some()));
    // Step it to the end, as any client would.
    drop(ctl);
    let steps = common::stepper(sock, Request::Step { to: StepTo::Idle }, LIMIT);
    let (code, lines) = vm.finish();
    assert_eq!(code, 0, "{lines:#?}");
    assert!(steps.join().unwrap().0 > 0);
}

#[test]
fn control_never_removes_a_file_and_refuses_a_live_socket() {
    if !kvm_usable("control_never_removes_a_file_and_refuses_a_live_socket") {
        return;
    }
    let scratch = Scratch::new("ctl-hazard");
    let run = |path: &Path| {
        common::run_dmalab(
            &[
                "run",
                "--scenario",
                "dma-smoke",
                "--timing",
                "instant",
                "--control",
                path.to_str().unwrap(),
            ],
            LIMIT,
        )
    };
    // A user's file: refused, left as it was.
    let file = scratch.file("notes.json", b"{\"mine\": true}");
    let refused = run(&file);
    assert_eq!(refused.code(), 64, "{refused}");
    assert!(refused.stderr.contains("is not a socket"), "{refused}");
    assert_eq!(std::fs::read(&file).unwrap(), b"{\"mine\": true}");
    // A directory: the same.
    let refused = run(scratch.path());
    assert_eq!(refused.code(), 64, "{refused}");
    // A stale socket (nobody serves it): taken over.
    let stale = scratch.path().join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    let ok = run(&stale);
    assert_eq!(ok.code(), 0, "{ok}");
    assert!(!stale.exists(), "removed at exit");
    // A live socket: refused, and its owner keeps it.
    let (vm, mut ctl) = paused_vm(&scratch, &["--scenario", "dma-smoke"]);
    let refused = run(&socket(&scratch));
    assert_eq!(refused.code(), 64, "{refused}");
    assert!(
        refused.stderr.contains("another running dmalab"),
        "{refused}"
    );
    assert!(ctl.status().paused, "the first VM still answers");
    ctl.ask(Request::Resume).unwrap();
    drop(ctl);
    let (code, _) = vm.finish();
    assert_eq!(code, 0);
}

/// The variant of a reply (`ok` answer's kind, or `error`).
fn kind(line: &Line) -> String {
    match line {
        Line::Ok { ok, .. } => match serde_json::to_value(ok).unwrap() {
            serde_json::Value::Object(m) => m.keys().next().cloned().unwrap_or_default(),
            other => other.to_string(),
        },
        Line::Error { .. } => "error".into(),
        Line::Event { .. } => "event".into(),
    }
}

#[test]
fn the_documented_examples_run_as_written() {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/control-api.md"
    ))
    .unwrap();
    let mut pairs = Vec::new();
    let mut pending = None;
    for line in doc.lines().map(str::trim) {
        if let Some(req) = line.strip_prefix("→ ") {
            let (id, r) = Request::parse_line(req).unwrap_or_else(|e| panic!("{req}: {e:?}"));
            pending = Some((id, r));
        } else if let Some(reply) = line.strip_prefix("← ") {
            let reply = Line::parse(reply).unwrap_or_else(|e| panic!("{reply}: {e}"));
            if let Some(req) = pending.take() {
                pairs.push((req, reply));
            }
        }
    }
    assert!(pairs.len() >= 15, "{} examples", pairs.len());
    if !kvm_usable("the_documented_examples_run_as_written") {
        return;
    }
    let scratch = Scratch::new("ctl-doc");
    let sock = socket(&scratch);
    let vm = Vm::spawn(&[
        "run",
        "--scenario",
        "copy",
        "--timing",
        "stepped",
        "--timeout",
        "60",
        "--control",
        sock.to_str().unwrap(),
    ]);
    let mut ctl = Client::connect(&sock);
    for ((id, request), documented) in &pairs {
        writeln!(ctl.writer, "{}", request.to_line(*id)).unwrap();
        let got = loop {
            match ctl.line().expect("a reply") {
                Line::Event { .. } => {}
                line => break line,
            }
        };
        let got_id = match &got {
            Line::Ok { id, .. } | Line::Error { id, .. } => *id,
            Line::Event { .. } => unreachable!(),
        };
        assert_eq!(got_id, *id, "{got}");
        // How far the guest got before the pause decides these two.
        if !matches!(request, Request::Step { .. } | Request::Vcpu { .. }) {
            assert_eq!(kind(&got), kind(documented), "{request:?}: got {got}");
        }
    }
    drop(ctl);
    let _ = std::fs::remove_file("/tmp/dmalab-control-api-trace.json");
    let steps = common::stepper(sock, Request::Step { to: StepTo::Idle }, LIMIT);
    let (code, lines) = vm.finish();
    assert_eq!(code, 0, "{lines:#?}");
    steps.join().unwrap();
}

#[test]
fn bad_output_paths_are_refused_before_the_run() {
    let scratch = Scratch::new("ctl-outputs");
    let missing = scratch.path().join("no-such-dir/report.json");
    for (flag, path) in [
        ("--report", missing.to_str().unwrap()),
        ("--trace", scratch.path().to_str().unwrap()),
    ] {
        let run = common::run_dmalab(&["run", flag, path], LIMIT);
        assert_eq!(run.code(), 64, "{run}");
        assert_eq!(run.stderr.lines().count(), 1, "one line: {run}");
        assert!(run.stderr.contains("nothing ran"), "{run}");
        assert!(run.stdout.is_empty(), "the guest did not run: {run}");
    }
    assert!(!missing.parent().unwrap().exists(), "no directory created");
}

#[test]
fn sigterm_stops_the_vm_cleanly() {
    if !kvm_usable("sigterm_stops_the_vm_cleanly") {
        return;
    }
    let scratch = Scratch::new("ctl-signal");
    let report = scratch.path().join("report.json");
    let sock = socket(&scratch);
    let (mut vm, mut ctl) = paused_vm(
        &scratch,
        &["--scenario", "stress", "--report", report.to_str().unwrap()],
    );
    ctl.ask(Request::Resume).unwrap();
    drop(ctl);
    let pid = libc::pid_t::try_from(vm.child.id()).unwrap();
    // SAFETY: a plain syscall signalling our own child by its pid.
    let sent = unsafe { libc::kill(pid, libc::SIGTERM) };
    assert_eq!(sent, 0);
    let status = wait_until(&mut vm.child, LIMIT).expect("dmalab did not exit");
    assert_eq!(
        status.code(),
        Some(i32::from(dmalab_protocol::status::SIGTERM))
    );
    assert!(report.exists(), "the report was written");
    assert!(!sock.exists(), "the socket was removed");
}

#[test]
fn the_socat_examples_run_as_written() {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/control-api.md"
    ))
    .unwrap();
    // Each `$ … | socat …` line with the reply lines under it.
    let mut examples: Vec<(String, Vec<Line>)> = Vec::new();
    for line in doc.lines().map(str::trim) {
        if let Some(command) = line.strip_prefix("$ ") {
            if command.contains("| socat ") {
                examples.push((command.to_string(), Vec::new()));
            }
        } else if let (Some(last), Some(reply)) = (examples.last_mut(), line.strip_prefix('{')) {
            let reply = format!("{{{reply}");
            last.1
                .push(Line::parse(&reply).unwrap_or_else(|e| panic!("{reply}: {e}")));
        } else if !line.is_empty() {
            // Anything else ends the replies of the last example.
            if examples.last().is_some_and(|e| !e.1.is_empty()) {
                examples.push((String::new(), Vec::new()));
            }
        }
    }
    examples.retain(|e| !e.0.is_empty());
    assert!(examples.len() >= 4, "{examples:?}");
    if !kvm_usable("the_socat_examples_run_as_written") {
        return;
    }
    assert!(
        Command::new("socat").arg("-V").output().is_ok(),
        "socat is not installed (images/setup-host.sh installs it)"
    );
    let scratch = Scratch::new("ctl-socat");
    let sock = socket(&scratch);
    let vm = Vm::spawn(&[
        "run",
        "--scenario",
        "copy",
        "--timing",
        "stepped",
        "--timeout",
        "60",
        "--control",
        sock.to_str().unwrap(),
    ]);
    drop(Client::connect(&sock));
    for (command, documented) in &examples {
        let command = command.replace("/tmp/dma.sock", sock.to_str().unwrap());
        let out = Command::new("sh").args(["-c", &command]).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{command}: {out:?}");
        let got: Vec<Line> = text
            .lines()
            .map(|l| Line::parse(l).unwrap_or_else(|e| panic!("{command}: {l}: {e}")))
            .collect();
        assert_eq!(got.len(), documented.len(), "{command}: {text}");
        for (got, documented) in got.iter().zip(documented) {
            let id = |l: &Line| match l {
                Line::Ok { id, .. } | Line::Error { id, .. } => Some(*id),
                Line::Event { .. } => None,
            };
            assert_eq!(kind(got), kind(documented), "{command}: {got}");
            assert_eq!(id(got), id(documented), "{command}: {got}");
        }
    }
    let steps = common::stepper(sock, Request::Step { to: StepTo::Idle }, LIMIT);
    let (code, lines) = vm.finish();
    assert_eq!(code, 0, "{lines:#?}");
    steps.join().unwrap();
}
