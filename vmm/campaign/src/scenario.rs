//! One campaign scenario: the file format of `tests/scenarios/*.toml`
//! (`docs/fault-campaigns.md` for writing them, `docs/campaign.md` for
//! how they run) and its checks.
//!
//! A scenario file is a TOML table with the run's settings (`workload`,
//! `cmdline`, `seed`, `timing`, `doorbell`, `timeout`), a fault plan, and
//! the expectations under `[expect]`; `kernel = "FILE"` (relative to the
//! scenario file) runs it on another guest build. The plan is either a plan file,
//! `plan = "../plans/hang.toml"` (relative to the scenario file: the same
//! file `dmalab run --faults` takes, so the rules are written once), or
//! inline under `[faults]` (exactly the plan format of
//! `docs/fault-plans.md`, one level down: `[[faults.rule]]`).
//! Everything is checked when the file is loaded, before any VM runs: an
//! unknown key, a value of the wrong type, a bad plan, a relation that does
//! not parse or names an unknown fault kind are one error naming the file
//! and the field.
//!
//! The plan is parsed by the device model's own parser
//! (`FaultPlan::from_toml`) after the `[faults]` table is written back as
//! a plan document, so a scenario's plan and a `--faults` file are the same
//! language with the same checks; the plan kept for the child run is the
//! model's canonical `to_toml` text.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use device_model::fault::{FaultPlan, FaultPlanError};
use device_model::DeviceConfig;
use serde_json::Value;

pub use crate::relation::{check_field, check_kind, check_linux_field, Op, Relation, Term};

/// Why a scenario file was rejected: the file, the field, the problem.
#[derive(Debug, thiserror::Error)]
#[error("bad scenario '{}': field \"{field}\": {problem}", path.display())]
pub struct ScenarioError {
    pub path: PathBuf,
    pub field: String,
    pub problem: String,
}

/// Device time in a campaign scenario (`stepped` needs a client on the
/// control socket, so it is not allowed here).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timing {
    Instant,
    Realtime,
}

impl Timing {
    pub fn name(self) -> &'static str {
        match self {
            Timing::Instant => "instant",
            Timing::Realtime => "realtime",
        }
    }
}

/// The guest a scenario boots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Guest {
    /// The dmalab guest (built in, or `kernel =` / `--kernel` another
    /// build of it): `workload` is its scenario.
    #[default]
    Dmalab,
    /// The Linux guest (images/linux/build.sh, or `kernel =` a vmlinux):
    /// the dmaengine driver under its in-guest harness; the command line
    /// is passed as given, fields are the harness's (`dmatest.failures`).
    Linux,
}

/// What a scenario must give, beyond the universal oracle.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Expect {
    /// dmalab's exit status.
    pub exit: u8,
    /// The result line's `status`.
    pub status: String,
    /// Result-line fields with exact values.
    pub fields: BTreeMap<String, Value>,
    /// Applied faults of each kind, exactly.
    pub faults: BTreeMap<String, u64>,
    pub relations: Vec<Relation>,
}

/// Where a scenario came from.
#[derive(Debug, Clone, PartialEq)]
pub enum Origin {
    File(PathBuf),
    /// `--random N --seed S`: the k-th draw (0-based).
    Random {
        seed: u64,
        index: u64,
    },
}

/// One scenario, ready to run.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: String,
    pub origin: Origin,
    pub guest: Guest,
    pub description: String,
    pub workload: String,
    pub cmdline: String,
    pub seed: u64,
    pub timing: Timing,
    /// `exit` or `ioeventfd`.
    pub doorbell: String,
    /// Seconds.
    pub timeout: f64,
    pub plan: FaultPlan,
    /// Guest kernel (`--kernel`): a dmalab guest built with another
    /// driver; `None`: the campaign's `--kernel`, else the built-in guest.
    pub kernel: Option<PathBuf>,
    /// The plan as the TOML file given to `dmalab run --faults`.
    pub plan_toml: String,
    pub expect: Expect,
}

