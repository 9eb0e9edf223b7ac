//! Random mode: `--random N --seed S` draws N scenarios, each a fault plan
//! over all effect kinds and trigger kinds with the default workload.
//!
//! The generator is **SplitMix64** (Steele, Lea & Flood, OOPSLA 2014;
//! Vigna's constants), used as a stream: scenario `k` of seed `S` starts
//! from `mix64(mix64(S + GAMMA) ^ k)`, so each scenario depends on `(S, k)`
//! only and `random-<S>-<k>` can be drawn again on its own (partitioned
//! runs draw only their shard's scenarios and get the same plans).
//!
//! Coverage is by construction, not by luck: the first rule of scenario
//! `k` has effect kind `KIND_NAMES[k mod 15]` and the trigger shape
//! `k mod 32` (base `nth` / `every` / `nth + every` / `probability`, and
//! three bits for the `channel`, `window` and `max_times` modifiers), so
//! any 15 consecutive scenarios cover every kind and any 32 every trigger
//! combination; further rules (0–2) are drawn freely. Parameters are drawn
//! in ranges that keep a scenario short (latency and delays ≤ 5 ms of
//! device time, storms ≤ 200 messages, windows inside the default
//! workload's device time).
//!
//! Some plans get race rules on top ([`race_rules`]). How a scenario
//! runs is drawn from a second stream ([`shape`]): the workload (copy,
//! fill, or stress on all four channels), cancellation at a drawn rhythm,
//! and the timing (instant or realtime); the campaign's options can fix
//! each. Expectations are the universal oracle only; the plan's own seed
//! (the `--seed` of `dmalab run`) is drawn too, so probability rules vary.

use device_model::fault::{CycleWindow, FaultEffect, FaultPlan, FaultRule, Trigger};

use crate::scenario::{Expect, Origin, Scenario, Timing};

/// Timeout of one random scenario, seconds.
pub const TIMEOUT: f64 = 30.0;
/// Device cycles the `copy irps=8` workload spans in instant mode
/// (~120,000): windows are drawn inside `[0, WINDOW_SPAN)`.
const WINDOW_SPAN: u64 = 150_000;
/// The driver's watchdog period (`dmadrv.watchdog_ms`, 10 ms) in device
/// cycles (1 GHz): race rules delay interrupts around it.
const WATCHDOG_CYCLES: u64 = 10_000_000;

/// A workload random plans draw from: the guest scenario, its command
/// line, and how often it is drawn (weights out of their sum).
#[derive(Debug, Clone, Copy)]
struct Workload {
    name: &'static str,
    cmdline: &'static str,
    /// Channels it uses (0..channels).
    channels: u8,
    weight: u64,
}

/// Copy on one channel most often (fast, ~20 descriptors), fill, and
/// stress on all four channels with 32 requests outstanding (the only one
/// where a DpcForIsr finds nothing new and errors land on several
/// channels at once).
const WORKLOADS: &[Workload] = &[
    Workload {
        name: "copy",
        cmdline: "irps=8",
        channels: 1,
        weight: 5,
    },
    Workload {
        name: "fill",
        cmdline: "irps=8",
        channels: 1,
        weight: 2,
    },
    Workload {
        name: "stress",
        cmdline: "irps=32",
        channels: 4,
        weight: 3,
    },
];

/// `dmadrv.timeout_ms` of random plans' drawn command lines (the
/// driver's default is 100 ms). A hang or a missing completion is found
/// only when this runs out, per attempt, and that idle wait was most of a
/// campaign's time. 20 ms is two watchdog periods: a lost interrupt is
/// still recovered (at the watchdog's second look, 10–20 ms) before any
/// timeout could apply (that branch needs no record), and it is 4× the
/// longest latency spike random plans draw (5 ms), so a realtime plan's
/// slow descriptor is not declared hung. The named scenarios keep the
/// default, and `slow-beyond-timeout` and `latency-spike` test it.
pub const PLAN_TIMEOUT_MS: u32 = 20;
/// Share of random scenarios cancelling requests (`cancel_every=2…6`).
const CANCEL_SHARE: f64 = 0.3;
/// Share of random scenarios in realtime.
const REALTIME_SHARE: f64 = 0.3;
/// Share of random plans with a race rule added (below).
const RACE_SHARE: f64 = 0.4;
/// Share of realtime random plans whose guest holds its DPC queue 1–3 ms
/// after each timer expiry (`verifier.timer_dpc_delay_us`, docs/wdm.md):
/// an interrupt arriving meanwhile queues its DpcForIsr behind the
/// watchdog's, the window in which a watchdog that ignores a queued DPC
/// takes its records (the oracle's `watchdog_took_queued`).
const DPC_DELAY_SHARE: f64 = 0.3;

