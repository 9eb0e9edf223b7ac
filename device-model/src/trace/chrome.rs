//! Chrome trace-event JSON (opens in Perfetto and `chrome://tracing`).
//!
//! One process ("dmalab device"), one track per channel (tid = channel + 1)
//! and a device track (tid 0) for global events and the error vector.
//! Descriptors are async spans (`b`/`e`, id = seq) from acceptance to
//! completion, because a channel's write-back overlaps the next fetch;
//! a descriptor's bursts on its channel are coalesced into one complete
//! event (`X`, "bursts") from the first burst's grant to the last one's
//! end, with the number of bursts and bytes in `args` (the shared bus may
//! have served other channels in between; a 64 KiB descriptor is 256
//! bursts, and one event each made a 400-request trace 9.4 MB). A driver's
//! `TRACE_MARKER` writes (`marker.rs`) go on the channel they name: a
//! routine's begin and end markers are a `B`/`E` pair ("ISR", "DpcForIsr",
//! "timer DPC", "StartIo"; the end's `args.guest_us` is the routine's own
//! time as the guest measured it, when kept), an IRP's start and
//! completion an async span ("IRP tag", id `channel.tag`); markers that
//! share a device cycle are drawn a tenth of a nanosecond apart in the
//! order written (`args.cycle` keeps the exact cycle). Everything else is
//! an instant
//! (`i`) whose `args.detail` is the event's debug form. Timestamps are
//! microseconds derived from device cycles and the clock: no wall clock.

use serde_json::{json, Value};

use super::marker::{self, Marker};
use super::{EventKind, TraceEvent};

/// How far apart, in µs, driver markers that share a device cycle are
/// drawn: a tenth of a nanosecond, so that an ISR's begin and end (device
/// time stands still while the guest runs, in instant and stepped timing)
/// are a span in the order the guest wrote them, never past the next
/// cycle at clocks up to 1 GHz (a hundred markers in one cycle stay within
/// it; more pile up at its 99th step).
const MARKER_STEP_US: f64 = 0.0001;
const MARKER_STEPS_MAX: u32 = 99;

/// Device cycle `cycle` as the trace's timestamp: µs at `clock_hz`.
pub fn micros(cycle: u64, clock_hz: u64) -> f64 {
    cycle as f64 * 1e6 / clock_hz.max(1) as f64
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
    let mut runs = vec![None::<BurstRun>; usize::from(channels)];
    // The last driver marker's cycle and its step within that cycle.
    let mut same_cycle = (u64::MAX, 0u32);
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
                channel,
                seq,
                status,
                bytes,
                written,
                ..
            } => {
                if let Some(run) = runs.get_mut(usize::from(channel)).and_then(Option::take) {
                    out.push(run.to_json(tid, clock_hz));
                }
                out.push(
                    json!({"ph": "e", "cat": "descriptor", "id": seq, "pid": 1, "tid": tid,
                    "ts": ts, "name": format!("desc #{seq}"),
                    "args": {"status": status, "bytes": bytes, "written": written}}),
                );
            }
            EventKind::Bursts {
                channel,
                seq,
                start,
                bursts,
                bytes,
            } => {
                if let Some(slot) = runs.get_mut(usize::from(channel)) {
                    if slot.as_ref().is_some_and(|r| r.seq != seq) {
                        if let Some(run) = slot.take() {
                            out.push(run.to_json(tid, clock_hz));
                        }
                    }
                    let run = slot.get_or_insert(BurstRun::new(seq, start));
                    run.end = ev.cycle;
                    run.bursts += u64::from(bursts);
                    run.bytes += u64::from(bytes);
                }
            }
            EventKind::DriverMarker { value } => {
                if ev.cycle == same_cycle.0 {
                    same_cycle.1 = (same_cycle.1 + 1).min(MARKER_STEPS_MAX);
                } else {
                    same_cycle = (ev.cycle, 0);
                }
                let ts = ts + f64::from(same_cycle.1) * MARKER_STEP_US;
                let arg = marker::argument(value);
                out.push(match Marker::of(value) {
                    Marker::Begin(r) => json!({"ph": "B", "cat": "driver", "pid": 1,
                        "tid": tid, "ts": ts, "name": r.title(),
                        "args": {"cycle": ev.cycle, "tag": arg}}),
                    // The guest's own time, when the VMM kept it (0: left
                    // out, so that instant and stepped traces stay the same
                    // run to run).
                    Marker::End(_) if arg != 0 => json!({"ph": "E", "pid": 1, "tid": tid,
                        "ts": ts, "args": {"cycle": ev.cycle, "guest_us": arg}}),
                    Marker::End(_) => json!({"ph": "E", "pid": 1, "tid": tid, "ts": ts,
                        "args": {"cycle": ev.cycle}}),
                    // IRP start -> IRP completion: an async span per IRP,
                    // keyed by channel and tag (one IRP at a time per
                    // channel).
                    Marker::IrpStart | Marker::IrpComplete => {
                        let start = Marker::of(value) == Marker::IrpStart;
                        json!({"ph": if start { "b" } else { "e" }, "cat": "irp",
                            "id": format!("{}.{arg}", marker::channel(value)),
                            "pid": 1, "tid": tid, "ts": ts, "name": format!("IRP {arg}"),
                            "args": {"cycle": ev.cycle}})
                    }
                    Marker::Other => json!({"ph": "i", "s": "t", "pid": 1, "tid": tid,
                        "ts": ts, "cat": "driver", "name": "driver marker",
                        "args": {"value": format!("{value:#010x}")}}),
                });
            }
            kind => out.push(json!({"ph": "i", "s": "t", "pid": 1, "tid": tid, "ts": ts,
                "name": kind.name(), "args": {"detail": format!("{kind:?}")}})),
        }
    }
    for (c, run) in (1u64..).zip(runs) {
        if let Some(run) = run {
            out.push(run.to_json(c, clock_hz));
        }
    }
    json!({"traceEvents": out, "displayTimeUnit": "ns"}).to_string()
}

