//! Chrome trace-event JSON (opens in Perfetto and `chrome://tracing`).
//!
//! One process ("dmalab device"), one track per channel (tid = channel + 1)
//! and a device track (tid 0) for global events and the error vector.
//! Descriptors are async spans (`b`/`e`, id = seq) from acceptance to
//! completion, because a channel's write-back overlaps the next fetch;
//! bursts are complete events (`X`); a driver's `TRACE_MARKER` writes are
//! named instants on the channel the marker names ("ISR entry", "DPC
//! entry", "IRP completion", "watchdog"); everything else is an instant
//! (`i`) whose `args.detail` is the event's debug form. Timestamps are
//! microseconds derived from device cycles and the clock: no wall clock.

use serde_json::{json, Value};

use super::{EventKind, TraceEvent};

fn micros(cycle: u64, clock_hz: u64) -> f64 {
    cycle as f64 * 1e6 / clock_hz.max(1) as f64
}

/// The name of a driver marker's kind (`TRACE_MARKER` bits 31:24).
fn marker_name(value: u32) -> &'static str {
    match value >> 24 {
        1 => "ISR entry",
        2 => "DPC entry",
        3 => "IRP completion",
        4 => "watchdog",
        _ => "driver marker",
    }
}

fn track(kind: &EventKind, channels: u8) -> u64 {
    let vector = match *kind {
        EventKind::MsiRaised { vector }
        | EventKind::MsiMasked { vector }
        | EventKind::MsiPending { vector }
        | EventKind::MsiDelivered { vector, .. }
        | EventKind::MsiDropped { vector, .. } => Some(vector),
        _ => None,
    };
    if let EventKind::DriverMarker { value } = *kind {
        let c = (value >> 16) & 0xFF;
        return if c < u32::from(channels) {
            u64::from(c) + 1
        } else {
            0
        };
    }
    match (kind.channel(), vector) {
        (Some(c), _) => u64::from(c) + 1,
        (None, Some(v)) if v < u16::from(channels) => u64::from(v) + 1,
        _ => 0,
    }
}

/// Renders `events` of a device with `channels` channels and clock
/// `clock_hz` as a Chrome trace-event JSON document.
///
/// ```
/// use device_model::trace::{chrome::to_chrome_json, EventKind, TraceEvent};
/// let ev = [TraceEvent { cycle: 1000, kind: EventKind::DriverMarker { value: 0x0100_0001 } }];
/// let json = to_chrome_json(&ev, 4, 1_000_000_000);
/// let v: serde_json::Value = serde_json::from_str(&json).unwrap();
/// assert_eq!(v["traceEvents"].as_array().unwrap().last().unwrap()["ts"], 1.0);
/// ```
pub fn to_chrome_json(events: &[TraceEvent], channels: u8, clock_hz: u64) -> String {
    let mut out: Vec<Value> = Vec::with_capacity(events.len() + usize::from(channels) + 2);
    out.push(
        json!({"ph": "M", "pid": 1, "tid": 0, "name": "process_name",
                    "args": {"name": "dmalab device"}}),
    );
    out.push(json!({"ph": "M", "pid": 1, "tid": 0, "name": "thread_name",
                    "args": {"name": "device"}}));
    for c in 0..channels {
        out.push(
            json!({"ph": "M", "pid": 1, "tid": u64::from(c) + 1, "name": "thread_name",
                        "args": {"name": format!("channel {c}")}}),
        );
    }
    let mut burst_start = vec![None::<u64>; usize::from(channels)];
    for ev in events {
        let ts = micros(ev.cycle, clock_hz);
        let tid = track(&ev.kind, channels);
        match ev.kind {
            EventKind::DescriptorFetch {
                seq, index, len, ..
            } => out.push(json!({
                "ph": "b", "cat": "descriptor", "id": seq, "pid": 1, "tid": tid, "ts": ts,
                "name": format!("desc #{seq}"), "args": {"index": index, "len": len}})),
            EventKind::Completion {
                seq,
                status,
                bytes,
                written,
                ..
            } => {
                out.push(
                    json!({"ph": "e", "cat": "descriptor", "id": seq, "pid": 1, "tid": tid,
                    "ts": ts, "name": format!("desc #{seq}"),
                    "args": {"status": status, "bytes": bytes, "written": written}}),
                );
            }
            EventKind::BurstStart { channel, .. } => {
                if let Some(slot) = burst_start.get_mut(usize::from(channel)) {
                    *slot = Some(ev.cycle);
                }
            }
            EventKind::BurstEnd {
                channel,
                seq,
                bytes,
            } => {
                let start = burst_start
                    .get_mut(usize::from(channel))
                    .and_then(Option::take);
                let start = start.unwrap_or(ev.cycle);
                out.push(json!({"ph": "X", "cat": "bus", "pid": 1, "tid": tid,
                    "ts": micros(start, clock_hz),
                    "dur": micros(ev.cycle.saturating_sub(start), clock_hz),
                    "name": "burst", "args": {"seq": seq, "bytes": bytes}}));
            }
            EventKind::DriverMarker { value } => out.push(json!({"ph": "i", "s": "t", "pid": 1,
                "tid": tid, "ts": ts, "cat": "driver", "name": marker_name(value),
                "args": {"value": format!("{value:#010x}"), "tag": value & 0xFFFF}})),
            kind => out.push(json!({"ph": "i", "s": "t", "pid": 1, "tid": tid, "ts": ts,
                "name": kind.name(), "args": {"detail": format!("{kind:?}")}})),
        }
    }
    json!({"traceEvents": out, "displayTimeUnit": "ns"}).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_become_complete_events_on_their_channel_track() {
        let ev = [
            TraceEvent {
                cycle: 0,
                kind: EventKind::DescriptorFetch {
                    channel: 1,
                    index: 0,
                    seq: 1,
                    len: 64,
                },
            },
            TraceEvent {
                cycle: 10,
                kind: EventKind::BurstStart {
                    channel: 1,
                    seq: 1,
                    bytes: 64,
                },
            },
            TraceEvent {
                cycle: 18,
                kind: EventKind::BurstEnd {
                    channel: 1,
                    seq: 1,
                    bytes: 64,
                },
            },
            TraceEvent {
                cycle: 30,
                kind: EventKind::Completion {
                    channel: 1,
                    seq: 1,
                    index: 0,
                    status: 0,
                    bytes: 64,
                    written: true,
                },
            },
            TraceEvent {
                cycle: 40,
                kind: EventKind::MsiRaised { vector: 4 },
            },
        ];
        let v: Value = serde_json::from_str(&to_chrome_json(&ev, 4, 1_000_000_000)).unwrap();
        let list = v["traceEvents"].as_array().unwrap();
        let x = list.iter().find(|e| e["ph"] == "X").unwrap();
        assert_eq!(x["tid"], 2);
        assert_eq!(x["ts"], 0.01);
        assert_eq!(x["dur"], 0.008);
        let b = list.iter().find(|e| e["ph"] == "b").unwrap();
        let e = list.iter().find(|e| e["ph"] == "e").unwrap();
        assert_eq!(b["id"], e["id"]);
        let msi = list.iter().find(|e| e["name"] == "msi_raised").unwrap();
        assert_eq!(msi["tid"], 0, "the error vector sits on the device track");
        let names: Vec<_> = list
            .iter()
            .filter(|e| e["ph"] == "M")
            .map(|e| e["args"]["name"].clone())
            .collect();
        assert_eq!(names.len(), 6);
    }
}
