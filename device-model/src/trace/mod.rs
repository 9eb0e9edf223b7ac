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
