//! The oracle: what the host checks after every scenario, named or random.
//!
//! Inputs are what a child `dmalab run` leaves behind: its exit status,
//! the guest console (stdout), and the run report (`--report`), which
//! carries the guest's `DMALAB-RESULT` line (parsed) and the host's fault
//! log (`device.faults`: each applied fault kind with the sequence numbers
//! of the descriptors it hit).
//!
//! The universal invariants (`docs/campaign.md` lists them with their
//! reasons) hold for any fault plan on a correct driver:
//! - the run ended: not killed, no VMM failure (exit 70–73), no guest
//!   exception (exit 3 or an `EXCEPTION` console line), a result line;
//! - every IRP ended exactly once: `lost == 0`, `bad_overlapped == 0`,
//!   `counts_agree`, and `requests == ok + failed + bad_data + bad_info`;
//! - data verified or the failure reported: a successful request with
//!   wrong data is only allowed where the host injected `corrupt-data`
//!   (`bad_data <= faults.corrupt-data`) and then the scenario reports
//!   `fail`; `bad_info == 0`;
//! - no verifier violation: `violations == 0`;
//! - the driver's counters agree with the fault log where the relation is
//!   unconditional ([`UNIVERSAL_RELATIONS`] and the conditional checks in
//!   [`universal`]): found by running 500 random plans, see
//!   `docs/campaign.md`.
//!
//! A named scenario adds its `[expect]`: exit status, result status, exact
//! fields, exact fault counts, relations. An exact field in `[expect]`
//! replaces the universal check of the same field (a verifier scenario
//! expects `violations = 1`).

use std::collections::BTreeMap;

use serde_json::Value;

use super::scenario::{Expect, Relation, Scenario, Term};

/// What a finished child run left.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Exit status; `None` if it was killed (the runner's hard limit).
    pub exit: Option<i32>,
    pub console: String,
    /// The `--report` JSON, if it was written and parses.
    pub report: Option<Value>,
}

impl Outcome {
    /// The result line (an object), if there was one.
    pub fn result(&self) -> Option<&serde_json::Map<String, Value>> {
        self.report.as_ref()?.get("result")?.as_object()
    }

    /// Applied faults by kind (the host's fault log).
    pub fn fault_counts(&self) -> BTreeMap<String, u64> {
        let mut counts = BTreeMap::new();
        if let Some(faults) = self
            .report
            .as_ref()
            .and_then(|r| r["device"]["faults"].as_object())
        {
            for (kind, seqs) in faults {
                let n = seqs.as_array().map_or(0, Vec::len);
                counts.insert(kind.clone(), n as u64);
            }
        }
        counts
    }

    /// Total faults applied.
    pub fn faults_applied(&self) -> u64 {
        self.fault_counts().values().sum()
    }
}

/// Relations between result-line counters and the fault log that hold for
/// every plan (checked on 500 random plans and every named scenario).
pub const UNIVERSAL_RELATIONS: &[&str] = &[
    "short_transfers <= faults.short-transfer",
    "rec_err_fetch <= faults.fetch-error",
];

/// Fault kinds after which a request may end in failure.
const FAILING_KINDS: &[&str] = &[
    "dma-error",
    "short-transfer",
    "hang",
    "halt",
    "fetch-error",
    "missing-completion",
    "stale-completion",
    "surprise-removal",
];

struct Eval<'a> {
    result: &'a serde_json::Map<String, Value>,
    faults: &'a BTreeMap<String, u64>,
}

