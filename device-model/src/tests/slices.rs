//! Bounded slices give what one call gives: the same workload run to idle
//! at once and in slices of 1, 3 and 64 events (and advanced through
//! checkpoints at once and in slices) leaves the same trace, byte for
//! byte, the same counters, interrupts, clock and guest memory.

use super::*;
use crate::controller::Progress;

/// How the rig's device is driven between guest actions.
#[derive(Debug, Clone, Copy)]
enum Drive {
    /// `run_until_idle`.
    Idle,
    /// `run_slice(n)` until done.
    IdleSlices(u64),
    /// `advance_to` each checkpoint.
    Advance,
    /// `advance_slice(checkpoint, n)` until done.
    AdvanceSlices(u64),
}

const CHECKPOINT: u64 = 20_000;

fn drive(dev: &mut Dev, how: Drive, round: u64) {
    let target = CHECKPOINT * (round + 1);
    match how {
        Drive::Idle => {
            dev.run_until_idle();
        }
        Drive::IdleSlices(n) => loop {
            let Progress { events, done } = dev.run_slice(n);
            assert!(events <= n);
            if done {
                break;
            }
        },
        Drive::Advance => dev.advance_to(target),
        Drive::AdvanceSlices(n) => loop {
            let p = dev.advance_slice(target, n);
            assert!(p.events <= n);
            if p.done {
                assert_eq!(dev.now(), target);
                break;
            }
            assert!(dev.now() <= target, "never past the target");
            assert!(dev.next_event().is_some_and(|t| t <= target));
        },
    }
}

/// Three channels (one coalescing), large and small copies, a source
/// outside memory, and faults that make extra timed work: delays, a
/// storm, corruption, a latency spike, a duplicate.
fn workload(how: Drive) -> Rig {
    let cfg = DeviceConfig {
        channels: 3,
        ..DeviceConfig::default()
    };
    let rules = vec![
        (nth(3), FaultEffect::DelayInterrupt { cycles: 7_000 }),
        (nth(5), FaultEffect::InterruptStorm { count: 9 }),
        (nth(8), FaultEffect::CorruptData { flips: 5 }),
        (nth(12), FaultEffect::LatencySpike { cycles: 3_000 }),
        (nth(17), FaultEffect::DuplicateInterrupt),
    ];
    let mut rig = Rig::with_rules(cfg, rules);
    for c in 0..3 {
        rig.setup(c, 32);
    }
    rig.w(2, regs::CH_COALESCE_COUNT, 3);
    rig.w(2, regs::CH_COALESCE_TIME, 4_000);
    let data: Vec<u8> = (0..8192u32).map(|i| (i * 7 % 251) as u8).collect();
    rig.fill(DATA, &data);
    for round in 0..4u64 {
        for c in 0..3u8 {
            for i in 0..6u64 {
                let len = if i % 2 == 0 {
                    4096
                } else {
                    100 + 37 * i as u32
                };
                let src = if c == 1 && i == 4 { MEM - 8 } else { DATA };
                let dst = DATA + 0x4000 + 0x2000 * (u64::from(c) * 6 + i);
                rig.post(c, copy(src, dst, len, round * 100 + u64::from(c) * 10 + i));
            }
            rig.ring(c);
        }
        drive(&mut rig.dev, how, round);
        for c in 0..3u8 {
            rig.completions(c);
            let head = rig.consumed[usize::from(c)].0;
            rig.w(c, regs::CH_COMP_HEAD, head);
        }
    }
    drive(&mut rig.dev, how, 4);
    rig
}

fn assert_same(a: &Rig, b: &Rig, what: &str) {
    assert_eq!(a.dev.trace_events(), b.dev.trace_events(), "{what}: trace");
    assert_eq!(a.dev.counters(), b.dev.counters(), "{what}: counters");
    assert_eq!(a.dev.interrupts(), b.dev.interrupts(), "{what}: messages");
    assert_eq!(a.dev.now(), b.dev.now(), "{what}: clock");
    assert_eq!(
        a.read(0, MEM as usize),
        b.read(0, MEM as usize),
        "{what}: memory"
    );
}

