//! Transfers, cycle stamps, bus arbitration, fences, coalescing, MSI-X
//! masking, abort and completion-ring flow control.

use super::*;
use crate::config::TimingConfig;
use crate::regs::{status, STATE_BUSY, STATE_HALTED, STATE_IDLE, STATUS_COMP_FULL};

fn at(rig: &Rig, f: impl Fn(&EventKind) -> bool) -> Vec<u64> {
    rig.kinds(f).iter().map(|e| e.cycle).collect()
}

#[test]
fn one_copy_has_the_documented_cycle_stamps() {
    let mut rig = Rig::new(DeviceConfig::default());
    rig.setup(0, 16);
    rig.fill(DATA, &[0x5A; 64]);
    rig.post(0, copy(DATA, DATA + 0x1000, 64, 0xC0FFEE));
    rig.ring(0);
    assert_eq!(rig.dev.next_event(), Some(500));
    rig.dev.run_until_idle();
    assert_eq!(
        at(&rig, |k| matches!(k, EventKind::DescriptorFetch { .. })),
        vec![500]
    );
    let spans: Vec<(u64, u64)> = rig.bursts().iter().map(|b| (b.start, b.end)).collect();
    assert_eq!(spans, vec![(500, 508)]);
    assert_eq!(
        at(&rig, |k| matches!(k, EventKind::Completion { .. })),
        vec![658]
    );
    assert_eq!(
        at(&rig, |k| matches!(k, EventKind::MsiDelivered { .. })),
        vec![858]
    );
    let recs = rig.completions(0);
    assert_eq!(recs.len(), 1);
    let r = recs[0];
    assert_eq!(
        (
            r.cookie,
            r.bytes_done,
            r.status,
            r.timestamp,
            r.seq,
            r.index
        ),
        (0xC0FFEE, 64, 0, 658, 1, 0)
    );
    assert_eq!(rig.read(DATA + 0x1000, 64), vec![0x5A; 64]);
    assert_eq!(rig.dev.interrupts().signals, vec![(0, msg(0))]);
    assert_eq!(rig.r(0, regs::CH_HEAD), 1);
    assert_eq!(rig.r(0, regs::CH_COMPLETED), 1);
    assert_eq!(rig.r(0, regs::CH_STATUS), STATE_IDLE);
}

#[test]
fn advance_to_processes_only_due_events() {
    let mut rig = Rig::new(DeviceConfig::default());
    rig.setup(0, 16);
    rig.post(0, copy(DATA, DATA + 0x1000, 64, 1));
    rig.ring(0);
    rig.dev.advance_to(600);
    assert_eq!(rig.dev.now(), 600);
    assert_eq!(rig.r(0, regs::CH_STATUS), STATE_BUSY);
    assert!(rig.completions(0).is_empty());
    assert_eq!(rig.dev.next_event(), Some(658));
    rig.dev.advance_to(10_000);
    assert_eq!(rig.completions(0).len(), 1);
    assert_eq!(rig.dev.next_event(), None);
}

#[test]
fn large_copy_is_cut_into_bursts() {
    let mut rig = Rig::new(DeviceConfig::default());
    rig.setup(0, 16);
    let src: Vec<u8> = (0..4096u32).map(|i| (i * 7) as u8).collect();
    rig.fill(DATA, &src);
    rig.post(0, copy(DATA, DATA + 0x8000, 4096, 1));
    rig.ring(0);
    rig.dev.run_until_idle();
    let ends: Vec<u64> = rig.bursts().iter().map(|b| b.end).collect();
    assert_eq!(ends.len(), 16);
    assert_eq!(ends[15], 500 + 16 * 32);
    let runs = rig.kinds(|k| matches!(k, EventKind::Bursts { .. }));
    assert_eq!(runs.len(), 1, "one channel alone streams one run");
    assert_eq!(rig.read(DATA + 0x8000, 4096), src);
}

#[test]
fn the_bus_is_shared_round_robin() {
    let mut rig = Rig::new(DeviceConfig::default());
    rig.setup(0, 16);
    rig.setup(1, 16);
    rig.post(0, copy(DATA, DATA + 0x4000, 1024, 1));
    rig.post(1, copy(DATA, DATA + 0x8000, 1024, 2));
    rig.ring(0);
    rig.ring(1);
    rig.dev.run_until_idle();
    let starts: Vec<(u64, u8)> = rig.bursts().iter().map(|b| (b.start, b.channel)).collect();
    let expect: Vec<(u64, u8)> = (0..8).map(|i| (500 + 32 * i, (i % 2) as u8)).collect();
    assert_eq!(starts, expect);
}

