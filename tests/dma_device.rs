//! DMA device integration tests: the DMA controller inside `dmalab`, driven
//! by the guest scenarios `dma-smoke` and `hostile` (`docs/dma-device.md`).
//!
//! Each test boots the guest on KVM (skipping loudly without /dev/kvm,
//! failing with `DMALAB_REQUIRE_KVM=1`). `DMALAB_TEST_KERNEL=path` boots
//! that guest ELF instead of the built-in one (to try scenarios before
//! they are built in).

mod common;

use std::path::Path;
use std::time::Duration;

use common::{kvm_usable, run_dmalab, stepper, Run, Scratch};
use dmalab_protocol::control::{Answer, Line, Request, StepTo};

const NEXT: Request = Request::Step { to: StepTo::Event };
use dmalab_protocol::report::RunReport;
use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(90);

/// `dmalab run [--kernel $DMALAB_TEST_KERNEL] --scenario NAME args…`.
fn run_scenario(scenario: &str, args: &[&str]) -> Run {
    let kernel = std::env::var("DMALAB_TEST_KERNEL").ok();
    let mut argv = vec!["run", "--scenario", scenario, "--timeout", "60"];
    if let Some(k) = &kernel {
        argv.extend(["--kernel", k.as_str()]);
    }
    argv.extend_from_slice(args);
    run_dmalab(&argv, LIMIT)
}

