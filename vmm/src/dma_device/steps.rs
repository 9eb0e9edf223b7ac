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
//! step is bounded: these by `MAX_STEP_EVENTS` model events, a step by
//! cycles by `MAX_STEP_CYCLES` (checked by the control socket).

use device_model::EventKind;
use dmalab_protocol::control::{StepTo, MAX_STEP_EVENTS};

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
            1,
            0,
        )
        .is_some(),
        StepTo::Cycles(_) | StepTo::Idle => false,
    }
}

/// Moves the device to just past the next event, interrupt or completion
/// (`to` is one of those). `Err` when the device went idle first (nothing
/// more to step to) or the bound was reached; the device stays where the
/// step got it. Steps to a cycle or to idle are `Dma::step`'s.
pub fn step(st: &mut DeviceState, to: StepTo) -> Result<(), String> {
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

fn what(to: StepTo) -> &'static str {
    match to {
        StepTo::Interrupt => "interrupt",
        StepTo::Completion => "completion",
        _ => "event",
    }
}
