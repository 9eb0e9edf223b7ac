//! One test per fault effect: where it acts and what the driver sees, and
//! that each applied effect is traced with the descriptor's seq.

use super::*;
use crate::regs::{error_code, status, STATE_BUSY, STATE_ERROR, STATE_HALTED};

/// Channel 0 with a 16-entry ring; three 256-byte copies (cookies 1..=3)
/// with `effect` on the 2nd descriptor; runs to idle.
fn run(effect: FaultEffect) -> Rig {
    let mut rig = Rig::with_rules(DeviceConfig::default(), vec![(nth(2), effect)]);
    rig.setup(0, 16);
    let src: Vec<u8> = (0..=255u8).collect();
    rig.fill(DATA, &src);
    for i in 1..=3u64 {
        rig.post(0, copy(DATA, DATA + 0x1000 * i, 256, i));
    }
    rig.ring(0);
    rig.dev.run_until_idle();
    let applied = rig.kinds(|k| matches!(k, EventKind::FaultApplied { .. }));
    assert_eq!(applied.len(), 1);
    assert!(
        matches!(applied[0].kind, EventKind::FaultApplied { seq: 2, channel: 0, rule: 0, effect: e } if e == effect)
    );
    rig
}

fn statuses(rig: &mut Rig) -> Vec<(u64, u16, u32)> {
    rig.completions(0)
        .iter()
        .map(|r| (r.cookie, r.status, r.bytes_done))
        .collect()
}

#[test]
fn drop_interrupt() {
    let mut rig = run(FaultEffect::DropInterrupt);
    assert_eq!(statuses(&mut rig).len(), 3);
    assert_eq!(rig.signals(0), 2);
}

#[test]
fn delay_interrupt() {
    let rig = run(FaultEffect::DelayInterrupt { cycles: 100_000 });
    assert_eq!(rig.signals(0), 3);
    let done = rig.kinds(|k| matches!(k, EventKind::Completion { seq: 2, .. }))[0].cycle;
    let msis: Vec<u64> = rig
        .kinds(|k| matches!(k, EventKind::MsiDelivered { .. }))
        .iter()
        .map(|e| e.cycle)
        .collect();
    assert_eq!(*msis.last().unwrap(), done + 200 + 100_000);
}

#[test]
fn duplicate_interrupt() {
    let rig = run(FaultEffect::DuplicateInterrupt);
    assert_eq!(rig.signals(0), 4);
}

#[test]
fn spurious_interrupt() {
    let rig = run(FaultEffect::SpuriousInterrupt);
    assert_eq!(rig.signals(0), 4);
    let fetch2 = rig.kinds(|k| matches!(k, EventKind::DescriptorFetch { seq: 2, .. }))[0].cycle;
    let first_msi = rig.kinds(|k| matches!(k, EventKind::MsiDelivered { .. }))[0].cycle;
    assert!(
        first_msi <= fetch2 + 1,
        "sent at fetch, before anything of seq 2 completed"
    );
}

#[test]
fn interrupt_storm() {
    let rig = run(FaultEffect::InterruptStorm { count: 50 });
    assert_eq!(rig.signals(0), 53);
}

#[test]
fn dma_error_recoverable() {
    let mut rig = run(FaultEffect::DmaError { fatal: false });
    assert_eq!(
        statuses(&mut rig),
        vec![(1, 0, 256), (2, status::ERR_DMA, 0), (3, 0, 256)]
    );
    assert_eq!(rig.read(DATA + 0x2000, 256), vec![0; 256]);
    assert_eq!(rig.signals(4), 1);
}

#[test]
fn dma_error_fatal_halts_the_channel() {
    let mut rig = run(FaultEffect::DmaError { fatal: true });
    assert_eq!(
        statuses(&mut rig),
        vec![(1, 0, 256), (2, status::ERR_DMA, 0)]
    );
    assert_eq!(rig.r(0, regs::CH_STATUS), STATE_ERROR);
    assert_eq!(rig.r(0, regs::CH_ERROR_CODE), error_code::DMA_FATAL);
    assert_eq!(rig.r(0, regs::CH_HEAD), 2);
}

#[test]
fn short_transfer() {
    let mut rig = run(FaultEffect::ShortTransfer { bytes: 100 });
    assert_eq!(statuses(&mut rig)[1], (2, status::SHORT, 100));
    let got = rig.read(DATA + 0x2000, 256);
    assert_eq!(&got[..100], &(0..100u8).collect::<Vec<_>>()[..]);
    assert_eq!(&got[100..], &[0u8; 156][..]);
}

