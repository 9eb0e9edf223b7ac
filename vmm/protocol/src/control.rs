//! The control socket's messages (`dmalab run --control PATH`): a Unix
//! stream socket carrying one request line and one reply line at a time.
//! The VMM parses [`Request`]s and writes [`Reply`]s; a client does the
//! reverse with the same types, so both sides read one definition.
//!
//! | request | effect | reply |
//! |---|---|---|
//! | `version` | none | `ok version=V` ([`VERSION`]) |
//! | `now` | none | `ok now=C next=N` |
//! | `step K` | advance the device by K cycles | `ok now=C next=N` |
//! | `next` | advance to the next event (if any) | `ok now=C next=N` |
//! | `run` | process events until idle | `ok now=C next=N` |
//! | `stats` | none | `ok {json}` ([`Stats`]) |
//! | `status` | none | `ok status {json}` ([`Status`]) |
//! | `pause` | stop every vCPU and device time | `ok now=C next=N` |
//! | `resume` | restart them | `ok now=C next=N` |
//!
//! `C` is the device cycle, `N` the next event's cycle or `idle`. Anything
//! else gets `error <why>`. A new verb is a new [`Request`] variant, a new
//! reply a new [`Reply`] variant; either bumps [`VERSION`].

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::report::DeviceCounters;

/// The protocol's version, answered to `version`.
pub const VERSION: u32 = 2;

/// Longest request line the VMM accepts.
pub const MAX_LINE: usize = 256;

/// A request line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    Version,
    Now,
    Step(u64),
    Next,
    Run,
    Stats,
    Status,
    Pause,
    Resume,
}

impl Request {
    /// Parses one request line; the error is the reply's text.
    pub fn parse(line: &str) -> Result<Request, String> {
        let mut words = line.split_whitespace();
        let verb = words.next().unwrap_or("");
        let arg = words.next();
        if words.next().is_some() {
            return Err(format!("too many words in {line:?}"));
        }
        Ok(match (verb, arg) {
            ("version", None) => Request::Version,
            ("now", None) => Request::Now,
            ("step", Some(k)) => Request::Step(
                k.parse()
                    .map_err(|_| format!("step takes a number of cycles, not {k:?}"))?,
            ),
            ("next", None) => Request::Next,
            ("run", None) => Request::Run,
            ("stats", None) => Request::Stats,
            ("status", None) => Request::Status,
            ("pause", None) => Request::Pause,
            ("resume", None) => Request::Resume,
            ("", _) => return Err("empty request".into()),
            _ => {
                return Err(format!(
                    "unknown request {line:?} (version, now, step CYCLES, next, run, stats, \
                     status, pause, resume)"
                ))
            }
        })
    }
}

impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Request::Version => f.write_str("version"),
            Request::Now => f.write_str("now"),
            Request::Step(k) => write!(f, "step {k}"),
            Request::Next => f.write_str("next"),
            Request::Run => f.write_str("run"),
            Request::Stats => f.write_str("stats"),
            Request::Status => f.write_str("status"),
            Request::Pause => f.write_str("pause"),
            Request::Resume => f.write_str("resume"),
        }
    }
}

/// The device's counters at a point of the run (`stats`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// The device cycle.
    pub now: u64,
    /// The next event's cycle, `None` when idle.
    pub next: Option<u64>,
    pub tally: DeviceCounters,
    pub trace_lost: u64,
}

/// The VM's state (`status`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// `instant`, `realtime` or `stepped`.
    pub timing: String,
    /// The VM is paused (vCPUs parked, device time stopped).
    pub paused: bool,
    pub vcpus: usize,
    /// vCPUs parked at the pause gate now.
    pub parked: usize,
    /// vCPUs held inside a device access until stepped time reaches idle.
    pub held: usize,
    /// Pauses so far, and the time spent paused (ms, the current pause
    /// included).
    pub pauses: u64,
    pub paused_ms: u64,
    /// The device cycle, and the next event's cycle (`None` when idle).
    pub now: u64,
    pub next: Option<u64>,
}

