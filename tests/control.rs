//! Control socket integration tests: pause and resume a running guest
//! (`docs/dma-device.md`, "The control socket"; `vmm/src/pause.rs`).
//!
//! Each test boots the built-in guest on KVM (skipping loudly without
//! /dev/kvm, failing with `DMALAB_REQUIRE_KVM=1`) and talks to it with the
//! protocol's own types.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::{dmalab, kvm_usable, wait_until, Scratch};
use dmalab_protocol::control::{Reply, Request, Status};

const LIMIT: Duration = Duration::from_secs(90);

/// A `dmalab run` child whose stdout lines arrive on a channel.
struct Vm {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Vm {
    fn spawn(args: &[&str]) -> Self {
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
    fn wait_for(&mut self, needle: &str) {
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
    fn finish(mut self) -> (i32, Vec<String>) {
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
struct Client {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Client {
    fn connect(path: &Path) -> Self {
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
        }
    }

    fn ask(&mut self, request: Request) -> Reply {
        writeln!(self.writer, "{request}").expect("send");
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("a reply");
        Reply::parse(&line).unwrap_or_else(|e| panic!("{request}: {e}"))
    }

    fn status(&mut self) -> Status {
        match self.ask(Request::Status) {
            Reply::Status(s) => s,
            other => panic!("status answered {other:?}"),
        }
    }
}

fn socket(scratch: &Scratch) -> PathBuf {
    scratch.path().join("ctl.sock")
}

#[test]
fn a_paused_vm_stands_still_and_resumes_to_a_clean_pass() {
    if !kvm_usable("a_paused_vm_stands_still_and_resumes_to_a_clean_pass") {
        return;
    }
    let scratch = Scratch::new("ctl-pause");
    let sock = socket(&scratch);
    let mut vm = Vm::spawn(&[
        "run",
        "--scenario",
        "stress",
        "--cmdline",
        "irps=200",
        "--timeout",
        "60",
        "--control",
        sock.to_str().unwrap(),
    ]);
    let mut ctl = Client::connect(&sock);
    // The scenario's first line: requests are in flight from here on.
    vm.wait_for("stress:");
    assert!(matches!(ctl.ask(Request::Pause), Reply::Time { .. }));
    let before = ctl.status();
    assert!(before.paused, "{before:?}");
    assert_eq!(before.parked, before.vcpus, "{before:?}");
    thread::sleep(Duration::from_millis(100));
    let after = ctl.status();
    assert_eq!(after.now, before.now, "device time moved while paused");
    assert_eq!(after.next, before.next);
    assert!(after.paused_ms >= 100, "{after:?}");
    assert!(matches!(ctl.ask(Request::Resume), Reply::Time { .. }));
    let running = ctl.status();
    assert!(!running.paused && running.parked == 0, "{running:?}");
    drop(ctl);
    let (code, lines) = vm.finish();
    let result = lines
        .iter()
        .find_map(|l| l.strip_prefix("DMALAB-RESULT "))
        .unwrap_or_else(|| panic!("no result line: {lines:#?}"));
    let json: serde_json::Value = serde_json::from_str(result).unwrap();
    assert_eq!(code, 0, "{lines:#?}");
    assert_eq!(json["status"], "pass", "{json}");
    assert_eq!(
        json["violations"], 0,
        "the paused span was stolen time: {json}"
    );
}
