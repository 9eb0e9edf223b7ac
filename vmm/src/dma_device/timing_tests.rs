//! The timing modes on a KVM rig: instant completes within the doorbell
//! access, realtime when host time reaches the modelled time.

use super::testing::rig;
use super::*;
use device_model::regs::{self, channel_reg};
use std::time::Instant;

fn ring(dma: &Dma) {
    dma.access(|m| m.mmio_write(0, channel_reg(0, regs::CH_TAIL), &1u32.to_le_bytes()));
}

#[test]
fn instant_mode_completes_within_the_doorbell_access() {
    let Some(rig) = rig(TimingMode::Instant, DoorbellMode::Exit) else {
        return;
    };
    rig.post_one_copy();
    ring(&rig.device.dma);
    assert!(rig.copied(), "done before the access returned");
    let st = rig.device.dma.lock();
    assert_eq!(st.model.next_event(), None);
    assert_eq!(
        st.model.interrupts().counts().per_slot[0],
        0,
        "MSI-X is off"
    );
}

#[test]
fn realtime_mode_completes_when_host_time_reaches_the_modelled_time() {
    let Some(rig) = rig(TimingMode::Realtime, DoorbellMode::Exit) else {
        return;
    };
    rig.post_one_copy();
    let dma = &rig.device.dma;
    ring(dma);
    // The device thread's timerfd releases the events (~1 µs of model
    // time after the doorbell); poll, bounded.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !rig.copied() {
        assert!(Instant::now() < deadline, "the timer never ran the copy");
        std::thread::yield_now();
    }
    let done_at = loop {
        let st = dma.lock();
        if st.model.next_event().is_none() {
            break st.model.now();
        }
        drop(st);
        assert!(Instant::now() < deadline, "events left pending");
        std::thread::yield_now();
    };
    assert!(
        done_at >= 500,
        "at least the fetch latency passed: {done_at}"
    );
    assert!(dma.clock.now_cycles() >= done_at);
}
