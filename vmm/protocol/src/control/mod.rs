//! The control API (`dmalab run --control PATH`): JSON lines on a Unix
//! stream socket. A client sends one request per line, each with an `id`;
//! the VM answers each with exactly one reply line carrying the same `id`,
//! in order. A client that sent `watch` also gets event lines, which carry
//! no `id`, between replies. `docs/control-api.md` has an example of each
//! request; this file is their one definition (the VM, `dmalab ctl` and the
//! tests all read and write these types).
//!
//! ```text
//! → {"id":1,"cmd":"pause"}
//! ← {"id":1,"ok":{"time":{"now":5200,"next":null}}}
//! → {"id":2,"cmd":"step","to":{"cycles":1000}}
//! ← {"id":2,"error":"step needs stepped timing or a paused VM (the VM runs realtime)"}
//! ← {"event":{"cycle":6100,"ns":6100,"host_us":8123,"channel":0,"what":"completion","detail":"seq 3 index 2 status 0 bytes 4096"}}
//! ```
//!
//! A line that is not JSON is read as words, the way `dmalab ctl` takes
//! them (`step 1000`, `step completion`, `inject drop-interrupt channel=1`),
//! with id 0: handy with `socat`. The protocol's [`VERSION`] is answered to
//! `version`; a new request or answer is a new variant and a new version.

mod answers;
mod words;

use serde::{Deserialize, Serialize};

pub use answers::{
    ChannelInfo, CompletionInfo, Event, GlobalRegisters, MsixEntry, Registers, Stats, Status,
};

/// The protocol's version, answered to `version`.
pub const VERSION: u32 = 4;

/// Longest request line the VM accepts.
pub const MAX_LINE: usize = 4096;

/// Most cycles one `step` may move the device (about 10 s at 1 GHz).
pub const MAX_STEP_CYCLES: u64 = 10_000_000_000;

/// Most model events one `step` to an event, interrupt or completion may
/// process before it gives up (a device that never gets there).
pub const MAX_STEP_EVENTS: u64 = 10_000_000;

/// Where a `step` stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepTo {
    /// This many cycles later (at most [`MAX_STEP_CYCLES`]).
    Cycles(u64),
    /// Just past the next event a watcher sees (a doorbell, fetch,
    /// completion, interrupt, fault, state change: not a burst).
    Event,
    /// Just past the next interrupt message sent or dropped.
    Interrupt,
    /// Just past the next completion record.
    Completion,
    /// Until the device has nothing left to do.
    Idle,
}

/// `trace start|stop`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TraceAction {
    Start,
    Stop,
}

/// A request (the `cmd` field and its arguments).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Request {
    /// The protocol's version.
    Version,
    /// The VM's state: paused, device time, vCPUs.
    Status,
    /// Stop the whole VM: vCPUs parked, device time stopped.
    Pause,
    /// Restart it.
    Resume,
    /// The device's time now.
    Now,
    /// Move device time (stepped timing, or any timing while paused).
    Step { to: StepTo },
    /// Apply a fault by hand: an effect in the fault-plan format (a kind
    /// name, or a table with `kind`), to the next descriptor of `channel`,
    /// or of any channel.
    Inject {
        effect: serde_json::Value,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        channel: Option<u8>,
    },
    /// Each channel's rings, state and last completion.
    Channels,
    /// BAR0 and the MSI-X table and PBA, decoded.
    Registers,
    /// vCPU `index`'s registers (the VM must be paused).
    Vcpu { index: u8 },
    /// The device counters.
    Stats,
    /// Push events to this connection from now on.
    Watch,
    /// Stop pushing events to this connection.
    Unwatch,
    /// Record device events from `start` to `stop`, written to `file` (a
    /// Chrome trace) at `stop`.
    Trace {
        action: TraceAction,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        file: Option<std::path::PathBuf>,
    },
}

