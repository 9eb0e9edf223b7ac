//! Fault plans: the TOML format, its parser, its validation and its errors.
//!
//! A plan is a list of `[[rule]]` tables (see `docs/fault-plans.md`). Each
//! rule has an optional `name`, the trigger keys of [`Trigger`] written flat
//! in the rule (`nth`, `every`, `probability`, `channel`, `window`,
//! `max_times`) and an `effect` (see [`FaultEffect`]).
//!
//! Parsing is two steps. The document goes through `toml::from_str` into a
//! list of spanned tables, so that syntax errors and unknown top-level keys
//! keep toml's line and column. Each rule table is then read key by key
//! (`parse.rs`), so that every error names the rule (its number from 1 in
//! file order, its name, the line of its `[[rule]]` header) and the field.
//! Validation (ranges, a trigger present) is separate from parsing so that
//! plans built in code, or rules injected at run time, get the same checks.
//!
//! [`FaultPlan`] and [`FaultRule`] also implement serde's traits in the same
//! shape as the TOML (`serde_form.rs`), so a run report can embed the plan
//! as TOML or JSON.

use serde::{Deserialize, Serialize};
use std::fmt;

use super::effect::FaultEffect;
use super::parse::{line_of, rule_from_table, table_name, FieldError};
use super::trigger::Trigger;

/// Why a fault plan was rejected.
#[derive(Debug, thiserror::Error)]
pub enum FaultPlanError {
    /// The text is not TOML, or not a list of `[[rule]]` tables.
    #[error("cannot read the fault plan: {0}")]
    Toml(toml::de::Error),
    /// One field of one rule is wrong.
    #[error("{}: field \"{field}\": {problem}", RuleLabel { number: *number, name: name.as_deref(), line: *line })]
    Rule {
        /// The rule's number, from 1, in file (or plan) order.
        number: usize,
        /// The rule's `name`, if it has one.
        name: Option<String>,
        /// The line of the rule's `[[rule]]` header, when read from text.
        line: Option<usize>,
        /// The field, as written in the plan (`probability`, `effect.cycles`).
        field: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The plan holds a value TOML cannot represent (an integer above
    /// `i64::MAX`).
    #[error("cannot write the fault plan as TOML: {0}")]
    Write(toml::ser::Error),
}

/// `rule 2 ("lost-irq") at line 7`, the prefix of rule errors.
struct RuleLabel<'a> {
    number: usize,
    name: Option<&'a str>,
    line: Option<usize>,
}

impl fmt::Display for RuleLabel<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rule {}", self.number)?;
        if let Some(name) = self.name {
            write!(f, " ({name:?})")?;
        }
        if let Some(line) = self.line {
            write!(f, " at line {line}")?;
        }
        Ok(())
    }
}

/// One rule: when it fires (trigger) and what it does (effect).
#[derive(Debug, Clone, PartialEq)]
pub struct FaultRule {
    /// A name for errors, traces and reports.
    pub name: Option<String>,
    /// When the rule fires.
    pub trigger: Trigger,
    /// What it does then.
    pub effect: FaultEffect,
}

impl FaultRule {
    /// Checks the trigger and the effect's parameters.
    pub(super) fn validate(&self) -> Result<(), FieldError> {
        self.trigger.validate()?;
        self.effect.validate()
    }
}

/// A list of fault rules, in the order they are evaluated and numbered.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FaultPlan {
    /// The rules; `AppliedFault::rule` is an index into this list.
    pub rules: Vec<FaultRule>,
}

/// The top level of a plan file: nothing but `[[rule]]` tables.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    #[serde(default)]
    rule: Vec<toml::Spanned<toml::Table>>,
}

impl FaultPlan {
    /// Parses and validates a plan written in TOML.
    ///
    /// ```
    /// use device_model::fault::{FaultEffect, FaultPlan};
    ///
    /// let plan = FaultPlan::from_toml(
    ///     r#"
    ///     [[rule]]
    ///     name = "lost-irq"
    ///     effect = "drop-interrupt"
    ///     nth = 3
    ///     channel = 1
    ///     "#,
    /// )?;
    /// assert_eq!(plan.rules[0].effect, FaultEffect::DropInterrupt);
    /// assert_eq!(plan.rules[0].trigger.nth, Some(3));
    ///
    /// let err = FaultPlan::from_toml("[[rule]]\neffect = \"hang\"\nprobability = 1.5\n")
    ///     .unwrap_err();
    /// assert_eq!(
    ///     err.to_string(),
    ///     "rule 1 at line 1: field \"probability\": must be between 0 and 1, got 1.5"
    /// );
    /// # Ok::<(), device_model::fault::FaultPlanError>(())
    /// ```
    pub fn from_toml(text: &str) -> Result<FaultPlan, FaultPlanError> {
        let document: Document = toml::from_str(text).map_err(FaultPlanError::Toml)?;
        let mut rules = Vec::with_capacity(document.rule.len());
        for (index, spanned) in document.rule.iter().enumerate() {
            let line = line_of(text, spanned.span().start);
            let table = spanned.get_ref();
            let rule = rule_from_table(table)
                .and_then(|rule| rule.validate().map(|()| rule))
                .map_err(|e| e.in_rule(index, table_name(table), Some(line)))?;
            rules.push(rule);
        }
        Ok(FaultPlan { rules })
    }

