//! The control tests' side of a VM: a `dmalab run` child whose stdout
//! lines arrive on a channel, and one connection to its control socket.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use dmalab_protocol::control::{Answer, Event, Line, Request, Status};

use super::{dmalab, wait_until};

/// How long a VM or a socket gets.
const LIMIT: Duration = Duration::from_secs(90);

/// A `dmalab run` child whose stdout lines arrive on a channel.
pub struct Vm {
    pub child: Child,
    pub lines: mpsc::Receiver<String>,
    pub seen: Vec<String>,
}

impl Vm {
    pub fn spawn(args: &[&str]) -> Self {
        let mut child = Command::new(dmalab())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn dmalab");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for a stdout line containing `needle`.
    pub fn wait_for(&mut self, needle: &str) {
        let deadline = Instant::now() + LIMIT;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let hit = line.contains(needle);
                    self.seen.push(line);
                    if hit {
                        return;
                    }
                }
                Err(_) => break,
            }
        }
        panic!("no line with {needle:?}: {:#?}", self.seen);
    }

    /// Waits for the exit; returns the status and every stdout line.
    pub fn finish(mut self) -> (i32, Vec<String>) {
        let status = wait_until(&mut self.child, LIMIT).expect("dmalab did not exit");
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.seen.push(line);
        }
        (status.code().expect("an exit code"), self.seen.clone())
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One connection to a control socket.
pub struct Client {
    pub reader: BufReader<UnixStream>,
    pub writer: UnixStream,
    pub next_id: u64,
    /// Events read while waiting for a reply.
    pub events: Vec<Event>,
}

impl Client {
    pub fn connect(path: &Path) -> Self {
        let deadline = Instant::now() + LIMIT;
        let stream = loop {
            match UnixStream::connect(path) {
                Ok(s) => break s,
                Err(_) if Instant::now() < deadline => thread::sleep(Duration::from_millis(2)),
                Err(e) => panic!("control socket {}: {e}", path.display()),
            }
        };
        Self {
            reader: BufReader::new(stream.try_clone().expect("a socket clone")),
            writer: stream,
            next_id: 1,
            events: Vec::new(),
        }
    }

    /// The next line from the VM, `None` once it closed the socket.
    pub fn line(&mut self) -> Option<Line> {
        let mut text = String::new();
        match self.reader.read_line(&mut text) {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(Line::parse(&text).unwrap_or_else(|e| panic!("{text}: {e}"))),
        }
    }

    pub fn ask(&mut self, request: Request) -> Result<Answer, String> {
        let id = self.next_id;
        self.next_id += 1;
        writeln!(self.writer, "{}", request.to_line(id)).expect("send");
        loop {
            match self.line().expect("a reply") {
                Line::Ok { id: got, ok } if got == id => return Ok(ok),
                Line::Error { id: got, error } if got == id => return Err(error),
                Line::Event { event } => self.events.push(event),
                other => panic!("reply to another request: {other:?}"),
            }
        }
    }

    pub fn status(&mut self) -> Status {
        match self.ask(Request::Status) {
            Ok(Answer::Status(s)) => s,
            other => panic!("status answered {other:?}"),
        }
    }
}
