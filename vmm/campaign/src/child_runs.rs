//! Running scenarios: one child `dmalab run` per scenario, `jobs` at a
//! time, each with its own VM.
//!
//! Child processes rather than VMs in threads of this process: a scenario
//! that wedges KVM or dies by a signal takes only its child with it, the
//! command run is exactly the replay command printed for a failure, and
//! the VMM needs no campaign-specific code path. Workers take the next
//! scenario from a shared counter (work stealing in its simplest form),
//! so a slow scenario does not hold up a batch.
//!
//! Each scenario leaves four files in the run directory, named after it:
//! `<name>.plan.toml` (the `--faults` file), `<name>.report.json`
//! (`--report`), `<name>.console.txt` (the child's stdout, the guest
//! console) and `<name>.stderr.txt`. The child gets its `--timeout`; the
//! runner kills it [`GRACE`] later if it has not exited (the VMM's own
//! timeout failed). With `--retries N` a failed scenario runs again, up
//! to N times; one that passes on a retry is reported as flaky (a pass,
//! listed with the first attempt's findings), as cargo-nextest does.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use dmalab_protocol::report::RunReport;

use crate::oracle::{self, Outcome};
use crate::scenario::Scenario;

/// How long after its `--timeout` a child is killed.
pub const GRACE: Duration = Duration::from_secs(15);

/// The files of one scenario's run.
#[derive(Debug, Clone)]
pub struct Files {
    pub plan: PathBuf,
    pub report: PathBuf,
    pub console: PathBuf,
    pub stderr: PathBuf,
}

impl Files {
    pub fn new(dir: &Path, name: &str) -> Self {
        Files {
            plan: dir.join(format!("{name}.plan.toml")),
            report: dir.join(format!("{name}.report.json")),
            console: dir.join(format!("{name}.console.txt")),
            stderr: dir.join(format!("{name}.stderr.txt")),
        }
    }

    pub fn all(&self) -> [&Path; 4] {
        [&self.plan, &self.report, &self.console, &self.stderr]
    }
}

/// The `dmalab` arguments that run `scenario` (after the program name).
pub fn run_args(scenario: &Scenario, files: &Files) -> Vec<String> {
    let mut args: Vec<String> = vec!["run".into()];
    if let Some(kernel) = &scenario.kernel {
        args.extend(["--kernel".into(), kernel.display().to_string()]);
    }
    if scenario.guest == crate::scenario::Guest::Dmalab {
        args.extend(["--scenario".into(), scenario.workload.clone()]);
    }
    if !scenario.cmdline.is_empty() {
        args.extend(["--cmdline".into(), scenario.cmdline.clone()]);
    }
    args.extend([
        "--faults".into(),
        files.plan.display().to_string(),
        "--seed".into(),
        scenario.seed.to_string(),
        "--timing".into(),
        scenario.timing.name().into(),
        "--doorbell".into(),
        scenario.doorbell.clone(),
        "--timeout".into(),
        scenario.timeout.to_string(),
        "--report".into(),
        files.report.display().to_string(),
    ]);
    args
}

/// One shell word: quoted unless it is plain.
pub fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./=:,+@%".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

/// The command line that replays `scenario` exactly.
pub fn replay_command(scenario: &Scenario, files: &Files) -> String {
    let mut words = vec!["dmalab".to_string()];
    words.extend(run_args(scenario, files).iter().map(|w| shell_word(w)));
    words.join(" ")
}

/// A finished scenario.
#[derive(Debug, Clone)]
pub struct Finished {
    /// Its index in the list given to [`run_all`].
    pub index: usize,
    pub seconds: f64,
    pub outcome: Outcome,
    /// The oracle's findings on the last attempt; empty: passed.
    pub violations: Vec<String>,
    /// Runs made (1 + retries used).
    pub attempts: u32,
    /// The findings of the first failed attempt when a retry passed
    /// (a flaky scenario); empty otherwise.
    pub flaky: Vec<String>,
}

