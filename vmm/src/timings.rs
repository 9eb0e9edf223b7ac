//! Boot timings for `--timings`: host-time stamps in µs since `main` began
//! (the `Instant` taken first thing), and the user-space exits the guest
//! took until it said READY.
//!
//! Stamps are written once (the first writer wins) by whichever thread sees
//! the event: `vm-ready` (memory, vCPUs, kernel loaded), `guest-entry` (just
//! before the first KVM_RUN), `guest-ready` (marker port value 1),
//! `scenario-end` (marker value 2), `exit` (the main thread has the outcome).
//! Lock-free atomics: the vCPU exit path only does relaxed increments.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stamp {
    VmReady,
    GuestEntry,
    GuestReady,
    ScenarioEnd,
    Exit,
}

impl Stamp {
    const ALL: [Stamp; 5] = [
        Stamp::VmReady,
        Stamp::GuestEntry,
        Stamp::GuestReady,
        Stamp::ScenarioEnd,
        Stamp::Exit,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Stamp::VmReady => "vm-ready",
            Stamp::GuestEntry => "guest-entry",
            Stamp::GuestReady => "guest-ready",
            Stamp::ScenarioEnd => "scenario-end",
            Stamp::Exit => "exit",
        }
    }
}

/// Kinds of user-space exits counted until READY.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitKind {
    Pio,
    Mmio,
    Other,
}

#[derive(Debug)]
pub struct Timings {
    start: Instant,
    /// µs + 1 (0 = not stamped yet).
    stamps: [AtomicU64; 5],
    ready: AtomicBool,
    exits: [AtomicU64; 3],
    /// Every exit of the run, for the run report.
    exits_total: [AtomicU64; 3],
}

impl Timings {
    pub fn new(start: Instant) -> Self {
        Self {
            start,
            stamps: Default::default(),
            ready: AtomicBool::new(false),
            exits: Default::default(),
            exits_total: Default::default(),
        }
    }

    /// Records `stamp` now, unless it was recorded before.
    pub fn stamp(&self, stamp: Stamp) {
        let us = u64::try_from(self.start.elapsed().as_micros()).unwrap_or(u64::MAX - 1);
        let slot = &self.stamps[stamp as usize];
        let _ = slot.compare_exchange(0, us + 1, Ordering::Relaxed, Ordering::Relaxed);
        if stamp == Stamp::GuestReady {
            self.ready.store(true, Ordering::Relaxed);
        }
    }

    /// µs since start of `stamp`, if recorded.
    pub fn get(&self, stamp: Stamp) -> Option<u64> {
        self.stamps[stamp as usize]
            .load(Ordering::Relaxed)
            .checked_sub(1)
    }

    /// Counts a user-space exit (and, until the guest says READY, in the
    /// boot count too).
    pub fn count_exit(&self, kind: ExitKind) {
        self.exits_total[kind as usize].fetch_add(1, Ordering::Relaxed);
        if !self.ready.load(Ordering::Relaxed) {
            self.exits[kind as usize].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Exits of `kind` over the whole run so far.
    pub fn exits_total(&self, kind: ExitKind) -> u64 {
        self.exits_total[kind as usize].load(Ordering::Relaxed)
    }

    pub fn exits_before_ready(&self, kind: ExitKind) -> u64 {
        self.exits[kind as usize].load(Ordering::Relaxed)
    }

    /// The `--timings` report, one line per stamp recorded.
    pub fn report(&self) -> String {
        let mut out = String::new();
        for stamp in Stamp::ALL {
            if let Some(us) = self.get(stamp) {
                let _ = writeln!(out, "timings: {} {us} µs", stamp.name());
            }
        }
        let pio = self.exits_before_ready(ExitKind::Pio);
        let mmio = self.exits_before_ready(ExitKind::Mmio);
        let other = self.exits_before_ready(ExitKind::Other);
        let _ = write!(
            out,
            "timings: exits-before-ready {} (pio {pio}, mmio {mmio}",
            pio + mmio + other
        );
        if other > 0 {
            let _ = write!(out, ", other {other}");
        }
        out.push_str(")\n");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_stamp_wins_and_exits_stop_at_ready() {
        let t = Timings::new(Instant::now());
        assert_eq!(t.get(Stamp::VmReady), None);
        t.stamp(Stamp::VmReady);
        let first = t.get(Stamp::VmReady).unwrap();
        std::thread::yield_now();
        t.stamp(Stamp::VmReady);
        assert_eq!(t.get(Stamp::VmReady), Some(first));
        t.count_exit(ExitKind::Pio);
        t.count_exit(ExitKind::Pio);
        t.count_exit(ExitKind::Mmio);
        t.stamp(Stamp::GuestReady);
        t.count_exit(ExitKind::Pio);
        assert_eq!(t.exits_before_ready(ExitKind::Pio), 2);
        assert_eq!(t.exits_total(ExitKind::Pio), 3);
        let report = t.report();
        assert!(report.contains("timings: vm-ready "), "{report}");
        assert!(report.contains("timings: guest-ready "), "{report}");
        assert!(!report.contains("guest-entry"), "{report}");
        assert!(
            report.ends_with("timings: exits-before-ready 3 (pio 2, mmio 1)\n"),
            "{report}"
        );
        let t = Timings::new(Instant::now());
        t.count_exit(ExitKind::Other);
        assert!(
            t.report()
                .ends_with("timings: exits-before-ready 1 (pio 0, mmio 0, other 1)\n"),
            "{}",
            t.report()
        );
    }
}
