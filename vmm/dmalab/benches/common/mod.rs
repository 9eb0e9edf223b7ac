//! What the benches that boot a guest scenario share: running the built
//! `dmalab` on one benchmark scenario and taking its `DMALAB-RESULT` line.

use std::process::{Command, Stdio};

use serde_json::Value;

/// Runs `dmalab run --scenario SCENARIO --timing instant --doorbell DOORBELL
/// --cmdline iters=ITERS --timeout TIMEOUT_S` and returns its result line as
/// JSON, checked: it names SCENARIO, passed, ran ITERS iterations, and
/// `dmalab` exited 0. Errors name the command and dmalab's last word.
pub fn run_bench_scenario(
    scenario: &str,
    doorbell: &str,
    iters: u32,
    timeout_s: u64,
) -> Result<Value, String> {
    let cmdline = format!("iters={iters}");
    let timeout = timeout_s.to_string();
    let args = [
        "run",
        "--scenario",
        scenario,
        "--timing",
        "instant",
        "--doorbell",
        doorbell,
        "--cmdline",
        &cmdline,
        "--timeout",
        &timeout,
    ];
    let out = Command::new(env!("CARGO_BIN_EXE_dmalab"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run dmalab: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let Some(json) = stdout
        .lines()
        .rev()
        .find_map(|l| l.find("DMALAB-RESULT ").map(|at| &l[at + 14..]))
    else {
        let last = |text: &str| {
            text.lines()
                .rfind(|l| !l.trim().is_empty())
                .map(str::to_string)
        };
        let said = stderr
            .lines()
            .find(|l| l.contains("error"))
            .map(str::to_string)
            .or_else(|| last(&stderr))
            .or_else(|| last(&stdout))
            .unwrap_or_default();
        return Err(format!(
            "dmalab {} gave no DMALAB-RESULT line ({}): {said}",
            args.join(" "),
            out.status
        ));
    };
    let v: Value = serde_json::from_str(json.trim())
        .map_err(|e| format!("bad DMALAB-RESULT JSON ({e}): {json}"))?;
    if v.get("scenario").and_then(Value::as_str) != Some(scenario) {
        return Err(format!("not a {scenario} result: {json}"));
    }
    if v.get("status").and_then(Value::as_str) != Some("pass") || !out.status.success() {
        return Err(format!("{scenario} did not pass ({}): {json}", out.status));
    }
    if v.get("iters").and_then(Value::as_u64) != Some(u64::from(iters)) {
        return Err(format!(
            "{scenario} ran other than {iters} iterations: {json}"
        ));
    }
    Ok(v)
}
