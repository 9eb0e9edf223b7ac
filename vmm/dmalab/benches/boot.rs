//! Boot benchmark: runs the built `dmalab run --timings --scenario hello` N times and prints
//! median, min and max of each stamp (µs since `main` began), of the wall
//! time from spawn to exit as the parent sees it, and of the user-space
//! exits before READY.
//!
//!     cargo bench -p dmalab --bench boot               # 30 runs
//!     cargo bench -p dmalab --bench boot -- 100        # 100 runs
//!     DMALAB_BENCH_RUNS=100 cargo bench -p dmalab --bench boot
//!     DMALAB_BENCH_ARGS="--cpus 2" cargo bench -p dmalab --bench boot

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::Instant;

const STAMPS: [&str; 4] = ["vm-ready", "guest-entry", "guest-ready", "exit"];

fn runs() -> usize {
    let from_arg = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .and_then(|a| a.parse().ok());
    let from_env = std::env::var("DMALAB_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok());
    from_arg.or(from_env).unwrap_or(30).max(1)
}

fn main() {
    let n = runs();
    let extra = std::env::var("DMALAB_BENCH_ARGS").unwrap_or_default();
    let mut args = vec!["run", "--timings", "--scenario", "hello"];
    args.extend(extra.split_whitespace());
    println!("boot: {n} runs of dmalab {}", args.join(" "));

    let mut samples: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for i in 0..n {
        let start = Instant::now();
        let out = Command::new(env!("CARGO_BIN_EXE_dmalab"))
            .args(&args)
            .stdin(Stdio::null())
            .output()
            .expect("run dmalab");
        let wall = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            eprintln!("run {i}: dmalab failed ({})\n{stderr}", out.status);
            std::process::exit(1);
        }
        for line in stderr.lines() {
            let Some(rest) = line.strip_prefix("timings: ") else {
                continue;
            };
            let mut words = rest.split_whitespace();
            let (Some(name), Some(value)) = (words.next(), words.next()) else {
                continue;
            };
            if let (Some(stamp), Ok(v)) = (STAMPS.iter().find(|s| **s == name), value.parse()) {
                samples.entry(stamp).or_default().push(v);
            } else if name == "exits-before-ready" {
                if let Ok(v) = value.parse() {
                    samples.entry("exits-before-ready").or_default().push(v);
                }
            }
        }
        samples.entry("wall (spawn→exit)").or_default().push(wall);
    }

    println!("{:<20} {:>10} {:>10} {:>10}", "", "median", "min", "max");
    let order = STAMPS
        .iter()
        .copied()
        .chain(["wall (spawn→exit)", "exits-before-ready"]);
    for name in order {
        let Some(values) = samples.get_mut(name) else {
            println!("{name:<20} (never printed)");
            continue;
        };
        values.sort_unstable();
        let unit = if name == "exits-before-ready" {
            ""
        } else {
            " µs"
        };
        println!(
            "{name:<20} {:>10} {:>10} {:>10}{unit}  (n={})",
            values[values.len() / 2],
            values[0],
            values[values.len() - 1],
            values.len()
        );
    }
}
