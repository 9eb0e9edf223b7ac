//! `dmalab ctl SOCKET REQUEST…`: a client of a running VM's control socket
//! (`dmalab run --control PATH`; stepped mode prints the path it made).
//! Each REQUEST is one request line (`now`, `"step 1000"`, `next`, `run`,
//! `stats`, `version`), sent in order; each reply line is printed on
//! stdout. Requests and replies are `dmalab_protocol::control`'s types, the
//! ones the VMM answers with.
//!
//! Exit status: 0 when every request got an `ok` reply, 1 when the VM
//! answered one with `error` (printed on stderr), 64 for a bad request or a
//! socket that cannot be reached or answers out of protocol.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use clap::Args;
use dmalab_protocol::control::{Reply, Request};
use dmalab_protocol::status;

/// `dmalab ctl SOCKET REQUEST…`.
#[derive(Debug, Clone, Args)]
pub struct CtlArgs {
    /// The control socket of a running `dmalab run`.
    #[arg(value_name = "SOCKET")]
    pub socket: PathBuf,

    /// Request lines, in order: now, "step CYCLES", next, run, stats, version.
    #[arg(value_name = "REQUEST", required = true, value_parser = Request::parse)]
    pub requests: Vec<Request>,
}

/// Why the client could not talk to the socket.
#[derive(Debug, thiserror::Error)]
enum Error {
    #[error(
        "cannot connect to control socket '{}' (give the path `dmalab run --control` \
         was given, or the one stepped mode printed)",
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

/// Runs the requests; returns the exit status.
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

/// Sends every request, printing each reply; `Ok(false)` if one was an
/// `error` reply.
fn talk(args: &CtlArgs, out: &mut impl Write) -> Result<bool, Error> {
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
    let mut all_ok = true;
    for request in &args.requests {
        writeln!(writer, "{request}").map_err(io)?;
        let mut line = String::new();
        if reader.read_line(&mut line).map_err(io)? == 0 {
            return Err(io(std::io::ErrorKind::UnexpectedEof.into()));
        }
        match Reply::parse(&line) {
            Ok(Reply::Error(why)) => {
                eprintln!("dmalab: {request}: {why}");
                all_ok = false;
            }
            Ok(reply) => {
                let _ = writeln!(out, "{reply}");
            }
            Err(why) => {
                return Err(Error::Protocol {
                    path: path.clone(),
                    why,
                })
            }
        }
    }
    Ok(all_ok)
}
