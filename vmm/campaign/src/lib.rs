//! `dmalab campaign [PATHS…]`: fault-injection scenarios as a CI job.
//!
//! The campaign is: the named scenarios (`*.toml` files under PATHS,
//! default `tests/scenarios` when neither PATHS nor `--random` is given,
//! sorted by name) followed by `--random N` drawn scenarios
//! `random-<S>-<k>` (`random.rs`). `--partition` keeps one shard of that
//! list (`partition.rs`). Every scenario file is loaded and checked before
//! anything runs: a bad one is one line and exit 64. Then `child_runs.rs` runs
//! them in parallel child VMs, the oracle (`oracle.rs`, its bounds in
//! `bounds.rs`) judges each, and
//! this module prints progress, a results table, the replay command of
//! each failure and the summary line `campaign: N passed, M failed`, and
//! writes `--junit` (`junit.rs`). Exit 0 iff every scenario passed, 1
//! otherwise, 64 on bad input. `docs/campaign.md` is the user guide.
//!
//! Files: each scenario's plan, report, console and stderr go to the run
//! directory (`--out DIR`, else `<junit>.files/` beside the JUnit file,
//! else `$TMPDIR/dmalab-campaign-<pid>`); the files of passing scenarios
//! are removed unless `--keep`, so what is left is what a failure's replay
//! command needs.

mod args;
pub mod bounds;
pub mod child_runs;
pub mod cost;
pub mod failure;
pub mod junit;
pub mod merge;
pub mod oracle;
pub mod oracle_params;
mod outputs;
pub mod partition;
pub mod random;
pub mod relation;
pub mod scenario;
pub use dmalab_protocol::symbols;

use std::collections::BTreeSet;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use dmalab_protocol::status;
use scenario::{Scenario, ScenarioError};

use args::fixed;
pub use args::CampaignArgs;