#[test]
fn fence_waits_for_earlier_write_backs() {
    let timing = TimingConfig {
        writeback_latency: 5000,
        ..TimingConfig::default()
    };
    let cfg = DeviceConfig {
        timing,
        ..DeviceConfig::default()
    };
    for (flags, expect) in [
        (descriptor::FLAG_IOC, 1008),
        (descriptor::FLAG_IOC | descriptor::FLAG_FENCE, 5508),
    ] {
        let mut rig = Rig::new(cfg);
        rig.setup(0, 16);
        rig.post(0, copy(DATA, DATA + 0x1000, 64, 1));
        rig.post(
            0,
            Descriptor {
                flags,
                ..copy(DATA, DATA + 0x2000, 64, 2)
            },
        );
        rig.ring(0);
        rig.dev.run_until_idle();
        let starts: Vec<u64> = rig.bursts().iter().map(|b| b.start).collect();
        assert_eq!(starts, vec![500, expect]);
        let recs: Vec<_> = rig.completions(0).iter().map(|r| r.cookie).collect();
        assert_eq!(recs, vec![1, 2]);
    }
}

use crate::descriptor;

#[test]
fn coalescing_by_count() {
    let mut rig = Rig::new(DeviceConfig::default());
    rig.setup(0, 16);
    rig.w(0, regs::CH_COALESCE_COUNT, 4);
    for i in 0..8 {
        rig.post(0, copy(DATA, DATA + 0x1000, 64, i));
    }
    rig.ring(0);
    rig.dev.run_until_idle();
    assert_eq!(rig.completions(0).len(), 8);
    assert_eq!(rig.signals(0), 2);
}

#[test]
fn coalescing_by_time() {
    let mut rig = Rig::new(DeviceConfig::default());
    rig.setup(0, 16);
    rig.w(0, regs::CH_COALESCE_COUNT, 100);
    rig.w(0, regs::CH_COALESCE_TIME, 10_000);
    for i in 0..3 {
        rig.post(0, copy(DATA, DATA + 0x1000, 64, i));
    }
    rig.ring(0);
    rig.dev.run_until_idle();
    let first = at(&rig, |k| matches!(k, EventKind::Completion { .. }))[0];
    assert_eq!(
        at(&rig, |k| matches!(k, EventKind::MsiDelivered { .. })),
        vec![first + 10_000 + 200]
    );
}

#[test]
fn descriptors_without_ioc_complete_silently() {
    let mut rig = Rig::new(DeviceConfig::default());
    rig.setup(0, 16);
    rig.post(
        0,
        Descriptor {
            flags: 0,
            ..copy(DATA, DATA + 0x1000, 64, 1)
        },
    );
    rig.post(0, copy(DATA, DATA + 0x1000, 64, 2));
    rig.ring(0);
    rig.dev.run_until_idle();
    assert_eq!(rig.completions(0).len(), 2);
    assert_eq!(rig.signals(0), 1);
}

#[test]
fn masked_msix_vector_is_pending_then_delivered_on_unmask() {
    let mut rig = Rig::new(DeviceConfig::default());
    rig.setup(0, 16);
    rig.dev.mmio_write(2, 12, &1u32.to_le_bytes());
    rig.post(0, copy(DATA, DATA + 0x1000, 64, 1));
    rig.ring(0);
    rig.dev.run_until_idle();
    assert_eq!(rig.signals(0), 0);
    let mut pba = [0u8; 8];
    rig.dev.mmio_read(2, 0x800, &mut pba);
    assert_eq!(u64::from_le_bytes(pba), 1);
    assert_eq!(
        rig.kinds(|k| matches!(k, EventKind::MsiPending { vector: 0 }))
            .len(),
        1
    );
    rig.dev.mmio_write(2, 12, &0u32.to_le_bytes());
    assert_eq!(rig.signals(0), 1);
    rig.dev.mmio_read(2, 0x800, &mut pba);
    assert_eq!(u64::from_le_bytes(pba), 0);
}

#[test]
fn abort_completes_the_transfer_in_flight_and_keeps_indices() {
    let mut rig = Rig::new(DeviceConfig::default());
    rig.setup(0, 16);
    rig.post(0, copy(DATA, DATA + 0x10000, 0x10000, 1));
    rig.post(0, copy(DATA, DATA + 0x20000, 64, 2));
    rig.ring(0);
    rig.dev.advance_to(600);
    rig.w(0, regs::CH_CTRL, regs::CTRL_ABORT);
    assert_eq!(rig.r(0, regs::CH_STATUS), STATE_HALTED);
    let recs = rig.completions(0);
    assert_eq!(recs.len(), 1);
    assert_eq!(
        (recs[0].cookie, recs[0].status, recs[0].bytes_done),
        (1, status::ABORTED, 768)
    );
    assert_eq!(rig.r(0, regs::CH_HEAD), 1);
    assert_eq!(rig.dev.next_event(), None);
    rig.w(0, regs::CH_CTRL, regs::CTRL_ENABLE);
    rig.dev.run_until_idle();
    let recs = rig.completions(0);
    assert_eq!(
        (recs.len(), recs[0].cookie, recs[0].status),
        (1, 2, status::OK)
    );
}

