//! `step`: moving device time by request (control API). Allowed in stepped
//! timing, and in any timing while the VM is paused; refused otherwise,
//! since moving a realtime device ahead of host time breaks the guest's
//! timeouts.
//!
//! A step to the next event, interrupt or completion advances the model
//! from one pending model event to the next until the trace shows what it
//! was asked for: bursts are not events a watcher sees (one 64 KiB
//! descriptor is hundreds of bursts), so `step event` moves at least to
//! the next fetch, completion, interrupt, fault or state change. Every
//! step is bounded: cycles by `MAX_STEP_CYCLES`, the others by
//! `MAX_STEP_EVENTS` model events; `idle` on a device that never idles
//! stops at that bound too.

use device_model::EventKind;
use dmalab_protocol::control::{StepTo, MAX_STEP_CYCLES, MAX_STEP_EVENTS};

use super::{watch, DeviceState};

/// Whether `kind` is what `to` waits for.
fn wanted(to: StepTo, kind: &EventKind) -> bool {
    match to {
        StepTo::Interrupt => matches!(
            kind,
            EventKind::MsiDelivered { .. } | EventKind::MsiDropped { .. }
        ),
        StepTo::Completion => matches!(kind, EventKind::Completion { .. }),
        StepTo::Event => watch::event(
            &device_model::TraceEvent {
                cycle: 0,
                kind: *kind,
            },
            0,
        )
        .is_some(),
        StepTo::Cycles(_) | StepTo::Idle => false,
    }
}

/// Moves the device as `to` says. `Err` when the device went idle first
/// (nothing more to step to) or a bound was reached; the device stays
/// where the step got it.
pub fn step(st: &mut DeviceState, to: StepTo) -> Result<(), String> {
    match to {
        StepTo::Cycles(n) if n > MAX_STEP_CYCLES => Err(format!(
            "step moves at most {MAX_STEP_CYCLES} cycles at a time, not {n}"
        )),
        StepTo::Cycles(n) => {
            let to = st.model.now().saturating_add(n);
            st.model.advance_to(to);
            Ok(())
        }
        StepTo::Idle => {
            let mut events = 0;
            while !st.model.run_slice(1 << 13).done {
                events += 1 << 13;
                if events >= MAX_STEP_EVENTS {
                    return Err(format!(
                        "the device did not go idle within {MAX_STEP_EVENTS} events"
                    ));
                }
                st.drain();
            }
            Ok(())
        }
        _ => {
            for _ in 0..MAX_STEP_EVENTS {
                let Some(at) = st.model.next_event() else {
                    return Err(format!("the device went idle before the next {}", what(to)));
                };
                let mark = st.model.trace_events().len();
                st.model.advance_to(at);
                let hit = st.model.trace_events()[mark..]
                    .iter()
                    .any(|e| wanted(to, &e.kind));
                if hit {
                    return Ok(());
                }
                // Kept short, so the scan above stays cheap.
                if st.model.trace_events().len() >= 1 << 12 {
                    st.drain();
                }
            }
            Err(format!("no {} within {MAX_STEP_EVENTS} events", what(to)))
        }
    }
}

fn what(to: StepTo) -> &'static str {
    match to {
        StepTo::Interrupt => "interrupt",
        StepTo::Completion => "completion",
        _ => "event",
    }
}
