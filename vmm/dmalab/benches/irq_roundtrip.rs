//! Interrupt round-trip benchmark: doorbell → device → MSI → guest ISR →
//! EOI round trips at queue depth 1, three ways in one run:
//!
//! - `floor`: a bare KVM guest and ioctl loop in this benchmark
//!   (`floor/`): MMIO doorbell exit → `KVM_SIGNAL_MSI` from the vCPU
//!   thread → ISR → EOI → `iretq`. No device, no bus: the least any VMM
//!   can do on this host.
//! - `floor-ioeventfd`: the same bare guest with its doorbell a KVM
//!   ioeventfd and a relay thread writing an irqfd: the least an
//!   ioeventfd doorbell costs on this host, before any device work (for
//!   reading the `ioeventfd` figure; ratios are still to `floor`).
//! - `exit`: `dmalab run --scenario irq-bench --timing instant
//!   --doorbell exit`: the `TAIL` write is handled in the vCPU's MMIO exit
//!   (64-byte copy with IOC through the device model, MSI-X via irqfd).
//! - `ioeventfd`: the same with `--doorbell ioeventfd`: the `TAIL` write is
//!   a KVM ioeventfd (no exit), the device thread takes the tail from the
//!   shadow.
//!
//! Every path is timed in the guest with the TSC, one sample per round
//! trip (from just before the doorbell write to back in the waiting loop),
//! with the same iteration count; the floor guest's loop is the dmalab
//! scenario's loop minus the driver. The paths alternate (floor,
//! floor-ioeventfd, exit, ioeventfd, floor, …) over several rounds so drift
//! (other builds on the two cores, thermal, page cache) hits all of them
//! alike; one warm-up round is run first and not counted. Printed: each
//! run, then per path the median over rounds of the run's p50 round-trip
//! time and of its round trips per second, and the ratios path / floor. The
//! goal: the best dmalab path within 1.3× the floor's round-trip time.
//!
//! Both guests also time a self-IPI round trip (the same wait and ISR,
//! no VMM: the guest's own interrupt path; irq-bench's `ipi_ns_p50`), and
//! irq-bench the doorbell write alone (`kick_ns_p50`). A second table
//! splits each round trip into that guest-alone part and the rest
//! (doorbell, VMM, device, MSI delivery), so a gap to the floor can be
//! placed on the guest's or on the host's side.
//!
//!     cargo bench -p dmalab --bench irq_roundtrip
//!     cargo bench -p dmalab --bench irq_roundtrip -- --iters 5000 --rounds 9
//!     cargo bench -p dmalab --bench irq_roundtrip -- --floor-only
//!
//! `DMALAB_BENCH_ITERS` and `DMALAB_BENCH_ROUNDS` set the defaults (2000
//! iterations, 5 rounds). Exit status 1 when a path fails to run or its
//! result does not check out; the goal is reported, not enforced.

mod common;
mod floor;

use serde_json::Value;

const GOAL_RATIO: f64 = 1.3;
const DEFAULT_ITERS: u32 = 2000;
const DEFAULT_ROUNDS: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Path {
    Floor,
    FloorIoeventfd,
    Exit,
    Ioeventfd,
}

impl Path {
    fn name(self) -> &'static str {
        match self {
            Path::Floor => "floor",
            Path::FloorIoeventfd => "floor-ioeventfd",
            Path::Exit => "exit",
            Path::Ioeventfd => "ioeventfd",
        }
    }
}

/// One run of one path, as the guest measured it.
#[derive(Debug, Clone, Copy)]
struct Measurement {
    rt_ns_p50: f64,
    rt_ns_min: f64,
    rt_ns_max: f64,
    rt_per_sec: f64,
    /// p50 of the guest's self-IPI round trip (its own interrupt path,
    /// no VMM), where the path reports it.
    ipi_ns_p50: Option<f64>,
    /// p50 of the doorbell write alone (irq-bench's `kick_ns_p50`).
    kick_ns_p50: Option<f64>,
}