impl Request {
    /// Reads a request line: JSON with an `id`, or words (id 0).
    pub fn parse_line(line: &str) -> Result<(u64, Request), (u64, String)> {
        let line = line.trim();
        if !line.starts_with('{') {
            return words::parse(line).map(|r| (0, r)).map_err(|e| (0, e));
        }
        #[derive(Deserialize)]
        struct WithId {
            id: u64,
        }
        let id = serde_json::from_str::<WithId>(line).map_or(0, |w| w.id);
        let value: serde_json::Value =
            serde_json::from_str(line).map_err(|e| (id, format!("not JSON: {e}")))?;
        let mut map = match value {
            serde_json::Value::Object(map) => map,
            _ => return Err((id, "a request is a JSON object".into())),
        };
        if map.remove("id").and_then(|v| v.as_u64()).is_none() {
            return Err((id, "a request needs a numeric \"id\"".into()));
        }
        let request: Request = serde_json::from_value(serde_json::Value::Object(map.clone()))
            .map_err(|e| (id, format!("bad request: {e}")))?;
        // serde does not refuse extra fields beside an internal tag.
        if let Ok(serde_json::Value::Object(known)) = serde_json::to_value(&request) {
            if let Some(extra) = map.keys().find(|k| !known.contains_key(*k)) {
                return Err((id, format!("'{}' takes no field '{extra}'", request.name())));
            }
        }
        Ok((id, request))
    }

    /// Reads a request from words (`dmalab ctl`'s arguments).
    pub fn from_words(words: &[String]) -> Result<Request, String> {
        words::parse(&words.join(" "))
    }

    /// The request line with `id`.
    pub fn to_line(&self, id: u64) -> String {
        let mut value = serde_json::to_value(self).unwrap_or_default();
        if let serde_json::Value::Object(map) = &mut value {
            map.insert("id".into(), id.into());
        }
        value.to_string()
    }

    /// The request's name (its `cmd`).
    pub fn name(&self) -> &'static str {
        match self {
            Request::Version => "version",
            Request::Status => "status",
            Request::Pause => "pause",
            Request::Resume => "resume",
            Request::Now => "now",
            Request::Step { .. } => "step",
            Request::Inject { .. } => "inject",
            Request::Channels => "channels",
            Request::Registers => "registers",
            Request::Vcpu { .. } => "vcpu",
            Request::Stats => "stats",
            Request::Watch => "watch",
            Request::Unwatch => "unwatch",
            Request::Trace { .. } => "trace",
        }
    }
}

/// What a request got back when it succeeded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Answer {
    Version(u32),
    /// Device time after the request: the cycle, the next event's cycle.
    Time {
        now: u64,
        next: Option<u64>,
    },
    Status(Status),
    Stats(Stats),
    Channels(Vec<ChannelInfo>),
    Registers(Registers),
    /// A vCPU's registers, as the VM prints them in a register dump.
    Vcpu(String),
    /// The fault rule added (its index in the fault log's rules).
    Injected {
        rule: usize,
    },
    /// Watching, or not watching any more, or a trace started or written.
    Done,
}

/// One line from the VM: a reply, or an event for a watcher.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Line {
    Ok { id: u64, ok: Answer },
    Error { id: u64, error: String },
    Event { event: Event },
}

impl Line {
    /// Reads one line from the VM.
    pub fn parse(line: &str) -> Result<Line, String> {
        serde_json::from_str(line.trim_end()).map_err(|e| format!("not a control line: {e}"))
    }

    /// The reply to request `id`.
    pub fn reply(id: u64, result: Result<Answer, String>) -> Line {
        match result {
            Ok(ok) => Line::Ok { id, ok },
            Err(error) => Line::Error { id, error },
        }
    }
}

impl std::fmt::Display for Line {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let json = serde_json::to_string(self).map_err(|_| std::fmt::Error)?;
        f.write_str(&json)
    }
}

#[cfg(test)]
mod tests;
