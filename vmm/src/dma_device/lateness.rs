//! Realtime lateness: for each guest-observable event the device thread
//! (or a vCPU's catch-up) releases, how long after its modelled time the
//! host actually processed it.
//!
//! In realtime mode an event is stamped with its modelled cycle but
//! processed when host time has passed it and some thread runs the model
//! (the timerfd wake-up, or a register access catching up). The gap,
//! host ns since the clock's origin minus the event's modelled ns, is what
//! a driver sees as extra latency. Kinds measured:
//! - `completion`: a completion record written to guest memory;
//! - `msi`: an MSI/MSI-X message sent;
//! - `channel_state`: a channel's `STATUS` changed;
//! - `descriptor_fetch`: the device's first reaction to a doorbell (the
//!   fetch that ends `fetch_latency` after it);
//! - `msi_send`: not a lateness: how long each message's send took, the
//!   part of `msi`'s lateness that is the host's interrupt injection;
//! - `host_stall`: not a lateness either: each gap of `STALL_NS` or more
//!   between two clock reads of the device thread while it spun for an
//!   event ([`Stalls`]): time the host did not run it (an interrupt, a
//!   tick of a nested hypervisor, another thread on its CPU), which no
//!   setting of dmalab's can win back.
//!
//! An event's host time is when the model released it. A slice of
//! events is processed under one lock hold, and the one slow step inside
//! it is sending a message (an eventfd write into KVM, which kicks the
//! vCPU: 1–16 µs here), so the sink keeps each message's send times and
//! [`release_times`] dates each event by them: a message when its send
//! returned, an event before it when its send began, the rest at the
//! slice's end.
//!
//! Samples go into a log-linear histogram (64 sub-buckets per power of
//! two: quantiles within 1.6 %, the maximum exact), so a long run costs
//! a fixed few kilobytes per kind. Nothing here reads a clock: the caller
//! passes host time, so the accounting is tested with made-up times.

use std::collections::BTreeMap;

use device_model::{EventKind, TraceEvent};
use dmalab_protocol::report::Lateness;

/// Sub-buckets per power of two.
const SUB_BITS: u32 = 6;
const SUB: u64 = 1 << SUB_BITS;
/// Buckets for values up to `u64::MAX`.
const BUCKETS: usize = (64 - SUB_BITS as usize + 1) * (1 << SUB_BITS);

/// A log-linear histogram of nanoseconds.
#[derive(Debug, Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            counts: vec![0; BUCKETS],
            total: 0,
            max: 0,
        }
    }
}

fn bucket_of(v: u64) -> usize {
    let b = if v < SUB {
        v
    } else {
        let shift = 63 - v.leading_zeros() - SUB_BITS;
        (u64::from(shift) + 1) * SUB + ((v >> shift) & (SUB - 1))
    };
    usize::try_from(b).unwrap_or(BUCKETS - 1)
}

/// The smallest value that falls in bucket `b`.
fn bucket_floor(b: usize) -> u64 {
    let b = u64::try_from(b).unwrap_or(u64::MAX);
    if b < SUB {
        return b;
    }
    let shift = b / SUB - 1;
    let sub = b % SUB;
    (SUB + sub) << shift
}

impl Histogram {
    pub fn record(&mut self, ns: u64) {
        self.counts[bucket_of(ns)] += 1;
        self.total += 1;
        self.max = self.max.max(ns);
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    /// The value at quantile `permille`/1000: the floor of the bucket
    /// holding the rank-`ceil(q·n)` sample, never above the maximum.
    pub fn quantile(&self, permille: u64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = self
            .total
            .saturating_mul(permille)
            .div_ceil(1000)
            .clamp(1, self.total);
        let mut seen = 0;
        for (b, &n) in self.counts.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return bucket_floor(b).min(self.max);
            }
        }
        self.max
    }

    pub fn summary(&self) -> Lateness {
        Lateness {
            count: self.total,
            p50_ns: self.quantile(500),
            p99_ns: self.quantile(990),
            max_ns: self.max,
        }
    }
}

