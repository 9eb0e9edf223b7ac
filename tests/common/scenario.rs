//! Running a guest scenario of the DMA driver (`dmalab run --scenario …
//! --faults … --seed … --timing … --report …`) and reading what it
//! reported: the guest's `DMALAB-RESULT {json}` line and the VMM's run
//! report (device counters, faults applied by kind with their sequence
//! numbers).

#![allow(dead_code)] // each test binary uses a different subset

use std::path::PathBuf;
use std::time::Duration;

use dmalab_protocol::report::RunReport;
use dmalab_protocol::result::{self, ResultLine};

use crate::common::{run_dmalab, Run, Scratch};

/// One `dmalab run` of a scenario.
pub struct ScenarioRun {
    pub run: Run,
    /// The guest's last `DMALAB-RESULT` line, parsed.
    pub result: ResultLine,
    /// The VMM's `--report`.
    pub report: RunReport,
}

impl ScenarioRun {
    /// A numeric field of the result line; panics (with the output) if
    /// it is missing.
    pub fn num(&self, field: &str) -> u64 {
        self.result
            .get(field)
            .and_then(serde_json::Value::as_u64)
            .unwrap_or_else(|| panic!("no numeric {field:?} in the result line\n{}", self.run))
    }

    /// A boolean field of the result line.
    pub fn flag(&self, field: &str) -> bool {
        self.result
            .get(field)
            .and_then(serde_json::Value::as_bool)
            .unwrap_or_else(|| panic!("no boolean {field:?} in the result line\n{}", self.run))
    }

    /// A string field of the result line.
    pub fn text(&self, field: &str) -> &str {
        self.result
            .text(field)
            .unwrap_or_else(|| panic!("no string {field:?} in the result line\n{}", self.run))
    }

    /// Sequence numbers of the descriptors the device applied `kind` to.
    pub fn faults(&self, kind: &str) -> Vec<u64> {
        self.report.faults(kind).to_vec()
    }
}

/// The fault plan `tests/plans/<name>.toml`.
pub fn plan(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/plans")
        .join(format!("{name}.toml"))
}

/// Runs `scenario` with an optional plan, the timing mode and extra
/// guest command-line words; seed 1.
pub fn run_scenario(
    test: &str,
    scenario: &str,
    faults: Option<&str>,
    timing: &str,
    cmdline: &str,
    limit: Duration,
) -> ScenarioRun {
    let scratch = Scratch::new(test);
    let report = scratch.path().join("report.json");
    let plan_path = faults.map(plan);
    let mut args: Vec<String> = [
        "run",
        "--scenario",
        scenario,
        "--timing",
        timing,
        "--seed",
        "1",
        "--cmdline",
        cmdline,
        "--report",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.push(report.display().to_string());
    if let Some(p) = &plan_path {
        args.push("--faults".into());
        args.push(p.display().to_string());
    }
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = run_dmalab(&argv, limit);
    let line = run
        .stdout
        .lines()
        .rev()
        .find_map(|l| {
            l.find(result::PREFIX)
                .map(|at| &l[at + result::PREFIX.len()..])
        })
        .unwrap_or_else(|| panic!("no {} line\n{run}", result::PREFIX));
    let result = ResultLine::parse(line);
    if result.fields().is_none() {
        panic!("the result line is not a JSON object\n{run}");
    }
    let report = std::fs::read_to_string(&report)
        .map_err(|e| e.to_string())
        .and_then(|t| RunReport::from_json(&t).map_err(|e| e.to_string()))
        .unwrap_or_else(|e| panic!("no run report ({e})\n{run}"));
    ScenarioRun {
        run,
        result,
        report,
    }
}
