//! Tests across the module: the user guide's examples parse, and no plan,
//! text or descriptor stream panics the parser or the engine.

use proptest::prelude::*;

use super::*;

/// The user guide, whose ```toml blocks must all be valid plans.
const GUIDE: &str = include_str!("../../../docs/fault-plans.md");

/// The fenced blocks of `markdown`, as (info string, body).
fn fenced_blocks(markdown: &str) -> Vec<(String, String)> {
    let mut blocks = Vec::new();
    let mut current: Option<(String, String)> = None;
    for line in markdown.lines() {
        let fence = line.trim_end().strip_prefix("```");
        match (&mut current, fence) {
            (None, Some(info)) => current = Some((info.to_owned(), String::new())),
            (Some(_), Some("")) => blocks.extend(current.take()),
            (Some((_, body)), _) => {
                body.push_str(line);
                body.push('\n');
            }
            (None, None) => {}
        }
    }
    assert!(current.is_none(), "unclosed block in the guide");
    blocks
}

/// The ```toml blocks of `markdown`.
fn toml_blocks(markdown: &str) -> Vec<String> {
    fenced_blocks(markdown)
        .into_iter()
        .filter(|(info, _)| info == "toml")
        .map(|(_, body)| body)
        .collect()
}

#[test]
fn every_bad_plan_of_the_guide_fails_with_the_message_shown() {
    let blocks = fenced_blocks(GUIDE);
    let mut checked = 0;
    for (i, (info, plan)) in blocks.iter().enumerate() {
        if info != "toml,bad" {
            continue;
        }
        let (next_info, message) = blocks.get(i + 1).expect("a text block after toml,bad");
        assert_eq!(next_info, "text", "after:\n{plan}");
        let err = FaultPlan::from_toml(plan).expect_err(plan).to_string();
        assert_eq!(err.trim_end(), message.trim_end());
        checked += 1;
    }
    assert_eq!(checked, 4);
}

#[test]
fn every_toml_block_of_the_guide_is_a_valid_plan() {
    let blocks = toml_blocks(GUIDE);
    assert!(blocks.len() >= 3, "found {} blocks", blocks.len());
    let mut kinds = std::collections::BTreeSet::new();
    for block in &blocks {
        let plan = FaultPlan::from_toml(block).unwrap_or_else(|e| panic!("{e}\n{block}"));
        assert!(!plan.rules.is_empty(), "{block}");
        // The guide's examples use at most 4 channels, the device default.
        plan.validate_for(4).unwrap();
        // And survive the trip through to_toml.
        assert_eq!(
            FaultPlan::from_toml(&plan.to_toml().unwrap()).unwrap(),
            plan
        );
        kinds.extend(plan.rules.iter().map(|r| r.effect.kind_name()));
    }
    let all: std::collections::BTreeSet<_> = FaultEffect::KIND_NAMES.into_iter().collect();
    assert_eq!(kinds, all, "the guide must show every effect kind");
}

#[test]
fn the_guide_documents_every_kind_and_its_defaults() {
    for name in FaultEffect::KIND_NAMES {
        assert!(
            GUIDE.contains(&format!("| `{name}` |")),
            "{name} missing from the table"
        );
    }
    for default in [
        "`cycles` (100,000;",
        "`count` (100;",
        "`bytes` (64;",
        "`flips` (1;",
        "`cycles` (1,000,000;",
    ] {
        assert!(GUIDE.contains(default), "{default}");
    }
    assert_eq!(DEFAULT_DELAY_CYCLES, 100_000);
    assert_eq!(DEFAULT_STORM_COUNT, 100);
    assert_eq!(DEFAULT_SHORT_BYTES, 64);
    assert_eq!(DEFAULT_FLIPS, 1);
    assert_eq!(DEFAULT_SPIKE_CYCLES, 1_000_000);
}

fn any_effect() -> impl Strategy<Value = FaultEffect> {
    prop_oneof![
        Just(FaultEffect::DropInterrupt),
        any::<u64>().prop_map(|cycles| FaultEffect::DelayInterrupt { cycles }),
        Just(FaultEffect::DuplicateInterrupt),
        Just(FaultEffect::SpuriousInterrupt),
        any::<u32>().prop_map(|count| FaultEffect::InterruptStorm { count }),
        any::<bool>().prop_map(|fatal| FaultEffect::DmaError { fatal }),
        any::<u32>().prop_map(|bytes| FaultEffect::ShortTransfer { bytes }),
        any::<u32>().prop_map(|flips| FaultEffect::CorruptData { flips }),
        Just(FaultEffect::Hang),
        Just(FaultEffect::Halt),
        Just(FaultEffect::FetchError),
        Just(FaultEffect::MissingCompletion),
        Just(FaultEffect::StaleCompletion),
        any::<u64>().prop_map(|cycles| FaultEffect::LatencySpike { cycles }),
        Just(FaultEffect::SurpriseRemoval),
    ]
}

/// Small values most of the time, so rules actually fire; extremes too.
fn count() -> impl Strategy<Value = u64> {
    prop_oneof![4 => 0u64..20, 1 => any::<u64>()]
}

