//! [campaign] integration tests: `dmalab campaign` end to end (the CI
//! campaign itself: every named scenario and 200 random plans), failures
//! with their replay commands, partitions, bad input, and the determinism
//! of random plans (the same plan and seed give byte-identical fault logs
//! and device traces, in instant and in stepped mode).

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{kvm_usable, run_dmalab, stepper, Run, Scratch};
use dmalab_campaign::random;
use dmalab_protocol::control::{Request, StepTo};

const NEXT: Request = Request::Step { to: StepTo::Event };
use dmalab_protocol::report::RunReport;

const LIMIT: Duration = Duration::from_secs(170);

/// The seed of the CI campaign's random plans.
const CI_SEED: &str = "2026";

fn s(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

fn scenarios_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/scenarios")
}

/// How many `*.toml` files are below `dir` (the campaign recurses too).
fn toml_files(dir: &Path) -> u64 {
    let mut n = 0;
    for entry in std::fs::read_dir(dir).expect("a scenario directory") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            n += toml_files(&path);
        } else if path.extension().is_some_and(|x| x == "toml") {
            n += 1;
        }
    }
    n
}

/// `campaign: N passed, M failed` → (N, M).
fn summary(run: &Run) -> (u64, u64) {
    let line = run
        .stdout
        .lines()
        .rev()
        .find(|l| l.starts_with("campaign: ") && l.contains(" passed, "))
        .unwrap_or_else(|| panic!("no summary line\n{run}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(
        (words.len(), words[2], words[4]),
        (5, "passed,", "failed"),
        "{line}"
    );
    (words[1].parse().unwrap(), words[3].parse().unwrap())
}

#[test]
fn the_ci_campaign_passes_every_named_scenario_and_200_random_plans() {
    if !kvm_usable("the_ci_campaign_passes_every_named_scenario_and_200_random_plans") {
        return;
    }
    let named = toml_files(&scenarios_dir());
    assert!(named >= 15, "only {named} named scenarios");
    let scratch = Scratch::new("campaign-ci");
    let junit = scratch.path().join("campaign.xml");
    let run = run_dmalab(
        &[
            "campaign",
            s(&scenarios_dir()),
            "--random",
            "200",
            "--seed",
            CI_SEED,
            "--retries",
            "1",
            "--junit",
            s(&junit),
        ],
        LIMIT,
    );
    let _ = writeln!(
        std::io::stderr(),
        "CI campaign: {named} named + 200 random in {:.1} s",
        run.elapsed.as_secs_f64()
    );
    assert_eq!(run.code(), 0, "{run}");
    assert_eq!(summary(&run), (named + 200, 0), "{run}");
    let xml = std::fs::read_to_string(&junit).expect("JUnit written");
    assert!(
        xml.contains(&format!("tests=\"{}\" failures=\"0\"", named + 200)),
        "{xml}"
    );
    assert_eq!(xml.matches("<testcase ").count() as u64, named + 200);
    assert!(xml.contains("name=\"lost-interrupt\"") || xml.contains("name=\"drop-interrupt\""));
    assert!(xml.contains(&format!("name=\"random-{CI_SEED}-199\"")));
    // The table lists every scenario with the faults applied.
    assert!(run.stdout.contains("scenario") && run.stdout.contains("faults applied"));
    assert!(
        run.stdout.contains(&format!("random-{CI_SEED}-0 ")),
        "{run}"
    );
}

#[test]
fn a_failing_scenario_fails_the_campaign_and_its_replay_command_reproduces_it() {
    if !kvm_usable("a_failing_scenario_fails_the_campaign_and_its_replay_command_reproduces_it") {
        return;
    }
    let scratch = Scratch::new("campaign-fail");
    // The plan drops one interrupt; the scenario wrongly expects two.
    scratch.file(
        "wrong.toml",
        b"workload = \"copy\"\ncmdline = \"irps=4\"\nseed = 3\n\
          [[faults.rule]]\neffect = \"drop-interrupt\"\nnth = 2\n\
          [expect]\nfaults = { \"drop-interrupt\" = 2 }\n\
          relations = [\"watchdog_recoveries == 2\"]\n",
    );
    scratch.file(
        "right.toml",
        b"workload = \"copy\"\ncmdline = \"irps=4\"\n\
          [[faults.rule]]\neffect = \"drop-interrupt\"\nnth = 2\n\
          [expect]\nfaults = { \"drop-interrupt\" = 1 }\n\
          relations = [\"watchdog_recoveries == faults.drop-interrupt\"]\n",
    );
    let junit = scratch.path().join("out/junit.xml");
    std::fs::create_dir_all(junit.parent().unwrap()).unwrap();
    let run = run_dmalab(
        &[
            "campaign",
            s(scratch.path()),
            "--junit",
            s(&junit),
            "-j",
            "2",
        ],
        LIMIT,
    );
    assert_eq!(run.code(), 1, "{run}");
    assert_eq!(summary(&run), (1, 1), "{run}");
    assert!(
        run.stdout.contains("faults.drop-interrupt = 1, expected 2"),
        "{run}"
    );
    assert!(
        run.stdout
            .contains("relation watchdog_recoveries == 2 fails: 1 vs 2"),
        "{run}"
    );
    // The failure block points at the fault: the fault log's entry.
    assert!(run.stdout.contains("fault log (1 applied):"), "{run}");
    assert!(
        run.stdout.contains("    seq 2 ch 0 @"),
        "the dropped interrupt's descriptor\n{run}"
    );
    let line = |prefix: &str| {
        run.stdout
            .lines()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} line\n{run}"))
            .to_string()
    };
    let wrong = scratch.path().join("wrong.toml");
    assert_eq!(
        line("replay: "),
        format!("dmalab campaign {} --replay wrong", wrong.display())
    );
    let replay = line("run:    ");
    assert!(replay.starts_with("dmalab run --scenario copy --cmdline irps=4 --faults "));
    let files = scratch.path().join("out/junit.xml.files");
    assert!(
        replay.contains(&format!("{}/wrong.plan.toml", files.display())),
        "{replay}"
    );
    assert!(
        files.join("wrong.plan.toml").exists(),
        "the failure's plan is kept"
    );
    assert!(
        !files.join("right.plan.toml").exists(),
        "a pass's files are removed"
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("tests=\"2\" failures=\"1\""), "{xml}");
    assert!(
        xml.contains("<failure message=\"faults.drop-interrupt = 1, expected 2\""),
        "{xml}"
    );
    // The replay command runs the same VM again: same faults, same result.
    let read = || {
        RunReport::from_json(&std::fs::read_to_string(files.join("wrong.report.json")).unwrap())
            .unwrap()
    };
    let first = read();
    let words: Vec<&str> = replay.split_whitespace().skip(1).collect();
    let again = run_dmalab(&words, LIMIT);
    assert_eq!(again.code(), 0, "{again}");
    let second = read();
    assert_eq!(first.device.faults, second.device.faults);
    for r in [&first, &second] {
        let result = r.result.as_ref().expect("a result line");
        assert_eq!(result.number("watchdog_recoveries"), Ok(1.0));
    }
    // The replay line reruns the one scenario and judges it: the same
    // verdict, exit status included.
    let again = run_dmalab(&["campaign", s(&wrong), "--replay", "wrong"], LIMIT);
    assert_eq!(again.code(), 1, "{again}");
    assert_eq!(summary(&again), (0, 1), "{again}");
    assert!(
        again
            .stdout
            .contains("faults.drop-interrupt = 1, expected 2"),
        "{again}"
    );
    let right = scratch.path().join("right.toml");
    let again = run_dmalab(&["campaign", s(&right), "--replay", "right"], LIMIT);
    assert_eq!(again.code(), 0, "{again}");
}

