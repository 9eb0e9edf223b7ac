//! The Linux guest's result line: what the in-guest harness
//! (`guest-driver/linux/harness/dmalab_harness.c`) prints after
//! [`PREFIX`](crate::result::PREFIX), as a typed value, and the names of its
//! fields. The Linux line has objects of its own (`dmatest`, its
//! `channels`, `kunit`), so it is not the DMA driver's flat line of
//! [`result`](crate::result); the campaign reads both through
//! `ResultLine`, the tests through [`LinuxResult`].
//!
//! Three lines come from the harness:
//! - the run's result: `scenario`, `dmatest`, `kunit`, `controllers`, the
//!   driver's [`COUNTERS`] and `status`;
//! - a line too long for one printk record: `scenario`, `status` "fail",
//!   `error`;
//! - a kernel panic (the harness's panic notifier, then the VM exits with
//!   [`status::LINUX_PANIC`](crate::status::LINUX_PANIC)): `scenario`,
//!   `status` "fail", `error` "kernel panic", `panic` (the message).
//!
//! `tests` reads the C sources and fails when a field is added, renamed or
//! removed on one side only, naming both sides.

use serde::{Deserialize, Serialize};

/// The top-level fields the harness prints itself.
pub const FIELDS: &[&str] = &[
    "scenario",
    "status",
    "error",
    "panic",
    "dmatest",
    "kunit",
    "controllers",
];

/// The fields of `"dmatest":{…}`.
pub const DMATEST_FIELDS: &[&str] = &[
    "iterations",
    "threads",
    "buf_size",
    "channels",
    "failures",
    "error",
];

/// The fields of each object of `"dmatest":{"channels":[…]}`.
pub const CHANNEL_FIELDS: &[&str] = &["chan", "threads", "tests", "failures", "result", "finished"];

/// The fields of `"kunit":{…}` (`error` alone when the harness had no
/// memory to list the suites).
pub const KUNIT_FIELDS: &[&str] = &[
    "suites",
    "suites_passed",
    "suites_failed",
    "suites_skipped",
    "cases",
    "passed",
    "failed",
    "skipped",
    "error",
];

/// The driver's counters, top-level fields of the line
/// (`dmalab_dma_counter_names[]`, `guest-driver/linux/dmalab_dma_main.c`;
/// what each counts is in `guest-driver/linux/dmalab_dma.h`).
pub const COUNTERS: &[&str] = &[
    "interrupts",
    "completions",
    "retries",
    "resets",
    "watchdog_recoveries",
    "errors_reported",
];

/// `error` of the line a kernel panic prints.
pub const PANIC_ERROR: &str = "kernel panic";

/// Whether `path` names a field of the Linux result line: a top-level
/// field or counter, or `object.field` into `dmatest` or `kunit`.
pub fn is_field(path: &str) -> bool {
    match path.split_once('.') {
        None => FIELDS.contains(&path) || COUNTERS.contains(&path),
        Some(("dmatest", f)) => DMATEST_FIELDS.contains(&f),
        Some(("kunit", f)) => KUNIT_FIELDS.contains(&f),
        Some(_) => false,
    }
}

/// The harness's line, typed. Unknown fields are refused, so a field
/// renamed in the C source fails the parse instead of reading as absent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinuxResult {
    pub scenario: String,
    /// `"pass"` or `"fail"`.
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The panic message, on the line of a kernel panic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub panic: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dmatest: Option<Dmatest>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kunit: Option<Kunit>,
    /// Controllers the driver has bound at the end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controllers: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interrupts: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completions: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resets: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watchdog_recoveries: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors_reported: Option<u64>,
}

/// dmatest's totals (`"dmatest":{…}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dmatest {
    /// Transfers per thread asked for.
    pub iterations: u32,
    /// Threads per channel asked for.
    pub threads: u32,
    pub buf_size: u32,
    pub channels: Vec<Channel>,
    /// The sum of the channels' failures.
    pub failures: u32,
    /// `"timeout"` when dmatest did not end within `dmalab.timeout_ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One channel's dmatest totals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Channel {
    /// The channel's name, e.g. `dma0chan0`.
    pub chan: String,
    pub threads: u32,
    pub tests: u32,
    pub failures: u32,
    /// The first error a thread ended with (0: none).
    pub result: i32,
    /// Every thread ended within the time allowed.
    pub finished: bool,
}

/// KUnit's totals (`"kunit":{…}`); all zero with `error` set when the
/// harness could not run the suites.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Kunit {
    pub suites: u32,
    pub suites_passed: u32,
    pub suites_failed: u32,
    pub suites_skipped: u32,
    pub cases: u32,
    pub passed: u32,
    pub failed: u32,
    pub skipped: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl LinuxResult {
    /// The JSON after [`PREFIX`](crate::result::PREFIX).
    pub fn parse(json: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(json)
    }

    /// The last `DMALAB-RESULT` line of a console log, parsed; `None`
    /// when there is none, the parse error when it is not this line.
    pub fn from_console(console: &str) -> Option<Result<Self, serde_json::Error>> {
        let prefix = crate::result::PREFIX;
        console
            .lines()
            .rev()
            .find_map(|l| l.find(prefix).map(|at| &l[at + prefix.len()..]))
            .map(Self::parse)
    }

    pub fn passed(&self) -> bool {
        self.status == "pass"
    }

    /// A driver counter by its [`COUNTERS`] name.
    pub fn counter(&self, name: &str) -> Option<u64> {
        match name {
            "interrupts" => self.interrupts,
            "completions" => self.completions,
            "retries" => self.retries,
            "resets" => self.resets,
            "watchdog_recoveries" => self.watchdog_recoveries,
            "errors_reported" => self.errors_reported,
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests;