#[test]
fn full_completion_ring_stalls_until_the_driver_consumes() {
    let mut rig = Rig::new(DeviceConfig::default());
    rig.setup(0, 4);
    for i in 0..3 {
        rig.post(0, copy(DATA, DATA + 0x1000, 64, i));
    }
    rig.ring(0);
    rig.dev.run_until_idle();
    assert_eq!(rig.completions(0).len(), 3);
    rig.post(0, copy(DATA, DATA + 0x1000, 64, 3));
    rig.ring(0);
    rig.dev.run_until_idle();
    assert_eq!(rig.r(0, regs::CH_STATUS), STATE_BUSY | STATUS_COMP_FULL);
    assert!(rig.completions(0).is_empty());
    let consumed = rig.consumed[0].0;
    rig.w(0, regs::CH_COMP_HEAD, consumed);
    rig.dev.run_until_idle();
    let recs = rig.completions(0);
    assert_eq!(recs.len(), 1);
    assert_eq!(
        (recs[0].cookie, recs[0].index, recs[0].phase()),
        (3, 3, true),
        "index 3 is still the first pass"
    );
    assert_eq!(rig.r(0, regs::CH_STATUS), STATE_IDLE);
}

#[test]
fn full_completion_ring_rereads_the_shadow_head() {
    let mut rig = Rig::new(DeviceConfig::default());
    rig.setup(0, 4);
    for i in 0..3 {
        rig.post(0, copy(DATA, DATA + 0x1000, 64, i));
    }
    rig.ring(0);
    rig.dev.run_until_idle();
    assert_eq!(rig.completions(0).len(), 3);
    rig.write_shadow(0); // the driver publishes its consumed head in memory only
    rig.post(0, copy(DATA, DATA + 0x1000, 64, 3));
    rig.ring(0); // MMIO doorbell: the device learns the head from the shadow when full
    rig.dev.run_until_idle();
    let recs = rig.completions(0);
    assert_eq!(recs.iter().map(|r| r.cookie).collect::<Vec<_>>(), vec![3]);
    assert_eq!(rig.r(0, regs::CH_COMP_HEAD), 3);
}

#[test]
fn mmio_and_shadow_doorbells_behave_the_same() {
    let run = |shadow: bool| {
        let mut rig = Rig::new(DeviceConfig::default());
        rig.setup(0, 16);
        rig.setup(1, 16);
        for i in 0..5 {
            rig.post(0, copy(DATA, DATA + 0x1000, 300 * (i + 1), u64::from(i)));
            rig.post(1, copy(DATA, DATA + 0x8000, 64, 100 + u64::from(i)));
        }
        for c in 0..2 {
            if shadow {
                rig.write_shadow(c);
                rig.dev.doorbell(c, None);
            } else {
                rig.ring(c);
            }
        }
        rig.dev.run_until_idle();
        let ev: Vec<_> = rig
            .events()
            .into_iter()
            .map(|mut e| {
                if let EventKind::Doorbell {
                    ref mut from_shadow,
                    ..
                } = e.kind
                {
                    *from_shadow = false;
                }
                e
            })
            .collect();
        (ev, rig.completions(0), rig.completions(1))
    };
    let a = run(false);
    let b = run(true);
    assert_eq!(a.1.len(), 5);
    assert_eq!(a, b);
}

#[test]
fn msi_fallback_delivers_every_cause_on_one_message() {
    let mut rig = Rig::new(DeviceConfig::default());
    rig.dev.config_write(0x42, &0u16.to_le_bytes()); // MSI-X off
    rig.dev.config_write(0x54, &0xFEE0_0000u32.to_le_bytes());
    rig.dev.config_write(0x5C, &0x0051u32.to_le_bytes());
    rig.dev.config_write(0x52, &1u16.to_le_bytes());
    rig.setup(1, 16);
    rig.post(1, copy(DATA, DATA + 0x1000, 64, 1));
    rig.post(1, copy(MEM, DATA + 0x1000, 64, 2));
    rig.ring(1);
    rig.dev.run_until_idle();
    let m = MsiMessage {
        address: 0xFEE0_0000,
        data: 0x51,
    };
    assert_eq!(rig.dev.interrupts().signals, vec![(0, m), (0, m), (0, m)]);
    assert_eq!(rig.gr(regs::INT_STATUS), 0b10 | regs::INT_ERROR);
}