impl Eval<'_> {
    fn field(&self, name: &str) -> Result<f64, String> {
        match self.result.get(name) {
            Some(Value::Number(n)) => n.as_f64().ok_or_else(|| format!("{name} is not a number")),
            Some(Value::Bool(b)) => Ok(f64::from(u8::from(*b))),
            Some(other) => Err(format!("result field {name} = {other} is not a number")),
            None => Err(format!("the result line has no field {name}")),
        }
    }

    fn term(&self, term: &Term) -> Result<f64, String> {
        match term {
            Term::Number(n) => Ok(*n),
            Term::Field(name) => self.field(name),
            Term::Faults(kind) => Ok(self.faults.get(kind).copied().unwrap_or(0) as f64),
        }
    }

    /// `None` if it holds, else why not.
    fn relation(&self, rel: &Relation) -> Option<String> {
        let left = match self.field(&rel.field) {
            Ok(v) => v,
            Err(e) => return Some(format!("relation {rel}: {e}")),
        };
        let right = match self.term(&rel.term) {
            Ok(v) => v,
            Err(e) => return Some(format!("relation {rel}: {e}")),
        };
        (!rel.op.holds(left, right)).then(|| format!("relation {rel} fails: {left} vs {right}"))
    }

    fn count(&self, kind: &str) -> u64 {
        self.faults.get(kind).copied().unwrap_or(0)
    }
}

/// Checks a scenario's outcome: the universal invariants, then the
/// scenario's own expectations. Returns the violations (empty: passed).
pub fn check(scenario: &Scenario, outcome: &Outcome) -> Vec<String> {
    let mut bad = Vec::new();
    let faults = outcome.fault_counts();
    let Some(exit) = outcome.exit else {
        bad.push(format!(
            "killed after the runner's limit ({} s + grace)",
            scenario.timeout
        ));
        return bad;
    };
    match exit {
        3 => bad.push("guest exception (exit 3)".into()),
        70 => bad.push("VMM internal error (exit 70)".into()),
        71 => bad.push("guest triple fault (exit 71)".into()),
        72 => bad.push("KVM internal error (exit 72)".into()),
        73 => bad.push("timeout: the guest did not exit (exit 73)".into()),
        64 => bad.push("dmalab rejected the run's arguments (exit 64)".into()),
        _ => {}
    }
    if let Some(line) = outcome
        .console
        .lines()
        .find(|l| l.trim_start().starts_with("EXCEPTION "))
    {
        bad.push(format!("guest exception: {line}"));
    }
    if outcome.report.is_none() {
        bad.push("no run report".into());
        return bad;
    }
    let Some(result) = outcome.result() else {
        bad.push("no DMALAB-RESULT line (or not JSON)".into());
        return bad;
    };
    let eval = Eval {
        result,
        faults: &faults,
    };
    universal(&eval, &scenario.expect, &mut bad);
    expected(&eval, scenario, exit, &mut bad);
    bad
}