/// Default `timeout` of a scenario, seconds.
pub const DEFAULT_TIMEOUT: f64 = 60.0;

const TOP_KEYS: &[&str] = &[
    "name",
    "description",
    "workload",
    "cmdline",
    "seed",
    "timing",
    "doorbell",
    "timeout",
    "plan",
    "faults",
    "kernel",
    "guest",
    "expect",
];
const EXPECT_KEYS: &[&str] = &["exit", "status", "fields", "faults", "relations"];

/// A name usable as a file name and a JUnit test name.
pub fn check_name(name: &str) -> Result<(), String> {
    dmalab_protocol::scenario_name(name).map(|_| ())
}

struct Reader<'a> {
    path: &'a Path,
}

impl Reader<'_> {
    fn err(&self, field: &str, problem: impl Into<String>) -> ScenarioError {
        ScenarioError {
            path: self.path.to_path_buf(),
            field: field.to_string(),
            problem: problem.into(),
        }
    }

    fn unknown_keys(
        &self,
        table: &toml::Table,
        known: &[&str],
        prefix: &str,
    ) -> Result<(), ScenarioError> {
        for key in table.keys() {
            if !known.contains(&key.as_str()) {
                return Err(self.err(
                    &format!("{prefix}{key}"),
                    format!("unknown key (known: {})", known.join(", ")),
                ));
            }
        }
        Ok(())
    }

    fn string(
        &self,
        table: &toml::Table,
        key: &str,
        field: &str,
    ) -> Result<Option<String>, ScenarioError> {
        match table.get(key) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(s.clone())),
            Some(v) => Err(self.err(field, format!("must be a string, got {}", v.type_str()))),
        }
    }

    fn integer(
        &self,
        table: &toml::Table,
        key: &str,
        field: &str,
    ) -> Result<Option<i64>, ScenarioError> {
        match table.get(key) {
            None => Ok(None),
            Some(toml::Value::Integer(n)) => Ok(Some(*n)),
            Some(v) => Err(self.err(field, format!("must be an integer, got {}", v.type_str()))),
        }
    }
}