fn report(path: &Path) -> RunReport {
    let text = std::fs::read_to_string(path).expect("the run report was written");
    RunReport::from_json(&text).expect("the run report reads back")
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// dma-smoke passed every check (its own lines say which).
fn assert_smoke_passed(run: &Run) {
    assert_eq!(run.code(), 0, "{run}");
    for check in ["probe", "copy-poll", "copy-irq", "fill", "multi-chan"] {
        assert!(
            run.stdout.contains(&format!("dma-smoke: {check} ok")),
            "{check}\n{run}"
        );
    }
    assert!(
        run.stdout
            .contains("DMALAB-RESULT {\"scenario\":\"dma-smoke\",\"status\":\"pass\""),
        "{run}"
    );
}

#[test]
fn device_is_enumerated_with_the_documented_ids_and_bars() {
    if !kvm_usable("device_is_enumerated_with_the_documented_ids_and_bars") {
        return;
    }
    let run = run_scenario("hello", &[]);
    assert_eq!(run.code(), 0, "{run}");
    assert!(
        run.stdout.contains("pci 00:01.0 1234:da1a class 080100"),
        "{run}"
    );
    let run = run_scenario("dma-smoke", &["--timing", "instant"]);
    assert!(
        run.stdout
            .contains("dma: 00:01.0 1234:da1a bar0=0xc0000000 bar2=0xc0001000 channels=4"),
        "{run}"
    );
    assert_smoke_passed(&run);
}

#[test]
fn a_copy_completes_with_correct_data_in_each_timing_mode() {
    if !kvm_usable("a_copy_completes_with_correct_data_in_each_timing_mode") {
        return;
    }
    let scratch = Scratch::new("copy-modes");
    for timing in ["instant", "realtime", "stepped"] {
        let socket = scratch.path().join(format!("{timing}.sock"));
        let rep = scratch.path().join(format!("{timing}.json"));
        let steps = (timing == "stepped").then(|| stepper(socket.clone(), NEXT, LIMIT));
        let run = run_scenario(
            "dma-smoke",
            &[
                "--timing",
                timing,
                "--control",
                s(&socket),
                "--report",
                s(&rep),
            ],
        );
        assert_smoke_passed(&run);
        let r = report(&rep);
        assert_eq!(r.timing, timing);
        assert_eq!(r.result.as_ref().unwrap().status(), Some("pass"), "{r:?}");
        assert!(r.device.bytes >= 4096 + 1000, "{r:?}");
        if let Some(steps) = steps {
            let (n, first) = steps.join().unwrap();
            assert!(
                matches!(first, Some(Line::Ok { .. } | Line::Error { .. })),
                "first reply {first:?}"
            );
            assert!(n > 10, "the stepper drove the device ({n} requests)");
        }
    }
}

#[test]
fn the_msix_interrupt_arrives_and_a_masked_vector_is_delivered_on_unmask() {
    if !kvm_usable("the_msix_interrupt_arrives_and_a_masked_vector_is_delivered_on_unmask") {
        return;
    }
    let scratch = Scratch::new("msix");
    let rep = scratch.path().join("r.json");
    let run = run_scenario("dma-smoke", &["--timing", "realtime", "--report", s(&rep)]);
    assert_smoke_passed(&run);
    assert!(
        run.stdout.contains("dma-smoke: copy-irq ok (irq seen"),
        "{run}"
    );
    assert!(
        run.stdout.contains(
            "dma-smoke: msix-mask ok (record seen, PBA set while masked, 0 irqs while masked, delivered on unmask"
        ),
        "{run}"
    );
    let r = report(&rep);
    let signals = &r.irqfd_signals;
    assert_eq!(signals.len(), 5, "4 channel vectors + the error vector");
    assert!(
        signals.iter().all(|&n| n >= 1),
        "every vector fired: {signals:?}"
    );
    assert!(r.device.interrupts_masked >= 1, "{r:?}");
    assert_eq!(
        r.device.interrupts_sent,
        signals.iter().sum::<u64>(),
        "every message sent is one irqfd write"
    );
}

#[test]
fn an_msix_message_reaches_the_vcpu_whose_apic_id_the_guest_programmed() {
    if !kvm_usable("an_msix_message_reaches_the_vcpu_whose_apic_id_the_guest_programmed") {
        return;
    }
    // The guest records, inside the handler, the per-CPU index and the
    // LAPIC ID register of the CPU it runs on.
    let run = run_scenario("dma-smoke", &["--cpus", "2", "--timing", "instant"]);
    assert_smoke_passed(&run);
    assert!(
        run.stdout.contains(
            "dma-smoke: msix-dest-cpu ok (to APIC 1: 1 irq on cpu 1 (apic 1); \
             back to APIC 0: 1 irq on cpu 0 (apic 0); 2 CPUs online)"
        ),
        "{run}"
    );
    assert!(run.stdout.contains("\"checks\":12,\"failed\":0"), "{run}");
    // One CPU: nothing to route to, said so and not counted as a pass.
    let run = run_scenario("dma-smoke", &["--cpus", "1", "--timing", "instant"]);
    assert_smoke_passed(&run);
    assert!(
        run.stdout
            .contains("dma-smoke: msix-dest-cpu skipped (1 CPU; needs --cpus 2)"),
        "{run}"
    );
    assert!(run.stdout.contains("\"checks\":11,\"failed\":0"), "{run}");
}

#[test]
fn with_ioeventfd_doorbells_cause_no_user_space_exit() {
    if !kvm_usable("with_ioeventfd_doorbells_cause_no_user_space_exit") {
        return;
    }
    let scratch = Scratch::new("ioeventfd");
    let tail_exits = |r: &RunReport| -> u64 {
        r.exits
            .device_registers
            .iter()
            .filter(|(k, _)| k.ends_with(".TAIL"))
            .map(|(_, v)| v)
            .sum()
    };
    for timing in ["instant", "realtime"] {
        let rep = scratch.path().join(format!("io-{timing}.json"));
        let trace = scratch.path().join(format!("io-{timing}.trace.json"));
        let run = run_scenario(
            "dma-smoke",
            &[
                "--doorbell",
                "ioeventfd",
                "--timing",
                timing,
                "--report",
                s(&rep),
                "--trace",
                s(&trace),
            ],
        );
        assert_smoke_passed(&run);
        let r = report(&rep);
        assert_eq!(r.doorbell, "ioeventfd");
        let doorbells = r.device.doorbells;
        assert!(doorbells >= 8, "dma-smoke rang doorbells: {r:?}");
        assert_eq!(tail_exits(&r), 0, "no TAIL write exited: {r:?}");
        let trace = std::fs::read_to_string(&trace).unwrap();
        let from_shadow = trace.matches("from_shadow: true").count() as u64;
        assert_eq!(
            from_shadow, doorbells,
            "every doorbell came from an ioeventfd"
        );
    }
    // The other path, for contrast: each doorbell is one TAIL exit.
    let rep = scratch.path().join("exit.json");
    let run = run_scenario(
        "dma-smoke",
        &[
            "--doorbell",
            "exit",
            "--timing",
            "instant",
            "--report",
            s(&rep),
        ],
    );
    assert_smoke_passed(&run);
    let r = report(&rep);
    assert_eq!(tail_exits(&r), r.device.doorbells, "{r:?}");
}

#[test]
fn hostile_runs_10000_operations_and_the_vmm_exits_cleanly_with_a_report() {
    if !kvm_usable("hostile_runs_10000_operations_and_the_vmm_exits_cleanly_with_a_report") {
        return;
    }
    let scratch = Scratch::new("hostile");
    for (timing, doorbell, cpus) in [("instant", "exit", "1"), ("realtime", "ioeventfd", "2")] {
        let rep = scratch.path().join(format!("{timing}.json"));
        let run = run_scenario(
            "hostile",
            &[
                "--cpus",
                cpus,
                "--cmdline",
                "ops=10000",
                "--timing",
                timing,
                "--doorbell",
                doorbell,
                "--report",
                s(&rep),
            ],
        );
        assert_eq!(run.code(), 0, "{run}");
        assert!(!run.stderr.contains("panicked"), "{run}");
        let r = report(&rep);
        assert_eq!(r.exit_status, 0);
        let result = r.result.as_ref().expect("a result line");
        assert_eq!(result.text("scenario"), Some("hostile"), "{r:?}");
        assert_eq!(result.status(), Some("pass"), "{r:?}");
        assert_eq!(result.number("ops"), Ok(10000.0), "{r:?}");
        assert!(run.stderr.contains("dmalab: device: "), "summary\n{run}");
        assert!(
            run.stderr.contains("dmalab: interrupts: "),
            "summary\n{run}"
        );
    }
}

#[test]
fn same_plan_and_seed_give_byte_identical_traces_in_instant_and_stepped_mode() {
    if !kvm_usable("same_plan_and_seed_give_byte_identical_traces_in_instant_and_stepped_mode") {
        return;
    }
    let scratch = Scratch::new("determinism");
    let plan = scratch.file(
        "plan.toml",
        b"[[rule]]\nname = \"slow\"\neffect = { kind = \"latency-spike\", cycles = 20000 }\nprobability = 0.5\n\n\
          [[rule]]\neffect = \"short-transfer\"\nnth = 2\n",
    );
    let mut traces = Vec::new();
    for timing in ["instant", "stepped"] {
        let trace = scratch.path().join(format!("{timing}.trace.json"));
        let socket = scratch.path().join("ctl.sock");
        let steps = (timing == "stepped").then(|| stepper(socket.clone(), NEXT, LIMIT));
        let run = run_scenario(
            "dma-smoke",
            &[
                "--timing",
                timing,
                "--doorbell",
                "exit",
                "--faults",
                s(&plan),
                "--seed",
                "42",
                "--control",
                s(&socket),
                "--trace",
                s(&trace),
            ],
        );
        assert!(run.code() <= 1, "{run}");
        assert!(run.stderr.contains("faults applied: "), "{run}");
        if let Some(steps) = steps {
            steps.join().unwrap();
        }
        traces.push(std::fs::read(&trace).unwrap());
    }
    let v: Value = serde_json::from_slice(&traces[0]).expect("Chrome trace JSON");
    assert!(v["traceEvents"].as_array().unwrap().len() > 50);
    assert!(
        String::from_utf8_lossy(&traces[0]).contains("fault"),
        "the plan applied"
    );
    assert!(traces[0] == traces[1], "instant and stepped traces differ");
}

#[test]
fn a_bad_fault_plan_is_one_line_and_exit_64_before_any_vm() {
    let scratch = Scratch::new("bad-plan");
    let cases: [(&str, &[u8], &str); 3] = [
        (
            "syntax.toml",
            b"this is = = not toml",
            "TOML parse error at line 1",
        ),
        (
            "field.toml",
            b"[[rule]]\neffect = \"hang\"\nprobability = 1.5\n",
            "rule 1 at line 1: field \"probability\"",
        ),
        (
            "channel.toml",
            b"[[rule]]\neffect = \"hang\"\nnth = 1\nchannel = 9\n",
            "field \"channel\"",
        ),
    ];
    for (name, text, says) in cases {
        let plan = scratch.file(name, text);
        let run = run_dmalab(&["run", "--faults", s(&plan)], LIMIT);
        assert_eq!(run.code(), 64, "{run}");
        let lines: Vec<&str> = run.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "one line: {run}");
        assert!(lines[0].starts_with("dmalab: bad fault plan '"), "{run}");
        assert!(lines[0].contains(name) && lines[0].contains(says), "{run}");
    }
    let run = run_dmalab(&["run", "--control", "/no/such/dir/ctl.sock"], LIMIT);
    if kvm_usable("a_bad_control_path_is_a_usage_error") {
        assert_eq!(run.code(), 64, "{run}");
        assert!(
            run.stderr
                .contains("cannot listen on the control socket /no/such/dir/ctl.sock"),
            "{run}"
        );
    }
    let run = run_dmalab(&["run", "--faults", "/no/such/plan.toml"], LIMIT);
    assert_eq!(run.code(), 64, "{run}");
    assert!(
        run.stderr
            .starts_with("dmalab: cannot read fault plan '/no/such/plan.toml'"),
        "{run}"
    );
}