#[test]
fn partitions_split_a_campaign_into_disjoint_shards_that_cover_it() {
    if !kvm_usable("partitions_split_a_campaign_into_disjoint_shards_that_cover_it") {
        return;
    }
    let names = |run: &Run| -> Vec<String> {
        let mut v: Vec<String> = run
            .stdout
            .lines()
            .filter(|l| l.starts_with("random-") && l.contains(" pass "))
            .map(|l| l.split_whitespace().next().unwrap().to_string())
            .collect();
        v.sort();
        v
    };
    for scheme in ["count", "hash"] {
        let mut all = Vec::new();
        for m in 1..=3 {
            let part = format!("{scheme}:{m}/3");
            let run = run_dmalab(
                &[
                    "campaign",
                    "--random",
                    "7",
                    "--seed",
                    "5",
                    "--partition",
                    &part,
                ],
                LIMIT,
            );
            assert_eq!(run.code(), 0, "{run}");
            let shard = names(&run);
            assert_eq!(summary(&run).0, shard.len() as u64, "{run}");
            if scheme == "count" {
                // k mod 3 + 1 == m, in campaign order.
                let want: Vec<String> = (0..7u64)
                    .filter(|k| k % 3 + 1 == m)
                    .map(|k| format!("random-5-{k}"))
                    .collect();
                let mut want = want;
                want.sort();
                assert_eq!(shard, want, "{part}");
            }
            all.extend(shard);
        }
        all.sort();
        let mut want: Vec<String> = (0..7).map(|k| format!("random-5-{k}")).collect();
        want.sort();
        assert_eq!(all, want, "{scheme} shards cover the campaign once");
    }
}