/// What the campaign fixes for every random scenario (`--workload`,
/// `--random-cmdline`, `--random-timing`); `None`: drawn per scenario.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fixed {
    pub workload: Option<String>,
    pub cmdline: Option<String>,
    pub timing: Option<Timing>,
}

/// How a random scenario runs: workload, command line, timing.
#[derive(Debug, Clone, PartialEq)]
pub struct Shape {
    pub workload: String,
    pub cmdline: String,
    pub timing: Timing,
    /// Channels the workload uses (rules filter on these mostly).
    pub channels: u8,
}

const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// SplitMix64 as a stream.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// The stream of scenario `index` under campaign seed `seed`.
    pub fn for_scenario(seed: u64, index: u64) -> Self {
        SplitMix64(mix64(mix64(seed.wrapping_add(GAMMA)) ^ index))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(GAMMA);
        mix64(self.0)
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }

    /// Uniform in `lo..=hi`, for small ranges.
    pub fn range32(&mut self, lo: u32, hi: u32) -> u32 {
        u32::try_from(self.range(u64::from(lo), u64::from(hi))).expect("inside lo..=hi")
    }

    /// One of `items`, uniformly.
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        let last = u32::try_from(items.len() - 1).expect("a short list");
        items[self.range32(0, last) as usize]
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Uniform in [0, 1), 53 bits.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The name of random scenario `index` of seed `seed`.
pub fn name(seed: u64, index: u64) -> String {
    format!("random-{seed}-{index}")
}

/// `random-<S>-<k>` → `(S, k)`.
pub fn parse_name(name: &str) -> Option<(u64, u64)> {
    let rest = name.strip_prefix("random-")?;
    let (seed, index) = rest.split_once('-')?;
    Some((seed.parse().ok()?, index.parse().ok()?))
}

/// An effect of `kind` (a name of `FaultEffect::KIND_NAMES`, the one
/// table of kinds) with its parameters drawn.
fn effect(kind: &str, rng: &mut SplitMix64) -> FaultEffect {
    let effect = FaultEffect::from_kind_name(kind)
        .unwrap_or_else(|| unreachable!("KIND_NAMES has no {kind}"));
    match effect {
        FaultEffect::DelayInterrupt { .. } => FaultEffect::DelayInterrupt {
            cycles: rng.range(1_000, 5_000_000),
        },
        FaultEffect::InterruptStorm { .. } => FaultEffect::InterruptStorm {
            count: rng.range32(1, 200),
        },
        FaultEffect::DmaError { .. } => FaultEffect::DmaError {
            fatal: rng.chance(0.5),
        },
        FaultEffect::ShortTransfer { .. } => FaultEffect::ShortTransfer {
            bytes: {
                let any = rng.range32(1, 65_536);
                rng.pick(&[0, 8, 64, 512, 4096, any])
            },
        },
        FaultEffect::CorruptData { .. } => FaultEffect::CorruptData {
            flips: rng.range32(1, 16),
        },
        FaultEffect::LatencySpike { .. } => FaultEffect::LatencySpike {
            cycles: rng.range(1_000, 5_000_000),
        },
        // Kinds without parameters.
        FaultEffect::DropInterrupt
        | FaultEffect::DuplicateInterrupt
        | FaultEffect::SpuriousInterrupt
        | FaultEffect::Hang
        | FaultEffect::Halt
        | FaultEffect::FetchError
        | FaultEffect::MissingCompletion
        | FaultEffect::StaleCompletion
        | FaultEffect::SurpriseRemoval => effect,
        // A kind added to the model later: its default parameters.
        _ => effect,
    }
}