#[derive(Debug)]
struct Args {
    iters: u32,
    rounds: usize,
    floor_only: bool,
}

fn parse_args() -> Result<Args, String> {
    let env = |name: &str| std::env::var(name).ok();
    let mut iters = env("DMALAB_BENCH_ITERS").unwrap_or_default();
    let mut rounds = env("DMALAB_BENCH_ROUNDS").unwrap_or_default();
    let mut floor_only = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--iters" => iters = args.next().ok_or("--iters needs a number")?,
            "--rounds" => rounds = args.next().ok_or("--rounds needs a number")?,
            "--floor-only" => floor_only = true,
            "--bench" => {} // cargo bench passes it to every bench binary
            other => return Err(format!("unknown argument '{other}'")),
        }
    }
    let iters = if iters.is_empty() {
        DEFAULT_ITERS
    } else {
        iters
            .parse()
            .ok()
            .filter(|n| (1..=floor::MAX_ITERS).contains(n))
            .ok_or(format!(
                "iterations '{iters}': want 1 to {}",
                floor::MAX_ITERS
            ))?
    };
    let rounds = if rounds.is_empty() {
        DEFAULT_ROUNDS
    } else {
        rounds
            .parse()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or(format!("rounds '{rounds}': want 1 or more"))?
    };
    Ok(Args {
        iters,
        rounds,
        floor_only,
    })
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("irq_roundtrip: {e}");
            std::process::exit(2);
        }
    };
    let image = match floor::assemble() {
        Ok(i) => i,
        Err(e) => {
            eprintln!("irq_roundtrip: {}", chain(&e));
            std::process::exit(1);
        }
    };
    let paths: &[Path] = if args.floor_only {
        &[Path::Floor, Path::FloorIoeventfd]
    } else {
        &[
            Path::Floor,
            Path::FloorIoeventfd,
            Path::Exit,
            Path::Ioeventfd,
        ]
    };
    println!(
        "irq_roundtrip: {} iterations per run, {} rounds + 1 warm-up, paths {}",
        args.iters,
        args.rounds,
        paths
            .iter()
            .map(|p| p.name())
            .collect::<Vec<_>>()
            .join(", ")
    );

    let mut results: Vec<Vec<Measurement>> = vec![Vec::new(); paths.len()];
    let mut failed = false;
    for round in 0..=args.rounds {
        for (i, &path) in paths.iter().enumerate() {
            let label = if round == 0 {
                "warm-up".to_string()
            } else {
                format!("round {round}")
            };
            match run_path(path, &image, args.iters) {
                Ok(m) => {
                    let extra = |name: &str, v: Option<f64>| {
                        v.map(|ns| format!("  {name} {:.2}", ns / 1e3))
                            .unwrap_or_default()
                    };
                    println!(
                        "  {label:<8} {:<15} p50 {:>8.2} µs  min {:>8.2}  max {:>9.2}  {:>8.0} rt/s{}{}",
                        path.name(),
                        m.rt_ns_p50 / 1e3,
                        m.rt_ns_min / 1e3,
                        m.rt_ns_max / 1e3,
                        m.rt_per_sec,
                        extra("self-IPI", m.ipi_ns_p50),
                        extra("doorbell", m.kick_ns_p50),
                    );
                    if round > 0 {
                        results[i].push(m);
                    }
                }
                Err(e) => {
                    println!("  {label:<8} {:<15} FAILED: {e}", path.name());
                    failed = true;
                }
            }
        }
    }
    summarize(paths, &results);
    if failed {
        std::process::exit(1);
    }
}

fn run_path(path: Path, image: &[u8], iters: u32) -> Result<Measurement, String> {
    match path {
        Path::Floor => run_floor(image, iters, floor::Doorbell::Exit),
        Path::FloorIoeventfd => run_floor(image, iters, floor::Doorbell::Ioeventfd),
        Path::Exit => run_dmalab("exit", iters),
        Path::Ioeventfd => run_dmalab("ioeventfd", iters),
    }
}

