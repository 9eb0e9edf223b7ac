//! What a fault does once its rule fires.
//!
//! In a plan an effect is written either as its kebab-case kind name,
//! `effect = "drop-interrupt"`, which takes the default of every parameter,
//! or as an inline table with `kind` and the parameters to set,
//! `effect = { kind = "delay-interrupt", cycles = 5000 }`. Unknown kinds and
//! unknown parameters are errors that name the offending key.
//!
//! Parsing reads a `toml::Value` (every format goes through one, see
//! `serde_form.rs`), so there is one parser and one set of messages.

use super::parse::{expect_integer, suggest, FieldError};

/// Default `cycles` of `delay-interrupt`: 100 µs at the 1 GHz device clock.
pub const DEFAULT_DELAY_CYCLES: u64 = 100_000;
/// Default `count` of `interrupt-storm`.
pub const DEFAULT_STORM_COUNT: u32 = 100;
/// Default `bytes` of `short-transfer`.
pub const DEFAULT_SHORT_BYTES: u32 = 64;
/// Default `flips` of `corrupt-data`.
pub const DEFAULT_FLIPS: u32 = 1;
/// Default `cycles` of `latency-spike`: 1 ms at the 1 GHz device clock.
pub const DEFAULT_SPIKE_CYCLES: u64 = 1_000_000;

/// Largest `cycles` of a delay or a latency spike: 1,000 s at 1 GHz. Longer
/// is a typo, and the bound keeps cycle arithmetic far from overflow.
pub const MAX_CYCLES: u64 = 1_000_000_000_000;
/// Largest `count` of an interrupt storm.
pub const MAX_STORM_COUNT: u32 = 100_000;
/// Largest `flips` of a data corruption.
pub const MAX_FLIPS: u32 = 4096;

/// One fault, as the device applies it to one descriptor.
///
/// The comment on each variant is the contract with the device core: where
/// in its pipeline the effect acts.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FaultEffect {
    /// The completion is done, its MSI is not sent.
    DropInterrupt,
    /// The MSI is sent `cycles` device cycles later than it would be.
    DelayInterrupt {
        /// Extra delay, in device cycles (1 ..= [`MAX_CYCLES`]).
        cycles: u64,
    },
    /// The MSI is sent twice.
    DuplicateInterrupt,
    /// An MSI on the channel's vector with nothing completed.
    SpuriousInterrupt,
    /// `count` extra MSIs back to back on the channel's vector.
    InterruptStorm {
        /// Number of extra MSIs (1 ..= [`MAX_STORM_COUNT`]).
        count: u32,
    },
    /// The descriptor completes with an error status; a fatal one also halts
    /// the channel.
    DmaError {
        /// Whether the channel halts (needs a channel reset) after the error.
        fatal: bool,
    },
    /// Only `min(bytes, len)` bytes are moved; the completion record says so.
    ShortTransfer {
        /// Bytes actually moved (any value; 0 moves nothing).
        bytes: u32,
    },
    /// `flips` bit flips in the destination, with a success status.
    CorruptData {
        /// Number of bit flips (1 ..= [`MAX_FLIPS`]), positions from
        /// [`FaultEngine::effect_random`](super::FaultEngine::effect_random).
        flips: u32,
    },
    /// The channel stops making progress until it is aborted or reset.
    Hang,
    /// The channel halts in error and needs a channel reset.
    Halt,
    /// The descriptor fetch fails: error status and the error vector.
    FetchError,
    /// No completion record is written; the MSI is still sent.
    MissingCompletion,
    /// The completion record written carries the previous cookie and status.
    StaleCompletion,
    /// The descriptor takes `cycles` device cycles longer.
    LatencySpike {
        /// Extra time, in device cycles (1 ..= [`MAX_CYCLES`]).
        cycles: u64,
    },
    /// The device is gone: all-ones reads (config space too), no more MSIs,
    /// no more DMA.
    SurpriseRemoval,
}

/// One parameter of an effect kind: its key and the range it accepts.
#[derive(Clone, Copy)]
enum Param {
    Cycles,
    Count,
    Fatal,
    Bytes,
    Flips,
}

impl Param {
    fn key(self) -> &'static str {
        match self {
            Param::Cycles => "cycles",
            Param::Count => "count",
            Param::Fatal => "fatal",
            Param::Bytes => "bytes",
            Param::Flips => "flips",
        }
    }
}

impl FaultEffect {
    /// Every effect kind, by its kebab-case name, in declaration order.
    pub const KIND_NAMES: [&'static str; 15] = [
        "drop-interrupt",
        "delay-interrupt",
        "duplicate-interrupt",
        "spurious-interrupt",
        "interrupt-storm",
        "dma-error",
        "short-transfer",
        "corrupt-data",
        "hang",
        "halt",
        "fetch-error",
        "missing-completion",
        "stale-completion",
        "latency-spike",
        "surprise-removal",
    ];