/// The measured kind of a trace event, if it is one we measure.
fn measured_kind(kind: &EventKind) -> Option<&'static str> {
    match kind {
        EventKind::Completion { written: true, .. } => Some("completion"),
        EventKind::MsiDelivered { .. } => Some("msi"),
        EventKind::ChannelState { .. } => Some("channel_state"),
        EventKind::DescriptorFetch { .. } => Some("descriptor_fetch"),
        _ => None,
    }
}

/// Host ns (since the clock's origin) at which each of `events` — one
/// slice's, in the order released — was released, into `out`: the k-th
/// `MsiDelivered` when the k-th of `sends` (begun, done) was done; any
/// other event when the next message's send began (it was released before
/// it), or at `end_ns` after the last message. Sends that do not match
/// the messages one for one (`None`, or another count) date every event
/// at `end_ns`, which is never early.
pub fn release_times(
    events: &[TraceEvent],
    sends: Option<&[(u64, u64)]>,
    end_ns: u64,
    out: &mut Vec<u64>,
) {
    out.clear();
    let messages = events
        .iter()
        .filter(|e| matches!(e.kind, EventKind::MsiDelivered { .. }))
        .count();
    let sends = match sends {
        Some(s) if s.len() == messages => s,
        _ => {
            out.resize(events.len(), end_ns);
            return;
        }
    };
    let mut next = 0;
    for e in events {
        let at = match (e.kind, sends.get(next)) {
            (EventKind::MsiDelivered { .. }, Some(&(_, done))) => {
                next += 1;
                done
            }
            (_, Some(&(begun, _))) => begun,
            (_, None) => end_ns,
        };
        out.push(at.min(end_ns));
    }
}

/// A gap this long between two clock reads of a spinning thread is a
/// stall: the thread did not run (a read takes tens of ns).
pub const STALL_NS: u64 = 5_000;

/// Stalls seen by a thread spinning on the clock: up to `MAX_STALLS` per
/// spin, handed to [`LatenessTally::observe_stalls`] once the device lock
/// is held again.
#[derive(Debug, Clone, Copy)]
pub struct Stalls {
    last: u64,
    found: [u64; MAX_STALLS],
    n: usize,
}

const MAX_STALLS: usize = 8;

impl Stalls {
    /// A spin starting at host time `now` (ns).
    pub fn new(now: u64) -> Self {
        Self {
            last: now,
            found: [0; MAX_STALLS],
            n: 0,
        }
    }

    /// The spin's next clock read, `now`.
    #[inline]
    pub fn read(&mut self, now: u64) {
        let gap = now.saturating_sub(self.last);
        self.last = now;
        if gap >= STALL_NS && self.n < MAX_STALLS {
            self.found[self.n] = gap;
            self.n += 1;
        }
    }

    /// The stalls seen, in ns.
    pub fn found(&self) -> &[u64] {
        &self.found[..self.n]
    }
}

/// Lateness per event kind.
#[derive(Debug, Default, Clone)]
pub struct LatenessTally {
    kinds: BTreeMap<&'static str, Histogram>,
    /// Each measured event's lateness, for the kept trace (`--trace`),
    /// up to `samples_cap`; `None` when no trace is kept.
    samples: Option<Vec<Sample>>,
    samples_cap: usize,
}

/// One measured event's lateness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// The event's modelled cycle.
    pub cycle: u64,
    /// Its measured kind (`completion`, `msi`, …).
    pub kind: &'static str,
    pub late_ns: u64,
}

impl LatenessTally {
    /// A tally that also keeps each measured event's lateness, up to
    /// `cap` of them (for `--trace`).
    pub fn with_samples(cap: usize) -> Self {
        Self {
            samples: Some(Vec::new()),
            samples_cap: cap,
            ..Self::default()
        }
    }

    /// Each measured event's lateness, in the order released (empty when
    /// none are kept).
    pub fn samples(&self) -> &[Sample] {
        self.samples.as_deref().unwrap_or(&[])
    }

