//! The oracle's invariants that use each fault's parameters: the
//! report's fault log (`device.fault_log`) says which `dma-error` was
//! fatal and on which descriptor, and the driver's contract
//! (`docs/dma-driver.md`) says what each must do:
//!
//! - a fatal error is never retried, and fails its IRP with
//!   STATUS_DEVICE_HARDWARE_ERROR after a channel reset: `fail_hw` counts
//!   only fatal errors, and each fatal error on a descriptor no other
//!   fault hides (a stale, missing or hung record, a removal, a realtime
//!   latency spike that outlasts the watchdog) fails one IRP and resets
//!   one channel;
//! - a recoverable fault is retried within the bound: every retry answers
//!   a recoverable fault, and an IRP fails with STATUS_IO_DEVICE_ERROR
//!   only after `dmadrv.retries` retries, each on a fault of its own;
//! - a cancellation ends its IRP exactly once with STATUS_CANCELLED: the
//!   cancels that took (`cancel_hits`), the requests the application saw
//!   end cancelled, the IRPs the I/O manager completed cancelled and the
//!   ones the driver's cancel routine took off its queue are the same
//!   number, and no cancel ends more than one.
//!
//! Each held on 1,000 random plans of the mixed random mode (seed 42)
//! and every named scenario (`docs/campaign.md`). When trace events were
//! lost the log may miss faults, and the checks that need it are skipped.

use std::collections::{BTreeMap, BTreeSet};

use dmalab_protocol::report::{FaultEntry, RunReport};
use dmalab_protocol::result::ResultLine;

use crate::scenario::{Scenario, Timing};

/// Kinds that break a transfer so that the driver retries or fails it
/// (as `oracle::BREAKING`), with a removal weighing one per channel.
const BREAKING: &[(&str, u64)] = &[
    ("dma-error", 1),
    ("fetch-error", 1),
    ("halt", 1),
    ("hang", 1),
    ("missing-completion", 1),
    ("stale-completion", 1),
    ("short-transfer", 1),
    ("surprise-removal", 4),
];

/// Faults that, on the same descriptor, keep the driver from seeing a
/// fatal error's record as that transfer's end.
const HIDING: &[&str] = &[
    "stale-completion",
    "missing-completion",
    "hang",
    "surprise-removal",
    "latency-spike",
    "fetch-error",
    "halt",
];

/// The driver's retry bound: `dmadrv.retries=N` on the command line, else 3.
fn retry_bound(cmdline: &str) -> u64 {
    cmdline
        .split_whitespace()
        .find_map(|w| w.strip_prefix("dmadrv.retries="))
        .and_then(|n| n.parse().ok())
        .unwrap_or(3)
}

