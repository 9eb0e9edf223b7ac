//! The oracle: what the host checks after every scenario, named or random.
//!
//! Inputs are what a child `dmalab run` leaves behind: its exit status,
//! the guest console (stdout), and the run report (`--report`), which
//! carries the guest's `DMALAB-RESULT` line (parsed) and the host's count
//! of applied faults by kind (`device.fault_counts`, exact whatever the
//! trace lost).
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
//!   unconditional ([`BOUNDS`], [`CAUSES`] and the driver's own books in
//!   [`universal`]): found by running random plans, see `docs/campaign.md`.
//!
//! The invariants that use each fault's parameters (a fatal error fails
//! its IRP, a recoverable one is retried within the bound, a cancellation
//! ends its IRP once) are in `oracle_params.rs`.
//!
//! A named scenario adds its `[expect]`: exit status, result status, exact
//! fields, exact fault counts, relations. An exact field in `[expect]`
//! replaces the universal check of the same field (a verifier scenario
//! expects `violations = 1`).

use std::collections::BTreeMap;

use dmalab_protocol::report::RunReport;
use dmalab_protocol::result::ResultLine;
use dmalab_protocol::status;
use serde_json::Value;

pub(crate) use crate::bounds::BREAKING;
use crate::bounds::{weight, CAUSES};
pub use crate::bounds::{Bound, BOUNDS};
use crate::scenario::{Expect, Guest, Relation, Scenario, Term, Timing};

/// What a finished child run left.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Exit status; `None` if it was killed (the runner's hard limit).
    pub exit: Option<i32>,
    pub console: String,
    /// The child's stderr (the VMM's messages, a register dump on a
    /// timeout).
    pub stderr: String,
    /// The `--report`, if it was written and reads as a run report.
    pub report: Option<RunReport>,
}

impl Outcome {
    /// The result line, if there was one and it was a JSON object.
    pub fn result(&self) -> Option<&ResultLine> {
        let line = self.report.as_ref()?.result.as_ref()?;
        line.fields().map(|_| line)
    }

    /// Applied faults by kind (the device's exact counts).
    pub fn fault_counts(&self) -> BTreeMap<String, u64> {
        self.report
            .as_ref()
            .map(RunReport::fault_counts)
            .unwrap_or_default()
    }

    /// Total faults applied.
    pub fn faults_applied(&self) -> u64 {
        self.fault_counts().values().sum()
    }
}

struct Eval<'a> {
    result: &'a ResultLine,
    faults: &'a BTreeMap<String, u64>,
    /// Interrupt causes the device dropped (report `device`).
    interrupts_dropped: u64,
}

/// A result-line field by name, or by dotted path into its objects
/// (the Linux harness's `dmatest.failures`).
fn lookup<'a>(result: &'a ResultLine, name: &str) -> Option<&'a Value> {
    if let Some(v) = result.get(name) {
        return Some(v);
    }
    let mut parts = name.split('.');
    let mut v = result.get(parts.next()?)?;
    for part in parts {
        v = v.get(part)?;
    }
    Some(v)
}

impl Eval<'_> {
    fn field(&self, name: &str) -> Result<f64, String> {
        if !name.contains('.') {
            return self.result.number(name);
        }
        let v = lookup(self.result, name)
            .ok_or_else(|| format!("the result line has no field {name}"))?;
        v.as_f64()
            .or_else(|| v.as_bool().map(|b| f64::from(u8::from(b))))
            .ok_or_else(|| format!("field {name} is not a number: {v}"))
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
    if let Some(what) = status::failure(exit) {
        bad.push(format!("{what} (exit {exit})"));
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
        interrupts_dropped: outcome
            .report
            .as_ref()
            .map_or(0, |r| r.device.interrupts_dropped),
    };
    if scenario.guest == Guest::Linux {
        linux(&outcome.console, &mut bad);
        expected(&eval, scenario, exit, &mut bad);
        return bad;
    }
    if let Some(error) = result.get("error") {
        // The harness's early-failure line: the workload never ran, so
        // its counters are absent; one line says why.
        bad.push(format!(
            "the workload did not run: error {error}, ntstatus {}",
            result.get("ntstatus").map_or("?".into(), Value::to_string)
        ));
        return bad;
    }
    universal(&eval, &scenario.expect, scenario.timing, &mut bad);
    if let Some(report) = &outcome.report {
        crate::oracle_params::check(scenario, result, report, &mut bad);
    }
    expected(&eval, scenario, exit, &mut bad);
    if let Some(report) = &outcome.report {
        crate::oracle_params::note_late_interrupts(scenario, report, &mut bad);
    }
    bad
}