impl Scenario {
    /// Reads and checks a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let r = Reader { path };
        let text = std::fs::read_to_string(path)
            .map_err(|e| r.err("(file)", format!("cannot read it: {e}")))?;
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        Scenario::parse(&text, path, &stem)
    }

    /// Parses a scenario from its text; `path` names it in errors and
    /// `stem` is its name unless it has a `name` key.
    pub fn parse(text: &str, path: &Path, stem: &str) -> Result<Scenario, ScenarioError> {
        let r = Reader { path };
        let table: toml::Table = toml::from_str(text).map_err(|e| {
            r.err(
                "(syntax)",
                e.to_string().replace('\n', " ").trim().to_string(),
            )
        })?;
        r.unknown_keys(&table, TOP_KEYS, "")?;
        let name = r
            .string(&table, "name", "name")?
            .unwrap_or_else(|| stem.to_string());
        check_name(&name).map_err(|p| r.err("name", p))?;
        let description = r
            .string(&table, "description", "description")?
            .unwrap_or_default();
        let guest = match r.string(&table, "guest", "guest")?.as_deref() {
            None | Some("dmalab") => Guest::Dmalab,
            Some("linux") => Guest::Linux,
            Some(other) => return Err(r.err("guest", format!("{other:?}: dmalab or linux"))),
        };
        let workload = match (guest, r.string(&table, "workload", "workload")?) {
            (Guest::Linux, None) => "linux".to_string(),
            (Guest::Linux, Some(_)) => {
                return Err(r.err(
                    "workload",
                    "the Linux guest runs its harness: give `cmdline`, not a workload",
                ))
            }
            (Guest::Dmalab, w) => {
                w.ok_or_else(|| r.err("workload", "missing (copy, fill, stress, demo, …)"))?
            }
        };
        dmalab_protocol::scenario_name(&workload).map_err(|p| r.err("workload", p))?;
        let cmdline = r.string(&table, "cmdline", "cmdline")?.unwrap_or_default();
        if cmdline
            .split_whitespace()
            .any(|w| w.starts_with("scenario="))
        {
            return Err(r.err("cmdline", "give the scenario as `workload`, not scenario="));
        }
        let seed = r.integer(&table, "seed", "seed")?.unwrap_or(0);
        let seed = u64::try_from(seed).map_err(|_| r.err("seed", "must be 0 or more"))?;
        let timing = match r.string(&table, "timing", "timing")?.as_deref() {
            None | Some("instant") => Timing::Instant,
            Some("realtime") => Timing::Realtime,
            Some(other) => {
                return Err(r.err(
                    "timing",
                    format!(
                        "{other:?}: instant or realtime (stepped needs a client on the \
                         control socket)"
                    ),
                ))
            }
        };
        let doorbell = r
            .string(&table, "doorbell", "doorbell")?
            .unwrap_or_else(|| "exit".into());
        if !matches!(doorbell.as_str(), "exit" | "ioeventfd") {
            return Err(r.err("doorbell", format!("{doorbell:?}: exit or ioeventfd")));
        }
        let timeout = match table.get("timeout") {
            None => DEFAULT_TIMEOUT,
            Some(toml::Value::Integer(n)) => *n as f64,
            Some(toml::Value::Float(x)) => *x,
            Some(v) => {
                return Err(r.err("timeout", format!("must be a number, got {}", v.type_str())))
            }
        };
        if !(timeout > 0.0 && timeout <= 3600.0) {
            return Err(r.err("timeout", format!("{timeout}: between 0 and 3600 seconds")));
        }
        let plan = match (table.get("plan"), table.get("faults")) {
            (Some(_), Some(_)) => {
                return Err(r.err("plan", "give `plan` or `[faults]`, not both"));
            }
            (Some(toml::Value::String(file)), None) => plan_file(&r, file)?,
            (Some(v), None) => {
                return Err(r.err(
                    "plan",
                    format!("must be the path of a plan file, got {}", v.type_str()),
                ))
            }
            (None, None) => FaultPlan::default(),
            (None, Some(toml::Value::Table(faults))) => plan_of(&r, faults)?,
            (None, Some(v)) => {
                return Err(r.err(
                    "faults",
                    format!("must be a table of [[faults.rule]], got {}", v.type_str()),
                ))
            }
        };
        let plan_toml = plan.to_toml().map_err(|e| r.err("faults", e.to_string()))?;
        let kernel = r
            .string(&table, "kernel", "kernel")?
            .map(|file| {
                let path = path.parent().unwrap_or(Path::new(".")).join(&file);
                if path.is_file() {
                    Ok(path)
                } else {
                    Err(r.err("kernel", format!("no guest kernel at '{}'", path.display())))
                }
            })
            .transpose()?;
        let expect = match table.get("expect") {
            None => Expect {
                status: "pass".into(),
                ..Expect::default()
            },
            Some(toml::Value::Table(t)) => expect_of(&r, t, guest)?,
            Some(v) => {
                return Err(r.err("expect", format!("must be a table, got {}", v.type_str())))
            }
        };
        Ok(Scenario {
            name,
            origin: Origin::File(path.to_path_buf()),
            guest,
            description,
            workload,
            cmdline,
            seed,
            timing,
            doorbell,
            timeout,
            plan,
            kernel,
            plan_toml,
            expect,
        })
    }
}

/// `plan = "FILE"` (relative to the scenario's directory) → the plan in
/// that file, checked for this device as `dmalab run --faults` would.
fn plan_file(r: &Reader<'_>, file: &str) -> Result<FaultPlan, ScenarioError> {
    let path = r.path.parent().unwrap_or(Path::new(".")).join(file);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| r.err("plan", format!("cannot read '{}': {e}", path.display())))?;
    FaultPlan::from_toml(&text)
        .and_then(|plan| {
            plan.validate_for(DeviceConfig::default().channels)
                .map(|()| plan)
        })
        .map_err(|e| {
            let why = dmalab_protocol::one_line(&e);
            r.err("plan", format!("bad plan '{}': {why}", path.display()))
        })
}

