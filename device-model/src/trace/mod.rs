//! The device trace: typed, cycle-stamped events in a reused buffer.
//!
//! The buffer is allocated once (`DeviceConfig::trace_capacity`); when full,
//! further events are counted in `Trace::lost` until the owner drains it,
//! so the hot path never allocates. Every event is first counted in
//! [`Counters`], which a full or disabled buffer never affects.
//! `event.rs` holds the event types, `counters.rs` the exact counters,
//! `chrome.rs` the Chrome trace-event JSON writer, `marker.rs` the
//! driver's `TRACE_MARKER` values.

pub mod chrome;
mod counters;
mod event;
pub mod marker;

pub use counters::Counters;
pub use event::{AccessError, DropReason, EventKind, Space, TraceEvent};

/// The trace buffer and the counters of everything pushed to it.
#[derive(Debug, Clone)]
pub(crate) struct Trace {
    events: Vec<TraceEvent>,
    capacity: usize,
    enabled: bool,
    lost: u64,
    counters: Counters,
}

impl Trace {
    /// A buffer holding up to `capacity` events of a device with `channels`
    /// channels; `enabled = false` records nothing (and still counts).
    pub fn new(capacity: usize, enabled: bool, channels: u8) -> Trace {
        let prealloc = if enabled { capacity.min(1 << 16) } else { 0 };
        Trace {
            events: Vec::with_capacity(prealloc),
            capacity,
            enabled,
            lost: 0,
            counters: Counters::new(channels),
        }
    }

    /// Counts `kind`, then records it at `cycle` if the buffer has room.
    #[inline]
    pub fn push(&mut self, cycle: u64, kind: EventKind) {
        self.counters.count(&kind);
        if !self.enabled {
            return;
        }
        if self.events.len() >= self.capacity {
            self.lost = self.lost.saturating_add(1);
            return;
        }
        self.events.push(TraceEvent { cycle, kind });
    }

    /// Records a burst of `bytes` for descriptor `seq` on `channel`,
    /// granted the bus at `start` and finished at `end`: extends the last
    /// recorded event if it is that descriptor's run on that channel and
    /// ended at `start`, else records a new run (`EventKind::Bursts`).
    /// A drain in between starts a new run; readers join runs of the same
    /// descriptor (the Chrome writer does).
    #[inline]
    pub fn push_burst(&mut self, start: u64, end: u64, channel: u8, seq: u64, bytes: u32) {
        if self.enabled {
            if let Some(TraceEvent {
                cycle,
                kind:
                    EventKind::Bursts {
                        channel: c,
                        seq: s,
                        bursts,
                        bytes: b,
                        ..
                    },
            }) = self.events.last_mut()
            {
                if *c == channel && *s == seq && *cycle == start {
                    *cycle = end;
                    *bursts = bursts.saturating_add(1);
                    *b = b.saturating_add(bytes);
                    return;
                }
            }
        }
        self.push(
            end,
            EventKind::Bursts {
                channel,
                seq,
                start,
                bursts: 1,
                bytes,
            },
        );
    }

    /// The events recorded since the last drain.
    pub fn events(&self) -> &[TraceEvent] {
        &self.events
    }

    /// Moves the recorded events to the end of `out`, keeping this buffer's
    /// allocation.
    pub fn drain_into(&mut self, out: &mut Vec<TraceEvent>) {
        out.append(&mut self.events);
    }

    /// Events not recorded because the buffer was full.
    pub fn lost(&self) -> u64 {
        self.lost
    }

    /// The exact counters of every event pushed.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Turns recording on or off.
    pub fn set_enabled(&mut self, on: bool) {
        self.enabled = on;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_buffer_counts_lost_events() {
        let mut t = Trace::new(2, true, 1);
        for c in 0..5 {
            t.push(c, EventKind::DriverMarker { value: 1 });
        }
        assert_eq!(t.events().len(), 2);
        assert_eq!(t.lost(), 3);
        assert_eq!(t.counters().register_errors, 0);
        let mut out = Vec::new();
        t.drain_into(&mut out);
        assert_eq!(out.len(), 2);
        assert!(t.events().is_empty());
        t.push(9, EventKind::Removed);
        assert_eq!(t.events()[0].cycle, 9);
    }

    fn run(t: &Trace, i: usize) -> (u64, u64, u8, u64, u32, u32) {
        match t.events()[i] {
            TraceEvent {
                cycle,
                kind:
                    EventKind::Bursts {
                        channel,
                        seq,
                        start,
                        bursts,
                        bytes,
                    },
            } => (start, cycle, channel, seq, bursts, bytes),
            e => panic!("not a run: {e:?}"),
        }
    }

    #[test]
    fn back_to_back_bursts_of_one_descriptor_make_one_run() {
        let mut t = Trace::new(16, true, 2);
        t.push_burst(10, 18, 0, 1, 256);
        t.push_burst(18, 26, 0, 1, 256);
        t.push_burst(26, 30, 0, 1, 100);
        assert_eq!(t.events().len(), 1);
        assert_eq!(run(&t, 0), (10, 30, 0, 1, 3, 612));
        // Another descriptor, a gap, another channel: new runs.
        t.push_burst(30, 38, 0, 2, 256);
        t.push_burst(40, 48, 0, 2, 256);
        t.push_burst(48, 56, 1, 2, 256);
        assert_eq!(t.events().len(), 4);
        assert_eq!(run(&t, 1), (30, 38, 0, 2, 1, 256));
        assert_eq!(run(&t, 2), (40, 48, 0, 2, 1, 256));
        // An event in between ends a run.
        t.push(56, EventKind::Removed);
        t.push_burst(56, 64, 1, 2, 256);
        assert_eq!(t.events().len(), 6);
        assert_eq!(run(&t, 5), (56, 64, 1, 2, 1, 256));
        // A drain ends one too.
        let mut out = Vec::new();
        t.drain_into(&mut out);
        t.push_burst(64, 72, 1, 2, 256);
        assert_eq!(run(&t, 0), (64, 72, 1, 2, 1, 256));
    }

    #[test]
    fn runs_respect_a_full_or_disabled_buffer() {
        let mut t = Trace::new(1, true, 1);
        t.push_burst(0, 8, 0, 1, 256);
        t.push_burst(8, 16, 0, 1, 256);
        t.push_burst(20, 28, 0, 1, 256);
        assert_eq!(t.events().len(), 1);
        assert_eq!(run(&t, 0), (0, 16, 0, 1, 2, 512));
        assert_eq!(t.lost(), 1);
        let mut off = Trace::new(4, false, 1);
        off.push_burst(0, 8, 0, 1, 256);
        assert!(off.events().is_empty());
        assert_eq!(off.lost(), 0);
    }

    #[test]
    fn disabled_trace_records_nothing() {
        let mut t = Trace::new(10, false, 1);
        t.push(1, EventKind::Removed);
        assert!(t.events().is_empty());
        assert_eq!(t.lost(), 0);
        t.push(
            2,
            EventKind::Doorbell {
                channel: 0,
                tail: 1,
                from_shadow: false,
            },
        );
        assert_eq!(t.counters().doorbells, 1, "counted though not recorded");
    }
}
