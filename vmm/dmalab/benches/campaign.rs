//! Campaign benchmark: scenarios per second of `dmalab campaign` on this
//! machine (the goal: >= 10 booted scenarios/s on 2 cores).
//!
//! Each round runs the built binary as CI would, `dmalab campaign --random
//! N --seed S` (the default workload: `copy irps=8`, instant mode, jobs =
//! cores), then the named scenarios of `tests/scenarios`; it prints each
//! round's wall time and scenarios/s and the median over rounds. Every
//! scenario boots its own VM, runs the workload under its fault plan and is
//! checked by the oracle; a failing campaign stops the benchmark.
//!
//!     cargo bench -p dmalab --bench campaign            # 3 rounds of 100
//!     cargo bench -p dmalab --bench campaign -- 200     # 3 rounds of 200
//!     DMALAB_BENCH_ROUNDS=5 cargo bench -p dmalab --bench campaign

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

fn arg_or_env(env: &str, default: u64) -> u64 {
    let from_arg = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .and_then(|a| a.parse().ok());
    let from_env = std::env::var(env).ok().and_then(|v| v.parse().ok());
    if env == "DMALAB_BENCH_SCENARIOS" {
        from_arg.or(from_env).unwrap_or(default).max(1)
    } else {
        from_env.unwrap_or(default).max(1)
    }
}

/// Runs one campaign; returns (scenarios, wall seconds).
fn campaign(args: &[&str]) -> (u64, f64) {
    let start = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_dmalab"))
        .arg("campaign")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run dmalab campaign");
    let wall = start.elapsed().as_secs_f64();
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        eprintln!(
            "dmalab campaign {args:?} failed ({})\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        std::process::exit(1);
    }
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with("campaign: ") && l.contains(" passed, "))
        .expect("summary line");
    let passed = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("campaign: N passed");
    (passed, wall)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let n = arg_or_env("DMALAB_BENCH_SCENARIOS", 100);
    let rounds = arg_or_env("DMALAB_BENCH_ROUNDS", 3);
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    let named = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/scenarios");
    let named = named.to_str().expect("UTF-8 path").to_string();
    println!(
        "campaign: {rounds} rounds of `dmalab campaign --random {n}` and of {named}, {cores} cores"
    );
    let mut random_rates = Vec::new();
    let mut named_rates = Vec::new();
    for round in 0..rounds {
        let seed = (1000 + round).to_string();
        let (count, wall) = campaign(&["--random", &n.to_string(), "--seed", &seed]);
        let rate = count as f64 / wall;
        println!(
            "  round {round}: random {count} scenarios in {wall:.2} s = {rate:.1} scenarios/s"
        );
        random_rates.push(rate);
        let (count, wall) = campaign(&[&named]);
        let rate = count as f64 / wall;
        println!(
            "  round {round}: named  {count} scenarios in {wall:.2} s = {rate:.1} scenarios/s"
        );
        named_rates.push(rate);
    }
    println!(
        "campaign: random (copy irps=8, instant) median {:.1} scenarios/s; named median {:.1} scenarios/s",
        median(random_rates),
        median(named_rates)
    );
}
