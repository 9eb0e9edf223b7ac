//! Requests written as words, the way `dmalab ctl` takes them and a human
//! types them into `socat`: `pause`, `step 1000`, `step completion`,
//! `inject delay-interrupt cycles=5000 channel=1`, `vcpu 0`,
//! `trace start`, `trace stop /tmp/t.json`.

use super::{Request, StepTo, TraceAction};

const USAGE: &str =
    "version, status, pause, resume, now, step CYCLES|event|interrupt|completion|idle, \
     next, run, inject EFFECT [KEY=VALUE…] [channel=N], channels, registers, vcpu N, stats, \
     watch, unwatch, trace start|stop [FILE]";

/// Parses one request written as words.
pub fn parse(line: &str) -> Result<Request, String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let none = |r: Request| {
        if words.len() == 1 {
            Ok(r)
        } else {
            Err(format!("'{}' takes no arguments", words[0]))
        }
    };
    match words.first().copied() {
        None => Err("empty request".into()),
        Some("version") => none(Request::Version),
        Some("status") => none(Request::Status),
        Some("pause") => none(Request::Pause),
        Some("resume") => none(Request::Resume),
        Some("now") => none(Request::Now),
        Some("next") => none(Request::Step { to: StepTo::Event }),
        Some("run") => none(Request::Step { to: StepTo::Idle }),
        Some("channels") => none(Request::Channels),
        Some("registers") => none(Request::Registers),
        Some("stats") => none(Request::Stats),
        Some("watch") => none(Request::Watch),
        Some("unwatch") => none(Request::Unwatch),
        Some("step") => step(&words[1..]),
        Some("vcpu") => match words[1..] {
            [n] => n
                .parse()
                .map(|index| Request::Vcpu { index })
                .map_err(|_| format!("vcpu takes a vCPU number, not '{n}'")),
            _ => Err("vcpu takes one vCPU number".into()),
        },
        Some("inject") => inject(&words[1..]),
        Some("trace") => match words[1..] {
            ["start"] => Ok(Request::Trace {
                action: TraceAction::Start,
                file: None,
            }),
            ["stop", file] => Ok(Request::Trace {
                action: TraceAction::Stop,
                file: Some(file.into()),
            }),
            _ => Err("trace takes 'start' or 'stop FILE'".into()),
        },
        Some(other) => Err(format!("unknown request '{other}' ({USAGE})")),
    }
}

fn step(args: &[&str]) -> Result<Request, String> {
    let to = match args {
        ["event"] => StepTo::Event,
        ["interrupt"] => StepTo::Interrupt,
        ["completion"] => StepTo::Completion,
        ["idle"] => StepTo::Idle,
        [n] => StepTo::Cycles(n.parse().map_err(|_| {
            format!(
                "step takes a number of cycles, event, interrupt, completion or idle, not '{n}'"
            )
        })?),
        _ => {
            return Err(
                "step takes one argument (CYCLES, event, interrupt, completion, idle)".into(),
            )
        }
    };
    Ok(Request::Step { to })
}

/// `inject KIND [KEY=VALUE…] [channel=N]`: the effect as the fault-plan
/// format writes it (a kind name alone, or a table with `kind`).
fn inject(args: &[&str]) -> Result<Request, String> {
    let Some((kind, params)) = args.split_first() else {
        return Err("inject takes an effect kind (as in a fault plan), then KEY=VALUE".into());
    };
    let mut table = serde_json::Map::new();
    table.insert("kind".into(), (*kind).into());
    let mut channel = None;
    for p in params {
        let (key, value) = p
            .split_once('=')
            .ok_or_else(|| format!("inject: '{p}' is not KEY=VALUE"))?;
        if key == "channel" {
            channel = Some(
                value
                    .parse()
                    .map_err(|_| format!("inject: channel={value} is not a channel number"))?,
            );
            continue;
        }
        let value = match serde_json::from_str::<serde_json::Value>(value) {
            Ok(v @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_))) => v,
            _ => value.into(),
        };
        table.insert(key.into(), value);
    }
    let effect = if table.len() == 1 {
        (*kind).into()
    } else {
        serde_json::Value::Object(table)
    };
    Ok(Request::Inject { effect, channel })
}