/// The invariants every scenario must satisfy.
fn universal(eval: &Eval<'_>, expect: &Expect, bad: &mut Vec<String>) {
    let overridden = |f: &str| expect.fields.contains_key(f);
    let mut need = |field: &str, ok: &dyn Fn(f64) -> bool, what: &str| {
        if overridden(field) {
            return;
        }
        match eval.field(field) {
            Ok(v) if ok(v) => {}
            Ok(v) => bad.push(format!("{what}: {field} = {v}")),
            Err(e) => bad.push(format!("{what}: {e}")),
        }
    };
    need("lost", &|v| v == 0.0, "a request never ended");
    need(
        "bad_overlapped",
        &|v| v == 0.0,
        "an OVERLAPPED disagrees with its wait",
    );
    need(
        "counts_agree",
        &|v| v == 1.0,
        "application and driver counts disagree",
    );
    need("violations", &|v| v == 0.0, "verifier violation");
    need(
        "bad_info",
        &|v| v == 0.0,
        "a request's Information is wrong",
    );
    let sum = ["ok", "failed", "bad_data", "bad_info"]
        .iter()
        .map(|f| eval.field(f))
        .collect::<Result<Vec<f64>, String>>();
    match (eval.field("requests"), sum) {
        (Ok(n), Ok(parts)) if n == parts.iter().sum::<f64>() => {}
        (Ok(n), Ok(parts)) => bad.push(format!(
            "requests ({n}) != ok + failed + bad_data + bad_info ({})",
            parts.iter().sum::<f64>()
        )),
        (Err(e), _) | (_, Err(e)) => bad.push(format!("every request ended once: {e}")),
    }
    // Wrong data only where the host corrupted it, and then reported.
    if let Ok(bad_data) = eval.field("bad_data") {
        let corrupted = eval.count("corrupt-data") as f64;
        if bad_data > corrupted {
            bad.push(format!(
                "data corrupted without an injected corruption: bad_data = {bad_data}, \
                 faults.corrupt-data = {corrupted}"
            ));
        }
        if bad_data > 0.0 && eval.result.get("status").and_then(Value::as_str) != Some("fail") {
            bad.push(format!(
                "bad_data = {bad_data} but the scenario did not report fail"
            ));
        }
    }
    // A request fails only when the host broke something it depends on.
    if let Ok(failed) = eval.field("irps_failed") {
        if failed > 0.0 && FAILING_KINDS.iter().all(|k| eval.count(k) == 0) {
            bad.push(format!(
                "irps_failed = {failed} but no fault that can fail a request was applied"
            ));
        }
    }
    if let Ok(removed) = eval.field("fail_removed") {
        if removed > 0.0 && eval.count("surprise-removal") == 0 {
            bad.push(format!(
                "fail_removed = {removed} without a surprise-removal"
            ));
        }
    }
    for text in UNIVERSAL_RELATIONS {
        let rel = Relation::parse(text).expect("universal relations parse");
        if let Some(why) = eval.relation(&rel) {
            bad.push(why);
        }
    }
}

/// The scenario's own `[expect]`.
fn expected(eval: &Eval<'_>, scenario: &Scenario, exit: i32, bad: &mut Vec<String>) {
    let expect = &scenario.expect;
    if let super::scenario::Origin::Random { .. } = scenario.origin {
        // Random plans: pass, or a reported corruption (exit 1, fail).
        let status = eval
            .result
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or("");
        let reported = status == "fail" && exit == 1 && eval.field("bad_data").unwrap_or(0.0) > 0.0;
        if !(reported || status == "pass" && exit == 0) {
            bad.push(format!(
                "status {status:?}, exit {exit}: expected pass and 0"
            ));
        }
    } else {
        if exit != i32::from(expect.exit) {
            bad.push(format!("exit {exit}, expected {}", expect.exit));
        }
        let status = eval.result.get("status");
        if status.and_then(Value::as_str) != Some(expect.status.as_str()) {
            bad.push(format!(
                "status {}, expected {:?}",
                status.map_or("(none)".to_string(), Value::to_string),
                expect.status
            ));
        }
    }
    for (field, want) in &expect.fields {
        match eval.result.get(field) {
            Some(got) if same_value(got, want) => {}
            Some(got) => bad.push(format!("{field} = {got}, expected {want}")),
            None => bad.push(format!(
                "the result line has no field {field} (expected {want})"
            )),
        }
    }
    for (kind, want) in &expect.faults {
        let got = eval.count(kind);
        if got != *want {
            bad.push(format!("faults.{kind} = {got}, expected {want}"));
        }
    }
    for rel in &expect.relations {
        if let Some(why) = eval.relation(rel) {
            bad.push(why);
        }
    }
}