#[test]
fn a_bad_scenario_file_is_one_line_and_exit_64_before_anything_runs() {
    let scratch = Scratch::new("campaign-bad");
    scratch.file("good.toml", b"workload = \"copy\"\ncmdline = \"irps=2\"\n");
    let bad = scratch.file(
        "bad.toml",
        b"workload = \"copy\"\n[[faults.rule]]\neffect = \"hang\"\nnth = 0\n",
    );
    let out = scratch.path().join("out");
    let run = run_dmalab(&["campaign", s(scratch.path()), "--out", s(&out)], LIMIT);
    assert_eq!(run.code(), 64, "{run}");
    assert_eq!(run.stderr.lines().count(), 1, "{run}");
    assert!(
        run.stderr
            .contains(&format!("bad scenario '{}'", bad.display()))
            && run.stderr.contains("field \"faults.rule[1].nth\""),
        "{run}"
    );
    assert!(!run.stdout.contains("campaign:"), "nothing ran\n{run}");
    assert!(!out.exists(), "nothing ran\n{run}");
    let run = run_dmalab(&["campaign", "/no/such/scenarios"], LIMIT);
    assert_eq!(run.code(), 64, "{run}");
    assert!(
        run.stderr.contains("cannot read '/no/such/scenarios'"),
        "{run}"
    );
    let run = run_dmalab(&["campaign", "--partition", "4/3"], LIMIT);
    assert_eq!(run.code(), 64, "{run}");

    // Output paths are checked before anything runs; no directory is made.
    let junit = scratch.path().join("no-such-dir").join("x.xml");
    let good = scratch.path().join("good.toml");
    let run = run_dmalab(&["campaign", s(&good), "--junit", s(&junit)], LIMIT);
    assert_eq!(run.code(), 64, "{run}");
    assert_eq!(run.stderr.lines().count(), 1, "{run}");
    assert!(run.stderr.contains("does not exist"), "{run}");
    assert!(!run.stdout.contains("campaign:"), "nothing ran\n{run}");
    assert!(!junit.parent().unwrap().exists(), "{run}");
    let nested = scratch.path().join("a").join("b");
    let run = run_dmalab(&["campaign", s(&good), "--out", s(&nested)], LIMIT);
    assert_eq!(run.code(), 64, "{run}");
    assert!(!nested.parent().unwrap().exists(), "{run}");
    let run = run_dmalab(&["campaign", s(&good), "--out", s(&good)], LIMIT);
    assert_eq!(run.code(), 64, "{run}");
    assert!(run.stderr.contains("is not a directory"), "{run}");

    // `merge` after a campaign option is the subcommand misplaced, not a
    // PATH: one line naming the right order, nothing written.
    let merged = scratch.path().join("all.xml");
    let run = run_dmalab(
        &["campaign", "-j", "2", "merge", s(&merged), s(&good)],
        LIMIT,
    );
    assert_eq!(run.code(), 64, "{run}");
    assert_eq!(run.stderr.lines().count(), 1, "{run}");
    assert!(
        run.stderr.contains("dmalab campaign merge OUT SHARD"),
        "{run}"
    );
    assert!(!run.stdout.contains("campaign:"), "nothing ran\n{run}");
    assert!(!merged.exists(), "{run}");
}