#[test]
fn sliced_runs_to_idle_match_one_run() {
    let whole = workload(Drive::Idle);
    assert!(whole.dev.counters().faults_applied() >= 5);
    assert_eq!(whole.dev.trace_lost(), 0);
    for n in [1, 3, 64] {
        assert_same(
            &whole,
            &workload(Drive::IdleSlices(n)),
            &format!("slices of {n}"),
        );
    }
}

#[test]
fn sliced_advances_match_one_advance() {
    let whole = workload(Drive::Advance);
    assert!(whole.dev.counters().completions > 0);
    for n in [1, 3, 64] {
        assert_same(
            &whole,
            &workload(Drive::AdvanceSlices(n)),
            &format!("slices of {n}"),
        );
    }
}

#[test]
fn a_slice_stops_after_its_budget() {
    let mut rig = Rig::new(DeviceConfig::default());
    rig.setup(0, 16);
    rig.post(0, copy(DATA, DATA + 0x10000, 64 << 10, 1));
    rig.ring(0);
    let p = rig.dev.run_slice(10);
    assert_eq!(
        p,
        Progress {
            events: 10,
            done: false
        }
    );
    let before = rig.dev.now();
    let p = rig.dev.advance_slice(before, 10);
    assert_eq!(
        (p.events, p.done),
        (0, true),
        "nothing due at the current cycle"
    );
    let mut total = 10;
    loop {
        let p = rig.dev.run_slice(100);
        total += p.events;
        if p.done {
            break;
        }
    }
    let mut whole = Rig::new(DeviceConfig::default());
    whole.setup(0, 16);
    whole.post(0, copy(DATA, DATA + 0x10000, 64 << 10, 1));
    whole.ring(0);
    assert_eq!(whole.dev.run_until_idle(), total);
}

/// One long copy on channel 2, then, at every offset of a burst period
/// (so that another channel's fetch ends before, on and after one of
/// channel 2's burst ends: a tie goes to the lower channel), copies on
/// channels 0 and 1 of a few bursts
/// each, back to back: the bursts a whole run processes in streaks
/// (`Controller::burst_streak`) and slices of one event, which never
/// streak, leave the same trace, memory and counters.
#[test]
fn burst_streaks_match_event_by_event_processing() {
    fn run(offset: u64, one_by_one: bool) -> Rig {
        let cfg = DeviceConfig {
            channels: 3,
            ..DeviceConfig::default()
        };
        let mut rig = Rig::new(cfg);
        for c in 0..3 {
            rig.setup(c, 16);
        }
        let data: Vec<u8> = (0..0x8000u32).map(|i| (i * 13 % 251) as u8).collect();
        rig.fill(DATA, &data);
        rig.post(2, copy(DATA, DATA + 0x10000, 0x6000, 1));
        rig.post(2, copy(DATA, DATA + 0x18000, 0x1000 + 77, 2));
        rig.ring(2);
        let at = 1_000 + offset;
        if one_by_one {
            while !rig.dev.advance_slice(at, 1).done {}
        } else {
            rig.dev.advance_to(at);
        }
        for c in 0..2u8 {
            for i in 0..3u64 {
                let dst = DATA + 0x20000 + 0x2000 * (u64::from(c) * 3 + i);
                rig.post(c, copy(DATA + 0x100 * i, dst, 700 + 300 * i as u32, 10 + i));
            }
            rig.ring(c);
        }
        if one_by_one {
            while !rig.dev.run_slice(1).done {}
        } else {
            rig.dev.run_until_idle();
        }
        rig
    }
    for offset in 0..40 {
        let (whole, single) = (run(offset, false), run(offset, true));
        assert!(whole.dev.counters().completions >= 8);
        assert_same(&whole, &single, &format!("offset {offset}"));
    }
}