    /// Records `events`, released at host times `host_ns` (one per event,
    /// ns since the clock's origin: [`release_times`]); `modelled_ns`
    /// converts an event's cycle to ns since the same origin. An event
    /// released before its modelled time (which the model never does)
    /// counts as 0.
    pub fn observe(
        &mut self,
        events: &[TraceEvent],
        host_ns: &[u64],
        modelled_ns: impl Fn(u64) -> u64,
    ) {
        for (e, &host_ns) in events.iter().zip(host_ns) {
            if let Some(kind) = measured_kind(&e.kind) {
                let late = host_ns.saturating_sub(modelled_ns(e.cycle));
                self.kinds.entry(kind).or_default().record(late);
                if let Some(samples) = &mut self.samples {
                    if samples.len() < self.samples_cap {
                        samples.push(Sample {
                            cycle: e.cycle,
                            kind,
                            late_ns: late,
                        });
                    }
                }
            }
        }
    }

    /// Records how long each message's send took (`sends`: begun, done),
    /// as the kind `msi_send`: not a lateness but the part of `msi`'s that
    /// is the host's interrupt injection (the eventfd write into KVM and
    /// its vCPU kick).
    pub fn observe_sends(&mut self, sends: &[(u64, u64)]) {
        for &(begun, done) in sends {
            self.kinds
                .entry("msi_send")
                .or_default()
                .record(done.saturating_sub(begun));
        }
    }

    /// Records host stalls a spinning device thread saw ([`Stalls`]), as
    /// the kind `host_stall`.
    pub fn observe_stalls(&mut self, stalls: &Stalls) {
        for &ns in stalls.found() {
            self.kinds.entry("host_stall").or_default().record(ns);
        }
    }