#[test]
fn a_random_plan_run_twice_gives_identical_fault_logs_and_traces_in_instant_and_stepped_mode() {
    if !kvm_usable("a_random_plan_run_twice_gives_identical_fault_logs_and_traces") {
        return;
    }
    // Random scenario 3 of seed 11: a probability rule (spurious
    // interrupts) plus whatever the generator added. Without the driver's
    // trace markers (on by default with --trace): a marker is stamped
    // with the device cycle at which the guest writes it, and in stepped
    // mode that races the stepping client; the device's own events do not.
    let fixed = random::Fixed {
        workload: Some("copy".into()),
        cmdline: Some("irps=8 markers=0".into()),
        timing: None,
    };
    let scenario = random::scenario(11, 3, &fixed);
    let scratch = Scratch::new("campaign-determinism");
    let plan = scratch.file("plan.toml", scenario.plan_toml.as_bytes());
    let seed = scenario.seed.to_string();
    for timing in ["instant", "stepped"] {
        let mut logs = Vec::new();
        let mut traces = Vec::new();
        for round in 0..2 {
            let trace = scratch.path().join(format!("{timing}-{round}.trace.json"));
            let report = scratch.path().join(format!("{timing}-{round}.report.json"));
            let socket = scratch.path().join(format!("{timing}-{round}.sock"));
            let steps = (timing == "stepped").then(|| stepper(socket.clone(), NEXT, LIMIT));
            let run = run_dmalab(
                &[
                    "run",
                    "--scenario",
                    &scenario.workload,
                    "--cmdline",
                    &scenario.cmdline,
                    "--faults",
                    s(&plan),
                    "--seed",
                    &seed,
                    "--timing",
                    timing,
                    "--doorbell",
                    "exit",
                    "--timeout",
                    "60",
                    "--control",
                    s(&socket),
                    "--trace",
                    s(&trace),
                    "--report",
                    s(&report),
                ],
                LIMIT,
            );
            assert_eq!(run.code(), 0, "{timing} round {round}\n{run}");
            if let Some(steps) = steps {
                assert!(steps.join().unwrap().0 > 0, "the stepper stepped");
            }
            let report = RunReport::from_json(&std::fs::read_to_string(&report).unwrap()).unwrap();
            assert!(
                report.device.faults_applied() > 0,
                "the plan applied faults\n{run}"
            );
            logs.push(report.device.faults);
            traces.push(std::fs::read(&trace).unwrap());
        }
        assert!(traces[0].len() > 1000, "{timing}: a real trace");
        assert!(logs[0] == logs[1], "{timing}: fault logs differ");
        assert!(traces[0] == traces[1], "{timing}: device traces differ");
    }
}