/// A trigger of shape `shape` (bits 0–1: base, 2: channel, 3: window,
/// 4: max_times) with drawn values; `channels` are the ones the workload
/// uses.
fn trigger(shape: u64, channels: u8, rng: &mut SplitMix64) -> Trigger {
    let mut t = Trigger::default();
    match shape & 3 {
        0 => t.nth = Some(rng.range(1, 16)),
        1 => t.every = Some(rng.range(1, 8)),
        2 => {
            t.nth = Some(rng.range(1, 8));
            t.every = Some(rng.range(2, 8));
        }
        _ => t.probability = Some(rng.pick(&[0.05, 0.1, 0.25, 0.5, 1.0])),
    }
    if shape & 4 != 0 {
        // Mostly a channel the workload uses; sometimes an idle one.
        t.channel = Some(if rng.chance(0.75) {
            rng.pick(&[0, 1, 2, 3][..usize::from(channels.clamp(1, 4))])
        } else {
            rng.pick(&[0, 1, 2, 3])
        });
    }
    if shape & 8 != 0 {
        let a = rng.range(0, WINDOW_SPAN);
        let b = rng.range(0, WINDOW_SPAN);
        t.window = Some(match rng.range(0, 2) {
            0 => CycleWindow {
                from: a,
                until: u64::MAX,
            },
            1 => CycleWindow {
                from: 0,
                until: a.max(1),
            },
            _ => CycleWindow {
                from: a.min(b),
                until: a.max(b) + 1,
            },
        });
    }
    if shape & 16 != 0 {
        t.max_times = Some(rng.range(1, 4));
    }
    t
}

/// The shape of random scenario `index`: what `fixed` leaves open is
/// drawn (its own stream, so fixing the workload leaves the timing draw
/// alone).
pub fn shape(seed: u64, index: u64, fixed: &Fixed) -> Shape {
    let mut rng = SplitMix64::for_scenario(seed ^ SHAPE_SALT, index);
    let total: u64 = WORKLOADS.iter().map(|w| w.weight).sum();
    let mut ticket = rng.range(0, total - 1);
    let drawn = *WORKLOADS
        .iter()
        .find(|w| {
            let hit = ticket < w.weight;
            ticket = ticket.saturating_sub(w.weight);
            hit
        })
        .expect("the ticket is below the total weight");
    let cancel = rng.chance(CANCEL_SHARE).then(|| rng.range(2, 6));
    let realtime = rng.chance(REALTIME_SHARE);
    let (workload, cmdline, channels) = match &fixed.workload {
        Some(name) => {
            let known = WORKLOADS.iter().find(|w| w.name == name);
            (
                name.clone(),
                fixed.cmdline.clone().unwrap_or_else(|| {
                    with_timeout(known.map_or("irps=8", |w| w.cmdline).to_string())
                }),
                known.map_or(4, |w| w.channels),
            )
        }
        None => {
            let cmdline = fixed.cmdline.clone().unwrap_or_else(|| {
                with_timeout(match cancel {
                    Some(n) => format!("{} cancel_every={n}", drawn.cmdline),
                    None => drawn.cmdline.to_string(),
                })
            });
            (drawn.name.to_string(), cmdline, drawn.channels)
        }
    };
    let timing = fixed.timing.unwrap_or(if realtime {
        Timing::Realtime
    } else {
        Timing::Instant
    });
    // Drawn last, so the draws above stay what they were for every plan.
    let dpc_delay_ms = rng.range(1, 3);
    let cmdline =
        if timing == Timing::Realtime && fixed.cmdline.is_none() && rng.chance(DPC_DELAY_SHARE) {
            format!(
                "{cmdline} verifier.timer_dpc_delay_us={}",
                dpc_delay_ms * 1000
            )
        } else {
            cmdline
        };
    Shape {
        workload,
        cmdline,
        timing,
        channels,
    }
}

/// A drawn command line with the random plans' `dmadrv.timeout_ms`.
fn with_timeout(cmdline: String) -> String {
    format!("{cmdline} dmadrv.timeout_ms={PLAN_TIMEOUT_MS}")
}

const SHAPE_SALT: u64 = 0x5348_4150_4521_0001;