#[test]
fn ctl_talks_to_a_stepped_run_and_rejects_bad_requests_with_64() {
    let test = "ctl_talks_to_a_stepped_run_and_rejects_bad_requests_with_64";
    if !kvm_usable(test) {
        return;
    }
    let scratch = Scratch::new("ctl");
    let socket = scratch.path().join("ctl.sock");
    let mut vm = common::Live::spawn(&[
        "run",
        "--scenario",
        "dma-smoke",
        "--timing",
        "stepped",
        "--timeout",
        "60",
        "--control",
        s(&socket),
    ]);
    let deadline = std::time::Instant::now() + LIMIT;
    while !socket.exists() {
        assert!(std::time::Instant::now() < deadline, "no control socket");
        std::thread::sleep(Duration::from_millis(5));
    }
    let ctl = |words: &[&str]| {
        let mut argv = vec!["ctl", "--socket", s(&socket), "--json"];
        argv.extend_from_slice(words);
        run_dmalab(&argv, LIMIT)
    };
    let run = ctl(&["version"]);
    assert_eq!(run.code(), 0, "{run}");
    assert_eq!(
        run.stdout.trim(),
        format!("{{\"version\":{}}}", dmalab_protocol::control::VERSION)
    );
    for words in [&["now"][..], &["step", "0"]] {
        let run = ctl(words);
        assert_eq!(run.code(), 0, "{run}");
        let answer: Answer = serde_json::from_str(run.stdout.trim()).expect("an answer");
        assert!(matches!(answer, Answer::Time { .. }), "{run}");
    }
    let bad = ctl(&["jump"]);
    assert_eq!(bad.code(), 64, "{bad}");
    // The VM runs on: step it to the end, as any client would.
    let (n, _) = stepper(socket.clone(), NEXT, LIMIT).join().unwrap();
    assert!(n > 0);
    while vm.running() {
        assert!(
            std::time::Instant::now() < deadline,
            "the stepped run did not end"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let gone = ctl(&["now"]);
    assert_eq!(gone.code(), 64, "{gone}");
    assert!(
        gone.stderr.contains("cannot connect to control socket"),
        "{gone}"
    );
}

/// In realtime mode the guest's TSC and the device's CYCLE register agree
/// over an idle spin and over milliseconds of device work (the guest's
/// checks), and the report measures how late the device's completions were.
#[test]
fn realtime_device_time_agrees_with_the_guest_tsc_and_lateness_is_reported() {
    if !kvm_usable("realtime_device_time_agrees_with_the_guest_tsc_and_lateness_is_reported") {
        return;
    }
    let scratch = Scratch::new("clock-agree");
    let path = scratch.path().join("r.json");
    let run = run_scenario(
        "clock-agree",
        &["--timing", "realtime", "--report", s(&path)],
    );
    assert_eq!(run.code(), 0, "{run}");
    for check in ["idle-window", "device-work"] {
        assert!(
            run.stdout.contains(&format!("clock-agree: {check} ok")),
            "{check}\n{run}"
        );
    }
    let report = report(&path);
    let completion = report.lateness["completion"];
    assert_eq!(completion.count, 8, "{report:?}");
    assert!(completion.p50_ns <= completion.p99_ns && completion.p99_ns <= completion.max_ns);
    assert!(
        run.stderr
            .contains("dmalab: realtime lateness: completion p50"),
        "{run}"
    );
}

/// Whether this process may use SCHED_FIFO: CAP_SYS_NICE (bit 23) in its
/// effective set.
fn has_sys_nice() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .is_some_and(|caps| caps & (1 << 23) != 0)
}

/// `--realtime-priority` and `--realtime-spin` keep the guest's and the
/// device's clocks in agreement; without the privilege to use SCHED_FIFO
/// the run is refused with one line before the guest runs.
#[test]
fn realtime_priority_and_spin_keep_the_clocks_agreed_and_refuse_without_privilege() {
    if !kvm_usable("realtime_priority_and_spin_keep_the_clocks_agreed_and_refuse_without_privilege")
    {
        return;
    }
    let args = [
        "--timing",
        "realtime",
        "--realtime-priority",
        "10",
        "--realtime-spin",
        "50",
    ];
    let refused = |out: &std::process::Output| {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(70), "{stdout}\n{stderr}");
        assert!(
            stderr
                .contains("--realtime-priority 10: cannot put the device thread under SCHED_FIFO"),
            "{stderr}"
        );
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        assert!(!stdout.contains("boot:"), "the guest never ran: {stdout}");
    };
    if has_sys_nice() {
        let run = run_scenario("clock-agree", &args);
        assert_eq!(run.code(), 0, "{run}");
        for check in ["idle-window", "device-work"] {
            assert!(
                run.stdout.contains(&format!("clock-agree: {check} ok")),
                "{check}\n{run}"
            );
        }
        // The same run without CAP_SYS_NICE (util-linux's setpriv).
        let out = std::process::Command::new("setpriv")
            .args([
                "--bounding-set",
                "-sys_nice",
                "--inh-caps",
                "-sys_nice",
                "--",
            ])
            .arg(common::dmalab())
            .args(["run", "--scenario", "clock-agree"])
            .args(args)
            .output()
            .expect("setpriv (util-linux) runs dmalab");
        refused(&out);
    } else {
        let out = std::process::Command::new(common::dmalab())
            .args(["run", "--scenario", "clock-agree"])
            .args(args)
            .output()
            .expect("spawn dmalab");
        refused(&out);
    }
}