    /// The kebab-case name of this effect's kind, as written in plans and
    /// trace events.
    pub fn kind_name(&self) -> &'static str {
        match self {
            FaultEffect::DropInterrupt => "drop-interrupt",
            FaultEffect::DelayInterrupt { .. } => "delay-interrupt",
            FaultEffect::DuplicateInterrupt => "duplicate-interrupt",
            FaultEffect::SpuriousInterrupt => "spurious-interrupt",
            FaultEffect::InterruptStorm { .. } => "interrupt-storm",
            FaultEffect::DmaError { .. } => "dma-error",
            FaultEffect::ShortTransfer { .. } => "short-transfer",
            FaultEffect::CorruptData { .. } => "corrupt-data",
            FaultEffect::Hang => "hang",
            FaultEffect::Halt => "halt",
            FaultEffect::FetchError => "fetch-error",
            FaultEffect::MissingCompletion => "missing-completion",
            FaultEffect::StaleCompletion => "stale-completion",
            FaultEffect::LatencySpike { .. } => "latency-spike",
            FaultEffect::SurpriseRemoval => "surprise-removal",
        }
    }

    /// The position of this effect's kind in [`Self::KIND_NAMES`].
    pub fn kind_index(&self) -> usize {
        match self {
            FaultEffect::DropInterrupt => 0,
            FaultEffect::DelayInterrupt { .. } => 1,
            FaultEffect::DuplicateInterrupt => 2,
            FaultEffect::SpuriousInterrupt => 3,
            FaultEffect::InterruptStorm { .. } => 4,
            FaultEffect::DmaError { .. } => 5,
            FaultEffect::ShortTransfer { .. } => 6,
            FaultEffect::CorruptData { .. } => 7,
            FaultEffect::Hang => 8,
            FaultEffect::Halt => 9,
            FaultEffect::FetchError => 10,
            FaultEffect::MissingCompletion => 11,
            FaultEffect::StaleCompletion => 12,
            FaultEffect::LatencySpike { .. } => 13,
            FaultEffect::SurpriseRemoval => 14,
        }
    }

    /// The effect of kind `name` with every parameter at its default, or
    /// `None` if no kind has that name.
    pub fn from_kind_name(name: &str) -> Option<FaultEffect> {
        Some(match name {
            "drop-interrupt" => FaultEffect::DropInterrupt,
            "delay-interrupt" => FaultEffect::DelayInterrupt {
                cycles: DEFAULT_DELAY_CYCLES,
            },
            "duplicate-interrupt" => FaultEffect::DuplicateInterrupt,
            "spurious-interrupt" => FaultEffect::SpuriousInterrupt,
            "interrupt-storm" => FaultEffect::InterruptStorm {
                count: DEFAULT_STORM_COUNT,
            },
            "dma-error" => FaultEffect::DmaError { fatal: false },
            "short-transfer" => FaultEffect::ShortTransfer {
                bytes: DEFAULT_SHORT_BYTES,
            },
            "corrupt-data" => FaultEffect::CorruptData {
                flips: DEFAULT_FLIPS,
            },
            "hang" => FaultEffect::Hang,
            "halt" => FaultEffect::Halt,
            "fetch-error" => FaultEffect::FetchError,
            "missing-completion" => FaultEffect::MissingCompletion,
            "stale-completion" => FaultEffect::StaleCompletion,
            "latency-spike" => FaultEffect::LatencySpike {
                cycles: DEFAULT_SPIKE_CYCLES,
            },
            "surprise-removal" => FaultEffect::SurpriseRemoval,
            _ => return None,
        })
    }

    /// The parameters of this effect's kind.
    fn params(&self) -> &'static [Param] {
        match self {
            FaultEffect::DelayInterrupt { .. } | FaultEffect::LatencySpike { .. } => {
                &[Param::Cycles]
            }
            FaultEffect::InterruptStorm { .. } => &[Param::Count],
            FaultEffect::DmaError { .. } => &[Param::Fatal],
            FaultEffect::ShortTransfer { .. } => &[Param::Bytes],
            FaultEffect::CorruptData { .. } => &[Param::Flips],
            _ => &[],
        }
    }

    /// How many parameters this effect's kind takes.
    pub(super) fn param_count(&self) -> usize {
        self.params().len()
    }

    /// Checks the parameters' ranges; the error names `effect.<parameter>`.
    pub(super) fn validate(&self) -> Result<(), FieldError> {
        match *self {
            FaultEffect::DelayInterrupt { cycles } | FaultEffect::LatencySpike { cycles } => {
                in_range(
                    "effect.cycles",
                    u128::from(cycles),
                    1,
                    u128::from(MAX_CYCLES),
                )
            }
            FaultEffect::InterruptStorm { count } => in_range(
                "effect.count",
                u128::from(count),
                1,
                u128::from(MAX_STORM_COUNT),
            ),
            FaultEffect::CorruptData { flips } => {
                in_range("effect.flips", u128::from(flips), 1, u128::from(MAX_FLIPS))
            }
            _ => Ok(()),
        }
    }

    /// Parses the string or inline-table form. Ranges are checked by
    /// [`FaultEffect::validate`], so that plans built in code get the same
    /// checks.
    pub(super) fn from_value(value: &toml::Value) -> Result<FaultEffect, FieldError> {
        match value {
            toml::Value::String(name) => kind_from_name("effect", name),
            toml::Value::Table(table) => {
                let kind = match table.get("kind") {
                    Some(toml::Value::String(name)) => kind_from_name("effect.kind", name)?,
                    Some(other) => {
                        return Err(FieldError::new(
                            "effect.kind",
                            format!("expected a kind name string, got {}", other.type_str()),
                        ))
                    }
                    None => {
                        return Err(FieldError::new(
                            "effect.kind",
                            "missing: an effect table needs `kind`, e.g. \
                             { kind = \"dma-error\", fatal = true }",
                        ))
                    }
                };
                let mut effect = kind;
                for (key, value) in table.iter().filter(|(key, _)| *key != "kind") {
                    let Some(param) = kind.params().iter().find(|p| p.key() == key) else {
                        return Err(unknown_param(kind, key));
                    };
                    effect.set(*param, value)?;
                }
                Ok(effect)
            }
            other => Err(FieldError::new(
                "effect",
                format!(
                    "expected a kind name string or an inline table with `kind`, got {}",
                    other.type_str()
                ),
            )),
        }
    }

    /// Sets one parameter from a TOML value (type and integer width only).
    fn set(&mut self, param: Param, value: &toml::Value) -> Result<(), FieldError> {
        let field = format!("effect.{}", param.key());
        match (self, param) {
            (
                FaultEffect::DelayInterrupt { cycles } | FaultEffect::LatencySpike { cycles },
                Param::Cycles,
            ) => *cycles = integer_as(&field, value)?,
            (FaultEffect::InterruptStorm { count }, Param::Count) => {
                *count = integer_as(&field, value)?;
            }
            (FaultEffect::ShortTransfer { bytes }, Param::Bytes) => {
                *bytes = integer_as(&field, value)?;
            }
            (FaultEffect::CorruptData { flips }, Param::Flips) => {
                *flips = integer_as(&field, value)?;
            }
            (FaultEffect::DmaError { fatal }, Param::Fatal) => match value {
                toml::Value::Boolean(b) => *fatal = *b,
                other => {
                    return Err(FieldError::new(
                        field,
                        format!("expected true or false, got {}", other.type_str()),
                    ))
                }
            },
            // `from_value` only passes parameters of the effect's own kind.
            _ => return Err(FieldError::new(field, "not a parameter of this effect")),
        }
        Ok(())
    }
}

