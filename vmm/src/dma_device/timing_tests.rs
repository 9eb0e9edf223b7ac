//! The timing modes on a KVM rig: instant completes within the doorbell
//! access, realtime when host time reaches the modelled time.

use super::testing::{rig, rig_with_profile};
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

/// Realtime: a doorbell taken on the device thread follows the transfer's
/// bursts as they fall due, with the device lock released in between, so
/// that a transfer the host moves faster than modelled is not left
/// mid-way to a timer wake-up (tens of µs on a nested host). On a
/// 0.64 GB/s bus a 64 KiB copy is 100 µs of bursts 0.4 µs apart, far
/// longer than the 5 µs a vCPU access spins for: it is complete, record
/// written, when the doorbell returns.
#[test]
fn a_device_thread_doorbell_follows_its_transfer_to_the_end() {
    let profile = device_model::TimingConfig {
        bus_bytes_per_sec: 655_360_000,
        ..device_model::TimingConfig::default()
    };
    let Some(rig) = rig_with_profile(TimingMode::Realtime, DoorbellMode::Ioeventfd, profile) else {
        return;
    };
    const LEN: u32 = 64 << 10;
    rig.post_copy(0x10000, 0x40000, LEN);
    let dma = &rig.device.dma;
    let start = dma.clock.now_cycles();
    dma.eventfd_doorbell(0);
    let st = dma.lock();
    assert_eq!(st.model.next_event(), None, "events left to the timer");
    assert_eq!(st.model.counters().completions, 1);
    assert_eq!(st.model.counters().bytes, u64::from(LEN));
    assert!(
        st.model.now() >= start + 100_000,
        "the bursts took their time"
    );
    drop(st);
    assert!(rig.copied_to(0x40000, LEN as usize));
}

/// Realtime with `--trace`: the trace carries the lateness summary as
/// metadata and each measured event's own lateness as a counter per kind,
/// stamped with the event's device time.
#[test]
fn the_kept_trace_carries_each_events_lateness() {
    let Some(rig) = rig(TimingMode::Realtime, DoorbellMode::Ioeventfd) else {
        return;
    };
    rig.post_one_copy();
    let dma = &rig.device.dma;
    dma.eventfd_doorbell(0);
    let mut st = dma.lock();
    assert_eq!(st.model.next_event(), None);
    st.drain();
    let json: serde_json::Value = serde_json::from_str(&st.chrome_json(false).unwrap()).unwrap();
    let summary = &json["metadata"]["realtime_lateness"];
    assert_eq!(summary["completion"]["count"], 1);
    assert_eq!(summary["descriptor_fetch"]["count"], 1);
    let list = json["traceEvents"].as_array().unwrap();
    let stamp = |name: &str| {
        list.iter()
            .find(|e| e["name"] == name)
            .unwrap_or_else(|| panic!("no {name} event"))["ts"]
            .as_f64()
            .unwrap()
    };
    let late = list
        .iter()
        .find(|e| e["ph"] == "C" && e["name"] == "late µs: completion")
        .expect("a completion lateness counter");
    // The record's write is the end of its descriptor's span.
    let record = list
        .iter()
        .find(|e| e["ph"] == "e" && e["cat"] == "descriptor")
        .unwrap();
    assert_eq!(late["ts"], record["ts"]);
    let us = late["args"]["µs"].as_f64().unwrap();
    let max_us = summary["completion"]["max_ns"].as_f64().unwrap() / 1000.0;
    assert!((us - max_us).abs() < 1e-6, "{us} against {max_us}");
    assert!(stamp("late µs: descriptor_fetch") < late["ts"].as_f64().unwrap());
}
