//! Device trace events as the control API's watch events
//! (`dmalab_protocol::control::Event`), and the queue they wait in for the
//! device thread to push them to watching connections.
//!
//! Bursts are left out (a 64 KiB descriptor is hundreds of them; a watcher
//! wants the descriptor's fetch and completion). Driver markers
//! (`TRACE_MARKER`: kind in bits 31:24, channel 23:16, tag 15:0, written by
//! the guest's driver with `markers=1`) become `isr`, `dpc`,
//! `irp-complete` and `watchdog` on the channel they name.

use device_model::{EventKind, TraceEvent};
use dmalab_protocol::control::Event;

/// Events kept for watchers at most; more are counted as lost.
pub const QUEUE_MAX: usize = 1 << 16;

/// The watch event for a trace event, or `None` for events a watcher does
/// not see (bursts).
pub fn event(e: &TraceEvent, host_us: u64) -> Option<Event> {
    let (channel, what, detail): (Option<u8>, &str, String) = match e.kind {
        EventKind::Doorbell {
            channel,
            tail,
            from_shadow,
        } => (
            Some(channel),
            "doorbell",
            format!("tail {tail}{}", if from_shadow { " (shadow)" } else { "" }),
        ),
        EventKind::FetchStart { .. }
        | EventKind::BurstStart { .. }
        | EventKind::BurstEnd { .. } => return None,
        EventKind::DescriptorFetch {
            channel,
            index,
            seq,
            len,
        } => (
            Some(channel),
            "fetch",
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
            "completion",
            format!(
                "seq {seq} index {index} status {status} bytes {bytes}{}",
                if written { "" } else { " (record not written)" }
            ),
        ),
        EventKind::MsiRaised { vector } => (None, "msi-raised", format!("vector {vector}")),
        EventKind::MsiMasked { vector } => (None, "msi-held", format!("vector {vector} masked")),
        EventKind::MsiPending { vector } => (None, "msi-pending", format!("vector {vector}")),
        EventKind::MsiDelivered { vector, slot } => {
            (None, "msi-sent", format!("vector {vector} slot {slot}"))
        }
        EventKind::MsiDropped { vector, reason } => {
            (None, "msi-dropped", format!("vector {vector}: {reason:?}"))
        }
        EventKind::FaultApplied {
            seq,
            channel,
            rule,
            effect,
        } => (
            Some(channel),
            "fault",
            format!("{} on seq {seq} (rule {rule})", effect.kind_name()),
        ),
        EventKind::RegisterError {
            space,
            offset,
            size,
            error,
        } => (
            None,
            "register-error",
            format!("{space:?} +{offset:#x} size {size}: {error:?}"),
        ),
        EventKind::DriverMarker { value } => {
            let channel = u8::try_from((value >> 16) & 0xff).ok();
            let what = match value >> 24 {
                1 => "isr",
                2 => "dpc",
                3 => "irp-complete",
                4 => "watchdog",
                _ => "marker",
            };
            (channel, what, format!("tag {}", value & 0xffff))
        }
        EventKind::ChannelState {
            channel,
            state,
            error,
        } => (
            Some(channel),
            "state",
            format!("{} error {error}", state_name(state)),
        ),
        EventKind::Removed => (None, "removed", "surprise removal".into()),
        EventKind::Reset { flr } => (
            None,
            "reset",
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
        host_us,
        channel,
        what: what.into(),
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
        let isr = event(&marker(1 << 24 | 2 << 16 | 7), 1).unwrap();
        assert_eq!((isr.what.as_str(), isr.channel), ("isr", Some(2)));
        assert_eq!(isr.detail, "tag 7");
        assert_eq!(event(&marker(3 << 24), 1).unwrap().what, "irp-complete");
        let burst = TraceEvent {
            cycle: 5,
            kind: EventKind::BurstEnd {
                channel: 0,
                seq: 1,
                bytes: 256,
            },
        };
        assert_eq!(event(&burst, 1), None);
    }
}