fn run_floor(image: &[u8], iters: u32, doorbell: floor::Doorbell) -> Result<Measurement, String> {
    floor::measure(image, iters, doorbell)
        .map_err(|e| chain(&e))
        .and_then(|run| floor_measurement(&run, iters))
}

/// The floor's samples reduced the way the guest scenario reports them:
/// p50 = the middle element of the sorted samples; rate = iterations over
/// the whole loop's time.
fn floor_measurement(run: &floor::FloorRun, iters: u32) -> Result<Measurement, String> {
    if run.tsc_khz == 0 || run.samples.is_empty() || run.cycles_total == 0 {
        return Err("the floor reported no TSC frequency or no samples".into());
    }
    let ns = |cycles: u64| cycles as f64 * 1e6 / f64::from(run.tsc_khz);
    let mut sorted = run.samples.clone();
    sorted.sort_unstable();
    let mut ipi = run.ipi_samples.clone();
    ipi.sort_unstable();
    Ok(Measurement {
        rt_ns_p50: ns(sorted[sorted.len() / 2]),
        rt_ns_min: ns(sorted[0]),
        rt_ns_max: ns(sorted[sorted.len() - 1]),
        rt_per_sec: f64::from(iters) * 1e9 / ns(run.cycles_total),
        ipi_ns_p50: ipi.get(ipi.len() / 2).map(|c| ns(*c)),
        kick_ns_p50: None,
    })
}

fn run_dmalab(doorbell: &str, iters: u32) -> Result<Measurement, String> {
    // ~30–100 µs per round trip; give slow hosts 1 ms each, 30 s at least.
    let timeout = (u64::from(iters) / 1000).max(30);
    let v = common::run_bench_scenario("irq-bench", doorbell, iters, timeout)?;
    measurement(&v)
}

/// Takes the figures of a checked `irq-bench` DMALAB-RESULT
/// (`wiring-contract`) and checks they add up.
fn measurement(v: &Value) -> Result<Measurement, String> {
    let field = |name: &str| {
        v.get(name)
            .and_then(Value::as_f64)
            .ok_or(format!("DMALAB-RESULT lacks a number '{name}': {v}"))
    };
    let m = Measurement {
        rt_ns_p50: field("rt_ns_p50")?,
        rt_ns_min: field("rt_ns_min")?,
        rt_ns_max: field("rt_ns_max")?,
        rt_per_sec: field("rt_per_sec")?,
        ipi_ns_p50: field("ipi_ns_p50").ok(),
        kick_ns_p50: field("kick_ns_p50").ok(),
    };
    let ordered = 0.0 < m.rt_ns_min && m.rt_ns_min <= m.rt_ns_p50 && m.rt_ns_p50 <= m.rt_ns_max;
    if !ordered || m.rt_per_sec <= 0.0 {
        return Err(format!("irq-bench figures do not add up: {v}"));
    }
    Ok(m)
}

fn median(values: &mut [f64]) -> Option<f64> {
    values.sort_unstable_by(f64::total_cmp);
    values.get(values.len() / 2).copied()
}

/// Per path over the counted rounds: median p50, lowest min, highest max,
/// median rate.
#[derive(Debug, Clone, Copy)]
struct Summary {
    p50: f64,
    min: f64,
    max: f64,
    rate: f64,
    runs: usize,
    ipi: Option<f64>,
    kick: Option<f64>,
}

fn summary(runs: &[Measurement]) -> Option<Summary> {
    let pick = |f: fn(&Measurement) -> f64| median(&mut runs.iter().map(f).collect::<Vec<_>>());
    Some(Summary {
        p50: pick(|m| m.rt_ns_p50)?,
        min: runs.iter().map(|m| m.rt_ns_min).reduce(f64::min)?,
        max: runs.iter().map(|m| m.rt_ns_max).reduce(f64::max)?,
        rate: pick(|m| m.rt_per_sec)?,
        runs: runs.len(),
        ipi: median(&mut runs.iter().filter_map(|m| m.ipi_ns_p50).collect::<Vec<_>>()),
        kick: median(
            &mut runs
                .iter()
                .filter_map(|m| m.kick_ns_p50)
                .collect::<Vec<_>>(),
        ),
    })
}