/// Why a campaign could not start or finish its output.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    #[error("cannot read '{}' (give PATHS: scenario files or directories)", path.display())]
    Path {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("two scenarios are named '{name}': '{}' and '{}' (names must be unique)", first.display(), second.display())]
    Duplicate {
        name: String,
        first: PathBuf,
        second: PathBuf,
    },
    #[error("no scenario to run: '{}' holds no *.toml file", path.display())]
    Empty { path: PathBuf },
    #[error("no scenario named '{name}' (give the PATHS that hold it, or random-<S>-<k>)")]
    NoSuchScenario { name: String },
    #[error("no guest kernel at '{}'", path.display())]
    Kernel { path: PathBuf },
    #[error("'merge' comes right after 'campaign' and takes no campaign options: dmalab campaign merge OUT SHARD… (a directory named merge is ./merge)")]
    MergeNotFirst,
    #[error("the Linux guest image: {why}")]
    Linux { why: String },
    #[error("cannot find the dmalab binary to run scenarios")]
    Exe(#[source] std::io::Error),
    #[error("cannot write '{}': {why} (give a writable path)", path.display())]
    BadOutput { path: PathBuf, why: String },
    #[error("cannot write '{}'", path.display())]
    Output {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// The exit status: 64 for bad input, 70 when output cannot be written.
    pub fn status(&self) -> u8 {
        match self {
            Error::Exe(_) | Error::Output { .. } => status::INTERNAL,
            _ => status::USAGE,
        }
    }
}

/// The directory scenarios are taken from when no PATHS are given.
pub const DEFAULT_DIR: &str = "tests/scenarios";

/// Every `*.toml` below `dir`, recursively.
fn toml_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), Error> {
    let err = |source| Error::Path {
        path: dir.to_path_buf(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(err)? {
        let path = entry.map_err(err)?.path();
        if path.is_dir() {
            toml_files(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "toml") {
            out.push(path);
        }
    }
    Ok(())
}

/// The named scenarios of `paths`, loaded, checked and sorted by name.
pub fn load_named(paths: &[PathBuf]) -> Result<Vec<Scenario>, Error> {
    let mut files = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path).map_err(|source| Error::Path {
            path: path.clone(),
            source,
        })?;
        if meta.is_dir() {
            let before = files.len();
            toml_files(path, &mut files)?;
            if files.len() == before {
                return Err(Error::Empty { path: path.clone() });
            }
        } else {
            files.push(path.clone());
        }
    }
    files.sort();
    files.dedup();
    let mut scenarios = Vec::with_capacity(files.len());
    for file in &files {
        scenarios.push(Scenario::load(file)?);
    }
    scenarios.sort_by(|a, b| a.name.cmp(&b.name));
    for pair in scenarios.windows(2) {
        if pair[0].name == pair[1].name {
            let path = |s: &Scenario| match &s.origin {
                scenario::Origin::File(p) => p.clone(),
                scenario::Origin::Random { .. } => PathBuf::new(),
            };
            return Err(Error::Duplicate {
                name: pair[0].name.clone(),
                first: path(&pair[0]),
                second: path(&pair[1]),
            });
        }
    }
    Ok(scenarios)
}

/// The whole campaign in campaign order, before partitioning (with
/// `--replay NAME`: that one scenario).
pub fn campaign(args: &CampaignArgs) -> Result<Vec<Scenario>, Error> {
    // `dmalab campaign -j 2 merge …`: clap takes `merge` after an option
    // for a PATH; the literal word is the subcommand misplaced.
    if args.paths.iter().any(|p| p.as_os_str() == "merge") {
        return Err(Error::MergeNotFirst);
    }
    if let Some(path) = &args.kernel {
        if !path.is_file() {
            return Err(Error::Kernel { path: path.clone() });
        }
    }
    let mut all = match &args.replay {
        Some(name) => replayed(args, name)?,
        None => listed(args)?,
    };
    let mut linux: Option<PathBuf> = None;
    for s in &mut all {
        if let Some(cap) = args.timeout {
            s.timeout = s.timeout.min(cap);
        }
        if s.kernel.is_some() {
            continue;
        }
        match s.guest {
            scenario::Guest::Dmalab => s.kernel.clone_from(&args.kernel),
            scenario::Guest::Linux => {
                if linux.is_none() {
                    let from = match &s.origin {
                        scenario::Origin::File(path) => path.clone(),
                        scenario::Origin::Random { .. } => PathBuf::from("."),
                    };
                    linux = Some(linux_image(&from)?);
                }
                s.kernel.clone_from(&linux);
            }
        }
    }
    Ok(all)
}

/// The Linux guest image: `$DMALAB_LINUX_VMLINUX`, else what
/// `images/linux/build.sh` of the repository holding the scenario file
/// `from` (or the current directory) builds or finds in its cache; it
/// prints the vmlinux path as its last line.
fn linux_image(from: &Path) -> Result<PathBuf, Error> {
    if let Some(path) = std::env::var_os("DMALAB_LINUX_VMLINUX") {
        return Ok(PathBuf::from(path));
    }
    let failed = |why: String| Error::Linux { why };
    let from = std::fs::canonicalize(from).unwrap_or_else(|_| from.to_path_buf());
    let cwd = std::env::current_dir().unwrap_or_default();
    let script = from
        .ancestors()
        .chain(cwd.ancestors())
        .map(|dir| dir.join(LINUX_BUILD))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            failed(format!(
                "no {LINUX_BUILD} above '{}' or here: set DMALAB_LINUX_VMLINUX",
                from.display()
            ))
        })?;
    let out = std::process::Command::new(&script)
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| failed(format!("cannot run {LINUX_BUILD}: {e}")))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let path = PathBuf::from(stdout.lines().last().unwrap_or_default().trim());
    if !out.status.success() || !path.is_file() {
        return Err(failed(format!("{LINUX_BUILD} failed ({})", out.status)));
    }
    Ok(path)
}

/// Builds the Linux guest image (docs/linux-guest.md).
const LINUX_BUILD: &str = "images/linux/build.sh";

/// `--replay NAME`: the one scenario of that name.
fn replayed(args: &CampaignArgs, name: &str) -> Result<Vec<Scenario>, Error> {
    if let Some((seed, index)) = random::parse_name(name) {
        return Ok(vec![random::scenario(seed, index, &fixed(args))]);
    }
    let paths = if args.paths.is_empty() {
        vec![PathBuf::from(DEFAULT_DIR)]
    } else {
        args.paths.clone()
    };
    let found: Vec<Scenario> = load_named(&paths)?
        .into_iter()
        .filter(|s| s.name == name)
        .collect();
    if found.is_empty() {
        return Err(Error::NoSuchScenario {
            name: name.to_string(),
        });
    }
    Ok(found)
}

