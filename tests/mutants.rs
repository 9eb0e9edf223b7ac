//! The campaign proves its strength on deliberate driver bugs
//! (`tests/mutants/*.patch`, one small bug each in the WDM-style DMA
//! driver, `guest-driver/kernel/dmadrv/`; tests/mutants/README.md).
//!
//! - `every_mutant_applies`: each patch applies to the driver as it is
//!   now, and the set keeps at least 10 mutants of the kinds below. Fast;
//!   part of `cargo test`.
//! - `the_campaign_kills_every_mutant` (ignored: minutes, not seconds):
//!   builds the guest with each mutant driver (`make DRIVER=`), runs the
//!   named scenarios plus a fixed random set against it
//!   (`dmalab campaign --kernel`), and prints which scenarios kill it and
//!   when the first did. A mutant no scenario kills is a gap in the
//!   campaign and fails the test. Run it with
//!   `cargo test -p dmalab --test mutants -- --ignored --nocapture`;
//!   figures in docs/benchmarks-campaign.md. `DMALAB_MUTANTS=name,name` runs only
//!   those mutants (after the baseline), e.g. to check that a new
//!   scenario or invariant kills one.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Kinds of bug the mutant set must cover (a mutant's file name starts
/// with its kind).
const KINDS: &[&str] = &[
    "completion",
    "bounds",
    "recovery",
    "race",
    "cancel",
    "irql",
    "ring",
];
/// The fixed random set every mutant meets, beside the named scenarios.
const RANDOM: &str = "60";
const SEED: &str = "11";
/// A failed scenario is run again up to this many times: a failure that
/// passes on a retry (host load: a verifier time limit, a timeout) is
/// flaky, not a kill.
const RETRIES: &str = "2";
/// A campaign against one mutant is stopped after this long; the
/// scenarios that failed by then are its killers.
const LIMIT: Duration = Duration::from_secs(300);
/// Every scenario's timeout in these campaigns (`campaign --timeout`),
/// seconds, instead of the scenarios' own 30 or 60 s: a mutant that
/// wedges its guest (one that never drains a record whose interrupt was
/// lost hangs every such scenario) fails each in this time, so the
/// campaign ends in bounded time and still names every killer. The
/// correct driver's longest scenario must stay under a third of it (the
/// baseline checks; `stress-all-kinds`, 0.64 s when last run,
/// docs/benchmarks-campaign.md), so the cap does not fail a correct run on a
/// loaded host.
const SCENARIO_TIMEOUT: f64 = 5.0;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn mutants() -> Vec<PathBuf> {
    let mut all: Vec<PathBuf> = std::fs::read_dir(root().join("tests/mutants"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "patch"))
        .collect();
    all.sort();
    all
}

fn stem(p: &Path) -> String {
    p.file_stem().unwrap().to_string_lossy().into_owned()
}

/// A fresh copy of the driver's sources in `dir`, headers included; the
/// `.c` files are rewritten every time (so `make` rebuilds only the
/// driver), the headers only once (so the kernel is built once).
fn fresh_driver(dir: &Path) {
    let src = root().join("guest-driver/kernel/dmadrv");
    std::fs::create_dir_all(dir).unwrap();
    for e in std::fs::read_dir(&src).unwrap() {
        let path = e.unwrap().path();
        let to = dir.join(path.file_name().unwrap());
        let header = path.extension().is_some_and(|e| e == "h");
        if !header || !to.exists() {
            std::fs::write(&to, std::fs::read(&path).unwrap()).unwrap();
        }
    }
}

fn apply(patch: &Path, dir: &Path, dry_run: bool) -> std::process::Output {
    let mut cmd = Command::new("patch");
    cmd.args(["-s", "-p1", "-d"]).arg(dir).arg("-i").arg(patch);
    if dry_run {
        cmd.arg("--dry-run");
    }
    cmd.output().expect("run patch(1)")
}