#[test]
fn a_driver_from_outside_the_tree_is_built_and_the_campaign_catches_its_bug() {
    let test = "a_driver_from_outside_the_tree_is_built_and_the_campaign_catches_its_bug";
    if !kvm_usable(test) {
        return;
    }
    // The reference driver, copied out of the tree, with the fatal-error
    // check removed from recover(): a fatal DMA error is retried.
    let scratch = Scratch::new("campaign-your-driver");
    let kernel = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../guest-driver/kernel");
    let driver = scratch.path().join("mydrv");
    std::fs::create_dir_all(&driver).unwrap();
    for entry in std::fs::read_dir(kernel.join("dmadrv")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_owned();
        if name != "harness.c" {
            std::fs::copy(&path, driver.join(name)).unwrap();
        }
    }
    let isr = driver.join("isr_dpc.c");
    let text = std::fs::read_to_string(&isr).unwrap();
    let check = "\t\tif (code == DMADRV_CHERR_DMA_FATAL) {\n\
                 \t\t\tdmadrv_finish(x, STATUS_DEVICE_HARDWARE_ERROR);\n\
                 \t\t\treturn;\n\t\t}\n";
    assert!(text.contains(check), "recover() changed: update this test");
    std::fs::write(&isr, text.replace(check, "\t\t(void)code;\n")).unwrap();
    let out = scratch.path().join("build");
    let make = std::process::Command::new("make")
        .arg("-s")
        .arg("-C")
        .arg(&kernel)
        .arg(format!("O={}", out.display()))
        .arg(format!("DRIVER={}", driver.display()))
        .output()
        .expect("make runs");
    assert!(
        make.status.success(),
        "{}",
        String::from_utf8_lossy(&make.stderr)
    );
    let elf = out.join("dmalab-guest.elf");
    let fatal = scenarios_dir().join("dma-error-fatal-fails-irp.toml");
    let lost = scenarios_dir().join("drop-interrupt.toml");
    let run = run_dmalab(
        &[
            "campaign",
            s(&fatal),
            s(&lost),
            "--kernel",
            s(&elf),
            // random-3-8: stress on 4 channels with fatal and recoverable
            // errors (the oracle's own checks, no [expect]).
            "--random",
            "9",
            "--seed",
            "3",
            "--out",
            s(&scratch.path().join("run")),
        ],
        LIMIT,
    );
    assert_eq!(run.code(), 1, "{run}");
    let (passed, failed) = summary(&run);
    assert!(passed >= 1 && failed >= 2, "{run}");
    for line in [
        // The named scenario's expectations.
        "FAILED dma-error-fatal-fails-irp:",
        "retries = 1, expected 0",
        "fail_hw = 0, expected 1",
        "seq 2 ch 0 @9542 rule 1 dma-error fatal=true",
        // The oracle's parameter checks on a random plan.
        "FAILED random-3-8:",
        "a fatal error was retried",
        "a fatal error did not fail its IRP with STATUS_DEVICE_HARDWARE_ERROR",
    ] {
        assert!(run.stdout.contains(line), "{line:?}\n{run}");
    }
    let replay = format!(
        "replay: dmalab campaign {} --kernel {} --replay dma-error-fatal-fails-irp",
        fatal.display(),
        elf.display()
    );
    assert!(run.stdout.contains(&replay), "{replay}\n{run}");
}

#[test]
fn linux_scenarios_run_in_the_campaign() {
    if !kvm_usable("linux_scenarios_run_in_the_campaign") {
        return;
    }
    // Two Linux boots (~15-35 s each here): a lost interrupt recovered, a
    // fatal error failing its transfer with the harness reporting fail.
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/scenarios-linux");
    let scratch = Scratch::new("campaign-linux");
    let run = run_dmalab(
        &[
            "campaign",
            s(&dir),
            "-j",
            "2",
            "--out",
            s(&scratch.path().join("run")),
        ],
        LIMIT,
    );
    assert_eq!(run.code(), 0, "{run}");
    assert_eq!(summary(&run), (toml_files(&dir), 0), "{run}");
    assert!(run.stdout.contains("linux-dma-error-fatal "), "{run}");
}