/// Adds the parameter-aware violations of `scenario`'s run to `bad`.
pub fn check(scenario: &Scenario, result: &ResultLine, report: &RunReport, bad: &mut Vec<String>) {
    let overridden = |f: &str| scenario.expect.fields.contains_key(f);
    let field = |f: &str| result.number(f).ok();
    let count = |k: &str| report.device.fault_counts.get(k).copied().unwrap_or(0);
    let log = &report.device.fault_log;
    let complete = report.trace_lost == 0
        && log.len() as u64 == report.device.fault_counts.values().sum::<u64>();
    let realtime = scenario.timing == Timing::Realtime;
    let slow = if realtime {
        count("latency-spike") + count("delay-interrupt")
    } else {
        0
    };

    if complete {
        let fatal: Vec<u64> = log
            .iter()
            .filter(|e| e.is_fatal_error())
            .map(|e| e.seq)
            .collect();
        let recoverable: u64 =
            BREAKING.iter().map(|(k, w)| w * count(k)).sum::<u64>() - fatal.len() as u64;
        let removed = count("surprise-removal") > 0;
        // A removal, or a realtime latency spike, can end any transfer
        // before its record is read.
        let all_hidden = removed || (realtime && count("latency-spike") > 0);
        let clean: BTreeSet<u64> = fatal
            .iter()
            .copied()
            .filter(|seq| {
                !all_hidden
                    && !log
                        .iter()
                        .any(|e| e.seq == *seq && HIDING.contains(&e.kind.as_str()))
            })
            .collect();
        if let Some(retries) = field("retries").filter(|_| !overridden("retries")) {
            if retries > (recoverable + slow) as f64 {
                bad.push(format!(
                    "a fatal error was retried: retries = {retries} but only {recoverable} \
                     recoverable faults{} ({} fatal dma-error not to retry)",
                    if slow > 0 { " + slow ones" } else { "" },
                    fatal.len()
                ));
            }
        }
        if let Some(fail_hw) = field("fail_hw").filter(|_| !overridden("fail_hw")) {
            if fail_hw > fatal.len() as f64 {
                bad.push(format!(
                    "STATUS_DEVICE_HARDWARE_ERROR without a fatal error: fail_hw = {fail_hw}, \
                     fatal dma-errors = {}",
                    fatal.len()
                ));
            }
            if fail_hw < clean.len() as f64 {
                bad.push(format!(
                    "a fatal error did not fail its IRP with STATUS_DEVICE_HARDWARE_ERROR: \
                     fail_hw = {fail_hw}, fatal dma-errors on descriptors {clean:?}"
                ));
            }
        }
        if let Some(resets) = field("resets").filter(|_| !overridden("resets")) {
            if resets < clean.len() as f64 {
                bad.push(format!(
                    "a fatal error's channel was not reset: resets = {resets}, fatal \
                     dma-errors on descriptors {clean:?}"
                ));
            }
        }
        let bound = retry_bound(&scenario.cmdline);
        if let Some(fail_io) = field("fail_io").filter(|_| !overridden("fail_io")) {
            if fail_io * (bound + 1) as f64 > (recoverable + slow) as f64 {
                bad.push(format!(
                    "an IRP failed with STATUS_IO_DEVICE_ERROR before its {bound} retries: \
                     fail_io = {fail_io} needs {} recoverable faults, {recoverable} applied",
                    fail_io * (bound + 1) as f64
                ));
            }
        }
        // Reposts that made no progress count against the retry bound.
        if !removed && !overridden("fail_io") && !overridden("fail_timeout") {
            let runs = no_progress_runs(log, realtime);
            let needed: u64 = runs.iter().map(|r| r.len / (bound + 1)).sum();
            let failed = field("fail_io").unwrap_or(0.0) + field("fail_timeout").unwrap_or(0.0);
            if failed < needed as f64 {
                let shown: Vec<String> = runs
                    .iter()
                    .filter(|r| r.len > bound)
                    .map(|r| format!("ch {} seq {}–{}", r.channel, r.first, r.first + r.len - 1))
                    .collect();
                bad.push(format!(
                    "a transfer that moved 0 bytes was posted again beyond the retry bound: \
                     {} 0-byte descriptors in a row ({}) need {needed} requests failed after \
                     {bound} retries, fail_io + fail_timeout = {failed}",
                    runs.iter().map(|r| r.len).max().unwrap_or(0),
                    shown.join(", ")
                ));
            }
        }
    }

    // Cancellation: exactly once, with STATUS_CANCELLED.
    let names = [
        "cancel_hits",
        "cancelled",
        "irps_cancelled",
        "irps_cancelled_queued",
    ];
    if names.iter().any(|n| overridden(n)) {
        return;
    }
    let values: Vec<Option<f64>> = names.iter().map(|n| field(n)).collect();
    if let [Some(hits), Some(app), Some(wdm), Some(queued)] = values[..] {
        if !(hits == app && app == wdm && wdm == queued) {
            bad.push(format!(
                "a cancellation did not end its IRP exactly once with STATUS_CANCELLED: \
                 cancel_hits = {hits}, cancelled = {app}, irps_cancelled = {wdm}, \
                 irps_cancelled_queued = {queued}"
            ));
        }
        if let Some(calls) = field("cancel_calls") {
            if hits > calls {
                bad.push(format!("cancel_hits = {hits} > cancel_calls = {calls}"));
            }
        }
    }
}

/// The driver's watchdog period: `dmadrv.watchdog_ms=N` on the command
/// line, else 10 ms.
fn watchdog_ms(cmdline: &str) -> u64 {
    cmdline
        .split_whitespace()
        .find_map(|w| w.strip_prefix("dmadrv.watchdog_ms="))
        .and_then(|n| n.parse().ok())
        .unwrap_or(10)
}

/// A realtime run whose watchdog counts broke an expectation while the
/// host delivered an MSI a whole watchdog period late: that interrupt
/// was lost as far as the driver could tell, so the count may be the
/// host's load, not the driver. Adds one line saying so (the verdict
/// stands; `--retries` tells load from a bug).
pub fn note_late_interrupts(scenario: &Scenario, report: &RunReport, bad: &mut Vec<String>) {
    if scenario.timing != Timing::Realtime || !bad.iter().any(|v| v.contains("watchdog_")) {
        return;
    }
    let Some(msi) = report.lateness.get("msi") else {
        return;
    };
    let period_ns = watchdog_ms(&scenario.cmdline) * 1_000_000;
    if msi.max_ns >= period_ns {
        bad.push(format!(
            "host load: an MSI was delivered {:.1} ms late, past the {} ms watchdog period \
             (the watchdog counts may be the host's; rerun with --retries)",
            msi.max_ns as f64 / 1e6,
            period_ns / 1_000_000
        ));
    }
}

/// Descriptors in a row on one channel that each moved 0 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Run {
    channel: u8,
    first: u64,
    len: u64,
}