fn kind_from_name(field: &str, name: &str) -> Result<FaultEffect, FieldError> {
    FaultEffect::from_kind_name(name).ok_or_else(|| {
        let hint = suggest(name, &FaultEffect::KIND_NAMES)
            .map(|near| format!(" (did you mean \"{near}\"?)"))
            .unwrap_or_default();
        FieldError::new(
            field,
            format!(
                "unknown effect kind \"{name}\"{hint}; the kinds are {}",
                FaultEffect::KIND_NAMES.join(", ")
            ),
        )
    })
}

fn unknown_param(kind: FaultEffect, key: &str) -> FieldError {
    let keys: Vec<&str> = kind.params().iter().map(|p| p.key()).collect();
    let accepted = if keys.is_empty() {
        format!("\"{}\" takes no parameters", kind.kind_name())
    } else {
        let hint = suggest(key, &keys)
            .map(|near| format!("did you mean \"{near}\"? "))
            .unwrap_or_default();
        format!("{hint}\"{}\" takes {}", kind.kind_name(), keys.join(", "))
    };
    FieldError::new(
        format!("effect.{key}"),
        format!("unknown parameter; {accepted}"),
    )
}

fn integer_as<T: TryFrom<i64>>(field: &str, value: &toml::Value) -> Result<T, FieldError> {
    let n = expect_integer(field, value)?;
    T::try_from(n).map_err(|_| FieldError::new(field, format!("out of range, got {n}")))
}