    /// p50/p99/max per kind, for the run report.
    pub fn summaries(&self) -> BTreeMap<String, Lateness> {
        self.kinds
            .iter()
            .map(|(k, h)| ((*k).to_string(), h.summary()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn completion(cycle: u64) -> TraceEvent {
        TraceEvent {
            cycle,
            kind: EventKind::Completion {
                channel: 0,
                seq: 1,
                index: 0,
                status: 0,
                bytes: 64,
                written: true,
            },
        }
    }

    #[test]
    fn buckets_cover_every_value_in_order_within_the_stated_error() {
        let mut last = 0;
        for v in (0..5000u64).chain([1 << 20, (1 << 40) + 12345, u64::MAX]) {
            let b = bucket_of(v);
            assert!(b < BUCKETS, "{v}");
            assert!(b >= last || v >= 5000, "monotonic at {v}");
            last = b;
            let floor = bucket_floor(b);
            assert!(floor <= v, "{v}: floor {floor}");
            assert!(
                (v - floor) as f64 <= v as f64 / SUB as f64,
                "{v}: floor {floor}"
            );
        }
    }

    #[test]
    fn stalls_are_the_long_gaps_between_clock_reads() {
        let mut s = Stalls::new(1_000);
        for t in [1_040, 1_080, 7_080, 7_100, 7_150, 27_150, 27_200] {
            s.read(t);
        }
        assert_eq!(s.found(), &[6_000, 20_000]);
        let mut tally = LatenessTally::default();
        tally.observe_stalls(&s);
        let h = &tally.summaries()["host_stall"];
        assert_eq!((h.count, h.max_ns), (2, 20_000));
        // A spin keeps the first few; a clock never goes back.
        let mut s = Stalls::new(0);
        for k in 1..=20u64 {
            s.read(k * 10_000);
        }
        s.read(5);
        assert_eq!(s.found().len(), MAX_STALLS);
    }

    #[test]
    fn quantiles_of_a_known_set() {
        let mut h = Histogram::default();
        for ns in 1..=1000u64 {
            h.record(ns * 1000);
        }
        let s = h.summary();
        assert_eq!(s.count, 1000);
        assert_eq!(s.max_ns, 1_000_000);
        let near = |got: u64, want: u64| got <= want && want - got <= want / 64;
        assert!(near(s.p50_ns, 500_000), "p50 {}", s.p50_ns);
        assert!(near(s.p99_ns, 990_000), "p99 {}", s.p99_ns);
        assert_eq!(Histogram::default().summary(), Lateness::default());
    }

    #[test]
    fn lateness_is_host_time_minus_modelled_time_per_kind() {
        // A fake clock: 1 cycle = 4 ns, host time given by the test.
        let modelled = |c: u64| c * 4;
        let mut tally = LatenessTally::default();
        let batch = [
            completion(1000),
            TraceEvent {
                cycle: 1000,
                kind: EventKind::MsiDelivered { vector: 0, slot: 0 },
            },
            // Not guest-observable: not measured.
            TraceEvent {
                cycle: 900,
                kind: EventKind::Bursts {
                    channel: 0,
                    seq: 1,
                    start: 800,
                    bursts: 1,
                    bytes: 64,
                },
            },
            // A suppressed record is not seen by the guest.
            TraceEvent {
                cycle: 900,
                kind: EventKind::Completion {
                    channel: 0,
                    seq: 2,
                    index: 1,
                    status: 0,
                    bytes: 0,
                    written: false,
                },
            },
        ];
        // Processed 3 µs after cycle 1000 (4000 ns).
        tally.observe(&batch, &[7000; 4], modelled);
        // A second wake-up, on time to the ns.
        tally.observe(&[completion(2000)], &[8000], modelled);
        // An event the host reached "early" (cannot happen) counts as 0.
        tally.observe(&[completion(3000)], &[11_000], modelled);
        let s = tally.summaries();
        assert_eq!(s.keys().collect::<Vec<_>>(), ["completion", "msi"]);
        assert_eq!(s["completion"].count, 3);
        assert_eq!(s["completion"].max_ns, 3000);
        assert_eq!(s["completion"].p50_ns, 0);
        assert_eq!(s["msi"].count, 1);
        let p99 = s["msi"].p99_ns;
        assert!((3000 - 3000 / 64..=3000).contains(&p99), "{p99}");
    }

    #[test]
    fn samples_are_kept_per_event_up_to_the_cap() {
        let modelled = |c: u64| c;
        let mut off = LatenessTally::default();
        off.observe(&[completion(10)], &[15], modelled);
        assert!(off.samples().is_empty(), "no trace kept, no samples");
        let mut tally = LatenessTally::with_samples(2);
        tally.observe(&[completion(10), msi(10)], &[15, 40], modelled);
        tally.observe(&[completion(20)], &[21], modelled);
        let kept: Vec<_> = tally
            .samples()
            .iter()
            .map(|s| (s.cycle, s.kind, s.late_ns))
            .collect();
        assert_eq!(kept, [(10, "completion", 5), (10, "msi", 30)]);
        assert_eq!(tally.summaries()["completion"].count, 2, "still counted");
    }

    fn msi(cycle: u64) -> TraceEvent {
        TraceEvent {
            cycle,
            kind: EventKind::MsiDelivered { vector: 0, slot: 0 },
        }
    }

    #[test]
    fn events_are_dated_by_the_message_sends_around_them() {
        // record, message, record, message, record: two sends.
        let events = [completion(1), msi(1), completion(2), msi(2), completion(3)];
        let sends = [(100, 115), (200, 260)];
        let mut out = Vec::new();
        release_times(&events, Some(&sends), 300, &mut out);
        assert_eq!(out, [100, 115, 200, 260, 300]);
        // No message: everything at the slice's end.
        release_times(&events[..1], Some(&[]), 300, &mut out);
        assert_eq!(out, [300]);
        // Sends that do not match the messages (one missing, or not kept):
        // never early, so the slice's end for all.
        release_times(&events, Some(&sends[..1]), 300, &mut out);
        assert_eq!(out, [300; 5]);
        release_times(&events, None, 300, &mut out);
        assert_eq!(out, [300; 5]);
        // A send stamped after the slice's end (cannot be) is capped.
        release_times(&events[..2], Some(&[(400, 500)]), 300, &mut out);
        assert_eq!(out, [300, 300]);
    }

    #[test]
    fn send_durations_are_their_own_kind() {
        let mut tally = LatenessTally::default();
        tally.observe_sends(&[(100, 115), (200, 260), (300, 300)]);
        let s = tally.summaries();
        assert_eq!(s.keys().collect::<Vec<_>>(), ["msi_send"]);
        assert_eq!(s["msi_send"].count, 3);
        assert_eq!(s["msi_send"].max_ns, 60);
        assert_eq!(s["msi_send"].p50_ns, 15);
    }
}