/// Rules that favour races, added to some plans after the drawn ones:
/// an interrupt delayed around the watchdog period (realtime: the
/// watchdog and the late DpcForIsr race for one record), duplicates and
/// stale records on the same descriptors, errors on several channels at
/// once (a workload on several channels), a lost interrupt beside an
/// error, or 4–9 descriptors in a row that move 0 bytes (reposts that
/// must count against the retry bound).
fn race_rules(shape: &Shape, rng: &mut SplitMix64) -> Vec<FaultRule> {
    let every = rng.range(2, 6);
    let on = |t: Trigger| Trigger {
        every: Some(every),
        ..t
    };
    let mut pick = rng.range(0, 4);
    if pick == 2 && shape.channels < 2 {
        pick = 3;
    }
    match pick {
        4 => vec![FaultRule {
            // Transfers that move nothing, several in a row on one
            // channel: each repost counts against the retry bound.
            name: Some("race-zero-bytes".into()),
            trigger: Trigger {
                nth: Some(rng.range(1, 8)),
                every: Some(1),
                channel: (shape.channels > 1)
                    .then(|| rng.pick(&[0, 1, 2, 3][..usize::from(shape.channels.min(4))])),
                max_times: Some(rng.range(4, 9)),
                ..Trigger::default()
            },
            effect: FaultEffect::ShortTransfer { bytes: 0 },
        }],
        0 => {
            let cycles = if shape.timing == Timing::Realtime {
                rng.range(WATCHDOG_CYCLES / 2, 3 * WATCHDOG_CYCLES)
            } else {
                rng.range(1_000, 5_000_000)
            };
            vec![FaultRule {
                name: Some("race-late-interrupt".into()),
                trigger: on(Trigger {
                    max_times: Some(rng.range(1, 3)),
                    ..Trigger::default()
                }),
                effect: FaultEffect::DelayInterrupt { cycles },
            }]
        }
        1 => vec![
            FaultRule {
                name: Some("race-duplicate".into()),
                trigger: on(Trigger::default()),
                effect: FaultEffect::DuplicateInterrupt,
            },
            FaultRule {
                name: Some("race-stale".into()),
                trigger: on(Trigger {
                    max_times: Some(rng.range(1, 2)),
                    ..Trigger::default()
                }),
                effect: FaultEffect::StaleCompletion,
            },
        ],
        2 => {
            let mut rules = Vec::new();
            for channel in 0..shape.channels {
                rules.push(FaultRule {
                    name: Some(format!("race-error-ch{channel}")),
                    trigger: Trigger {
                        channel: Some(channel),
                        probability: Some(rng.pick(&[0.1, 0.25])),
                        max_times: Some(rng.range(1, 3)),
                        ..Trigger::default()
                    },
                    effect: FaultEffect::DmaError {
                        fatal: rng.chance(0.3),
                    },
                });
            }
            rules
        }
        _ => vec![
            FaultRule {
                name: Some("race-lost".into()),
                trigger: on(Trigger::default()),
                effect: FaultEffect::DropInterrupt,
            },
            FaultRule {
                name: Some("race-error".into()),
                trigger: on(Trigger {
                    max_times: Some(1),
                    ..Trigger::default()
                }),
                effect: effect(rng.pick(&["dma-error", "fetch-error", "halt"]), rng),
            },
        ],
    }
}

/// The rules as drawn, before [`bound_work`].
fn drawn_plan(seed: u64, index: u64, shape: &Shape) -> (FaultPlan, u64) {
    let mut rng = SplitMix64::for_scenario(seed, index);
    let kinds = FaultEffect::KIND_NAMES;
    let extra = rng.pick(&[0, 0, 0, 1, 1, 2]);
    let mut rules = Vec::new();
    for r in 0..=extra {
        let (kind, shape_bits) = if r == 0 {
            (kinds[(index % 15) as usize], index % 32)
        } else {
            (rng.pick(&kinds), rng.range(0, 31))
        };
        rules.push(FaultRule {
            name: Some(format!("r{r}-{kind}")),
            trigger: trigger(shape_bits, shape.channels, &mut rng),
            effect: effect(kind, &mut rng),
        });
    }
    let plan_seed = rng.next_u64() >> 1;
    if rng.chance(RACE_SHARE) {
        rules.extend(race_rules(shape, &mut rng));
    }
    if shape.cmdline.contains("verifier.timer_dpc_delay_us=") {
        rules.push(queued_dpc_race(&mut rng));
    }
    (FaultPlan { rules }, plan_seed)
}