fn in_range(field: &str, value: u128, min: u128, max: u128) -> Result<(), FieldError> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(FieldError::new(
            field,
            format!("must be between {min} and {max}, got {value}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<FaultEffect, String> {
        let value: toml::Table = toml::from_str(&format!("effect = {text}")).unwrap();
        let effect = FaultEffect::from_value(&value["effect"]).map_err(|e| e.to_string())?;
        effect.validate().map_err(|e| e.to_string())?;
        Ok(effect)
    }

    #[test]
    fn kind_names_and_from_kind_name_agree_for_all_fifteen_kinds() {
        for name in FaultEffect::KIND_NAMES {
            let effect = FaultEffect::from_kind_name(name).unwrap();
            assert_eq!(FaultEffect::KIND_NAMES[effect.kind_index()], name);
            assert_eq!(effect.kind_name(), name);
            assert_eq!(parse(&format!("\"{name}\"")), Ok(effect));
            assert_eq!(parse(&format!("{{ kind = \"{name}\" }}")), Ok(effect));
        }
        assert_eq!(FaultEffect::from_kind_name("drop-irq"), None);
    }

    #[test]
    fn every_parameter_parses() {
        assert_eq!(
            parse(r#"{ kind = "delay-interrupt", cycles = 5000 }"#),
            Ok(FaultEffect::DelayInterrupt { cycles: 5000 })
        );
        assert_eq!(
            parse(r#"{ kind = "interrupt-storm", count = 7 }"#),
            Ok(FaultEffect::InterruptStorm { count: 7 })
        );
        assert_eq!(
            parse(r#"{ kind = "dma-error", fatal = true }"#),
            Ok(FaultEffect::DmaError { fatal: true })
        );
        assert_eq!(
            parse(r#"{ kind = "short-transfer", bytes = 0 }"#),
            Ok(FaultEffect::ShortTransfer { bytes: 0 })
        );
        assert_eq!(
            parse(r#"{ kind = "corrupt-data", flips = 3 }"#),
            Ok(FaultEffect::CorruptData { flips: 3 })
        );
        assert_eq!(
            parse(r#"{ kind = "latency-spike", cycles = 1 }"#),
            Ok(FaultEffect::LatencySpike { cycles: 1 })
        );
    }

    #[test]
    fn bad_effects_name_the_field_and_the_problem() {
        assert_eq!(
            parse(r#""drop-interupt""#).unwrap_err(),
            "field \"effect\": unknown effect kind \"drop-interupt\" (did you mean \
             \"drop-interrupt\"?); the kinds are drop-interrupt, delay-interrupt, \
             duplicate-interrupt, spurious-interrupt, interrupt-storm, dma-error, \
             short-transfer, corrupt-data, hang, halt, fetch-error, missing-completion, \
             stale-completion, latency-spike, surprise-removal"
        );
        assert_eq!(
            parse(r#"{ kind = "delay-interrupt", cycle = 5 }"#).unwrap_err(),
            "field \"effect.cycle\": unknown parameter; did you mean \"cycles\"? \
             \"delay-interrupt\" takes cycles"
        );
        assert_eq!(
            parse(r#"{ kind = "hang", cycles = 5 }"#).unwrap_err(),
            "field \"effect.cycles\": unknown parameter; \"hang\" takes no parameters"
        );
        assert_eq!(
            parse(r#"{ fatal = true }"#).unwrap_err(),
            "field \"effect.kind\": missing: an effect table needs `kind`, e.g. \
             { kind = \"dma-error\", fatal = true }"
        );
        assert_eq!(
            parse(r#"{ kind = "dma-error", fatal = 1 }"#).unwrap_err(),
            "field \"effect.fatal\": expected true or false, got integer"
        );
        assert_eq!(
            parse(r#"{ kind = "interrupt-storm", count = 0 }"#).unwrap_err(),
            "field \"effect.count\": must be between 1 and 100000, got 0"
        );
        assert_eq!(
            parse(r#"{ kind = "short-transfer", bytes = -1 }"#).unwrap_err(),
            "field \"effect.bytes\": out of range, got -1"
        );
        assert_eq!(
            parse(r#"{ kind = "latency-spike", cycles = 1_000_000_000_001 }"#).unwrap_err(),
            "field \"effect.cycles\": must be between 1 and 1000000000000, got 1000000000001"
        );
        assert_eq!(
            parse("3").unwrap_err(),
            "field \"effect\": expected a kind name string or an inline table with `kind`, \
             got integer"
        );
    }
}