fn summarize(paths: &[Path], results: &[Vec<Measurement>]) {
    let summaries: Vec<Option<Summary>> = results.iter().map(|r| summary(r)).collect();
    let of = |path: Path| {
        paths
            .iter()
            .position(|p| *p == path)
            .and_then(|i| summaries[i])
    };
    let floor = of(Path::Floor);
    println!();
    println!(
        "{:<15} {:>9} {:>9} {:>9} {:>9} {:>5}  {:>9} {:>10}",
        "path", "p50 µs", "min µs", "max µs", "rt/s", "runs", "p50/floor", "floor rt/s"
    );
    println!(
        "{:<15} {:>9} {:>9} {:>9} {:>9} {:>5}  {:>9} {:>10}",
        "", "", "", "", "", "", "", "/ rt/s"
    );
    for (path, s) in paths.iter().zip(&summaries) {
        let Some(s) = s else {
            println!("{:<15} (no successful run)", path.name());
            continue;
        };
        let (time_ratio, rate_ratio) = match floor {
            Some(f) => (
                format!("{:.2}×", s.p50 / f.p50),
                format!("{:.2}×", f.rate / s.rate),
            ),
            None => ("-".into(), "-".into()),
        };
        println!(
            "{:<15} {:>9.2} {:>9.2} {:>9.2} {:>9.0} {:>5}  {:>9} {:>10}",
            path.name(),
            s.p50 / 1e3,
            s.min / 1e3,
            s.max / 1e3,
            s.rate,
            s.runs,
            time_ratio,
            rate_ratio
        );
    }
    guest_share(paths, &summaries);
    if let (Some(d), Some(f)) = (of(Path::Ioeventfd), of(Path::FloorIoeventfd)) {
        println!(
            "ioeventfd path: {:.2}× its mechanism's floor (floor-ioeventfd)",
            d.p50 / f.p50
        );
    }
    let best = [Path::Exit, Path::Ioeventfd]
        .into_iter()
        .filter_map(|p| of(p).map(|s| (p, s.p50)))
        .min_by(|a, b| a.1.total_cmp(&b.1));
    match (best, floor) {
        (Some((path, p50)), Some(f)) => {
            let ratio = p50 / f.p50;
            println!(
                "best dmalab path: {} at {ratio:.2}× the floor's p50 round trip (goal ≤ {GOAL_RATIO}×: {})",
                path.name(),
                if ratio <= GOAL_RATIO { "met" } else { "missed" }
            );
        }
        (None, _) if paths.contains(&Path::Exit) => println!("no dmalab path ran: no ratio"),
        _ => {}
    }
}

/// Splits each round trip into the guest's own interrupt path (its
/// self-IPI round trip, same wait and ISR, no VMM) and the rest (doorbell,
/// VMM, device, MSI delivery), for the paths that measured both.
fn guest_share(paths: &[Path], summaries: &[Option<Summary>]) {
    let rows: Vec<(Path, Summary, f64)> = paths
        .iter()
        .zip(summaries)
        .filter_map(|(p, s)| s.and_then(|s| Some((*p, s, s.ipi?))))
        .collect();
    if rows.is_empty() {
        return;
    }
    println!();
    println!(
        "{:<15} {:>9} {:>12} {:>12} {:>12}",
        "path", "rt p50 µs", "self-IPI µs", "rt−IPI µs", "doorbell µs"
    );
    for (path, s, ipi) in rows {
        let kick = s
            .kick
            .map_or("-".to_string(), |k| format!("{:.2}", k / 1e3));
        println!(
            "{:<15} {:>9.2} {:>12.2} {:>12.2} {:>12}",
            path.name(),
            s.p50 / 1e3,
            ipi / 1e3,
            (s.p50 - ipi) / 1e3,
            kick
        );
    }
    println!("(self-IPI: the guest's own interrupt path; rt−IPI: what the doorbell, the VMM, the device and the MSI add)");
}

/// `error: source: source …` on one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
