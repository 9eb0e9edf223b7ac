//! IRP round-trip benchmark: the WDM-style DMA driver's IRP path beside
//! the raw interrupt round trip, in one run.
//!
//! - `irq-bench` ([wiring]): doorbell write → device → MSI-X → guest ISR
//!   (EOI) → back in the waiting loop, queue depth 1: the raw interrupt
//!   round trip.
//! - `irp-bench` (`guest-driver/kernel/scenarios/irp_bench.c`): a
//!   kernel-mode caller's IoCallDriver → DispatchDeviceControl →
//!   IoStartPacket → DriverStartIo (descriptor, doorbell) → MSI-X → the
//!   message ISR → DpcForIsr → IoStartNextPacket → IoCompleteRequest → the
//!   caller's event, at depth 1 (64-byte COPY, as irq-bench) and at depth
//!   32 (32 IRPs over the channels at once); the driver's ISR→DPC latency
//!   and DPC duration p50/p99; the depth-1 round trip split by segment
//!   (submit = I/O manager up to DriverStartIo + StartIo; dpc = the
//!   driver's own part + IoStartNextPacket/IoCompleteRequest).
//!
//! Both run `--timing instant --doorbell exit` with the same iteration
//! count, alternating over several rounds so host drift hits both alike.
//! Printed: each run, the medians over rounds, and the ratio of the
//! depth-1 IRP round trip to the raw interrupt round trip (the goal:
//! ≤ 1.3×; reported, not enforced).
//!
//!     cargo bench -p dmalab --bench irp_roundtrip
//!     cargo bench -p dmalab --bench irp_roundtrip -- --iters 2000 --rounds 5
//!
//! Exit status 1 when a run fails or its result does not check out.

use serde_json::Value;

mod common;

const GOAL_RATIO: f64 = 1.3;
const DEFAULT_ITERS: u32 = 1000;
const DEFAULT_ROUNDS: usize = 3;

const IRP_FIELDS: [&str; 16] = [
    "d1_rt_ns_p50",
    "d1_rt_ns_p99",
    "d1_irps_per_sec",
    "d1_isr_dpc_ns_p50",
    "d1_isr_dpc_ns_p99",
    "d1_dpc_ns_p50",
    "d1_dpc_ns_p99",
    "d32_irps_per_sec",
    "d32_lat_ns_p50",
    "d32_lat_ns_p99",
    "d32_isr_dpc_ns_p50",
    "d32_isr_dpc_ns_p99",
    "d32_dpc_ns_p50",
    "d32_dpc_ns_p99",
    "seg_submit_ns_p50",
    "seg_dpc_ns_p50",
];
const SEGMENTS: [&str; 9] = [
    "seg_submit_ns_p50",
    "seg_device_isr_ns_p50",
    "seg_isr_dpc_ns_p50",
    "seg_dpc_ns_p50",
    "seg_wake_ns_p50",
    "seg_to_startio_ns_p50",
    "seg_startio_ns_p50",
    "seg_dpc_driver_ns_p50",
    "seg_dpc_complete_ns_p50",
];

fn parse_args() -> Result<(u32, usize), String> {
    let env_num = |name: &str| std::env::var(name).ok().and_then(|v| v.parse().ok());
    let mut iters = env_num("DMALAB_BENCH_ITERS").unwrap_or(DEFAULT_ITERS);
    let mut rounds = env_num("DMALAB_BENCH_ROUNDS").map_or(DEFAULT_ROUNDS, |r: u32| r as usize);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--iters" => {
                iters = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .ok_or("--iters needs a number")?;
            }
            "--rounds" => {
                rounds = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .ok_or("--rounds needs a number")?;
            }
            "--bench" => {}
            other => {
                return Err(format!(
                    "unknown argument {other:?} (--iters N, --rounds N)"
                ))
            }
        }
    }
    if !(32..=100_000).contains(&iters) || rounds == 0 {
        return Err("--iters must be 32 … 100000 and --rounds at least 1".into());
    }
    Ok((iters, rounds))
}