    /// Writes the plan as TOML that [`FaultPlan::from_toml`] reads back to
    /// an equal plan.
    ///
    /// Each rule is one `[[rule]]` table with its keys in a fixed order
    /// (name, trigger, effect) and the effect and window as inline tables,
    /// the way a person writes them.
    pub fn to_toml(&self) -> Result<String, FaultPlanError> {
        let mut out = String::new();
        for rule in &self.rules {
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str("[[rule]]\n");
            let t = &rule.trigger;
            write_key(&mut out, "name", &rule.name)?;
            write_key(&mut out, "nth", &t.nth)?;
            write_key(&mut out, "every", &t.every)?;
            write_key(&mut out, "probability", &t.probability)?;
            write_key(&mut out, "channel", &t.channel)?;
            write_key(&mut out, "window", &t.window)?;
            write_key(&mut out, "max_times", &t.max_times)?;
            write_key(&mut out, "effect", &Some(rule.effect))?;
        }
        Ok(out)
    }

    /// Checks every rule, as [`FaultPlan::from_toml`] does.
    pub fn validate(&self) -> Result<(), FaultPlanError> {
        for (index, rule) in self.rules.iter().enumerate() {
            rule.validate()
                .map_err(|e| e.in_rule(index, rule.name.as_deref(), None))?;
        }
        Ok(())
    }

    /// Checks every rule and that every channel filter names one of the
    /// device's `channels` channels. The VMM calls this once it knows the
    /// device configuration.
    pub fn validate_for(&self, channels: u8) -> Result<(), FaultPlanError> {
        self.validate()?;
        for (index, rule) in self.rules.iter().enumerate() {
            rule.trigger
                .validate_channel(channels)
                .map_err(|e| e.in_rule(index, rule.name.as_deref(), None))?;
        }
        Ok(())
    }
}