/// The command that reruns one scenario of this campaign and judges it.
pub fn replay_line(args: &CampaignArgs, s: &Scenario) -> String {
    let mut words = vec!["dmalab".to_string(), "campaign".to_string()];
    if let scenario::Origin::File(path) = &s.origin {
        words.push(path.display().to_string());
    } else {
        if let Some(w) = &args.workload {
            words.extend(["--workload".into(), w.clone()]);
        }
        if let Some(c) = &args.random_cmdline {
            words.extend(["--random-cmdline".into(), c.clone()]);
        }
        if args.random_timing != "mixed" {
            words.extend(["--random-timing".into(), args.random_timing.clone()]);
        }
    }
    if let Some(k) = &args.kernel {
        words.extend(["--kernel".into(), k.display().to_string()]);
    }
    if let Some(t) = args.timeout {
        words.extend(["--timeout".into(), t.to_string()]);
    }
    words.extend(["--replay".into(), s.name.clone()]);
    words
        .iter()
        .map(|w| child_runs::shell_word(w))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The named scenarios and the random ones.
fn listed(args: &CampaignArgs) -> Result<Vec<Scenario>, Error> {
    let paths = if args.paths.is_empty() && args.random == 0 {
        vec![PathBuf::from(DEFAULT_DIR)]
    } else {
        args.paths.clone()
    };
    let mut all = load_named(&paths)?;
    let names: BTreeSet<String> = all.iter().map(|s| s.name.clone()).collect();
    let fixed = fixed(args);
    for k in 0..args.random {
        let s = random::scenario(args.seed, k, &fixed);
        if names.contains(&s.name) {
            return Err(Error::Duplicate {
                name: s.name,
                first: PathBuf::from("(a scenario file)"),
                second: PathBuf::from("--random"),
            });
        }
        all.push(s);
    }
    Ok(all)
}

/// `dmalab campaign`: returns the exit status. `builtin_guest` is the
/// guest image `dmalab run` uses without `--kernel` (its symbols name
/// where a timed-out guest was).
pub fn run(args: &CampaignArgs, builtin_guest: &[u8]) -> u8 {
    match campaign_run(args, builtin_guest) {
        Ok(status) => status,
        Err(e) => {
            eprintln!("dmalab: {}", dmalab_protocol::one_line(&e));
            e.status()
        }
    }
}

fn campaign_run(args: &CampaignArgs, builtin_guest: &[u8]) -> Result<u8, Error> {
    outputs::check(args)?;
    let all = campaign(args)?;
    let keep = args.keep || args.replay.is_some();
    let builtin = symbols::Symbols::from_elf(builtin_guest);
    let mut by_kernel: std::collections::BTreeMap<PathBuf, symbols::Symbols> = Default::default();
    for s in &all {
        if let Some(k) = &s.kernel {
            by_kernel.entry(k.clone()).or_insert_with(|| {
                symbols::Symbols::from_elf(&std::fs::read(k).unwrap_or_default())
            });
        }
    }
    let in_shard = match (&args.partition, &args.replay) {
        (Some(p), None) => p.keep(&all),
        _ => vec![true; all.len()],
    };
    let scenarios: Vec<Scenario> = all
        .into_iter()
        .zip(in_shard)
        .filter(|(_, mine)| *mine)
        .map(|(s, _)| s)
        .collect();
    let exe = std::env::current_exe().map_err(Error::Exe)?;
    let dir = outputs::run_dir(args);
    std::fs::create_dir_all(&dir).map_err(|source| Error::Output {
        path: dir.clone(),
        source,
    })?;
    let jobs = args.jobs.map(usize::from).unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    let total = scenarios.len();
    let tty = std::io::stdout().is_terminal();
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "campaign: {total} scenarios{}, {jobs} jobs, files in {}",
        args.partition
            .map(|p| format!(" (shard {}/{})", p.shard, p.total))
            .unwrap_or_default(),
        dir.display()
    );
    let start = Instant::now();
    let mut count = 0;
    let finished = child_runs::run_all(&exe, &scenarios, &dir, jobs, args.retries, |f| {
        count += 1;
        let s = &scenarios[f.index];
        let verdict = if f.violations.is_empty() {
            "PASS"
        } else {
            "FAIL"
        };
        if tty && verdict == "PASS" {
            let _ = write!(out, "\r[{count}/{total}] {verdict} {:<40}", s.name);
            let _ = out.flush();
        } else {
            let _ = writeln!(
                out,
                "{}[{count}/{total}] {verdict} {} ({:.2} s, {} faults)",
                if tty { "\r" } else { "" },
                s.name,
                f.seconds,
                f.outcome.faults_applied()
            );
        }
    });
    let seconds = start.elapsed().as_secs_f64();
    if tty {
        let _ = writeln!(out);
    }
    let mut cases = Vec::with_capacity(finished.len());
    let width = scenarios
        .iter()
        .map(|s| s.name.len())
        .max()
        .unwrap_or(4)
        .max(8);
    let _ = writeln!(
        out,
        "\n{:<width$}  result  seconds  faults applied",
        "scenario"
    );
    for f in &finished {
        let s = &scenarios[f.index];
        let files = child_runs::Files::new(&dir, &s.name);
        let result = if f.violations.is_empty() {
            "pass"
        } else {
            "FAIL"
        };
        let _ = writeln!(
            out,
            "{:<width$}  {result:<6}  {:>7.2}  {}",
            s.name,
            f.seconds,
            fault_list(&f.outcome)
        );
        let tail: Vec<&str> = f.outcome.console.lines().rev().take(40).collect();
        let syms = s
            .kernel
            .as_ref()
            .and_then(|k| by_kernel.get(k))
            .unwrap_or(&builtin);
        let evidence = if f.violations.is_empty() && f.flaky.is_empty() {
            Vec::new()
        } else {
            failure::evidence(&f.outcome, Some(syms))
        };
        cases.push(junit::Case {
            name: s.name.clone(),
            seconds: f.seconds,
            failures: f.violations.clone(),
            evidence,
            run: child_runs::replay_command(s, &files),
            replay: replay_line(args, s),
            console_tail: tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
            flaky: f.flaky.clone(),
        });
        if result == "pass" && !keep {
            for path in files.all() {
                let _ = std::fs::remove_file(path);
            }
        }
    }
    let failed: Vec<&junit::Case> = cases.iter().filter(|c| !c.failures.is_empty()).collect();
    for case in &failed {
        let _ = writeln!(out, "\nFAILED {}:", case.name);
        for v in &case.failures {
            let _ = writeln!(out, "  {v}");
        }
        for line in &case.evidence {
            let _ = writeln!(out, "  {line}");
        }
        let _ = writeln!(out, "replay: {}", case.replay);
        let _ = writeln!(out, "run:    {}", case.run);
    }
    let flaky: Vec<&junit::Case> = cases.iter().filter(|c| !c.flaky.is_empty()).collect();
    for case in &flaky {
        let _ = writeln!(
            out,
            "\nFLAKY {} (failed, then passed on a retry):",
            case.name
        );
        for v in &case.flaky {
            let _ = writeln!(out, "  {v}");
        }
        let _ = writeln!(out, "replay: {}", case.replay);
    }
    if let Some(path) = &args.junit {
        std::fs::write(path, junit::render(&cases, seconds)).map_err(|source| Error::Output {
            path: path.clone(),
            source,
        })?;
    }
    if failed.is_empty() && flaky.is_empty() && !keep {
        // Only removes the directory if nothing else is in it.
        let _ = std::fs::remove_dir(&dir);
    }
    let _ = writeln!(
        out,
        "campaign: {total} scenarios in {seconds:.1} s ({:.1} scenarios/s, {jobs} jobs)",
        total as f64 / seconds.max(1e-9)
    );
    if !flaky.is_empty() {
        let _ = writeln!(out, "campaign: {} flaky (passed on a retry)", flaky.len());
    }
    let _ = writeln!(
        out,
        "campaign: {} passed, {} failed",
        total - failed.len(),
        failed.len()
    );
    Ok(if failed.is_empty() { 0 } else { 1 })
}

/// `drop-interrupt 1, hang 2`, or `-`.
fn fault_list(outcome: &oracle::Outcome) -> String {
    let counts = outcome.fault_counts();
    if counts.is_empty() {
        return "-".into();
    }
    counts
        .iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}
