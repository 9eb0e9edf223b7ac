//! The guest's result line: `DMALAB-RESULT {json}` on the console, one
//! flat JSON object per scenario run (`docs/boot-protocol.md`). The VMM
//! keeps the last one for the run report; the campaign's oracle and the
//! tests read its fields by the names below.
//!
//! The DMA driver's line is built by three C functions, each listed here
//! with the fields it prints; `tests` reads the C source and fails when a
//! field is added, renamed or removed on one side only.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// What precedes the JSON on the console line.
pub const PREFIX: &str = "DMALAB-RESULT ";

/// Fields of every result line.
pub const SCENARIO: &str = "scenario";
/// `"pass"` or `"fail"`.
pub const STATUS: &str = "status";

/// The DMA driver harness's own fields
/// (`guest-driver/kernel/dmadrv/harness.c`), including the early-failure
/// line's `error` and `ntstatus`.
pub const HARNESS_FIELDS: &[&str] = &[
    "scenario",
    "status",
    "error",
    "ntstatus",
    "bug",
    "strict",
    "caught",
    "user_status",
    "requests",
    "ok",
    "failed",
    "bad_data",
    "bad_info",
    "lost",
    "cancelled",
    "cancel_calls",
    "cancel_hits",
    "bad_overlapped",
    "counts_agree",
    "multi_transfer_requests",
    "bytes",
    "max_inflight",
    "first_fail_request",
    "first_fail",
    "cycles",
];

/// The WDM-style driver's counters (`dmadrv_result_fields`,
/// `guest-driver/kernel/dmadrv/driver.c`).
pub const DRIVER_FIELDS: &[&str] = &[
    "drv_irps",
    "irps_ok",
    "irps_failed",
    "irps_rejected",
    "irps_cancelled_queued",
    "transfers",
    "reprograms",
    "short_transfers",
    "retries",
    "resets",
    "watchdog_recoveries",
    "watchdog_timeouts",
    "drv_isrs",
    "error_isrs",
    "spurious",
    "drv_dpcs",
    "stale_records",
    "started_from_dpc",
    "watchdog_took_queued",
    "rec_ok",
    "rec_short",
    "rec_err_dma",
    "rec_aborted",
    "rec_err_fetch",
    "rec_err_halted",
    "rec_err_other",
    "fail_hw",
    "fail_io",
    "fail_timeout",
    "fail_removed",
    "fail_param",
    "first_fail_status",
];

/// The WDM layer's counters (`wdm_result_fields`,
/// `guest-driver/kernel/wdm/wdm.c`); each verifier rule broken also adds
/// `v_<rule>`.
pub const WDM_FIELDS: &[&str] = &[
    "irps_started",
    "irps_completed",
    "irps_cancelled",
    "irps_max_outstanding",
    "dpcs_run",
    "isrs",
    "timers_fired",
    "completion_routines",
    "max_isr_us",
    "max_dpc_us",
    "violations",
];

/// Whether `name` is a field of the DMA driver's result line.
pub fn is_driver_field(name: &str) -> bool {
    name.starts_with("v_")
        || [HARNESS_FIELDS, DRIVER_FIELDS, WDM_FIELDS]
            .iter()
            .any(|set| set.contains(&name))
}

/// A result line's JSON: an object, or the raw text when it is not one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ResultLine {
    Fields(Map<String, Value>),
    Text(String),
}

impl ResultLine {
    /// The line after [`PREFIX`].
    pub fn parse(text: &str) -> ResultLine {
        match serde_json::from_str(text) {
            Ok(fields) => ResultLine::Fields(fields),
            Err(_) => ResultLine::Text(text.to_string()),
        }
    }

    /// The fields, if the line was a JSON object.
    pub fn fields(&self) -> Option<&Map<String, Value>> {
        match self {
            ResultLine::Fields(f) => Some(f),
            ResultLine::Text(_) => None,
        }
    }

    /// One field's value.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.fields()?.get(name)
    }

    /// A numeric field (`true`/`false` count as 1/0), or why not.
    pub fn number(&self, name: &str) -> Result<f64, String> {
        match self.get(name) {
            Some(Value::Number(n)) => n.as_f64().ok_or_else(|| format!("{name} is not a number")),
            Some(Value::Bool(b)) => Ok(f64::from(u8::from(*b))),
            Some(other) => Err(format!("result field {name} = {other} is not a number")),
            None => Err(format!("the result line has no field {name}")),
        }
    }

    /// A string field.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.get(name)?.as_str()
    }

    /// The `status` field (`pass`, `fail`).
    pub fn status(&self) -> Option<&str> {
        self.text(STATUS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::path::Path;

    /// Every `\"name\":` (a JSON key in a C string literal) of a file.
    fn c_fields(path: &str) -> BTreeSet<String> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../guest-driver/kernel");
        let text = std::fs::read_to_string(root.join(path))
            .unwrap_or_else(|e| panic!("cannot read guest-driver/kernel/{path}: {e}"));
        let pieces: Vec<&str> = text.split("\\\":").collect();
        let mut names = BTreeSet::new();
        for piece in &pieces[..pieces.len() - 1] {
            let Some(at) = piece.rfind("\\\"") else {
                continue;
            };
            let name = &piece[at + 2..];
            let is_name = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if is_name {
                names.insert(name.to_string());
            }
        }
        names
    }

    fn set(fields: &[&str]) -> BTreeSet<String> {
        fields.iter().map(|f| f.to_string()).collect()
    }

    fn agree(path: &str, fields: &[&str]) {
        let c = c_fields(path);
        let rust = set(fields);
        let only_c: Vec<_> = c.difference(&rust).collect();
        let only_rust: Vec<_> = rust.difference(&c).collect();
        assert!(
            only_c.is_empty() && only_rust.is_empty(),
            "guest-driver/kernel/{path} and dmalab_protocol::result disagree: \
             only in C {only_c:?}, only in Rust {only_rust:?}"
        );
    }

    #[test]
    fn the_guest_prints_exactly_the_fields_named_here() {
        agree("dmadrv/harness.c", HARNESS_FIELDS);
        agree("dmadrv/driver.c", DRIVER_FIELDS);
        // `"v_%s":` (one count per verifier rule broken) is not a plain name.
        agree("wdm/wdm.c", WDM_FIELDS);
    }

    #[test]
    fn a_line_is_an_object_or_kept_as_text() {
        let line =
            ResultLine::parse(r#"{"scenario":"a","status":"pass","ok":3,"counts_agree":true}"#);
        assert_eq!(line.status(), Some("pass"));
        assert_eq!(line.number("ok"), Ok(3.0));
        assert_eq!(line.number("counts_agree"), Ok(1.0));
        assert!(line
            .number("scenario")
            .unwrap_err()
            .contains("not a number"));
        assert!(line.number("nope").unwrap_err().contains("no field nope"));
        let text = ResultLine::parse("not json");
        assert_eq!(text, ResultLine::Text("not json".into()));
        assert_eq!(text.status(), None);
        let json = serde_json::to_string(&text).unwrap();
        assert_eq!(serde_json::from_str::<ResultLine>(&json).unwrap(), text);
        assert!(is_driver_field("watchdog_recoveries") && is_driver_field("v_irql"));
        assert!(!is_driver_field("watchdog_recovery"));
    }
}
