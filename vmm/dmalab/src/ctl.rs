//! `dmalab ctl --socket PATH REQUEST [ARG…]`: a client of a running VM's
//! control API (`dmalab run --control PATH`; stepped timing prints the path
//! it made), shaped like Cloud Hypervisor's `ch-remote --api-socket`. The
//! words are one request (`pause`, `step completion`, `inject
//! drop-interrupt channel=1`, `vcpu 0`, `watch`, …: `docs/control-api.md`);
//! they are turned into `dmalab_protocol::control::Request`, the type the
//! VM answers, and sent as a JSON line.
//!
//! The answer is printed for a human, or as its JSON with `--json`.
//! `watch` prints one line per event until the VM exits (or the client is
//! interrupted).
//!
//! Exit status: 0 when the request got an `ok` reply, 1 when the VM
//! answered with an error (printed on stderr), 64 for a bad request or a
//! socket that cannot be reached or answers out of protocol.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use clap::Args;
use dmalab_protocol::control::{Answer, Line, Request};
use dmalab_protocol::status;

/// `dmalab ctl --socket PATH REQUEST [ARG…]`.
#[derive(Debug, Clone, Args)]
pub struct CtlArgs {
    /// The control socket of a running `dmalab run` (its --control path).
    #[arg(long, value_name = "PATH")]
    pub socket: PathBuf,

    /// Print answers and events as JSON (one object per line).
    #[arg(long)]
    pub json: bool,

    /// The request: version, status, pause, resume, now, step CYCLES|event|
    /// interrupt|completion|idle, inject EFFECT [KEY=VALUE…] [channel=N],
    /// channels, registers, vcpu N, stats, watch, trace start|stop FILE.
    #[arg(value_name = "REQUEST", required = true, num_args = 1.., trailing_var_arg = true)]
    pub words: Vec<String>,
}

/// Why the client could not talk to the socket.
#[derive(Debug, thiserror::Error)]
enum Error {
    #[error("{0}")]
    Request(String),
    #[error(
        "cannot connect to control socket '{}' (give the path `dmalab run --control` \
         was given, or the one it printed)",
        path.display()
    )]
    Connect {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("control socket '{}' closed or failed", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("control socket '{}' answered out of protocol: {why}", path.display())]
    Protocol { path: PathBuf, why: String },
}

/// Runs the request; returns the exit status.
pub fn run(args: &CtlArgs) -> u8 {
    match talk(args, &mut std::io::stdout()) {
        Ok(true) => status::PASS,
        Ok(false) => status::GUEST_FAIL,
        Err(e) => {
            eprintln!("dmalab: {}", dmalab_protocol::one_line(&e));
            status::USAGE
        }
    }
}

/// Sends the request and prints its answer (and, for `watch`, the events
/// until the VM closes the socket); `Ok(false)` for an error reply.
fn talk(args: &CtlArgs, out: &mut impl Write) -> Result<bool, Error> {
    let request = Request::from_words(&args.words).map_err(Error::Request)?;
    let path = &args.socket;
    let io = |source| Error::Io {
        path: path.clone(),
        source,
    };
    let stream = UnixStream::connect(path).map_err(|source| Error::Connect {
        path: path.clone(),
        source,
    })?;
    let mut reader = BufReader::new(stream.try_clone().map_err(io)?);
    let mut writer = stream;
    writeln!(writer, "{}", request.to_line(1)).map_err(io)?;
    let watching = request == Request::Watch;
    let mut answered = false;
    loop {
        let mut text = String::new();
        if reader.read_line(&mut text).map_err(io)? == 0 {
            if answered {
                return Ok(true);
            }
            return Err(io(std::io::ErrorKind::UnexpectedEof.into()));
        }
        let line = Line::parse(&text).map_err(|why| Error::Protocol {
            path: path.clone(),
            why,
        })?;
        // A closed stdout (`| head`) ends a watch quietly.
        let printed = match line {
            Line::Error { error, .. } => {
                eprintln!("dmalab: {}: {error}", request.name());
                return Ok(false);
            }
            Line::Ok { ok, .. } => {
                answered = true;
                let printed = print_answer(out, &ok, args.json);
                if !watching {
                    return Ok(true);
                }
                printed
            }
            Line::Event { event } if args.json => {
                writeln!(out, "{}", serde_json::to_string(&event).unwrap_or_default())
            }
            Line::Event { event } => writeln!(out, "{event}"),
        };
        if printed.and_then(|()| out.flush()).is_err() {
            return Ok(true);
        }
    }
}

fn print_answer(out: &mut impl Write, answer: &Answer, json: bool) -> std::io::Result<()> {
    if json {
        return writeln!(out, "{}", serde_json::to_string(answer).unwrap_or_default());
    }
    match answer {
        Answer::Version(v) => writeln!(out, "version {v}"),
        Answer::Time { now, next } => match next {
            Some(n) => writeln!(out, "now {now} next {n}"),
            None => writeln!(out, "now {now} next idle"),
        },
        Answer::Status(s) => writeln!(
            out,
            "{} timing, {}; vCPUs {} ({} parked, {} held); device cycle {}, next {}; \
             paused {} times, {} ms in all",
            s.timing,
            if s.paused { "paused" } else { "running" },
            s.vcpus,
            s.parked,
            s.held,
            s.now,
            s.next.map_or_else(|| "idle".to_string(), |n| n.to_string()),
            s.pauses,
            s.paused_ms
        ),
        Answer::Channels(channels) => {
            for c in channels {
                writeln!(
                    out,
                    "ch{} {} {}; ring {:#x} size {} head {} tail {} in flight {}; \
                     completions {:#x} head {} tail {}; completed {}; error {}; last {}",
                    c.channel,
                    c.state,
                    if c.enabled { "enabled" } else { "disabled" },
                    c.ring_base,
                    c.ring_size,
                    c.head,
                    c.tail,
                    c.in_flight,
                    c.comp_base,
                    c.comp_head,
                    c.comp_tail,
                    c.completed,
                    c.error_code,
                    c.last_completion.as_ref().map_or_else(
                        || "none".to_string(),
                        |l| format!(
                            "seq {} index {} status {} bytes {} at cycle {}",
                            l.seq, l.index, l.status, l.bytes, l.cycle
                        )
                    )
                )?;
            }
            Ok(())
        }
        Answer::Registers(r) => writeln!(out, "{}", pretty(r)),
        Answer::Stats(s) => writeln!(out, "{}", pretty(s)),
        Answer::Vcpu(text) => write!(out, "{text}"),
        Answer::Injected { rule } => writeln!(out, "injected as fault rule {rule}"),
        Answer::Done => writeln!(out, "ok"),
    }
}

/// Pretty JSON of an answer's part.
fn pretty(v: &impl serde::Serialize) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}