/// One descriptor's bursts on its channel, so far.
#[derive(Debug, Clone, Copy)]
struct BurstRun {
    seq: u64,
    start: u64,
    end: u64,
    bursts: u64,
    bytes: u64,
}

impl BurstRun {
    fn new(seq: u64, start: u64) -> Self {
        Self {
            seq,
            start,
            end: start,
            bursts: 0,
            bytes: 0,
        }
    }

    fn to_json(self, tid: u64, clock_hz: u64) -> Value {
        json!({"ph": "X", "cat": "bus", "pid": 1, "tid": tid,
            "ts": micros(self.start, clock_hz),
            "dur": micros(self.end.saturating_sub(self.start), clock_hz),
            "name": "bursts",
            "args": {"seq": self.seq, "bursts": self.bursts, "bytes": self.bytes}})
    }
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
                cycle: 18,
                kind: EventKind::Bursts {
                    channel: 1,
                    seq: 1,
                    start: 10,
                    bursts: 1,
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

    fn run(start: u64, end: u64, channel: u8, seq: u64, bursts: u32) -> TraceEvent {
        TraceEvent {
            cycle: end,
            kind: EventKind::Bursts {
                channel,
                seq,
                start,
                bursts,
                bytes: 256 * bursts,
            },
        }
    }

    #[test]
    fn a_descriptors_bursts_coalesce_into_one_span_per_channel() {
        // Channels 0 and 1 share the bus round-robin: seq 1 on channel 0,
        // seq 2 on channel 1, then seq 3 on channel 0 (never completed);
        // seq 3's run was split in two by a drain of the buffer.
        let mut ev = Vec::new();
        for i in 0..4u64 {
            ev.push(run(i * 20, i * 20 + 8, 0, 1, 1));
            ev.push(run(i * 20 + 10, i * 20 + 18, 1, 2, 1));
        }
        ev.push(TraceEvent {
            cycle: 100,
            kind: EventKind::Completion {
                channel: 0,
                seq: 1,
                index: 0,
                status: 0,
                bytes: 1024,
                written: true,
            },
        });
        ev.push(run(120, 128, 0, 3, 1));
        ev.push(run(128, 144, 0, 3, 2));
        let v: Value = serde_json::from_str(&to_chrome_json(&ev, 2, 1_000_000_000)).unwrap();
        let spans: Vec<&Value> = v["traceEvents"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["ph"] == "X")
            .collect();
        assert_eq!(spans.len(), 3, "{spans:?}");
        let of = |seq: u64| spans.iter().find(|e| e["args"]["seq"] == seq).unwrap();
        assert_eq!(of(1)["tid"], 1);
        assert_eq!(of(1)["args"]["bursts"], 4);
        assert_eq!(of(1)["args"]["bytes"], 1024);
        assert_eq!(of(1)["ts"], 0.0);
        assert_eq!(of(1)["dur"], 0.068);
        assert_eq!(of(2)["tid"], 2);
        assert_eq!(of(2)["args"]["bursts"], 4);
        assert_eq!(of(2)["ts"], 0.01);
        assert_eq!(of(3)["args"]["bursts"], 3);
        assert_eq!(of(3)["args"]["bytes"], 768);
        assert_eq!(of(3)["dur"], 0.024);
    }

    #[test]
    fn an_irps_start_and_completion_markers_make_an_async_span() {
        let marker = |cycle, kind: u32| TraceEvent {
            cycle,
            kind: EventKind::DriverMarker {
                value: kind << 24 | 2 << 16 | 7,
            },
        };
        let ev = [marker(100, 5), marker(150, 1), marker(400, 3)];
        let v: Value = serde_json::from_str(&to_chrome_json(&ev, 4, 1_000_000_000)).unwrap();
        let list = v["traceEvents"].as_array().unwrap();
        let irp: Vec<&Value> = list.iter().filter(|e| e["cat"] == "irp").collect();
        assert_eq!(irp.len(), 2, "{irp:?}");
        assert_eq!((&irp[0]["ph"], &irp[1]["ph"]), (&json!("b"), &json!("e")));
        assert_eq!(irp[0]["id"], "2.7");
        assert_eq!(irp[1]["id"], "2.7");
        assert_eq!(irp[0]["name"], "IRP 7");
        assert_eq!(irp[0]["tid"], 3);
        assert_eq!(irp[1]["ts"], 0.4);
        let isr: Vec<&Value> = list.iter().filter(|e| e["cat"] == "driver").collect();
        assert_eq!(
            (&isr[0]["name"], &isr[0]["ph"]),
            (&json!("ISR"), &json!("B"))
        );
    }

    #[test]
    fn routines_are_begin_end_pairs_spread_within_their_cycle() {
        let marker = |cycle, value: u32| TraceEvent {
            cycle,
            kind: EventKind::DriverMarker { value },
        };
        // Instant timing: ISR, its end (12 µs of guest time), the DPC, an
        // IRP completion inside it and the DPC's end, all at cycle 1000.
        let ev = [
            marker(1000, 0x0101_0007),
            marker(1000, 0x8101_000c),
            marker(1000, 0x0201_0007),
            marker(1000, 0x0301_0007),
            marker(1000, 0x8201_0000),
        ];
        let v: Value = serde_json::from_str(&to_chrome_json(&ev, 4, 1_000_000_000)).unwrap();
        let list: Vec<&Value> = v["traceEvents"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["ph"] != "M")
            .collect();
        let phases: Vec<&str> = list.iter().map(|e| e["ph"].as_str().unwrap()).collect();
        assert_eq!(phases, ["B", "E", "B", "e", "E"]);
        assert_eq!(
            (&list[0]["name"], &list[2]["name"]),
            (&json!("ISR"), &json!("DpcForIsr"))
        );
        assert!(list
            .iter()
            .all(|e| e["tid"] == 2 && e["args"]["cycle"] == 1000));
        let ts: Vec<f64> = list.iter().map(|e| e["ts"].as_f64().unwrap()).collect();
        assert!(ts.windows(2).all(|w| w[0] < w[1]), "{ts:?}");
        assert!(ts[4] < 1.001, "within the cycle: {ts:?}");
        assert_eq!(list[1]["args"]["guest_us"], 12);
        assert!(list[4]["args"].get("guest_us").is_none(), "left out: 0");
    }
}