/// Numbers compare by value (1 == 1.0), everything else exactly.
fn same_value(got: &Value, want: &Value) -> bool {
    match (got.as_f64(), want.as_f64()) {
        (Some(a), Some(b)) => a == b,
        _ => got == want,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::campaign::scenario::Scenario;
    use serde_json::json;
    use std::path::Path;

    fn scenario(expect: &str) -> Scenario {
        let text = format!("workload = \"copy\"\n[expect]\n{expect}");
        Scenario::parse(&text, Path::new("t.toml"), "t").unwrap()
    }

    fn clean_result() -> Value {
        json!({
            "status": "pass", "requests": 4, "ok": 4, "failed": 0, "bad_data": 0,
            "bad_info": 0, "lost": 0, "bad_overlapped": 0, "counts_agree": true,
            "violations": 0, "irps_failed": 0, "fail_removed": 0, "short_transfers": 0,
            "rec_err_fetch": 0, "retries": 0, "drv_irps": 4, "watchdog_recoveries": 1,
        })
    }

    fn outcome(exit: i32, result: Value, faults: Value) -> Outcome {
        Outcome {
            exit: Some(exit),
            console: String::new(),
            report: Some(json!({ "result": result, "device": { "faults": faults } })),
        }
    }

    #[test]
    fn a_clean_run_passes_and_expectations_are_checked() {
        let s = scenario(
            "fields = { watchdog_recoveries = 1 }\nfaults = { \"drop-interrupt\" = 1 }\n\
             relations = [\"watchdog_recoveries == faults.drop-interrupt\"]\n",
        );
        let o = outcome(0, clean_result(), json!({ "drop-interrupt": [3] }));
        assert_eq!(check(&s, &o), Vec::<String>::new());
        let o = outcome(0, clean_result(), json!({ "drop-interrupt": [3, 5] }));
        let bad = check(&s, &o);
        assert_eq!(bad.len(), 2, "{bad:?}");
        assert!(
            bad[0].contains("faults.drop-interrupt = 2, expected 1"),
            "{bad:?}"
        );
        assert!(bad[1].contains("relation watchdog_recoveries == faults.drop-interrupt fails"));
    }

    #[test]
    fn universal_invariants_catch_each_breach() {
        let s = scenario("");
        let with = |key: &str, v: Value| {
            let mut r = clean_result();
            r[key] = v;
            check(&s, &outcome(0, r, json!({})))
        };
        assert!(with("lost", json!(1))[0].contains("never ended"));
        assert!(with("counts_agree", json!(false))[0].contains("counts disagree"));
        assert!(with("violations", json!(2))[0].contains("verifier violation"));
        assert!(with("ok", json!(3))[0].contains("requests (4) != ok + failed"));
        let bad = with("bad_data", json!(1));
        assert!(
            bad.iter()
                .any(|b| b.contains("without an injected corruption")),
            "{bad:?}"
        );
        assert!(with("irps_failed", json!(1))[0].contains("no fault that can fail"));
        assert!(with("short_transfers", json!(1))[0]
            .contains("short_transfers <= faults.short-transfer"));
        let o = Outcome {
            exit: Some(3),
            console: "EXCEPTION #PF vector=14\n".into(),
            report: None,
        };
        let bad = check(&s, &o);
        assert!(
            bad[0].contains("exit 3") && bad[1].contains("EXCEPTION #PF"),
            "{bad:?}"
        );
        let o = Outcome {
            exit: None,
            ..Outcome::default()
        };
        assert!(check(&s, &o)[0].contains("killed"));
        let o = outcome(73, clean_result(), json!({}));
        assert!(check(&s, &o)[0].contains("timeout"));
    }

    #[test]
    fn a_reported_corruption_passes_only_where_it_was_injected_and_expected() {
        let mut r = clean_result();
        r["status"] = json!("fail");
        r["ok"] = json!(3);
        r["bad_data"] = json!(1);
        let s = scenario("exit = 1\nstatus = \"fail\"\n");
        assert!(check(&s, &outcome(1, r.clone(), json!({ "corrupt-data": [4] }))).is_empty());
        let bad = check(&s, &outcome(1, r, json!({})));
        assert!(bad[0].contains("without an injected corruption"), "{bad:?}");
    }

    #[test]
    fn an_exact_field_replaces_the_universal_check() {
        let mut r = clean_result();
        r["violations"] = json!(1);
        let s = scenario("fields = { violations = 1 }\n");
        assert!(check(&s, &outcome(0, r, json!({}))).is_empty());
    }
}