#[test]
fn channel_reset_discards_work_in_flight() {
    let mut rig = Rig::new(DeviceConfig::default());
    rig.setup(0, 16);
    rig.setup(1, 16);
    rig.post(0, copy(DATA, DATA + 0x10000, 0x4000, 1));
    rig.post(1, copy(DATA, DATA + 0x20000, 0x4000, 2));
    rig.ring(0);
    rig.ring(1);
    rig.dev.advance_to(700);
    rig.w(0, regs::CH_CTRL, regs::CTRL_RESET);
    rig.dev.run_until_idle();
    assert!(rig.completions(0).is_empty());
    assert_eq!(
        rig.completions(1).len(),
        1,
        "the other channel gets the bus"
    );
    assert_eq!(rig.r(0, regs::CH_HEAD), 0);
}

#[test]
fn chrome_trace_has_a_track_per_channel_and_paired_spans() {
    let mut rig = Rig::new(DeviceConfig::default());
    rig.setup(0, 16);
    rig.setup(2, 16);
    for i in 0..3 {
        rig.post(0, copy(DATA, DATA + 0x1000, 600, i));
        rig.post(2, copy(DATA, DATA + 0x2000, 64, 10 + i));
    }
    rig.ring(0);
    rig.ring(2);
    rig.gw(regs::TRACE_MARKER, 0x0100_0000);
    rig.dev.run_until_idle();
    let mut events = Vec::new();
    rig.dev.drain_trace(&mut events);
    assert!(rig.dev.trace_events().is_empty());
    let json: serde_json::Value = serde_json::from_str(&rig.dev.chrome_json(&events)).unwrap();
    let list = json["traceEvents"].as_array().unwrap();
    let count = |ph: &str, tid: u64| {
        list.iter()
            .filter(|e| e["ph"] == ph && e["tid"] == tid)
            .count()
    };
    assert_eq!((count("b", 1), count("e", 1)), (3, 3));
    assert_eq!((count("b", 3), count("e", 3)), (3, 3));
    // One span per descriptor: 600 bytes = 3 bursts, coalesced.
    assert_eq!(count("X", 1), 3);
    assert_eq!(count("X", 3), 3);
    assert!(list
        .iter()
        .filter(|e| e["ph"] == "X" && e["tid"] == 1)
        .all(|e| e["args"]["bursts"] == 3 && e["args"]["bytes"] == 600));
    let bursts: u32 = events
        .iter()
        .map(|e| match e.kind {
            EventKind::Bursts { bursts, .. } => bursts,
            _ => 0,
        })
        .sum();
    assert_eq!(bursts, 12);
    let marker = list.iter().find(|e| e["cat"] == "driver").unwrap();
    assert_eq!(
        (marker["name"].as_str(), &marker["tid"]),
        (Some("ISR"), &serde_json::json!(1))
    );
}

#[test]
fn abort_with_a_full_completion_ring_drops_records_but_advances_head() {
    let timing = TimingConfig {
        writeback_latency: 10_000,
        ..TimingConfig::default()
    };
    let mut rig = Rig::new(DeviceConfig {
        timing,
        ..DeviceConfig::default()
    });
    rig.setup(0, 4);
    for i in 0..3 {
        rig.post(0, copy(DATA, DATA + 0x1000, 64, i));
    }
    rig.ring(0);
    rig.dev.run_until_idle();
    assert_eq!(rig.completions(0).len(), 3); // consumed, but COMP_HEAD not returned
    rig.post(0, copy(DATA, DATA + 0x1000, 64, 3));
    rig.post(0, copy(DATA, DATA + 0x1000, 64, 4));
    rig.ring(0);
    rig.dev.advance_to(rig.dev.now() + 20_000);
    assert_ne!(rig.r(0, regs::CH_STATUS) & STATUS_COMP_FULL, 0);
    rig.w(0, regs::CH_CTRL, regs::CTRL_ABORT);
    let dropped = rig.kinds(|k| matches!(k, EventKind::Completion { written: false, .. }));
    // Index 3 waited for space; index 0 was fetched during 3's write-back.
    assert_eq!(dropped.len(), 2);
    assert_eq!(rig.r(0, regs::CH_HEAD), 1, "head passed both and wrapped");
    assert_eq!(rig.r(0, regs::CH_STATUS), STATE_HALTED);
    assert!(rig.completions(0).is_empty());
}