/// Runs one scenario as a child of `exe` and checks it.
pub fn run_one(exe: &Path, scenario: &Scenario, dir: &Path, index: usize) -> Finished {
    let files = Files::new(dir, &scenario.name);
    let start = Instant::now();
    let outcome = match spawn_and_wait(exe, scenario, &files) {
        Ok(outcome) => outcome,
        Err(e) => {
            return Finished {
                index,
                seconds: start.elapsed().as_secs_f64(),
                outcome: Outcome::default(),
                violations: vec![format!("cannot run dmalab: {e}")],
                attempts: 1,
                flaky: Vec::new(),
            }
        }
    };
    let violations = oracle::check(scenario, &outcome);
    Finished {
        index,
        seconds: start.elapsed().as_secs_f64(),
        outcome,
        violations,
        attempts: 1,
        flaky: Vec::new(),
    }
}

/// Realtime lateness beyond which a verdict may be the host's doing: half
/// the driver's watchdog period (10 ms), the shortest period its timing
/// decisions use. A device that ran this late against its model (the
/// host kept the device thread from a CPU) makes a correct driver's
/// watchdog act on requests that were not hung.
pub const HOST_LATE_NS: u64 = 5_000_000;

/// How late the host ran the device against its model (the run report's
/// realtime `lateness`, worst event kind), if late enough to flip a
/// verdict.
pub fn host_late(outcome: &Outcome) -> Option<u64> {
    let report = outcome.report.as_ref()?;
    let worst = report.lateness.values().map(|l| l.max_ns).max()?;
    (worst >= HOST_LATE_NS).then_some(worst)
}

/// The finding that says a verdict came from a run the host made late.
fn late_note(ns: u64) -> String {
    format!(
        "the device ran up to {:.1} ms late against its model in this run (host load), \
         beyond half the driver's 10 ms watchdog period: the verdict may depend on the host",
        ns as f64 / 1e6
    )
}

/// Runs a scenario, again up to `retries` times while it fails
/// (cargo-nextest's `--retries`): a pass on a retry is a flaky pass. A
/// failure in a run the host made late (`host_late`) gets one retry even
/// with `retries` 0, and a failure that stays late says so.
pub fn run_with_retries(
    exe: &Path,
    scenario: &Scenario,
    dir: &Path,
    index: usize,
    retries: u32,
) -> Finished {
    let mut finished = run_one(exe, scenario, dir, index);
    let mut first = finished.violations.clone();
    let retries = match host_late(&finished.outcome) {
        Some(ns) if !first.is_empty() => {
            first.push(late_note(ns));
            retries.max(1)
        }
        _ => retries,
    };
    let mut attempts = 1;
    while !finished.violations.is_empty() && attempts <= retries {
        let seconds = finished.seconds;
        finished = run_one(exe, scenario, dir, index);
        finished.seconds += seconds;
        attempts += 1;
    }
    finished.attempts = attempts;
    if finished.violations.is_empty() && attempts > 1 {
        finished.flaky = first;
    } else if let Some(ns) = host_late(&finished.outcome) {
        if !finished.violations.is_empty() {
            finished.violations.push(late_note(ns));
        }
    }
    finished
}

fn spawn_and_wait(exe: &Path, scenario: &Scenario, files: &Files) -> std::io::Result<Outcome> {
    std::fs::write(&files.plan, &scenario.plan_toml)?;
    let _ = std::fs::remove_file(&files.report);
    let mut child = Command::new(exe)
        .args(run_args(scenario, files))
        .stdin(Stdio::null())
        .stdout(File::create(&files.console)?)
        .stderr(File::create(&files.stderr)?)
        .spawn()?;
    // The child may extend its timeout by as much again for the time its
    // threads waited for a host CPU (docs/vmm.md, `--timeout`).
    let limit = Duration::from_secs_f64(2.0 * scenario.timeout) + GRACE;
    let deadline = Instant::now() + limit;
    let exit = loop {
        if let Some(status) = child.try_wait()? {
            break status.code();
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(1));
    };
    let console = std::fs::read(&files.console)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let stderr = std::fs::read(&files.stderr)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let report = std::fs::read_to_string(&files.report)
        .ok()
        .and_then(|text| RunReport::from_json(&text).ok());
    Ok(Outcome {
        exit,
        console,
        stderr,
        report,
    })
}

