//! Process start → `DMALAB-RESULT` of the Linux guest (dmatest + KUnit by
//! the image's harness), with the number of instructions KVM emulated.
//!
//!     cargo bench -p dmalab --bench linux_boot            # 5 runs
//!     cargo bench -p dmalab --bench linux_boot -- 9       # 9 runs
//!
//! The kernel is `DMALAB_LINUX_VMLINUX`, or what `images/linux/build.sh`
//! prints last (building it if needed). Each run is
//! `perf stat -e kvm:kvm_emulate_insn -x, -- dmalab run --kernel … --timing
//! instant` when `perf` can count that tracepoint (root, the kvm module's
//! tracepoints; `DMALAB_BENCH_PERF=0` turns it off), else `dmalab` alone.
//! The time is taken when the result line reaches the bench through the
//! pipe, from just before the spawn. Figures: `docs/benchmarks.md`, "Linux
//! guest".

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

struct Sample {
    to_result: Duration,
    emulated: Option<u64>,
    result: Value,
}

fn vmlinux() -> PathBuf {
    if let Some(path) = std::env::var_os("DMALAB_LINUX_VMLINUX") {
        return PathBuf::from(path);
    }
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../images/linux/build.sh");
    let out = Command::new(&script)
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(out.status.success(), "{} failed", script.display());
    let stdout = String::from_utf8_lossy(&out.stdout);
    PathBuf::from(stdout.lines().last().unwrap_or_default().trim())
}

fn perf_usable() -> bool {
    if std::env::var("DMALAB_BENCH_PERF").as_deref() == Ok("0") {
        return false;
    }
    Command::new("perf")
        .args(["stat", "-e", "kvm:kvm_emulate_insn", "-x,", "--", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn one_run(kernel: &str, perf: bool, perf_out: &std::path::Path) -> Sample {
    let dmalab = env!("CARGO_BIN_EXE_dmalab");
    let run = [
        "run",
        "--kernel",
        kernel,
        "--timing",
        "instant",
        "--timeout",
        "120",
    ];
    let mut command = if perf {
        let mut c = Command::new("perf");
        c.args(["stat", "-e", "kvm:kvm_emulate_insn", "-x,", "-o"])
            .arg(perf_out)
            .arg("--")
            .arg(dmalab);
        c
    } else {
        Command::new(dmalab)
    };
    command
        .args(run)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let start = Instant::now();
    let mut child = command.spawn().expect("spawn dmalab");
    let stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut found = None;
    for line in stdout.lines() {
        let Ok(line) = line else { break };
        if let Some(at) = line.find("DMALAB-RESULT ") {
            found = Some((start.elapsed(), line[at + 14..].to_string()));
        }
    }
    let status = child.wait().expect("wait for dmalab");
    let (to_result, json) = found.unwrap_or_else(|| panic!("no DMALAB-RESULT line ({status})"));
    let result: Value = serde_json::from_str(&json).expect("result line is JSON");
    assert_eq!(result["status"], "pass", "the guest failed: {json}");
    let emulated = perf
        .then(|| std::fs::read_to_string(perf_out).ok())
        .flatten()
        .and_then(|text| {
            text.lines()
                .find(|l| l.contains("kvm:kvm_emulate_insn"))
                .and_then(|l| l.split(',').next())
                .and_then(|n| n.trim().parse().ok())
        });
    Sample {
        to_result,
        emulated,
        result,
    }
}

fn median<T: Copy + Ord>(mut values: Vec<T>) -> T {
    values.sort_unstable();
    values[values.len() / 2]
}

fn main() {
    let runs: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(5);
    let kernel = vmlinux();
    let kernel = kernel.display().to_string();
    let perf = perf_usable();
    let perf_out =
        std::env::temp_dir().join(format!("dmalab-linux-bench-{}.perf", std::process::id()));
    println!("linux_boot: {runs} runs of {kernel} (perf: {perf})");
    let mut samples = Vec::with_capacity(runs);
    for i in 0..runs {
        let s = one_run(&kernel, perf, &perf_out);
        println!(
            "run {i}: {:.2} s to DMALAB-RESULT, emulated instructions {}, kunit cases {}, dmatest tests {}",
            s.to_result.as_secs_f64(),
            s.emulated.map_or("-".to_string(), |n| n.to_string()),
            s.result["kunit"]["cases"],
            s.result["dmatest"]["channels"]
                .as_array()
                .map_or(0, |c| c.iter().filter_map(|c| c["tests"].as_u64()).sum::<u64>()),
        );
        samples.push(s);
    }
    let _ = std::fs::remove_file(&perf_out);
    let times: Vec<Duration> = samples.iter().map(|s| s.to_result).collect();
    let (lo, hi) = (
        times.iter().min().copied().unwrap_or_default(),
        times.iter().max().copied().unwrap_or_default(),
    );
    println!(
        "start -> DMALAB-RESULT: median {:.2} s (min {:.2}, max {:.2}) over {runs} runs",
        median(times).as_secs_f64(),
        lo.as_secs_f64(),
        hi.as_secs_f64()
    );
    let counts: Vec<u64> = samples.iter().filter_map(|s| s.emulated).collect();
    if !counts.is_empty() {
        println!("kvm:kvm_emulate_insn: median {}", median(counts));
    }
}