/// Appends `key = value` if `value` is set, the value written inline.
fn write_key<T: Serialize>(
    out: &mut String,
    key: &str,
    value: &Option<T>,
) -> Result<(), FaultPlanError> {
    let Some(value) = value else {
        return Ok(());
    };
    out.push_str(key);
    out.push_str(" = ");
    // Through `toml::Value` first: it rejects integers above `i64::MAX`,
    // which the text writer would write and no TOML reader would read back.
    // The text writer itself keeps our key order.
    toml::Value::try_from(value)
        .and_then(|_| value.serialize(toml::ser::ValueSerializer::new(out)))
        .map_err(FaultPlanError::Write)?;
    out.push('\n');
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fault::CycleWindow;

    fn err(text: &str) -> String {
        FaultPlan::from_toml(text).unwrap_err().to_string()
    }

    #[test]
    fn parses_the_example_of_the_issue() {
        let plan = FaultPlan::from_toml(
            r#"
# Drop the interrupt of the 3rd descriptor on channel 1.
[[rule]]
name = "lost-irq"
effect = "drop-interrupt"
nth = 3
channel = 1

[[rule]]
effect = { kind = "dma-error", fatal = false }
probability = 0.05
max_times = 4
"#,
        )
        .unwrap();
        assert_eq!(
            plan.rules,
            [
                FaultRule {
                    name: Some("lost-irq".into()),
                    trigger: Trigger {
                        nth: Some(3),
                        channel: Some(1),
                        ..Trigger::default()
                    },
                    effect: FaultEffect::DropInterrupt,
                },
                FaultRule {
                    name: None,
                    trigger: Trigger {
                        probability: Some(0.05),
                        max_times: Some(4),
                        ..Trigger::default()
                    },
                    effect: FaultEffect::DmaError { fatal: false },
                },
            ]
        );
    }

    #[test]
    fn an_empty_plan_has_no_rules() {
        assert_eq!(FaultPlan::from_toml("").unwrap(), FaultPlan::default());
        assert_eq!(FaultPlan::from_toml("# nothing\n").unwrap().rules, []);
    }

    #[test]
    fn windows_and_integer_probabilities_parse() {
        let plan = FaultPlan::from_toml(
            "[[rule]]\neffect = \"halt\"\nprobability = 1\nwindow = { from = 10 }\n\
             [[rule]]\neffect = \"hang\"\nwindow = { until = 99 }\n",
        )
        .unwrap();
        assert_eq!(plan.rules[0].trigger.probability, Some(1.0));
        assert_eq!(
            plan.rules[0].trigger.window,
            Some(CycleWindow {
                from: 10,
                until: u64::MAX
            })
        );
        assert_eq!(
            plan.rules[1].trigger.window,
            Some(CycleWindow { from: 0, until: 99 })
        );
    }

    #[test]
    fn every_validation_error_names_the_rule_and_the_field() {
        let second = |keys: &str| {
            err(&format!(
                "[[rule]]\neffect = \"hang\"\nnth = 1\n\n[[rule]]\nname = \"lost-irq\"\n{keys}\n"
            ))
        };
        let cases = [
            (
                "effect = \"hang\"\nprobability = 1.5",
                "field \"probability\": must be between 0 and 1, got 1.5",
            ),
            (
                "effect = \"hang\"\nprobability = -0.1",
                "field \"probability\": must be between 0 and 1, got -0.1",
            ),
            (
                "effect = \"hang\"\nprobability = \"high\"",
                "field \"probability\": expected a number between 0 and 1, got string",
            ),
            (
                "effect = \"hang\"\nnth = 0",
                "field \"nth\": must be at least 1, got 0",
            ),
            (
                "effect = \"hang\"\nnth = -2",
                "field \"nth\": must be at least 1, got -2",
            ),
            (
                "effect = \"hang\"\nevery = 0",
                "field \"every\": must be at least 1, got 0",
            ),
            (
                "effect = \"hang\"\nevery = 1.5",
                "field \"every\": expected an integer, got float",
            ),
            (
                "effect = \"hang\"\nevery = 1\nmax_times = 0",
                "field \"max_times\": must be at least 1, got 0",
            ),
            (
                "effect = \"hang\"\nchannel = 256",
                "field \"channel\": must be between 0 and 255, got 256",
            ),
            (
                "effect = \"hang\"\nwindow = { from = 20, until = 10 }",
                "field \"window\": from must be below until, got from = 20 and until = 10",
            ),
            (
                "effect = \"hang\"\nwindow = { from = -1 }",
                "field \"window.from\": must not be negative, got -1",
            ),
            (
                "effect = \"hang\"\nwindow = { start = 1 }",
                "field \"window.start\": unknown key; a window takes from, until",
            ),
            (
                "effect = \"hang\"\nwindow = [1, 2]",
                "field \"window\": expected an inline table such as \
                 { from = 0, until = 1_000_000 }, got array",
            ),
            (
                "effect = \"hang\"\nevry = 2",
                "field \"evry\": unknown key; did you mean \"every\"? a rule takes name, \
                 effect, nth, every, probability, channel, window, max_times",
            ),
            (
                "nth = 2",
                "field \"effect\": missing: every rule needs one, e.g. effect = \
                 \"drop-interrupt\"",
            ),
            (
                "effect = \"hang\"",
                "field \"trigger\": missing: give at least one of nth, every, probability, \
                 channel, window (every = 1 fires on every descriptor)",
            ),
            (
                "effect = { kind = \"delay-interrupt\", cycles = 0 }\nnth = 1",
                "field \"effect.cycles\": must be between 1 and 1000000000000, got 0",
            ),
            (
                "effect = { kind = \"corrupt-data\", flips = 5000 }\nnth = 1",
                "field \"effect.flips\": must be between 1 and 4096, got 5000",
            ),
        ];
        for (keys, field_and_problem) in cases {
            assert_eq!(
                second(keys),
                format!("rule 2 (\"lost-irq\") at line 5: {field_and_problem}"),
                "{keys}"
            );
        }
    }

    #[test]
    fn a_rule_without_a_string_name_is_numbered_only() {
        assert_eq!(
            err("\n[[rule]]\nname = 3\neffect = \"hang\"\nnth = 1\n"),
            "rule 1 at line 2: field \"name\": expected a string, got integer"
        );
    }

    #[test]
    fn toml_errors_keep_line_and_column() {
        let syntax = err("[[rule]]\neffect = \"hang\"\nnth = = 3\n");
        assert!(
            syntax.starts_with("cannot read the fault plan: TOML parse error at line 3, column"),
            "{syntax}"
        );
        let top = err("[[rules]]\neffect = \"hang\"\n");
        assert!(
            top.starts_with("cannot read the fault plan: TOML parse error at line 1, column"),
            "{top}"
        );
        assert!(
            top.contains("unknown field `rules`, expected `rule`"),
            "{top}"
        );
    }

    #[test]
    fn validate_for_checks_channels_against_the_device() {
        let plan =
            FaultPlan::from_toml("[[rule]]\nname = \"c7\"\neffect = \"hang\"\nchannel = 7\n")
                .unwrap();
        assert!(plan.validate_for(8).is_ok());
        assert_eq!(
            plan.validate_for(4).unwrap_err().to_string(),
            "rule 1 (\"c7\"): field \"channel\": the device has 4 channels (0 to 3), got 7"
        );
    }

    /// A plan with every effect kind at non-default parameters and every
    /// trigger key in use.
    fn every_kind() -> FaultPlan {
        let effects = [
            FaultEffect::DropInterrupt,
            FaultEffect::DelayInterrupt { cycles: 12_345 },
            FaultEffect::DuplicateInterrupt,
            FaultEffect::SpuriousInterrupt,
            FaultEffect::InterruptStorm { count: 17 },
            FaultEffect::DmaError { fatal: true },
            FaultEffect::ShortTransfer { bytes: 0 },
            FaultEffect::CorruptData { flips: 3 },
            FaultEffect::Hang,
            FaultEffect::Halt,
            FaultEffect::FetchError,
            FaultEffect::MissingCompletion,
            FaultEffect::StaleCompletion,
            FaultEffect::LatencySpike { cycles: 999 },
            FaultEffect::SurpriseRemoval,
        ];
        let rules = effects
            .into_iter()
            .enumerate()
            .map(|(i, effect)| {
                let i = i as u64;
                FaultRule {
                    name: (i % 2 == 0).then(|| format!("rule \"{i}\"")),
                    trigger: Trigger {
                        nth: Some(i + 1),
                        every: (i % 3 == 0).then_some(i + 2),
                        probability: (i % 4 == 0).then_some(0.125 * (i % 8) as f64),
                        channel: (i % 5 == 0).then_some(u8::try_from(i).unwrap()),
                        window: (i % 2 == 1).then_some(CycleWindow {
                            from: i,
                            until: if i % 3 == 1 { u64::MAX } else { 1000 + i },
                        }),
                        max_times: (i % 3 == 1).then_some(i),
                    },
                    effect,
                }
            })
            .collect();
        FaultPlan { rules }
    }

    #[test]
    fn all_fifteen_kinds_round_trip_through_toml_and_json() {
        let plan = every_kind();
        plan.validate().unwrap();
        let kinds: Vec<&str> = plan.rules.iter().map(|r| r.effect.kind_name()).collect();
        assert_eq!(kinds, FaultEffect::KIND_NAMES);
        let text = plan.to_toml().unwrap();
        assert_eq!(FaultPlan::from_toml(&text).unwrap(), plan, "{text}");
        let json = serde_json::to_string(&plan).unwrap();
        assert_eq!(
            serde_json::from_str::<FaultPlan>(&json).unwrap(),
            plan,
            "{json}"
        );
    }

    #[test]
    fn to_toml_writes_what_a_person_would() {
        let plan = FaultPlan::from_toml(
            "[[rule]]\neffect = { kind = \"dma-error\", fatal = true }\nwindow = { from = 5 }\n\
             name = \"a\"\nevery = 2\n\n[[rule]]\nprobability = 0.25\neffect = \"hang\"\n",
        )
        .unwrap();
        assert_eq!(
            plan.to_toml().unwrap(),
            "[[rule]]\nname = \"a\"\nevery = 2\nwindow = { from = 5 }\n\
             effect = { kind = \"dma-error\", fatal = true }\n\n\
             [[rule]]\nprobability = 0.25\neffect = \"hang\"\n"
        );
    }

    #[test]
    fn to_toml_reports_values_toml_cannot_hold() {
        let plan = FaultPlan {
            rules: vec![FaultRule {
                name: None,
                trigger: Trigger {
                    nth: Some(u64::MAX),
                    ..Trigger::default()
                },
                effect: FaultEffect::Hang,
            }],
        };
        let message = plan.to_toml().unwrap_err().to_string();
        assert!(
            message.starts_with("cannot write the fault plan as TOML: "),
            "{message}"
        );
    }
}