/// With the guest's DPC delay on (`shape`): interrupts a period and a
/// half late, on many descriptors in a row, so that some arrive while the
/// watchdog's DPC waits behind the delay, with a record the watchdog saw
/// a period before (what `delay-interrupt-past-period` does by name).
fn queued_dpc_race(rng: &mut SplitMix64) -> FaultRule {
    FaultRule {
        name: Some("race-queued-dpc".into()),
        trigger: Trigger {
            every: Some(1),
            max_times: Some(rng.range(3, 5)),
            ..Trigger::default()
        },
        effect: FaultEffect::DelayInterrupt {
            cycles: rng.range(WATCHDOG_CYCLES * 6 / 5, WATCHDOG_CYCLES * 8 / 5),
        },
    }
}

/// The fault plan of random scenario `index` for a run of `shape`, and
/// the run's `--seed`: drawn, then bounded to [`WORK_BUDGET`].
pub fn plan_for(seed: u64, index: u64, shape: &Shape) -> (FaultPlan, u64) {
    let (mut plan, plan_seed) = drawn_plan(seed, index, shape);
    bound_work(&mut plan.rules, shape);
    (plan, plan_seed)
}

/// Seconds of one core a random scenario is expected to take at most
/// (`cost::estimate`). Far inside its timeout (a host 50 times slower
/// than the reference machine still finishes), and three times the mean
/// plan (0.18 s; a plain `copy irps=8` is 0.09 s), so that shards dealt
/// by name balance time (docs/ci-sharding.md): the few heavy plans were
/// the spread. It still holds the heaviest thing a plan must reach:
/// [`MIN_CAP`] watchdog timeouts on `stress` in realtime (0.37 s).
pub const WORK_BUDGET: f64 = 0.6;

/// The fewest firings [`bound_work`] leaves a rule it caps: every attempt
/// of one request (dmadrv.retries = 3, plus the first) and one more, so a
/// capped `hang`, `missing-completion` or `dma-error` still fails a
/// request after the retry bound, and a driver that tries once too often
/// meets a fault on its fifth attempt too. Rules drawn with a smaller
/// `max_times` are left as drawn.
pub const MIN_CAP: u64 = 5;

/// Caps the rules of a plan whose expected work (descriptors, including
/// those short transfers add, times what each costs, plus the retries,
/// watchdog timeouts and realtime delays its rules cause) is over
/// [`WORK_BUDGET`]: the rule that adds most gets `max_times` (halved each
/// round, not below [`MIN_CAP`]) until the plan fits. An 8-byte short
/// transfer on every descriptor of `stress irps=32` (200,000
/// descriptors) becomes one on at most a few hundred; `hang` on every
/// descriptor becomes 5 hangs.
fn bound_work(rules: &mut [FaultRule], shape: &Shape) {
    let work = crate::cost::Work::of(&shape.workload, &shape.cmdline, shape.timing);
    loop {
        let (total, parts) = crate::cost::estimate_rules(rules, &work);
        if total <= WORK_BUDGET {
            return;
        }
        let Some(worst) = (0..rules.len())
            .filter(|&i| rules[i].trigger.max_times.is_none_or(|m| m > MIN_CAP))
            .max_by(|&a, &b| parts[a].total_cmp(&parts[b]))
        else {
            return;
        };
        let t = &mut rules[worst].trigger;
        t.max_times = Some(t.max_times.map_or(256, |m| (m / 2).max(MIN_CAP)));
    }
}

/// The fault plan of random scenario `index` with every draw open.
pub fn plan(seed: u64, index: u64) -> (FaultPlan, u64) {
    plan_for(seed, index, &shape(seed, index, &Fixed::default()))
}

/// Random scenario `index` of campaign seed `seed`; `fixed` holds what
/// the campaign's options fix.
pub fn scenario(seed: u64, index: u64, fixed: &Fixed) -> Scenario {
    let shape = shape(seed, index, fixed);
    let (plan, plan_seed) = plan_for(seed, index, &shape);
    let plan_toml = plan
        .to_toml()
        .expect("random plans hold TOML-sized integers");
    Scenario {
        name: name(seed, index),
        origin: Origin::Random { seed, index },
        guest: crate::scenario::Guest::Dmalab,
        description: format!("random plan {index} of seed {seed}"),
        workload: shape.workload,
        cmdline: shape.cmdline,
        seed: plan_seed,
        timing: shape.timing,
        doorbell: "exit".into(),
        timeout: TIMEOUT,
        plan,
        kernel: None,
        plan_toml,
        expect: Expect {
            status: "pass".into(),
            ..Expect::default()
        },
    }
}

#[cfg(test)]
#[path = "random_tests.rs"]
mod tests;