/// Runs one scenario and returns its checked DMALAB-RESULT.
fn run(scenario: &str, iters: u32) -> Result<Value, String> {
    common::run_bench_scenario(scenario, "exit", iters, (u64::from(iters) / 200).max(60))
}

fn num(v: &Value, field: &str) -> Result<f64, String> {
    v[field]
        .as_f64()
        .filter(|x| *x > 0.0)
        .ok_or_else(|| format!("result lacks a positive '{field}': {v}"))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_unstable_by(f64::total_cmp);
    v[v.len() / 2]
}

fn us(ns: f64) -> String {
    format!("{:.1} µs", ns / 1000.0)
}

fn main() {
    let (iters, rounds) = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("irp_roundtrip: {e}");
            std::process::exit(2);
        }
    };
    println!(
        "irp_roundtrip: {iters} iterations, {rounds} rounds, --timing instant --doorbell exit"
    );
    let mut irq = Vec::new();
    let mut irp: Vec<Value> = Vec::new();
    for round in 0..rounds {
        let one = run("irq-bench", iters).and_then(|a| {
            let raw = num(&a, "rt_ns_p50")?;
            let b = run("irp-bench", iters)?;
            for f in IRP_FIELDS.iter().chain(&SEGMENTS) {
                num(&b, f)?;
            }
            Ok((raw, b))
        });
        match one {
            Ok((raw, b)) => {
                println!(
                    "round {round}: irq-bench rt p50 {}; irp-bench depth 1 rt p50 {} ({:.0} IRPs/s), depth 32 {:.0} IRPs/s",
                    us(raw),
                    us(b["d1_rt_ns_p50"].as_f64().unwrap_or(0.0)),
                    b["d1_irps_per_sec"].as_f64().unwrap_or(0.0),
                    b["d32_irps_per_sec"].as_f64().unwrap_or(0.0)
                );
                irq.push(raw);
                irp.push(b);
            }
            Err(e) => {
                eprintln!("irp_roundtrip: {e}");
                std::process::exit(1);
            }
        }
    }
    let med = |field: &str| median(irp.iter().filter_map(|v| v[field].as_f64()).collect());
    let raw = median(irq);
    let d1 = med("d1_rt_ns_p50");
    println!("medians over {rounds} rounds:");
    println!("  raw interrupt round trip (irq-bench) p50   {}", us(raw));
    println!(
        "  IRP round trip depth 1 p50 / p99            {} / {}  ({:.0} IRPs/s)",
        us(d1),
        us(med("d1_rt_ns_p99")),
        med("d1_irps_per_sec")
    );
    println!(
        "  IRP depth 32: IRPs/s, latency p50 / p99     {:.0}, {} / {}",
        med("d32_irps_per_sec"),
        us(med("d32_lat_ns_p50")),
        us(med("d32_lat_ns_p99"))
    );
    for d in ["d1", "d32"] {
        println!(
            "  depth {:>2}: ISR→DPC p50 / p99 {} / {}, DPC p50 / p99 {} / {}",
            &d[1..],
            us(med(&format!("{d}_isr_dpc_ns_p50"))),
            us(med(&format!("{d}_isr_dpc_ns_p99"))),
            us(med(&format!("{d}_dpc_ns_p50"))),
            us(med(&format!("{d}_dpc_ns_p99")))
        );
    }
    let part = |list: &[&str]| -> String {
        list.iter()
            .map(|s| format!("{} {}", &s[4..s.len() - 7], us(med(s))))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!(
        "  depth-1 round trip by segment (p50): {}",
        part(&SEGMENTS[..5])
    );
    println!(
        "    submit = {}; dpc = {}",
        part(&SEGMENTS[5..7]),
        part(&SEGMENTS[7..])
    );
    let ratio = d1 / raw;
    println!(
        "IRP round trip / raw interrupt round trip: {ratio:.2}× (goal ≤ {GOAL_RATIO}×: {})",
        if ratio <= GOAL_RATIO {
            "met"
        } else {
            "not met"
        }
    );
}
