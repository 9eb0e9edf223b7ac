//! The device's counters are exact when the trace buffer overflows: the
//! same workload on a device whose buffer holds 16 events and on one whose
//! buffer holds them all gives the same counters, and those counters equal
//! what the driver itself saw (records consumed, bytes they report,
//! messages received, `BAD_ACCESS`) and a tally of the complete trace.

use super::*;
use crate::regs::status;
use crate::trace::Counters;

const CHANNELS: u8 = 2;
const RING: u32 = 64;
const ROUNDS: u32 = 6;
const LEN: u32 = 512;

/// What the driver saw.
#[derive(Debug, Default, PartialEq, Eq)]
struct DriverView {
    records: u64,
    errors: u64,
    bytes: u64,
    messages: u64,
    bad_access: u64,
}

/// Two channels, 6 rounds of 63 copies each (one with a source outside
/// memory per round), channel 1 coalescing by 4, drop-interrupt on every
/// 7th descriptor and delay-interrupt on every 11th, a few ignored
/// accesses; the driver consumes every record.
fn workload(trace_capacity: usize) -> (Rig, DriverView) {
    let cfg = DeviceConfig {
        channels: CHANNELS,
        trace_capacity,
        ..DeviceConfig::default()
    };
    let every = |n| Trigger {
        every: Some(n),
        ..Trigger::default()
    };
    let mut rig = Rig::with_rules(
        cfg,
        vec![
            (every(7), FaultEffect::DropInterrupt),
            (every(11), FaultEffect::DelayInterrupt { cycles: 5_000 }),
        ],
    );
    let mut view = DriverView::default();
    for c in 0..CHANNELS {
        rig.setup(c, RING);
    }
    rig.w(1, regs::CH_COALESCE_COUNT, 4);
    rig.w(1, regs::CH_COALESCE_TIME, 2_000);
    rig.fill(DATA, &[0x5A; LEN as usize]);
    for round in 0..ROUNDS {
        for c in 0..CHANNELS {
            for i in 0..RING - 1 {
                let src = if i == 13 { MEM } else { DATA };
                let dst = DATA + 0x1000 + u64::from(LEN) * u64::from(i);
                rig.post(c, copy(src, dst, LEN, u64::from(round * RING + i)));
            }
            rig.ring(c);
        }
        rig.gw(0x0FC, 1); // no register there: ignored, counted
        rig.dev.run_until_idle();
        for c in 0..CHANNELS {
            for rec in rig.completions(c) {
                view.records += 1;
                view.bytes += u64::from(rec.bytes_done);
                view.errors += u64::from(status::is_error(rec.status));
            }
            let head = rig.consumed[usize::from(c)].0;
            rig.w(c, regs::CH_COMP_HEAD, head);
        }
    }
    view.messages = rig.dev.interrupts().signals.len() as u64;
    view.bad_access = u64::from(rig.bad_access());
    (rig, view)
}

/// The counters a tally of a complete trace gives.
fn tally(events: &[TraceEvent]) -> Counters {
    let mut c = Counters::new(CHANNELS);
    for e in events {
        c.count(&e.kind);
    }
    c
}

#[test]
fn counters_are_exact_when_the_trace_overflows() {
    let (small, seen_small) = workload(16);
    let (full, seen_full) = workload(1 << 20);
    assert_eq!(full.dev.trace_lost(), 0);
    assert!(
        small.dev.trace_lost() > 2_000,
        "lost {}",
        small.dev.trace_lost()
    );
    assert_eq!(seen_small, seen_full, "the same run either way");

    let counters = small.dev.counters();
    assert_eq!(counters, full.dev.counters());
    assert_eq!(counters, &tally(full.dev.trace_events()));
    assert_ne!(counters, &tally(small.dev.trace_events()));

    let posted = u64::from(ROUNDS) * u64::from(CHANNELS) * u64::from(RING - 1);
    let bad_src = u64::from(ROUNDS) * u64::from(CHANNELS);
    assert_eq!(counters.descriptors, posted);
    assert_eq!(counters.completions, seen_small.records);
    assert_eq!(seen_small.records, posted);
    assert_eq!(counters.completion_errors, seen_small.errors);
    assert_eq!(seen_small.errors, bad_src);
    assert_eq!(counters.bytes, seen_small.bytes);
    assert_eq!(seen_small.bytes, (posted - bad_src) * u64::from(LEN));
    assert_eq!(counters.interrupts_sent, seen_small.messages);
    assert_eq!(counters.register_errors, seen_small.bad_access);
    assert_eq!(counters.doorbells, u64::from(ROUNDS) * u64::from(CHANNELS));
    assert_eq!(counters.error_raises, bad_src);

    let drops = counters.faults_of(&FaultEffect::DropInterrupt);
    let delays = counters.interrupts_delayed();
    assert_eq!(drops, posted / 7);
    assert_eq!(delays, posted / 11);
    assert_eq!(counters.faults_applied(), drops + delays);
    assert_eq!(counters.interrupts_dropped(), drops, "no MSI dropped");
    assert!(
        counters.interrupts_coalesced() > 0,
        "channel 1 coalesces by 4"
    );
}