/// The invariants every scenario must satisfy.
fn universal(eval: &Eval<'_>, expect: &Expect, timing: Timing, bad: &mut Vec<String>) {
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
        if bad_data > 0.0 && eval.result.status() != Some("fail") {
            bad.push(format!(
                "bad_data = {bad_data} but the scenario did not report fail"
            ));
        }
    }
    let realtime = timing == Timing::Realtime;
    let sum = |kinds: &[&str], slow: bool| -> u64 {
        let mut n: u64 = kinds.iter().map(|k| weight(k) * eval.count(k)).sum();
        if slow && realtime {
            n += eval.count("latency-spike") + eval.count("delay-interrupt");
        }
        n
    };
    let names = |kinds: &[&str], slow: bool, weighted: bool| -> String {
        let mut terms: Vec<String> = kinds
            .iter()
            .map(|k| match weight(k) {
                w if w > 1 && weighted => format!("{w} × faults.{k}"),
                _ => format!("faults.{k}"),
            })
            .collect();
        if slow && realtime {
            terms.extend([
                "faults.latency-spike".into(),
                "faults.delay-interrupt".into(),
            ]);
        }
        if terms.is_empty() {
            "0".into()
        } else {
            terms.join(" + ")
        }
    };
    for b in BOUNDS {
        match eval.field(b.field) {
            Ok(v) if v <= sum(b.kinds, b.slow) as f64 => {}
            Ok(v) => bad.push(format!(
                "{} <= {} fails: {v} vs {}",
                b.field,
                names(b.kinds, b.slow, true),
                sum(b.kinds, b.slow)
            )),
            Err(e) => bad.push(e),
        }
    }
    for (field, kinds, slow) in CAUSES {
        match eval.field(field) {
            Ok(v) if v == 0.0 || sum(kinds, *slow) > 0 => {}
            Ok(v) => bad.push(format!(
                "{field} = {v} but none of {} was applied",
                names(kinds, *slow, false)
            )),
            Err(e) => bad.push(e),
        }
    }
    // The driver's own books: failures by status add up, and (while the
    // device is there) every IRP's transfers are its first, its
    // reprograms and its retries.
    let total =
        |fields: &[&str]| -> Result<f64, String> { fields.iter().map(|f| eval.field(f)).sum() };
    if let (Ok(failed), Ok(parts)) = (
        eval.field("irps_failed"),
        total(&[
            "fail_hw",
            "fail_io",
            "fail_timeout",
            "fail_removed",
            "fail_param",
        ]),
    ) {
        if failed != parts {
            bad.push(format!(
                "irps_failed ({failed}) != fail_hw + fail_io + fail_timeout + fail_removed + \
                 fail_param ({parts})"
            ));
        }
    }
    if eval.count("surprise-removal") == 0 {
        if let (Ok(t), Ok(parts)) = (
            eval.field("transfers"),
            total(&["drv_irps", "reprograms", "retries"]),
        ) {
            if t != parts {
                bad.push(format!(
                    "transfers ({t}) != drv_irps + reprograms + retries ({parts})"
                ));
            }
        }
    }
    // Every interrupt the device dropped is a lost interrupt the watchdog
    // recovered, or its transfer failed otherwise.
    {
        let dropped = eval.interrupts_dropped;
        if let Ok(rec) = eval.field("watchdog_recoveries") {
            let delayed = if realtime {
                eval.count("delay-interrupt")
            } else {
                0
            };
            if rec > (dropped + delayed) as f64 {
                bad.push(format!(
                    "watchdog_recoveries ({rec}) > interrupts the device dropped ({dropped}){}",
                    if realtime { " + delayed" } else { "" }
                ));
            }
        }
    }
    // A record the watchdog took while the DpcForIsr its interrupt had
    // queued still waited: the DPC's work done by the wrong routine (the
    // dmalab driver reports it; a driver that does not is not judged).
    if !overridden("watchdog_took_queued") {
        if let Ok(v) = eval.field("watchdog_took_queued") {
            if v != 0.0 {
                bad.push(format!(
                    "the watchdog took records a queued DpcForIsr was to handle: watchdog_took_queued = {v}"
                ));
            }
        }
    }
}

/// Console lines of a Linux kernel in trouble.
const LINUX_TROUBLE: &[&str] = &[
    "Oops",
    "BUG:",
    "Kernel panic",
    "WARNING:",
    "general protection",
];

/// The universal check of a Linux-guest scenario: the kernel stayed
/// healthy. (The dmalab guest's bounds do not carry over: the Linux
/// driver's `watchdog_recoveries` also counts completions its watchdog
/// finds after an error, 3 for one fatal error with no interrupt lost, in
/// `linux-dma-error-fatal`.)
fn linux(console: &str, bad: &mut Vec<String>) {
    if let Some(line) = console
        .lines()
        .find(|l| LINUX_TROUBLE.iter().any(|t| l.contains(t)))
    {
        bad.push(format!(
            "the Linux kernel reported trouble: {}",
            line.trim()
        ));
    }
}

/// The scenario's own `[expect]`.
fn expected(eval: &Eval<'_>, scenario: &Scenario, exit: i32, bad: &mut Vec<String>) {
    let expect = &scenario.expect;
    if let crate::scenario::Origin::Random { .. } = scenario.origin {
        // Random plans: pass, or a reported corruption (exit 1, fail).
        let status = eval.result.status().unwrap_or("");
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
        let status = eval.result.get(dmalab_protocol::result::STATUS);
        if status.and_then(Value::as_str) != Some(expect.status.as_str()) {
            bad.push(format!(
                "status {}, expected {:?}",
                status.map_or("(none)".to_string(), Value::to_string),
                expect.status
            ));
        }
    }
    for (field, want) in &expect.fields {
        match lookup(eval.result, field) {
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
#[path = "oracle_tests.rs"]
mod tests;