/// Any trigger, including ones validation would reject.
fn any_trigger() -> impl Strategy<Value = Trigger> {
    (
        proptest::option::of(count()),
        proptest::option::of(count()),
        proptest::option::of(prop_oneof![
            4 => 0.0..=1.0f64,
            1 => any::<f64>(),
        ]),
        proptest::option::of(0u8..8),
        proptest::option::of((count(), count()).prop_map(|(from, until)| CycleWindow {
            from: from.saturating_mul(10),
            until: until.saturating_mul(10),
        })),
        proptest::option::of(count()),
    )
        .prop_map(
            |(nth, every, probability, channel, window, max_times)| Trigger {
                nth,
                every,
                probability,
                channel,
                window,
                max_times,
            },
        )
}

fn any_rule() -> impl Strategy<Value = FaultRule> {
    (
        proptest::option::of("[a-z\"\\\\ é-]{0,8}"),
        any_trigger(),
        any_effect(),
    )
        .prop_map(|(name, trigger, effect)| FaultRule {
            name,
            trigger,
            effect,
        })
}

fn any_context() -> impl Strategy<Value = (u8, u64)> {
    (any::<u8>(), prop_oneof![3 => 0u64..300, 1 => any::<u64>()])
}

proptest! {
    #[test]
    fn the_engine_never_panics(
        rules in proptest::collection::vec(any_rule(), 0..6),
        seed in any::<u64>(),
        contexts in proptest::collection::vec(any_context(), 0..200),
        late in proptest::option::of(any_rule()),
    ) {
        let mut engine = FaultEngine::new(FaultPlan { rules: rules.clone() }, seed);
        let mut again = FaultEngine::new(FaultPlan { rules }, seed);
        let (mut out, mut out_again) = (Vec::new(), Vec::new());
        for (i, (channel, cycle)) in contexts.into_iter().enumerate() {
            if i == 50 {
                if let Some(rule) = late.clone() {
                    let added = engine.add_rule(rule.clone()).ok();
                    prop_assert_eq!(added, again.add_rule(rule).ok());
                }
            }
            let ctx = DescriptorContext { seq: i as u64 + 1, channel, cycle };
            engine.on_descriptor(&ctx, &mut out);
            again.on_descriptor(&ctx, &mut out_again);
            prop_assert_eq!(&out, &out_again);
            for applied in &out {
                let rule = &engine.rules()[applied.rule];
                prop_assert_eq!(applied.effect, rule.effect);
                prop_assert!(rule.trigger.passes_filters(channel, cycle));
                let fired = engine.fired(applied.rule).unwrap();
                prop_assert!(rule.trigger.max_times.is_none_or(|m| fired <= m));
            }
            let _ = engine.effect_random(ctx.seq, i as u64);
        }
    }

    #[test]
    fn valid_plans_round_trip_and_invalid_ones_are_refused(
        rules in proptest::collection::vec(any_rule(), 0..6),
        channels in any::<u8>(),
    ) {
        let plan = FaultPlan { rules };
        let _ = plan.validate_for(channels);
        match plan.validate() {
            Ok(()) => match plan.to_toml() {
                Ok(text) => {
                    let back = FaultPlan::from_toml(&text);
                    prop_assert!(back.is_ok(), "{:?}\n{}", back, text);
                    prop_assert_eq!(back.unwrap(), plan);
                }
                // Only integers above i64::MAX cannot be written.
                Err(e) => prop_assert!(matches!(e, FaultPlanError::Write(_)), "{}", e),
            },
            Err(e) => {
                let message = e.to_string();
                prop_assert!(message.starts_with("rule "), "{}", message);
                prop_assert!(message.contains(": field \""), "{}", message);
            }
        }
    }

    #[test]
    fn from_toml_never_panics_on_any_text(text in "\\PC{0,200}") {
        let _ = FaultPlan::from_toml(&text);
    }

    #[test]
    fn from_toml_never_panics_on_plan_shaped_text(
        lines in proptest::collection::vec(
            prop_oneof![
                Just("[[rule]]".to_owned()),
                Just("[rule]".to_owned()),
                (
                    prop_oneof![
                        Just("name"), Just("effect"), Just("nth"), Just("every"),
                        Just("probability"), Just("channel"), Just("window"),
                        Just("max_times"), Just("kind"), Just("evry"),
                    ],
                    prop_oneof![
                        Just("\"hang\"".to_owned()),
                        Just("{ kind = \"dma-error\", fatal = true }".to_owned()),
                        Just("{ kind = \"delay-interrupt\", cycles = -1 }".to_owned()),
                        Just("{ from = 5, until = 3 }".to_owned()),
                        Just("{ kind = 3 }".to_owned()),
                        Just("[1, 2]".to_owned()),
                        Just("nan".to_owned()),
                        Just("-inf".to_owned()),
                        any::<i64>().prop_map(|n| n.to_string()),
                        any::<f64>().prop_map(|x| format!("{x:?}")),
                    ],
                )
                    .prop_map(|(key, value)| format!("{key} = {value}")),
            ],
            0..16,
        ),
    ) {
        let text = lines.join("\n");
        if let Ok(plan) = FaultPlan::from_toml(&text) {
            prop_assert!(plan.validate().is_ok());
        }
    }
}