#[test]
fn corrupt_data_flips_bits_silently_and_reproducibly() {
    let mut rig = run(FaultEffect::CorruptData { flips: 3 });
    assert_eq!(statuses(&mut rig)[1], (2, status::OK, 256));
    let want: Vec<u8> = (0..=255u8).collect();
    let got = rig.read(DATA + 0x2000, 256);
    let flipped: u32 = want
        .iter()
        .zip(&got)
        .map(|(a, b)| (a ^ b).count_ones())
        .sum();
    assert!(
        (1..=3).contains(&flipped),
        "3 flips (two may cancel): {flipped}"
    );
    assert_eq!(rig.read(DATA + 0x3000, 256), want);
    let again = run(FaultEffect::CorruptData { flips: 3 });
    assert_eq!(again.read(DATA + 0x2000, 256), got);
}

#[test]
fn hang_until_abort() {
    let mut rig = run(FaultEffect::Hang);
    assert_eq!(statuses(&mut rig), vec![(1, 0, 256)]);
    assert_eq!(rig.r(0, regs::CH_STATUS), STATE_BUSY);
    assert_eq!(rig.dev.next_event(), None);
    rig.w(0, regs::CH_CTRL, regs::CTRL_ABORT);
    assert_eq!(statuses(&mut rig), vec![(2, status::ABORTED, 0)]);
    assert_eq!(rig.r(0, regs::CH_STATUS), STATE_HALTED);
    rig.w(0, regs::CH_CTRL, regs::CTRL_ENABLE);
    rig.dev.run_until_idle();
    assert_eq!(statuses(&mut rig), vec![(3, 0, 256)]);
}

#[test]
fn halt_needs_a_channel_reset() {
    let mut rig = run(FaultEffect::Halt);
    assert_eq!(
        statuses(&mut rig),
        vec![(1, 0, 256), (2, status::ERR_HALTED, 0)]
    );
    assert_eq!(rig.r(0, regs::CH_ERROR_CODE), error_code::HALT);
    rig.w(0, regs::CH_CTRL, regs::CTRL_ENABLE);
    assert_eq!(rig.r(0, regs::CH_STATUS), STATE_ERROR);
}

#[test]
fn fetch_error() {
    let mut rig = run(FaultEffect::FetchError);
    assert_eq!(
        statuses(&mut rig),
        vec![(1, 0, 256), (0, status::ERR_FETCH, 0), (3, 0, 256)]
    );
    assert_eq!(rig.signals(4), 1);
}

#[test]
fn missing_completion() {
    let mut rig = run(FaultEffect::MissingCompletion);
    let recs = rig.completions(0);
    assert_eq!(recs.len(), 1, "the driver stops at the hole");
    assert_eq!(rig.r(0, regs::CH_HEAD), 3);
    assert_eq!(rig.r(0, regs::CH_COMP_TAIL), 3);
    assert_eq!(rig.signals(0), 3);
}

#[test]
fn stale_completion() {
    let mut rig = run(FaultEffect::StaleCompletion);
    let recs = rig.completions(0);
    assert_eq!(
        recs.iter().map(|r| (r.cookie, r.seq)).collect::<Vec<_>>(),
        vec![(1, 1), (1, 1), (3, 3)]
    );
    assert_eq!(recs[1].index, 1);
}

#[test]
fn latency_spike() {
    let base = run(FaultEffect::LatencySpike { cycles: 1 });
    let spiked = run(FaultEffect::LatencySpike { cycles: 10_001 });
    let t = |r: &Rig| r.kinds(|k| matches!(k, EventKind::Completion { seq: 2, .. }))[0].cycle;
    assert_eq!(t(&spiked) - t(&base), 10_000);
}

#[test]
fn surprise_removal() {
    let mut rig = run(FaultEffect::SurpriseRemoval);
    assert!(rig.dev.is_removed());
    assert_eq!(rig.completions(0).len(), 1);
    assert_eq!(rig.gr(regs::ID), 0xFFFF_FFFF);
    let mut b = [0u8; 4];
    rig.dev.config_read(0, &mut b);
    assert_eq!(b, [0xFF; 4]);
    let before = rig.dev.interrupts().signals.len();
    rig.ring(0);
    rig.dev.doorbell(0, Some(5));
    assert_eq!(rig.dev.next_event(), None);
    assert_eq!(rig.dev.interrupts().signals.len(), before);
}

#[test]
fn rules_filter_by_channel() {
    let trig = Trigger {
        every: Some(1),
        channel: Some(1),
        ..Trigger::default()
    };
    let mut rig = Rig::with_rules(
        DeviceConfig::default(),
        vec![(trig, FaultEffect::DropInterrupt)],
    );
    rig.setup(0, 16);
    rig.setup(1, 16);
    rig.post(0, copy(DATA, DATA + 0x1000, 64, 1));
    rig.post(1, copy(DATA, DATA + 0x2000, 64, 2));
    rig.ring(0);
    rig.ring(1);
    rig.dev.run_until_idle();
    assert_eq!((rig.signals(0), rig.signals(1)), (1, 0));
}
