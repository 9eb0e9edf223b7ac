//! The serde form of plans, rules and effects, for TOML and for JSON.
//!
//! Serialising writes the shape a person writes in a plan file: a rule is a
//! flat table of its trigger keys with `effect` last; an effect without
//! parameters is its kind name, one with parameters an inline table with
//! `kind` and every parameter; a window leaves out an open end. So a plan
//! written by `FaultPlan::to_toml` or `serde_json` reads back equal.
//!
//! Deserialising from any format goes through `toml::Value` and then the
//! hand parser of `parse.rs` and the same validation as `from_toml`, so
//! there is one reader and one set of error messages. (Serde's derive cannot
//! express "a string or a table with `kind`" without losing the messages,
//! nor `deny_unknown_fields` together with a flattened trigger.)

use serde::ser::{SerializeMap, SerializeStruct};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::effect::FaultEffect;
use super::parse::{rule_from_table, table_name, RULE_KEYS};
use super::plan::{FaultPlan, FaultRule};
use super::trigger::CycleWindow;

impl Serialize for FaultEffect {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let params = self.param_count();
        if params == 0 {
            return serializer.serialize_str(self.kind_name());
        }
        let mut map = serializer.serialize_map(Some(1 + params))?;
        map.serialize_entry("kind", self.kind_name())?;
        match *self {
            FaultEffect::DelayInterrupt { cycles } | FaultEffect::LatencySpike { cycles } => {
                map.serialize_entry("cycles", &cycles)?;
            }
            FaultEffect::InterruptStorm { count } => map.serialize_entry("count", &count)?,
            FaultEffect::DmaError { fatal } => map.serialize_entry("fatal", &fatal)?,
            FaultEffect::ShortTransfer { bytes } => map.serialize_entry("bytes", &bytes)?,
            FaultEffect::CorruptData { flips } => map.serialize_entry("flips", &flips)?,
            _ => {}
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for FaultEffect {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = toml::Value::deserialize(deserializer)?;
        let effect = FaultEffect::from_value(&value).map_err(serde::de::Error::custom)?;
        effect.validate().map_err(serde::de::Error::custom)?;
        Ok(effect)
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_to_the_form_it_parses() {
        for name in FaultEffect::KIND_NAMES {
            let effect = FaultEffect::from_kind_name(name).unwrap();
            let json = serde_json::to_string(&effect).unwrap();
            let back: FaultEffect = serde_json::from_str(&json).unwrap();
            assert_eq!(back, effect, "{json}");
        }
        assert_eq!(
            serde_json::to_string(&FaultEffect::DmaError { fatal: true }).unwrap(),
            r#"{"kind":"dma-error","fatal":true}"#
        );
        assert_eq!(
            serde_json::to_string(&FaultEffect::Halt).unwrap(),
            r#""halt""#
        );
    }

    #[test]
    fn deserialising_from_json_uses_the_same_checks() {
        let bad = r#"{"rule":[{"effect":"hang","probability":2.0}]}"#;
        assert_eq!(
            serde_json::from_str::<FaultPlan>(bad)
                .unwrap_err()
                .to_string(),
            "rule 1: field \"probability\": must be between 0 and 1, got 2"
        );
        let extra = r#"{"rule":[],"seed":3}"#;
        assert_eq!(
            serde_json::from_str::<FaultPlan>(extra)
                .unwrap_err()
                .to_string(),
            "unknown top-level key \"seed\"; a fault plan holds only `rule`"
        );
        let rule = r#"{"nth":2,"effect":{"kind":"interrupt-storm","count":5}}"#;
        assert_eq!(
            serde_json::from_str::<FaultRule>(rule).unwrap().effect,
            FaultEffect::InterruptStorm { count: 5 }
        );
    }
}
