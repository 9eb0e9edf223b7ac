//! Device trace events as the control API's watch events
//! (`dmalab_protocol::control::Event`), and the queue they wait in for the
//! device thread to push them to watching connections.
//!
//! Bursts are left out (a 64 KiB descriptor is hundreds of them; a watcher
//! wants the descriptor's fetch and completion). Driver markers
//! (`TRACE_MARKER`, `device_model::trace::marker`, written by the guest's
//! driver with `markers=1`) become `isr`, `dpc`, `timer-dpc`, `start-io`
//! and their `…-end`s, `irp-start` and `irp-complete`, on the channel they
//! name; an end carries the routine's own guest time (TSC) in `guest_us`.
//!
//! Every event carries three clocks: the device cycle, the same as
//! modelled nanoseconds (`ns`: the time the guest reads from the device),
//! and host time.

use device_model::trace::marker::{self, Marker};
use device_model::{EventKind, TraceEvent};
use dmalab_protocol::control::Event;

/// Events kept for watchers at most; more are counted as lost.
pub const QUEUE_MAX: usize = 1 << 16;

/// Device cycles as nanoseconds at `clock_hz`.
fn nanos(cycle: u64, clock_hz: u64) -> u64 {
    let ns = u128::from(cycle) * 1_000_000_000 / u128::from(clock_hz.max(1));
    u64::try_from(ns).unwrap_or(u64::MAX)
}

/// The watch event for a trace event of a device clocked at `clock_hz`,
/// or `None` for events a watcher does not see (bursts).
pub fn event(e: &TraceEvent, clock_hz: u64, host_us: u64) -> Option<Event> {
    let mut guest_us = None;
    let (channel, what, detail): (Option<u8>, String, String) = match e.kind {
        EventKind::Doorbell {
            channel,
            tail,
            from_shadow,
        } => (
            Some(channel),
            "doorbell".into(),
            format!("tail {tail}{}", if from_shadow { " (shadow)" } else { "" }),
        ),
        EventKind::FetchStart { .. } | EventKind::Bursts { .. } => return None,
        EventKind::DescriptorFetch {
            channel,
            index,
            seq,
            len,
        } => (
            Some(channel),
            "fetch".into(),
            format!("seq {seq} index {index} len {len}"),
        ),
        EventKind::Completion {
            channel,
            seq,
            index,
            status,
            bytes,
            written,
        } => (
            Some(channel),
            "completion".into(),
            format!(
                "seq {seq} index {index} status {status} bytes {bytes}{}",
                if written { "" } else { " (record not written)" }
            ),
        ),
        EventKind::MsiRaised { vector } => (None, "msi-raised".into(), format!("vector {vector}")),
        EventKind::MsiMasked { vector } => {
            (None, "msi-held".into(), format!("vector {vector} masked"))
        }
        EventKind::MsiPending { vector } => {
            (None, "msi-pending".into(), format!("vector {vector}"))
        }
        EventKind::MsiDelivered { vector, slot } => (
            None,
            "msi-sent".into(),
            format!("vector {vector} slot {slot}"),
        ),
        EventKind::MsiDropped { vector, reason } => (
            None,
            "msi-dropped".into(),
            format!("vector {vector}: {reason:?}"),
        ),
        EventKind::FaultApplied {
            seq,
            channel,
            rule,
            effect,
        } => (
            Some(channel),
            "fault".into(),
            format!("{} on seq {seq} (rule {rule})", effect.kind_name()),
        ),
        EventKind::RegisterError {
            space,
            offset,
            size,
            error,
        } => (
            None,
            "register-error".into(),
            format!("{space:?} +{offset:#x} size {size}: {error:?}"),
        ),
        EventKind::DriverMarker { value } => {
            let channel = Some(marker::channel(value));
            let arg = marker::argument(value);
            match Marker::of(value) {
                Marker::Begin(r) => (channel, r.name().into(), format!("tag {arg}")),
                Marker::End(r) => {
                    guest_us = Some(u32::from(arg));
                    (
                        channel,
                        format!("{}-end", r.name()),
                        format!("guest {arg} µs"),
                    )
                }
                Marker::IrpStart => (channel, "irp-start".into(), format!("tag {arg}")),
                Marker::IrpComplete => (channel, "irp-complete".into(), format!("tag {arg}")),
                Marker::Other => (channel, "marker".into(), format!("{value:#010x}")),
            }
        }
        EventKind::ChannelState {
            channel,
            state,
            error,
        } => (
            Some(channel),
            "state".into(),
            format!("{} error {error}", state_name(state)),
        ),
        EventKind::Removed => (None, "removed".into(), "surprise removal".into()),
        EventKind::Reset { flr } => (
            None,
            "reset".into(),
            if flr {
                "function-level reset"
            } else {
                "device reset"
            }
            .into(),
        ),
    };
    Some(Event {
        cycle: e.cycle,
        ns: nanos(e.cycle, clock_hz),
        host_us,
        channel,
        what,
        guest_us,
        detail,
    })
}

/// A channel `STATUS` state's name.
pub fn state_name(state: u32) -> &'static str {
    use device_model::regs;
    match state & regs::STATUS_STATE_MASK {
        regs::STATE_IDLE => "idle",
        regs::STATE_BUSY => "busy",
        regs::STATE_HALTED => "halted",
        _ => "error",
    }
}

/// Events waiting for the device thread to push them.
#[derive(Debug, Default)]
pub struct WatchQueue {
    /// Connections watching (events are queued only while some do).
    pub watchers: usize,
    pub events: Vec<Event>,
    pub lost: u64,
}

impl WatchQueue {
    pub fn push(&mut self, e: Event) {
        if self.events.len() < QUEUE_MAX {
            self.events.push(e);
        } else {
            self.lost += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_name_their_routine_and_channel_and_bursts_are_left_out() {
        let marker = |v| TraceEvent {
            cycle: 5,
            kind: EventKind::DriverMarker { value: v },
        };
        let isr = event(&marker(1 << 24 | 2 << 16 | 7), 1_000_000_000, 1).unwrap();
        assert_eq!((isr.what.as_str(), isr.channel), ("isr", Some(2)));
        assert_eq!((isr.detail.as_str(), isr.guest_us), ("tag 7", None));
        let end = event(&marker(0x81 << 24 | 2 << 16 | 31), 1_000_000_000, 1).unwrap();
        assert_eq!((end.what.as_str(), end.guest_us), ("isr-end", Some(31)));
        let irp = event(&marker(3 << 24), 1_000_000_000, 1).unwrap();
        assert_eq!(irp.what, "irp-complete");
        let burst = TraceEvent {
            cycle: 5,
            kind: EventKind::Bursts {
                channel: 0,
                seq: 1,
                start: 0,
                bursts: 1,
                bytes: 256,
            },
        };
        assert_eq!(event(&burst, 1_000_000_000, 1), None);
    }

    #[test]
    fn events_carry_device_time_in_nanoseconds() {
        let doorbell = TraceEvent {
            cycle: 2_500,
            kind: EventKind::Doorbell {
                channel: 0,
                tail: 1,
                from_shadow: false,
            },
        };
        // 500 MHz: a cycle is 2 ns.
        let e = event(&doorbell, 500_000_000, 7).unwrap();
        assert_eq!((e.cycle, e.ns, e.host_us), (2_500, 5_000, 7));
    }
}
