//! How often this host stops a running thread, and for how long: the
//! floor under realtime lateness that no setting of dmalab's can lower.
//!
//! One thread reads the monotonic clock in a tight loop for a few seconds
//! (`DMALAB_JITTER_SECS`, default 3); a gap between two reads (normally
//! tens of ns) is time the thread did not run: an interrupt, a timer tick
//! of the hypervisor below, another thread on its CPU. It prints how many
//! gaps of each size a second brought, and what share of a window of the
//! length of a realtime copy's events (10 µs: a 64 KiB transfer and its
//! completion) a stall of each size overlaps: the share of such events
//! that cannot be on time to within that size.
//!
//! ```text
//! cargo bench -p vmm --bench host_jitter
//! ```

use std::time::{Duration, Instant};

/// Gap sizes counted, in µs.
const EDGES_US: [u64; 6] = [2, 5, 10, 20, 50, 100];
/// A realtime event's window: the bursts of a 64 KiB copy and its
/// write-back and message (~10 µs modelled).
const WINDOW_US: f64 = 10.0;

fn main() {
    let secs = std::env::var("DMALAB_JITTER_SECS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .filter(|&s| (1..=600).contains(&s))
        .unwrap_or(3);
    let run = Duration::from_secs(secs);
    let start = Instant::now();
    let mut last = start;
    let mut counts = [0u64; EDGES_US.len()];
    let mut stalled = [Duration::ZERO; EDGES_US.len()];
    let mut max = Duration::ZERO;
    let mut reads = 0u64;
    loop {
        let now = Instant::now();
        reads += 1;
        let gap = now - last;
        last = now;
        for (k, &edge) in EDGES_US.iter().enumerate() {
            if gap >= Duration::from_micros(edge) {
                counts[k] += 1;
                stalled[k] += gap;
            }
        }
        max = max.max(gap);
        if now - start >= run {
            break;
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    println!(
        "host jitter: {reads} clock reads in {elapsed:.2} s ({:.0} ns each), longest gap {:.1} µs",
        elapsed * 1e9 / reads as f64,
        max.as_secs_f64() * 1e6
    );
    println!(
        "{:>10} {:>12} {:>14} {:>22}",
        "gap ≥", "per second", "time lost", "10 µs windows hit"
    );
    for (k, &edge) in EDGES_US.iter().enumerate() {
        let rate = counts[k] as f64 / elapsed;
        let mean_us = if counts[k] == 0 {
            0.0
        } else {
            stalled[k].as_secs_f64() * 1e6 / counts[k] as f64
        };
        // A stall of mean length d overlaps a window of length w when it
        // starts within w + d before the window's end.
        let hit = (rate * (WINDOW_US + mean_us) * 1e-6).min(1.0);
        println!(
            "{:>7} µs {:>12.1} {:>13.3}% {:>21.2}%",
            edge,
            rate,
            stalled[k].as_secs_f64() * 100.0 / elapsed,
            hit * 100.0
        );
    }
    println!(
        "a p99 of realtime lateness below a gap size needs its row's last column well under 1 %"
    );
}