#[test]
fn every_mutant_applies() {
    let all = mutants();
    assert!(all.len() >= 10, "only {} mutants", all.len());
    for kind in KINDS {
        assert!(
            all.iter().any(|p| stem(p).starts_with(kind)),
            "no {kind} mutant"
        );
    }
    let dir = std::env::temp_dir().join(format!("dmalab-mutants-apply-{}", std::process::id()));
    fresh_driver(&dir);
    for patch in &all {
        let out = apply(patch, &dir, true);
        assert!(
            out.status.success(),
            "{} does not apply to guest-driver/kernel/dmadrv: {}{}",
            stem(patch),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The mutants named by `DMALAB_MUTANTS` (comma-separated), else all.
fn chosen_mutants() -> Vec<PathBuf> {
    let all = mutants();
    let Ok(names) = std::env::var("DMALAB_MUTANTS") else {
        return all;
    };
    let names: Vec<&str> = names
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .collect();
    for name in &names {
        assert!(
            all.iter().any(|p| stem(p) == *name),
            "DMALAB_MUTANTS: no mutant named {name} in tests/mutants/"
        );
    }
    all.into_iter()
        .filter(|p| names.contains(&stem(p).as_str()))
        .collect()
}

/// What the campaign did to one mutant.
struct Verdict {
    killers: Vec<String>,
    first_kill: Option<Duration>,
    elapsed: Duration,
    scenarios: usize,
    /// The longest scenario (its attempts together) and its name.
    longest: (f64, String),
}

fn campaign(kernel: &Path, out: &Path) -> Verdict {
    let start = Instant::now();
    let mut child = Command::new(common::dmalab())
        .current_dir(root())
        .args([
            "campaign",
            "tests/scenarios",
            "--random",
            RANDOM,
            "--seed",
            SEED,
            "--retries",
            RETRIES,
            "--timeout",
            &SCENARIO_TIMEOUT.to_string(),
        ])
        .arg("--kernel")
        .arg(kernel)
        .arg("--out")
        .arg(out)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send((line, Instant::now())).is_err() {
                break;
            }
        }
    });
    let mut v = Verdict {
        killers: Vec::new(),
        first_kill: None,
        elapsed: Duration::ZERO,
        scenarios: 0,
        longest: (0.0, String::new()),
    };
    loop {
        let left = LIMIT.saturating_sub(start.elapsed());
        match rx.recv_timeout(left) {
            Ok((line, at)) => {
                // Progress lines: "[k/N] PASS name (…)" / "[k/N] FAIL name (…)".
                let mut words = line.split_whitespace();
                let (Some(count), Some(verdict), Some(name)) =
                    (words.next(), words.next(), words.next())
                else {
                    continue;
                };
                if !count.starts_with('[') {
                    continue;
                }
                v.scenarios += 1;
                // "… name (0.05 s, 2 faults)"
                if let Some(secs) = words.next().and_then(|w| w.strip_prefix('(')?.parse().ok()) {
                    if secs > v.longest.0 {
                        v.longest = (secs, name.to_string());
                    }
                }
                if verdict == "FAIL" {
                    v.first_kill.get_or_insert(at - start);
                    v.killers.push(name.to_string());
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                break;
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    let _ = child.wait();
    v.elapsed = start.elapsed();
    v
}

/// Builds the guest with the driver patched by `patch` (none: as it is)
/// and runs the campaign on it.
fn run_one(name: &str, patch: Option<&Path>, work: &Path, driver: &Path, build: &Path) -> Verdict {
    fresh_driver(driver);
    if let Some(patch) = patch {
        let applied = apply(patch, driver, false);
        assert!(applied.status.success(), "{name} does not apply");
    }
    let made = Command::new("make")
        .arg("-s")
        .arg("-C")
        .arg(root().join("guest-driver/kernel"))
        .arg(format!("O={}", build.display()))
        .arg(format!("DRIVER={}", driver.display()))
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{name} does not build: {}",
        String::from_utf8_lossy(&made.stderr)
    );
    let kernel = work.join(format!("{name}.elf"));
    std::fs::copy(build.join("dmalab-guest.elf"), &kernel).unwrap();
    campaign(&kernel, &work.join(format!("{name}.files")))
}

#[test]
#[ignore = "builds a guest per mutant and runs a campaign on each: minutes (docs/benchmarks-campaign.md)"]
fn the_campaign_kills_every_mutant() {
    if !common::kvm_usable("the_campaign_kills_every_mutant") {
        return;
    }
    let work = std::env::temp_dir().join(format!("dmalab-mutants-{}", std::process::id()));
    let driver = work.join("driver");
    let build = work.join("build");
    let mut survivors = Vec::new();
    let mut rows = Vec::new();
    // The driver as it is: what fails here is not a kill.
    let baseline = run_one("baseline", None, &work, &driver, &build);
    eprintln!(
        "baseline (no mutant): {} of {} scenarios fail{}",
        baseline.killers.len(),
        baseline.scenarios,
        if baseline.killers.is_empty() {
            String::new()
        } else {
            format!(": {}", baseline.killers.join(" "))
        }
    );
    eprintln!(
        "baseline's longest scenario: {} {:.2} s (each capped at {SCENARIO_TIMEOUT} s)",
        baseline.longest.1, baseline.longest.0
    );
    assert!(
        baseline.longest.0 * 3.0 <= SCENARIO_TIMEOUT,
        "the correct driver's {} took {:.2} s: too close to the {SCENARIO_TIMEOUT} s cap for a \
         timeout to mean a mutant",
        baseline.longest.1,
        baseline.longest.0
    );
    let chosen = chosen_mutants();
    for patch in chosen {
        let name = stem(&patch);
        let mut v = run_one(&name, Some(&patch), &work, &driver, &build);
        v.killers.retain(|k| !baseline.killers.contains(k));
        let row = format!(
            "{name:<32} killed by {:>2} of {:>2}  first kill {:>7}  campaign {:>6.1} s  {}",
            v.killers.len(),
            v.scenarios,
            v.first_kill
                .map_or("-".into(), |d| format!("{:.1} s", d.as_secs_f64())),
            v.elapsed.as_secs_f64(),
            v.killers.join(" ")
        );
        eprintln!("{row}");
        rows.push(row);
        if v.killers.is_empty() {
            survivors.push(name);
        }
    }
    let total = rows.len();
    eprintln!(
        "mutants killed: {}/{total}\n{}",
        total - survivors.len(),
        rows.join("\n")
    );
    assert!(
        survivors.is_empty(),
        "mutants the campaign does not kill (gaps): {survivors:?}"
    );
}