/// The runs of consecutive descriptors (device-wide sequence numbers in a
/// row, so no other descriptor of any channel came between) on one
/// channel whose only transfer-breaking fault is a 0-byte short transfer
/// (nothing that hides or replaces the record: no other breaking kind, no
/// latency spike in realtime).
///
/// Each such descriptor is a repost of its request that made no progress,
/// so the requests that own a run of `L` fail with at least
/// `L / (retries + 1)` of them: every request but the run's last one ends
/// inside it, and it can end only by failing; the last fails too if it
/// had `retries + 1` attempts there.
fn no_progress_runs(log: &[FaultEntry], realtime: bool) -> Vec<Run> {
    // seq → (channel, a 0-byte short, something that spoils it).
    let mut by_seq: BTreeMap<u64, (u8, bool, bool)> = BTreeMap::new();
    for e in log {
        let zero = e.kind == "short-transfer" && e.bytes == Some(0);
        let spoils = !zero
            && (BREAKING.iter().any(|(k, _)| *k == e.kind)
                || realtime && e.kind == "latency-spike");
        let d = by_seq.entry(e.seq).or_insert((e.channel, false, false));
        d.1 |= zero;
        d.2 |= spoils;
    }
    let mut runs: Vec<Run> = Vec::new();
    for (&seq, &(channel, zero, spoiled)) in &by_seq {
        if !zero || spoiled {
            continue;
        }
        match runs.last_mut() {
            Some(r) if r.channel == channel && r.first + r.len == seq => r.len += 1,
            _ => runs.push(Run {
                channel,
                first: seq,
                len: 1,
            }),
        }
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: u64, channel: u8, kind: &str, bytes: Option<u32>) -> FaultEntry {
        FaultEntry {
            seq,
            channel,
            kind: kind.into(),
            bytes,
            ..FaultEntry::default()
        }
    }

    #[test]
    fn zero_byte_runs_are_consecutive_clean_descriptors_of_one_channel() {
        let zero = |seq, ch| entry(seq, ch, "short-transfer", Some(0));
        let log = vec![
            zero(2, 0),
            zero(3, 0),
            entry(3, 0, "drop-interrupt", None),
            zero(4, 0),
            zero(5, 0),
            // Another channel between: a new run.
            zero(6, 1),
            zero(7, 0),
            // Spoiled by a DMA error: breaks the run.
            zero(8, 0),
            entry(8, 0, "dma-error", None),
            zero(9, 0),
            entry(10, 0, "short-transfer", Some(8)),
            zero(12, 0),
        ];
        let runs: Vec<(u8, u64, u64)> = no_progress_runs(&log, false)
            .iter()
            .map(|r| (r.channel, r.first, r.len))
            .collect();
        assert_eq!(
            runs,
            [(0, 2, 4), (1, 6, 1), (0, 7, 1), (0, 9, 1), (0, 12, 1)]
        );
        let spike = vec![zero(1, 0), entry(1, 0, "latency-spike", None), zero(2, 0)];
        assert_eq!(no_progress_runs(&spike, false)[0].len, 2);
        assert_eq!(no_progress_runs(&spike, true).len(), 1);
    }

    #[test]
    fn a_late_msi_is_named_beside_a_broken_watchdog_count() {
        let mut scenario = crate::random::scenario(1, 0, &crate::random::Fixed::default());
        scenario.timing = Timing::Realtime;
        scenario.cmdline = "irps=8".into();
        let mut report = RunReport::default();
        report.lateness.insert(
            "msi".into(),
            dmalab_protocol::report::Lateness {
                count: 3,
                max_ns: 19_400_000,
                ..Default::default()
            },
        );
        let mut bad = vec!["watchdog_recoveries = 1, expected 0".to_string()];
        note_late_interrupts(&scenario, &report, &mut bad);
        assert_eq!(bad.len(), 2, "{bad:?}");
        assert!(bad[1].contains("19.4 ms late, past the 10 ms"), "{bad:?}");
        // On time, another period, instant timing, or no watchdog count: nothing.
        for (cmdline, timing, first) in [
            (
                "irps=8 dmadrv.watchdog_ms=50",
                Timing::Realtime,
                "watchdog_recoveries = 1",
            ),
            ("irps=8", Timing::Instant, "watchdog_recoveries = 1"),
            ("irps=8", Timing::Realtime, "lost = 1"),
        ] {
            scenario.cmdline = cmdline.into();
            scenario.timing = timing;
            let mut bad = vec![first.to_string()];
            note_late_interrupts(&scenario, &report, &mut bad);
            assert_eq!(bad.len(), 1, "{cmdline} {timing:?} {bad:?}");
        }
    }

    #[test]
    fn the_retry_bound_comes_from_the_command_line() {
        assert_eq!(retry_bound("irps=8"), 3);
        assert_eq!(retry_bound("irps=8 dmadrv.retries=1"), 1);
        assert_eq!(retry_bound("dmadrv.retries=x"), 3);
    }
}
