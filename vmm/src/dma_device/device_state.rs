//! What the device lock guards (`DeviceState`): the model, the run's
//! tally, the kept trace, and what the control socket shows (last
//! completion records, hand-injected faults, watchers, recordings,
//! realtime lateness). `drain` moves the model's trace events to each of
//! them; `Dma` in `mod.rs` decides when.

use std::time::Instant;

use device_model::fault::FaultEffect;
use device_model::{EventKind, TraceEvent};
use dmalab_protocol::control::CompletionInfo;

use super::msix_delivery::MsiSend;
use super::stats::Tally;
use super::{lateness, watch, Model};

/// Most trace events kept for `--trace`; later ones are counted as lost.
pub(super) const KEEP_AT_MOST: usize = 1 << 20;

/// Everything behind the device lock.
#[derive(Debug)]
pub struct DeviceState {
    pub model: Model,
    pub tally: Tally,
    pub(super) kept: Option<Vec<TraceEvent>>,
    pub(super) kept_lost: u64,
    pub(super) scratch: Vec<TraceEvent>,
    /// The cycle the realtime timer is armed for.
    pub(super) armed: Option<u64>,
    /// Channels whose ioeventfd doorbell rang while the VM was paused
    /// (bit per channel), rung on resume.
    pub(super) deferred: u64,
    /// When the device was built (watch events' host time).
    pub(super) started: Instant,
    /// Each channel's last completion record (`channels`).
    pub last_completion: Vec<Option<CompletionInfo>>,
    /// Rules in the plan the run started with; rules past them were
    /// injected by hand.
    pub planned_rules: usize,
    /// Hand-injected faults as applied: (descriptor seq, effect), for the
    /// report's replayable plan.
    pub injected: Vec<(u64, FaultEffect)>,
    /// Events waiting for watchers.
    pub watch: watch::WatchQueue,
    /// `trace start` … `trace stop`: the events recorded so far.
    pub recording: Option<Vec<TraceEvent>>,
    /// Realtime: how late events were processed against their modelled time.
    pub lateness: lateness::LatenessTally,
    /// Realtime: buffers for dating one slice's events (message sends as
    /// kept by the sink and in ns since the clock's origin, each event's
    /// release time), kept to reuse their allocations.
    pub sends: Vec<MsiSend>,
    pub send_ns: Vec<(u64, u64)>,
    pub release_ns: Vec<u64>,
}

impl DeviceState {
    /// Moves the model's trace events into the fault log (and the kept
    /// trace) and takes the model's exact counters into the tally.
    pub fn drain(&mut self) {
        self.model.drain_trace(&mut self.scratch);
        let host_us = u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX);
        let clock_hz = self.model.config().timing.clock_hz;
        for e in &self.scratch {
            self.tally.log(e);
            match e.kind {
                EventKind::Completion {
                    channel,
                    seq,
                    index,
                    status,
                    bytes,
                    written,
                } => {
                    if let Some(slot) = self.last_completion.get_mut(usize::from(channel)) {
                        *slot = Some(CompletionInfo {
                            cycle: e.cycle,
                            seq,
                            index,
                            status,
                            bytes,
                            written,
                        });
                    }
                }
                EventKind::FaultApplied {
                    seq, rule, effect, ..
                } if usize::try_from(rule).unwrap_or(usize::MAX) >= self.planned_rules => {
                    self.injected.push((seq, effect));
                }
                _ => {}
            }
            if self.watch.watchers > 0 {
                if let Some(ev) = watch::event(e, clock_hz, host_us) {
                    self.watch.push(ev);
                }
            }
            if let Some(rec) = &mut self.recording {
                if rec.len() < KEEP_AT_MOST {
                    rec.push(*e);
                }
            }
        }
        self.tally.set_counters(self.model.counters());
        match &mut self.kept {
            Some(kept) if kept.len() + self.scratch.len() <= KEEP_AT_MOST => {
                kept.append(&mut self.scratch);
            }
            Some(_) => {
                self.kept_lost += self.scratch.len() as u64;
                self.scratch.clear();
            }
            None => self.scratch.clear(),
        }
    }

    /// Trace events lost: by the model (buffer full) and by the VMM (kept
    /// trace full).
    pub fn trace_lost(&self) -> u64 {
        self.model.trace_lost() + self.kept_lost
    }

    /// The trace kept for `--trace`, rendered as Chrome trace JSON, with
    /// the guest's own routine times when `guest_times` (realtime timing:
    /// `without_guest_times`).
    /// In realtime mode the trace's `metadata.realtime_lateness` carries the
    /// lateness per event kind, as in the run report.
    pub fn chrome_json(&self, guest_times: bool) -> Option<String> {
        let kept = self.kept.as_ref()?;
        let json = if guest_times {
            self.model.chrome_json(kept)
        } else {
            let mut events = kept.clone();
            without_guest_times(&mut events);
            self.model.chrome_json(&events)
        };
        let lateness = self.lateness.summaries();
        if lateness.is_empty() {
            return Some(json);
        }
        let Ok(mut value) = serde_json::from_str::<serde_json::Value>(&json) else {
            return Some(json);
        };
        value["metadata"] = serde_json::json!({ "realtime_lateness": lateness });
        let clock_hz = self.model.config().timing.clock_hz;
        if let Some(list) = value["traceEvents"].as_array_mut() {
            list.extend(lateness_counters(self.lateness.samples(), clock_hz));
        }
        Some(value.to_string())
    }
}

/// Each measured event's lateness as a Chrome counter event on the device
/// track, one counter per kind ("late µs: completion", …): Perfetto draws
/// them as graphs over device time, under the events they measure.
fn lateness_counters(
    samples: &[lateness::Sample],
    clock_hz: u64,
) -> impl Iterator<Item = serde_json::Value> + '_ {
    use device_model::trace::chrome::micros;
    samples.iter().map(move |s| {
        serde_json::json!({"ph": "C", "pid": 1, "tid": 0, "ts": micros(s.cycle, clock_hz),
            "name": format!("late µs: {}", s.kind),
            "args": {"µs": s.late_ns as f64 / 1000.0}})
    })
}

/// Clears the guest's own time from the driver's routine end markers.
///
/// The guest measures it with its TSC, which on KVM is host time: no two
/// runs read the same values, whatever the timing mode. Instant and
/// stepped traces are the same bytes run to run (their stamps are device
/// cycles, and device time moves only with the guest's register accesses
/// or the stepper), so they leave it out; the live watch stream keeps it.
pub fn without_guest_times(events: &mut [TraceEvent]) {
    use device_model::trace::marker::Marker;
    for e in events {
        if let EventKind::DriverMarker { value } = &mut e.kind {
            if matches!(Marker::of(*value), Marker::End(_)) {
                *value &= !u32::from(u16::MAX);
            }
        }
    }
}