/// `[faults]` → the device model's plan, checked for this device.
fn plan_of(r: &Reader<'_>, faults: &toml::Table) -> Result<FaultPlan, ScenarioError> {
    let text = toml::to_string(faults).map_err(|e| r.err("faults", e.to_string()))?;
    let plan = FaultPlan::from_toml(&text)
        .and_then(|plan| {
            plan.validate_for(DeviceConfig::default().channels)
                .map(|()| plan)
        })
        .map_err(|e| match e {
            FaultPlanError::Rule {
                number,
                name,
                field,
                problem,
                ..
            } => {
                let label = name.map(|n| format!("rule {n:?}: ")).unwrap_or_default();
                r.err(
                    &format!("faults.rule[{number}].{field}"),
                    format!("{label}{problem}"),
                )
            }
            other => r.err("faults", other.to_string()),
        })?;
    Ok(plan)
}

fn expect_of(r: &Reader<'_>, t: &toml::Table, guest: Guest) -> Result<Expect, ScenarioError> {
    let check_field: fn(&str) -> Result<(), String> = match guest {
        Guest::Dmalab => check_field,
        Guest::Linux => check_linux_field,
    };
    r.unknown_keys(t, EXPECT_KEYS, "expect.")?;
    let exit = r.integer(t, "exit", "expect.exit")?.unwrap_or(0);
    let exit = u8::try_from(exit).map_err(|_| r.err("expect.exit", "must be 0 to 255"))?;
    let status = r
        .string(t, "status", "expect.status")?
        .unwrap_or_else(|| "pass".into());
    let mut fields = BTreeMap::new();
    match t.get("fields") {
        None => {}
        Some(toml::Value::Table(f)) => {
            for (key, value) in f {
                let field = format!("expect.fields.{key}");
                check_field(key).map_err(|p| r.err(&field, p))?;
                let json = match value {
                    toml::Value::Integer(n) => Value::from(*n),
                    toml::Value::Float(x) => Value::from(*x),
                    toml::Value::Boolean(b) => Value::from(*b),
                    toml::Value::String(s) => Value::from(s.clone()),
                    v => {
                        return Err(r.err(
                            &field,
                            format!("must be a number, boolean or string, got {}", v.type_str()),
                        ))
                    }
                };
                fields.insert(key.clone(), json);
            }
        }
        Some(v) => {
            return Err(r.err(
                "expect.fields",
                format!("must be a table, got {}", v.type_str()),
            ))
        }
    }
    let mut faults = BTreeMap::new();
    match t.get("faults") {
        None => {}
        Some(toml::Value::Table(f)) => {
            for (kind, value) in f {
                let field = format!("expect.faults.{kind}");
                check_kind(kind).map_err(|p| r.err(&field, p))?;
                let n = match value {
                    toml::Value::Integer(n) => u64::try_from(*n).ok(),
                    _ => None,
                }
                .ok_or_else(|| r.err(&field, "must be a count (an integer, 0 or more)"))?;
                faults.insert(kind.clone(), n);
            }
        }
        Some(v) => {
            return Err(r.err(
                "expect.faults",
                format!("must be a table, got {}", v.type_str()),
            ))
        }
    }
    let mut relations = Vec::new();
    match t.get("relations") {
        None => {}
        Some(toml::Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                let field = format!("expect.relations[{i}]");
                let toml::Value::String(text) = item else {
                    return Err(r.err(&field, "must be a string \"<field> <op> <term>\""));
                };
                relations
                    .push(Relation::parse_for(text, check_field).map_err(|p| r.err(&field, p))?);
            }
        }
        Some(v) => {
            return Err(r.err(
                "expect.relations",
                format!("must be an array of strings, got {}", v.type_str()),
            ))
        }
    }
    Ok(Expect {
        exit,
        status,
        fields,
        faults,
        relations,
    })
}

#[cfg(test)]
#[path = "scenario_tests.rs"]
mod tests;
