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
//! Serde: [`FaultPlan`] and [`FaultRule`] serialise to the same shape as the
//! TOML (so a run report can embed the plan as TOML or JSON) and deserialise
//! from any format by way of `toml::Value` and the same hand parser.

use serde::ser::{SerializeMap, SerializeStruct};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

use super::effect::FaultEffect;
use super::parse::{line_of, rule_from_table, table_name, FieldError, RULE_KEYS};
use super::trigger::{CycleWindow, Trigger};

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
    value
        .serialize(toml::ser::ValueSerializer::new(out))
        .map_err(FaultPlanError::Write)?;
    out.push('\n');
    Ok(())
}

impl Serialize for CycleWindow {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let open_end = self.until == u64::MAX;
        let mut map = serializer.serialize_map(Some(if open_end { 1 } else { 2 }))?;
        map.serialize_entry("from", &self.from)?;
        if !open_end {
            map.serialize_entry("until", &self.until)?;
        }
        map.end()
    }
}

impl Serialize for FaultRule {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let t = &self.trigger;
        let mut s = serializer.serialize_struct("FaultRule", RULE_KEYS.len())?;
        optional(&mut s, "name", &self.name)?;
        optional(&mut s, "nth", &t.nth)?;
        optional(&mut s, "every", &t.every)?;
        optional(&mut s, "probability", &t.probability)?;
        optional(&mut s, "channel", &t.channel)?;
        optional(&mut s, "window", &t.window)?;
        optional(&mut s, "max_times", &t.max_times)?;
        s.serialize_field("effect", &self.effect)?;
        s.end()
    }
}

fn optional<S: SerializeStruct, T: Serialize>(
    s: &mut S,
    key: &'static str,
    value: &Option<T>,
) -> Result<(), S::Error> {
    match value {
        Some(v) => s.serialize_field(key, v),
        None => s.skip_field(key),
    }
}

impl Serialize for FaultPlan {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("FaultPlan", 1)?;
        s.serialize_field("rule", &self.rules)?;
        s.end()
    }
}

impl<'de> Deserialize<'de> for FaultRule {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let toml::Value::Table(table) = toml::Value::deserialize(deserializer)? else {
            return Err(serde::de::Error::custom("a fault rule must be a table"));
        };
        let rule = rule_from_table(&table).map_err(serde::de::Error::custom)?;
        rule.validate().map_err(serde::de::Error::custom)?;
        Ok(rule)
    }
}

impl<'de> Deserialize<'de> for FaultPlan {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let toml::Value::Table(mut top) = toml::Value::deserialize(deserializer)? else {
            return Err(serde::de::Error::custom("a fault plan must be a table"));
        };
        let rules = match top.remove("rule") {
            None => Vec::new(),
            Some(toml::Value::Array(rules)) => rules,
            Some(_) => return Err(serde::de::Error::custom("`rule` must be a list of tables")),
        };
        if let Some(key) = top.keys().next() {
            return Err(serde::de::Error::custom(format!(
                "unknown top-level key \"{key}\"; a fault plan holds only `rule`"
            )));
        }
        let mut plan = FaultPlan::default();
        for (index, value) in rules.into_iter().enumerate() {
            let toml::Value::Table(table) = value else {
                return Err(serde::de::Error::custom(format!(
                    "rule {}: must be a table",
                    index + 1
                )));
            };
            let rule = rule_from_table(&table)
                .and_then(|rule| rule.validate().map(|()| rule))
                .map_err(|e| {
                    serde::de::Error::custom(e.in_rule(index, table_name(&table), None))
                })?;
            plan.rules.push(rule);
        }
        Ok(plan)
    }
}
