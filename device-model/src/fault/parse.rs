//! Reading one rule table of a plan, key by key, with precise errors.
//!
//! A serde derive would report "invalid type: string, expected u64" without
//! saying which rule or key; reading the `toml::Table` by hand lets every
//! error carry its field as the user wrote it (`window.until`,
//! `effect.cycles`) and lets an unknown key come with a "did you mean"
//! (Levenshtein distance at most 2). Ranges are checked later, by the
//! `validate` methods, so that rules built in code get the same checks.

use std::fmt;

use super::effect::FaultEffect;
use super::plan::{FaultPlanError, FaultRule};
use super::trigger::{CycleWindow, Trigger};

/// One bad field, before it is placed in its rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct FieldError {
    field: String,
    problem: String,
}

impl FieldError {
    pub(super) fn new(field: impl Into<String>, problem: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            problem: problem.into(),
        }
    }

    /// Places the error in rule `index` (0-based) of a plan.
    pub(super) fn in_rule(
        self,
        index: usize,
        rule_name: Option<&str>,
        line: Option<usize>,
    ) -> FaultPlanError {
        FaultPlanError::Rule {
            number: index.saturating_add(1),
            name: rule_name.map(str::to_owned),
            line,
            field: self.field,
            problem: self.problem,
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "field \"{}\": {}", self.field, self.problem)
    }
}

/// The keys a rule table accepts.
pub(super) const RULE_KEYS: [&str; 8] = [
    "name",
    "effect",
    "nth",
    "every",
    "probability",
    "channel",
    "window",
    "max_times",
];

/// The 1-based line of byte `offset` in `text`.
pub(super) fn line_of(text: &str, offset: usize) -> usize {
    let before = &text.as_bytes()[..offset.min(text.len())];
    before.iter().filter(|&&b| b == b'\n').count() + 1
}

pub(super) fn table_name(table: &toml::Table) -> Option<&str> {
    table.get("name").and_then(toml::Value::as_str)
}

/// Reads one rule table, key by key. Ranges are left to validation.
pub(super) fn rule_from_table(table: &toml::Table) -> Result<FaultRule, FieldError> {
    let mut name = None;
    let mut effect = None;
    let mut trigger = Trigger::default();
    for (key, value) in table {
        match key.as_str() {
            "name" => match value {
                toml::Value::String(s) => name = Some(s.clone()),
                other => return Err(expected("name", "a string", other)),
            },
            "effect" => effect = Some(FaultEffect::from_value(value)?),
            "nth" => trigger.nth = Some(count("nth", value)?),
            "every" => trigger.every = Some(count("every", value)?),
            "max_times" => trigger.max_times = Some(count("max_times", value)?),
            "probability" => trigger.probability = Some(probability(value)?),
            "channel" => trigger.channel = Some(channel(value)?),
            "window" => trigger.window = Some(window(value)?),
            unknown => {
                let hint = suggest(unknown, &RULE_KEYS)
                    .map(|near| format!("did you mean \"{near}\"? "))
                    .unwrap_or_default();
                return Err(FieldError::new(
                    unknown,
                    format!("unknown key; {hint}a rule takes {}", RULE_KEYS.join(", ")),
                ));
            }
        }
    }
    let effect = effect.ok_or_else(|| {
        FieldError::new(
            "effect",
            "missing: every rule needs one, e.g. effect = \"drop-interrupt\"",
        )
    })?;
    Ok(FaultRule {
        name,
        trigger,
        effect,
    })
}

fn expected(field: &str, what: &str, got: &toml::Value) -> FieldError {
    FieldError::new(field, format!("expected {what}, got {}", got.type_str()))
}

/// The integer in `value`, or an error naming `field`.
pub(super) fn expect_integer(field: &str, value: &toml::Value) -> Result<i64, FieldError> {
    match value {
        toml::Value::Integer(n) => Ok(*n),
        other => Err(expected(field, "an integer", other)),
    }
}

/// A count (`nth`, `every`, `max_times`): an integer of at least 1.
fn count(field: &str, value: &toml::Value) -> Result<u64, FieldError> {
    let n = expect_integer(field, value)?;
    u64::try_from(n).map_err(|_| FieldError::new(field, format!("must be at least 1, got {n}")))
}

fn probability(value: &toml::Value) -> Result<f64, FieldError> {
    match value {
        toml::Value::Float(p) => Ok(*p),
        // `probability = 1` and `= 0` are natural to write; both are exact.
        toml::Value::Integer(n) => Ok(*n as f64),
        other => Err(expected("probability", "a number between 0 and 1", other)),
    }
}

fn channel(value: &toml::Value) -> Result<u8, FieldError> {
    let n = expect_integer("channel", value)?;
    u8::try_from(n)
        .map_err(|_| FieldError::new("channel", format!("must be between 0 and 255, got {n}")))
}

fn window(value: &toml::Value) -> Result<CycleWindow, FieldError> {
    let toml::Value::Table(table) = value else {
        return Err(expected(
            "window",
            "an inline table such as { from = 0, until = 1_000_000 }",
            value,
        ));
    };
    let mut window = CycleWindow::default();
    for (key, value) in table {
        let field = format!("window.{key}");
        let slot = match key.as_str() {
            "from" => &mut window.from,
            "until" => &mut window.until,
            _ => {
                return Err(FieldError::new(
                    field,
                    "unknown key; a window takes from, until",
                ))
            }
        };
        let n = expect_integer(&field, value)?;
        *slot = u64::try_from(n)
            .map_err(|_| FieldError::new(&field, format!("must not be negative, got {n}")))?;
    }
    Ok(window)
}

/// The candidate closest to `word` by edit distance, if it is close enough
/// to be a typo (at most 2 edits).
pub(super) fn suggest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (edit_distance(word, c), *c))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Levenshtein distance, by characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let substitute = diagonal + usize::from(ca != cb);
            diagonal = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_only_near_misses() {
        assert_eq!(suggest("probabilty", &RULE_KEYS), Some("probability"));
        assert_eq!(suggest("max-times", &RULE_KEYS), Some("max_times"));
        assert_eq!(suggest("chanel", &RULE_KEYS), Some("channel"));
        assert_eq!(suggest("seed", &RULE_KEYS), None);
        assert_eq!(suggest("", &RULE_KEYS), None);
    }

    #[test]
    fn edit_distance_counts_insertions_deletions_substitutions() {
        assert_eq!(edit_distance("", ""), 0);
        assert_eq!(edit_distance("abc", ""), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("nth", "nht"), 2);
        assert_eq!(edit_distance("évery", "every"), 1);
    }

    #[test]
    fn line_of_counts_from_one_and_tolerates_any_offset() {
        let text = "a\nb\nc";
        assert_eq!(line_of(text, 0), 1);
        assert_eq!(line_of(text, 2), 2);
        assert_eq!(line_of(text, 4), 3);
        assert_eq!(line_of(text, 100), 3);
        assert_eq!(line_of("é\n", 1), 1);
    }
}
