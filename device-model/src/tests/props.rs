//! Property tests: no input panics the device or touches memory outside
//! what it was given; every accepted descriptor gets exactly one completion
//! record; identical inputs give identical traces.

use proptest::prelude::*;

use super::*;
use crate::config::TimingConfig;

/// One driver or host action.
#[derive(Debug, Clone)]
enum Op {
    Mmio {
        bar: u8,
        offset: u64,
        value: u64,
        size: usize,
        write: bool,
    },
    Config {
        offset: u64,
        value: u32,
        size: usize,
        write: bool,
    },
    Doorbell {
        channel: u8,
        value: Option<u32>,
    },
    Advance(u64),
    Mem {
        addr: u64,
        bytes: Vec<u8>,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let size = prop::sample::select(vec![1usize, 2, 3, 4, 8]);
    // Offsets near the real registers most of the time.
    let reg = prop_oneof![0u64..0x400, 0u64..0x1100];
    prop_oneof![
        4 => (prop::sample::select(vec![0u8, 2, 1]), reg, any::<u64>(), size.clone(), any::<bool>())
            .prop_map(|(bar, offset, value, size, write)| Op::Mmio { bar, offset, value, size, write }),
        1 => (0u64..0x110, any::<u32>(), size, any::<bool>())
            .prop_map(|(offset, value, size, write)| Op::Config { offset, value, size, write }),
        2 => (0u8..6, prop::option::of(0u32..40)).prop_map(|(channel, value)| Op::Doorbell { channel, value }),
        2 => (0u64..5000).prop_map(Op::Advance),
        2 => (0u64..0x9000, prop::collection::vec(any::<u8>(), 1..64)).prop_map(|(addr, bytes)| Op::Mem { addr, bytes }),
    ]
}

/// Small guest memory: two regions with a hole, at low addresses so random
/// register values hit them often.
const REGIONS: [(u64, usize); 2] = [(0x0, 0x4000), (0x6000, 0x3000)];

fn apply(dev: &mut Controller<GuestMemoryMmap, RecordingSink>, mem: &GuestMemoryMmap, op: &Op) {
    match op {
        Op::Mmio {
            bar,
            offset,
            value,
            size,
            write: true,
        } => dev.mmio_write(*bar, *offset, &value.to_le_bytes()[..*size]),
        Op::Mmio {
            bar, offset, size, ..
        } => dev.mmio_read(*bar, *offset, &mut [0u8; 8][..*size]),
        Op::Config {
            offset,
            value,
            size,
            write: true,
        } => {
            let n = (*size).min(4);
            dev.config_write(*offset, &value.to_le_bytes()[..n]);
        }
        Op::Config { offset, size, .. } => dev.config_read(*offset, &mut [0u8; 8][..*size]),
        Op::Doorbell { channel, value } => dev.doorbell(*channel, *value),
        Op::Advance(d) => {
            let t = dev.now() + d;
            dev.advance_to(t);
        }
        Op::Mem { addr, bytes } => {
            let _ = mem.write_slice(bytes, GuestAddress(*addr));
        }
    }
}

fn fresh(faults: FaultEngine) -> (Controller<GuestMemoryMmap, RecordingSink>, GuestMemoryMmap) {
    let mem =
        GuestMemoryMmap::<()>::from_ranges(&REGIONS.map(|(a, l)| (GuestAddress(a), l))).unwrap();
    let timing = TimingConfig {
        fetch_latency: 20,
        writeback_latency: 10,
        irq_latency: 5,
        ..TimingConfig::default()
    };
    let cfg = DeviceConfig {
        timing,
        max_ring_size: 64,
        max_transfer: 0x2000,
        ..DeviceConfig::default()
    };
    let dev = Controller::new(cfg, mem.clone(), RecordingSink::default())
        .unwrap()
        .with_faults(faults);
    (dev, mem)
}

fn random_faults(seed: u64) -> FaultEngine {
    let effects = [
        FaultEffect::DropInterrupt,
        FaultEffect::DuplicateInterrupt,
        FaultEffect::ShortTransfer { bytes: 10 },
        FaultEffect::CorruptData { flips: 2 },
        FaultEffect::DmaError { fatal: false },
        FaultEffect::LatencySpike { cycles: 50 },
        FaultEffect::StaleCompletion,
        FaultEffect::InterruptStorm { count: 3 },
    ];
    let rules = effects
        .iter()
        .map(|&effect| FaultRule {
            name: None,
            trigger: Trigger {
                probability: Some(0.1),
                ..Trigger::default()
            },
            effect,
        })
        .collect();
    FaultEngine::new(FaultPlan { rules }, seed)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Random register, config, doorbell, time and memory sequences never
    /// panic; every DMA stays inside the given regions (vm-memory refuses
    /// anything else and the model must survive the refusal), and the clock
    /// never runs backwards.
    #[test]
    fn random_accesses_never_panic(ops in prop::collection::vec(op(), 1..200), seed in any::<u64>()) {
        let (mut dev, mem) = fresh(random_faults(seed));
        let mut last = 0;
        for op in &ops {
            apply(&mut dev, &mem, op);
            prop_assert!(dev.now() >= last);
            last = dev.now();
        }
        dev.run_until_idle();
        for e in dev.trace_events() {
            if let EventKind::Completion { written: true, .. } = e.kind {
                // A written record implies its ring was validated inside RAM.
                prop_assert!(e.cycle <= dev.now());
            }
        }
    }

    /// Well-formed traffic on all channels with random sizes, batches,
    /// coalescing and aborts: every accepted descriptor (one with a seq)
    /// gets exactly one completion record, in order, and identical inputs
    /// give identical traces.
    #[test]
    fn every_accepted_descriptor_completes_once(
        batches in prop::collection::vec((0u8..4, 1u32..8, 1u32..3000, any::<bool>()), 1..20),
        coalesce in 0u32..4,
        abort_at in prop::option::of(0usize..20),
    ) {
        let run = || {
            let mut rig = Rig::new(DeviceConfig::default());
            for c in 0..4 {
                rig.setup(c, 64);
                rig.w(c, regs::CH_COALESCE_COUNT, coalesce);
                rig.w(c, regs::CH_COALESCE_TIME, 2000);
            }
            let mut cookie = 0;
            let mut records = Vec::new();
            for (i, &(c, n, len, shadow)) in batches.iter().enumerate() {
                for _ in 0..n {
                    cookie += 1;
                    rig.post(c, copy(DATA, DATA + 0x10000 + u64::from(c) * 0x10000, len, cookie));
                }
                if shadow {
                    rig.write_shadow(c);
                    rig.dev.doorbell(c, None);
                } else {
                    rig.ring(c);
                }
                let t = rig.dev.now() + 3000;
                rig.dev.advance_to(t);
                if abort_at == Some(i) {
                    rig.w(c, regs::CH_CTRL, regs::CTRL_ABORT);
                    rig.w(c, regs::CH_CTRL, regs::CTRL_ENABLE);
                }
                for ch in 0..4 {
                    records.extend(rig.completions(ch));
                    let head = rig.consumed[usize::from(ch)].0;
                    rig.w(ch, regs::CH_COMP_HEAD, head);
                }
            }
            rig.dev.run_until_idle();
            for ch in 0..4 {
                records.extend(rig.completions(ch));
            }
            (rig.events(), records)
        };
        let (trace, records) = run();
        let accepted: Vec<u64> = trace.iter().filter_map(|e| match e.kind {
            EventKind::DescriptorFetch { seq, .. } => Some(seq),
            _ => None,
        }).collect();
        let mut seqs: Vec<u64> = records.iter().map(|r| u64::from(r.seq)).collect();
        seqs.sort_unstable();
        prop_assert_eq!(&seqs, &accepted);
        let total: u32 = batches.iter().map(|b| b.1).sum();
        prop_assert_eq!(records.len(), total as usize, "nothing posted is lost");
        let (trace2, records2) = run();
        prop_assert_eq!(trace, trace2);
        prop_assert_eq!(records, records2);
    }

    /// Hostile descriptors (addresses in holes, past the end, wrapping;
    /// lengths 0, huge; bad ops) on a valid ring over small memory with a
    /// hole: the device writes only completion slots and the destination
    /// ranges of descriptors it accepted, and completes each exactly once.
    #[test]
    fn hostile_descriptors_write_only_where_allowed(
        descs in prop::collection::vec((addr(), addr(), len(), 0u8..3, 0u8..4, any::<u64>()), 1..31),
        seed in any::<u64>(),
    ) {
        let (mut dev, mem) = fresh(random_faults(seed));
        dev.config_write(4, &[0x06, 0]);
        let w = |dev: &mut Controller<_, _>, r, v: u32| dev.mmio_write(0, channel_reg(0, r), &v.to_le_bytes());
        w(&mut dev, regs::CH_RING_BASE, 0);
        w(&mut dev, regs::CH_RING_SIZE, 32);
        w(&mut dev, regs::CH_COMP_BASE, 0x400);
        w(&mut dev, regs::CH_CTRL, regs::CTRL_ENABLE);
        for (i, &(src, dst, len, op, flags, cookie)) in descs.iter().enumerate() {
            let d = Descriptor { src, dst, len, op, flags, cookie };
            mem.write_slice(&d.to_bytes(), GuestAddress(32 * i as u64)).unwrap();
        }
        let before = snapshot(&mem);
        w(&mut dev, regs::CH_TAIL, descs.len() as u32);
        dev.run_until_idle();
        let after = snapshot(&mem);
        let allowed = |a: u64| (0x400..0x800).contains(&a) || descs.iter().any(|&(_, dst, len, op, _, _)| {
            op < 2 && a >= dst && a - dst < u64::from(len)
        });
        for (x, y) in before.iter().zip(&after) {
            prop_assert!(x.1 == y.1 || allowed(x.0), "byte {:#x} changed", x.0);
        }
        let done = dev.trace_events().iter().filter(|e| matches!(e.kind, EventKind::Completion { .. })).count();
        let accepted = dev.trace_events().iter().filter(|e| matches!(e.kind, EventKind::DescriptorFetch { .. })).count();
        prop_assert_eq!(done, accepted);
    }
}

fn addr() -> impl Strategy<Value = u64> {
    prop_oneof![4 => 0x800u64..0x9000, 1 => any::<u64>(), 1 => Just(u64::MAX - 10), 1 => 0x3F00u64..0x4100]
}

fn len() -> impl Strategy<Value = u32> {
    prop_oneof![6 => 1u32..0x900, 1 => any::<u32>(), 1 => Just(0u32), 1 => Just(0x2001u32)]
}

/// Every byte of guest memory with its address.
fn snapshot(mem: &GuestMemoryMmap) -> Vec<(u64, u8)> {
    let mut out = Vec::new();
    for (base, len) in REGIONS {
        let mut buf = vec![0u8; len];
        mem.read_slice(&mut buf, GuestAddress(base)).unwrap();
        out.extend(
            buf.into_iter()
                .enumerate()
                .map(|(i, b)| (base + i as u64, b)),
        );
    }
    out
}

/// Drives a 4-channel rig with `batches` (channel, count, len) and `rules`,
/// advancing the clock by `step` cycles at a time (0: all at once), then
/// aborts every channel (so hung descriptors complete as `ABORTED`) and
/// returns the trace.
fn drive(
    batches: &[(u8, u32, u32)],
    rules: &[(Trigger, FaultEffect)],
    seed: u64,
    step: u64,
) -> Vec<TraceEvent> {
    let mut rig = Rig::with_faults(
        DeviceConfig::default(),
        FaultEngine::new(
            FaultPlan {
                rules: rules
                    .iter()
                    .map(|&(trigger, effect)| FaultRule {
                        name: None,
                        trigger,
                        effect,
                    })
                    .collect(),
            },
            seed,
        ),
    );
    for c in 0..4 {
        rig.setup(c, 64);
        rig.w(c, regs::CH_COALESCE_COUNT, 2);
        rig.w(c, regs::CH_COALESCE_TIME, 5000);
    }
    // The driver acts every million cycles; between its actions the clock
    // moves in one `advance_to` (step 0), in `step`-cycle steps, or as
    // instant mode does (`run_until_idle`, then idle time up to the epoch).
    let mut epoch = 0u64;
    let mut settle = |rig: &mut Rig| {
        epoch += 1_000_000;
        if step == INSTANT {
            rig.dev.run_until_idle();
        }
        while rig.dev.now() < epoch {
            let t = if step == 0 || step == INSTANT {
                epoch
            } else {
                (rig.dev.now() + step).min(epoch)
            };
            rig.dev.advance_to(t);
        }
    };
    let mut cookie = 0;
    for &(c, n, len) in batches {
        for _ in 0..n {
            cookie += 1;
            rig.post(
                c,
                copy(DATA, DATA + 0x10000 * (1 + u64::from(c)), len, cookie),
            );
        }
        rig.ring(c);
        settle(&mut rig);
        for ch in 0..4 {
            rig.completions(ch);
            let head = rig.consumed[usize::from(ch)].0;
            rig.w(ch, regs::CH_COMP_HEAD, head);
        }
    }
    for c in 0..4 {
        rig.w(c, regs::CH_CTRL, regs::CTRL_ABORT);
    }
    settle(&mut rig);
    rig.events()
}

/// `drive` step meaning instant mode.
const INSTANT: u64 = u64::MAX;

fn effect() -> impl Strategy<Value = FaultEffect> {
    prop::sample::select(vec![
        FaultEffect::DropInterrupt,
        FaultEffect::DelayInterrupt { cycles: 3000 },
        FaultEffect::DuplicateInterrupt,
        FaultEffect::SpuriousInterrupt,
        FaultEffect::InterruptStorm { count: 4 },
        FaultEffect::DmaError { fatal: false },
        FaultEffect::DmaError { fatal: true },
        FaultEffect::ShortTransfer { bytes: 7 },
        FaultEffect::CorruptData { flips: 5 },
        FaultEffect::Hang,
        FaultEffect::Halt,
        FaultEffect::FetchError,
        FaultEffect::MissingCompletion,
        FaultEffect::StaleCompletion,
        FaultEffect::LatencySpike { cycles: 777 },
    ])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// With random fault rules: every accepted descriptor gets exactly one
    /// completion (a record, or `written: false` only where a
    /// MissingCompletion rule fired on it); the same seed gives the same
    /// trace; and advancing the clock in small steps gives the same cycle
    /// stamps as advancing it at once.
    #[test]
    fn faults_are_deterministic_and_never_lose_a_descriptor(
        batches in prop::collection::vec((0u8..4, 1u32..6, 1u32..2000), 1..12),
        rules in prop::collection::vec((0.0f64..0.4, effect()), 0..4),
        seed in any::<u64>(),
        step in 1u64..400,
    ) {
        let rules: Vec<(Trigger, FaultEffect)> = rules
            .into_iter()
            .map(|(p, e)| (Trigger { probability: Some(p), ..Trigger::default() }, e))
            .collect();
        let trace = drive(&batches, &rules, seed, 0);
        let mut missing = std::collections::BTreeSet::new();
        for e in &trace {
            if let EventKind::FaultApplied { seq, effect: FaultEffect::MissingCompletion, .. } = e.kind {
                missing.insert(seq);
            }
        }
        let accepted: Vec<u64> = trace.iter().filter_map(|e| match e.kind {
            EventKind::DescriptorFetch { seq, .. } => Some(seq),
            _ => None,
        }).collect();
        let mut completed = Vec::new();
        for e in &trace {
            if let EventKind::Completion { seq, written, .. } = e.kind {
                prop_assert!(written || missing.contains(&seq), "seq {} lost its record", seq);
                completed.push(seq);
            }
        }
        completed.sort_unstable();
        prop_assert_eq!(completed, accepted);
        prop_assert_eq!(&drive(&batches, &rules, seed, 0), &trace);
        prop_assert_eq!(&drive(&batches, &rules, seed, step), &trace);
        prop_assert_eq!(&drive(&batches, &rules, seed, INSTANT), &trace);
    }
}