/// A reply line.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Version(u32),
    /// Device time after the request: now, and the next event if any.
    Time {
        now: u64,
        next: Option<u64>,
    },
    Stats(Stats),
    Status(Status),
    Error(String),
}

impl Reply {
    /// Parses one reply line (a client's side).
    pub fn parse(line: &str) -> Result<Reply, String> {
        let line = line.trim_end();
        if let Some(why) = line.strip_prefix("error ") {
            return Ok(Reply::Error(why.to_string()));
        }
        let rest = line
            .strip_prefix("ok ")
            .ok_or_else(|| format!("not a reply: {line:?}"))?;
        if let Some(v) = rest.strip_prefix("version=") {
            return v
                .parse()
                .map(Reply::Version)
                .map_err(|_| format!("bad version in {line:?}"));
        }
        if let Some(json) = rest.strip_prefix("status ") {
            return serde_json::from_str(json)
                .map(Reply::Status)
                .map_err(|e| format!("bad status in {line:?}: {e}"));
        }
        if rest.starts_with('{') {
            return serde_json::from_str(rest)
                .map(Reply::Stats)
                .map_err(|e| format!("bad stats in {line:?}: {e}"));
        }
        let bad = || format!("bad time reply {line:?}");
        let (now, next) = rest.split_once(' ').ok_or_else(bad)?;
        let now = now.strip_prefix("now=").ok_or_else(bad)?;
        let next = next.strip_prefix("next=").ok_or_else(bad)?;
        Ok(Reply::Time {
            now: now.parse().map_err(|_| bad())?,
            next: match next {
                "idle" => None,
                n => Some(n.parse().map_err(|_| bad())?),
            },
        })
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reply::Version(v) => write!(f, "ok version={v}"),
            Reply::Time { now, next: Some(n) } => write!(f, "ok now={now} next={n}"),
            Reply::Time { now, next: None } => write!(f, "ok now={now} next=idle"),
            Reply::Stats(s) => {
                let json = serde_json::to_string(s).map_err(|_| fmt::Error)?;
                write!(f, "ok {json}")
            }
            Reply::Status(s) => {
                let json = serde_json::to_string(s).map_err(|_| fmt::Error)?;
                write!(f, "ok status {json}")
            }
            Reply::Error(why) => write!(f, "error {why}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_read_back_as_written() {
        for r in [
            Request::Version,
            Request::Now,
            Request::Step(100),
            Request::Next,
            Request::Run,
            Request::Stats,
            Request::Status,
            Request::Pause,
            Request::Resume,
        ] {
            assert_eq!(Request::parse(&r.to_string()), Ok(r));
        }
        assert_eq!(Request::parse("  step   7 "), Ok(Request::Step(7)));
        for bad in ["", "step", "step x", "jump", "now 1", "step 1 2"] {
            assert!(Request::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn replies_read_back_as_written() {
        let stats = Stats {
            now: 5,
            next: None,
            tally: DeviceCounters {
                descriptors: 1,
                ..DeviceCounters::default()
            },
            trace_lost: 0,
        };
        for r in [
            Reply::Version(VERSION),
            Reply::Time { now: 0, next: None },
            Reply::Time {
                now: 100,
                next: Some(500),
            },
            Reply::Stats(stats),
            Reply::Status(Status {
                timing: "realtime".into(),
                paused: true,
                vcpus: 1,
                parked: 1,
                held: 0,
                pauses: 1,
                paused_ms: 100,
                now: 7,
                next: Some(9),
            }),
            Reply::Error("empty request".into()),
        ] {
            assert_eq!(Reply::parse(&r.to_string()), Ok(r.clone()), "{r}");
        }
        assert_eq!(
            Reply::Time { now: 1, next: None }.to_string(),
            "ok now=1 next=idle"
        );
        assert!(Reply::parse("ok now=x next=idle").is_err());
        assert!(Reply::parse("maybe").is_err());
    }
}