/// Runs every scenario, `jobs` at a time, calling `progress` on this
/// thread as each finishes; returns them in `scenarios` order.
pub fn run_all(
    exe: &Path,
    scenarios: &[Scenario],
    dir: &Path,
    jobs: usize,
    retries: u32,
    mut progress: impl FnMut(&Finished),
) -> Vec<Finished> {
    let next = AtomicUsize::new(0);
    let (tx, rx) = mpsc::channel();
    let mut done: Vec<Option<Finished>> = vec![None; scenarios.len()];
    thread::scope(|scope| {
        for _ in 0..jobs.clamp(1, scenarios.len().max(1)) {
            let tx = tx.clone();
            let next = &next;
            scope.spawn(move || loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some(scenario) = scenarios.get(index) else {
                    break;
                };
                let finished = run_with_retries(exe, scenario, dir, index, retries);
                if tx.send(finished).is_err() {
                    break;
                }
            });
        }
        drop(tx);
        for finished in rx {
            progress(&finished);
            let index = finished.index;
            done[index] = Some(finished);
        }
    });
    done.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_replay_command_is_the_run_command_quoted() {
        let text = "workload = \"copy\"\ncmdline = \"irps=8 seed=3\"\nseed = 5\n";
        let s = Scenario::parse(text, Path::new("x.toml"), "x").unwrap();
        let files = Files::new(Path::new("/tmp/c"), &s.name);
        assert_eq!(
            replay_command(&s, &files),
            "dmalab run --scenario copy --cmdline 'irps=8 seed=3' --faults /tmp/c/x.plan.toml \
             --seed 5 --timing instant --doorbell exit --timeout 60 --report /tmp/c/x.report.json"
        );
        assert_eq!(shell_word("it's"), "'it'\\''s'");
        assert_eq!(shell_word(""), "''");
    }

    #[test]
    fn a_missing_binary_is_a_failure_not_a_panic() {
        let s = Scenario::parse("workload = \"copy\"\n", Path::new("x.toml"), "x").unwrap();
        let dir = std::env::temp_dir().join(format!("dmalab-runner-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = run_one(Path::new("/no/such/dmalab"), &s, &dir, 0);
        assert!(
            f.violations[0].contains("cannot run dmalab"),
            "{:?}",
            f.violations
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A stand-in for dmalab that writes `report` as its run report and
    /// exits 0 (no result line: the oracle fails it every time).
    fn fake_dmalab(dir: &Path, report: &dmalab_protocol::report::RunReport) -> std::path::PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let json = dir.join("canned.json");
        std::fs::write(&json, serde_json::to_string(report).unwrap()).unwrap();
        let exe = dir.join("fake-dmalab");
        let script = format!(
            "#!/bin/sh\nwhile [ $# -gt 0 ]; do [ \"$1\" = --report ] && r=$2; shift; done\n\
             cp {} \"$r\"\n",
            json.display()
        );
        std::fs::write(&exe, script).unwrap();
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        exe
    }

    /// A failure in a run the host made late is retried once even without
    /// `--retries`, and still failing, says the verdict may depend on the
    /// host; a failure in a punctual run is neither.
    #[test]
    fn a_failure_in_a_late_run_is_retried_once_and_says_so() {
        use dmalab_protocol::report::{Lateness, RunReport};
        let s = Scenario::parse("workload = \"copy\"\n", Path::new("x.toml"), "x").unwrap();
        let dir = std::env::temp_dir().join(format!("dmalab-late-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut report = RunReport::default();
        let late = Lateness {
            count: 3,
            p50_ns: 50_000,
            p99_ns: HOST_LATE_NS,
            max_ns: 113_000_000,
        };
        report.lateness.insert("completion".into(), late);
        let exe = fake_dmalab(&dir, &report);
        let f = run_with_retries(&exe, &s, &dir, 0, 0);
        assert_eq!(f.attempts, 2, "{:?}", f.violations);
        let last = f.violations.last().unwrap();
        assert!(
            last.contains("113.0 ms late") && last.contains("may depend on the host"),
            "{last}"
        );

        report.lateness.insert(
            "completion".into(),
            Lateness {
                max_ns: HOST_LATE_NS - 1,
                ..late
            },
        );
        let exe = fake_dmalab(&dir, &report);
        let f = run_with_retries(&exe, &s, &dir, 0, 0);
        assert_eq!(f.attempts, 1);
        assert!(!f.violations.is_empty());
        assert!(
            f.violations.iter().all(|v| !v.contains("late")),
            "{:?}",
            f.violations
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
